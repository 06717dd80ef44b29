//! An authoritative DNS server on loopback for the federation tests (RFC 3263): one in-memory
//! zone served over UDP and TCP by hickory-server, on its own thread for the life of the test.

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, AAAA, NAPTR, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// A record of the test zone.
#[derive(Debug, Clone)]
pub enum Rr {
    /// NAME A IP.
    A(&'static str, Ipv4Addr),
    /// NAME AAAA IP.
    Aaaa(&'static str, Ipv6Addr),
    /// NAME SRV PRIORITY WEIGHT PORT TARGET.
    Srv(&'static str, u16, u16, u16, &'static str),
    /// NAME NAPTR ORDER PREFERENCE "s" SERVICE "" REPLACEMENT.
    Naptr(&'static str, u16, u16, &'static str, &'static str),
}

/// The running server: its address (UDP and TCP on the same port).
#[derive(Debug)]
pub struct TestDns {
    /// Where it answers.
    pub addr: SocketAddr,
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).expect("a DNS name")
}

impl TestDns {
    /// Serves `records` as the zone `origin` on 127.0.0.1.
    pub fn start(origin: &str, records: &[Rr]) -> TestDns {
        let origin = name(origin);
        let records = records.to_vec();
        let (tx, rx) = std::sync::mpsc::channel();
        #[allow(clippy::disallowed_methods)] // test support: the server needs its own runtime
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
                    .await
                    .expect("dns udp");
                let addr = udp.local_addr().expect("addr");
                let tcp = tokio::net::TcpListener::bind(addr).await.expect("dns tcp");
                let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
                    origin.clone(),
                    ZoneType::Primary,
                    AxfrPolicy::Deny,
                );
                let soa = SOA::new(name("ns.test"), name("root.test"), 1, 60, 60, 600, 5);
                zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
                for rr in records {
                    let record = match rr {
                        Rr::A(n, ip) => Record::from_rdata(name(n), 5, RData::A(A(ip))),
                        Rr::Aaaa(n, ip) => Record::from_rdata(name(n), 5, RData::AAAA(AAAA(ip))),
                        Rr::Srv(n, priority, weight, port, target) => Record::from_rdata(
                            name(n),
                            5,
                            RData::SRV(SRV::new(priority, weight, port, name(target))),
                        ),
                        Rr::Naptr(n, order, preference, service, replacement) => {
                            Record::from_rdata(
                                name(n),
                                5,
                                RData::NAPTR(NAPTR::new(
                                    order,
                                    preference,
                                    b"s".to_vec().into(),
                                    service.as_bytes().to_vec().into(),
                                    Vec::new().into(),
                                    name(replacement),
                                )),
                            )
                        }
                    };
                    assert!(zone.upsert_mut(record, 1), "record refused: {rr:?}");
                }
                let mut catalog = Catalog::new();
                catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
                let mut server = Server::new(catalog);
                server.register_socket(udp);
                server.register_listener(tcp, Duration::from_secs(5), 64);
                tx.send(addr).expect("report address");
                let _ = server.block_until_done().await;
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the DNS server started");
        TestDns { addr }
    }
}
