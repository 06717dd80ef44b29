//! The config file (`openline serve --config FILE`, `openline check-config FILE`): TOML naming
//! any of the settings the command line has; a flag given on the command line wins. Unknown
//! keys, wrong types and bad values are refused with the file, line and column.

use openline_sip::Transport;
use openline_sip::transaction::Destination;
use openline_sip_net::ListenSpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

mod limits;
mod push;
mod tls_web;
mod websocket;
pub use limits::LimitsSection;
pub use push::{ApnsSection, FcmSection, PushSection, WebPushSection};
pub use tls_web::{ACME_DIR, AcmeSection, TlsSection, WebSection, web_listen};

/// What a config file may say; every key is optional.
#[derive(Debug, Default)]
pub struct FileConfig {
    /// Domains served.
    pub domains: Option<Vec<String>>,
    /// Listeners: `udp:IP:PORT`, `tcp:IP:PORT`, `tls:IP:PORT`.
    pub listen: Option<Vec<ListenSpec>>,
    /// Database URL.
    pub db: Option<String>,
    /// RFC 3261 T1, milliseconds.
    pub t1_ms: Option<u64>,
    /// Group-commit window, milliseconds.
    pub commit_delay_ms: Option<u64>,
    /// Seconds an INVITE may ring unanswered.
    pub ring_timeout: Option<u64>,
    /// Most requests under way to one other domain.
    pub max_per_domain: Option<usize>,
    /// Most presence subscriptions one subscriber may hold.
    pub max_subscriptions: Option<usize>,
    /// Shortest registration accepted, seconds.
    pub min_expires: Option<u32>,
    /// Seconds a source or user is refused after repeated authentication failures.
    pub auth_throttle: Option<u64>,
    /// SHA-256 challenge above MD5.
    pub prefer_sha256: Option<bool>,
    /// User-Agent prefixes challenged with MD5 only.
    pub md5_only_agents: Option<Vec<String>>,
    /// The DNS server for other domains (`IP:PORT`).
    pub dns: Option<SocketAddr>,
    /// Our certificate, its key, and the roots other domains' certificates must chain to.
    pub tls: Option<TlsSection>,
    /// The HTTP(S) listeners: ACME challenges, provisioning links.
    pub web: Option<WebSection>,
    /// Other domains' servers, instead of DNS: `"club-b.test" = "tls:192.0.2.10:5061"`.
    pub peers: BTreeMap<String, Destination>,
    /// Text messages.
    pub text: Option<TextSection>,
    /// The embedded media relay.
    pub media: Option<MediaSection>,
    /// The embedded STUN/TURN server.
    pub turn: Option<TurnSection>,
    /// Push notifications to phones that sleep.
    pub push: Option<PushSection>,
    /// Who may open SIP WebSockets.
    pub websocket: Option<openline_sip_net::WebSocketPolicy>,
    /// What one source, user or domain may cost.
    pub limits: Option<LimitsSection>,
    /// Where Prometheus scrapes /metrics (`tcp:IP:PORT`).
    pub metrics: Option<SocketAddr>,
    /// Seconds work under way may go on after SIGTERM.
    pub shutdown_grace: Option<u64>,
    /// Log levels per module, as RUST_LOG writes them: `info,openline_proxy::core=debug`.
    pub log: Option<String>,
    /// Where HEP v3 copies of SIP traffic go (`udp:IP:PORT`).
    pub hep: Option<SocketAddr>,
    /// The capture agent id they carry.
    pub hep_id: Option<u32>,
    /// The control socket's path.
    pub control: Option<PathBuf>,
    /// This node's name in a cluster sharing one PostgreSQL (issue #9).
    pub node: Option<String>,
    /// Where the other nodes send this one requests for the devices it holds (`udp:IP:PORT`).
    pub node_address: Option<SocketAddr>,
}

/// The `[media]` table.
#[derive(Debug, Clone, Default)]
pub struct MediaSection {
    /// always, never or nat.
    pub mode: Option<crate::core::MediaMode>,
    /// The address the relay's ports are bound on.
    pub listen: Option<std::net::IpAddr>,
    /// The addresses written into SDP: one per family at most (a party gets its own family's).
    pub advertise: Vec<std::net::IpAddr>,
    /// The port range.
    pub ports: Option<(u16, u16)>,
    /// Another relay (rtpengine) to drive over ng instead of the embedded one: udp:IP:PORT.
    pub relay: Option<SocketAddr>,
    /// Where the embedded relay also takes ng requests (query, statistics): udp:IP:PORT.
    pub control: Option<SocketAddr>,
}

/// The `[media]` table as TOML gives it: values that need reading keep their place.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMediaSection {
    mode: Option<Spanned<String>>,
    listen: Option<std::net::IpAddr>,
    advertise: Option<std::net::IpAddr>,
    advertise_v6: Option<Spanned<std::net::IpAddr>>,
    ports: Option<Spanned<String>>,
    relay: Option<Spanned<String>>,
    control: Option<Spanned<String>>,
}

/// The `[turn]` table: STUN and TURN served beside SIP.
#[derive(Debug, Clone, Default)]
pub struct TurnSection {
    /// Where: udp:IP:PORT.
    pub listen: Option<SocketAddr>,
    /// Where IPv6 clients are served too: udp:[IPV6]:PORT.
    pub listen_v6: Option<SocketAddr>,
    /// The realm credentials are in (default: the first domain).
    pub realm: Option<String>,
    /// coturn's static-auth-secret (time-limited REST credentials).
    pub secret: Option<String>,
    /// Relayed ports, LOW-HIGH.
    pub ports: Option<(u16, u16)>,
    /// Relay to loopback peers.
    pub allow_loopback: Option<bool>,
    /// Relay to private-range peers.
    pub allow_private: Option<bool>,
    /// Allocations one user may hold.
    pub user_quota: Option<usize>,
    /// Users with long-term credentials, USER:PASSWORD.
    pub users: Vec<(String, String)>,
    /// TURN over TCP and TLS: tcp:IP:PORT, tls:IP:PORT.
    pub tcp: Vec<openline_media::net::StreamListen>,
    /// An IPv6 address relayed ports are bound on too.
    pub relay_v6: Option<std::net::IpAddr>,
}

/// The `[turn]` table as TOML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTurnSection {
    listen: Option<Spanned<String>>,
    listen_v6: Option<Spanned<String>>,
    realm: Option<String>,
    secret: Option<String>,
    ports: Option<Spanned<String>>,
    allow_loopback: Option<bool>,
    allow_private: Option<bool>,
    user_quota: Option<usize>,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    tcp: Vec<Spanned<String>>,
    relay_v6: Option<Spanned<String>>,
}

/// `always`, `never` or `nat`.
pub fn media_mode(s: &str) -> Result<crate::core::MediaMode, String> {
    use crate::core::MediaMode;
    match s {
        "always" => Ok(MediaMode::Always),
        "never" => Ok(MediaMode::Never),
        "nat" => Ok(MediaMode::Nat),
        other => Err(format!("`{other}`: expected always, never or nat")),
    }
}

/// The `[text]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSection {
    /// Largest MESSAGE body accepted, bytes.
    pub max_body: Option<usize>,
    /// Most messages stored for one user.
    pub quota: Option<u64>,
    /// Days a stored message waits for its devices.
    pub expiry_days: Option<u64>,
    /// Milliseconds a MESSAGE waits for registered devices before storing it for them.
    pub device_wait_ms: Option<u64>,
}

/// The file as TOML gives it: values that need reading keep their place in the file, so a bad
/// one is reported where it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    domains: Option<Vec<String>>,
    listen: Option<Vec<Spanned<String>>>,
    db: Option<String>,
    t1_ms: Option<u64>,
    commit_delay_ms: Option<u64>,
    ring_timeout: Option<u64>,
    max_per_domain: Option<usize>,
    max_subscriptions: Option<usize>,
    min_expires: Option<u32>,
    auth_throttle: Option<u64>,
    prefer_sha256: Option<bool>,
    md5_only_agents: Option<Vec<String>>,
    dns: Option<SocketAddr>,
    tls: Option<Spanned<tls_web::RawTls>>,
    web: Option<Spanned<tls_web::RawWeb>>,
    #[serde(default)]
    peers: BTreeMap<String, Spanned<String>>,
    text: Option<TextSection>,
    media: Option<RawMediaSection>,
    turn: Option<RawTurnSection>,
    push: Option<Spanned<push::RawPush>>,
    websocket: Option<Spanned<websocket::RawWebSocket>>,
    limits: Option<Spanned<limits::RawLimits>>,
    metrics: Option<Spanned<String>>,
    shutdown_grace: Option<u64>,
    log: Option<Spanned<String>>,
    hep: Option<Spanned<String>>,
    hep_id: Option<u32>,
    control: Option<PathBuf>,
    node: Option<String>,
    node_address: Option<Spanned<String>>,
}

/// Reads another domain's server: `udp:IP:PORT`, `tcp:IP:PORT` or `tls:IP:PORT`.
fn peer(s: &str) -> Result<Destination, String> {
    let spec: ListenSpec = s.parse().map_err(|e| format!("{e}"))?;
    match spec.transport {
        Transport::Udp | Transport::Tcp | Transport::Tls => Ok(Destination {
            transport: spec.transport,
            addr: spec.addr,
        }),
        _ => Err(format!("`{s}`: a peer is reached over udp, tcp or tls")),
    }
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// It could not be read.
    #[error("{0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// It is not what we expect, at this line and column (1-based).
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.into(), e))?;
    parse(path, &text)
}

/// Checks `text` as the config file `path`.
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    let invalid = |at: usize, message: String| {
        let before = &text[..at.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError::Invalid {
            path: path.into(),
            line,
            column,
            message,
        }
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        invalid(at, e.message().trim().to_string())
    })?;
    let listen = match raw.listen {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|l| {
                    l.get_ref()
                        .parse::<ListenSpec>()
                        .map_err(|e| invalid(l.span().start, e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let (tls, web) = tls_web::read(raw.tls, raw.web, invalid)?;
    let push = match raw.push {
        None => None,
        Some(p) => {
            let at = p.span().start;
            Some(p.into_inner().read(at, invalid)?)
        }
    };
    let websocket = match raw.websocket {
        None => None,
        Some(w) => {
            let at = w.span().start;
            Some(w.into_inner().read(at, invalid)?)
        }
    };
    let limits = match raw.limits {
        None => None,
        Some(l) => {
            let at = l.span().start;
            Some(l.into_inner().read(at, invalid)?)
        }
    };
    let mut peers = BTreeMap::new();
    for (domain, p) in &raw.peers {
        let destination = peer(p.get_ref()).map_err(|e| invalid(p.span().start, e))?;
        peers.insert(domain.to_ascii_lowercase(), destination);
    }
    let media = match raw.media {
        None => None,
        Some(m) => Some(MediaSection {
            mode: m
                .mode
                .map(|v| media_mode(v.get_ref()).map_err(|e| invalid(v.span().start, e)))
                .transpose()?,
            listen: m.listen,
            advertise: match (m.advertise, m.advertise_v6) {
                (_, Some(v6)) if !v6.get_ref().is_ipv6() => {
                    return Err(invalid(
                        v6.span().start,
                        "advertise_v6 is not an IPv6 address".into(),
                    ));
                }
                (a, v6) => a.into_iter().chain(v6.map(Spanned::into_inner)).collect(),
            },
            control: m
                .control
                .map(|v| {
                    openline_media::args::parse_udp(v.get_ref())
                        .map_err(|e| invalid(v.span().start, e))
                })
                .transpose()?,
            relay: m
                .relay
                .map(|v| {
                    openline_media::args::parse_udp(v.get_ref())
                        .map_err(|e| invalid(v.span().start, e))
                })
                .transpose()?,
            ports: m
                .ports
                .map(|v| {
                    openline_media::relay::parse_range(v.get_ref())
                        .map_err(|e| invalid(v.span().start, e))
                })
                .transpose()?,
        }),
    };
    let turn = match raw.turn {
        None => None,
        Some(t) => Some(TurnSection {
            listen: t
                .listen
                .map(|v| {
                    openline_media::args::parse_udp(v.get_ref())
                        .map_err(|e| invalid(v.span().start, e))
                })
                .transpose()?,
            listen_v6: t
                .listen_v6
                .map(|v| {
                    openline_media::args::parse_udp(v.get_ref())
                        .map_err(|e| invalid(v.span().start, e))
                })
                .transpose()?,
            realm: t.realm,
            secret: t.secret,
            ports: t
                .ports
                .map(|v| {
                    openline_media::relay::parse_range(v.get_ref())
                        .map_err(|e| invalid(v.span().start, e))
                })
                .transpose()?,
            allow_loopback: t.allow_loopback,
            allow_private: t.allow_private,
            user_quota: t.user_quota,
            users: t
                .users
                .iter()
                .map(|v| {
                    openline_media::args::parse_user(v.get_ref())
                        .map_err(|e| invalid(v.span().start, e))
                })
                .collect::<Result<_, _>>()?,
            tcp: t
                .tcp
                .iter()
                .map(|v| v.get_ref().parse().map_err(|e| invalid(v.span().start, e)))
                .collect::<Result<_, _>>()?,
            relay_v6: t
                .relay_v6
                .map(|v| {
                    v.get_ref()
                        .parse::<std::net::IpAddr>()
                        .ok()
                        .filter(std::net::IpAddr::is_ipv6)
                        .ok_or_else(|| {
                            invalid(
                                v.span().start,
                                format!("`{}`: not an IPv6 address", v.get_ref()),
                            )
                        })
                })
                .transpose()?,
        }),
    };
    Ok(FileConfig {
        domains: raw.domains,
        listen,
        db: raw.db,
        t1_ms: raw.t1_ms,
        commit_delay_ms: raw.commit_delay_ms,
        ring_timeout: raw.ring_timeout,
        max_per_domain: raw.max_per_domain,
        max_subscriptions: raw.max_subscriptions,
        min_expires: raw.min_expires,
        auth_throttle: raw.auth_throttle,
        prefer_sha256: raw.prefer_sha256,
        md5_only_agents: raw.md5_only_agents,
        dns: raw.dns,
        tls,
        web,
        peers,
        text: raw.text,
        media,
        turn,
        push,
        websocket,
        limits,
        metrics: raw
            .metrics
            .map(|v| {
                crate::metrics::parse_listen(v.get_ref()).map_err(|e| invalid(v.span().start, e))
            })
            .transpose()?,
        shutdown_grace: raw.shutdown_grace,
        hep: raw
            .hep
            .map(|v| {
                openline_media::args::parse_udp(v.get_ref()).map_err(|e| invalid(v.span().start, e))
            })
            .transpose()?,
        hep_id: raw.hep_id,
        control: raw.control,
        node: raw.node,
        node_address: raw
            .node_address
            .map(|v| {
                openline_media::args::parse_udp(v.get_ref()).map_err(|e| invalid(v.span().start, e))
            })
            .transpose()?,
        log: raw
            .log
            .map(|v| {
                crate::logging::parse(v.get_ref())
                    .map(|_| v.get_ref().clone())
                    .map_err(|e| invalid(v.span().start, e))
            })
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_complete_file_reads() {
        let text = r#"
domains = ["club-a.test"]
listen = ["udp:127.0.0.1:5060", "tls:127.0.0.1:5061"]
db = "sqlite://openline.db"
dns = "127.0.0.1:5353"
ring_timeout = 30
metrics = "tcp:127.0.0.1:9464"
shutdown_grace = 10

[tls]
cert = "cert.pem"
key = "key.pem"

[peers]
"club-b.test" = "tls:127.0.0.2:5061"
"#;
        let c = parse(Path::new("openline.toml"), text).unwrap();
        assert_eq!(c.domains.unwrap(), ["club-a.test"]);
        assert_eq!(c.listen.unwrap()[1].transport, Transport::Tls);
        assert_eq!(c.ring_timeout, Some(30));
        assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.shutdown_grace, Some(10));
        assert_eq!(c.tls.unwrap().ca, None);
        let peer = c.peers["club-b.test"];
        assert_eq!(peer.transport, Transport::Tls);
        assert_eq!(peer.addr, "127.0.0.2:5061".parse().unwrap());
    }

    #[test]
    fn the_readme_example_is_a_valid_complete_config() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml").unwrap() + "```toml".len();
        let block: String = readme[start..]
            .lines()
            .take_while(|l| l.trim() != "```")
            .map(|l| format!("{}\n", l.trim_start()))
            .collect();
        let c = parse(Path::new("README.md"), &block).unwrap();
        assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.shutdown_grace, Some(30));
        assert_eq!(c.log.as_deref(), Some("info"));
        assert!(c.turn.is_some() && c.media.is_some() && c.text.is_some());
        assert!(c.push.is_some_and(|p| p.webpush.is_some()));
        let both = parse(
            Path::new("f.toml"),
            "[media]\nadvertise = \"198.51.100.7\"\nadvertise_v6 = \"2001:db8::7\"\n\
             [turn]\ntcp = [\"tls:0.0.0.0:443\"]\nrelay_v6 = \"2001:db8::5\"\n",
        )
        .unwrap();
        assert_eq!(both.media.unwrap().advertise.len(), 2);
        let turn = both.turn.unwrap();
        assert!(turn.tcp[0].tls && turn.relay_v6.is_some_and(|a| a.is_ipv6()));
    }

    #[test]
    fn push_section_reads_and_refuses_at_its_line() {
        let ok = parse(
            Path::new("f.toml"),
            "[push]\nwait = 15\n[push.fcm]\nservice_account = \"fcm.json\"\napi = \"https://127.0.0.1:9\"\n",
        )
        .unwrap();
        let push = ok.push.unwrap();
        assert_eq!(push.wait, std::time::Duration::from_secs(15));
        assert!(
            !push.message_text && push.sender,
            "text is off and the sender on by default"
        );
        assert_eq!(
            push.fcm.unwrap().api.as_deref(),
            Some("https://127.0.0.1:9")
        );
        let err = |text: &str| parse(Path::new("f.toml"), text).unwrap_err().to_string();
        assert_eq!(
            err("domains = [\"a\"]\n[push]\nwait = 5\n"),
            "f.toml:2:1: [push] names no service: add [push.webpush], [push.fcm] or [push.apns]"
        );
        assert_eq!(
            err("[push]\nwait = 500\n[push.webpush]\nsubject = \"mailto:a@b\"\n"),
            "f.toml:1:1: [push] wait = 500: from 1 to 120 seconds"
        );
        assert!(
            err("[push.apns]\nkey = \"k.p8\"\n").starts_with("f.toml:1:"),
            "missing key_id"
        );
    }

    #[test]
    fn mistakes_are_refused_at_their_line_and_column() {
        let at = |text: &str| match parse(Path::new("f.toml"), text) {
            Err(ConfigError::Invalid {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("{other:?}"),
        };
        // An advertise_v6 that is IPv4; a TURN listener that is not tcp:/tls:.
        let (line, _, message) = at("[media]\nadvertise_v6 = \"198.51.100.7\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("not an IPv6"), "{message}");
        let (line, _, message) = at("[turn]\ntcp = [\"udp:0.0.0.0:3478\"]\n");
        assert_eq!(line, 2);
        assert!(message.contains("expected tcp:"), "{message}");
        let (line, _, message) = at("[turn]\nrelay_v6 = \"10.0.0.1\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("not an IPv6"), "{message}");
        // An unknown key.
        let (line, _, message) = at("domains = [\"a\"]\nring_timeot = 3\n");
        assert_eq!(line, 2);
        assert!(message.contains("ring_timeot"), "{message}");
        // A wrong type.
        let (line, column, _) = at("\n\nring_timeout = \"soon\"\n");
        assert_eq!((line, column), (3, 16));
        // A bad value inside a list.
        let (line, _, message) =
            at("listen = [\n  \"udp:127.0.0.1:5060\",\n  \"sctp:1.2.3.4:5\",\n]\n");
        assert_eq!(line, 3);
        assert!(message.contains("sctp:1.2.3.4:5"), "{message}");
        // A peer over a transport we do not speak between domains.
        let (line, column, message) = at("[peers]\n\"x.test\" = \"ws:127.0.0.1:80\"\n");
        assert_eq!((line, column), (2, 12));
        assert!(message.contains("udp, tcp or tls"), "{message}");
        // Log directives that do not read.
        let (line, _, message) = at("domains = [\"a\"]\nlog = \"info,openline=loud\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("openline=loud"), "{message}");
        // A TURN user without a password.
        let (line, column, message) = at("[turn]\nusers = [\"ok:pw\", \"nopassword\"]\n");
        assert_eq!((line, column), (2, 19));
        assert!(message.contains("USER:PASSWORD"), "{message}");
        // A metrics address that is not tcp:IP:PORT.
        let (line, column, message) = at("domains = [\"a\"]\nmetrics = \"9464\"\n");
        assert_eq!((line, column), (2, 11));
        assert!(message.contains("tcp:IP:PORT"), "{message}");
        // Not TOML at all.
        let (line, _, _) = at("domains = [\n");
        assert!(line >= 1);
    }
}
