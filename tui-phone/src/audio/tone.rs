//! Test tones and finding them: a sine at 48 kHz, and the share of a signal's energy at one
//! frequency (Goertzel), which is how the tests hear a call's audio.

use super::codec::RATE;

/// `len` samples of a sine at `frequency` Hz and `amplitude` (of 32,767).
pub fn sine(frequency: f64, amplitude: f64, len: usize) -> Vec<i16> {
    (0..len)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            (amplitude * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16
        })
        .collect()
}

/// The share (0 to 1) of the energy of `samples` (48 kHz) that lies at `frequency`: near 1
/// for a clean tone at that frequency, near 0 for silence or other sounds.
pub fn share_at(frequency: f64, samples: &[i16]) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * frequency / f64::from(RATE)).cos();
    let (mut s1, mut s2, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
        total += x * x;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    if total <= 0.0 {
        return 0.0;
    }
    2.0 * power / (samples.len() as f64 * total)
}
