//! Stateful forwarding (RFC 3261 16.6, 16.7): one response context per server transaction,
//! one branch per client transaction. Provisional responses and every 2xx go upstream at
//! once; of the other finals, the best is sent when every branch has ended; a 2xx (for an
//! INVITE) or a 6xx cancels the branches still ringing.

use crate::routing::Target;
use openline_sip::Message;
use openline_sip::message::RouteEdit;
use openline_sip::table::IdMap;
use openline_sip::transaction::{Destination, TransactionId};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
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
    /// The same request to the next server of the domain, should this one fail (RFC 3263 4.3).
    fallback: Option<Target>,
}

/// A branch just created by the core: its client transaction, the request as sent, where it
/// went, and where to try next if that server fails.
#[derive(Debug)]
pub struct NewBranch<Id> {
    /// The client transaction.
    pub client: Id,
    /// The request as sent.
    pub sent: Vec<u8>,
    /// Where.
    pub destination: Destination,
    /// The next server, for a time-out, a transport error or a 503.
    pub fallback: Option<Target>,
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
    /// A 2xx went upstream: the other branches' CANCELs say the call was completed
    /// elsewhere (RFC 3326), so their phones do not show a missed call.
    completed: bool,
    /// Some branch rang: at the ring time-out the caller hears 480 (nobody answered), not 408.
    rang: bool,
    /// Devices of lower q, a group per q, tried in turn when every branch so far failed
    /// without a 6xx (RFC 3261 16.6: sequential between q groups, parallel within one).
    later: VecDeque<Vec<Target>>,
    /// How Route was edited for the first group: the same for the next.
    route: RouteEdit,
    /// Forwards asked of the core and not yet come back as branches: the context is not done
    /// while one is under way.
    awaiting: usize,
    /// The caller cancelled: no further servers or groups are tried.
    cancelled: bool,
    /// The other domain it went to, counted in [`Forwarding::in_flight`].
    domain: Option<Arc<str>>,
    /// Pushed devices still awaited (RFC 8599): the context is not done while one may wake.
    held: usize,
    /// Some device was awaited: when none answered at all, the caller hears 480, not 408.
    waited: bool,
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
    /// Forward the request to the next q group of devices, or to the next server of a domain;
    /// the core answers with [`Forwarding::extend`] or [`Forwarding::forward_failed`].
    Forward {
        /// The server transaction.
        server: Id,
        /// The request as received.
        request: Vec<u8>,
        /// Where it came from.
        source: std::net::SocketAddr,
        /// The devices of the group.
        targets: Vec<Target>,
        /// The Route edit.
        route: RouteEdit,
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
    /// Contexts per other domain: what a domain that never answers may cost is bounded by it.
    per_domain: HashMap<Arc<str>, usize>,
    /// Lower q groups queued for a request whose first group has not gone out yet (its offer
    /// is with the media relay): the context takes them when it starts.
    queued: IdMap<Id, Vec<Vec<Target>>>,
    /// Pushed devices awaited for a request whose context has not started yet.
    holds: IdMap<Id, usize>,
}

impl<Id: Ord> Default for Forwarding<Id> {
    fn default() -> Self {
        Forwarding {
            contexts: IdMap::default(),
            branch_of: IdMap::default(),
            deadlines: BinaryHeap::new(),
            per_domain: HashMap::new(),
            queued: IdMap::default(),
            holds: IdMap::default(),
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
    /// gives up ringing at `ring_until`; `later` are the q groups to try next, in order.
    pub fn start(
        &mut self,
        server: Id,
        (request, source): (Vec<u8>, std::net::SocketAddr),
        ring_until: Option<Instant>,
        branches: Vec<NewBranch<Id>>,
        (later, route): (Vec<Vec<Target>>, RouteEdit),
    ) {
        let invite = ring_until.is_some();
        if let Some(at) = ring_until {
            self.deadlines.push(Reverse((at, server)));
        }
        let mut later: VecDeque<Vec<Target>> = later.into();
        later.extend(self.queued.remove(&server).unwrap_or_default());
        let held = self.holds.remove(&server).unwrap_or(0);
        self.contexts.insert(
            server,
            Context {
                invite,
                request,
                source,
                branches: Vec::with_capacity(branches.len()),
                best: None,
                answered: false,
                completed: false,
                rang: false,
                later,
                route,
                awaiting: 0,
                cancelled: false,
                domain: None,
                held,
                waited: held > 0,
            },
        );
        self.add_branches(server, branches);
    }

    /// `n` pushed devices are awaited for the request of `server` (RFC 8599): it is not
    /// answered while one may still wake, even with no branch at all.
    pub fn hold(&mut self, server: Id, n: usize) {
        match self.contexts.get_mut(&server) {
            Some(ctx) => {
                ctx.held += n;
                ctx.waited = true;
            }
            None => *self.holds.entry(server).or_default() += n,
        }
    }

    /// Whether devices are awaited for `server` before its context started (it may start
    /// with no branch).
    pub fn is_holding(&self, server: Id) -> bool {
        self.holds.contains_key(&server)
    }

    /// An awaited device registered: the request to forward to it (as received, where from,
    /// the Route edit); the core answers with [`Forwarding::extend`] or
    /// [`Forwarding::forward_failed`]. None when the request is answered or cancelled.
    pub fn woken(&mut self, server: Id) -> Option<(Vec<u8>, std::net::SocketAddr, RouteEdit)> {
        let ctx = self.contexts.get_mut(&server)?;
        if ctx.answered || ctx.cancelled || ctx.held == 0 {
            return None;
        }
        ctx.held -= 1;
        ctx.awaiting += 1;
        Some((ctx.request.clone(), ctx.source, ctx.route))
    }

    /// An awaited device did not wake in time: the context goes on without it.
    pub fn release(&mut self, server: Id, out: &mut Vec<Action<Id>>) {
        if let Some(n) = self.holds.get_mut(&server) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.holds.remove(&server);
            }
            return;
        }
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return;
        };
        ctx.held = ctx.held.saturating_sub(1);
        finish_if_done(server, ctx, out);
        self.forget_if_over(server);
    }

    /// Queues lower-q groups of devices for the context of `server`, tried after the current
    /// branches all decline.
    pub fn queue(&mut self, server: Id, groups: Vec<Vec<Target>>) {
        match self.contexts.get_mut(&server) {
            Some(ctx) => ctx.later.extend(groups),
            None if !groups.is_empty() => {
                self.queued.insert(server, groups);
            }
            None => {}
        }
    }

    /// Whether server transaction `server` has a context.
    pub fn has(&self, server: Id) -> bool {
        self.contexts.contains_key(&server)
    }

    /// Adds the branches of a [`Action::Forward`] (the next q group, or the next server).
    pub fn extend(&mut self, server: Id, branches: Vec<NewBranch<Id>>) {
        if let Some(ctx) = self.contexts.get_mut(&server) {
            ctx.awaiting = ctx.awaiting.saturating_sub(1);
        }
        self.add_branches(server, branches);
    }

    /// An [`Action::Forward`] made no branch (no socket for that transport): the context goes
    /// on as if those targets had failed.
    pub fn forward_failed(&mut self, server: Id, out: &mut Vec<Action<Id>>) {
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return;
        };
        ctx.awaiting = ctx.awaiting.saturating_sub(1);
        finish_if_done(server, ctx, out);
        self.forget_if_over(server);
    }

    fn add_branches(&mut self, server: Id, branches: Vec<NewBranch<Id>>) {
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return;
        };
        for b in branches {
            self.branch_of
                .insert(b.client, (server, ctx.branches.len()));
            ctx.branches.push(Branch {
                client: b.client,
                sent: b.sent,
                destination: b.destination,
                done: false,
                ringing: false,
                cancel_owed: false,
                fallback: b.fallback,
            });
        }
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
                    out.extend(cancel(&ctx.branches[i], ctx.completed));
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
                    ctx.completed = true;
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
                } else if code == 503 {
                    try_next_server(server, ctx, i, out);
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

    /// Client transaction `client` timed out (Timer B or F): the branch ends as a 408, and the
    /// next server of its domain, if any, gets the request (RFC 3263 4.3).
    pub fn on_timeout(&mut self, client: Id, out: &mut Vec<Action<Id>>) {
        self.on_failure(client, None, out);
    }

    /// The request of client transaction `client` could not be sent (connection refused): as
    /// a 503 (RFC 3261 8.1.3.1), or a 430 for a device's lost outbound flow (RFC 5626), the
    /// next server of its domain, if any, gets it.
    pub fn on_transport_error(&mut self, client: Id, code: u16, out: &mut Vec<Action<Id>>) {
        self.on_failure(client, Some(code), out);
    }

    fn on_failure(&mut self, client: Id, code: Option<u16>, out: &mut Vec<Action<Id>>) {
        let Some(&(server, i)) = self.branch_of.get(&client) else {
            return;
        };
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return;
        };
        ctx.branches[i].done = true;
        if let Some(code) = code {
            // Ours to word, not a response to pass on: kept without bytes.
            if ctx.best.as_ref().is_none_or(|(b, _)| rank(code) < rank(*b)) {
                ctx.best = Some((code, Vec::new()));
            }
        }
        try_next_server(server, ctx, i, out);
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
                // A pushed phone that never woke is as unavailable as one that rang unanswered.
                code: if ctx.rang || ctx.waited { 480 } else { 408 },
                request: std::mem::take(&mut ctx.request),
                source: ctx.source,
            });
        }
    }

    /// The caller cancelled the request of server transaction `server`.
    pub fn cancel(&mut self, server: Id, out: &mut Vec<Action<Id>>) {
        self.holds.remove(&server);
        if let Some(ctx) = self.contexts.get_mut(&server) {
            ctx.later.clear();
            ctx.cancelled = true;
            ctx.held = 0;
            cancel_pending(ctx, out);
            finish_if_done(server, ctx, out);
            self.forget_if_over(server);
        }
    }

    /// Counts the context of `server` against another domain, once.
    pub fn tag_domain(&mut self, server: Id, domain: &Arc<str>) {
        if let Some(ctx) = self.contexts.get_mut(&server) {
            if ctx.domain.is_none() {
                ctx.domain = Some(Arc::clone(domain));
                *self.per_domain.entry(Arc::clone(domain)).or_default() += 1;
            }
        }
    }

    /// Requests under way to another domain.
    pub fn in_flight(&self, domain: &str) -> usize {
        self.per_domain.get(domain).copied().unwrap_or(0)
    }

    /// Where the branch of client transaction `client` went.
    pub fn destination_of(&self, client: Id) -> Option<Destination> {
        let (server, i) = self.branch_of.get(&client)?;
        Some(self.contexts.get(server)?.branches.get(*i)?.destination)
    }

    /// A transaction ended: forget what pointed at it.
    pub fn on_terminated(&mut self, id: Id) {
        self.queued.remove(&id);
        self.holds.remove(&id);
        if let Some(ctx) = self.contexts.remove(&id) {
            if let Some(d) = &ctx.domain {
                if let Some(n) = self.per_domain.get_mut(d) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_domain.remove(d);
                    }
                }
            }
            for b in ctx.branches {
                self.branch_of.remove(&b.client);
            }
        } else {
            self.branch_of.remove(&id);
        }
    }
}

/// Branch `i` failed with a time-out, a transport error or a 503: the request goes to the next
/// server of the same domain, as a new branch, unless the caller is already answered or gone.
fn try_next_server<Id: Copy>(
    server: Id,
    ctx: &mut Context<Id>,
    i: usize,
    out: &mut Vec<Action<Id>>,
) {
    if ctx.answered || ctx.cancelled || ctx.branches[i].cancel_owed {
        return;
    }
    if let Some(next) = ctx.branches[i].fallback.take() {
        ctx.awaiting += 1;
        out.push(Action::Forward {
            server,
            request: ctx.request.clone(),
            source: ctx.source,
            targets: vec![next],
            route: ctx.route,
        });
    }
}

/// Sends the best response upstream once every branch has ended (16.7 step 6).
fn finish_if_done<Id>(server: Id, ctx: &mut Context<Id>, out: &mut Vec<Action<Id>>) {
    if ctx.answered || ctx.awaiting > 0 || ctx.held > 0 || ctx.branches.iter().any(|b| !b.done) {
        return;
    }
    // Every device so far said no (a 6xx means "nowhere"): ring the next q group, if any.
    let declined_everywhere = ctx.best.as_ref().is_some_and(|(code, _)| *code >= 600);
    if !declined_everywhere {
        if let Some(targets) = ctx.later.pop_front() {
            ctx.awaiting += 1;
            out.push(Action::Forward {
                server,
                request: ctx.request.clone(),
                source: ctx.source,
                targets,
                route: ctx.route,
            });
            return;
        }
    }
    ctx.answered = true;
    match ctx.best.take() {
        // A failure we noted ourselves (a transport error): a 503 goes upstream as 500, lest
        // the caller's side take this server itself for unavailable (16.7 step 6).
        Some((code, response)) if response.is_empty() || code == 503 => out.push(Action::Reply {
            server,
            code: if code == 503 { 500 } else { code },
            request: std::mem::take(&mut ctx.request),
            source: ctx.source,
        }),
        Some((_, response)) => out.push(Action::Respond { server, response }),
        // Only time-outs, or no branch at all: nobody answered. A caller who cancelled hears
        // 487; one whose callee's phones never woke, 480 (RFC 8599 section 6.1).
        None => out.push(Action::Reply {
            server,
            code: if ctx.cancelled {
                487
            } else if ctx.waited {
                480
            } else {
                408
            },
            request: std::mem::take(&mut ctx.request),
            source: ctx.source,
        }),
    }
}

/// CANCELs every branch still pending (16.10): now if it rang, else once it does.
fn cancel_pending<Id>(ctx: &mut Context<Id>, out: &mut Vec<Action<Id>>) {
    for b in ctx.branches.iter_mut().filter(|b| !b.done) {
        if b.ringing {
            out.extend(cancel(b, ctx.completed));
        } else {
            b.cancel_owed = true;
        }
    }
}

/// The CANCEL for a branch (RFC 3261 9.1): same Request-URI, Call-ID, From, To, CSeq number
/// and top Via as the request sent, method CANCEL, no body; after another branch's 2xx, a
/// Reason saying so.
fn cancel<Id>(branch: &Branch<Id>, completed: bool) -> Option<Action<Id>> {
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
    if completed {
        out.push_str("Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n");
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
mod tests;
