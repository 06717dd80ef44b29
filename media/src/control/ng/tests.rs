#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::relay::{PortPool, Relay};
use std::time::Duration;

fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    *T0.get_or_init(Instant::now)
}

fn calls() -> Calls {
    let relay = Relay::new(PortPool::new(30000, 30019), Duration::from_secs(60));
    Calls::new(relay, "127.0.0.1".parse().unwrap())
}

/// Sends `dict` (bencoded by hand, as a client would) with cookie `c1`; the reply's dict.
fn ask(calls: &mut Calls, dict: &str) -> String {
    let reply = handle(calls, t0(), format!("c1 {dict}").as_bytes()).expect("a reply");
    let text = String::from_utf8(reply).unwrap();
    text.strip_prefix("c1 ")
        .expect("the same cookie")
        .to_string()
}

fn bytes(s: &str) -> String {
    format!("{}:{s}", s.len())
}

#[test]
fn ping_offer_answer_query_delete_as_rtpengine_clients_send_them() {
    let mut c = calls();
    assert_eq!(ask(&mut c, "d7:command4:pinge"), "d6:result4:ponge");
    let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
    let offer = ask(
        &mut c,
        &format!(
            "d7:command5:offer7:call-id2:c18:from-tag1:a3:sdp{}e",
            bytes(sdp)
        ),
    );
    assert!(offer.starts_with("d6:result2:ok3:sdp"), "{offer}");
    assert!(offer.contains("m=audio 3000"), "the relay's port: {offer}");
    let answer = ask(
        &mut c,
        &format!(
            "d7:command6:answer7:call-id2:c18:from-tag1:a6:to-tag1:b3:sdp{}e",
            bytes(sdp)
        ),
    );
    assert!(answer.starts_with("d6:result2:ok3:sdp"), "{answer}");
    let query = ask(&mut c, "d7:command5:query7:call-id2:c1e");
    assert!(query.contains("7:packetsi0e"), "{query}");
    assert_eq!(
        ask(&mut c, "d7:command6:delete7:call-id2:c1e"),
        "d6:result2:oke"
    );
    assert!(c.is_empty());
    let stats = ask(&mut c, "d7:command10:statisticse");
    assert!(stats.starts_with("d6:result2:ok8:sessionsi0e"), "{stats}");
}

#[test]
fn what_cannot_be_done_is_an_error_reply_and_garbage_gets_none() {
    let mut c = calls();
    let reply = ask(&mut c, "d7:command6:delete7:call-id4:nonee");
    assert_eq!(reply, "d6:result5:error12:error-reason15:unknown call-ide");
    assert!(ask(&mut c, "d7:command5:dance7:call-id1:xe").contains("Unrecognized command"));
    assert!(ask(&mut c, "d7:command5:offer7:call-id1:xe").contains("offer needs"));
    assert!(ask(&mut c, "li1ee").contains("not a dictionary"));
    assert!(ask(&mut c, "d7:command").contains("error"));
    let bad_sdp = ask(
        &mut c,
        &format!(
            "d7:command5:offer7:call-id1:x8:from-tag1:a3:sdp{}e",
            bytes("nonsense")
        ),
    );
    assert!(bad_sdp.contains("v=0"), "{bad_sdp}");
    assert_eq!(handle(&mut c, t0(), b"no-space-at-all"), None);
    assert_eq!(
        handle(&mut c, t0(), b" d7:command4:pinge"),
        None,
        "no cookie"
    );
}

#[test]
fn a_browser_receiver_is_told_by_dtls_srtp_or_kamailios_rtp_savpf_with_ice_forced() {
    assert!(super::to_browser("UDP/TLS/RTP/SAVPF", None));
    assert!(super::to_browser("UDP/TLS/RTP/SAVP", Some("remove")));
    assert!(super::to_browser("RTP/SAVPF", Some("force")));
    assert!(!super::to_browser("RTP/SAVPF", None), "SDES with feedback");
    assert!(!super::to_browser("RTP/SAVP", Some("force")));
    assert!(!super::to_browser("RTP/AVP", Some("force")));
}
