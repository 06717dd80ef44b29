//! `openline serve`'s options (and `doctor`'s, which are the same).

use openline_proxy::core::MediaMode;
use openline_sip::Transport;
use openline_sip::transaction::Destination;
use openline_sip_net::ListenSpec;

/// `openline doctor`: the settings `serve` would run with, and how to answer.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
    /// The findings as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `openline serve`: each setting from the command line, else the config file, else its default.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServeArgs {
    /// A TOML config file with any of the settings below (command-line flags win).
    #[arg(long)]
    pub(crate) config: Option<std::path::PathBuf>,
    /// A domain this server is responsible for (repeatable; default: localhost).
    #[arg(long = "domain")]
    pub(crate) domains: Vec<String>,
    /// Where to listen: udp:IP:PORT, tcp:IP:PORT or tls:IP:PORT (repeatable; TLS needs
    /// --tls-cert and --tls-key; default: udp and tcp on 0.0.0.0:5060).
    #[arg(long = "listen")]
    pub(crate) listen: Vec<ListenSpec>,
    /// Database: sqlite://FILE or postgres://... (default: sqlite://openline.db).
    #[arg(long)]
    pub(crate) db: Option<String>,
    /// RFC 3261 T1 in milliseconds (T2 and T4 keep their defaults; default 500).
    #[arg(long)]
    pub(crate) t1_ms: Option<u64>,
    /// Milliseconds the store gathers binding changes to commit them together (each commit
    /// is an fsync; a REGISTER's 200 waits for its commit). 10 (the default) rather than 5 cost
    /// 4 ms of REGISTER latency and saved a fifth of the CPU per REGISTER at 1,000/s.
    #[arg(long)]
    pub(crate) commit_delay_ms: Option<u64>,
    /// Seconds a forwarded INVITE may ring unanswered before the caller hears 480 (default 60).
    #[arg(long)]
    pub(crate) ring_timeout: Option<u64>,
    /// When calls' media goes through the embedded relay: always (default), never, or nat
    /// (only when the offer's address is not where the INVITE came from).
    #[arg(long, value_parser = parse_media_mode)]
    pub(crate) media: Option<MediaMode>,
    /// The address the relay's ports are bound on (default: the first UDP listen address).
    #[arg(long)]
    pub(crate) media_listen: Option<std::net::IpAddr>,
    /// The address written into SDP for parties to reach the relay, behind 1:1 NAT or in a
    /// cloud VM; given twice, one IPv4 and one IPv6, each party gets its own family's
    /// (default: --media-listen, or, when that is a wildcard, each party's side of this host).
    #[arg(long)]
    pub(crate) media_advertise: Vec<std::net::IpAddr>,
    /// The relay's port range, LOW-HIGH (default 30000-39999).
    #[arg(long, value_parser = parse_port_range)]
    pub(crate) media_ports: Option<(u16, u16)>,
    /// Drive another relay, such as rtpengine, over the ng protocol instead of the embedded
    /// one: udp:IP:PORT of its control socket.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    pub(crate) media_relay: Option<std::net::SocketAddr>,
    /// Where the embedded relay also takes rtpengine ng requests (query, statistics; for
    /// operators and tests): udp:IP:PORT. None by default.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    pub(crate) media_control: Option<std::net::SocketAddr>,
    /// Serve STUN and TURN here too: udp:IP:PORT (usually udp:0.0.0.0:3478). Off by default.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    pub(crate) turn: Option<std::net::SocketAddr>,
    /// STUN and TURN for IPv6 clients too: udp:[IPV6]:PORT (usually udp:[::]:3478), beside
    /// the IPv4 --turn.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    pub(crate) turn6: Option<std::net::SocketAddr>,
    /// TURN over TCP too: tcp:IP:PORT or tls:IP:PORT (repeatable; each takes plain and TLS
    /// clients, TLS with the --tls-cert certificate), for networks that let only TCP out.
    #[arg(long = "turn-tcp")]
    pub(crate) turn_streams: Vec<openline_media::net::StreamListen>,
    /// TURN users with long-term credentials, USER:PASSWORD (repeatable).
    #[arg(long = "turn-user", value_parser = openline_media::args::parse_user)]
    pub(crate) turn_users: Vec<(String, String)>,
    /// coturn's static-auth-secret: USERNAME `expiry[:user]`, password
    /// base64(HMAC-SHA1(secret, USERNAME)), as WebRTC and SIP apps are handed them.
    #[arg(long)]
    pub(crate) turn_secret: Option<String>,
    /// The realm TURN credentials are in (default: the first --domain).
    #[arg(long)]
    pub(crate) turn_realm: Option<String>,
    /// An IPv6 address TURN's relayed ports are bound on too, for clients that ask for IPv6
    /// relayed addresses or one of each (RFC 8656); none by default.
    #[arg(long)]
    pub(crate) turn_relay_ip6: Option<std::net::IpAddr>,
    /// TURN's relayed ports, LOW-HIGH (default 49152-65535).
    #[arg(long, value_parser = parse_port_range)]
    pub(crate) turn_ports: Option<(u16, u16)>,
    /// Let TURN relay to loopback peers (tests, one-host setups).
    #[arg(long)]
    pub(crate) turn_allow_loopback: bool,
    /// Let TURN relay to private-range peers (10/8, 172.16/12, 192.168/16, fc00::/7).
    #[arg(long)]
    pub(crate) turn_allow_private: bool,
    /// Seconds that transactions and answered calls may go on after SIGTERM before the server
    /// exits; meanwhile new requests get 503 with Retry-After (default 30).
    #[arg(long)]
    pub(crate) shutdown_grace: Option<u64>,
    /// The control socket `openline status` and `openline peer list` ask (default: beside
    /// an SQLite database, FILE.sock; else openline.sock here). Only this user may use it.
    #[arg(long)]
    pub(crate) control: Option<std::path::PathBuf>,
    /// Send HEP v3 copies of all SIP traffic to this collector: udp:IP:PORT (HOMER,
    /// heplify-server, sngrep -L). Off by default.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    pub(crate) hep: Option<std::net::SocketAddr>,
    /// The capture agent id HEP copies carry (default 1).
    #[arg(long)]
    pub(crate) hep_id: Option<u32>,
    /// This node's name, when several nodes serve the same domains on one PostgreSQL
    /// (--db postgres://...): bindings record which node holds each device's flow.
    #[arg(long)]
    pub(crate) node: Option<String>,
    /// Where the other nodes send this one requests for the devices it holds: udp:IP:PORT
    /// (default: the first UDP --listen address, when it is not a wildcard).
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    pub(crate) node_address: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics at /metrics here: tcp:IP:PORT (off by default).
    #[arg(long, value_parser = openline_proxy::metrics::parse_listen)]
    pub(crate) metrics: Option<std::net::SocketAddr>,
    /// Most requests under way to one other domain (503 beyond; default 2000): what a domain
    /// that never answers may cost.
    #[arg(long)]
    pub(crate) max_per_domain: Option<usize>,
    /// Most presence subscriptions one subscriber may hold (403 beyond; default 200).
    #[arg(long)]
    pub(crate) max_subscriptions: Option<usize>,
    /// Largest MESSAGE body accepted, bytes (413 beyond; default 16384).
    #[arg(long)]
    pub(crate) max_message_body: Option<usize>,
    /// Most messages stored for one user (a MESSAGE that would need storing beyond it gets
    /// 480; default 10000).
    #[arg(long)]
    pub(crate) message_quota: Option<u64>,
    /// Days a stored message waits for its devices (default 30).
    #[arg(long)]
    pub(crate) message_expiry_days: Option<u64>,
    /// Another domain's server, instead of looking it up in DNS: DOMAIN=tls:IP:PORT (or
    /// udp:, tcp:; repeatable; added to the config file's, replacing the same domain's).
    #[arg(long = "peer", value_parser = parse_peer)]
    pub(crate) peers: Vec<(String, Destination)>,
    /// The DNS server to ask for other domains' SIP servers (IP:PORT); default: the
    /// system's (/etc/resolv.conf).
    #[arg(long)]
    pub(crate) dns: Option<std::net::SocketAddr>,
    /// PEM certificate chain naming every served domain (for tls: listeners, and presented
    /// to other domains' servers).
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// PEM roots that other domains' certificates must chain to (default: the system bundle,
    /// /etc/ssl/certs/ca-certificates.crt).
    #[arg(long)]
    pub(crate) tls_ca: Option<std::path::PathBuf>,
    /// Serve HTTP here: http:IP:PORT (ACME's HTTP-01 answers) or https:IP:PORT (provisioning
    /// links, TLS-ALPN-01 answers; the --tls-cert certificate). Repeatable; off by default.
    #[arg(long = "web", value_parser = openline_proxy::config::web_listen)]
    pub(crate) web: Vec<(bool, std::net::SocketAddr)>,
    /// Shortest registration accepted, in seconds (423 below it; default 60).
    #[arg(long)]
    pub(crate) min_expires: Option<u32>,
    /// Seconds a source or user is refused after repeated authentication failures (default 60).
    #[arg(long)]
    pub(crate) auth_throttle: Option<u64>,
    /// Put the SHA-256 challenge above MD5 (only when every client supports SHA-256).
    #[arg(long)]
    pub(crate) prefer_sha256: bool,
    /// User-Agent prefix of clients to challenge with MD5 only, because they fail on a
    /// second challenge, or pick the wrong one of two (repeatable; default: baresip, JsSIP).
    #[arg(long = "md5-only-agent")]
    pub(crate) md5_only_agents: Vec<String>,
}

fn parse_media_mode(s: &str) -> Result<MediaMode, String> {
    openline_proxy::config::media_mode(s)
}
fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    openline_media::relay::parse_range(s)
}

/// Reads `DOMAIN=TRANSPORT:IP:PORT`.
fn parse_peer(s: &str) -> Result<(String, Destination), String> {
    let (domain, spec) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not DOMAIN=udp:IP:PORT"))?;
    let spec: ListenSpec = spec.parse().map_err(|e| format!("{e}"))?;
    if !matches!(
        spec.transport,
        Transport::Udp | Transport::Tcp | Transport::Tls
    ) {
        return Err(format!("`{s}`: a peer is reached over udp, tcp or tls"));
    }
    Ok((
        domain.to_ascii_lowercase(),
        Destination {
            transport: spec.transport,
            addr: spec.addr,
        },
    ))
}
