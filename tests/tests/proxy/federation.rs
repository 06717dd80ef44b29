//! Two openline domains, club-a.test and club-b.test, find each other through a DNS server the
//! test runs on loopback (RFC 3263) and talk over TLS, each checking the other's certificate
//! against the domain (RFC 5922). club-b.test has two SRV targets and the first one is down.

use crate::sipp::{Callee, call_callee};
use openline_tests::certs::{DomainCert, TestPki};
use openline_tests::dns::{Rr, TestDns};
use openline_tests::subject::{Subject, scratch_dir};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

const A_TLS: u16 = 5261;
/// club-b.test's first SRV target: nothing listens there.
const B_DOWN: u16 = 5262;
const B_TLS: u16 = 5263;
/// w.clubs.test's server, whose certificate names only `*.clubs.test`.
const W_TLS: u16 = 5265;
/// club-d.test's server, on [::1] only (its A record names 127.0.0.1, where nothing listens).
const D_TLS: u16 = 5266;
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn zone() -> Vec<Rr> {
    vec![
        // club-b.test: NAPTR to its TLS SRV name, two servers by priority, the first down.
        Rr::Naptr("club-b.test", 10, 10, "SIPS+D2T", "_sips._tcp.club-b.test"),
        Rr::Srv("_sips._tcp.club-b.test", 10, 10, B_DOWN, "sip1.club-b.test"),
        Rr::Srv("_sips._tcp.club-b.test", 20, 10, B_TLS, "sip2.club-b.test"),
        Rr::A("sip1.club-b.test", LOOPBACK),
        Rr::A("sip2.club-b.test", LOOPBACK),
        // w.clubs.test's server has a certificate for *.clubs.test only: a wildcard, which
        // rustls accepts and RFC 5922 7.2 does not.
        Rr::Srv("_sips._tcp.w.clubs.test", 10, 10, W_TLS, "sip.w.clubs.test"),
        Rr::A("sip.w.clubs.test", LOOPBACK),
        // club-c.test points at club-b's server, whose certificate does not name club-c.test.
        Rr::Srv("_sips._tcp.club-c.test", 10, 10, B_TLS, "sip2.club-b.test"),
        // club-d.test's server has an A and an AAAA record; only the IPv6 address answers.
        Rr::Srv("_sips._tcp.club-d.test", 10, 10, D_TLS, "sip.club-d.test"),
        Rr::A("sip.club-d.test", LOOPBACK),
        Rr::Aaaa("sip.club-d.test", std::net::Ipv6Addr::LOCALHOST),
        // club-a.test has no NAPTR: it is found by its _sips._tcp SRV record.
        Rr::Srv("_sips._tcp.club-a.test", 10, 10, A_TLS, "sip.club-a.test"),
        Rr::A("sip.club-a.test", LOOPBACK),
    ]
}

/// An openline serving `domain` with these users, listening on TLS at `tls_port`.
fn server(
    domain: &str,
    users: &[(&str, &str)],
    tls_port: u16,
    cert: &DomainCert,
    pki: &TestPki,
    dns: &TestDns,
) -> Subject {
    let listen = format!("tls:127.0.0.1:{tls_port}");
    let dns = dns.addr.to_string();
    let mut args = vec!["--domain", domain, "--listen", &listen, "--dns", &dns];
    let tls = pki.serve_args(cert);
    args.extend(tls.iter().map(String::as_str));
    Subject::start_with_users(users, &args)
}

#[test]
fn two_domains_call_each_other_over_tls_located_by_dns() {
    let dir = scratch_dir("proxy-federation");
    let pki = TestPki::new(&dir);
    let a_cert = pki.issue("club-a", &["club-a.test"]);
    let b_cert = pki.issue("club-b", &["club-b.test"]);
    let dns = TestDns::start("test", &zone());
    let a = server(
        "club-a.test",
        &[
            ("alice@club-a.test", "s3cret"),
            ("dave@club-a.test", "s3cret"),
        ],
        A_TLS,
        &a_cert,
        &pki,
        &dns,
    );
    let b = server(
        "club-b.test",
        &[
            ("bob@club-b.test", "s3cret"),
            ("carol@club-b.test", "s3cret"),
        ],
        B_TLS,
        &b_cert,
        &pki,
        &dns,
    );

    // alice@club-a.test calls bob@club-b.test: club-a finds sip1 down and goes on to sip2.
    let (a_udp, b_udp) = (a.udp.to_string(), b.udp.to_string());
    let bob = Callee {
        registrar: &b_udp,
        user: "bob",
        domain: "club-b.test",
        port: 5280,
    };
    let calls = call_callee(
        &dir,
        "a-to-b",
        bob,
        (&a_udp, "uac-auth.xml"),
        ("alice", "club-a.test"),
        3,
    );
    assert_eq!(calls.0, Some(3), "{}", calls.1);

    // bob@club-c.test is served (says DNS) by a server that cannot prove club-c.test: club-a
    // refuses the TLS connection, so nothing is sent, and alice hears 500 (no server).
    call_refused_before_sending(&dir, &a_udp, "club-c.test", 5286);

    // bob@w.clubs.test: its server's certificate names *.clubs.test, which rustls accepts for
    // w.clubs.test; RFC 5922 does not, so nothing is sent there either.
    let w_cert = pki.issue("clubs", &["*.clubs.test"]);
    let _w = server("w.clubs.test", &[], W_TLS, &w_cert, &pki, &dns);
    call_refused_before_sending(&dir, &a_udp, "w.clubs.test", 5287);

    // bob@club-d.test: club-d's server answers on IPv6 only; both its A and AAAA records are
    // asked for, and the second address reached.
    let d_cert = pki.issue("club-d", &["club-d.test"]);
    let d = {
        let listen = format!("tls:[::1]:{D_TLS}");
        let dns = dns.addr.to_string();
        let mut args = vec![
            "--domain",
            "club-d.test",
            "--listen",
            &listen,
            "--dns",
            &dns,
        ];
        let tls = pki.serve_args(&d_cert);
        args.extend(tls.iter().map(String::as_str));
        Subject::start_with_users(&[("bob@club-d.test", "s3cret")], &args)
    };
    let d_udp = d.udp.to_string();
    let bob_d = Callee {
        registrar: &d_udp,
        user: "bob",
        domain: "club-d.test",
        port: 5288,
    };
    let calls = call_callee(
        &dir,
        "a-to-d",
        bob_d,
        (&a_udp, "uac-auth.xml"),
        ("alice", "club-a.test"),
        1,
    );
    assert_eq!(calls.0, Some(1), "over IPv6: {}", calls.1);

    // carol@club-b.test calls dave@club-a.test: the reverse direction.
    let dave = Callee {
        registrar: &a_udp,
        user: "dave",
        domain: "club-a.test",
        port: 5283,
    };
    let calls = call_callee(
        &dir,
        "b-to-a",
        dave,
        (&b_udp, "uac-auth.xml"),
        ("carol", "club-b.test"),
        3,
    );
    assert_eq!(calls.0, Some(3), "{}", calls.1);
}

/// alice@club-a.test calls bob@`domain` once through `server`, from `port`, and the call must
/// fail with our own 500: the server the domain's DNS names could not prove the domain, so
/// nothing was sent there (had it been, its 404 for an unknown bob would have come back).
fn call_refused_before_sending(dir: &std::path::Path, server: &str, domain: &str, port: u16) {
    let run = dir.join(format!("a-to-{domain}"));
    let (calls, screen) = crate::sipp::run_calls(
        &run,
        server,
        "uac-auth.xml",
        ("alice", "club-a.test"),
        ("bob", domain),
        1,
        port,
    );
    assert_ne!(
        calls,
        Some(1),
        "a call reached a server not proved to be {domain}: {screen}"
    );
    let errors: String = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        errors.contains("received 'SIP/2.0 500"),
        "calling {domain}, alice did not hear 500: {errors}"
    );
}

/// Sends `request` to 127.0.0.1:`port` over TLS, presenting `client` and expecting the server
/// to prove `server_name`: the status of the first final response.
fn tls_status(
    port: u16,
    pki: &TestPki,
    client: &DomainCert,
    server_name: &str,
    request: &str,
) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&pki.ca).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(&client.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&client.key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tls.read(&mut buf).expect("a response before the time-out");
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        let finals: Vec<u16> = text
            .split("SIP/2.0 ")
            .skip(1)
            .filter_map(|s| s.get(..3)?.parse().ok())
            .filter(|code| *code >= 200)
            .collect();
        if let Some(code) = finals.first() {
            return *code;
        }
    }
}

fn options(from: &str, to: &str) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}>;tag=1\r\nTo: <sip:{to}>\r\n\
         Call-ID: peer-check-{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        from.len(),
        from.len()
    )
}

#[test]
fn a_tls_peer_may_only_speak_for_its_own_domain() {
    let dir = scratch_dir("proxy-tls-peer");
    let pki = TestPki::new(&dir);
    let a_cert = pki.issue("club-a", &["club-a.test"]);
    let b_cert = pki.issue("club-b", &["club-b.test"]);
    let dns = TestDns::start("test", &zone());
    // Its own port, so it runs beside the call test.
    let b = server("club-b.test", &[], 5264, &b_cert, &pki, &dns);
    // club-a's certificate, From club-a.test: routed (nobody@club-b.test does not exist: 404).
    let own = tls_status(
        5264,
        &pki,
        &a_cert,
        "club-b.test",
        &options("alice@club-a.test", "nobody@club-b.test"),
    );
    assert_eq!(own, 404);
    // The same certificate speaking for club-c.test: refused.
    let other = tls_status(
        5264,
        &pki,
        &a_cert,
        "club-b.test",
        &options("mallory@club-c.test", "nobody@club-b.test"),
    );
    assert_eq!(other, 403);
    drop(b);
}
