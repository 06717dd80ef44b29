//! G.711 (ITU-T G.711) mu-law and A-law, sample by sample, and the 48 kHz <-> 8 kHz steps the
//! phone needs around them (it works at 48 kHz inside; a 6:1 box filter down, linear
//! interpolation up, which is plenty for telephone-band speech).

const BIAS: i32 = 0x84;
const CLIP: i32 = 32_635;

/// A linear sample as mu-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while s & mask == 0 && exponent > 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// A mu-law byte as a linear sample.
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = i32::from(!byte);
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0F;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// A linear sample as A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let segment = (0..8).find(|&seg| pcm < (0x20 << seg)).unwrap_or(8);
    if segment >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if segment < 2 { 1 } else { segment };
    let value = (segment << 4) | ((pcm >> shift) & 0x0F);
    (value as u8) ^ mask
}

/// An A-law byte as a linear sample.
pub fn alaw_decode(byte: u8) -> i16 {
    let a = i32::from(byte ^ 0x55);
    let mut t = (a & 0x0F) << 4;
    let segment = (a & 0x70) >> 4;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= segment - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// 48 kHz down to 8 kHz: the mean of each six samples.
pub fn down_to_8k(input: &[i16], out: &mut Vec<i16>) {
    out.extend(
        input
            .chunks(6)
            .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16),
    );
}

/// 8 kHz up to 48 kHz: straight lines between samples, starting from `previous` (the last
/// sample of the frame before), which is updated.
pub fn up_from_8k(input: &[i16], previous: &mut i16, out: &mut [i16]) {
    for (i, &s) in input.iter().enumerate() {
        let (a, b) = (i32::from(*previous), i32::from(s));
        for k in 0..6 {
            if let Some(slot) = out.get_mut(i * 6 + k) {
                *slot = (a + (b - a) * (k as i32 + 1) / 6) as i16;
            }
        }
        *previous = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_has_its_well_known_codes() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(alaw_decode(0xD5), 8);
    }

    #[test]
    fn every_code_decodes_and_encodes_back_to_itself() {
        for byte in 0..=255u8 {
            // mu-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes as 0xFF.
            if byte != 0x7F {
                assert_eq!(ulaw_encode(ulaw_decode(byte)), byte, "mu-law {byte:#x}");
            }
            assert_eq!(alaw_encode(alaw_decode(byte)), byte, "A-law {byte:#x}");
        }
    }

    #[test]
    fn round_trip_error_stays_within_the_step_size() {
        for s in (-32_000i32..32_000).step_by(97) {
            let s = s as i16;
            let u = i32::from(ulaw_decode(ulaw_encode(s)));
            let a = i32::from(alaw_decode(alaw_encode(s)));
            let bound = (i32::from(s).abs() / 16).max(16);
            assert!((u - i32::from(s)).abs() <= bound, "mu-law {s} -> {u}");
            assert!((a - i32::from(s)).abs() <= bound * 2, "A-law {s} -> {a}");
        }
    }

    #[test]
    fn resampling_keeps_a_constant_signal() {
        let mut low = Vec::new();
        down_to_8k(&[1000; 960], &mut low);
        assert_eq!(low, vec![1000; 160]);
        let mut previous = 1000;
        let mut high = [0i16; 960];
        up_from_8k(&low, &mut previous, &mut high);
        assert!(high.iter().all(|&s| s == 1000));
    }
}
