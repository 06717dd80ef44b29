//! The server's settings: the command line over the config file over the defaults.

use crate::serve_args::ServeArgs;
use openline_proxy::admin::DEFAULT_DB;
use openline_proxy::config;
use openline_proxy::config::MediaSection;
use openline_proxy::core::{CoreConfig, MediaMode};
use openline_proxy::server::ServeConfig;
use openline_proxy::server::{MediaRelayConfig, TurnServeConfig};
use openline_proxy::text::TextConfig;
use openline_registrar::RegistrarConfig;
use openline_sip::EndpointConfig;
use openline_sip::Transport;
use openline_sip::transaction::{Destination, TimerConfig};
use openline_sip_net::{ListenSpec, TlsFiles};
use std::time::Duration;

/// The server's settings: the command line over the config file over the defaults.
pub(crate) fn serve_config(args: ServeArgs) -> anyhow::Result<(ServeConfig, Option<String>)> {
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
        (_, _, Some(t)) => Some((t.cert.clone(), t.key.clone())),
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
    let limits = file.limits.clone().unwrap_or_default();
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
            // JsSIP (the web phone) knows MD5 only and takes the SHA-256 challenge when offered both.
            md5_only_agents: or_file(
                args.md5_only_agents,
                file.md5_only_agents,
                &["baresip", "JsSIP"],
            ),
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
        push: file
            .push
            .as_ref()
            .map(|p| openline_proxy::wake::PushPolicy {
                wait: p.wait,
                message_text: p.message_text,
                sender: p.sender,
                // Filled in once the server has read the services' keys.
                providers: Vec::new(),
                vapid: None,
            })
            .unwrap_or_default(),
        media: media_args.mode.or(media_file.mode).unwrap_or_default(),
        guard: limits.guard,
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
        acme: file_tls
            .as_ref()
            .and_then(|t| t.acme.clone())
            .filter(|_| args.tls_cert.is_none())
            .map(|a| openline_proxy::server::AcmeServe {
                config: a.config,
                dir: a.dir,
            }),
        web: web_config(&args.web, file.web),
        push: file.push,
        websocket: file.websocket.unwrap_or_default(),
        limits: limits.network,
    };
    if config
        .web
        .as_ref()
        .is_some_and(|w| w.listen.iter().any(|l| l.tls))
        && config.tls.is_none()
    {
        anyhow::bail!(
            "--web https:... needs a certificate: --tls-cert and --tls-key, or [tls] acme"
        );
    }
    Ok((config, log))
}

/// The web listeners: the command line's, else the file's.
fn web_config(
    args: &[(bool, std::net::SocketAddr)],
    file: Option<config::WebSection>,
) -> Option<openline_proxy::server::WebServe> {
    let file = file.unwrap_or_default();
    let listen = if args.is_empty() {
        file.listen
    } else {
        args.to_vec()
    };
    if listen.is_empty() {
        return None;
    }
    Some(openline_proxy::server::WebServe {
        listen: listen
            .into_iter()
            .map(|(tls, addr)| openline_proxy::server::WebListen { tls, addr })
            .collect(),
        proxy: file.provisioning_proxy,
    })
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
