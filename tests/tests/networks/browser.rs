//! A browser behind a home router (issue #23): a laptop's chromium in a namespace whose only
//! way out is a masquerading router opens the web phone at the server's address over HTTPS
//! (a certificate for that address), signs in over WSS and calls carol's baresip on the
//! server's LAN, then carol calls the tab back. Media crosses the relay's WebRTC gateway:
//! ICE-lite on the server's address, which the laptop reaches through its NAT.

use super::*;
use openline_tests::browser::Tab;
use openline_tests::certs::TestPki;

#[test]
fn a_tab_behind_a_nat_calls_a_desk_phone_on_the_lan_and_is_called_back_with_audio() {
    let server_ns = Namespace::new("server");
    let router = Namespace::new("router");
    let laptop = Namespace::new("laptop");
    let lan = Namespace::new("lan");
    let wan = Link::new(&server_ns, &router, Family::V4);
    let home_link = Link::new(&router, &laptop, Family::V4);
    let lan_link = Link::new(&server_ns, &lan, Family::V4);
    router.forward();
    router.masquerade(&wan.interfaces.1, false);
    laptop.route_default(home_link.a(false));

    let dir = scratch_dir("browser-nat");
    let ip = wan.a(false);
    let pki = TestPki::new(&dir);
    let cert = pki.issue_for_address("server", ip);
    let (wss, web) = (format!("wss:{ip}:8089"), format!("https:{ip}:8443"));
    let mut args: Vec<String> = ["--domain", "club-a.test"]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(pki.serve_args(&cert));
    args.extend([
        "--listen".into(),
        "udp:0.0.0.0:5060".into(),
        "--listen".into(),
        "tcp:0.0.0.0:5060".into(),
        "--listen".into(),
        wss,
        "--web".into(),
        web,
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&server_ns, &USERS, &args);

    let carol_heard = dir.join("carol-heard.wav");
    let mut carol = baresip(
        (&lan, lan_link.b(false), &dir),
        "carol@club-a.test",
        (SocketAddr::new(lan_link.a(false), 5060), 5407),
        (1000, &carol_heard),
        "alice@club-a.test",
    );
    let mic = dir.join("mic.wav");
    tone_wav(&mic, 440.0, 60);
    let url = format!("https://{ip}:8443/phone/");
    let (mut tab, first) = Tab::open_in(
        Some(&laptop.path()),
        &url,
        ("alice@club-a.test", "s3cret"),
        (&dir, Some(&mic)),
    );
    assert_eq!(first, "signed-in", "{}", server.log());

    // The tab calls carol; carol hangs up.
    assert_eq!(tab.command("call carol@club-a.test"), "calling");
    carol.wait_for("Incoming call from:");
    carol.command("/accept");
    assert!(
        tab.command("callstate active")
            .starts_with("callstate active")
    );
    let audio = tab.command("audio");
    let parts: Vec<f64> = audio
        .split(' ')
        .skip(1)
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        parts.len() == 3 && parts[0] > 100.0 && parts[1] > 0.0 && parts[2] > 100.0,
        "the tab hears carol through its NAT: {audio}"
    );
    std::thread::sleep(Duration::from_secs(3));
    carol.command("/hangup");
    let idle = tab.command("callstate idle");
    assert!(
        idle.starts_with("callstate idle"),
        "{idle}\n{}",
        server.log()
    );
    carol.quit();
    assert_hears(
        &carol_heard,
        440.0,
        "carol, called by the tab behind the NAT",
    );

    // carol calls the tab back: it rings through the NAT over its WebSocket.
    let carol_heard = dir.join("carol-heard-back.wav");
    let mut carol = baresip(
        (&lan, lan_link.b(false), &dir),
        "carol@club-a.test",
        (SocketAddr::new(lan_link.a(false), 5060), 5409),
        (1000, &carol_heard),
        "alice@club-a.test",
    );
    carol.command("/dial sip:alice@club-a.test");
    assert!(
        tab.command("callstate incoming")
            .starts_with("callstate incoming")
    );
    assert_eq!(tab.command("press answer"), "pressed");
    carol.wait_for("Call established");
    assert!(tab.command("audio").starts_with("audio "));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tab.command("press hangup"), "pressed");
    carol.wait_for("session closed");
    carol.quit();
    assert_hears(&carol_heard, 440.0, "carol, calling the tab behind the NAT");
}
