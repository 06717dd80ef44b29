//! The core's side of a cluster (issue #9): what other nodes changed, as the database tells
//! it, applied to the location table, the mailbox counts and presence; and requests another
//! node sends us for a device whose flow we hold.

use super::ServerCore;
use crate::routing::{self, Target};
use openline_registrar::store::{Published, StoreNews};
use openline_registrar::{Binding, ChangeSet, Location};
use openline_sip::Transport;
use openline_sip::endpoint::EndpointError;
use openline_sip::message::{Refusal, RouteEdit};
use openline_sip::transaction::{Destination, TransactionId};
use std::net::SocketAddr;
use std::time::Instant;

/// The writer name of a server that runs alone (node names may not take it).
pub const ALONE: &str = "openline";

impl ServerCore {
    /// Our name as a writer to the database: the node's, or [`ALONE`].
    pub fn writer_name(&self) -> &str {
        match self.us.cluster.node.as_str() {
            "" => ALONE,
            name => name,
        }
    }

    /// The other nodes alive now and where they take requests.
    pub fn set_nodes(&mut self, nodes: Vec<(String, Destination)>) {
        let own = self.us.cluster.node.clone();
        self.us.cluster.nodes = nodes.into_iter().filter(|(n, _)| *n != own).collect();
    }

    /// A change another writer made, as the database told it; our own were applied when we
    /// made them. What needs the database again (a reload, users, nodes, lost news) is the
    /// driver's: see [`ServerCore::replace_bindings`] and [`ServerCore::resync_bindings`].
    pub fn handle_cluster_news(&mut self, now: Instant, wall: u64, news: StoreNews) {
        match news {
            StoreNews::BindingUpsert { writer, .. }
            | StoreNews::BindingDelete { writer, .. }
            | StoreNews::Mail { writer, .. }
            | StoreNews::PresenceAllowed { writer, .. }
            | StoreNews::Published { writer, .. }
                if writer == self.writer_name() => {}
            StoreNews::Published {
                presentity, state, ..
            } => self.take_publication(now, wall, &presentity, state),
            StoreNews::PresenceAllowed {
                presentity,
                watcher,
                allowed,
                ..
            } => self.presence_permission(now, (presentity, watcher), allowed),
            StoreNews::BindingUpsert { binding, .. } => {
                // Its device may be owed messages stored from now on.
                self.text
                    .devices
                    .load(&binding.aor, &binding.device(), wall);
                let change = ChangeSet {
                    aor: binding.aor.clone(),
                    upserts: vec![binding],
                    removals: Vec::new(),
                };
                self.apply_news(now, wall, &change);
            }
            StoreNews::BindingDelete { aor, key, .. } => {
                let change = ChangeSet {
                    aor,
                    upserts: Vec::new(),
                    removals: vec![key],
                };
                self.apply_news(now, wall, &change);
            }
            StoreNews::Mail {
                recipient, stored, ..
            } => {
                let count = self.text.stored.entry(recipient.clone()).or_default();
                if !stored {
                    *count = count.saturating_sub(1);
                    return;
                }
                *count += 1;
                // Stored for a device whose flow we hold (it did not take it live): ours to hand.
                let devices: Vec<String> = self
                    .location
                    .live(&recipient, wall)
                    .into_iter()
                    .filter(|b| self.us.cluster.holds(b))
                    .map(|b| b.device().to_string())
                    .collect();
                for device in devices {
                    self.deliver_owed(&recipient, &device, wall);
                }
            }
            StoreNews::BindingReload { .. }
            | StoreNews::Users
            | StoreNews::Nodes
            | StoreNews::Lost => {}
        }
        self.pump(now);
    }

    /// The bindings of `aor`, read again after another node changed them (the change was too
    /// large to be told whole).
    pub fn replace_bindings(&mut self, now: Instant, wall: u64, aor: String, list: Vec<Binding>) {
        let change = ChangeSet {
            removals: self
                .location
                .bindings(&aor)
                .iter()
                .map(Binding::key)
                .collect(),
            aor,
            upserts: list,
        };
        self.apply_news(now, wall, &change);
        self.pump(now);
    }

    /// Another node's change of bindings, in the location table and in presence.
    fn apply_news(&mut self, now: Instant, wall: u64, change: &ChangeSet) {
        self.location.apply(change);
        self.presence_devices(now, wall, &change.aor);
    }

    /// What users published through the other nodes, as the database holds it at start.
    pub fn load_publications(&mut self, now: Instant, wall: u64, list: Vec<(String, Published)>) {
        for (presentity, state) in list {
            self.take_publication(now, wall, &presentity, Some(state));
        }
        self.pump(now);
    }

    /// Another node's publication, in this node's clock.
    fn take_publication(
        &mut self,
        now: Instant,
        wall: u64,
        presentity: &str,
        state: Option<Published>,
    ) {
        let state = state.map(|p| {
            let left = std::time::Duration::from_secs(p.expires_at.saturating_sub(wall));
            let status = openline_sip::pidf::Status {
                open: p.open,
                note: p.note,
            };
            (p.etag, status, now + left)
        });
        let sip = format!("sip:{presentity}");
        self.presence.agent.take_publication(now, &sip, state);
        self.send_notifies(now);
    }

    /// A PUBLISH taken here: in a cluster, kept in the database for the other nodes.
    pub(super) fn share_publication(&mut self, now: Instant, presentity: &str) {
        if self.us.cluster.node.is_empty() {
            return;
        }
        let sip = format!("sip:{presentity}");
        let state = self
            .presence
            .agent
            .publication(&sip)
            .map(|(etag, status, expires_at)| {
                let left = expires_at.saturating_duration_since(now).as_secs();
                (etag.to_string(), status.clone(), left)
            });
        self.queue_store(
            super::StoreWork::Publish {
                aor: presentity.to_string(),
                state,
            },
            super::Waiter::Nobody,
        );
    }

    /// Every binding, read again (the database's news may have been missed): ours stay as
    /// memory has them (a change of ours may be on its way to the database), the others'
    /// are replaced.
    pub fn resync_bindings(&mut self, now: Instant, wall: u64, all: Vec<Binding>) {
        let ours: Vec<Binding> = self
            .location
            .iter()
            .filter(|b| self.us.cluster.holds(b))
            .cloned()
            .collect();
        let theirs = all.into_iter().filter(|b| !self.us.cluster.holds(b));
        self.location = Location::load(ours.into_iter().chain(theirs));
        self.presence_of_everyone_online(now, wall);
        self.pump(now);
    }

    /// A request another node sent us for a device of `aor` whose flow we hold: down that flow,
    /// as a plain proxy (the first node authenticated the sender and anchors the media; both
    /// stay on the dialog's path).
    pub(super) fn sent_by_node(
        &mut self,
        now: Instant,
        wall: u64,
        id: TransactionId,
        (transport, source): (Transport, SocketAddr),
        request: &openline_sip::Message<'_>,
        aor: &str,
    ) -> Result<(), EndpointError> {
        if !self.us.cluster.is_node(transport, source) {
            tracing::warn!(%source, "a hop between nodes from something that is not one");
            let refusal = Refusal::new(403, "Forbidden (not a node of this cluster)");
            return self.refuse(now, id, source, request, refusal);
        }
        let uri = request.request_uri().map_or("", |u| u.as_str());
        let targets: Vec<Target> = self
            .us
            .held_at(&self.location, (aor, uri), wall)
            .into_iter()
            .filter_map(routing::binding_target)
            .collect();
        if targets.is_empty() {
            let refusal = Refusal::new(
                480,
                "Temporarily Unavailable (the device is not registered at this node)",
            );
            return self.refuse(now, id, source, request, refusal);
        }
        self.forward(
            now,
            Some(id),
            source,
            request,
            targets,
            RouteEdit::DropLeading(1),
        );
        Ok(())
    }
}
