//! openline-media relaying RTP between two parties, driven over the rtpengine ng protocol as
//! Kamailio's rtpengine module drives it: offer and answer rewritten to the relay, RTP both
//! ways, a third address after latching not forwarded (no RTP bleed), counters in query,
//! nothing forwarded after delete (issue #6 items 1, 2, 6).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// Sends an ng request with cookie `k` and returns the reply's dictionary text.
fn ng(control: &UdpSocket, to: SocketAddr, k: u32, dict: &str) -> String {
    control
        .send_to(format!("k{k} {dict}").as_bytes(), to)
        .unwrap();
    let mut buf = [0u8; 65_536];
    control
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (n, _) = control.recv_from(&mut buf).expect("an ng reply");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.strip_prefix(&format!("k{k} "))
        .expect("our cookie")
        .to_string()
}

fn bytes(s: &str) -> String {
    format!("{}:{s}", s.len())
}

/// The audio port of the SDP inside an ng reply.
fn audio_port(reply: &str) -> u16 {
    let at = reply.find("m=audio ").expect("an m=audio line") + 8;
    reply[at..].split(' ').next().unwrap().parse().unwrap()
}

fn rtp(seq: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, seq, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe];
    p.resize(172, seq);
    p
}

/// The next datagram on `s` within half a second.
fn next(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 2048];
    s.recv_from(&mut buf)
        .ok()
        .map(|(n, from)| (buf[..n].to_vec(), from))
}

#[test]
fn rtp_flows_both_ways_through_openline_media_and_a_stranger_is_not_relayed() {
    let mut media = openline_tests::media::Media::start(&["--ports", "42000-42099"]);
    let control_at = media.control;
    let control = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        ng(&control, control_at, 1, "d7:command4:pinge"),
        "d6:result4:ponge"
    );

    let (alice, bob, stranger) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let sdp_of = |s: &UdpSocket| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n",
            s.local_addr().unwrap().port()
        )
    };
    let offer = ng(
        &control,
        control_at,
        2,
        &format!(
            "d7:command5:offer7:call-id5:call18:from-tag5:alice3:sdp{}e",
            bytes(&sdp_of(&alice))
        ),
    );
    assert!(offer.starts_with("d6:result2:ok"), "{offer}");
    let answer = ng(
        &control,
        control_at,
        3,
        &format!(
            "d7:command6:answer7:call-id5:call18:from-tag5:alice6:to-tag3:bob3:sdp{}e",
            bytes(&sdp_of(&bob))
        ),
    );
    // Each party is sent the relay's port it is to send to.
    let relay = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let (alice_sends_to, bob_sends_to) = (relay(audio_port(&answer)), relay(audio_port(&offer)));
    assert_ne!(alice_sends_to, bob_sends_to);

    alice.send_to(&rtp(1), alice_sends_to).unwrap();
    let (got, from) = next(&bob).expect("bob gets alice's RTP");
    assert_eq!(got, rtp(1));
    assert_eq!(from, bob_sends_to, "from the relay port bob sends to");
    bob.send_to(&rtp(2), bob_sends_to).unwrap();
    assert_eq!(next(&alice).expect("alice gets bob's RTP").0, rtp(2));

    // Alice's leg is latched on her address: a stranger's packets there go nowhere.
    stranger.send_to(&rtp(3), alice_sends_to).unwrap();
    assert_eq!(next(&bob), None, "no RTP bleed");

    let query = ng(
        &control,
        control_at,
        4,
        "d7:command5:query7:call-id5:call1e",
    );
    assert!(
        query.contains("7:droppedi1e"),
        "the stranger's packet counted: {query}"
    );
    assert_eq!(
        ng(
            &control,
            control_at,
            5,
            "d7:command6:delete7:call-id5:call1e"
        ),
        "d6:result2:oke"
    );
    alice.send_to(&rtp(4), alice_sends_to).unwrap();
    assert_eq!(next(&bob), None, "nothing after delete");
    media.stop();
}
