//! `bma-web`: the HTTP side of bma; today the enrolment portal, the page every school manager sees.
//!
//! The link in mail 1 (`/formulaire/{token}`) opens the portal for one
//! mailbox; login with Cerbère EDU (OpenID Connect, [`oidc`]) says who acts;
//! the form ([`form`]) gives the contact details, the backup address
//! (verified by a link sent to it) and whether the BMA's password is known;
//! the same link then shows where the migration stands and whom to call.
//! Pages are server-rendered French HTML ([`pages`]); nothing needs
//! JavaScript.
//!
//! Invariants:
//! - the only crate of the portal that knows HTTP; SQL stays in `bma-store`,
//!   emails leave through its outbox only;
//! - tokens, codes and session ids are stored hashed and never logged; the
//!   request log names route patterns, not paths ([`security`]);
//! - every POST carries the session's CSRF token, checked before anything
//!   else (403 otherwise; a form posted without it is kept for after a new
//!   login, never stored; the verification button's POST has its code as
//!   credential);
//! - a submission is one store transaction (form version, state change,
//!   confirmation email and its event);
//! - no client holds the server: a request's head must arrive within
//!   [`ServerLimits::header_read`] (idle connections close after it too),
//!   a whole request within [`ServerLimits::request`], and at most
//!   [`ServerLimits::max_connections`] are served at once ([`serve_with`]).

pub mod display;
pub mod form;
pub mod oidc;
pub mod pages;
mod routes;
pub mod security;
pub mod session;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bma_core::Clock;
use bma_mail::Templates;
use bma_store::Store;

pub use oidc::{AuthError, IdentityProvider, Login, LoginStart, OAuthError, Oidc};
pub use settings::{OidcSettings, PortalSettings};

/// Why the portal cannot start or answer.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The settings are not usable.
    #[error("portal settings: {0}")]
    Settings(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bma_store::StoreError),
    /// A page failed to render.
    #[error("page rendering: {0}")]
    Page(#[from] askama::Error),
    /// An email could not be rendered.
    #[error(transparent)]
    Template(#[from] bma_mail::TemplateError),
    /// An email could not be built.
    #[error(transparent)]
    Build(#[from] bma_mail::message::BuildError),
    /// The identity provider failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// The portal: its store, settings and collaborators, shared by handlers.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: PortalSettings,
    idp: Option<Arc<dyn IdentityProvider>>,
    templates: Templates,
    clock: Arc<dyn Clock>,
    ip_limiter: security::RateLimiter,
    link_limiter: security::RateLimiter,
    cookies: session::Cookies,
    csp: axum::http::HeaderValue,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").field("base_url", &self.inner.settings.base_url).finish_non_exhaustive()
    }
}

impl Portal {
    /// A portal; with `settings.oidc`, an OpenID Connect login (discovered
    /// on first use).
    pub fn new(
        store: Store,
        settings: PortalSettings,
        templates: Templates,
        clock: Arc<dyn Clock>,
    ) -> Result<Portal, PortalError> {
        let problems = settings.problems();
        if !problems.is_empty() {
            return Err(PortalError::Settings(problems.join("; ")));
        }
        let idp: Option<Arc<dyn IdentityProvider>> = match &settings.oidc {
            Some(o) => Some(Arc::new(Oidc::new(o.clone(), &format!("{}/auth/callback", settings.base_url))?)),
            None => None,
        };
        Ok(Portal::with_identity_provider(store, settings, templates, clock, idp))
    }

    /// A portal with a given identity provider (or none).
    pub fn with_identity_provider(
        store: Store,
        settings: PortalSettings,
        templates: Templates,
        clock: Arc<dyn Clock>,
        idp: Option<Arc<dyn IdentityProvider>>,
    ) -> Portal {
        let cookies = session::Cookies { secure: settings.secure_cookies() };
        let csp = security::csp_for(settings.oidc.as_ref().map(|o| o.issuer.as_str()));
        Portal {
            inner: Arc::new(Inner {
                ip_limiter: security::RateLimiter::per_minute(settings.rate_limit_per_ip),
                link_limiter: security::RateLimiter::per_minute(settings.rate_limit_per_link),
                store,
                settings,
                idp,
                templates,
                clock,
                cookies,
                csp,
            }),
        }
    }

    /// Whether login is possible (an identity provider is configured).
    pub fn login_available(&self) -> bool {
        self.inner.idp.is_some()
    }

    /// The settings.
    pub fn settings(&self) -> &PortalSettings {
        &self.inner.settings
    }
}

/// The portal's routes with their middleware: the one router that
/// `bma serve` and the tests use.
pub fn app(portal: Portal) -> Router {
    routes::router(portal, ServerLimits::default().request)
}

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

    let router = routes::router(portal, limits.request);
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
