//! Every RFC 4475 message over UDP and over TCP: the status we answer, per message, and that the
//! RFC allows it (INDEX.tsv); afterwards the server still answers OPTIONS.

use openline_tests::subject::Subject;
use openline_tests::wire::{self, call_id, recv_until, status};
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

/// What we answer to each message: the final status, or `None` for no answer at all.
/// INVITEs also get a 100 first. Differences between UDP and TCP are in `tcp_override`.
const EXPECTED: &[(&str, Option<u16>)] = &[
    ("valid/wsinv.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/intmeth.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/esc01.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/escnull.dat", Some(403)), // REGISTER for a domain not served here
    ("valid/esc02.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/lwsdisp.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/longreq.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/dblreq.dat", Some(403)), // REGISTER for a domain not served here
    ("valid/semiuri.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/transports.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/mpart01.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("valid/unreason.dat", None),
    ("valid/noreason.dat", None),
    ("invalid/badinv01.dat", None), // its only Via is the broken part: no one to answer
    ("invalid/clerr.dat", Some(400)),
    ("invalid/ncl.dat", Some(400)),
    ("invalid/scalar02.dat", Some(400)),
    ("invalid/scalarlg.dat", None),
    ("invalid/quotbal.dat", Some(400)),
    ("invalid/ltgtruri.dat", Some(400)),
    ("invalid/lwsruri.dat", Some(400)),
    ("invalid/lwsstart.dat", Some(400)),
    ("invalid/trws.dat", Some(400)),
    ("invalid/escruri.dat", Some(400)),
    ("invalid/baddate.dat", Some(400)),
    ("invalid/regbadct.dat", Some(400)),
    ("invalid/badaspec.dat", Some(400)),
    ("invalid/baddn.dat", Some(400)),
    ("invalid/badvers.dat", Some(505)), // RFC 4475 3.1.2.16: "should respond with 505"
    ("invalid/mismatch01.dat", Some(400)),
    ("invalid/mismatch02.dat", Some(400)),
    ("invalid/bigcode.dat", None),
    ("transaction/badbranch.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("application/insuf.dat", Some(400)),
    ("application/unkscm.dat", Some(416)),
    ("application/novelsc.dat", Some(416)),
    ("application/unksm2.dat", Some(403)), // REGISTER for a domain not served here
    ("application/bext01.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers (Require is for UASs)
    ("application/invut.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("application/regaut01.dat", Some(403)), // REGISTER for a domain not served here
    ("application/multi01.dat", Some(400)),
    ("application/mcl01.dat", Some(400)),
    ("application/bcast.dat", None),
    ("application/zeromf.dat", Some(483)), // RFC 4475 3.3.14: a proxy answers 483
    ("application/cparam01.dat", Some(403)), // REGISTER for a domain not served here
    ("application/cparam02.dat", Some(403)), // REGISTER for a domain not served here
    ("application/regescrt.dat", Some(403)), // REGISTER for a domain not served here
    ("application/sdp01.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
    ("compatibility/inv2543.dat", Some(403)), // for a foreign domain: a proxy never relays for strangers
];

/// Over a stream, a Content-Length larger than what was sent means "wait for the rest".
fn tcp_override(file: &str) -> Option<Option<u16>> {
    (file == "invalid/clerr.dat").then_some(None)
}

fn corpus(file: &str) -> Vec<u8> {
    std::fs::read(openline_tests::corpora().join("rfc4475").join(file)).unwrap()
}

/// INDEX.tsv: what RFC 4475 allows for each file.
fn allowed() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(openline_tests::corpora().join("rfc4475/INDEX.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect()
}

fn permitted_by_rfc(answer: &str, got: Option<u16>) -> bool {
    match answer {
        "not 400" => got.is_some() && got != Some(400),
        "400" => got == Some(400),
        "400 or discard" => matches!(got, None | Some(400) | Some(505)),
        a if a.starts_with("none") => got.is_none(),
        _ => true,
    }
}

#[test]
fn the_expectations_cover_the_corpus_and_agree_with_the_rfc() {
    let index = allowed();
    assert_eq!(index.len(), EXPECTED.len());
    for (file, answer) in &index {
        let (_, ours) = EXPECTED
            .iter()
            .find(|(f, _)| f == file)
            .unwrap_or_else(|| panic!("{file} has no expectation"));
        assert!(
            permitted_by_rfc(answer, *ours),
            "{file}: we expect {ours:?}, RFC 4475 says {answer}"
        );
        if let Some(tcp) = tcp_override(file) {
            assert!(permitted_by_rfc(answer, tcp), "{file} over TCP");
        }
    }
}

/// The replies to `msg` among `got`: same Call-ID (or both without one).
fn replies_to<'a>(msg: &[u8], got: &'a [Vec<u8>]) -> Vec<&'a Vec<u8>> {
    let id = call_id(msg);
    got.iter().filter(|r| call_id(r) == id).collect()
}

fn final_status(replies: &[&Vec<u8>]) -> Option<u16> {
    replies.iter().filter_map(|r| status(r)).find(|&c| c >= 200)
}

/// What is wrong with the replies to one message, if anything: the final status must be the
/// expected one, and a message we do not expect to refuse must never see a 400.
fn judge(file: &str, expected: Option<u16>, replies: &[&Vec<u8>]) -> Option<String> {
    let stray_400 = expected != Some(400) && replies.iter().any(|r| status(r) == Some(400));
    (final_status(replies) != expected || stray_400).then(|| {
        let lines: Vec<String> = replies.iter().map(|r| wire::first_line(r)).collect();
        format!("{file}: expected {expected:?}, got {lines:?}")
    })
}

// Several corpus messages share branch, sent-by and method (cparam01/cparam02,
// escnull/regescrt, unkscm/novelsc): by RFC 3261 17.2.3 the second is a retransmission of the
// first. They are meant as independent tests, so each message gets a fresh server.

#[test]
fn rfc4475_over_udp() {
    crate::require_private_network();
    // Answers go to the source address at the Via's port: 5060 by default, 5050 for quotbal,
    // 5061 for a Via that says TLS, our own 5060 when rport is asked for.
    let main = UdpSocket::bind("127.0.0.1:5060").expect("bind 5060 (inside netns-run)");
    let others: Vec<UdpSocket> = [5050, 5061, 5070]
        .iter()
        .map(|p| UdpSocket::bind(("127.0.0.1", *p)).unwrap())
        .collect();
    let sockets: Vec<&UdpSocket> = std::iter::once(&main).chain(others.iter()).collect();
    let mut failures = Vec::new();
    for (n, (file, expected)) in EXPECTED.iter().enumerate() {
        let mut server = Subject::start(&[]);
        let msg = corpus(file);
        main.send_to(&msg, server.udp).unwrap();
        // A probe after it: once its answer is back, every answer to the message is too.
        let probe_id = format!("probe-{n}");
        main.send_to(
            &wire::options(server.udp, main.local_addr().unwrap(), "UDP", &probe_id),
            server.udp,
        )
        .unwrap();
        let got = recv_until(&sockets, Duration::from_secs(5), |m| {
            call_id(m).as_deref() == Some(&probe_id)
        });
        assert!(
            got.iter().any(|m| call_id(m).as_deref() == Some(&probe_id)),
            "{file}: server stopped answering"
        );
        failures.extend(judge(file, *expected, &replies_to(&msg, &got)));
        assert!(server.is_running(), "{file}: server died");
        assert_eq!(
            server.stop().and_then(|s| s.code()),
            Some(0),
            "{file}: clean exit on SIGTERM"
        );
    }
    assert!(failures.is_empty(), "UDP:\n{}", failures.join("\n"));
}

#[test]
fn rfc4475_over_tcp() {
    crate::require_private_network();
    let mut failures = Vec::new();
    for (file, expected) in EXPECTED {
        let server = Subject::start(&[]);
        let expected = tcp_override(file).unwrap_or(*expected);
        let msg = corpus(file);
        let mut conn = TcpStream::connect(server.tcp).unwrap();
        conn.write_all(&msg).unwrap();
        let id = call_id(&msg);
        let wait = if expected.is_some() {
            Duration::from_secs(5)
        } else {
            Duration::from_millis(300)
        };
        let (got, _) = wire::read_responses(&mut conn, wait, |r| {
            call_id(r) == id && status(r).is_some_and(|c| c >= 200)
        });
        failures.extend(judge(file, expected, &replies_to(&msg, &got)));
        assert_eq!(
            wire::tcp_options_status(server.tcp, "after"),
            Some(200),
            "{file}: still answering"
        );
    }
    assert!(failures.is_empty(), "TCP:\n{}", failures.join("\n"));
}
