//! The driver's side of a cluster (issue #9): this node says it lives (a row in `nodes`,
//! refreshed every few seconds), learns which others do, and hears every change the others
//! make through PostgreSQL's LISTEN/NOTIFY, which it hands to the core as news.

use super::wall_clock;
use openline_registrar::Binding;
use openline_registrar::store::{BindingStore, NewsListener, SqlStore, StoreNews};
use openline_sip::transaction::Destination;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// How often a node says it lives.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node silent this long is taken for dead: its devices are not routed to until they
/// register again through a live node. Until then a call for one of them waits on a node
/// that never answers, so this is short; five missed heartbeats (a database stalled that
/// long) are needed to take a live node for dead. Migration 0005's `nodes_back` uses it.
const ALIVE_FOR: u64 = 10;

/// What the cluster's tasks hand the server loop.
#[derive(Debug)]
pub(super) enum FromCluster {
    /// A change some writer made, for the core as it was told.
    News(StoreNews),
    /// The bindings of an address of record, read again after another node changed them.
    Replace(String, Vec<Binding>),
    /// Everything read again after news may have been missed.
    Resync(Vec<Binding>),
    /// The nodes alive now.
    Nodes(Vec<(String, Destination)>),
}

/// Where node `name` said it takes requests (`udp:IP:PORT`).
fn destination(address: &str) -> Option<Destination> {
    let spec: openline_sip_net::ListenSpec = address.parse().ok()?;
    Some(Destination {
        transport: spec.transport,
        addr: spec.addr,
    })
}

/// Says we live now and reads who else does.
async fn heartbeat(
    store: &SqlStore,
    node: &str,
    address: &str,
) -> Result<Vec<(String, Destination)>, openline_registrar::store::StoreError> {
    let wall = wall_clock();
    store.announce_node(node, address, wall).await?;
    let nodes = store.nodes(wall.saturating_sub(ALIVE_FOR)).await?;
    Ok(nodes
        .into_iter()
        .filter_map(|(name, address)| Some((name, destination(&address)?)))
        .collect())
}

/// A new listening connection, once the database takes one.
async fn listen_again(store: &SqlStore) -> NewsListener {
    loop {
        match store.listen().await {
            Ok(l) => return l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for the cluster's changes yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Says we live and runs the tasks that feed the loop, from `listener` (opened before the
/// caller loaded anything, so no change falls between the load and the first news).
pub(super) async fn start(
    (store, mut listener): (SqlStore, NewsListener),
    node: String,
    address: String,
    users: Arc<Notify>,
) -> anyhow::Result<mpsc::Receiver<FromCluster>> {
    let first = heartbeat(&store, &node, &address).await?;
    tracing::info!(%node, %address, nodes = first.len(), "cluster node");
    let (tx, rx) = mpsc::channel(4096);
    let _ = tx.send(FromCluster::Nodes(first)).await;
    let nodes_changed = Arc::new(Notify::new());
    {
        let (store, tx, nodes_changed) = (store.clone(), tx.clone(), Arc::clone(&nodes_changed));
        let node = node.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = nodes_changed.notified() => {}
                }
                match heartbeat(&store, &node, &address).await {
                    Ok(nodes) => {
                        if tx.send(FromCluster::Nodes(nodes)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not say this node lives"),
                }
            }
        });
    }
    tokio::spawn(async move {
        loop {
            let news = match listener.next().await {
                Ok(n) => n,
                Err(e @ openline_registrar::store::StoreError::Corrupt { .. }) => {
                    // A notification that does not read (a newer node's?): the connection is
                    // fine, but what it said is unknown, so everything is read again.
                    tracing::warn!(error = %e, "cluster news not understood");
                    StoreNews::Lost
                }
                Err(e) => {
                    // sqlx takes a reset connection (ECONNRESET) for an error, not a loss, and
                    // would keep reading the dead one: listen again on a new one.
                    tracing::warn!(error = %e, "cluster news: listening again");
                    listener = listen_again(&store).await;
                    StoreNews::Lost
                }
            };
            let sent = match news {
                // Too large to be told whole: read again (not our own, already in memory).
                StoreNews::BindingReload { writer, aor } if writer != node => {
                    match store.bindings_of(&aor, wall_clock()).await {
                        Ok(list) => FromCluster::Replace(aor, list),
                        Err(e) => {
                            tracing::warn!(error = %e, %aor, "could not read changed bindings");
                            continue;
                        }
                    }
                }
                StoreNews::BindingReload { .. } => continue,
                StoreNews::Users => {
                    users.notify_one();
                    continue;
                }
                StoreNews::Nodes => {
                    nodes_changed.notify_one();
                    continue;
                }
                StoreNews::Lost => {
                    tracing::warn!("cluster news lost for a while: reading the bindings again");
                    users.notify_one();
                    nodes_changed.notify_one();
                    // The database may be away for a while yet: until it answers.
                    let all = loop {
                        match store.bindings(wall_clock()).await {
                            Ok(all) => break all,
                            Err(e) => {
                                tracing::warn!(error = %e, "could not read the bindings again");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    };
                    FromCluster::Resync(all)
                }
                news => FromCluster::News(news),
            };
            if tx.send(sent).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
