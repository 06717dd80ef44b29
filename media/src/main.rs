//! `openline-media`: the relay on its own. Media sessions on ports of `--listen` within
//! `--ports`, driven over `--control` by the rtpengine ng protocol (Kamailio's rtpengine
//! module, or our proxy); STUN (RFC 8489) and TURN (RFC 8656) on `--turn`, relaying from
//! `--turn-ports` for users of `--turn-user` and of coturn-style `--turn-secret` credentials.

use anyhow::Context as _;
use clap::Parser;
use openline_media::args::{parse_udp, parse_user};
use openline_media::control::Calls;
use openline_media::net::{
    RelayCounts, StreamListen, TurnCounts, bind_turn, serve_relay, serve_turn,
};
use openline_media::relay::{PortPool, Relay};
use openline_media::stun::{Credentials, StunServer};
use openline_media::turn::{PeerPolicy, TurnConfig, TurnServer};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The media relay.
#[derive(Debug, Parser)]
#[command(name = "openline-media", version)]
struct Args {
    /// Where STUN and TURN are served: udp:IP:PORT.
    #[arg(long, default_value = "udp:127.0.0.1:3478", value_parser = parse_udp)]
    turn: SocketAddr,
    /// STUN and TURN for IPv6 clients too: udp:[IPV6]:PORT, beside the IPv4 --turn.
    #[arg(long, value_parser = parse_udp)]
    turn6: Option<SocketAddr>,
    /// TURN over TCP too: tcp:IP:PORT or tls:IP:PORT (repeatable; each takes plain and TLS
    /// clients alike, TLS when --turn-cert is given).
    #[arg(long = "turn-tcp")]
    turn_streams: Vec<StreamListen>,
    /// Seconds a TURN connection over TCP/TLS may stay without an allocation before it is
    /// closed.
    #[arg(long, default_value_t = 30)]
    turn_tcp_idle: u64,
    /// PEM certificate chain shown to TURN clients over TLS.
    #[arg(long, requires = "turn_key")]
    turn_cert: Option<std::path::PathBuf>,
    /// PEM private key of --turn-cert.
    #[arg(long, requires = "turn_cert")]
    turn_key: Option<std::path::PathBuf>,
    /// A user for long-term credentials, USER:PASSWORD (repeatable).
    #[arg(long = "turn-user", value_parser = parse_user)]
    turn_users: Vec<(String, String)>,
    /// coturn's `static-auth-secret`: USERNAME `expiry[:user]`, password
    /// base64(HMAC-SHA1(secret, USERNAME)).
    #[arg(long)]
    turn_secret: Option<String>,
    /// TURN's relayed ports, LOW-HIGH (one per allocation).
    #[arg(long, default_value = "49152-65535", value_parser = openline_media::relay::parse_range)]
    turn_ports: (u16, u16),
    /// The address TURN's relayed ports are bound on (default: the --turn address).
    #[arg(long)]
    turn_relay_ip: Option<IpAddr>,
    /// An IPv6 address TURN's relayed ports are bound on too (when the other is IPv4): clients
    /// may ask for IPv6 relayed addresses or one of each (RFC 8656).
    #[arg(long)]
    turn_relay_ip6: Option<IpAddr>,
    /// Allocations one TURN user may hold at once.
    #[arg(long, default_value_t = 10)]
    turn_user_quota: usize,
    /// Let TURN relay to loopback peers (tests, one-host setups).
    #[arg(long)]
    turn_allow_loopback: bool,
    /// Let TURN relay to private-range peers (10/8, 172.16/12, 192.168/16, fc00::/7).
    #[arg(long)]
    turn_allow_private: bool,
    /// The realm of those credentials.
    #[arg(long, default_value = "openline")]
    realm: String,
    /// The address media ports are bound on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// The address written into SDP for parties to reach the relay (default: --listen).
    #[arg(long)]
    advertise: Option<IpAddr>,
    /// The media port range, LOW-HIGH (pairs: even RTP, odd RTCP).
    #[arg(long, default_value = "30000-39999", value_parser = openline_media::relay::parse_range)]
    ports: (u16, u16),
    /// Where the ng control protocol is served: udp:IP:PORT.
    #[arg(long, default_value = "udp:127.0.0.1:2223", value_parser = parse_udp)]
    control: SocketAddr,
    /// Seconds without media after which a session ends.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
}

/// Says a socket is ready on stdout (tests read it); nobody reading is no reason to stop.
fn announce(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let credentials =
        (!args.turn_users.is_empty() || args.turn_secret.is_some()).then(|| Credentials {
            realm: args.realm.clone(),
            users: args.turn_users.iter().cloned().collect(),
            secret: args.turn_secret.clone(),
        });
    let mut nonce_key = [0u8; 32];
    getrandom::fill(&mut nonce_key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let server = StunServer::new(
        concat!("openline-media/", env!("CARGO_PKG_VERSION")),
        credentials,
        nonce_key,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let relay = Relay::new(
        PortPool::new(args.ports.0, args.ports.1),
        Duration::from_secs(args.idle_timeout.max(1)),
    );
    let calls = Calls::new(relay, args.advertise.unwrap_or(args.listen));
    runtime.block_on(async {
        let certificate = args.turn_cert.as_deref().zip(args.turn_key.as_deref());
        let mut sockets = bind_turn(args.turn, args.turn6, &args.turn_streams, certificate)?;
        sockets.stream_idle = Duration::from_secs(args.turn_tcp_idle.max(1));
        let control = tokio::net::UdpSocket::bind(args.control)
            .await
            .with_context(|| format!("binding the control socket udp:{}", args.control))?;
        announce(&format!("listening on udp:{}", sockets.udp.local_addr()?));
        announce(&format!("control on udp:{}", control.local_addr()?));
        if let Some(v6) = &sockets.udp_v6 {
            announce(&format!("listening on udp:{}", v6.local_addr()?));
        }
        for s in &sockets.streams {
            announce(&format!("listening on tcp:{}", s.local_addr()?));
        }
        let mut turn = TurnConfig::new(
            args.turn_relay_ip.unwrap_or(args.turn.ip()),
            args.turn_ports,
        );
        turn.user_quota = args.turn_user_quota;
        turn.relay_ip_v6 = args.turn_relay_ip6;
        turn.peers = PeerPolicy {
            allow_loopback: args.turn_allow_loopback,
            allow_private: args.turn_allow_private,
        };
        let turn = TurnServer::new(server, turn);
        let (turn_counts, counts) = (Arc::new(TurnCounts::default()), Arc::new(RelayCounts::default()));
        tokio::select! {
            r = serve_turn(sockets, turn, turn_counts) => r.context("the STUN/TURN socket failed"),
            r = serve_relay(Some(control), None, calls, args.listen, counts) => r.context("the control socket failed"),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
