#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // Instant::now() is the origin of virtual time here
//! The client against our own ng server (`ng::handle` over a `Calls`), as it would talk to
//! rtpengine, and against silence.

use super::*;
use crate::control::{Calls, ng};
use crate::relay::{PortPool, Relay};

const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";
const ANSWER: &str = "v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 8000 RTP/AVP 0\r\n";

fn relay() -> Calls {
    Calls::new(
        Relay::new(PortPool::new(40_000, 40_099), Duration::from_secs(60)),
        "127.0.0.9".parse().unwrap(),
    )
}

fn command(kind: &str, tag: &str, sdp: &str) -> Command {
    let (call_id, tag, sdp) = ("c1".to_string(), tag.to_string(), sdp.as_bytes().to_vec());
    match kind {
        "offer" => Command::Offer {
            call_id,
            tag,
            party: None,
            sdp,
            facing: None,
            to_browser: false,
        },
        "answer" => Command::Answer {
            call_id,
            tag,
            party: None,
            sdp,
            facing: None,
        },
        _ => Command::Delete { call_id },
    }
}

#[test]
fn offer_answer_and_delete_go_through_an_ng_relay() {
    let now = Instant::now();
    let mut client = NgClient::new();
    let mut calls = relay();
    let exchange = |client: &mut NgClient, calls: &mut Calls, id, c: Command| {
        let datagram = client.request(now, id, &c).unwrap();
        let reply = ng::handle(calls, now, &datagram).unwrap();
        client.handle_reply(&reply).unwrap()
    };
    let (id, offered) = exchange(&mut client, &mut calls, 1, command("offer", "alice", OFFER));
    let offered = offered.unwrap();
    assert_eq!(id, 1);
    assert!(offered.contains("c=IN IP4 127.0.0.9"), "{offered}");
    assert!(!offered.contains("m=audio 7000"), "{offered}");
    // The answer names the offerer as from-tag: the relay finds the call's session.
    let (id, answered) = exchange(&mut client, &mut calls, 2, command("answer", "bob", ANSWER));
    assert_eq!(id, 2);
    assert!(answered.unwrap().contains("c=IN IP4 127.0.0.9"));
    let (_, deleted) = exchange(&mut client, &mut calls, 3, command("delete", "", ""));
    assert_eq!(deleted, Ok(String::new()));
    assert_eq!(calls.relay().len(), 0, "the relay's sessions are gone");
    assert!(
        client.offerers.is_empty(),
        "nothing kept per call after its delete"
    );
    // A refusal comes back as the relay's reason.
    let (_, refused) = exchange(&mut client, &mut calls, 4, command("delete", "", ""));
    assert!(
        matches!(refused, Err(ControlError::Remote(ref r)) if r.contains("unknown call")),
        "{refused:?}"
    );
}

#[test]
fn bad_sdp_is_refused_here_and_an_answer_needs_its_offer() {
    let mut client = NgClient::new();
    let now = Instant::now();
    let bad = client.request(now, 1, &command("offer", "alice", "v=0\r\nm=audio x\r\n"));
    assert!(matches!(bad, Err(Err(ControlError::Sdp(_)))), "{bad:?}");
    let orphan = client.request(now, 2, &command("answer", "bob", ANSWER));
    assert!(matches!(orphan, Err(Err(ControlError::UnknownCall))));
    assert!(client.poll_timeout().is_none(), "nothing was sent");
}

#[test]
fn a_silent_relay_gets_the_same_datagram_twice_more_then_the_request_fails() {
    let mut client = NgClient::new();
    let t0 = Instant::now();
    let sent = client
        .request(t0, 7, &command("offer", "alice", OFFER))
        .unwrap();
    let mut at = t0;
    let mut again = Vec::new();
    let mut failed = Vec::new();
    while let Some(due) = client.poll_timeout() {
        at = due;
        let (a, f) = client.handle_timeout(at);
        again.extend(a);
        failed.extend(f);
    }
    assert_eq!(
        again,
        vec![sent.clone(), sent.clone()],
        "the same cookie, so the relay acts once"
    );
    assert_eq!(failed, vec![(7, Err(ControlError::NoAnswer))]);
    assert_eq!(at - t0, Duration::from_millis(3500), "0.5 + 1 + 2 s");
    // A reply after giving up, or to nothing, is ignored.
    let late = [
        &sent[..sent.iter().position(|&b| b == b' ').unwrap()],
        b" d6:result2:oke",
    ]
    .concat();
    assert_eq!(client.handle_reply(&late), None);
    assert_eq!(client.handle_reply(b"garbage"), None);
}
