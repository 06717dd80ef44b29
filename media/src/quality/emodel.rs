//! The E-model (ITU-T G.107) reduced to what a relay can know: packet loss and jitter, with
//! G.711's equipment impairment (Ie 0, Bpl 25.1 with packet loss concealment, G.113
//! Appendix I) and a one-way delay guessed from packetization and a jitter buffer.

/// The R-factor for random `loss` (0 to 1) and `jitter_ms`.
pub fn r_factor(loss: f64, jitter_ms: f64) -> f64 {
    const R0_MINUS_IS: f64 = 93.2;
    const BPL: f64 = 25.1;
    let ppl = (loss * 100.0).clamp(0.0, 100.0);
    let ie_eff = 95.0 * ppl / (ppl + BPL);
    // 20 ms packets, a jitter buffer of twice the jitter, 10 ms for the network and codec.
    let delay = 30.0 + 2.0 * jitter_ms.max(0.0);
    let id = 0.024 * delay
        + if delay > 177.3 {
            0.11 * (delay - 177.3)
        } else {
            0.0
        };
    (R0_MINUS_IS - id - ie_eff).clamp(0.0, 100.0)
}

/// The MOS (1 to 4.5) for an R-factor (G.107 Annex B).
pub fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).clamp(1.0, 4.5)
    }
}
