//! `openline`: the server binary.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use openline_proxy::admin::{self, DEFAULT_DB, PresenceAction, UserAction, say};
use openline_proxy::config;
use openline_proxy::config::MediaSection;
use openline_proxy::core::{CoreConfig, MediaMode};
use openline_proxy::server::{self, ServeConfig};
use openline_proxy::server::{MediaRelayConfig, TurnServeConfig};
use openline_proxy::text::TextConfig;
use openline_registrar::RegistrarConfig;
use openline_sip::EndpointConfig;
use openline_sip::Transport;
use openline_sip::transaction::{Destination, TimerConfig};
use openline_sip_net::{ListenSpec, TlsFiles};
use std::time::Duration;

/// Openline: a federated SIP server for voice and text.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Check a config file without starting: errors name the file, line and column.
    CheckConfig {
        /// The file.
        file: std::path::PathBuf,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Who may see whose presence from another domain.
    Presence {
        #[command(subcommand)]
        action: PresenceAction,
    },
    /// The running server: bindings, calls, relay sessions and stored messages per domain.
    Status(admin::StatusArgs),
    /// Checks this configuration (and the server running it) as a user sees it: ports,
    /// addresses, DNS, certificates, database, relay ports, clock; says what to fix. Exits 1
    /// when something is broken. Takes `serve`'s options; changes nothing.
    Doctor(Box<DoctorArgs>),
    /// Other domains' servers, as the running server has them.
    Peer {
        #[command(subcommand)]
        action: admin::PeerAction,
    },
}

/// `openline doctor`: the settings `serve` would run with, and how to answer.
#[derive(Debug, Clone, clap::Args)]
struct DoctorArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// The findings as JSON.
    #[arg(long)]
    json: bool,
}

/// `openline serve`: each setting from the command line, else the config file, else its default.
#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// A TOML config file with any of the settings below (command-line flags win).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// A domain this server is responsible for (repeatable; default: localhost).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Where to listen: udp:IP:PORT, tcp:IP:PORT or tls:IP:PORT (repeatable; TLS needs
    /// --tls-cert and --tls-key; default: udp and tcp on 0.0.0.0:5060).
    #[arg(long = "listen")]
    listen: Vec<ListenSpec>,
    /// Database: sqlite://FILE or postgres://... (default: sqlite://openline.db).
    #[arg(long)]
    db: Option<String>,
    /// RFC 3261 T1 in milliseconds (T2 and T4 keep their defaults; default 500).
    #[arg(long)]
    t1_ms: Option<u64>,
    /// Milliseconds the store gathers binding changes to commit them together (each commit
    /// is an fsync; a REGISTER's 200 waits for its commit). 10 (the default) rather than 5 cost
    /// 4 ms of REGISTER latency and saved a fifth of the CPU per REGISTER at 1,000/s.
    #[arg(long)]
    commit_delay_ms: Option<u64>,
    /// Seconds a forwarded INVITE may ring unanswered before the caller hears 480 (default 60).
    #[arg(long)]
    ring_timeout: Option<u64>,
    /// When calls' media goes through the embedded relay: always (default), never, or nat
    /// (only when the offer's address is not where the INVITE came from).
    #[arg(long, value_parser = parse_media_mode)]
    media: Option<MediaMode>,
    /// The address the relay's ports are bound on (default: the first UDP listen address).
    #[arg(long)]
    media_listen: Option<std::net::IpAddr>,
    /// The address written into SDP for parties to reach the relay, behind 1:1 NAT or in a
    /// cloud VM; given twice, one IPv4 and one IPv6, each party gets its own family's
    /// (default: --media-listen, or, when that is a wildcard, each party's side of this host).
    #[arg(long)]
    media_advertise: Vec<std::net::IpAddr>,
    /// The relay's port range, LOW-HIGH (default 30000-39999).
    #[arg(long, value_parser = parse_port_range)]
    media_ports: Option<(u16, u16)>,
    /// Drive another relay, such as rtpengine, over the ng protocol instead of the embedded
    /// one: udp:IP:PORT of its control socket.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    media_relay: Option<std::net::SocketAddr>,
    /// Where the embedded relay also takes rtpengine ng requests (query, statistics; for
    /// operators and tests): udp:IP:PORT. None by default.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    media_control: Option<std::net::SocketAddr>,
    /// Serve STUN and TURN here too: udp:IP:PORT (usually udp:0.0.0.0:3478). Off by default.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    turn: Option<std::net::SocketAddr>,
    /// STUN and TURN for IPv6 clients too: udp:[IPV6]:PORT (usually udp:[::]:3478), beside
    /// the IPv4 --turn.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    turn6: Option<std::net::SocketAddr>,
    /// TURN over TCP too: tcp:IP:PORT or tls:IP:PORT (repeatable; each takes plain and TLS
    /// clients, TLS with the --tls-cert certificate), for networks that let only TCP out.
    #[arg(long = "turn-tcp")]
    turn_streams: Vec<openline_media::net::StreamListen>,
    /// TURN users with long-term credentials, USER:PASSWORD (repeatable).
    #[arg(long = "turn-user", value_parser = openline_media::args::parse_user)]
    turn_users: Vec<(String, String)>,
    /// coturn's static-auth-secret: USERNAME `expiry[:user]`, password
    /// base64(HMAC-SHA1(secret, USERNAME)), as WebRTC and SIP apps are handed them.
    #[arg(long)]
    turn_secret: Option<String>,
    /// The realm TURN credentials are in (default: the first --domain).
    #[arg(long)]
    turn_realm: Option<String>,
    /// An IPv6 address TURN's relayed ports are bound on too, for clients that ask for IPv6
    /// relayed addresses or one of each (RFC 8656); none by default.
    #[arg(long)]
    turn_relay_ip6: Option<std::net::IpAddr>,
    /// TURN's relayed ports, LOW-HIGH (default 49152-65535).
    #[arg(long, value_parser = parse_port_range)]
    turn_ports: Option<(u16, u16)>,
    /// Let TURN relay to loopback peers (tests, one-host setups).
    #[arg(long)]
    turn_allow_loopback: bool,
    /// Let TURN relay to private-range peers (10/8, 172.16/12, 192.168/16, fc00::/7).
    #[arg(long)]
    turn_allow_private: bool,
    /// Seconds that transactions and answered calls may go on after SIGTERM before the server
    /// exits; meanwhile new requests get 503 with Retry-After (default 30).
    #[arg(long)]
    shutdown_grace: Option<u64>,
    /// The control socket `openline status` and `openline peer list` ask (default: beside
    /// an SQLite database, FILE.sock; else openline.sock here). Only this user may use it.
    #[arg(long)]
    control: Option<std::path::PathBuf>,
    /// Send HEP v3 copies of all SIP traffic to this collector: udp:IP:PORT (HOMER,
    /// heplify-server, sngrep -L). Off by default.
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    hep: Option<std::net::SocketAddr>,
    /// The capture agent id HEP copies carry (default 1).
    #[arg(long)]
    hep_id: Option<u32>,
    /// This node's name, when several nodes serve the same domains on one PostgreSQL
    /// (--db postgres://...): bindings record which node holds each device's flow.
    #[arg(long)]
    node: Option<String>,
    /// Where the other nodes send this one requests for the devices it holds: udp:IP:PORT
    /// (default: the first UDP --listen address, when it is not a wildcard).
    #[arg(long, value_parser = openline_media::args::parse_udp)]
    node_address: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics at /metrics here: tcp:IP:PORT (off by default).
    #[arg(long, value_parser = openline_proxy::metrics::parse_listen)]
    metrics: Option<std::net::SocketAddr>,
    /// Most requests under way to one other domain (503 beyond; default 2000): what a domain
    /// that never answers may cost.
    #[arg(long)]
    max_per_domain: Option<usize>,
    /// Most presence subscriptions one subscriber may hold (403 beyond; default 200).
    #[arg(long)]
    max_subscriptions: Option<usize>,
    /// Largest MESSAGE body accepted, bytes (413 beyond; default 16384).
    #[arg(long)]
    max_message_body: Option<usize>,
    /// Most messages stored for one user (a MESSAGE that would need storing beyond it gets
    /// 480; default 10000).
    #[arg(long)]
    message_quota: Option<u64>,
    /// Days a stored message waits for its devices (default 30).
    #[arg(long)]
    message_expiry_days: Option<u64>,
    /// Another domain's server, instead of looking it up in DNS: DOMAIN=tls:IP:PORT (or
    /// udp:, tcp:; repeatable; added to the config file's, replacing the same domain's).
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(String, Destination)>,
    /// The DNS server to ask for other domains' SIP servers (IP:PORT); default: the
    /// system's (/etc/resolv.conf).
    #[arg(long)]
    dns: Option<std::net::SocketAddr>,
    /// PEM certificate chain naming every served domain (for tls: listeners, and presented
    /// to other domains' servers).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// PEM roots that other domains' certificates must chain to (default: the system bundle,
    /// /etc/ssl/certs/ca-certificates.crt).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// Shortest registration accepted, in seconds (423 below it; default 60).
    #[arg(long)]
    min_expires: Option<u32>,
    /// Seconds a source or user is refused after repeated authentication failures (default 60).
    #[arg(long)]
    auth_throttle: Option<u64>,
    /// Put the SHA-256 challenge above MD5 (only when every client supports SHA-256).
    #[arg(long)]
    prefer_sha256: bool,
    /// User-Agent prefix of clients to challenge with MD5 only, because they fail on a
    /// second challenge (repeatable; default: baresip).
    #[arg(long = "md5-only-agent")]
    md5_only_agents: Vec<String>,
}

/// The server's settings: the command line over the config file over the defaults.
fn serve_config(args: ServeArgs) -> anyhow::Result<(ServeConfig, Option<String>)> {
    let file = match &args.config {
        Some(path) => config::load(path)?,
        None => config::FileConfig::default(),
    };
    let log = file.log.clone();
    let or_file = |cli: Vec<String>, file: Option<Vec<String>>, default: &[&str]| {
        if !cli.is_empty() {
            cli
        } else {
            file.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
        }
    };
    let text = text_config(&args, file.text.clone().unwrap_or_default());
    let first_domain = (args.domains.first().cloned())
        .or_else(|| file.domains.as_ref().and_then(|d| d.first().cloned()))
        .unwrap_or_else(|| "localhost".to_string());
    let tls = match (
        args.tls_cert.clone(),
        args.tls_key.clone(),
        file.tls.clone(),
    ) {
        (Some(cert), Some(key), _) => Some((cert, key)),
        (_, _, Some(t)) => Some((t.cert, t.key)),
        _ => None,
    };
    let turn = turn_config(&args, file.turn.clone(), first_domain, tls.clone());
    let media_file = file.media.clone().unwrap_or_default();
    let domains = or_file(args.domains, file.domains, &["localhost"]);
    let listen = if !args.listen.is_empty() {
        args.listen
    } else if let Some(l) = file.listen {
        l
    } else {
        default_listen()?
    };
    let media_args = MediaSection {
        mode: args.media,
        listen: args.media_listen,
        advertise: args.media_advertise.clone(),
        ports: args.media_ports,
        relay: args.media_relay,
        control: args.media_control,
    };
    for (given, name) in [
        (&media_args.advertise, "--media-advertise"),
        (&media_file.advertise, "[media] advertise"),
    ] {
        let v4 = given.iter().filter(|a| a.is_ipv4()).count();
        if v4 > 1 || given.len() - v4 > 1 {
            anyhow::bail!(
                "{name}: one address per family at most (an IPv4 and an IPv6), not {given:?}"
            );
        }
    }
    let media = media_config(&media_args, &media_file, &listen).map(|mut m| {
        m.control = media_args.control.or(media_file.control);
        m
    });
    let mut peers: Vec<(String, Destination)> = file
        .peers
        .into_iter()
        .map(|(d, p)| (d.to_ascii_lowercase(), p))
        .filter(|(d, _)| !args.peers.iter().any(|(c, _)| c == d))
        .collect();
    peers.extend(args.peers);
    let file_tls = file.tls;
    let tls_ca = args
        .tls_ca
        .clone()
        .or(file_tls.as_ref().and_then(|t| t.ca.clone()))
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());

    let timers = TimerConfig {
        t1: Duration::from_millis(args.t1_ms.or(file.t1_ms).unwrap_or(500).max(1)),
        ..TimerConfig::default()
    };
    let db = args
        .db
        .clone()
        .or(file.db.clone())
        .unwrap_or_else(|| DEFAULT_DB.to_string());
    let node = args.node.clone().or(file.node.clone());
    let cluster = match &node {
        None => None,
        Some(name) => Some(cluster_config(
            name,
            &db,
            &listen,
            args.node_address.or(file.node_address),
        )?),
    };
    let core = CoreConfig {
        domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        endpoint: EndpointConfig { timers },
        registrar: RegistrarConfig {
            min_expires: args.min_expires.or(file.min_expires).unwrap_or(60),
            node: node.unwrap_or_default(),
            ..RegistrarConfig::default()
        },
        auth: openline_registrar::auth::AuthConfig {
            throttle_for: args.auth_throttle.or(file.auth_throttle).unwrap_or(60),
            prefer_sha256: args.prefer_sha256 || file.prefer_sha256.unwrap_or(false),
            md5_only_agents: or_file(args.md5_only_agents, file.md5_only_agents, &["baresip"]),
            ..Default::default()
        },
        ring_timeout: Duration::from_secs(
            args.ring_timeout.or(file.ring_timeout).unwrap_or(60).max(1),
        ),
        max_per_domain: args
            .max_per_domain
            .or(file.max_per_domain)
            .unwrap_or(2000)
            .max(1),
        peers,
        text,
        media: media_args.mode.or(media_file.mode).unwrap_or_default(),
        presence: openline_proxy::presence::agent::PresenceConfig {
            per_subscriber: args
                .max_subscriptions
                .or(file.max_subscriptions)
                .unwrap_or(200)
                .max(1),
            etag_prefix: cluster
                .as_ref()
                .map(|c| format!("{}-", c.node))
                .unwrap_or_default(),
            ..Default::default()
        },
    };
    let config = ServeConfig {
        core,
        listen,
        db: db.clone(),
        commit_delay: Duration::from_millis(
            args.commit_delay_ms.or(file.commit_delay_ms).unwrap_or(10),
        ),
        tls: tls.map(|(cert, key)| TlsFiles {
            cert,
            key,
            roots: tls_ca,
        }),
        dns: args.dns.or(file.dns),
        media,
        turn,
        metrics: args.metrics.or(file.metrics),
        grace: Duration::from_secs(args.shutdown_grace.or(file.shutdown_grace).unwrap_or(30)),
        hep: args
            .hep
            .or(file.hep)
            .map(|c| (c, args.hep_id.or(file.hep_id).unwrap_or(1))),
        control: args
            .control
            .or(file.control)
            .unwrap_or_else(|| match &cluster {
                // Nodes may share a working directory (and never have an SQLite file).
                Some(c) => std::path::PathBuf::from(format!("openline-{}.sock", c.node)),
                None => openline_proxy::control::default_path(&db),
            }),
        cluster,
    };
    Ok((config, log))
}

/// Where a server listens when told nothing: UDP and TCP on every address, IPv6 too where the
/// machine has it. Each family has its own socket (IPV6_V6ONLY) and names itself by the address
/// a packet leaves from, never by the wildcard.
fn default_listen() -> anyhow::Result<Vec<ListenSpec>> {
    let mut specs = vec!["udp:0.0.0.0:5060".parse()?, "tcp:0.0.0.0:5060".parse()?];
    if openline_sip_net::ipv6_available() {
        specs.push("udp:[::]:5060".parse()?);
        specs.push("tcp:[::]:5060".parse()?);
    }
    Ok(specs)
}

/// A node of a cluster: it needs the shared PostgreSQL and an address the other nodes reach.
fn cluster_config(
    name: &str,
    db: &str,
    listen: &[openline_sip_net::ListenSpec],
    address: Option<std::net::SocketAddr>,
) -> anyhow::Result<openline_proxy::server::ClusterServe> {
    if !(db.starts_with("postgres:") || db.starts_with("postgresql:")) {
        anyhow::bail!(
            "node {name}: a cluster's nodes share one PostgreSQL; --db must be postgres://..."
        );
    }
    if name.is_empty() || name == "openline" || name.starts_with("openline-") {
        anyhow::bail!("node name `{name}` is taken: name nodes after their hosts (n1, sip-a, ...)");
    }
    let address = address
        .or_else(|| {
            listen
                .iter()
                .find(|l| {
                    l.transport == openline_sip::Transport::Udp && !l.addr.ip().is_unspecified()
                })
                .map(|l| l.addr)
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "node {name}: say where other nodes reach it: --node-address udp:IP:PORT"
            )
        })?;
    Ok(openline_proxy::server::ClusterServe {
        node: name.to_string(),
        address,
    })
}

fn parse_media_mode(s: &str) -> Result<MediaMode, String> {
    openline_proxy::config::media_mode(s)
}

/// The embedded STUN/TURN server's settings, or None when not asked for: the command line
/// over the file over the defaults.
fn turn_config(
    args: &ServeArgs,
    file: Option<config::TurnSection>,
    first_domain: String,
    certificate: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> Option<TurnServeConfig> {
    let file = file.unwrap_or_default();
    let listen = args.turn.or(file.listen)?;
    let realm = (args.turn_realm.clone().or(file.realm)).unwrap_or(first_domain);
    let mut turn = openline_media::turn::TurnConfig::new(
        listen.ip(),
        args.turn_ports.or(file.ports).unwrap_or((49152, 65535)),
    );
    turn.peers = openline_media::turn::PeerPolicy {
        allow_loopback: args.turn_allow_loopback || file.allow_loopback.unwrap_or(false),
        allow_private: args.turn_allow_private || file.allow_private.unwrap_or(false),
    };
    turn.user_quota = file.user_quota.unwrap_or(turn.user_quota);
    turn.relay_ip_v6 = args.turn_relay_ip6.or(file.relay_v6);
    Some(TurnServeConfig {
        listen,
        listen_v6: args.turn6.or(file.listen_v6),
        credentials: openline_media::stun::Credentials {
            realm,
            // The command line's users are added to the file's (one user: the command line's).
            users: file.users.iter().chain(&args.turn_users).cloned().collect(),
            secret: args.turn_secret.clone().or(file.secret),
        },
        streams: if args.turn_streams.is_empty() {
            file.tcp
        } else {
            args.turn_streams.clone()
        },
        certificate,
        turn,
    })
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    openline_media::relay::parse_range(s)
}

/// The address this host's default route leaves from (asked of the routing table, nothing
/// is sent); loopback when there is no route.
fn route_address() -> std::net::IpAddr {
    openline_sip_net::LocalAddresses::default()
        .route_source(std::net::IpAddr::from([192, 0, 2, 1]))
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))
}

/// The embedded relay's settings, or None when media is never anchored.
fn media_config(
    cli: &MediaSection,
    file: &MediaSection,
    listen: &[openline_sip_net::ListenSpec],
) -> Option<MediaRelayConfig> {
    let mode = cli.mode.or(file.mode).unwrap_or_default();
    if mode == MediaMode::Never {
        return None;
    }
    let first_udp = listen
        .iter()
        .find(|l| l.transport == Transport::Udp)
        .map(|l| l.addr.ip());
    let listen_ip = cli
        .listen
        .or(file.listen)
        .or(first_udp)
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let given = if cli.advertise.is_empty() {
        &file.advertise
    } else {
        &cli.advertise
    };
    let chosen = given.first().copied();
    let advertise = chosen.unwrap_or_else(|| {
        if listen_ip.is_unspecified() {
            route_address()
        } else {
            listen_ip
        }
    });
    Some(MediaRelayConfig {
        listen: listen_ip,
        advertise,
        advertise_by_family: [
            given.iter().copied().find(std::net::IpAddr::is_ipv4),
            given.iter().copied().find(std::net::IpAddr::is_ipv6),
        ],
        per_party: chosen.is_none() && listen_ip.is_unspecified(),
        ports: cli.ports.or(file.ports).unwrap_or((30000, 39999)),
        idle: Duration::from_secs(60),
        control: None,
        remote: cli.relay.or(file.relay),
    })
}

/// The text settings: the command line over the file over the defaults.
fn text_config(args: &ServeArgs, file: openline_proxy::config::TextSection) -> TextConfig {
    let default = TextConfig::default();
    TextConfig {
        max_body: args
            .max_message_body
            .or(file.max_body)
            .unwrap_or(default.max_body),
        quota: args.message_quota.or(file.quota).unwrap_or(default.quota),
        expiry: args
            .message_expiry_days
            .or(file.expiry_days)
            .map_or(default.expiry, |d| Duration::from_secs(d.max(1) * 86_400)),
        device_wait: file
            .device_wait_ms
            .map_or(default.device_wait, Duration::from_millis),
    }
}

/// One thread runs the sockets and the core: every datagram would otherwise cross threads
/// (receive task, core, store worker), and the wake-ups cost more CPU than the SIP work
/// (measured: about half of all samples were context switches on a two-worker runtime).
/// The database driver keeps its own thread.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
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

/// Runs the command; a failure is one line on standard error (the causes joined with ": ",
/// as `error: serving: listening on udp:0.0.0.0:5060: Address already in use`) and exit 1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr().lock(), "error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let format = cli.log_format;
    match cli.command {
        Command::Serve(args) => serve(*args, &format),
        Command::User { action } => {
            openline_proxy::logging::init(&format, None);
            runtime()?.block_on(admin::user_command(action))
        }
        Command::Presence { action } => {
            openline_proxy::logging::init(&format, None);
            runtime()?.block_on(admin::presence_command(action))
        }
        Command::Status(asking) => {
            openline_proxy::logging::init(&format, None);
            runtime()?.block_on(admin::status_command(asking))
        }
        Command::Peer { action } => {
            openline_proxy::logging::init(&format, None);
            runtime()?.block_on(admin::peer_command(action))
        }
        Command::Doctor(args) => {
            let (config, _) = serve_config(args.serve)?;
            let findings = runtime()?.block_on(openline_proxy::doctor::examine(&config));
            if args.json {
                say(&serde_json::to_string(&findings)?);
            } else {
                say(openline_proxy::doctor::say(&findings).trim_end());
            }
            let broken = findings
                .iter()
                .any(|f| f.level == openline_proxy::doctor::Level::Fail);
            if broken {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::CheckConfig { file } => {
            config::load(&file)?;
            say(&format!("{}: ok", file.display()));
            Ok(())
        }
    }
}

/// `openline serve`: logs at the configured levels, SIGHUP reloads, SIGTERM drains.
fn serve(args: ServeArgs, format: &str) -> anyhow::Result<()> {
    let (config, log) = serve_config(args.clone())?;
    let levels = openline_proxy::logging::init(format, log.as_deref());
    runtime()?.block_on(async {
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
        let read = move || serve_config(args.clone());
        let hup = openline_proxy::reload::on_sighup(read, levels, config.clone(), reload_tx);
        tokio::spawn(hup);
        server::run(config, shutdown_signal(), reload_rx, |bound| {
            // One line per socket on stdout, for whoever started us with port 0. A reader
            // that went away after the lines it wanted is no reason to stop (println! would
            // panic on the broken pipe).
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            for (transport, addr) in bound {
                let line = format!(
                    "listening on {}:{addr}",
                    transport.as_via().to_ascii_lowercase()
                );
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    tracing::debug!(%line, "stdout is closed");
                }
            }
        })
        .await
        .context("serving")
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
        _ = term.recv() => tracing::info!("SIGTERM"),
    }
}
