//! `bma-portal`: the enrolment portal, the page every school manager sees.
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
//!   else (403 otherwise);
//! - a submission is one store transaction (form version, state change,
//!   confirmation email and its event).

pub mod display;
pub mod form;
pub mod oidc;
pub mod pages;
mod routes;
pub mod security;
pub mod session;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use bma_core::Clock;
use bma_mail::Templates;
use bma_store::Store;

pub use oidc::{AuthError, IdentityProvider, LoginStart, Oidc};
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
    routes::router(portal)
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    portal: Portal,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(portal).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
