//! A LAN: the server in one namespace started exactly as the README says (`openline serve
//! --domain club-a.test`: wildcard listeners on port 5060), the phones in another joined to
//! it by a veth pair. Linphone (alice) and baresip (bob) register, text each other, call both
//! ways with audio both ways, and each side hangs up once: the BYE arrives at the other, which
//! a server that writes 0.0.0.0 into Record-Route never managed.

use super::*;

#[test]
fn on_a_lan_the_readme_server_carries_texts_calls_audio_and_hang_ups_both_ways() {
    let server_ns = Namespace::new("server");
    let phones = Namespace::new("phones");
    let lan = Link::new(&server_ns, &phones, Family::V4);
    let server = Server::start(&server_ns, &USERS, &["--domain", "club-a.test"]);
    let at = SocketAddr::new(lan.a(false), 5060);
    let dir = scratch_dir("lan");
    let tone = dir.join("tone.wav");
    tone_wav(&tone, 440.0, 30);
    let alice_heard = dir.join("alice-heard.wav");
    let bob_heard = dir.join("bob-heard.wav");

    let mut alice = linphone(
        (&phones, &dir),
        "alice@club-a.test",
        (at, "udp", 5301),
        (Some(&tone), Some(&alice_heard)),
    );
    let mut bob = baresip(
        (&phones, lan.b(false), &dir),
        "bob@club-a.test",
        (at, 5303),
        (1000, &bob_heard),
        "alice@club-a.test",
    );

    // What the server wrote about itself: never a wildcard, the address the phones reach.
    let log = alice.log();
    let server_ip = lan.a(false).to_string();
    assert!(!log.contains("0.0.0.0"), "a wildcard reached the phone");

    // Texts both ways.
    alice.command("chat sip:bob@club-a.test hello bob");
    bob.wait_for("sip:alice@club-a.test: \"hello bob\"");
    bob.command("/message hello alice");
    alice.wait_for("hello alice", WAIT);

    // alice calls bob; bob answers; bob (the callee) hangs up: alice hears the BYE.
    linphone_calls_baresip((&mut alice, 1), (&mut bob, "bob@club-a.test"));
    // The Record-Route alice learnt names the server's LAN address.
    let rr = alice
        .log()
        .lines()
        .find(|l| l.starts_with("Record-Route:"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        rr.contains(&server_ip),
        "Record-Route names {server_ip}: {rr}"
    );
    let first_call = heard_so_far(&alice_heard, &dir, "alice-heard-1.wav");
    assert_hears(&first_call, 1000.0, "alice (linphone), calling bob");

    // bob calls alice; alice answers and hangs up: bob hears the BYE.
    baresip_calls_linphone(
        (&mut bob, "bob@club-a.test"),
        (&mut alice, "alice@club-a.test"),
    );
    bob.quit();
    assert_hears(&bob_heard, 440.0, "bob (baresip), calling alice");
    alice.quit();
    assert!(
        !server.log().contains("ERROR"),
        "the server logged errors:\n{}",
        server.log()
    );
}

#[test]
fn options_to_the_server_itself_is_answered_200_from_any_address_without_a_challenge() {
    let server_ns = Namespace::new("server");
    let phones = Namespace::new("phones");
    let lan = Link::new(&server_ns, &phones, Family::V4);
    let _server = Server::start(&server_ns, &USERS, &["--domain", "club-a.test"]);
    let dir = scratch_dir("options");
    let lan_ip = lan.a(false).to_string();
    // From a phone on the LAN to the server's LAN address and to its domain (from one of its
    // users, who would be challenged for anything else), and from the server's own host to
    // 127.0.0.1 (which a wildcard listener answers on too) by a stranger.
    for (n, (ns, uri, to, from)) in [
        (
            &phones,
            format!("sip:{lan_ip}:5060"),
            lan_ip.clone(),
            "alice@club-a.test",
        ),
        (
            &phones,
            "sip:club-a.test".into(),
            lan_ip.clone(),
            "alice@club-a.test",
        ),
        (
            &server_ns,
            "sip:127.0.0.1:5060".into(),
            "127.0.0.1".into(),
            "monitor@else.test",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let request = dir.join(format!("options-{n}.sip"));
        std::fs::write(
            &request,
            format!(
                "OPTIONS {uri} SIP/2.0\nFrom: <sip:{from}>;tag=o{n}\nTo: <{uri}>\n\
                 Call-ID: options-{n}@lan\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\
                 Content-Length: 0\n\n"
            ),
        )
        .unwrap();
        let out = ns
            .command("timeout")
            .args(["20s", "sipsak", "-vv", "-f"])
            .arg(&request)
            .args(["-s", &format!("sip:ping@{to}:5060")])
            .output()
            .expect("sipsak (installed by scripts/install-test-deps)");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("SIP/2.0 200 OK"),
            "OPTIONS {uri} from {from}:\n{said}"
        );
        assert!(
            !said.contains("SIP/2.0 407"),
            "OPTIONS {uri} was challenged:\n{said}"
        );
        assert!(
            said.contains("Allow: ACK, CANCEL, OPTIONS, REGISTER"),
            "{said}"
        );
    }
}
