//! Parses the bench INVITE many times: a steady workload for callgrind or perf.
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let bytes = openline_bench::INVITE.as_bytes();
    let rsip_ok = rsip::SipMessage::try_from(bytes).is_ok();
    eprintln!("rsip parses the bench INVITE: {rsip_ok}");
    let mut total = 0u64;
    for _ in 0..n {
        if let Ok(m) = openline_sip::Message::parse(std::hint::black_box(bytes)) {
            total += u64::from(m.cseq.seq);
        }
    }
    println!("{total}");
}
