//! Certificates for TLS tests: a test CA, and a certificate per domain signed by it, written as
//! PEM files the way a server operator would have them.

use std::path::{Path, PathBuf};

/// PEM files for one domain.
#[derive(Debug, Clone)]
pub struct DomainCert {
    /// The certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// A CA and the certificates it signed, in a directory.
#[derive(Debug)]
pub struct TestPki {
    /// The CA certificate (what `--tls-ca` names).
    pub ca: PathBuf,
    dir: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestPki {
    /// `openline serve` options for a server presenting `cert` and trusting this CA:
    /// `--tls-cert F --tls-key F --tls-ca F`.
    pub fn serve_args(&self, cert: &DomainCert) -> Vec<String> {
        let path = |p: &PathBuf| p.display().to_string();
        vec![
            "--tls-cert".into(),
            path(&cert.cert),
            "--tls-key".into(),
            path(&cert.key),
            "--tls-ca".into(),
            path(&self.ca),
        ]
    }

    /// A new CA in `dir`.
    pub fn new(dir: &Path) -> TestPki {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Openline test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, cert.pem()).expect("write CA");
        TestPki {
            ca,
            dir: dir.to_path_buf(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (subjectAltName DNS entries), usable as server and client,
    /// valid from yesterday for 90 days as an ACME one is (testssl.sh judges the validity).
    pub fn issue(&self, file_stem: &str, names: &[&str]) -> DomainCert {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(90);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let out = DomainCert {
            cert: self.dir.join(format!("{file_stem}.pem")),
            key: self.dir.join(format!("{file_stem}.key")),
        };
        std::fs::write(&out.cert, cert.pem()).expect("write cert");
        std::fs::write(&out.key, key.serialize_pem()).expect("write key");
        out
    }
}

impl TestPki {
    /// A server certificate for a host reached by its address `ip`, as phones set up by
    /// address see it: the address as an IP entry and, for clients that match DNS entries
    /// only (Linphone's mbedTLS), as a DNS entry too.
    pub fn issue_for_address(&self, file_stem: &str, ip: std::net::IpAddr) -> DomainCert {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = vec![
            rcgen::SanType::DnsName(ip.to_string().try_into().expect("an IA5 name")),
            rcgen::SanType::IpAddress(ip),
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ip.to_string());
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let out = DomainCert {
            cert: self.dir.join(format!("{file_stem}.pem")),
            key: self.dir.join(format!("{file_stem}.key")),
        };
        std::fs::write(&out.cert, cert.pem()).expect("write cert");
        std::fs::write(&out.key, key.serialize_pem()).expect("write key");
        out
    }
}

/// An openline serving `domain` on `db` over TLS on 127.0.0.1:`port` with a certificate from
/// `pki`, knowing the other domain `(name, TLS port)` from its peer table: one side of a
/// two-domain test.
pub fn federated_server(
    pki: &TestPki,
    db: &str,
    domain: &str,
    port: u16,
    other: (&str, u16),
) -> crate::subject::Subject {
    let cert = pki.issue(domain, &[domain]);
    let (listen, peer) = (
        format!("tls:127.0.0.1:{port}"),
        format!("{}=tls:127.0.0.1:{}", other.0, other.1),
    );
    let mut args = vec!["--domain", domain, "--listen", &listen, "--peer", &peer];
    let tls = pki.serve_args(&cert);
    args.extend(tls.iter().map(String::as_str));
    crate::subject::Subject::start_on(db, &args)
}
