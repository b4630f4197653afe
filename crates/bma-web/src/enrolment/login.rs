//! Login and logout with the identity provider (Cerbère EDU).
//!
//! Rules: a session is created when a login starts (its row holds the
//! login in progress) and replaced by a new id when it succeeds (no
//! fixation); the callback's state is checked by the provider before
//! anything else, and the login in progress is taken only once the answer
//! is its own; the form link waits in a short-lived cookie, never in the
//! store in clear; logout ends the provider's session too (shared PCs).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use bma_core::TokenHash;
use bma_store::PortalMailbox;
use time::Duration;

use super::LOGIN_MINUTES;
use super::pages::Visit;
use crate::Portal;
use crate::error::{Answer, Notice};
use crate::extract::{CsrfForm, CurrentSession, FormLink, LiveSession, pairs_of};
use crate::oidc::{Login, LoginStart, log_safe};
use crate::session::{cookie, random_token};

/// A login started at the provider for mailbox `m`, or the 503 page if it
/// does not answer.
pub(super) async fn start_at_provider(p: &Portal, m: &PortalMailbox) -> Result<Option<LoginStart>, Notice> {
    let Some(idp) = p.inner.idp.clone() else {
        return Ok(None);
    };
    match idp.start().await {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            tracing::warn!(error = %log_safe(&e.to_string()), "login cannot start");
            Err(Notice::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Connexion momentanément indisponible",
                &["Le service de connexion Cerbère EDU ne répond pas. Réessayez dans quelques minutes."],
                p.contact_of(m),
            ))
        }
    }
}

/// `GET /formulaire/{token}/connexion`: starts the login.
pub(super) async fn start(State(p): State<Portal>, FormLink { token, mailbox: m }: FormLink) -> Answer {
    let start = match start_at_provider(&p, &m).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(Visit { portal: &p, mailbox: &m, token: &token }.login_page()?),
        Err(unavailable) => return Ok(unavailable.render()?),
    };
    let id = random_token();
    let hash = TokenHash::of(&id);
    let now = p.now();
    let store = p.store();
    store.create_session(&hash, &random_token(), now + Duration::minutes(LOGIN_MINUTES), now).await?;
    store.set_login_pending(&hash, &start.pending).await?;
    let c = p.inner.cookies;
    let mut res = Redirect::to(&start.redirect_to).into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, c.set(c.session_name(), &id, LOGIN_MINUTES * 60));
    h.append(header::SET_COOKIE, c.set(c.return_name(), &token, LOGIN_MINUTES * 60));
    Ok(res)
}

/// The 400 page of a login that did not succeed.
fn failed(p: &Portal) -> Answer {
    Ok(Notice::new(
        StatusCode::BAD_REQUEST,
        "La connexion n'a pas abouti",
        &[
            "La connexion avec Cerbère EDU n'a pas pu être vérifiée, ou elle a pris trop de temps.",
            "Rouvrez le lien reçu par email et reconnectez-vous.",
        ],
        p.general_contact(),
    )
    .render()?)
}

/// `GET /auth/callback`: the identity provider's answer.
pub(super) async fn callback(
    State(p): State<Portal>,
    headers: HeaderMap,
    CurrentSession(session): CurrentSession,
    RawQuery(query): RawQuery,
) -> Answer {
    let query = pairs_of(query.unwrap_or_default().as_bytes());
    let Some(LiveSession { hash, session }) = session else {
        return failed(&p);
    };
    let Some(pending) = session.login_pending else {
        return failed(&p);
    };
    let Some(idp) = p.inner.idp.clone() else {
        return failed(&p);
    };
    // The provider checks the state before anything else in the answer: a
    // forged callback (another state) neither logs in nor spends the login
    // in progress, which is taken only once the answer is its own.
    let Login { identity, id_token, .. } = match idp.finish(&pending, &query).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %log_safe(&e.to_string()), "login failed");
            return failed(&p);
        }
    };
    let store = p.store();
    if store.take_login_pending(&hash).await?.as_deref() != Some(pending.as_str()) {
        // Another callback of this login won the race.
        return failed(&p);
    }
    let new_id = random_token();
    let new_hash = TokenHash::of(&new_id);
    let now = p.now();
    let minutes = p.settings().session_minutes;
    let expires = now + Duration::minutes(minutes);
    store.login_session(Some(&hash), &new_hash, &random_token(), &identity, expires, now).await?;
    if let Some(t) = id_token {
        store.set_session_id_token(&new_hash, &t).await?;
    }
    tracing::info!("login succeeded");
    let c = p.inner.cookies;
    let back = cookie(&headers, c.return_name())
        .filter(|t| bma_core::token::well_formed(t))
        .map_or_else(|| "/".to_owned(), |t| format!("/formulaire/{t}"));
    let mut res = Redirect::to(&back).into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, c.set(c.session_name(), &new_id, minutes * 60));
    h.append(header::SET_COOKIE, c.clear(c.return_name()));
    Ok(res)
}

/// `POST /deconnexion`: logout, then the provider's end of session.
pub(super) async fn logout(State(p): State<Portal>, CsrfForm { session, .. }: CsrfForm) -> Answer {
    let store = p.store();
    let id_token = store.session_id_token(&session.hash).await?;
    store.delete_session(&session.hash).await?;
    let c = p.inner.cookies;
    // The Cerbère EDU session ends too (RP-initiated logout): on a shared
    // PC the next person must log in with their own identity.
    let end = match (p.inner.idp.clone(), id_token) {
        (Some(idp), Some(t)) => idp.logout_url(&t).await,
        _ => None,
    };
    let mut res = match end {
        Some(url) => Redirect::to(&url).into_response(),
        None => Notice::new(
            StatusCode::OK,
            "Vous êtes déconnecté·e",
            &[
                "Votre session sur ce portail est fermée.",
                "Sur un ordinateur partagé, fermez aussi le navigateur pour terminer votre session Cerbère EDU.",
            ],
            p.general_contact(),
        )
        .render()?,
    };
    res.headers_mut().append(header::SET_COOKIE, c.clear(c.session_name()));
    Ok(res)
}
