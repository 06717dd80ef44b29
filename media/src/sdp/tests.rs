#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

const OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
a=ice-options:trickle\r\n\
m=audio 49170 RTP/AVP 0 8 96\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=rtcp:49175\r\n\
a=candidate:1 1 UDP 2130706431 192.0.2.10 49170 typ host\r\n\
a=ice-ufrag:F7gI\r\n\
a=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
m=video 51372 RTP/AVP 99\r\n\
c=IN IP6 2001:db8::10\r\n\
a=rtcp-mux\r\n\
m=text 0 RTP/AVP 98\r\n";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn each_stream_says_where_its_rtp_and_rtcp_go() {
    let d = Description::parse(OFFER).unwrap();
    let media: Vec<&Media> = d.media().collect();
    assert_eq!(media.len(), 3);
    assert_eq!(media[0].kind, "audio");
    assert_eq!(media[0].rtp, sa("192.0.2.10:49170"));
    assert_eq!(media[0].rtcp, Some(sa("192.0.2.10:49175")), "a=rtcp");
    assert_eq!(media[1].rtp, sa("[2001:db8::10]:51372"), "its own c=");
    assert_eq!(media[1].rtcp, None, "rtcp-mux");
    assert!(media[1].rtcp_mux);
    assert_eq!(media[2].rtp.port(), 0, "off");
}

#[test]
fn the_rewrite_points_the_streams_at_the_relay_and_keeps_everything_else() {
    let d = Description::parse(OFFER).unwrap();
    let relay = |port| {
        Some(Relayed {
            addr: "203.0.113.1".parse().unwrap(),
            port,
        })
    };
    let out = d.rewrite(&[relay(30000), relay(30002), relay(30004)]);
    let again = Description::parse(&out).unwrap();
    let media: Vec<&Media> = again.media().collect();
    assert_eq!(media[0].rtp, sa("203.0.113.1:30000"));
    assert_eq!(media[0].rtcp, Some(sa("203.0.113.1:30001")));
    assert_eq!(
        media[1].rtp,
        sa("203.0.113.1:30002"),
        "IPv6 stream moved to the relay's v4"
    );
    assert_eq!(media[2].rtp.port(), 0, "a disabled stream stays disabled");
    // ICE is gone; SDES keys and codecs stay as they were.
    assert!(!out.contains("candidate") && !out.contains("ice-"), "{out}");
    assert!(out.contains(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
    ));
    assert!(out.contains("a=rtpmap:96 opus/48000/2\r\n"));
    // The origin names the relay too (its id and version stay: a re-offer still reads as one).
    assert!(out.starts_with("v=0\r\no=alice 2890844526 2890844526 IN IP4 203.0.113.1\r\n"));
    // Every live stream is relayed: the session c= names the relay too (the caller's
    // address is not handed on); each relayed stream has its own.
    assert!(!out.contains("c=IN IP4 192.0.2.10\r\n"), "{out}");
    assert_eq!(out.matches("c=IN IP4 203.0.113.1\r\n").count(), 3);
    assert!(!out.contains("2001:db8::10"));
    assert!(out.ends_with("\r\n"));
}

#[test]
fn a_stream_without_a_plan_is_left_alone() {
    let d = Description::parse(OFFER).unwrap();
    let out = d.rewrite(&[
        None,
        Some(Relayed {
            addr: "2001:db8::1".parse().unwrap(),
            port: 40000,
        }),
    ]);
    let again = Description::parse(&out).unwrap();
    let media: Vec<&Media> = again.media().collect();
    assert_eq!(media[0].rtp, sa("192.0.2.10:49170"));
    assert_eq!(media[0].rtcp, Some(sa("192.0.2.10:49175")));
    assert_eq!(media[1].rtp, sa("[2001:db8::1]:40000"));
    // The audio stream is not relayed: it still needs the session c=.
    assert!(out.contains("c=IN IP4 192.0.2.10\r\n"), "{out}");
}

#[test]
fn malformed_descriptions_are_refused_with_the_line() {
    assert_eq!(
        Description::parse("o=x\r\n").unwrap_err(),
        SdpError::NoVersion
    );
    assert_eq!(
        Description::parse("v=0\r\nnonsense\r\n").unwrap_err(),
        SdpError::BadLine(2)
    );
    assert_eq!(
        Description::parse("v=0\r\nm=audio port RTP/AVP 0\r\n").unwrap_err(),
        SdpError::BadMedia(2)
    );
    assert_eq!(
        Description::parse("v=0\r\nc=IN IP4 not-an-ip\r\n").unwrap_err(),
        SdpError::BadConnection(2)
    );
    assert_eq!(
        Description::parse("v=0\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap_err(),
        SdpError::NoConnection(1)
    );
    assert_eq!(
        Description::parse("v=0\r\nc=IN IP6 192.0.2.1\r\n").unwrap_err(),
        SdpError::BadConnection(2),
        "the family must match"
    );
    // LF-only descriptions from sloppy peers read, and are written back the same way.
    let lf = "v=0\nc=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 0\n";
    let out = Description::parse(lf).unwrap().rewrite(&[Some(Relayed {
        addr: "192.0.2.9".parse().unwrap(),
        port: 5000,
    })]);
    assert_eq!(
        out,
        "v=0\nc=IN IP4 192.0.2.9\nm=audio 5000 RTP/AVP 0\nc=IN IP4 192.0.2.9\n"
    );
}

proptest::proptest! {
    /// Whatever arrives, reading never panics, and what we write reads back with the relay's
    /// addresses in it.
    #[test]
    fn any_text_reads_or_is_refused_and_rewrites_read_back(
        lines in proptest::collection::vec("[a-z]=[ -~]{0,40}|m=audio [0-9]{1,5} RTP/AVP 0|c=IN IP4 10\\.0\\.0\\.[0-9]", 0..12)
    ) {
        let text = format!("v=0\r\n{}\r\n", lines.join("\r\n"));
        if let Ok(d) = Description::parse(&text) {
            let n = d.media().count();
            let plan = vec![Some(Relayed { addr: "192.0.2.7".parse().unwrap(), port: 40000 }); n];
            let out = d.rewrite(&plan);
            let again = Description::parse(&out).unwrap();
            for m in again.media() {
                proptest::prop_assert!(m.rtp.port() == 0 || m.rtp == "192.0.2.7:40000".parse().unwrap());
            }
        }
    }
}
