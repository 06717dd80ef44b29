//! Where a call's sound comes from and goes to. The media session asks for one 20 ms frame to
//! send and hands over one to play at each tick; WAV files (for machines without a sound card,
//! and for tests) and silence are here.

use super::codec::{FRAME, RATE};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// A sound source and sink at 48 kHz mono.
pub trait AudioDevice {
    /// A call's audio starts: sources start from their beginning.
    fn call_started(&mut self) {}
    /// The next frame to send.
    fn capture(&mut self, frame: &mut [i16; FRAME]);
    /// A frame to play.
    fn play(&mut self, frame: &[i16; FRAME]);
    /// A call's audio stopped: what was played is made durable.
    fn call_ended(&mut self) {}
}

/// Nothing in, nothing out.
#[derive(Debug, Default)]
pub struct Silence;

impl AudioDevice for Silence {
    fn capture(&mut self, frame: &mut [i16; FRAME]) {
        frame.fill(0);
    }
    fn play(&mut self, _frame: &[i16; FRAME]) {}
}

/// Why a WAV file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct WavError {
    path: String,
    source: hound::Error,
}

/// `--audio-in FILE.wav` (played into each call, then silence) and `--audio-out FILE.wav`
/// (what calls play, 48 kHz mono 16-bit).
pub struct WavFiles {
    input: Vec<i16>,
    position: usize,
    output: Option<hound::WavWriter<BufWriter<File>>>,
}

impl WavFiles {
    /// Reads `input` (any rate, mono or more channels, integer or float samples) and creates
    /// `output`.
    pub fn open(input: Option<&Path>, output: Option<&Path>) -> Result<Self, WavError> {
        let input = match input {
            Some(path) => read_wav(path).map_err(|source| WavError {
                path: path.display().to_string(),
                source,
            })?,
            None => Vec::new(),
        };
        let output = match output {
            Some(path) => Some(
                hound::WavWriter::create(
                    path,
                    hound::WavSpec {
                        channels: 1,
                        sample_rate: RATE,
                        bits_per_sample: 16,
                        sample_format: hound::SampleFormat::Int,
                    },
                )
                .map_err(|source| WavError {
                    path: path.display().to_string(),
                    source,
                })?,
            ),
            None => None,
        };
        Ok(WavFiles {
            input,
            position: 0,
            output,
        })
    }
}

impl AudioDevice for WavFiles {
    fn call_started(&mut self) {
        self.position = 0;
    }

    fn capture(&mut self, frame: &mut [i16; FRAME]) {
        let available = self.input.len().saturating_sub(self.position).min(FRAME);
        frame[..available].copy_from_slice(&self.input[self.position..self.position + available]);
        frame[available..].fill(0);
        self.position += available;
    }

    fn play(&mut self, frame: &[i16; FRAME]) {
        if let Some(w) = &mut self.output {
            for &s in frame {
                if w.write_sample(s).is_err() {
                    self.output = None; // a full disk ends the recording, not the call
                    return;
                }
            }
        }
    }

    fn call_ended(&mut self) {
        if let Some(w) = &mut self.output {
            // Rewrites the header's lengths: the file is valid from here on.
            let _ = w.flush();
        }
    }
}

/// A WAV file as 48 kHz mono samples (channels mixed, the rate converted linearly).
fn read_wav(path: &Path) -> Result<Vec<i16>, hound::Error> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    let mono: Vec<f32> = samples
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect();
    let ratio = f64::from(spec.sample_rate.max(1)) / f64::from(RATE);
    let len = (mono.len() as f64 / ratio) as usize;
    Ok((0..len)
        .map(|i| {
            let at = i as f64 * ratio;
            let j = at as usize;
            let frac = (at - j as f64) as f32;
            let a = mono.get(j).copied().unwrap_or(0.0);
            let b = mono.get(j + 1).copied().unwrap_or(a);
            ((a + (b - a) * frac) * 32_767.0).clamp(-32_768.0, 32_767.0) as i16
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audio::tone::share_at;

    #[test]
    fn an_8_khz_stereo_tone_reads_as_the_same_tone_at_48_khz() {
        let dir = std::env::temp_dir().join(format!("tui-phone-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..8_000 {
            let s = (8_000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8_000.0).sin())
                as i16;
            w.write_sample(s).unwrap();
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let mut files = WavFiles::open(Some(&path), Some(&dir.join("out.wav"))).unwrap();
        let mut frame = [0i16; FRAME];
        let mut got = Vec::new();
        for _ in 0..60 {
            files.capture(&mut frame);
            got.extend_from_slice(&frame);
            files.play(&frame);
        }
        assert!(share_at(440.0, &got[..RATE as usize]) > 0.9);
        assert!(
            got[RATE as usize + 10..].iter().all(|&s| s == 0),
            "silence after the file"
        );
        files.call_ended();
        let back: Vec<i16> = hound::WavReader::open(dir.join("out.wav"))
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(back.len(), 60 * FRAME);
        assert!(share_at(440.0, &back[..RATE as usize]) > 0.9);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
