//! Audio in tests: tones written to WAV files for phones to play, and what a recording heard.

use openline_phone::audio::tone::{share_at, sine};
use std::path::Path;

/// Writes `seconds` of a `frequency` tone as a 48 kHz mono WAV.
pub fn tone_wav(path: &Path, frequency: f64, seconds: usize) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in sine(frequency, 8_000.0, 48_000 * seconds) {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// A recording's samples at 48 kHz mono (any rate read is converted the way the phone does).
pub fn recording(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    // A recording still being written (its header not yet final) reads up to where it got.
    let samples: Vec<i16> = r.samples::<i16>().map_while(Result::ok).collect();
    let mono: Vec<i16> = samples
        .chunks(usize::from(spec.channels))
        .map(|c| c[0])
        .collect();
    if spec.sample_rate == 48_000 {
        return mono;
    }
    let factor = (48_000 / spec.sample_rate) as usize;
    mono.iter()
        .flat_map(|&s| std::iter::repeat_n(s, factor))
        .collect()
}

/// The loudest second's share at `frequency`, and how much of the recording is not silence.
pub fn hears(samples: &[i16], frequency: f64) -> (f64, f64) {
    let best = samples
        .chunks(48_000)
        .filter(|c| c.len() == 48_000)
        .map(|c| share_at(frequency, c))
        .fold(0.0, f64::max);
    let loud = samples.iter().filter(|s| s.unsigned_abs() > 500).count() as f64;
    (best, loud / samples.len().max(1) as f64)
}
