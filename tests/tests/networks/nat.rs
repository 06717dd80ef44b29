//! Phones behind a home router: alice (Linphone) and bob (baresip) in a namespace whose only
//! way out is a router namespace that masquerades (a cone NAT, and with `--random-fully` a
//! symmetric one, as carrier NAT is), carol (baresip) on the server's LAN. Their Contact and
//! SDP carry private addresses the server cannot reach: it reaches them over the flow they
//! registered on, and the relay latches on where their media really comes from.

use super::*;

/// The topology: (server, home, router, lan) namespaces, the home and server-side links, and
/// the server's address for phones.
struct Home {
    server_ns: Namespace,
    home: Namespace,
    lan: Namespace,
    _router: Namespace,
    home_link: Link,
    lan_link: Link,
    at: SocketAddr,
}

fn home(symmetric: bool) -> Home {
    let server_ns = Namespace::new("server");
    let router = Namespace::new("router");
    let home = Namespace::new("home");
    let lan = Namespace::new("lan");
    let wan = Link::new(&server_ns, &router, Family::V4);
    let home_link = Link::new(&router, &home, Family::V4);
    let lan_link = Link::new(&server_ns, &lan, Family::V4);
    router.forward();
    router.masquerade(&wan.interfaces.1, symmetric);
    home.route_default(home_link.a(false));
    // The server knows no route into the home: only the router's outside address.
    Home {
        at: SocketAddr::new(wan.a(false), 5060),
        server_ns,
        home,
        lan,
        _router: router,
        home_link,
        lan_link,
    }
}

/// alice and bob behind the NAT call each other, alice calls carol on the LAN and carol
/// calls alice; audio both ways each time, and the callee's hang-up reaches the caller.
fn calls_through(symmetric: bool, media: &[&str]) {
    let net = home(symmetric);
    let mut args = vec!["--domain", "club-a.test"];
    args.extend(media);
    let server = Server::start(&net.server_ns, &USERS, &args);
    let dir = scratch_dir(if symmetric {
        "symmetric-nat"
    } else {
        "cone-nat"
    });
    let tone = dir.join("tone.wav");
    tone_wav(&tone, 440.0, 60);
    let alice_heard = dir.join("alice-heard.wav");
    let mut alice = linphone(
        (&net.home, &dir),
        "alice@club-a.test",
        (net.at, "udp", 5401),
        (Some(&tone), Some(&alice_heard)),
    );
    let bob_heard = dir.join("bob-heard.wav");
    let mut bob = baresip(
        (&net.home, net.home_link.b(false), &dir),
        "bob@club-a.test",
        (net.at, 5403),
        (1000, &bob_heard),
        "alice@club-a.test",
    );
    let carol_heard = dir.join("carol-heard.wav");
    let mut carol = baresip(
        (&net.lan, net.lan_link.b(false), &dir),
        "carol@club-a.test",
        (SocketAddr::new(net.lan_link.a(false), 5060), 5405),
        (2000, &carol_heard),
        "alice@club-a.test",
    );

    // bob (behind the NAT) calls alice (behind the same NAT); alice hangs up.
    baresip_calls_linphone(
        (&mut bob, "bob@club-a.test"),
        (&mut alice, "alice@club-a.test"),
    );
    let heard = heard_so_far(&alice_heard, &dir, "alice-heard-bob.wav");
    assert_hears(&heard, 1000.0, "alice, called by bob behind the same NAT");

    // alice calls carol on the LAN; carol hangs up.
    linphone_calls_baresip((&mut alice, 2), (&mut carol, "carol@club-a.test"));
    let heard = heard_so_far(&alice_heard, &dir, "alice-heard-carol.wav");
    assert_hears(&heard, 2000.0, "alice, calling carol on the LAN");

    // carol calls alice behind the NAT (its offer is not NATed, its callee is); alice hangs up.
    baresip_calls_linphone(
        (&mut carol, "carol@club-a.test"),
        (&mut alice, "alice@club-a.test"),
    );
    carol.quit();
    assert_hears(
        &carol_heard,
        440.0,
        "carol on the LAN, calling alice behind the NAT",
    );
    bob.quit();
    assert_hears(&bob_heard, 440.0, "bob, calling alice");
    alice.quit();
    assert!(!server.log().contains("ERROR"), "{}", server.log());
}

#[test]
fn behind_a_cone_nat_phones_call_each_other_and_the_lan_with_audio_both_ways() {
    calls_through(false, &[]);
}

#[test]
fn behind_a_symmetric_nat_media_nat_finds_the_private_addresses_and_anchors() {
    calls_through(true, &["--media", "nat"]);
}
