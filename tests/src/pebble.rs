//! Pebble (Debian's `pebble`, Let's Encrypt's ACME test server) on loopback for the
//! certificate tests: its own HTTPS certificate from a [`TestPki`], its challenges sent to the
//! ports our web listeners use, names looked up in a [`crate::dns::TestDns`], and certificates
//! that live `validity` seconds so a renewal comes within a test.

// A driver of a real program: waiting on it reads the clock.
#![allow(clippy::disallowed_methods)]

use crate::certs::TestPki;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running pebble.
pub struct Pebble {
    child: Option<Child>,
    /// Its ACME directory URL.
    pub directory: String,
    /// The root its own HTTPS chains to (for `directory_ca`).
    pub https_ca: PathBuf,
    management: SocketAddr,
    config: PathBuf,
    dns: SocketAddr,
    log: PathBuf,
}

/// A TCP port nobody on loopback listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Pebble {
    /// Starts pebble in `dir`, validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`
    /// of the names `dns` resolves, issuing certificates valid `validity` seconds.
    pub fn start(
        dir: &Path,
        pki: &TestPki,
        dns: SocketAddr,
        (http_port, tls_port): (u16, u16),
        validity: u64,
    ) -> Pebble {
        let own = pki.issue("pebble", &["127.0.0.1", "localhost"]);
        let (listen, management) = (free_port(), free_port());
        let config = dir.join("pebble.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"pebble": {{"listenAddress": "127.0.0.1:{listen}",
                 "managementListenAddress": "127.0.0.1:{management}",
                 "certificate": "{}", "privateKey": "{}",
                 "httpPort": {http_port}, "tlsPort": {tls_port},
                 "ocspResponderURL": "", "externalAccountBindingRequired": false,
                 "certificateValidityPeriod": {validity}}}}}"#,
                own.cert.display(),
                own.key.display()
            ),
        )
        .unwrap();
        let mut pebble = Pebble {
            child: None,
            directory: format!("https://127.0.0.1:{listen}/dir"),
            https_ca: pki.ca.clone(),
            management: ([127, 0, 0, 1], management).into(),
            config,
            dns,
            log: dir.join("pebble.log"),
        };
        pebble.run(([127, 0, 0, 1], listen).into());
        pebble
    }

    fn run(&mut self, listen: SocketAddr) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("timeout")
            .args(["300", "pebble", "-config"])
            .arg(&self.config)
            .args(["-dnsserver", &self.dns.to_string()])
            // No random sleeps before validating, no nonce rejections, a fresh authorization
            // for every order (a renewal answers its challenge again).
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("pebble (installed by scripts/install-test-deps)");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(listen).is_err() {
            assert!(
                Instant::now() < until,
                "pebble did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The root (PEM) its certificates chain to; a new one each time it starts.
    pub fn root(&self) -> String {
        let out = crate::run_peer(
            Path::new("/"),
            "curl",
            [
                "-sf".as_ref(),
                "--cacert".as_ref(),
                self.https_ca.as_os_str(),
                format!("https://{}/roots/0", self.management).as_ref(),
            ],
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "pebble's root: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Stops it (the CA is down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", "TERM", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports: a CA with no memory of accounts or orders.
    pub fn restart(&mut self) {
        self.stop();
        let listen = self
            .directory
            .trim_start_matches("https://")
            .trim_end_matches("/dir")
            .parse()
            .unwrap();
        self.run(listen);
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The end-entity certificate (DER) a TLS server at `addr` presents for `name`, verified
/// against `root_pem`; Err with the reason when the handshake fails.
pub fn presented(addr: SocketAddr, name: &str, root_pem: &str) -> Result<Vec<u8>, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), server)
        .map_err(|e| e.to_string())?;
    let mut sock =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    let chain = conn.peer_certificates().ok_or("no certificate")?;
    Ok(chain[0].to_vec())
}
