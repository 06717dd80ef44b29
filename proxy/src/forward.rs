//! Stateful forwarding (RFC 3261 16.6, 16.7): one response context per server transaction,
//! one branch per client transaction. Provisional responses and every 2xx go upstream at
//! once; of the other finals, the best is sent when every branch has ended; a 2xx (for an
//! INVITE) or a 6xx cancels the branches still ringing.

use openline_sip::Message;
use openline_sip::table::IdMap;
use openline_sip::transaction::{Destination, TransactionId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A branch: one forwarded copy of the request.
#[derive(Debug)]
struct Branch<Id> {
    client: Id,
    /// The request as sent (a CANCEL is built from it).
    sent: Vec<u8>,
    destination: Destination,
    done: bool,
    /// A provisional response came back: a CANCEL may be sent (RFC 3261 9.1).
    ringing: bool,
    /// A CANCEL is owed once it rings.
    cancel_owed: bool,
}

/// The response context of one forwarded request.
#[derive(Debug)]
struct Context<Id> {
    invite: bool,
    /// The request as received and where from: our own answer (a 408) is built from it.
    request: Vec<u8>,
    source: std::net::SocketAddr,
    branches: Vec<Branch<Id>>,
    /// The best final non-2xx so far: its status and the response to pass upstream.
    best: Option<(u16, Vec<u8>)>,
    /// A final response went upstream (a 2xx, or the best of the rest).
    answered: bool,
    /// Some branch rang: at the ring time-out the caller hears 480 (nobody answered), not 408.
    rang: bool,
}

/// What the core must do after a context changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<Id = TransactionId> {
    /// Pass this response upstream through server transaction `server`.
    Respond {
        /// The server transaction.
        server: Id,
        /// The response, our Via removed.
        response: Vec<u8>,
    },
    /// Answer upstream with this status (no branch gave anything better).
    Reply {
        /// The server transaction.
        server: Id,
        /// Status.
        code: u16,
        /// The request being answered, as received.
        request: Vec<u8>,
        /// Where it came from.
        source: std::net::SocketAddr,
    },
    /// Send this CANCEL downstream (a new client transaction).
    Cancel {
        /// The CANCEL.
        request: Vec<u8>,
        /// Where.
        destination: Destination,
    },
}

/// Every response context, by server transaction and by branch (`Id` is a transaction id;
/// tests use plain numbers).
#[derive(Debug)]
pub struct Forwarding<Id = TransactionId> {
    contexts: IdMap<Id, Context<Id>>,
    branch_of: IdMap<Id, (Id, usize)>,
    /// When each INVITE stops ringing unanswered (the ring time-out), earliest first.
    deadlines: BinaryHeap<Reverse<(Instant, Id)>>,
}

impl<Id: Ord> Default for Forwarding<Id> {
    fn default() -> Self {
        Forwarding {
            contexts: IdMap::default(),
            branch_of: IdMap::default(),
            deadlines: BinaryHeap::new(),
        }
    }
}

/// How good a final response is for choosing among branches (16.7 step 6): lower wins; 6xx
/// beats everything else, then 3xx, 4xx, 5xx; 503 becomes 500 upstream, so it ranks as 5xx.
fn rank(code: u16) -> u16 {
    match code {
        600..=699 => 0,
        300..=599 => code,
        _ => 1000,
    }
}

impl<Id: Copy + Ord + std::hash::Hash> Forwarding<Id> {
    /// Starts a context for server transaction `server`, forwarded on these branches; an INVITE
    /// gives up ringing at `ring_until`.
    pub fn start(
        &mut self,
        server: Id,
        (request, source): (Vec<u8>, std::net::SocketAddr),
        ring_until: Option<Instant>,
        branches: Vec<(Id, Vec<u8>, Destination)>,
    ) {
        let invite = ring_until.is_some();
        if let Some(at) = ring_until {
            self.deadlines.push(Reverse((at, server)));
        }
        let mut list = Vec::with_capacity(branches.len());
        for (i, (client, sent, destination)) in branches.into_iter().enumerate() {
            self.branch_of.insert(client, (server, i));
            list.push(Branch {
                client,
                sent,
                destination,
                done: false,
                ringing: false,
                cancel_owed: false,
            });
        }
        self.contexts.insert(
            server,
            Context {
                invite,
                request,
                source,
                branches: list,
                best: None,
                answered: false,
                rang: false,
            },
        );
    }

    /// Live contexts.
    pub fn len(&self) -> usize {
        self.contexts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.contexts.is_empty()
    }

    /// A response arrived on client transaction `client`. False when no context knows the
    /// branch any more (it ended): the caller passes the response on by its Via, as a 2xx
    /// retransmitted by a UAS that has not seen its ACK must still reach the caller.
    pub fn on_response(
        &mut self,
        client: Id,
        response: &Message<'_>,
        out: &mut Vec<Action<Id>>,
    ) -> bool {
        let Some(&(server, i)) = self.branch_of.get(&client) else {
            return false;
        };
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return false;
        };
        let code = response.status().unwrap_or(500);
        match code {
            100 => {}
            101..=199 => {
                ctx.branches[i].ringing = true;
                ctx.rang = true;
                if ctx.branches[i].cancel_owed {
                    ctx.branches[i].cancel_owed = false;
                    out.extend(cancel(&ctx.branches[i]));
                }
                if !ctx.answered {
                    out.push(Action::Respond {
                        server,
                        response: response.forwarded_response(),
                    });
                }
            }
            200..=299 => {
                ctx.branches[i].done = true;
                // Every 2xx goes upstream, even after another (16.7 step 5).
                out.push(Action::Respond {
                    server,
                    response: response.forwarded_response(),
                });
                ctx.answered = true;
                if ctx.invite {
                    cancel_pending(ctx, out);
                }
            }
            _ => {
                ctx.branches[i].done = true;
                if ctx.best.as_ref().is_none_or(|(b, _)| rank(code) < rank(*b)) {
                    ctx.best = Some((code, response.forwarded_response()));
                }
                if code >= 600 && ctx.invite {
                    cancel_pending(ctx, out);
                }
            }
        }
        finish_if_done(server, ctx, out);
        self.forget_if_over(server);
        true
    }

    /// Drops a context once it has answered and every branch has ended: nothing it holds is
    /// needed any more (at 4,000 calls/s, keeping INVITE and BYE contexts for their
    /// transactions' 32 s would hold some 250,000 of them).
    fn forget_if_over(&mut self, server: Id) {
        let over = self
            .contexts
            .get(&server)
            .is_some_and(|c| c.answered && c.branches.iter().all(|b| b.done));
        if over {
            self.on_terminated(server);
        }
    }

    /// Client transaction `client` timed out (Timer B or F): the branch ends as a 408.
    pub fn on_timeout(&mut self, client: Id, out: &mut Vec<Action<Id>>) {
        let Some(&(server, i)) = self.branch_of.get(&client) else {
            return;
        };
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return;
        };
        ctx.branches[i].done = true;
        finish_if_done(server, ctx, out);
        self.forget_if_over(server);
    }

    /// When [`Forwarding::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Ends every INVITE still unanswered at its ring time-out: its branches are cancelled and
    /// the caller hears 480 if something rang (nobody picked up), else 408.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Action<Id>>) {
        while let Some(Reverse((at, server))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(ctx) = self.contexts.get_mut(&server) else {
                continue;
            };
            if ctx.answered {
                continue;
            }
            cancel_pending(ctx, out);
            ctx.answered = true;
            out.push(Action::Reply {
                server,
                code: if ctx.rang { 480 } else { 408 },
                request: std::mem::take(&mut ctx.request),
                source: ctx.source,
            });
        }
    }

    /// The caller cancelled the request of server transaction `server`.
    pub fn cancel(&mut self, server: Id, out: &mut Vec<Action<Id>>) {
        if let Some(ctx) = self.contexts.get_mut(&server) {
            cancel_pending(ctx, out);
        }
    }

    /// A transaction ended: forget what pointed at it.
    pub fn on_terminated(&mut self, id: Id) {
        if let Some(ctx) = self.contexts.remove(&id) {
            for b in ctx.branches {
                self.branch_of.remove(&b.client);
            }
        } else {
            self.branch_of.remove(&id);
        }
    }
}

/// Sends the best response upstream once every branch has ended (16.7 step 6).
fn finish_if_done<Id>(server: Id, ctx: &mut Context<Id>, out: &mut Vec<Action<Id>>) {
    if ctx.answered || ctx.branches.iter().any(|b| !b.done) {
        return;
    }
    ctx.answered = true;
    match ctx.best.take() {
        Some((_, response)) => out.push(Action::Respond { server, response }),
        // Only time-outs: nobody answered.
        None => out.push(Action::Reply {
            server,
            code: 408,
            request: std::mem::take(&mut ctx.request),
            source: ctx.source,
        }),
    }
}

/// CANCELs every branch still pending (16.10): now if it rang, else once it does.
fn cancel_pending<Id>(ctx: &mut Context<Id>, out: &mut Vec<Action<Id>>) {
    for b in ctx.branches.iter_mut().filter(|b| !b.done) {
        if b.ringing {
            out.extend(cancel(b));
        } else {
            b.cancel_owed = true;
        }
    }
}

/// The CANCEL for a branch (RFC 3261 9.1): same Request-URI, Call-ID, From, To, CSeq number
/// and top Via as the request sent, method CANCEL, no body.
fn cancel<Id>(branch: &Branch<Id>) -> Option<Action<Id>> {
    let sent = Message::parse(&branch.sent).ok()?;
    let uri = sent.request_uri()?;
    let mut out = format!("CANCEL {} SIP/2.0\r\n", uri.as_str());
    for name in [
        openline_sip::header::HeaderName::Via,
        openline_sip::header::HeaderName::Route,
    ] {
        // Only the top Via (ours); every Route the request carried.
        let values: Vec<&str> = sent.headers_named(name).collect();
        let take = if name == openline_sip::header::HeaderName::Via {
            1
        } else {
            values.len()
        };
        for v in values.iter().take(take) {
            out.push_str(name.as_str());
            out.push_str(": ");
            let v = if name == openline_sip::header::HeaderName::Via {
                v.split(',').next().unwrap_or(v).trim()
            } else {
                v
            };
            out.push_str(v);
            out.push_str("\r\n");
        }
    }
    for name in [
        openline_sip::header::HeaderName::From,
        openline_sip::header::HeaderName::To,
        openline_sip::header::HeaderName::CallId,
    ] {
        if let Some(v) = sent.header(name) {
            out.push_str(name.as_str());
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!(
        "CSeq: {} CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sent.cseq.seq
    ));
    Some(Action::Cancel {
        request: out.into_bytes(),
        destination: branch.destination,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use openline_sip::Transport;

    const SERVER: u64 = 1;

    fn invite(branch: &str) -> Vec<u8> {
        format!(
            "INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKcaller\r\nFrom: <sip:alice@a.test>;tag=1\r\n\
             To: <sip:bob@a.test>\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n",
            port = 6000 + branch.len()
        )
        .into_bytes()
    }

    fn response(code: u16, branch: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKcaller\r\nFrom: <sip:alice@a.test>;tag=1\r\n\
             To: <sip:bob@a.test>;tag={branch}\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    /// A context with two branches (client ids 10 and 11) for an INVITE.
    fn two_branches() -> Forwarding<u64> {
        let mut f = Forwarding::default();
        let dest = |port| Destination {
            transport: Transport::Udp,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        f.start(
            SERVER,
            (b"INVITE".to_vec(), SocketAddr::from(([127, 0, 0, 1], 5061))),
            Some(t0() + Duration::from_secs(60)),
            vec![
                (10, invite("z9hG4bKa"), dest(6001)),
                (11, invite("z9hG4bKbb"), dest(6002)),
            ],
        );
        f
    }

    use std::net::SocketAddr;
    use std::time::Duration;

    /// A fixed start of (virtual) time.
    fn t0() -> Instant {
        use std::sync::OnceLock;
        static T0: OnceLock<Instant> = OnceLock::new();
        #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived
        *T0.get_or_init(Instant::now)
    }

    fn feed(f: &mut Forwarding<u64>, client: u64, code: u16) -> Vec<Action<u64>> {
        let branch = if client == 10 {
            "z9hG4bKa"
        } else {
            "z9hG4bKbb"
        };
        let bytes = response(code, branch);
        let mut out = Vec::new();
        f.on_response(client, &Message::parse(&bytes).unwrap(), &mut out);
        out
    }

    fn codes(actions: &[Action<u64>]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Respond { response, .. } => {
                    format!(
                        "respond {}",
                        Message::parse(response).unwrap().status().unwrap()
                    )
                }
                Action::Reply { code, .. } => format!("reply {code}"),
                Action::Cancel { destination, .. } => format!("cancel {}", destination.addr.port()),
            })
            .collect()
    }

    #[test]
    fn provisionals_pass_and_the_2xx_cancels_the_other_ringing_branch() {
        let mut f = two_branches();
        assert_eq!(codes(&feed(&mut f, 10, 100)), Vec::<String>::new());
        assert_eq!(codes(&feed(&mut f, 10, 180)), ["respond 180"]);
        assert_eq!(codes(&feed(&mut f, 11, 180)), ["respond 180"]);
        assert_eq!(
            codes(&feed(&mut f, 11, 200)),
            ["respond 200", "cancel 6001"]
        );
        // The cancelled branch ends with 487: nothing more goes upstream.
        assert_eq!(codes(&feed(&mut f, 10, 487)), Vec::<String>::new());
    }

    #[test]
    fn the_forwarded_response_loses_our_via_and_cancel_matches_the_branch() {
        let mut f = two_branches();
        feed(&mut f, 10, 180);
        let out = feed(&mut f, 11, 200);
        let Action::Respond { response, server } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(*server, SERVER);
        let r = Message::parse(response).unwrap();
        assert_eq!(r.top_via.branch, Some("z9hG4bKcaller"));
        let Action::Cancel { request, .. } = &out[1] else {
            panic!("{out:?}")
        };
        let c = Message::parse(request).unwrap();
        assert_eq!(c.method(), openline_sip::Method::Cancel);
        assert_eq!(c.top_via.branch, Some("z9hG4bKa"));
        assert_eq!(c.request_uri().unwrap().as_str(), "sip:bob@127.0.0.1:6008");
        assert_eq!((c.cseq.seq, c.call_id), (7, "c"));
        assert_eq!(c.vias().count(), 1);
    }

    #[test]
    fn best_final_waits_for_every_branch_and_6xx_wins() {
        let mut f = two_branches();
        assert_eq!(codes(&feed(&mut f, 10, 486)), Vec::<String>::new());
        assert_eq!(codes(&feed(&mut f, 11, 404)), ["respond 404"]);
        let mut f = two_branches();
        feed(&mut f, 10, 180);
        // A 6xx ends the search: the ringing branch is cancelled.
        assert_eq!(codes(&feed(&mut f, 11, 603)), ["cancel 6001"]);
        assert_eq!(codes(&feed(&mut f, 10, 487)), ["respond 603"]);
    }

    #[test]
    fn a_cancel_waits_for_the_branch_to_ring_and_time_outs_become_408() {
        let mut f = two_branches();
        let mut out = Vec::new();
        f.cancel(SERVER, &mut out);
        assert!(out.is_empty(), "nothing rang yet: {out:?}");
        assert_eq!(
            codes(&feed(&mut f, 11, 180)),
            ["cancel 6002", "respond 180"]
        );
        let mut f = two_branches();
        let mut out = Vec::new();
        f.on_timeout(10, &mut out);
        assert!(out.is_empty());
        f.on_timeout(11, &mut out);
        assert_eq!(codes(&out), ["reply 408"]);
        f.on_terminated(SERVER);
        assert!(f.is_empty());
    }

    #[test]
    fn nobody_answers_in_time_480_after_ringing_408_before() {
        let mut f = two_branches();
        assert_eq!(f.poll_timeout(), Some(t0() + Duration::from_secs(60)));
        feed(&mut f, 10, 180);
        let mut out = Vec::new();
        f.handle_timeout(t0() + Duration::from_secs(59), &mut out);
        assert!(out.is_empty());
        f.handle_timeout(t0() + Duration::from_secs(60), &mut out);
        assert_eq!(codes(&out), ["cancel 6001", "reply 480"]);
        // The branches end with 487 afterwards: nothing more goes upstream.
        assert!(feed(&mut f, 10, 487).is_empty());
        // The branch that never rang is cancelled as soon as it does.
        assert_eq!(codes(&feed(&mut f, 11, 180)), ["cancel 6002"]);

        let mut f = two_branches();
        let mut out = Vec::new();
        f.handle_timeout(t0() + Duration::from_secs(61), &mut out);
        assert_eq!(codes(&out), ["reply 408"]);
    }
}
