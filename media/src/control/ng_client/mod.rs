//! Driving another relay (rtpengine) over the ng protocol, sans-IO: the proxy's commands in,
//! datagrams out; replies in, results out; retransmissions on a timer, like Kamailio's
//! rtpengine module (the protocol is UDP: a lost request or reply is sent again, the same
//! cookie, so the relay answers a repeat from its cache rather than acting twice).

use super::bencode::Bencode;
use super::calls::{Command, CommandResult, ControlError};
use crate::sdp::Description;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

/// The first wait for a reply; doubled at each retransmission.
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// Sendings of one request before the relay counts as unreachable (0.5 + 1 + 2 s).
const TRIES: u32 = 3;

#[derive(Debug)]
struct Pending {
    id: u64,
    datagram: Vec<u8>,
    tries: u32,
    due: Instant,
    /// A delete: its call is forgotten whatever the answer.
    call: Option<String>,
}

/// Requests under way to one relay.
#[derive(Debug, Default)]
pub struct NgClient {
    next_cookie: u64,
    pending: HashMap<String, Pending>,
    /// (when, cookie); entries whose request was answered are skipped.
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    /// Each call's latest offerer's tag: an answer names it as from-tag.
    offerers: HashMap<String, String>,
}

impl NgClient {
    /// No requests yet.
    pub fn new() -> Self {
        NgClient::default()
    }

    /// The datagram carrying `command` (the proxy's request `id`) at `now`, or its result at
    /// once when it cannot be sent (an offer or answer whose SDP does not read: 488 here, as
    /// with the embedded relay, rather than whatever the relay would say).
    pub fn request(
        &mut self,
        now: Instant,
        id: u64,
        command: &Command,
    ) -> Result<Vec<u8>, CommandResult> {
        let text = |k: &'static str, v: &str| (k.as_bytes(), Bencode::text(v));
        let (pairs, call) = match command {
            Command::Offer {
                call_id, tag, sdp, ..
            }
            | Command::Answer {
                call_id, tag, sdp, ..
            } => {
                let sdp_text = std::str::from_utf8(sdp).map_err(|_| Err(ControlError::NotText))?;
                Description::parse(sdp_text).map_err(|e| Err(ControlError::Sdp(e)))?;
                let mut pairs = vec![text("call-id", call_id)];
                if let Command::Offer { .. } = command {
                    self.offerers.insert(call_id.clone(), tag.clone());
                    pairs.push(text("command", "offer"));
                    pairs.push(text("from-tag", tag));
                } else {
                    let offerer = self
                        .offerers
                        .get(call_id)
                        .ok_or(Err(ControlError::UnknownCall))?;
                    pairs.push(text("command", "answer"));
                    pairs.push(text("from-tag", offerer));
                    pairs.push(text("to-tag", tag));
                }
                pairs.push(text("sdp", sdp_text));
                // As the embedded relay does: the relay's address in o= and c=, ICE removed.
                pairs.push((
                    b"replace".as_slice(),
                    Bencode::List(vec![
                        Bencode::text("origin"),
                        Bencode::text("session-connection"),
                    ]),
                ));
                match command {
                    // A bridge between a browser and a phone, in rtpengine's flags.
                    Command::Offer {
                        to_browser: true, ..
                    } => {
                        pairs.push(text("ICE", "force"));
                        pairs.push(text("DTLS", "passive"));
                        pairs.push(text("transport-protocol", "UDP/TLS/RTP/SAVPF"));
                        pairs.push((
                            b"rtcp-mux".as_slice(),
                            Bencode::List(vec![Bencode::text("require")]),
                        ));
                        pairs.push((
                            b"flags".as_slice(),
                            Bencode::List(vec![Bencode::text("generate-mid")]),
                        ));
                    }
                    Command::Offer { .. } if crate::webrtc::codecs::is_webrtc(sdp_text) => {
                        pairs.push(text("ICE", "remove"));
                        pairs.push(text("transport-protocol", "RTP/AVP"));
                        pairs.push((
                            b"rtcp-mux".as_slice(),
                            Bencode::List(vec![Bencode::text("demux")]),
                        ));
                    }
                    _ => pairs.push(text("ICE", "remove")),
                }
                (pairs, None)
            }
            Command::Delete { call_id } => (
                vec![text("call-id", call_id), text("command", "delete")],
                Some(call_id.clone()),
            ),
        };
        self.next_cookie += 1;
        let cookie = format!("ol{:x}", self.next_cookie);
        let mut datagram = Vec::with_capacity(512);
        datagram.extend_from_slice(cookie.as_bytes());
        datagram.push(b' ');
        Bencode::Dict(pairs).encode(&mut datagram);
        let due = now + FIRST_WAIT;
        self.timers.push(Reverse((due, cookie.clone())));
        self.pending.insert(
            cookie,
            Pending {
                id,
                datagram: datagram.clone(),
                tries: 1,
                due,
                call,
            },
        );
        Ok(datagram)
    }

    /// A datagram from the relay: the request it answers and its result (None for a reply to
    /// nothing pending: late, repeated or forged).
    pub fn handle_reply(&mut self, datagram: &[u8]) -> Option<(u64, CommandResult)> {
        let space = datagram.iter().position(|&b| b == b' ')?;
        let cookie = std::str::from_utf8(&datagram[..space]).ok()?;
        let pending = self.pending.remove(cookie)?;
        if let Some(call) = &pending.call {
            self.offerers.remove(call);
        }
        let result = match Bencode::decode(&datagram[space + 1..]) {
            Ok((reply, _)) => match reply.get("result").and_then(Bencode::as_str) {
                Some("ok") => Ok(reply
                    .get("sdp")
                    .and_then(Bencode::as_str)
                    .unwrap_or_default()
                    .to_string()),
                _ => Err(ControlError::Remote(
                    reply
                        .get("error-reason")
                        .and_then(Bencode::as_str)
                        .unwrap_or("no reason given")
                        .to_string(),
                )),
            },
            Err(e) => Err(ControlError::Remote(format!("unreadable reply: {e}"))),
        };
        Some((pending.id, result))
    }

    /// When [`NgClient::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// At `now`: the datagrams to send again, and the requests given up on (the relay did not
    /// answer).
    pub fn handle_timeout(&mut self, now: Instant) -> (Vec<Vec<u8>>, Vec<(u64, CommandResult)>) {
        let (mut again, mut failed) = (Vec::new(), Vec::new());
        while let Some(Reverse((at, cookie))) = self.timers.peek().cloned() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(p) = self.pending.get_mut(&cookie) else {
                continue;
            };
            if p.due != at {
                continue;
            }
            if p.tries >= TRIES {
                if let Some(p) = self.pending.remove(&cookie) {
                    if let Some(call) = &p.call {
                        self.offerers.remove(call);
                    }
                    failed.push((p.id, Err(ControlError::NoAnswer)));
                }
                continue;
            }
            p.tries += 1;
            p.due = now + FIRST_WAIT * 2u32.pow(p.tries - 1);
            self.timers.push(Reverse((p.due, cookie)));
            again.push(p.datagram.clone());
        }
        (again, failed)
    }
}

#[cfg(test)]
mod tests;
