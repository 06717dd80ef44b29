//! `openline doctor`: checks a configured (and, when one runs, the running) server as a user
//! sees it, and says in plain lines what is wrong and how to fix it. It reads, binds for a
//! moment and sends OPTIONS; it never changes anything.

use crate::server::ServeConfig;
use openline_sip::Transport;
use openline_sip_net::{CertFinding, ListenSpec, LocalAddresses};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// As it should be.
    Ok,
    /// Works, but maybe not as meant.
    Warn,
    /// Broken: the exit status says so.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// What was checked: listen, dns, tls, db, media, clock, server.
    pub check: &'static str,
    /// What was found.
    pub says: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn finding(level: Level, check: &'static str, says: String, fix: Option<&str>) -> Finding {
    Finding {
        level,
        check,
        says,
        fix: fix.map(str::to_string),
    }
}

/// Every check, in the order a reader fixes things.
pub async fn examine(config: &ServeConfig) -> Vec<Finding> {
    let addresses = LocalAddresses::read();
    let mut out = Vec::new();
    let running = crate::control::ask(&config.control, crate::control::Query::Status)
        .await
        .ok();
    out.push(match &running {
        Some(s) => finding(
            Level::Ok,
            "server",
            format!(
                "openline {} is running (up {} s), asked at {}",
                s["version"].as_str().unwrap_or("?"),
                s["uptime_seconds"].as_u64().unwrap_or(0),
                config.control.display()
            ),
            None,
        ),
        None => finding(
            Level::Warn,
            "server",
            format!(
                "no server answers at {}: what follows checks the configuration alone",
                config.control.display()
            ),
            Some("start it with `openline serve` and the same options, then run doctor again"),
        ),
    });
    for spec in &config.listen {
        out.extend(listener(spec, &addresses, running.is_some(), &config.core.domains).await);
    }
    out.extend(dns(config, &addresses).await);
    if let Some(files) = &config.tls {
        out.extend(certificate(files, &config.core.domains));
    }
    out.push(database(&config.db));
    if let Some(media) = config.media.as_ref().filter(|m| m.remote.is_none()) {
        out.push(relay_ports(media.listen, media.ports, running.is_some()));
    }
    out.push(clock());
    out
}

/// A listener: its address is this machine's, and it answers (running) or is free (not).
async fn listener(
    spec: &ListenSpec,
    addresses: &LocalAddresses,
    running: bool,
    domains: &[String],
) -> Vec<Finding> {
    let name = format!(
        "{}:{}",
        spec.transport.as_via().to_ascii_lowercase(),
        spec.addr
    );
    let ip = spec.addr.ip();
    if ip.is_ipv6() && !openline_sip_net::ipv6_available() {
        return vec![finding(
            Level::Fail,
            "listen",
            format!("{name}: IPv6 is disabled on this machine"),
            Some(
                "listen on an IPv4 address, or enable IPv6 (sysctl net.ipv6.conf.all.disable_ipv6=0)",
            ),
        )];
    }
    if !ip.is_unspecified() && !ip.is_loopback() && !addresses.is_local(ip) {
        return vec![finding(
            Level::Fail,
            "listen",
            format!("{name}: this machine has no address {ip}"),
            Some("listen on one of `ip -brief address`, or on 0.0.0.0 / [::] with `advertise`"),
        )];
    }
    let mut out = Vec::new();
    if let Some(a) = spec.advertise {
        out.push(if addresses.is_local(a.ip()) {
            finding(
                Level::Ok,
                "listen",
                format!("{name} advertises {a}, one of this machine's addresses"),
                None,
            )
        } else {
            finding(
                Level::Warn,
                "listen",
                format!("{name} advertises {a}, which is not on this machine"),
                Some(
                    "right behind 1:1 NAT or in a cloud VM: the router must forward that port here",
                ),
            )
        });
    }
    let targets: Vec<IpAddr> = if ip.is_unspecified() {
        addresses
            .interfaces()
            .into_iter()
            .filter(|a| a.is_ipv4() == ip.is_ipv4())
            .collect()
    } else {
        vec![ip]
    };
    if !running {
        out.push(match probe_bind(spec) {
            Ok(()) => finding(Level::Ok, "listen", format!("{name} is free to bind"), None),
            Err(e) => finding(
                Level::Fail,
                "listen",
                format!("{name} cannot be bound: {e}"),
                Some("another program holds it: `ss -lnp | grep :PORT` names it"),
            ),
        });
        return out;
    }
    let domain = domains.first().map_or("localhost", String::as_str);
    let (mut answered, mut silent) = (Vec::new(), Vec::new());
    for t in targets {
        let at = SocketAddr::new(t, spec.addr.port());
        let ok = match spec.transport {
            Transport::Udp => options_answered(at, domain).await,
            _ => tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(at))
                .await
                .is_ok_and(|c| c.is_ok()),
        };
        if ok { answered.push(t) } else { silent.push(t) }
    }
    let list = |v: &[IpAddr]| {
        v.iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = if spec.transport == Transport::Udp {
        "answers OPTIONS"
    } else {
        "accepts connections"
    };
    if !answered.is_empty() {
        out.push(finding(
            Level::Ok,
            "listen",
            format!("{name} {what} on {}", list(&answered)),
            None,
        ));
    }
    if !silent.is_empty() {
        out.push(finding(
            Level::Fail,
            "listen",
            format!("{name} is silent on {}", list(&silent)),
            Some(
                "a firewall (`iptables -L INPUT -n`), or the server is not the one configured here",
            ),
        ));
    }
    out
}

/// Binds the listener's address for a moment.
fn probe_bind(spec: &ListenSpec) -> std::io::Result<()> {
    match spec.transport {
        Transport::Udp => std::net::UdpSocket::bind(spec.addr).map(drop),
        _ => std::net::TcpListener::bind(spec.addr).map(drop),
    }
}

/// Whether `at` answers an OPTIONS addressed to itself with 200 within a second.
async fn options_answered(at: SocketAddr, domain: &str) -> bool {
    let any: SocketAddr = if at.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(socket) = tokio::net::UdpSocket::bind(any).await else {
        return false;
    };
    let Ok(local) = socket.connect(at).await.and_then(|()| socket.local_addr()) else {
        return false;
    };
    let host = |a: SocketAddr| match a {
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
        v4 => v4.to_string(),
    };
    let request = format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK-doctor-{port}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:doctor@{domain}>;tag=doctor\r\nTo: <sip:{target}>\r\n\
         Call-ID: doctor-{port}@{domain}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        target = host(at),
        via = host(local),
        port = local.port(),
    );
    if socket.send(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await,
        Ok(Ok(n)) if buf[..n].starts_with(b"SIP/2.0 200")
    )
}

/// Each domain's SIP records (RFC 3263) point at this machine (or at an advertised address).
async fn dns(config: &ServeConfig, addresses: &LocalAddresses) -> Vec<Finding> {
    let Ok(locator) = openline_sip_net::Locator::new(config.dns) else {
        return vec![finding(
            Level::Warn,
            "dns",
            "no resolver could be set up".into(),
            Some("check /etc/resolv.conf"),
        )];
    };
    let advertised: Vec<IpAddr> = config
        .listen
        .iter()
        .filter_map(|l| l.advertise.map(|a| a.ip()))
        .collect();
    let mut out = Vec::new();
    for domain in &config.core.domains {
        let found = locator
            .locate(
                &format!("sip:{domain}"),
                &[Transport::Udp, Transport::Tcp, Transport::Tls],
            )
            .await
            .unwrap_or_default();
        let ips: Vec<IpAddr> = found.iter().map(|d| d.addr.ip()).collect();
        let here = ips
            .iter()
            .any(|ip| addresses.is_local(*ip) || ip.is_loopback() || advertised.contains(ip));
        out.push(if ips.is_empty() {
            finding(
                Level::Warn,
                "dns",
                format!("{domain} has no SIP records (NAPTR, SRV, A or AAAA): other domains cannot find it"),
                Some("publish _sip._udp, _sip._tcp and _sips._tcp SRV records (and A/AAAA) for this host; phones can use its address meanwhile"),
            )
        } else if here {
            finding(Level::Ok, "dns", format!("{domain} points here ({})", join(&ips)), None)
        } else {
            finding(
                Level::Fail,
                "dns",
                format!("{domain} points at {}, none of them this machine", join(&ips)),
                Some("correct the domain's SRV/A/AAAA records, or `advertise` the address they name"),
            )
        });
    }
    out
}

fn join(ips: &[IpAddr]) -> String {
    let mut v: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    v.dedup();
    v.join(", ")
}

/// The certificate: readable, trusted, naming every domain, not near expiry.
fn certificate(files: &openline_sip_net::TlsFiles, domains: &[String]) -> Vec<Finding> {
    #[allow(clippy::disallowed_methods)] // doctor is a driver: it reads the clock
    let now = std::time::SystemTime::now();
    let cert = files.cert.display();
    openline_sip_net::check_certificate(files, domains, now)
        .into_iter()
        .map(|f| match f {
            CertFinding::Fine(names) => finding(
                Level::Ok,
                "tls",
                format!("{cert} is valid and names {}", names.join(", ")),
                None,
            ),
            CertFinding::Unreadable(why) => finding(
                Level::Fail,
                "tls",
                why,
                Some("give PEM files: --tls-cert, --tls-key"),
            ),
            CertFinding::Untrusted(why) => finding(
                Level::Fail,
                "tls",
                format!("{cert} does not chain to the trusted roots ({why})"),
                Some("include the intermediate certificates in the cert file, or set --tls-ca"),
            ),
            CertFinding::NotValidNow => finding(
                Level::Fail,
                "tls",
                format!("{cert} has expired or is not valid yet"),
                Some("renew it (or check the clock)"),
            ),
            CertFinding::ExpiresSoon => finding(
                Level::Warn,
                "tls",
                format!("{cert} expires within 14 days"),
                Some("renew it"),
            ),
            CertFinding::MissingName(d) => finding(
                Level::Fail,
                "tls",
                format!("{cert} does not name {d}: other domains will refuse it (RFC 5922)"),
                Some("get a certificate with a subjectAltName for every domain served"),
            ),
        })
        .collect()
}

/// The database: an SQLite file that is there and writable, or a PostgreSQL URL.
fn database(url: &str) -> Finding {
    let Some(path) = url.strip_prefix("sqlite://") else {
        return finding(
            Level::Ok,
            "db",
            format!("{} (not opened by doctor)", redact(url)),
            None,
        );
    };
    let file = path.split('?').next().unwrap_or(path);
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
    {
        Ok(_) => finding(
            Level::Ok,
            "db",
            format!("{file} is there and writable"),
            None,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => finding(
            Level::Warn,
            "db",
            format!("{file} does not exist yet"),
            Some("`openline user add USER@DOMAIN --password PW` creates it with the first user"),
        ),
        Err(e) => finding(
            Level::Fail,
            "db",
            format!("{file}: {e}"),
            Some("the server's user must be able to read and write it"),
        ),
    }
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// The relay's ports: free for it when no server runs (held ones are skipped by calls).
fn relay_ports(ip: IpAddr, (low, high): (u16, u16), running: bool) -> Finding {
    let range = format!("{low}-{high}");
    if running {
        return finding(
            Level::Ok,
            "media",
            format!("relay ports {range} are the running server's"),
            None,
        );
    }
    let busy = (low..=high)
        .filter(|p| std::net::UdpSocket::bind(SocketAddr::new(ip, *p)).is_err())
        .count();
    let total = usize::from(high - low) + 1;
    match busy {
        0 => finding(
            Level::Ok,
            "media",
            format!("relay ports {range} are free on {ip}"),
            None,
        ),
        n if n * 10 < total => finding(
            Level::Warn,
            "media",
            format!("{n} of the {total} relay ports {range} are held by other programs"),
            Some("calls skip them; move --media-ports away from them"),
        ),
        n => finding(
            Level::Fail,
            "media",
            format!("{n} of the {total} relay ports {range} are held by other programs"),
            Some("choose another --media-ports range (`ss -lunp` shows who holds them)"),
        ),
    }
}

/// The clock: nonces, certificates and registrations expire by it.
fn clock() -> Finding {
    let synced = std::process::Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "yes");
    match synced {
        Some(true) => finding(Level::Ok, "clock", "synchronized (NTP)".into(), None),
        Some(false) => finding(
            Level::Warn,
            "clock",
            "not synchronized".into(),
            Some("enable NTP: `timedatectl set-ntp true` (systemd-timesyncd or chrony)"),
        ),
        None => finding(
            Level::Warn,
            "clock",
            "cannot tell whether it is synchronized (no timedatectl)".into(),
            Some("run an NTP client (chrony, systemd-timesyncd)"),
        ),
    }
}

/// The report as lines: one per finding, its fix indented below.
pub fn say(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!("{tag} {:<7} {}\n", f.check, f.says));
        if let Some(fix) = &f.fix {
            if f.level != Level::Ok {
                out.push_str(&format!("             fix: {fix}\n"));
            }
        }
    }
    out
}
