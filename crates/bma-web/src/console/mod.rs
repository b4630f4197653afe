//! The helpdesk console (`/console`): the page the agents who take the
//! calls keep open all day, and the migration team's controls. Find the
//! caller ([`find`]), see where their mailbox stands and whom they should
//! have called ([`mailbox`]), act with a reason ([`actions`]), take any
//! list away as CSV or JSON ([`export`]); one person's personal data
//! handed over or erased by an administrator ([`privacy`]). Staff log in
//! with OpenID Connect through a client of their own ([`auth`]).
//!
//! Rules:
//! - every route but the login's needs a staff session ([`auth::Staff`]);
//!   a manager's session opens nothing here, and the reverse;
//! - every action is checked on the server against the staff member's
//!   role by `bma_core::staff::allows`, the only decision, before anything
//!   else it does; a refusal is a 403 page naming the role it needs;
//! - every POST carries the session's CSRF token, checked first
//!   ([`auth::StaffForm`]);
//! - every action has a reason, is recorded with the staff member as
//!   actor, and goes through the same operation as the CLI's
//!   (`bma_engine::operations`); a destructive one is confirmed on a
//!   second page first;
//! - opening a mailbox's page records who looked at it (GDPR);
//! - French, server-rendered, nothing needs JavaScript; the same headers
//!   and rate limits as the portal (the router's layers).

#[expect(clippy::result_large_err, reason = "a refusal is the page answered at once, never carried up a stack")]
pub(crate) mod actions;
#[expect(clippy::result_large_err, reason = "a refusal is the page answered at once, never carried up a stack")]
pub(crate) mod auth;
pub(crate) mod charts;
pub(crate) mod dashboard;
pub(crate) mod export;
pub(crate) mod find;
pub(crate) mod import;
pub(crate) mod mailbox;
pub(crate) mod pages;
#[expect(clippy::result_large_err, reason = "a refusal is the page answered at once, never carried up a stack")]
pub(crate) mod privacy;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::Portal;
use crate::oidc::IdentityProvider;
use crate::settings::ConsoleSettings;

/// Minutes a login at the provider may take.
const LOGIN_MINUTES: i64 = 10;

/// The console's part of the portal's state.
pub struct Console {
    pub(crate) settings: ConsoleSettings,
    pub(crate) idp: Arc<dyn IdentityProvider>,
    pub(crate) engine: Option<Arc<bma_engine::Engine>>,
    pub(crate) index: find::Index,
    pub(crate) days: dashboard::DayCache,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").field("client_id", &self.settings.oidc.client_id).finish_non_exhaustive()
    }
}

impl Console {
    /// A console with these settings, logging staff in with `idp`.
    pub(crate) fn new(
        settings: ConsoleSettings,
        idp: Arc<dyn IdentityProvider>,
        engine: Option<Arc<bma_engine::Engine>>,
    ) -> Console {
        Console { settings, idp, engine, index: find::Index::default(), days: dashboard::DayCache::default() }
    }
}

/// The console's routes (404 when the console is not configured).
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/console", get(find::home))
        .route("/console/connexion", get(auth::start))
        .route("/console/auth/callback", get(auth::callback))
        .route("/console/deconnexion", post(auth::logout))
        .route("/console/boites/{address}", get(mailbox::page))
        .route("/console/boites/{address}/actions/{action}", post(actions::on_mailbox))
        .route("/console/campagne/{action}", post(actions::on_campaign))
        .route("/console/export/{file}", get(export::list))
        .route("/console/tableau-de-bord", get(dashboard::page))
        .route("/console/donnees-personnelles", get(privacy::show))
        .route("/console/donnees-personnelles/export.json", get(privacy::export))
        .route("/console/donnees-personnelles/effacer", post(privacy::erase))
        .merge(
            // The registry's file (and its confirmation, which carries it back) is larger than a form.
            Router::new()
                .route("/console/import", get(import::form).post(import::check))
                .route("/console/import/appliquer", post(import::apply))
                .layer(axum::extract::DefaultBodyLimit::max(import::MAX_FILE * 2)),
        )
}
