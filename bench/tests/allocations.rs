//! The routing path allocates nothing per header: parsing a message makes one allocation (the
//! header list), however many headers it has. Counted, not timed, so it is a test.

use openline_bench::INVITE;
use openline_sip::Message;

fn allocations_to_parse(bytes: &[u8]) -> u64 {
    let info = allocation_counter::measure(|| {
        let m = Message::parse(bytes);
        assert!(m.is_ok());
        std::hint::black_box(m.ok().map(|m| m.cseq.seq));
    });
    info.count_total
}

#[test]
fn parsing_allocates_once_whatever_the_header_count() {
    let base = allocations_to_parse(INVITE.as_bytes());
    assert_eq!(base, 1, "one Vec for the header list");
    // Twelve more headers, still within the initial capacity of 16: still one allocation.
    let extra: String = (0..3).map(|i| format!("X-Extra-{i}: v\r\nRecord-Route: <sip:p{i}.club-b.test;lr>\r\nRoute: <sip:r{i}.club-b.test;lr>\r\nVia: SIP/2.0/UDP p{i}.club-b.test;branch=z9hG4bK{i}\r\n")).collect();
    let bigger = INVITE.replacen("Max-Forwards", &format!("{extra}Max-Forwards"), 1);
    let count = allocations_to_parse(bigger.as_bytes());
    // The header list grows by doubling, never per header.
    assert!(
        count <= 2,
        "{count} allocations for {} headers",
        Message::parse(bigger.as_bytes())
            .map(|m| m.headers.len())
            .unwrap_or(0)
    );
}
