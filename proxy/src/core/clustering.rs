//! The core's side of a cluster (issue #9): what other nodes changed, as the database tells
//! it, applied to the location table, the mailbox counts and presence; and requests another
//! node sends us for a device whose flow we hold.

use super::ServerCore;
use crate::routing::{self, Target};
use openline_registrar::store::Published;
use openline_registrar::{Binding, BindingKey, ChangeSet, Location};
use openline_sip::Transport;
use openline_sip::endpoint::EndpointError;
use openline_sip::message::{Refusal, RouteEdit};
use openline_sip::transaction::{Destination, TransactionId};
use std::net::SocketAddr;
use std::time::Instant;

/// A change to one address of record's bindings that another node made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingNews {
    /// Made or refreshed.
    Upsert(Binding),
    /// Gone.
    Delete(BindingKey),
    /// All of them, read again.
    Replace(Vec<Binding>),
}

/// What the database told of a change made by a writer (a node's name, or an admin command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterNews {
    /// Bindings of `aor` changed.
    Bindings {
        /// Who made the change.
        writer: String,
        /// Whose.
        aor: String,
        /// What.
        news: BindingNews,
    },
    /// A message for `recipient` was stored (`stored`) or is gone.
    Mail {
        /// Who.
        writer: String,
        /// The mailbox.
        recipient: String,
        /// Stored, else gone.
        stored: bool,
    },
    /// What `presentity` (`user@domain`) published through another node (None: withdrawn).
    Published {
        /// Who.
        writer: String,
        /// Whose.
        presentity: String,
        /// What.
        state: Option<Published>,
    },
    /// `watcher` may (or no longer may) see `presentity` from another domain.
    Allowed {
        /// Who.
        writer: String,
        /// Whose presence.
        presentity: String,
        /// Who sees it.
        watcher: String,
        /// Allowed, else taken back.
        allowed: bool,
    },
}

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

    /// A change another writer made; our own were applied when we made them.
    pub fn handle_cluster_news(&mut self, now: Instant, wall: u64, news: ClusterNews) {
        match news {
            ClusterNews::Bindings { writer, .. }
            | ClusterNews::Mail { writer, .. }
            | ClusterNews::Allowed { writer, .. }
            | ClusterNews::Published { writer, .. }
                if writer == self.writer_name() => {}
            ClusterNews::Published {
                presentity, state, ..
            } => self.take_publication(now, wall, &presentity, state),
            ClusterNews::Allowed {
                presentity,
                watcher,
                allowed,
                ..
            } => self.presence_permission(now, (presentity, watcher), allowed),
            ClusterNews::Bindings { aor, news, .. } => {
                let change = match news {
                    BindingNews::Upsert(b) => {
                        // Its device may be owed messages stored from now on.
                        self.text.devices.load(&aor, &b.device(), wall);
                        ChangeSet {
                            aor: aor.clone(),
                            upserts: vec![b],
                            removals: Vec::new(),
                        }
                    }
                    BindingNews::Delete(key) => ChangeSet {
                        aor: aor.clone(),
                        upserts: Vec::new(),
                        removals: vec![key],
                    },
                    BindingNews::Replace(list) => ChangeSet {
                        aor: aor.clone(),
                        removals: self
                            .location
                            .bindings(&aor)
                            .iter()
                            .map(Binding::key)
                            .collect(),
                        upserts: list,
                    },
                };
                self.location.apply(&change);
                self.presence_devices(now, wall, &aor);
            }
            ClusterNews::Mail {
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
        }
        self.pump(now);
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
        for aor in self.presence.agent.online() {
            let aor = aor.trim_start_matches("sip:").to_string();
            self.presence_devices(now, wall, &aor);
        }
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
        let uri = request.request_uri().map(|u| u.as_str());
        let targets: Vec<Target> = self
            .location
            .live(aor, wall)
            .into_iter()
            .filter(|b| self.us.cluster.holds(b) && Some(b.contact.as_str()) == uri)
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
            RouteEdit::DropFirst,
        );
        Ok(())
    }
}
