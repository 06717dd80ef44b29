//! Call quality you can read (issue #20 item 6): a call where alice's router loses 5 % of
//! packets both ways. The relay measures alice's leg at about 5 % and bob's at 0, live in
//! `openline status --calls` and in the line logged when the call ends.

use super::*;

/// `openline status --calls --json` of the server whose database is `db`, run in `ns`.
fn status(ns: &Namespace, db: &str) -> serde_json::Value {
    let out = ns
        .command(openline_tests::subject::openline_bin())
        .args(["status", "--calls", "--json", "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The loss percentage the status gives `party`'s leg of the first call.
fn loss_of(status: &serde_json::Value, party: &str) -> f64 {
    let legs = &status["media_calls"][0]["streams"][0];
    legs.as_array()
        .and_then(|l| l.iter().find(|q| q["party"] == party))
        .and_then(|q| q["loss_percent"].as_f64())
        .unwrap_or_else(|| panic!("no leg of {party} in {status}"))
}

#[test]
fn with_five_percent_loss_on_one_link_that_leg_reads_about_five_and_the_other_none() {
    // alice -- router (losing) -- server -- bob.
    let server_ns = Namespace::new("server");
    let router = Namespace::new("router");
    let (home_a, home_b) = (Namespace::new("alice"), Namespace::new("bob"));
    let wan = Link::new(&server_ns, &router, Family::V4);
    let (link_a, link_b) = (
        Link::new(&router, &home_a, Family::V4),
        Link::new(&server_ns, &home_b, Family::V4),
    );
    router.forward();
    home_a.route_default(link_a.a(false));
    server_ns.route(link_a.v4_subnet.as_deref().unwrap(), wan.b(false));
    let server = Server::start(&server_ns, &USERS, &["--domain", "club-a.test"]);
    let dir = scratch_dir("quality");
    let mut alice = baresip(
        (&home_a, link_a.b(false), &dir),
        "alice@club-a.test",
        (SocketAddr::new(wan.a(false), 5060), 5310),
        (440, &dir.join("alice-heard.wav")),
        "bob@club-a.test",
    );
    let mut bob = baresip(
        (&home_b, link_b.b(false), &dir),
        "bob@club-a.test",
        (SocketAddr::new(link_b.a(false), 5060), 5320),
        (1000, &dir.join("bob-heard.wav")),
        "alice@club-a.test",
    );
    // Registered: from now on alice's router loses one packet in twenty, each way.
    router.lose_forwarded(0.05);
    alice.command("/dial sip:bob@club-a.test");
    bob.wait_for("Incoming call from:");
    bob.command("/accept");
    alice.wait_for("Call established: sip:bob@club-a.test");
    // 20 s of G.711 at 50 packets a second: a thousand packets each way.
    std::thread::sleep(Duration::from_secs(20));
    let live = status(&server_ns, &server.db());
    let (a, b) = (
        loss_of(&live, "alice@club-a.test"),
        loss_of(&live, "bob@club-a.test"),
    );
    assert!((2.5..8.0).contains(&a), "alice's leg lost {a} %: {live}");
    assert_eq!(b, 0.0, "bob's leg lost {b} %: {live}");
    assert!(
        live["media_calls"][0]["problems"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{live}"
    );
    alice.command("/hangup");
    bob.wait_for("session closed");
    // The line at the end of the call says the same.
    let mut line = String::new();
    for _ in 0..50 {
        line = server
            .log()
            .lines()
            .find(|l| l.contains(" media: alice@club-a.test sent "))
            .unwrap_or_default()
            .to_string();
        if !line.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(line.contains("bob@club-a.test sent "), "{}", server.log());
    let percent = |who: &str| -> f64 {
        let rest = &line[line.find(&format!("{who} sent ")).unwrap()..];
        let lost = rest.split(" % lost").next().unwrap();
        lost.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (a, b) = (percent("alice@club-a.test"), percent("bob@club-a.test"));
    assert!((2.5..8.0).contains(&a) && b == 0.0, "{line}");
    println!("{line}");
    // alice's own RTCP says what she lost on the way back from the relay.
    assert!(line.contains("(its RTCP: "), "{line}");
    alice.quit();
    bob.quit();
}

#[test]
fn a_phone_whose_media_cannot_leave_is_named_as_one_way_audio() {
    let server_ns = Namespace::new("server");
    let (home_a, home_b) = (Namespace::new("alice"), Namespace::new("bob"));
    let (link_a, link_b) = (
        Link::new(&server_ns, &home_a, Family::V4),
        Link::new(&server_ns, &home_b, Family::V4),
    );
    // bob's firewall lets SIP out but not media to the relay's ports.
    home_b.run(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-p",
        "udp",
        "--dport",
        "30000:39999",
        "-j",
        "DROP",
    ]);
    let server = Server::start(&server_ns, &USERS, &["--domain", "club-a.test"]);
    let dir = scratch_dir("one-way");
    let mut alice = baresip(
        (&home_a, link_a.b(false), &dir),
        "alice@club-a.test",
        (SocketAddr::new(link_a.a(false), 5060), 5330),
        (440, &dir.join("alice-heard.wav")),
        "bob@club-a.test",
    );
    let mut bob = baresip(
        (&home_b, link_b.b(false), &dir),
        "bob@club-a.test",
        (SocketAddr::new(link_b.a(false), 5060), 5340),
        (1000, &dir.join("bob-heard.wav")),
        "alice@club-a.test",
    );
    alice.command("/dial sip:bob@club-a.test");
    bob.wait_for("Incoming call from:");
    bob.command("/accept");
    alice.wait_for("Call established: sip:bob@club-a.test");
    std::thread::sleep(Duration::from_secs(4));
    let live = status(&server_ns, &server.db());
    assert_eq!(
        live["media_calls"][0]["problems"][0], "one-way audio: bob@club-a.test's side sent nothing",
        "{live}"
    );
    alice.command("/hangup");
    bob.wait_for("session closed");
    let mut named = false;
    for _ in 0..50 {
        let log = server.log();
        named = log.lines().any(|l| {
            l.contains("WARN") && l.contains("one-way audio: bob@club-a.test's side sent nothing")
        });
        if named {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(named, "{}", server.log());
    alice.quit();
    bob.quit();
}
