//! The media side of `openline serve`: the embedded relay (or rtpengine driven over ng) and
//! the STUN/TURN server, each on tasks of their own.

use anyhow::Context as _;
use openline_media::net::RelayCounts;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// STUN and TURN served by `openline serve`.
#[derive(Debug, Clone)]
pub struct TurnServeConfig {
    /// Where.
    pub listen: SocketAddr,
    /// Where IPv6 clients are served too, beside an IPv4 `listen`.
    pub listen_v6: Option<SocketAddr>,
    /// Who may allocate.
    pub credentials: openline_media::stun::Credentials,
    /// What allocations may have.
    pub turn: openline_media::turn::TurnConfig,
    /// TURN over TCP and TLS.
    pub streams: Vec<openline_media::net::StreamListen>,
    /// The certificate and key TLS clients are shown (the SIP server's).
    pub certificate: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Binds the STUN/TURN socket and serves it on its own task.
pub(super) async fn start_turn(config: &TurnServeConfig) -> anyhow::Result<()> {
    use openline_media::net::{TurnCounts, bind_turn, serve_turn};
    use openline_media::stun::StunServer;
    use openline_media::turn::TurnServer;
    let certificate = config
        .certificate
        .as_ref()
        .map(|(c, k)| (c.as_path(), k.as_path()));
    let sockets = bind_turn(
        config.listen,
        config.listen_v6,
        &config.streams,
        certificate,
    )
    .context("setting up STUN/TURN")?;
    let mut nonce_key = [0u8; 32];
    getrandom::fill(&mut nonce_key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let stun = StunServer::new(
        concat!("openline/", env!("CARGO_PKG_VERSION")),
        Some(config.credentials.clone()),
        nonce_key,
    );
    let server = TurnServer::new(stun, config.turn.clone());
    tracing::info!(addr = %sockets.udp.local_addr()?, realm = %config.credentials.realm, "STUN/TURN");
    for s in &sockets.streams {
        tracing::info!(addr = %s.local_addr()?, "TURN over TCP and TLS");
    }
    tokio::spawn(async move {
        if let Err(e) =
            serve_turn(sockets, server, std::sync::Arc::new(TurnCounts::default())).await
        {
            tracing::error!(error = %e, "the STUN/TURN server stopped");
        }
    });
    Ok(())
}

/// The media relay embedded in `openline serve`.
#[derive(Debug, Clone)]
pub struct MediaRelayConfig {
    /// The address its ports are bound on.
    pub listen: std::net::IpAddr,
    /// The address written into SDP.
    pub advertise: std::net::IpAddr,
    /// The addresses advertised per family (IPv4, IPv6), when given: a party gets its own.
    pub advertise_by_family: [Option<std::net::IpAddr>; 2],
    /// Whether each party is given the relay's address on its own side instead (no advertise
    /// was set and the ports are bound to a wildcard: a multi-homed or dual-stack host).
    pub per_party: bool,
    /// Its port range (pairs).
    pub ports: (u16, u16),
    /// How long a session may go without media.
    pub idle: Duration,
    /// Where it also takes rtpengine ng requests, if anywhere.
    pub control: Option<SocketAddr>,
    /// Another relay (rtpengine) driven over ng instead: its control address.
    pub remote: Option<SocketAddr>,
}

/// Commands to the embedded relay, with the id their answer carries.
pub(super) type MediaCommands = mpsc::Sender<(u64, openline_media::control::Command)>;
/// The embedded relay's answers.
pub(super) type MediaAnswers = mpsc::Receiver<(u64, openline_media::control::CommandResult)>;
/// Calls whose browser went away, by Call-ID.
pub(super) type BrowsersGone = mpsc::Receiver<String>;

/// Starts the embedded relay: commands in, answers (and browsers gone) out.
pub(super) async fn start_media(
    config: &MediaRelayConfig,
) -> anyhow::Result<(
    MediaCommands,
    (MediaAnswers, BrowsersGone),
    Option<Arc<RelayCounts>>,
)> {
    use openline_media::control::Calls;
    use openline_media::net::{InProcess, serve_relay};
    use openline_media::relay::{PortPool, Relay};
    let (commands_tx, commands) = mpsc::channel(1024);
    let (replies, replies_rx) = mpsc::channel(1024);
    let (gone, gone_rx) = mpsc::channel(64);
    if let Some(relay) = config.remote {
        tracing::info!(%relay, "media relay over ng");
        // rtpengine tells nothing of its own accord: no browser is reported gone.
        let in_process = InProcess {
            commands,
            replies,
            browsers_gone: None,
        };
        tokio::spawn(async move {
            if let Err(e) = openline_media::net::drive_remote(relay, in_process).await {
                tracing::error!(error = %e, "driving the media relay stopped");
            }
        });
        return Ok((commands_tx, (replies_rx, gone_rx), None));
    }
    let relay = Relay::new(PortPool::new(config.ports.0, config.ports.1), config.idle);
    let calls = Calls::new(relay, config.advertise);
    let listen = config.listen;
    tracing::info!(listen = %config.listen, advertise = %config.advertise, low = config.ports.0, high = config.ports.1, "media relay");
    let control = match config.control {
        Some(addr) => {
            let socket = tokio::net::UdpSocket::bind(addr)
                .await
                .with_context(|| format!("binding the media control socket udp:{addr}"))?;
            tracing::info!(addr = %socket.local_addr()?, "media control");
            Some(socket)
        }
        None => None,
    };
    let counts = Arc::new(RelayCounts::default());
    let relay_counts = Arc::clone(&counts);
    tokio::spawn(async move {
        let in_process = InProcess {
            commands,
            replies,
            browsers_gone: Some(gone),
        };
        if let Err(e) = serve_relay(control, Some(in_process), calls, listen, counts).await {
            tracing::error!(error = %e, "the media relay stopped");
        }
    });
    Ok((commands_tx, (replies_rx, gone_rx), Some(relay_counts)))
}
