//! Accepting HTTP and HTTPS connections and handing each to the router on a task of its own:
//! a slow or silent client holds only its own task, and a TLS handshake has 10 s to finish.

use crate::tls::WebTls;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use openline_certs::ACME_TLS_ALPN;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a client may take to send its request head.
const HEADER_READ: Duration = Duration::from_secs(10);

/// The address a connection came in on, for handlers that answer with it (the address a
/// phone reached us at is one it can reach our SIP at).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Our side of the connection.
    pub local: SocketAddr,
    /// The client's side.
    pub peer: SocketAddr,
    /// Over TLS.
    pub secure: bool,
}

/// Serves `router` on `listener`, over TLS when `tls` is given, until the task is dropped.
pub async fn serve(listener: TcpListener, tls: Option<WebTls>, router: Router) {
    // One configuration for every connection: its resolver sees certificates put in place.
    let acceptor = match tls.map(|t| t.server_config()).transpose() {
        Ok(config) => config.map(tokio_rustls::TlsAcceptor::from),
        Err(e) => {
            tracing::error!(error = %e, "web: TLS configuration refused; not serving HTTPS");
            return;
        }
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "web: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let arrival = Arrival {
            local,
            peer,
            secure: acceptor.is_some(),
        };
        let router = router.clone().layer(axum::Extension(arrival));
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => connection(stream, router).await,
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "web: TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    // A CA's TLS-ALPN-01 check ends with the handshake: no HTTP on it.
                    if stream.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
                        tracing::info!(%peer, "web: answered a TLS-ALPN-01 challenge");
                        return;
                    }
                    connection(stream, router).await;
                }
            }
        });
    }
}

async fn connection<S>(stream: S, router: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let result = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "web: connection ended with an error");
    }
}
