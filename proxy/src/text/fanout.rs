//! One MESSAGE for a local user, sent to each of the user's registered devices at once (one
//! branch each) and stored for the devices that are offline or do not take it. The sender
//! hears 200 once a device accepted it and every copy already asked of the store is durable;
//! 202 once it is stored and no device accepted it (RFC 3428 section 7: delivery is pending).

use crate::forward::Action;
use openline_registrar::store::NewMessage;
use openline_sip::table::IdMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Where one device's branch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Branch {
    /// Sent; nothing final yet.
    Waiting,
    /// Given up on at the wait's end and stored for later; a 2xx may still come.
    Late,
    /// The device took it (before being given up on).
    Accepted,
    /// It failed; not stored yet.
    Failed,
    /// Taken after it was given up on, before its stored copy was durable.
    TookLate,
    /// Done: stored after a failure, or taken late and its stored copy settled.
    Settled,
}

#[derive(Debug)]
struct Fanout<Id> {
    /// The request as received and where from: our own answer is built from it.
    request: Vec<u8>,
    source: std::net::SocketAddr,
    message: NewMessage,
    branches: Vec<(Id, String, Branch)>,
    /// The first 2xx from a device, passed upstream.
    accepted: Option<Vec<u8>>,
    /// Store operations under way.
    storing: usize,
    /// A store operation failed.
    store_failed: bool,
    /// Stored copies: their ids and the devices each is owed to.
    stored: Vec<(i64, Vec<String>)>,
    /// The wait for devices is over.
    waited: bool,
    answered: bool,
}

/// What the core must do.
#[derive(Debug, PartialEq, Eq)]
pub enum FanoutAction<Id> {
    /// Answer the sender: a device's 2xx passed upstream ([`Action::Respond`]), or our own
    /// status ([`Action::Reply`]: 202 stored, 500 not stored).
    Answer(Action<Id>),
    /// Store the message for these devices (none: whichever comes first), then call
    /// [`Fanouts::stored`].
    Store {
        /// The sender's server transaction.
        server: Id,
        /// The message.
        message: NewMessage,
        /// The devices owed it.
        devices: Vec<String>,
    },
    /// A device took a message after it was stored for it: it is owed it no more.
    Delivered {
        /// The stored message.
        id: i64,
        /// The device.
        device: String,
        /// Whose message it is.
        aor: String,
    },
}

/// Every MESSAGE fan-out under way, by the sender's server transaction and by branch.
#[derive(Debug)]
pub struct Fanouts<Id> {
    contexts: IdMap<Id, Fanout<Id>>,
    branch_of: IdMap<Id, Id>,
    deadlines: BinaryHeap<Reverse<(Instant, Id)>>,
}

impl<Id: Ord> Default for Fanouts<Id> {
    fn default() -> Self {
        Fanouts {
            contexts: IdMap::default(),
            branch_of: IdMap::default(),
            deadlines: BinaryHeap::new(),
        }
    }
}

impl<Id: Copy + Ord + std::hash::Hash> Fanouts<Id> {
    /// Starts the fan-out of `message` for server transaction `server`: `branches` (client
    /// transaction, device) already sent; `offline` devices owed it (stored at once); `any`:
    /// store it for whichever device comes first (the user has none known). Devices that have
    /// not answered by `wait_until` are given up on for now.
    pub fn start(
        &mut self,
        server: Id,
        (request, source): (Vec<u8>, std::net::SocketAddr),
        message: NewMessage,
        (branches, offline, any): (Vec<(Id, String)>, Vec<String>, bool),
        wait_until: Instant,
        out: &mut Vec<FanoutAction<Id>>,
    ) {
        for (client, _) in &branches {
            self.branch_of.insert(*client, server);
        }
        let mut ctx = Fanout {
            request,
            source,
            message,
            branches: branches
                .into_iter()
                .map(|(c, d)| (c, d, Branch::Waiting))
                .collect(),
            accepted: None,
            storing: 0,
            store_failed: false,
            stored: Vec::new(),
            waited: false,
            answered: false,
        };
        if !offline.is_empty() || any {
            store(server, &mut ctx, offline, out);
        }
        if !ctx.branches.is_empty() {
            self.deadlines.push(Reverse((wait_until, server)));
        }
        self.contexts.insert(server, ctx);
        self.progress(server, out);
    }

    /// A final or provisional response on client transaction `client`; false when it is not
    /// one of ours.
    pub fn on_response(
        &mut self,
        client: Id,
        code: u16,
        response: impl FnOnce() -> Vec<u8>,
        out: &mut Vec<FanoutAction<Id>>,
    ) -> bool {
        let Some(&server) = self.branch_of.get(&client) else {
            return false;
        };
        if code < 200 {
            return true;
        }
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return true;
        };
        let Some(i) = ctx.branches.iter().position(|(c, _, _)| *c == client) else {
            return true;
        };
        let state = ctx.branches[i].2;
        ctx.branches[i].2 = match (state, code) {
            (Branch::Waiting, 200..=299) => {
                if ctx.accepted.is_none() {
                    ctx.accepted = Some(response());
                }
                Branch::Accepted
            }
            (Branch::Late, 200..=299) if settle(ctx, i, out) => Branch::Settled,
            (Branch::Late, 200..=299) => Branch::TookLate,
            (Branch::Waiting, _) => Branch::Failed,
            (Branch::Late, _) => Branch::Settled,
            (s, _) => s,
        };
        self.branch_of.remove(&client);
        self.progress(server, out);
        true
    }

    /// Client transaction `client` timed out or could not be sent; false when not ours.
    pub fn on_failure(&mut self, client: Id, out: &mut Vec<FanoutAction<Id>>) -> bool {
        self.on_response(client, 408, Vec::new, out)
    }

    /// The store did (`Some(id)`) or did not (`None`) store the copy for `devices`.
    pub fn stored(
        &mut self,
        server: Id,
        id: Option<i64>,
        devices: Vec<String>,
        out: &mut Vec<FanoutAction<Id>>,
    ) {
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return;
        };
        ctx.storing = ctx.storing.saturating_sub(1);
        match id {
            Some(id) => {
                ctx.stored.push((id, devices));
                // Devices that took it late, before this copy was durable.
                for i in 0..ctx.branches.len() {
                    if ctx.branches[i].2 == Branch::TookLate && settle(ctx, i, out) {
                        ctx.branches[i].2 = Branch::Settled;
                    }
                }
            }
            None => ctx.store_failed = true,
        }
        self.progress(server, out);
    }

    /// When [`Fanouts::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Ends the wait of every fan-out due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<FanoutAction<Id>>) {
        while let Some(Reverse((at, server))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(ctx) = self.contexts.get_mut(&server) {
                ctx.waited = true;
                self.progress(server, out);
            }
        }
    }

    /// Fan-outs under way.
    pub fn len(&self) -> usize {
        self.contexts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.contexts.is_empty()
    }

    /// Stores for the devices that failed (once none is still deciding), answers the sender
    /// when it can, and forgets the fan-out once nothing more can happen to it.
    fn progress(&mut self, server: Id, out: &mut Vec<FanoutAction<Id>>) {
        let Some(ctx) = self.contexts.get_mut(&server) else {
            return;
        };
        let deciding = !ctx.waited && ctx.branches.iter().any(|b| b.2 == Branch::Waiting);
        if !deciding {
            let mut devices = Vec::new();
            for (_, device, state) in &mut ctx.branches {
                let next = match state {
                    Branch::Waiting => Branch::Late,
                    Branch::Failed => Branch::Settled,
                    _ => continue,
                };
                *state = next;
                devices.push(device.clone());
            }
            if !devices.is_empty() {
                store(server, ctx, devices, out);
            }
        }
        if !ctx.answered && ctx.storing == 0 {
            if let Some(response) = ctx.accepted.take() {
                ctx.answered = true;
                out.push(FanoutAction::Answer(Action::Respond { server, response }));
            } else if !deciding {
                ctx.answered = true;
                out.push(FanoutAction::Answer(Action::Reply {
                    server,
                    // Not stored (the database is away): 503, try again soon.
                    code: if ctx.store_failed { 503 } else { 202 },
                    request: std::mem::take(&mut ctx.request),
                    source: ctx.source,
                }));
            }
        }
        let open = ctx
            .branches
            .iter()
            .any(|b| matches!(b.2, Branch::Waiting | Branch::Late));
        if ctx.answered && ctx.storing == 0 && !open {
            self.contexts.remove(&server);
        }
    }
}

/// Asks the store for a copy owed to `devices`.
fn store<Id: Copy>(
    server: Id,
    ctx: &mut Fanout<Id>,
    devices: Vec<String>,
    out: &mut Vec<FanoutAction<Id>>,
) {
    ctx.storing += 1;
    out.push(FanoutAction::Store {
        server,
        message: ctx.message.clone(),
        devices,
    });
}

/// Branch `i` took the message after it was stored for it: settles the copy it is owed, if
/// that copy is durable yet (false: not yet).
fn settle<Id>(ctx: &Fanout<Id>, i: usize, out: &mut Vec<FanoutAction<Id>>) -> bool {
    let device = &ctx.branches[i].1;
    let Some((id, _)) = ctx.stored.iter().find(|(_, d)| d.contains(device)) else {
        return false;
    };
    out.push(FanoutAction::Delivered {
        id: *id,
        device: device.clone(),
        aor: ctx.message.recipient.clone(),
    });
    true
}

#[cfg(test)]
mod tests;
