//! The composition root: opens the store, binds the network, runs the core, stops on request.

use crate::core::{CoreConfig, ServerCore, StoreOp};
use anyhow::Context as _;
use openline_registrar::store::{
    BindingStore, MailboxStore, PresenceStore, ProvisionStore as _, Store, UserStore,
};
use openline_sip::Entropy;
use openline_sip_net::hep::HepSender;
use openline_sip_net::{Limits, ListenSpec, LocateError, Locator, Tls, TlsFiles};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

mod cluster;
mod media;
mod push;
mod store;
mod web;
pub use media::{MediaRelayConfig, TurnServeConfig};
use media::{start_media, start_turn};
use store::{purge_mailbox, store_worker, users_watcher};
pub use web::{AcmeServe, WebListen, WebServe};

/// What `openline serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The core's settings.
    pub core: CoreConfig,
    /// Where to listen.
    pub listen: Vec<ListenSpec>,
    /// Database URL.
    pub db: String,
    /// How long the store gathers changes before committing them together.
    pub commit_delay: Duration,
    /// Our certificate and the roots we trust, for TLS.
    pub tls: Option<TlsFiles>,
    /// The DNS server for other domains' look-ups; None: the system's.
    pub dns: Option<SocketAddr>,
    /// The embedded media relay; None when calls' media is never anchored.
    pub media: Option<MediaRelayConfig>,
    /// The embedded STUN/TURN server; None when not asked for.
    pub turn: Option<TurnServeConfig>,
    /// Where Prometheus scrapes /metrics; None: no metrics.
    pub metrics: Option<SocketAddr>,
    /// After SIGTERM, how long transactions and answered calls may go on before we exit.
    pub grace: Duration,
    /// Where HEP v3 copies of all SIP traffic go, and the capture agent id they carry.
    pub hep: Option<(SocketAddr, u32)>,
    /// The control socket `openline status` asks.
    pub control: std::path::PathBuf,
    /// This server as a node of a cluster on one PostgreSQL; None alone.
    pub cluster: Option<ClusterServe>,
    /// Certificates from an ACME CA, written where `tls` reads them; None: files by hand.
    pub acme: Option<AcmeServe>,
    /// The HTTP(S) listeners: ACME challenge answers and provisioning links.
    pub web: Option<WebServe>,
    /// Push notifications, when `[push]` is configured.
    pub push: Option<crate::config::PushSection>,
    /// Who may open SIP WebSockets (`ws:`/`wss:` listeners).
    pub websocket: openline_sip_net::WebSocketPolicy,
    /// Connections and handshakes accepted at once.
    pub limits: Limits,
}

/// A node of a cluster (issue #9).
#[derive(Debug, Clone)]
pub struct ClusterServe {
    /// Its name, written into the bindings it makes.
    pub node: String,
    /// Where the other nodes send it requests (over UDP).
    pub address: SocketAddr,
}

/// Randomness from the operating system, fetched 1 KiB at a time: one getrandom call per tag or
/// nonce was 1.7% of the server's CPU at 12,000 REGISTER/s. Each byte is handed out once.
#[derive(Debug)]
pub struct OsEntropy {
    buf: [u8; 1024],
    used: usize,
}

impl Default for OsEntropy {
    fn default() -> Self {
        OsEntropy {
            buf: [0; 1024],
            used: 1024,
        }
    }
}

impl Entropy for OsEntropy {
    fn fill(&mut self, mut dest: &mut [u8]) {
        while !dest.is_empty() {
            if self.used == self.buf.len() {
                if let Err(e) = getrandom::fill(&mut self.buf) {
                    // No randomness means no safe tags or nonces: stopping beats running predictable.
                    tracing::error!(error = %e, "the operating system gave no randomness");
                    std::process::abort();
                }
                self.used = 0;
            }
            let n = dest.len().min(self.buf.len() - self.used);
            let (now, rest) = dest.split_at_mut(n);
            now.copy_from_slice(&self.buf[self.used..self.used + n]);
            self.buf[self.used..self.used + n].fill(0);
            self.used += n;
            dest = rest;
        }
    }
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// Seconds since the epoch: the time that is persisted.
#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
pub fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What SIGHUP changes in a running server, from a config file already read and checked.
#[derive(Debug)]
pub struct Reload {
    /// Other domains' configured servers.
    pub peers: Vec<(String, openline_sip::transaction::Destination)>,
    /// New certificates, when TLS is configured.
    pub tls: Option<Tls>,
}

/// Runs the server until `shutdown` completes (then drains); `reloads` brings what SIGHUP
/// changes; `bound` hears the bound addresses once ready.
pub async fn run(
    mut config: ServeConfig,
    shutdown: impl Future<Output = ()>,
    mut reloads: mpsc::Receiver<Reload>,
    bound: impl FnOnce(&[(openline_sip::Transport, SocketAddr)]),
) -> anyhow::Result<()> {
    let writer = config
        .cluster
        .as_ref()
        .map_or(crate::core::ALONE, |c| c.node.as_str())
        .to_string();
    let store = Store::open_as(&config.db, &writer)
        .await
        .with_context(|| format!("opening the database {}", config.db))?;
    let force_users = Arc::new(tokio::sync::Notify::new());
    // A node listens before it loads, so that no change falls between the two.
    let listener = match (&config.cluster, store.sql()) {
        (Some(_), Some(sql)) => Some((
            sql.clone(),
            sql.listen()
                .await
                .context("listening for the cluster's changes")?,
        )),
        (Some(_), None) => anyhow::bail!("a cluster's nodes share PostgreSQL, not {}", config.db),
        (None, _) => None,
    };
    let users = store.users().await.context("loading users")?;
    let bindings = store
        .bindings(wall_clock())
        .await
        .context("loading bindings")?;
    let expiry = config.core.text.expiry.as_secs();
    let counts = store
        .mailbox_counts()
        .await
        .context("loading the mailbox")?;
    let devices = store
        .devices(wall_clock().saturating_sub(expiry))
        .await
        .context("loading devices")?;
    tracing::info!(users = users.len(), bindings = bindings.len(), mailboxes = counts.len(), devices = devices.len(), db = %config.db, "store loaded");
    web::prepare(&config)?;
    let tls = match &config.tls {
        Some(files) => Some(Tls::load(files).context("loading the TLS certificate")?),
        None => None,
    };
    let mut network = openline_sip_net::bind(
        &config.listen,
        config.limits.clone(),
        tls,
        config.websocket.clone(),
    )
    .await?;
    let mut cluster_rx = match (&config.cluster, listener) {
        (Some(c), Some(listener)) => {
            // Port 0 was asked: the port the UDP socket got on that address.
            let address = match c.address.port() {
                0 => network
                    .local
                    .iter()
                    .find(|(t, a)| *t == openline_sip::Transport::Udp && a.ip() == c.address.ip())
                    .map_or(c.address, |(_, a)| *a),
                _ => c.address,
            };
            let address = format!("udp:{address}");
            let joined =
                cluster::start(listener, c.node.clone(), address, Arc::clone(&force_users));
            Some(joined.await.context("joining the cluster")?)
        }
        _ => None,
    };
    // Without a resolver only configured peers are reachable; the server still serves its own.
    let locator = Locator::new(config.dns)
        .inspect_err(
            |e| tracing::warn!(error = %e, "no DNS resolver: other domains only by --peer"),
        )
        .ok();
    let (located_tx, mut located_rx) = mpsc::channel(256);
    for (transport, addr) in &network.local {
        tracing::info!(%transport, %addr, "listening");
    }
    let (acme_tx, mut acme_rx) = mpsc::channel(4);
    let (fresh_tx, fresh_rx) = mpsc::channel(16);
    let web = web::start(&config, &store, &network.local, (acme_tx, fresh_tx)).await?;
    // Pushes to phones that sleep: the services' keys read now, the driver on its own task.
    let (outcome_tx, mut push_rx) = mpsc::unbounded_channel();
    let push_tx = match &config.push {
        Some(section) => {
            let pusher = push::load(section)?;
            push::advertise(&pusher, &mut config.core.push);
            Some(push::start(pusher, section, outcome_tx)?)
        }
        None => None,
    };
    let mut core = ServerCore::new(
        config.core,
        users,
        bindings,
        Box::new(OsEntropy::default()),
        Box::new(OsEntropy::default()),
    );
    core.set_local(&network.local);
    core.set_advertised(&network.advertised);
    if let Some(m) = &config.media {
        core.set_media_facing(m.per_party && m.remote.is_none());
        core.set_media_advertised(m.advertise_by_family);
    }
    core.set_addresses(std::sync::Arc::new(network.addresses.clone()));
    core.load_mailbox(counts, devices);
    core.load_presence_allowed(now(), store.allowed().await?);
    if let (Some(_), Some(sql)) = (&config.cluster, store.sql()) {
        let published = sql.publications(wall_clock()).await?;
        core.load_publications(now(), wall_clock(), published);
    }

    let (op_tx, op_rx) = mpsc::channel::<StoreOp>(4096);
    let (done_tx, mut done_rx) = mpsc::channel(4096);
    let worker = tokio::spawn(store_worker(
        store.clone(),
        op_rx,
        done_tx,
        (config.commit_delay, writer.clone()),
    ));
    let (users_tx, mut users_rx) = mpsc::channel(4);
    let watcher = tokio::spawn(users_watcher(
        store.clone(),
        users_tx,
        Arc::clone(&force_users),
        fresh_rx,
    ));
    // Without a relay, commands are answered at once with the media left where it is.
    let (media_tx, (mut media_rx, mut gone_rx), relay_counts) = match &config.media {
        Some(m) => {
            let (tx, rx, counts) = start_media(m).await?;
            (Some(tx), rx, counts)
        }
        None => (None, (mpsc::channel(1).1, mpsc::channel(1).1), None),
    };
    if let Some(addr) = config.metrics {
        crate::metrics::install(addr)?;
        tracing::info!(%addr, "metrics at /metrics");
    }
    // The gauges, once a second (only with metrics: reading them walks the transactions).
    let mut levels = tokio::time::interval(Duration::from_secs(1));
    if let Some(t) = &config.turn {
        start_turn(t).await?;
    }
    let mut purge = tokio::time::interval(Duration::from_secs(60));
    // SQLite's WAL checkpoints, off the commit path; on their own task so a slow one never holds
    // up the SIP loop.
    let checkpointer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = store.checkpoint().await {
                    tracing::warn!(error = %e, "database checkpoint failed");
                }
            }
        })
    };
    let (control_tx, mut control_rx) = mpsc::channel::<crate::control::Asked>(16);
    crate::control::serve(&config.control, control_tx)?;
    #[allow(clippy::disallowed_methods)] // the driver reads the clock
    let started = Instant::now();
    bound(&network.local);
    let hep = match config.hep {
        Some((collector, agent)) => {
            let sender = HepSender::new(collector, agent)
                .with_context(|| format!("HEP copies to udp:{collector}"))?;
            tracing::info!(%collector, agent, "HEP v3 copies of SIP traffic");
            Some(sender)
        }
        None => None,
    };
    // Our address on a transport, as HEP copies name it.
    let local = network.local.clone();
    let ours = move |transport: openline_sip::Transport| {
        local
            .iter()
            .find(|(t, _)| *t == transport)
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |(_, a)| *a)
    };

    tokio::pin!(shutdown);
    // One timer, moved when the core's next deadline moves: a new one per loop turn cost a
    // timer-wheel insertion and removal per datagram.
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    // Set by the shutdown signal: the loop goes on, taking no new work, until the core has
    // nothing under way or the grace time is up.
    let mut draining: Option<tokio::time::Instant> = None;
    loop {
        if draining.is_some() && core.drained() {
            tracing::info!("drained");
            break;
        }
        let wake = core.poll_timeout();
        if wake != armed {
            if let Some(at) = wake {
                timer.as_mut().reset(at.into());
            }
            armed = wake;
        }
        tokio::select! {
            _ = &mut shutdown, if draining.is_none() => {
                tracing::info!(grace = ?config.grace, "draining: no new work, finishing what is under way");
                draining = Some(tokio::time::Instant::now() + config.grace);
                core.begin_drain(now());
            }
            _ = tokio::time::sleep_until(draining.unwrap_or_else(tokio::time::Instant::now)), if draining.is_some() => {
                tracing::warn!("grace time up: stopping with work under way");
                break;
            }
            received = network.inbound.recv() => {
                let Some(r) = received else { break };
                if let Some(h) = &hep {
                    h.copy((r.source, ours(r.transport)), r.transport, &r.data);
                }
                core.handle_received(now(), wall_clock(), (r.transport, r.source), &r.data, r.peer.as_deref());
            }
            Some(t) = network.failed.recv() => core.handle_send_failure(now(), &t),
            Some(lost) = network.closed.recv() => core.handle_connection_lost(now(), lost),
            Some((id, found)) = located_rx.recv() => core.handle_located(now(), id, found),
            Some(outcomes) = done_rx.recv() => {
                let wall = wall_clock();
                for (id, outcome) in outcomes {
                    core.handle_stored(now(), wall, id, outcome);
                }
            }
            Some((list, allowed, asked)) = users_rx.recv() => {
                core.replace_users(list);
                core.load_presence_allowed(now(), allowed);
                for done in asked {
                    let _ = done.send(());
                }
            }
            Some((id, result)) = media_rx.recv() => core.handle_media(now(), id, result),
            Some(call_id) = gone_rx.recv() => core.handle_browser_gone(now(), &call_id),
            Some((id, outcome)) = push_rx.recv() => core.handle_pushed(id, outcome),
            Some(news) = async { cluster_rx.as_mut()?.recv().await }, if cluster_rx.is_some() => match news {
                cluster::FromCluster::News(n) => core.handle_cluster_news(now(), wall_clock(), n),
                cluster::FromCluster::Replace(aor, list) => core.replace_bindings(now(), wall_clock(), aor, list),
                cluster::FromCluster::Resync(all) => core.resync_bindings(now(), wall_clock(), all),
                cluster::FromCluster::Nodes(nodes) => core.set_nodes(nodes),
            },
            _ = purge.tick() => {
                let wall = wall_clock();
                core.purge(now(), wall);
                if let Err(e) = store.purge_expired(wall).await {
                    tracing::warn!(error = %e, "could not purge expired bindings");
                }
                if let Err(e) = store.purge_tokens(wall).await {
                    tracing::warn!(error = %e, "could not purge expired provisioning links");
                }
                match purge_mailbox(&store, wall, expiry).await {
                    Ok(counts) => core.refresh_mailbox(counts, wall.saturating_sub(expiry)),
                    Err(e) => tracing::warn!(error = %e, "could not purge expired messages"),
                }
            }
            Some((query, reply)) = control_rx.recv() => {
                let answer = match query {
                    crate::control::Query::Status => {
                        let mut status = core.status();
                        status["version"] = env!("CARGO_PKG_VERSION").into();
                        status["uptime_seconds"] = started.elapsed().as_secs().into();
                        if let Some(r) = &relay_counts {
                            status["relay_sessions"] = r.calls.load(std::sync::atomic::Ordering::Relaxed).into();
                            status["media_calls"] = crate::admin::quality_json(&r.live());
                        }
                        status
                    }
                    crate::control::Query::Peers => core.peers(now()),
                };
                let _ = reply.send(answer);
            }
            Some(reload) = reloads.recv() => {
                core.set_peers(reload.peers);
                if let Some(tls) = reload.tls {
                    if let Err(e) = network.sender.reload_tls(tls) {
                        tracing::warn!(error = %e, "certificates not reloaded");
                    }
                    web.reload_https(config.tls.as_ref());
                }
                force_users.notify_one();
                tracing::info!("reloaded: peers, certificates, users");
            }
            Some(event) = acme_rx.recv() => web.on_acme(event, config.tls.as_ref(), &network.sender),
            _ = levels.tick(), if config.metrics.is_some() => {
                crate::metrics::set_levels(core.levels(), relay_counts.as_deref());
                web.set_levels(wall_clock());
            }
            _ = &mut timer, if armed.is_some() => {
                core.handle_timeout(now());
                // Fired: re-arm even if the next deadline is the same instant.
                armed = None;
            }
        }
        while let Some(op) = core.poll_store_op() {
            if op_tx.send(op).await.is_err() {
                anyhow::bail!("the store worker stopped");
            }
        }
        while let Some(op) = core.poll_media_op() {
            match &media_tx {
                Some(tx) => {
                    if tx.send((op.id, op.command)).await.is_err() {
                        anyhow::bail!("the media relay stopped");
                    }
                }
                None => tracing::debug!("media work with no relay dropped"),
            }
        }
        while let Some(job) = core.poll_push() {
            if let Some(tx) = &push_tx {
                if tx.send(job).is_err() {
                    anyhow::bail!("the push driver stopped");
                }
            }
        }
        while let Some(lookup) = core.poll_lookup() {
            let answer = located_tx.clone();
            let locator = locator.clone();
            tokio::spawn(async move {
                let found = match locator {
                    Some(l) => l.locate(&lookup.uri, &lookup.transports).await,
                    None => Err(LocateError::Failed("no resolver".into())),
                };
                let _ = answer.send((lookup.id, found)).await;
            });
        }
        while let Some(t) = core.poll_transmit() {
            crate::metrics::sending(&t.payload);
            if let Some(h) = &hep {
                let to = t.destination;
                h.copy((ours(to.transport), to.addr), to.transport, &t.payload);
            }
            let (name, connect) = core.send_policy(&t.destination);
            if let Err(e) = network.sender.send(&t, name, connect).await {
                tracing::debug!(error = %e, "send failed");
                core.handle_send_failure(now(), &t);
            }
        }
    }
    tracing::info!("shutting down");
    // Let the worker finish what was queued, so no accepted change is lost.
    drop(op_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    watcher.abort();
    checkpointer.abort();
    // A final checkpoint, so the database file alone holds everything.
    if let Err(e) = store.checkpoint().await {
        tracing::warn!(error = %e, "final database checkpoint failed");
    }
    network.sender.close_connections();
    if let (Some(c), Some(sql)) = (&config.cluster, store.sql()) {
        // The others stop sending us requests now rather than when our heartbeat lapses.
        if let Err(e) = sql.retire_node(&c.node).await {
            tracing::warn!(error = %e, "could not say this node stopped");
        }
    }
    let _ = std::fs::remove_file(&config.control);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn buffered_entropy_never_repeats_across_refills() {
        let mut e = OsEntropy::default();
        let mut seen = std::collections::HashSet::new();
        // 16-byte draws over four refills of the buffer: every draw is distinct and not zero.
        for _ in 0..300 {
            let mut token = [0u8; 16];
            e.fill(&mut token);
            assert_ne!(token, [0; 16]);
            assert!(seen.insert(token), "a draw repeated");
        }
        let mut odd = [0u8; 1500]; // larger than the buffer, from the middle of one
        e.fill(&mut odd);
        assert!(odd[1024..].iter().any(|&b| b != 0) && odd[..64].iter().any(|&b| b != 0));
    }
}
