//! rtpengine's "ng" control protocol, sans-IO: a datagram `COOKIE BENCODED-DICT` in, the reply
//! `COOKIE BENCODED-DICT` out. Commands: ping, offer, answer, delete, query, statistics. So Kamailio's
//! rtpengine module can drive this relay, and the proxy could drive a real rtpengine.

use super::bencode::Bencode;
use super::calls::{Calls, ControlError};
use std::time::Instant;

/// The largest control datagram answered (an offer carries an SDP: a few KiB).
pub const MAX_REQUEST: usize = 64 * 1024;

/// Answers one control datagram; None when it has no cookie to answer with.
pub fn handle(calls: &mut Calls, now: Instant, datagram: &[u8]) -> Option<Vec<u8>> {
    let space = datagram.iter().position(|&b| b == b' ')?;
    let (cookie, body) = (&datagram[..space], &datagram[space + 1..]);
    if cookie.is_empty() || datagram.len() > MAX_REQUEST {
        return None;
    }
    let reply = match Bencode::decode(body) {
        Ok((request @ Bencode::Dict(_), _)) => command(calls, now, &request),
        Ok(_) => error("the request is not a dictionary"),
        Err(e) => error(&e.to_string()),
    };
    let mut out = Vec::with_capacity(cookie.len() + 1 + 256);
    out.extend_from_slice(cookie);
    out.push(b' ');
    Bencode::Dict(reply).encode(&mut out);
    Some(out)
}

type Reply<'a> = Vec<(&'a [u8], Bencode<'a>)>;

fn ok(mut rest: Reply<'_>) -> Reply<'_> {
    rest.insert(0, (b"result", Bencode::text("ok")));
    rest
}

fn error(reason: &str) -> Reply<'static> {
    vec![
        (b"result", Bencode::text("error")),
        (b"error-reason", Bencode::text(reason)),
    ]
}

fn int(n: u64) -> Bencode<'static> {
    Bencode::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// One side's counters as a dictionary.
fn counters(c: crate::relay::Counters) -> Bencode<'static> {
    Bencode::Dict(vec![
        (b"packets", int(c.packets)),
        (b"bytes", int(c.bytes)),
        (b"dropped", int(c.dropped)),
    ])
}

/// Whether an offer's receiver is a browser, from rtpengine's flags: DTLS-SRTP named
/// (`UDP/TLS/RTP/SAVPF`), or Kamailio's shorter `RTP/SAVPF` with ICE forced, which rtpengine
/// also makes DTLS-SRTP (without ICE, `RTP/SAVP[F]` is SDES to a phone).
fn to_browser(proto: &str, ice: Option<&str>) -> bool {
    proto.starts_with("UDP/TLS/RTP/SAVP") || (proto == "RTP/SAVPF" && ice == Some("force"))
}

fn command<'a>(calls: &mut Calls, now: Instant, request: &Bencode<'a>) -> Reply<'a> {
    let text = |key: &str| request.get(key).and_then(Bencode::as_str);
    let Some(name) = text("command") else {
        return error("no command");
    };
    let call_id = text("call-id");
    let sdp = || match request.get("sdp") {
        Some(Bencode::Bytes(b)) => Ok(b.as_ref()),
        _ => Err("no sdp"),
    };
    let described = |r: Result<String, ControlError>| match r {
        Ok(sdp) => ok(vec![(b"sdp", Bencode::text(sdp))]),
        Err(e) => error(&e.to_string()),
    };
    match (name, call_id) {
        ("ping", _) => vec![(b"result", Bencode::text("pong"))],
        ("offer", Some(call_id)) => match (text("from-tag"), sdp()) {
            // rtpengine's way to make a WebRTC bridge: the receiver's transport named.
            (Some(from), Ok(sdp)) => match text("transport-protocol") {
                Some(proto) => described(calls.offer_to(
                    now,
                    (call_id, from),
                    sdp,
                    to_browser(proto, text("ICE")),
                )),
                None => described(calls.offer(now, call_id, from, sdp)),
            },
            _ => error("offer needs from-tag and sdp"),
        },
        ("answer", Some(call_id)) => match (text("to-tag"), sdp()) {
            (Some(to), Ok(sdp)) => described(calls.answer(now, call_id, to, sdp)),
            _ => error("answer needs to-tag and sdp"),
        },
        ("delete", Some(call_id)) => match calls.delete(call_id) {
            Ok(_) => ok(Vec::new()),
            Err(e) => error(&e.to_string()),
        },
        ("query", Some(call_id)) => match calls.counters(call_id) {
            Some(streams) => {
                let list = streams
                    .into_iter()
                    .map(|[offerer, answerer]| {
                        Bencode::Dict(vec![
                            (b"offerer", counters(offerer)),
                            (b"answerer", counters(answerer)),
                        ])
                    })
                    .collect();
                ok(vec![(b"streams", Bencode::List(list))])
            }
            None => error("unknown call-id"),
        },
        ("statistics", _) => {
            let [offerer, answerer] = calls.relay().totals();
            ok(vec![
                (b"sessions", int(calls.relay().len() as u64)),
                (b"offerer", counters(offerer)),
                (b"answerer", counters(answerer)),
            ])
        }
        ("offer" | "answer" | "delete" | "query", None) => error("no call-id"),
        _ => error("Unrecognized command"),
    }
}

#[cfg(test)]
mod tests;
