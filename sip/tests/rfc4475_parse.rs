//! Every RFC 4475 torture message through the parser alone: the valid ones parse, the invalid
//! ones are refused (or, where RFC 4475 allows a liberal reading, at least survive), and every
//! parsed message prints to something that parses back the same.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot read its corpus should fail loudly

use openline_sip::Message;
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/rfc4475")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(corpus().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn index() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(corpus().join("INDEX.tsv")).expect("INDEX.tsv");
    text.lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split('\t');
            (f.next().unwrap().to_string(), f.nth(1).unwrap().to_string())
        })
        .collect()
}

#[test]
fn valid_messages_parse_and_round_trip() {
    let entries = index();
    assert_eq!(entries.len(), 49, "the corpus has all 49 messages");
    for (file, answer) in &entries {
        if !(answer == "not 400" || file.starts_with("valid/")) {
            continue;
        }
        let bytes = read(file);
        let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let printed = m.to_bytes();
        let again = Message::parse(&printed).unwrap_or_else(|e| panic!("{file} reprinted: {e}"));
        assert_eq!(again.start, m.start, "{file}");
        assert_eq!(again.body, m.body, "{file}");
        assert_eq!(again.top_via, m.top_via, "{file}");
        assert_eq!(again.cseq, m.cseq, "{file}");
        assert_eq!(again.call_id, m.call_id, "{file}");
        assert_eq!(again.to_bytes(), printed, "{file}: printing is stable");
    }
}

#[test]
fn invalid_messages_are_refused() {
    // Each file with the error the parser must report.
    let cases = [
        ("invalid/badinv01.dat", "malformed Via header"),
        ("invalid/clerr.dat", "Content-Length larger than the body"),
        ("invalid/ncl.dat", "malformed Content-Length header"),
        ("invalid/scalar02.dat", "malformed CSeq header"),
        ("invalid/scalarlg.dat", "malformed CSeq header"),
        ("invalid/quotbal.dat", "malformed To header"),
        ("invalid/ltgtruri.dat", "malformed Request-URI"),
        ("invalid/lwsruri.dat", "malformed start line"),
        ("invalid/lwsstart.dat", "malformed start line"),
        ("invalid/trws.dat", "malformed start line"),
        ("invalid/escruri.dat", "malformed Request-URI"),
        ("invalid/badaspec.dat", "malformed To header"),
        ("invalid/baddate.dat", "malformed Date header"),
        ("invalid/regbadct.dat", "malformed Contact header"),
        ("invalid/baddn.dat", "malformed From header"),
        ("invalid/badvers.dat", "unsupported SIP version"),
        (
            "invalid/mismatch01.dat",
            "CSeq method does not match the request method",
        ),
        (
            "invalid/mismatch02.dat",
            "CSeq method does not match the request method",
        ),
        ("invalid/bigcode.dat", "malformed start line"),
        ("application/insuf.dat", "missing Call-ID header"),
        ("application/multi01.dat", "duplicate CSeq header"),
        ("application/mcl01.dat", "duplicate Content-Length header"),
    ];
    for (file, why) in cases {
        let bytes = read(file);
        // What the endpoint does before making a transaction: parse, then check the rest.
        let err = Message::parse(&bytes)
            .and_then(|m| m.check_headers())
            .expect_err(file);
        assert_eq!(err.to_string(), why, "{file}");
    }
}
