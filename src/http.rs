//! The HTTP accept loop: the API router behind hyper with what `axum::serve` leaves
//! out — a header-read deadline (which also bounds an idle keep-alive connection), a
//! request-body deadline, a cap on open connections, and a bounded drain on shutdown.
//!
//! Without them one client holding many half-sent requests (slowloris) keeps sockets,
//! memory and file descriptors for as long as it likes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Time a connection has to send a request's headers, counted from when the server
    /// waits for them: a new connection, or an idle keep-alive one.
    pub header_read_timeout: Duration,
    /// Time a request has to send its whole body.
    pub body_read_timeout: Duration,
    /// Connections served at once; past it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a shutdown waits for open connections (log follows and WebSockets
    /// never end by themselves) before it closes them.
    pub drain_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` fires, then drains open connections
/// for at most `limits.drain_timeout`. With `tls`, each connection first completes a
/// TLS handshake, within the header-read deadline.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_read_timeout,
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(limits.header_read_timeout);

    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        metrics::gauge!("longin_http_connections", "scheme" => scheme)
            .set(connections(&permits, limits));
        let (stream, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                req
            });
        let service = TowerToHyperService::new(service);
        let permits_left = permits.clone();
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    watcher.watch(connection).await
                }
                Some(acceptor) => {
                    // A client that never finishes its handshake holds a slot no
                    // longer than one that never sends its headers.
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            let connection = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .into_owned();
                            watcher.watch(connection).await
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%remote, error = %err, "TLS handshake failed");
                            metrics::counter!("longin_tls_handshake_failures_total").increment(1);
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "TLS handshake timed out");
                            metrics::counter!("longin_tls_handshake_failures_total").increment(1);
                            Ok(())
                        }
                    }
                }
            };
            if let Err(err) = served {
                tracing::debug!(%remote, error = %err, "connection ended with an error");
            }
            drop(permit);
            metrics::gauge!("longin_http_connections", "scheme" => scheme)
                .set(connections(&permits_left, limits));
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!(scheme, "all connections drained"),
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(scheme, timeout = ?limits.drain_timeout, "connections still open after the drain timeout; closing them");
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn connections(permits: &Semaphore, limits: HttpLimits) -> f64 {
    limits
        .max_connections
        .max(1)
        .saturating_sub(permits.available_permits()) as f64
}
