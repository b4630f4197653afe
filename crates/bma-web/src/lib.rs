//! `bma-web`: the HTTP side of bma, the only crate that speaks HTTP to
//! people. Two audiences: the enrolment portal every school manager sees
//! ([`enrolment`]) and the helpdesk console the staff keep open all day
//! ([`console`]); mail clients that set themselves up and the guides
//! ([`autoconfig`]) are a third. Each
//! is a module with its routes that the router of [`app`] composes,
//! sharing what is here:
//!
//! - [`portal`]: the state (store, settings, identity provider, email
//!   composer, clock, limiters); [`settings`]: what it is configured with;
//! - [`extract`]: the extractors (a form link well formed → hashed →
//!   rate-limited → its mailbox; the session; a CSRF-checked form);
//! - [`error`]: one [`WebError`] (the 500 page) and one [`Rejection`]
//!   (refusal pages), both `IntoResponse`, so handlers use `?`;
//! - [`session`] (cookies, ids), [`oidc`] (Cerbère EDU login),
//!   [`security`] (headers, rate limits, request log), [`pages`] (the
//!   layout and the pages of no audience), [`site`] (home, privacy,
//!   accessibility, static files), [`display`] (French display filters),
//!   [`server`] (hyper's connections with their limits);
//! - [`metrics`]: `/metrics` for Prometheus, the campaign's figures read
//!   from the store, to allowed addresses or a bearer token only.
//!
//! The link in mail 1 (`/formulaire/{token}`) opens the portal for one
//! mailbox; login with Cerbère EDU says who acts; the form (its rules are
//! `bma_core::form`) gives the contact details, the backup address
//! (verified by a link sent to it) and whether the BMA's password is known;
//! the same link then shows where the migration stands and whom to call.
//! Pages are server-rendered French HTML; nothing needs JavaScript.
//!
//! Invariants:
//! - no SQL (the store's modules), emails leave through its outbox only,
//!   composed by `bma_mail::Composer`;
//! - tokens, codes and session ids are stored hashed and never logged; the
//!   request log names route patterns, not paths ([`security`]);
//! - every POST carries the session's CSRF token, checked before anything
//!   else (403 otherwise; a form posted without it is kept for after a new
//!   login, never stored; the verification button's POST has its code as
//!   credential);
//! - a submission is one store transaction (form version, state change,
//!   confirmation email and its event);
//! - no client holds the server ([`ServerLimits`], [`serve_with`]).

pub mod autoconfig;
pub mod console;
pub mod display;
pub mod enrolment;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod oidc;
pub mod pages;
pub mod portal;
pub mod security;
pub mod server;
pub mod session;
pub mod settings;
pub mod site;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;

pub use autoconfig::AutoconfigSettings;
pub use error::{Rejection, WebError};
pub use metrics::MetricsSettings;
pub use oidc::{AuthError, IdentityProvider, Login, LoginStart, OAuthError, Oidc};
pub use portal::Portal;
pub use server::{ServerLimits, serve, serve_with};
pub use settings::{ConsoleSettings, OidcSettings, PortalSettings};

/// Largest request body accepted (the form is well under 2 KiB).
pub const BODY_LIMIT: usize = 16 * 1024;

/// The site's routes with their middleware: the one router that
/// `bma serve` and the tests use.
pub fn app(portal: Portal) -> Router {
    router(portal, ServerLimits::default().request)
}

/// Every audience's routes and the site's, composed; a request (body and
/// answer) gets `request_timeout`. The pages are rate-limited per client
/// address, the probe and the static files are not.
pub(crate) fn router(portal: Portal, request_timeout: std::time::Duration) -> Router {
    Router::new()
        .merge(site::pages())
        .merge(enrolment::routes())
        .merge(console::routes())
        .merge(metrics::routes())
        .merge(autoconfig::routes())
        .fallback(autoconfig::fallback)
        .layer(middleware::from_fn_with_state(portal.clone(), security::limit_per_ip))
        .merge(site::assets())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(request_timeout, security::whole_request))
        .layer(middleware::from_fn_with_state(portal.clone(), security::headers))
        .layer(middleware::from_fn(security::log))
        .with_state(portal)
}
