//! The renewal loop (the thin driver around [`Schedule`] and [`order`]): it reads the
//! certificate in use, sleeps until it is due, orders, checks what came back, writes it whole
//! and says so; a failure leaves the files as they were and is retried with back-off.

use crate::acme::{AcmeConfig, Issued, OrderError, order};
use crate::challenges::Challenges;
use crate::files::{AcmeFiles, write_whole};
use crate::schedule::{Schedule, Step};
use crate::validity::CertInfo;
use rustls::pki_types::pem::PemObject as _;
use std::time::Duration;

/// What happened, for the one who serves the certificate (reload, metrics).
#[derive(Debug, Clone)]
pub enum Event {
    /// A certificate was written in place.
    Issued(CertInfo),
    /// An order failed; the certificate in use (if any) stays.
    Failed {
        /// Why, in one line.
        reason: String,
        /// The certificate still in use.
        current: Option<CertInfo>,
        /// When the next try is.
        retry_in: Duration,
    },
}

/// Keeps the certificate for `domains` issued and fresh.
#[derive(Debug)]
pub struct Manager {
    config: AcmeConfig,
    files: AcmeFiles,
    domains: Vec<String>,
    challenges: Challenges,
}

/// The longest sleep before the file is looked at again (an operator may replace it).
const LOOK_AGAIN: u64 = 3600;

#[allow(clippy::disallowed_methods)] // the driver reads the wall clock; the schedule does not
fn wall_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Manager {
    /// A manager for `domains`, answering challenges through `challenges`.
    pub fn new(
        config: AcmeConfig,
        files: AcmeFiles,
        domains: Vec<String>,
        challenges: Challenges,
    ) -> Self {
        Manager {
            config,
            files,
            domains,
            challenges,
        }
    }

    /// Runs for ever, telling `on_event` what it did.
    pub async fn run(self, mut on_event: impl FnMut(Event) + Send) {
        let mut schedule = Schedule::new();
        loop {
            let now = wall_clock();
            let current = CertInfo::from_pem_file(&self.files.cert).ok();
            match schedule.step(now, current.as_ref(), &self.domains) {
                Step::WaitUntil(at) => {
                    let wait = at.saturating_sub(now).clamp(1, LOOK_AGAIN);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                Step::Order(reason) => {
                    tracing::info!(
                        domains = ?self.domains,
                        challenge = %self.config.challenge,
                        "ACME: ordering a certificate: {reason}"
                    );
                    match self.order_and_store().await {
                        Ok(info) => {
                            schedule.succeeded();
                            tracing::info!(not_after = info.not_after, "ACME: certificate issued");
                            on_event(Event::Issued(info));
                        }
                        Err(reason) => {
                            let retry_in = schedule.failed(wall_clock());
                            let keeping = match &current {
                                Some(c) if !c.self_signed => format!(
                                    "keeping the certificate that expires in {}",
                                    human(c.not_after.saturating_sub(wall_clock()))
                                ),
                                _ => "TLS keeps its stand-in certificate".to_owned(),
                            };
                            tracing::warn!(
                                "ACME renewal failed: {reason}; {keeping}; next try in {}",
                                human(retry_in.as_secs())
                            );
                            on_event(Event::Failed {
                                reason,
                                current,
                                retry_in,
                            });
                        }
                    }
                }
            }
        }
    }

    async fn order_and_store(&self) -> Result<CertInfo, String> {
        let issued = order(&self.config, &self.files, &self.domains, &self.challenges)
            .await
            .map_err(|e: OrderError| e.to_string())?;
        let info = check(&issued, &self.domains)?;
        write_whole(&self.files.key, issued.key_pem.as_bytes(), true)
            .map_err(|e| format!("{}: {e}", self.files.key.display()))?;
        write_whole(&self.files.cert, issued.chain_pem.as_bytes(), false)
            .map_err(|e| format!("{}: {e}", self.files.cert.display()))?;
        Ok(info)
    }
}

/// What the CA sent is a certificate for our domains with a key rustls can sign with.
fn check(issued: &Issued, domains: &[String]) -> Result<CertInfo, String> {
    let info = CertInfo::from_pem(&issued.chain_pem).map_err(|e| e.to_string())?;
    if !info.covers(domains) {
        return Err(format!(
            "the CA issued a certificate for {:?}, not {domains:?}",
            info.names
        ));
    }
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .map_err(|e| format!("the new key: {e}"))?;
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("the new key: {e}"))?;
    Ok(info)
}

/// `seconds` as a person reads it.
fn human(seconds: u64) -> String {
    match seconds {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s if s >= 120 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
