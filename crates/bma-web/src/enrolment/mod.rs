//! The enrolment: what a school manager sees, from the link of mail 1 to
//! the status page.
//!
//! | route | what | module |
//! |---|---|---|
//! | `GET /formulaire/{token}` | before login: the login link; after: the form or the status page | `link` |
//! | `POST /formulaire/{token}` | a submission (CSRF) | `submit` |
//! | `GET /formulaire/{token}/modifier` | the form again, to correct it | `link` |
//! | `GET /formulaire/{token}/confirmation` | after a submission | `link` |
//! | `POST /formulaire/{token}/verification` | a new verification link for the backup address (CSRF) | `verification` |
//! | `GET /formulaire/{token}/connexion` | starts the login | `login` |
//! | `GET /auth/callback` | the identity provider's answer | `login` |
//! | `POST /deconnexion` | logout (CSRF), then the provider's end of session | `login` |
//! | `GET /verification/{code}` | the link sent to the backup address: a button | `verification` |
//! | `POST /verification/{code}` | the button: verifies the address (the code is the credential) | `verification` |
//! | `GET /mot-de-passe/{token}` | the link of a new password (mail 2, a reset): a button | `password` |
//! | `POST /mot-de-passe/{token}` | the button: shows the password, once (the token is the credential) | `password` |
//!
//! A form posted without a valid session (it expired while the form was
//! open, or the person logged in again in another tab) is not refused: it
//! is kept in the session, server-side, and shown again once the person
//! is logged in, to be checked and sent. Nothing is stored as an answer
//! without the session's CSRF token.

mod link;
mod login;
pub mod pages;
mod password;
mod submit;
mod verification;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use bma_core::form::FormInput;
use bma_engine::emails::outbox_row;
use bma_mail::{TemplateKind, To};
use bma_store::{Enrollment, NewEmail, PortalSession};

use crate::Portal;
use crate::error::{Notice, WebError};

/// How long a login may take at the provider.
const LOGIN_MINUTES: i64 = 15;
/// How long a backup verification link works.
const VERIFICATION_DAYS: i64 = 14;
/// How long answers posted after their session expired wait for a new login.
const DRAFT_MINUTES: i64 = 120;

/// The enrolment's routes (the caller adds the state and the middleware).
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/formulaire/{token}", get(link::link).post(submit::submit))
        .route("/formulaire/{token}/modifier", get(link::edit))
        .route("/formulaire/{token}/confirmation", get(link::confirmation))
        .route("/formulaire/{token}/verification", post(verification::resend))
        .route("/formulaire/{token}/connexion", get(login::start))
        .route("/auth/callback", get(login::callback))
        .route("/deconnexion", post(login::logout))
        .route("/verification/{code}", get(verification::page).post(verification::verify))
        .route("/mot-de-passe/{token}", get(password::page).post(password::show))
}

/// The 404 page of a new password's link that cannot be one.
pub(crate) fn invalid_password_link(p: &Portal) -> Notice {
    Notice::new(
        StatusCode::NOT_FOUND,
        "Lien de mot de passe invalide",
        &["Ce lien n'est pas valide. Copiez-le en entier depuis l'email reçu."],
        &p.settings().campaign.contacts.after,
    )
}

/// The 404 page of a verification link that cannot be one.
pub(crate) fn invalid_verification_link(p: &Portal) -> Notice {
    Notice::new(
        StatusCode::NOT_FOUND,
        "Lien de vérification invalide",
        &["Ce lien de vérification n'est pas valide. Copiez-le en entier depuis l'email reçu."],
        p.general_contact(),
    )
}

/// Whether the person of the session gave this version of the form.
fn same_person(session: &PortalSession, e: &Enrollment) -> bool {
    session.identity.as_ref().is_some_and(|i| i.subject == e.identity.subject)
}

/// The form a person starts from: their name as the provider gave it.
fn prefilled(session: &PortalSession) -> FormInput {
    session.identity.as_ref().map_or_else(FormInput::default, |i| FormInput {
        family_name: i.family_name.clone(),
        given_name: i.given_name.clone(),
        ..FormInput::default()
    })
}

impl Portal {
    /// The email of `kind` about mailbox `mailbox_id` to `to`, for the outbox.
    fn email(
        &self,
        kind: TemplateKind,
        mailbox_id: i64,
        to: &str,
        key: String,
        context: &serde_json::Value,
    ) -> Result<NewEmail, WebError> {
        let out = self.inner.composer.compose(kind, To { address: to, mailbox_id: Some(mailbox_id) }, context)?;
        Ok(outbox_row(out, Some(mailbox_id), key, self.now()))
    }
}
