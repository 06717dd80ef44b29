//! Bencode, as the rtpengine "ng" control protocol writes it. Ours, not a crate's: the decoders
//! we tried either have no depth limit (serde_bencode: about 1,000 nested `l` bytes overflow a
//! worker's stack, an abort no task boundary contains) or refuse dictionaries whose keys are
//! not sorted (bendy), which rtpengine's own clients send. Depth is bounded; nothing is copied.

/// A bencoded value borrowing from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bencode<'a> {
    /// A byte string (borrowed from the input, or owned when we built it).
    Bytes(std::borrow::Cow<'a, [u8]>),
    /// An integer.
    Int(i64),
    /// A list.
    List(Vec<Bencode<'a>>),
    /// A dictionary, keys in the order received.
    Dict(Vec<(&'a [u8], Bencode<'a>)>),
}

/// Why a value does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    /// The input ended inside a value.
    #[error("bencode ends too early")]
    Truncated,
    /// A byte no value starts or continues with, at this offset.
    #[error("bencode: unexpected byte at {0}")]
    Unexpected(usize),
    /// Nested deeper than allowed.
    #[error("bencode nested too deep")]
    TooDeep,
}

/// The deepest nesting accepted: ng messages are a dictionary of lists at most (flags,
/// replace), a few levels; anything deeper is hostile.
pub const MAX_DEPTH: usize = 8;

impl<'a> Bencode<'a> {
    /// Decodes one value at the start of `input`; the value and the bytes it took.
    pub fn decode(input: &'a [u8]) -> Result<(Self, usize), BencodeError> {
        let mut at = 0;
        let v = value(input, &mut at, 0)?;
        Ok((v, at))
    }

    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Bytes(b) => bytes(out, b),
            Bencode::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Bencode::List(items) => {
                out.push(b'l');
                for i in items {
                    i.encode(out);
                }
                out.push(b'e');
            }
            Bencode::Dict(pairs) => {
                out.push(b'd');
                for (k, v) in pairs {
                    bytes(out, k);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The value of `key` in a dictionary.
    pub fn get(&self, key: &str) -> Option<&Bencode<'a>> {
        match self {
            Bencode::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| *k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A byte string as text (None if not a string or not UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Bencode::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// A byte string value from text we own.
    pub fn text(s: impl Into<String>) -> Self {
        Bencode::Bytes(std::borrow::Cow::Owned(s.into().into_bytes()))
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

fn value<'a>(input: &'a [u8], at: &mut usize, depth: usize) -> Result<Bencode<'a>, BencodeError> {
    let Some(&first) = input.get(*at) else {
        return Err(BencodeError::Truncated);
    };
    match first {
        b'i' => {
            *at += 1;
            let end = find(input, *at, b'e')?;
            let text =
                std::str::from_utf8(&input[*at..end]).map_err(|_| BencodeError::Unexpected(*at))?;
            let n: i64 = text.parse().map_err(|_| BencodeError::Unexpected(*at))?;
            *at = end + 1;
            Ok(Bencode::Int(n))
        }
        b'0'..=b'9' => {
            let colon = find(input, *at, b':')?;
            let len: usize = std::str::from_utf8(&input[*at..colon])
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or(BencodeError::Unexpected(*at))?;
            let start = colon + 1;
            let end = start.checked_add(len).ok_or(BencodeError::Truncated)?;
            let b = input.get(start..end).ok_or(BencodeError::Truncated)?;
            *at = end;
            Ok(Bencode::Bytes(std::borrow::Cow::Borrowed(b)))
        }
        b'l' | b'd' => {
            if depth >= MAX_DEPTH {
                return Err(BencodeError::TooDeep);
            }
            *at += 1;
            let mut list = Vec::new();
            let mut dict = Vec::new();
            loop {
                match input.get(*at) {
                    None => return Err(BencodeError::Truncated),
                    Some(b'e') => {
                        *at += 1;
                        break;
                    }
                    Some(_) if first == b'l' => list.push(value(input, at, depth + 1)?),
                    Some(_) => {
                        let key_at = *at;
                        let Bencode::Bytes(std::borrow::Cow::Borrowed(key)) =
                            value(input, at, depth + 1)?
                        else {
                            return Err(BencodeError::Unexpected(key_at));
                        };
                        dict.push((key, value(input, at, depth + 1)?));
                    }
                }
            }
            Ok(if first == b'l' {
                Bencode::List(list)
            } else {
                Bencode::Dict(dict)
            })
        }
        _ => Err(BencodeError::Unexpected(*at)),
    }
}

fn find(input: &[u8], from: usize, byte: u8) -> Result<usize, BencodeError> {
    input[from..]
        .iter()
        .position(|&b| b == byte)
        .map(|p| from + p)
        .ok_or(BencodeError::Truncated)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_what_rtpengine_clients_write_and_writes_it_back() {
        let input =
            b"d7:command5:offer7:call-id3:abc5:flagsl13:trust-addresse3:sdp4:v=0\n3:ttli-5ee";
        let (v, n) = Bencode::decode(input).unwrap();
        assert_eq!(n, input.len());
        assert_eq!(v.get("command").and_then(Bencode::as_str), Some("offer"));
        assert_eq!(v.get("ttl"), Some(&Bencode::Int(-5)));
        assert_eq!(
            v.get("flags"),
            Some(&Bencode::List(vec![Bencode::Bytes(
                b"trust-address"[..].into()
            )]))
        );
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(out, input, "keys stay in the order received");
    }

    #[test]
    fn hostile_input_is_refused_not_followed() {
        assert_eq!(
            Bencode::decode(&[b'l'; 100_000]),
            Err(BencodeError::TooDeep)
        );
        assert_eq!(Bencode::decode(b"5:abc"), Err(BencodeError::Truncated));
        assert_eq!(
            Bencode::decode(b"99999999999999999999999:x"),
            Err(BencodeError::Unexpected(0))
        );
        assert_eq!(
            Bencode::decode(b"18446744073709551615:x"),
            Err(BencodeError::Truncated)
        );
        assert_eq!(Bencode::decode(b"i12"), Err(BencodeError::Truncated));
        assert_eq!(Bencode::decode(b"ixe"), Err(BencodeError::Unexpected(1)));
        assert_eq!(
            Bencode::decode(b"di1ei2ee"),
            Err(BencodeError::Unexpected(1)),
            "keys are strings"
        );
        assert_eq!(Bencode::decode(b"x"), Err(BencodeError::Unexpected(0)));
        assert_eq!(Bencode::decode(b""), Err(BencodeError::Truncated));
    }

    proptest::proptest! {
        #[test]
        fn anything_decodes_or_is_refused(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = Bencode::decode(&input);
        }
    }
}
