//! The push driver: one task owns the [`Pusher`] and hands each HTTP request to a task of its
//! own, bounded in number (a push beyond the bound fails at once) and in time (a service that
//! hangs costs one task for `timeout`, never the SIP loop). Device-given Web Push endpoints are
//! resolved through a filter that refuses private addresses unless allowed.

// The driver is where the clock is read.
#![allow(clippy::disallowed_methods)]

use crate::http::{HttpRequest, HttpResponse, Outcome};
use crate::pusher::{Exchange, Job, Pusher, Step, is_private};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How the driver behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The longest one HTTP exchange may take.
    pub timeout: Duration,
    /// Exchanges under way at once.
    pub max_in_flight: usize,
    /// The roots the services' certificates must chain to.
    pub roots: Arc<rustls::RootCertStore>,
}

/// The most of a response body read (services answer in a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// Resolves names, keeping only public addresses unless private ones are allowed.
#[derive(Debug, Clone)]
struct Resolver {
    allow_private: bool,
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{host} resolves to no public address"
                )));
            }
            Ok(found.into_iter())
        })
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;

fn client(settings: &Settings, allow_private: bool) -> Client<Https, Full<Bytes>> {
    let mut http = HttpConnector::new_with_resolver(Resolver { allow_private });
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.timeout));
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| {
        b.with_root_certificates(Arc::clone(&settings.roots))
            .with_no_client_auth()
    });
    let tls = match tls {
        Ok(t) => t,
        // The ring provider supports the default versions: not reached.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(Arc::clone(&settings.roots))
            .with_no_client_auth(),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

async fn exchange(
    client: Client<Https, Full<Bytes>>,
    request: HttpRequest,
) -> Result<HttpResponse, String> {
    let mut builder = hyper::Request::builder()
        .method(request.method)
        .uri(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(request.body)))
        .map_err(|e| format!("bad request: {e}"))?;
    let response = client.request(request).await.map_err(|e| {
        // The cause says more than "client error (Connect)".
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn wall() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Starts the driver: jobs in on the returned sender, `(job id, outcome)` out on `outcomes`.
pub fn spawn(
    mut pusher: Pusher,
    settings: Settings,
    outcomes: mpsc::UnboundedSender<(u64, Outcome)>,
) -> mpsc::UnboundedSender<Job> {
    let (jobs_tx, mut jobs) = mpsc::unbounded_channel::<Job>();
    let trusted = client(&settings, true);
    let endpoints = client(&settings, pusher.allow_private);
    tokio::spawn(async move {
        let (done_tx, mut done) =
            mpsc::unbounded_channel::<(Job, Exchange, Result<HttpResponse, String>)>();
        let mut in_flight = 0usize;
        loop {
            let step = tokio::select! {
                job = jobs.recv() => {
                    let Some(job) = job else { break };
                    let step = pusher.start(&job, Instant::now(), wall());
                    (job, step)
                }
                Some((job, exchange, response)) = done.recv() => {
                    in_flight -= 1;
                    let step = pusher.on_response(&job, exchange, response, Instant::now(), wall());
                    (job, step)
                }
            };
            match step {
                (job, Step::Done(outcome)) => {
                    let _ = outcomes.send((job.id, outcome));
                }
                (job, Step::Send { .. }) if in_flight >= settings.max_in_flight => {
                    let busy = Outcome::Failed(format!(
                        "{} pushes already under way",
                        settings.max_in_flight
                    ));
                    let _ = outcomes.send((job.id, busy));
                }
                (
                    job,
                    Step::Send {
                        exchange: which,
                        request,
                        untrusted,
                    },
                ) => {
                    in_flight += 1;
                    let client = if untrusted {
                        endpoints.clone()
                    } else {
                        trusted.clone()
                    };
                    let done = done_tx.clone();
                    let timeout = settings.timeout;
                    tokio::spawn(async move {
                        let response =
                            match tokio::time::timeout(timeout, exchange(client, request)).await {
                                Ok(r) => r,
                                Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
                            };
                        let _ = done.send((job, which, response));
                    });
                }
            }
        }
    });
    jobs_tx
}

/// The roots in a PEM bundle (`/etc/ssl/certs/ca-certificates.crt`, or a test CA).
pub fn load_roots(path: &std::path::Path) -> Result<Arc<rustls::RootCertStore>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .filter_map(Result::ok);
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(Arc::new(roots))
}
