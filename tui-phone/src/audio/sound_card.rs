//! The sound card (cpal): the default input and output devices at whatever rate and channel
//! count they run, turned into the phone's 48 kHz mono frames and back. The device threads and
//! the phone meet in two short queues; when the phone is late the oldest sound goes, so the
//! delay stays bounded.

use super::codec::{FRAME, RATE};
use super::device::AudioDevice;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, SizedSample, Stream, StreamConfig};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// At most this much sound waits in either direction (200 ms).
const MOST: usize = RATE as usize / 5;

type Queue = Arc<Mutex<VecDeque<i16>>>;

/// The default devices, running.
pub struct SoundCard {
    _input: Stream,
    _output: Stream,
    captured: Queue,
    to_play: Queue,
}

fn push_bounded(queue: &Queue, samples: impl Iterator<Item = i16>) {
    if let Ok(mut q) = queue.lock() {
        q.extend(samples);
        let excess = q.len().saturating_sub(MOST);
        q.drain(..excess);
    }
}

impl SoundCard {
    /// Opens the default input and output devices; why not, when there are none or they
    /// refuse (a machine without a sound card).
    pub fn open() -> Result<Self, String> {
        // ALSA prints its own complaints on stderr when it finds no card, which would land on
        // the user's terminal: ask the kernel first (no /proc/asound: no sound in the kernel).
        #[cfg(target_os = "linux")]
        if std::fs::read_to_string("/proc/asound/cards")
            .map_or(true, |cards| cards.contains("no soundcards"))
        {
            return Err("no sound card".into());
        }
        let host = cpal::default_host();
        let input = host.default_input_device().ok_or("no sound input device")?;
        let output = host
            .default_output_device()
            .ok_or("no sound output device")?;
        let captured: Queue = Arc::default();
        let to_play: Queue = Arc::default();
        let in_config = input
            .default_input_config()
            .map_err(|e| format!("sound input: {e}"))?;
        let out_config = output
            .default_output_config()
            .map_err(|e| format!("sound output: {e}"))?;
        let input_stream = match in_config.sample_format() {
            SampleFormat::F32 => capture::<f32>(&input, in_config.config(), captured.clone()),
            SampleFormat::I16 => capture::<i16>(&input, in_config.config(), captured.clone()),
            other => Err(format!("input sample format {other} not handled")),
        }?;
        let output_stream = match out_config.sample_format() {
            SampleFormat::F32 => play::<f32>(&output, out_config.config(), to_play.clone()),
            SampleFormat::I16 => play::<i16>(&output, out_config.config(), to_play.clone()),
            other => Err(format!("output sample format {other} not handled")),
        }?;
        input_stream.play().map_err(|e| e.to_string())?;
        output_stream.play().map_err(|e| e.to_string())?;
        Ok(SoundCard {
            _input: input_stream,
            _output: output_stream,
            captured,
            to_play,
        })
    }
}

/// A sample as 16 bits, whatever the device gives.
trait AsI16: SizedSample + Send + 'static {
    fn to_i16(self) -> i16;
    fn from_i16(s: i16) -> Self;
}

impl AsI16 for f32 {
    fn to_i16(self) -> i16 {
        (self.clamp(-1.0, 1.0) * 32_767.0) as i16
    }
    fn from_i16(s: i16) -> Self {
        f32::from(s) / 32_768.0
    }
}

impl AsI16 for i16 {
    fn to_i16(self) -> i16 {
        self
    }
    fn from_i16(s: i16) -> Self {
        s
    }
}

/// The input stream: frames mixed to mono, taken at 48 kHz (nearest sample), queued.
fn capture<T: AsI16>(
    device: &cpal::Device,
    config: StreamConfig,
    queue: Queue,
) -> Result<Stream, String> {
    let channels = usize::from(config.channels.max(1));
    let step = f64::from(RATE) / f64::from(config.sample_rate.max(1));
    let mut phase = 0.0f64;
    device
        .build_input_stream(
            config,
            move |data: &[T], _| {
                let mut mono = Vec::with_capacity(data.len());
                for frame in data.chunks(channels) {
                    let sum: i32 = frame.iter().map(|s| i32::from(s.to_i16())).sum();
                    let value = (sum / frame.len() as i32) as i16;
                    phase += step;
                    while phase >= 1.0 {
                        mono.push(value);
                        phase -= 1.0;
                    }
                }
                push_bounded(&queue, mono.into_iter());
            },
            |_| {},
            None,
        )
        .map_err(|e| e.to_string())
}

/// The output stream: queued 48 kHz mono taken at the device's rate, on every channel;
/// silence when the queue runs dry.
fn play<T: AsI16>(
    device: &cpal::Device,
    config: StreamConfig,
    queue: Queue,
) -> Result<Stream, String> {
    let channels = usize::from(config.channels.max(1));
    let step = f64::from(RATE) / f64::from(config.sample_rate.max(1));
    let mut phase = 0.0f64;
    let mut current = 0i16;
    device
        .build_output_stream(
            config,
            move |data: &mut [T], _| {
                let Ok(mut q) = queue.lock() else {
                    return;
                };
                for frame in data.chunks_mut(channels) {
                    phase += step;
                    while phase >= 1.0 {
                        current = q.pop_front().unwrap_or(0);
                        phase -= 1.0;
                    }
                    frame.fill(T::from_i16(current));
                }
            },
            |_| {},
            None,
        )
        .map_err(|e| e.to_string())
}

impl AudioDevice for SoundCard {
    fn capture(&mut self, frame: &mut [i16; FRAME]) {
        frame.fill(0);
        if let Ok(mut q) = self.captured.lock() {
            let n = q.len().min(FRAME);
            for (slot, s) in frame.iter_mut().zip(q.drain(..n)) {
                *slot = s;
            }
        }
    }

    fn play(&mut self, frame: &[i16; FRAME]) {
        push_bounded(&self.to_play, frame.iter().copied());
    }
}
