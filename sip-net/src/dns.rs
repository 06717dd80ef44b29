//! RFC 3263 look-ups with hickory-resolver. What to ask and how to order the answers is decided
//! by `openline_sip::locate`; this module only asks.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use openline_sip::Transport;
use openline_sip::locate::{self, Naptr, Srv, Start};
use openline_sip::transaction::Destination;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Most servers tried for one domain: each costs a transaction and its timers when it is down.
const MOST_SERVERS: usize = 8;

/// Why no server was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// DNS answered: the domain has no SIP server (or no address for one).
    #[error("no SIP server found")]
    NotFound,
    /// DNS did not answer usefully (time-out, server failure).
    #[error("DNS look-up failed: {0}")]
    Failed(String),
    /// The URI cannot be located (not sip/sips, or a transport we do not speak).
    #[error("cannot locate {0}")]
    Unusable(String),
}

/// Finds the servers of a SIP URI.
#[derive(Clone)]
pub struct Locator {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Locator")
    }
}

impl Locator {
    /// Asks `nameserver` (UDP then TCP), or the system's resolvers (/etc/resolv.conf) when None.
    pub fn new(nameserver: Option<SocketAddr>) -> Result<Self, LocateError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    provider,
                )
            }
            None => {
                TokioResolver::builder(provider).map_err(|e| LocateError::Failed(e.to_string()))?
            }
        };
        let options: &mut ResolverOpts = builder.options_mut();
        // A request waits on this: a slow DNS must not outlast the caller's own patience.
        options.timeout = Duration::from_secs(2);
        options.attempts = 2;
        // A and AAAA both, IPv6 first (hickory's default today, said here so an upgrade
        // cannot take it away): a server reachable on one family only is still reached, the
        // other address being the next target when the first fails.
        options.ip_strategy = LookupIpStrategy::Ipv6AndIpv4;
        let resolver = builder
            .build()
            .map_err(|e| LocateError::Failed(e.to_string()))?;
        Ok(Locator { resolver })
    }

    /// The servers of `uri` reachable over `transports`, in the order to try them (RFC 3263
    /// section 4: NAPTR, then SRV by priority and weight, then A/AAAA).
    pub async fn locate(
        &self,
        uri: &str,
        transports: &[Transport],
    ) -> Result<Vec<Destination>, LocateError> {
        let unusable = || LocateError::Unusable(uri.to_string());
        let parsed = openline_sip::Uri::parse(uri).map_err(|_| unusable())?;
        let sip = parsed.sip().ok_or_else(unusable)?;
        let start = locate::start(sip, transports).ok_or_else(unusable)?;
        let mut search = Search::default();
        match start {
            Start::Address(transport, ip, port) => search.add(transport, &[ip], port),
            Start::Host(transport, name, port) => {
                let ips = self.addresses(&name, &mut search).await;
                search.add(transport, &ips, port);
            }
            Start::Srv(names) => self.follow_srv(&names, &mut search).await,
            Start::Naptr(domain) => {
                let naptr = self.naptr(&domain, &mut search).await;
                let mut names = locate::srv_from_naptr(&naptr, sip.secure, transports);
                if names.is_empty() {
                    names = locate::srv_without_naptr(&domain, sip.secure, transports);
                }
                self.follow_srv(&names, &mut search).await;
                if search.found.is_empty() {
                    if let Some((transport, host, port)) =
                        locate::without_srv(&domain, sip.secure, transports)
                    {
                        let ips = self.addresses(&host, &mut search).await;
                        search.add(transport, &ips, port);
                    }
                }
            }
        }
        search.finish()
    }

    /// The records of `kind` at `name`; none when there are none or DNS failed (noted).
    async fn records(&self, name: &str, kind: RecordType, search: &mut Search) -> Vec<RData> {
        search
            .note(self.resolver.lookup(fqdn(name), kind).await)
            .map(|found| found.answers().iter().map(|r| r.data.clone()).collect())
            .unwrap_or_default()
    }

    async fn naptr(&self, domain: &str, search: &mut Search) -> Vec<Naptr> {
        let records = self.records(domain, RecordType::NAPTR, search).await;
        records
            .into_iter()
            .filter_map(|r| match r {
                RData::NAPTR(n) => Some(Naptr {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    service: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_ascii(),
                }),
                _ => None,
            })
            .collect()
    }

    async fn follow_srv(&self, names: &[(Transport, String)], search: &mut Search) {
        for (transport, name) in names {
            let records = self.records(name, RecordType::SRV, search).await;
            let records: Vec<Srv> = records
                .into_iter()
                .filter_map(|r| match r {
                    RData::SRV(s) => Some(Srv {
                        priority: s.priority,
                        weight: s.weight,
                        port: s.port,
                        target: s.target.to_ascii(),
                    }),
                    _ => None,
                })
                .collect();
            let mut entropy = openline_sip::SeededEntropy::new(random_seed());
            for srv in locate::order_srv(records, &mut entropy) {
                if search.full() {
                    return;
                }
                let ips = self
                    .addresses(srv.target.trim_end_matches('.'), search)
                    .await;
                search.add(*transport, &ips, srv.port);
            }
        }
    }

    async fn addresses(&self, host: &str, search: &mut Search) -> Vec<IpAddr> {
        search
            .note(self.resolver.lookup_ip(fqdn(host)).await)
            .map(|found| found.iter().collect())
            .unwrap_or_default()
    }
}

/// A name as absolute, so no search domain of the host is appended.
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// Load spreading among equal SRV weights needs unpredictability, not secrecy: std's per-map
/// random keys are enough.
fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// What a look-up found so far, and the last real failure, for when it found nothing.
#[derive(Default)]
struct Search {
    found: Vec<Destination>,
    failure: Option<String>,
}

impl Search {
    fn note<T>(&mut self, result: Result<T, NetError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => None,
            Err(e) => {
                self.failure = Some(e.to_string());
                None
            }
        }
    }

    fn full(&self) -> bool {
        self.found.len() >= MOST_SERVERS
    }

    fn add(&mut self, transport: Transport, ips: &[IpAddr], port: u16) {
        for ip in ips {
            let d = Destination {
                transport,
                addr: SocketAddr::new(*ip, port),
            };
            if !self.full() && !self.found.contains(&d) {
                self.found.push(d);
            }
        }
    }

    fn finish(self) -> Result<Vec<Destination>, LocateError> {
        match (self.found.is_empty(), self.failure) {
            (false, _) => Ok(self.found),
            (true, Some(f)) => Err(LocateError::Failed(f)),
            (true, None) => Err(LocateError::NotFound),
        }
    }
}
