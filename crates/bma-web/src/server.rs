//! The HTTP server: hyper's HTTP/1.1 connections run by hand around the
//! router, so that no client holds the server.
//!
//! Rules: a request's head must arrive within [`ServerLimits::header_read`]
//! (idle keep-alive connections close after it too), a whole request
//! within [`ServerLimits::request`] (408), and at most
//! [`ServerLimits::max_connections`] are served at once (a semaphore
//! before `accept`); on shutdown, connections in flight get 10 s.

use std::sync::Arc;
use std::time::Duration;

use crate::Portal;

/// What one client may hold of the server: the defences against slow
/// clients (slowloris) and floods of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time to send a request's head (request line and headers), counted
    /// from the first byte awaited: also how long an idle keep-alive
    /// connection stays open. The connection is closed after it.
    pub header_read: Duration,
    /// Time for a whole request once its head is in: reading the body and
    /// answering (408 after it).
    pub request: Duration,
    /// Connections served at once; the next ones wait in the listen queue.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits { header_read: Duration::from_secs(10), request: Duration::from_secs(30), max_connections: 512 }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, with the default
/// [`ServerLimits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    portal: Portal,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, portal, ServerLimits::default(), shutdown).await
}

/// Serves `app` on `listener` with these limits until `shutdown`
/// completes; then stops accepting and lets the connections in flight
/// finish (10 s at most).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    portal: Portal,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::Service as _;

    let router = crate::router(portal, limits.request);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let mut router = router.clone();
            async move { router.call(req.map(axum::body::Body::new)).await }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after 10 s: closing them");
    }
    Ok(())
}
