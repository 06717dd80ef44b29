#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // Instant::now() starts virtual time
//! Quality in virtual time: streams with loss, reordering, jitter, wrap and restarts.

use super::*;

/// An RTP packet: PCMU, `seq`, `timestamp`, `ssrc`, 160 bytes of payload.
fn rtp(seq: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + 160, 0xff);
    p
}

/// Sends `count` packets every 20 ms from `seq`, skipping those `lose` says: the last instant.
fn stream(
    r: &mut Receiving,
    start: Instant,
    (seq, count): (u16, u16),
    ssrc: u32,
    lose: impl Fn(u16) -> bool,
) -> Instant {
    let mut at = start;
    for i in 0..count {
        at = start + Duration::from_millis(20 * u64::from(i));
        if !lose(i) {
            let s = seq.wrapping_add(i);
            r.rtp(at, &rtp(s, u32::from(i) * 160, ssrc));
        }
    }
    at
}

#[test]
fn a_clean_stream_has_no_loss_no_jitter_and_a_toll_quality_score() {
    let mut r = Receiving::default();
    let t0 = Instant::now();
    let end = stream(&mut r, t0, (65_000, 1000), 7, |_| false);
    let q = r.quality(end);
    assert_eq!((q.packets, q.lost), (1000, 0), "across the sequence wrap");
    assert_eq!(q.loss, 0.0);
    assert!(q.jitter_ms < 0.01, "{}", q.jitter_ms);
    assert!(q.mos > 4.3 && q.r_factor > 90.0, "{q:?}");
    assert_eq!(q.silent_for, Some(Duration::ZERO));
}

#[test]
fn one_in_twenty_lost_reads_five_percent_and_scores_lower() {
    let mut r = Receiving::default();
    let t0 = Instant::now();
    let end = stream(&mut r, t0, (1, 2000), 7, |i| i % 20 == 5);
    let q = r.quality(end);
    assert_eq!(q.lost, 100);
    assert!((q.loss - 0.05).abs() < 0.001, "{}", q.loss);
    assert!(q.mos < 4.0 && q.mos > 3.3, "{q:?}");
}

#[test]
fn reordering_and_duplicates_are_not_loss_and_a_new_source_starts_afresh() {
    let mut r = Receiving::default();
    let t0 = Instant::now();
    for (i, seq) in [1u16, 2, 4, 3, 5, 5, 6].into_iter().enumerate() {
        let at = t0 + Duration::from_millis(20 * i as u64);
        r.rtp(at, &rtp(seq, u32::from(seq) * 160, 9));
    }
    let q = r.quality(t0);
    assert_eq!((q.packets, q.lost), (6, 0));
    // A new SSRC (the other phone's transfer, a re-INVITE) at another sequence: no loss
    // invented across the jump; its own gap counts.
    for seq in [40_000u16, 40_001, 40_003] {
        r.rtp(t0, &rtp(seq, 0, 10));
    }
    let q = r.quality(t0);
    assert_eq!((q.packets, q.lost), (9, 1));
}

#[test]
fn late_packets_show_as_jitter_in_milliseconds() {
    let mut r = Receiving::default();
    let t0 = Instant::now();
    // Every other packet 10 ms late.
    for i in 0..500u16 {
        let late = if i % 2 == 1 { 10 } else { 0 };
        let at = t0 + Duration::from_millis(20 * u64::from(i) + late);
        r.rtp(at, &rtp(i, u32::from(i) * 160, 3));
    }
    let q = r.quality(t0 + Duration::from_secs(11));
    // |D| is 10 ms for every packet: J converges to 10 ms.
    assert!((q.jitter_ms - 10.0).abs() < 0.5, "{}", q.jitter_ms);
    assert_eq!(
        q.silent_for,
        Some(Duration::from_millis(1_010)),
        "the last came at 9.99 s"
    );
}

#[test]
fn a_receiver_report_and_voip_metrics_are_read() {
    let mut r = Receiving::default();
    // RR: V=2, RC=1, PT=201, length 7 words; sender SSRC; one block: fraction 13/256
    // (about 5 %), cumulative 42, highest seq, jitter 80, LSR, DLSR.
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 13, 0, 0, 42];
    rr.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0]);
    // XR: V=2, PT=207, length 10 words; sender SSRC; VoIP metrics block (BT 7, 8 words).
    let mut xr = vec![0x80, 207, 0, 10, 0, 0, 0, 1, 7, 0, 0, 8];
    let mut metrics = vec![0u8; 32];
    metrics[20] = 80; // R factor
    metrics[22] = 41; // MOS-LQ 4.1
    xr.extend_from_slice(&metrics);
    let compound = [rr, xr].concat();
    r.rtcp(&compound);
    let q = r.quality(Instant::now());
    let reported = q.reported.unwrap();
    assert!((reported.fraction_lost - 0.0508).abs() < 0.001);
    assert_eq!((reported.cumulative_lost, reported.jitter), (42, 80));
    assert_eq!(reported.xr, Some((80, 4.1)));
    // Garbage reads as nothing and keeps what was known.
    r.rtcp(&[0x81, 201, 0, 200, 1, 2]);
    assert_eq!(r.quality(Instant::now()).reported, Some(reported));
    assert_eq!(q.silent_for, None, "no RTP yet");
}

#[test]
fn the_e_model_scores_loss_and_delay() {
    assert!((r_factor(0.0, 0.0) - 92.5).abs() < 0.1);
    assert!(mos(r_factor(0.0, 0.0)) > 4.3);
    assert!(mos(r_factor(0.2, 0.0)) < 2.6);
    assert!(r_factor(0.0, 200.0) < r_factor(0.0, 10.0));
    assert_eq!(mos(-5.0), 1.0);
    assert_eq!(mos(120.0), 4.5);
}
