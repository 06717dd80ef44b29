//! A bad link: 10 % of packets lost at random both ways between the phones and the server.
//! SIP's retransmissions must carry every call through set-up and hang-up, and every text
//! must arrive exactly once (a retransmitted MESSAGE is absorbed, never shown twice).

use super::*;

#[test]
fn with_ten_percent_loss_twenty_calls_start_and_end_and_a_hundred_texts_arrive_once_each() {
    // phones -- router (the bad link) -- server.
    let server_ns = Namespace::new("server");
    let router = Namespace::new("router");
    let phones = Namespace::new("phones");
    let wan = Link::new(&server_ns, &router, Family::V4);
    let link = Link::new(&router, &phones, Family::V4);
    router.forward();
    phones.route_default(link.a(false));
    server_ns.route(link.v4_subnet.as_deref().unwrap(), wan.b(false));
    let server = Server::start(&server_ns, &USERS, &["--domain", "club-a.test"]);
    let at = SocketAddr::new(wan.a(false), 5060);
    let dir = scratch_dir("loss");
    let ua = |account: &str, port: u16, contact: &str| {
        let user = account.split('@').next().unwrap();
        let contacts = format!("sip:{contact}");
        Ua::start_in(
            (&phones, link.b(false)),
            (at, account, port),
            dir.join(format!("{user}-baresip.log")),
            &[("CONTACTS", contacts.as_str()), ("ANSWER", "auto")],
            (
                "sine:440",
                dir.join(format!("{user}-heard.wav")).to_str().unwrap(),
            ),
        )
    };
    let mut alice = ua("alice@club-a.test", 5350, "carol@club-a.test");
    let bob = ua("bob@club-a.test", 5360, "alice@club-a.test");
    // Texts go to Linphone: baresip answers MESSAGE without a server transaction, so it shows
    // a retransmission (its 200 lost, the same request again) twice; belle-sip absorbs it.
    let carol = linphone(
        (&phones, &dir),
        "carol@club-a.test",
        (at, "udp", 5370),
        (None, None),
    );
    // Registered; from now on the router loses a packet in ten, each way.
    router.lose_forwarded(0.10);

    for n in 1..=20 {
        alice.command("/dial sip:bob@club-a.test");
        alice.wait_for_count(
            "Call established: sip:bob@club-a.test",
            n,
            Duration::from_secs(40),
        );
        alice.command("/hangup");
        // bob hears the BYE (alice, who hung up, says nothing more).
        bob.wait_for_count(
            "sip:alice@club-a.test: session closed",
            n,
            Duration::from_secs(40),
        );
    }

    for n in 1..=100 {
        alice.command(&format!("/message text-{n:03}"));
    }
    carol.wait_for_nth("text-100", 1, Duration::from_secs(90));
    let all_in = |said: &str| (1..=100).all(|n| said.contains(&format!("text-{n:03}")));
    for _ in 0..600 {
        if all_in(&carol.said()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A moment for any duplicate to show.
    std::thread::sleep(Duration::from_secs(3));
    let said = carol.said();
    for n in 1..=100 {
        let text = format!("text-{n:03}");
        assert_eq!(said.matches(&text).count(), 1, "{text} in:\n{said}");
    }
    // The link did lose: the router's rule dropped packets (its counter, first column).
    let rules = router.run(&["iptables", "-L", "FORWARD", "-v", "-x", "-n"]);
    let dropped: u64 = rules
        .lines()
        .find(|l| l.contains("statistic"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(dropped > 100, "the router dropped {dropped}:\n{rules}");
    println!("the router dropped {dropped} packets");
    alice.quit();
    bob.quit();
    carol.quit();
    drop(server);
}
