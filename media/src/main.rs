//! `openline-media`: the relay on its own. So far it serves STUN (RFC 8489) on `--turn`; the
//! relay sessions, TURN allocations and the rtpengine ng control arrive with the rest of
//! issue #6.

use anyhow::Context as _;
use clap::Parser;
use openline_media::net::{DropCounts, serve_stun};
use openline_media::stun::{Credentials, StunServer};
use std::net::SocketAddr;

/// The media relay.
#[derive(Debug, Parser)]
#[command(name = "openline-media", version)]
struct Args {
    /// Where STUN (and, later, TURN) is served: udp:IP:PORT.
    #[arg(long, default_value = "udp:127.0.0.1:3478", value_parser = parse_udp)]
    turn: SocketAddr,
    /// A user for long-term credentials, USER:PASSWORD (repeatable).
    #[arg(long = "turn-user", value_parser = parse_user)]
    turn_users: Vec<(String, String)>,
    /// The realm of those credentials.
    #[arg(long, default_value = "openline")]
    realm: String,
}

fn parse_udp(s: &str) -> Result<SocketAddr, String> {
    let addr = s
        .strip_prefix("udp:")
        .ok_or_else(|| format!("`{s}`: expected udp:IP:PORT"))?;
    addr.parse()
        .map_err(|e| format!("`{addr}`: not an IP:PORT ({e})"))
}

fn parse_user(s: &str) -> Result<(String, String), String> {
    let (user, password) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected USER:PASSWORD"))?;
    if user.is_empty() || password.is_empty() {
        return Err(format!("`{s}`: neither USER nor PASSWORD may be empty"));
    }
    Ok((user.to_string(), password.to_string()))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let credentials = (!args.turn_users.is_empty()).then(|| Credentials {
        realm: args.realm.clone(),
        users: args.turn_users.iter().cloned().collect(),
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
    runtime.block_on(async {
        let socket = tokio::net::UdpSocket::bind(args.turn)
            .await
            .with_context(|| format!("binding udp:{}", args.turn))?;
        println!("listening on udp:{}", socket.local_addr()?);
        let drops = DropCounts::default();
        tokio::select! {
            r = serve_stun(socket, server, &drops) => r.context("the STUN socket failed"),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
