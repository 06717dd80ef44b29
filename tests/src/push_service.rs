//! A push service standing in for a UnifiedPush distributor, Google's FCM or Apple's APNs: an
//! HTTP server (plain, or TLS offering HTTP/2 and HTTP/1.1) that keeps every request it gets
//! and answers as the test says. [`crate::push_device`] checks what the requests carry.

// A driver: it runs its own thread and reads the clock.
#![allow(clippy::disallowed_methods)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request the service got.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Header names in lower case, as received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON: {e}", self.path))
    }
}

/// What the service answers: status, extra headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Headers beside Content-Length.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// `status` with `body`.
    pub fn new(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// How the service answers each request.
pub type Answering = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

struct Seen {
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
}

/// A running stand-in, stopped on drop.
pub struct PushService {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://ADDR` or `https://NAME:PORT`.
    pub base: String,
    seen: Arc<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PushService {
    /// Plain HTTP/1.1 on `bind` (a UnifiedPush distributor on the LAN).
    pub fn http(bind: SocketAddr, answering: Answering) -> PushService {
        Self::start(bind, None, answering, |addr| format!("http://{addr}"))
    }

    /// TLS with `cert`/`key` (PEM), offering HTTP/2 then HTTP/1.1, reached as `https://name`.
    pub fn https(
        bind: SocketAddr,
        (cert, key): (&Path, &Path),
        name: &str,
        answering: Answering,
    ) -> PushService {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("certificate file")
            .map(|c| c.expect("certificate"))
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).expect("key file");
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = name.to_string();
        Self::start(bind, Some(Arc::new(tls)), answering, move |addr| {
            format!("https://{name}:{}", addr.port())
        })
    }

    /// Plain HTTP/1.1 on 127.0.0.1 inside the network namespace at `ns_path`
    /// (`/proc/PID/ns/net`), for a server running there.
    pub fn http_in(ns_path: &str, answering: Answering) -> PushService {
        let bind = "127.0.0.1:0".parse().expect("an address");
        Self::start_in(Some(ns_path.to_string()), bind, None, answering, |addr| {
            format!("http://{addr}")
        })
    }

    fn start(
        bind: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        answering: Answering,
        base: impl FnOnce(SocketAddr) -> String,
    ) -> PushService {
        Self::start_in(None, bind, tls, answering, base)
    }

    fn start_in(
        ns_path: Option<String>,
        bind: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        answering: Answering,
        base: impl FnOnce(SocketAddr) -> String,
    ) -> PushService {
        let seen = Arc::new(Seen {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound_tx, bound) = std::sync::mpsc::channel();
        let keep = Arc::clone(&seen);
        let thread = std::thread::spawn(move || {
            // The namespace is joined by this thread alone, before its socket is made.
            if let Some(path) = ns_path {
                let ns = std::fs::File::open(&path).expect("the namespace");
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            }
            let listener = std::net::TcpListener::bind(bind).expect("bind the push service");
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = bound_tx.send(listener.local_addr().expect("address"));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (seen, answering, tls) =
                            (Arc::clone(&keep), Arc::clone(&answering), tls.clone());
                        tokio::spawn(serve(stream, tls, seen, answering));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        let addr = bound.recv().expect("the push service listens");
        PushService {
            addr,
            base: base(addr),
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.requests.lock().expect("requests").clone()
    }

    /// The requests once there are `count` of them, or all there are after `limit`.
    pub fn wait_for(&self, count: usize, limit: Duration) -> Vec<Request> {
        let deadline = Instant::now() + limit;
        let mut requests = self.seen.requests.lock().expect("requests");
        while requests.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            requests = self
                .seen
                .arrived
                .wait_timeout(requests, left)
                .expect("requests")
                .0;
        }
        requests.clone()
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    seen: Arc<Seen>,
    answering: Answering,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (seen, answering) = (Arc::clone(&seen), Arc::clone(&answering));
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes().to_vec());
            let request = Request {
                method: parts.method.to_string(),
                path: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                version: format!("{:?}", parts.version),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.unwrap_or_default(),
            };
            let answer = answering(&request);
            {
                let mut requests = seen.requests.lock().expect("requests");
                requests.push(request);
                seen.arrived.notify_all();
            }
            let mut response = hyper::Response::builder().status(answer.status);
            for (n, v) in &answer.headers {
                response = response.header(n, v);
            }
            response.body(Full::new(Bytes::from(answer.body)))
        }
    });
    let builder = Builder::new(TokioExecutor::new());
    match tls {
        None => {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
        Some(config) => {
            let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await else {
                return;
            };
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }
}
