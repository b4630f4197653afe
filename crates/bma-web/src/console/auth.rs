//! Staff login and logout with the identity provider, and the extractors
//! every other console route starts with.
//!
//! Rules: a staff session lives in its own table and cookie
//! (`__Host-bma_console`), never a manager's; it is created when a login
//! starts and replaced under a new id when it succeeds (no fixation); the
//! role is decided once, at login, from the provider's claim and the
//! configured lists (`bma_core::staff::role_of`): nobody without one gets
//! a session; [`Staff`] answers the login page to a request without a
//! live staff session; [`StaffForm`] checks a POST's CSRF token before
//! anything else.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bma_core::TokenHash;
use bma_core::staff::{Role, StaffAction, allows, role_of};
use bma_store::{StaffIdentity, StaffSession};
use time::Duration;

use super::LOGIN_MINUTES;
use super::pages::{self, ConsoleMessage};
use crate::Portal;
use crate::error::{Answer, WebError};
use crate::extract::pairs_of;
use crate::oidc::{Login, log_safe};
use crate::session::{constant_time_eq, cookie, random_token};

/// A member of staff logged in, from the request's console session.
#[derive(Debug, Clone)]
pub(crate) struct Staff {
    /// The hash of the session's id.
    pub hash: TokenHash,
    /// The session's CSRF token.
    pub csrf: String,
    /// Who, with their role.
    pub who: StaffIdentity,
}

impl Staff {
    /// The actor of what they do.
    pub fn actor(&self) -> bma_core::Actor {
        let login = if self.who.email.is_empty() { &self.who.subject } else { &self.who.email };
        bma_core::Actor::Operator(format!("console:{login}"))
    }

    /// Their role.
    pub fn role(&self) -> Role {
        self.who.role
    }

    /// Nothing when their role allows `action`, else the 403 page.
    pub fn may(&self, p: &Portal, action: StaffAction) -> Result<(), Response> {
        if allows(self.who.role, action) {
            return Ok(());
        }
        tracing::warn!(action = action.as_str(), role = self.who.role.as_str(), "console action refused");
        let needed = action.least_role().label_fr();
        let text = format!(
            "« {} » est réservé au rôle {needed} ou supérieur. Votre rôle : {}.",
            action.label_fr(),
            self.who.role.label_fr()
        );
        Err(ConsoleMessage::page(p, Some(self), StatusCode::FORBIDDEN, "Action non autorisée", vec![text]))
    }
}

/// The staff session of `headers`, if its cookie names a live one.
async fn session_of(p: &Portal, headers: &HeaderMap) -> Result<Option<(TokenHash, StaffSession)>, WebError> {
    let Some(hash) = cookie(headers, p.inner.cookies.console_name())
        .filter(|id| bma_core::token::well_formed(id))
        .map(TokenHash::of)
    else {
        return Ok(None);
    };
    Ok(p.store().staff_session(&hash, p.now()).await?.map(|s| (hash, s)))
}

/// 404 when the console is not served.
fn not_served(p: &Portal) -> Response {
    crate::site::not_found_page(p)
}

impl FromRequestParts<Portal> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, p: &Portal) -> Result<Staff, Response> {
        if p.console().is_none() {
            return Err(not_served(p));
        }
        match session_of(p, &parts.headers).await {
            Ok(Some((hash, StaffSession { csrf, staff: Some(who), .. }))) => Ok(Staff { hash, csrf, who }),
            Ok(_) => Err(pages::login_page(p, StatusCode::UNAUTHORIZED)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A POSTed console form whose `csrf` field matches its staff session.
#[derive(Debug, Clone)]
pub(crate) struct StaffForm {
    /// Who posted it.
    pub staff: Staff,
    /// The fields, decoded.
    pub pairs: Vec<(String, String)>,
}

impl StaffForm {
    /// The field `name`, trimmed (empty when absent).
    pub fn field(&self, name: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }
}

impl FromRequest<Portal> for StaffForm {
    type Rejection = Response;

    async fn from_request(req: Request, p: &Portal) -> Result<StaffForm, Response> {
        let (mut parts, body) = req.into_parts();
        let staff = Staff::from_request_parts(&mut parts, p).await?;
        let body =
            Bytes::from_request(Request::from_parts(parts, body), p).await.map_err(IntoResponse::into_response)?;
        let pairs = pairs_of(&body);
        let sent = pairs.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
        if !constant_time_eq(sent.as_bytes(), staff.csrf.as_bytes()) {
            tracing::warn!("console POST without its session's CSRF token");
            return Err(ConsoleMessage::page(
                p,
                Some(&staff),
                StatusCode::FORBIDDEN,
                "Demande refusée",
                vec!["Cette demande n'a pas pu être vérifiée. Rechargez la page, puis recommencez.".to_owned()],
            ));
        }
        Ok(StaffForm { staff, pairs })
    }
}

/// `GET /console/connexion`: starts a staff login at the provider.
pub(crate) async fn start(State(p): State<Portal>) -> Answer {
    let Some(console) = p.console() else {
        return Ok(not_served(&p));
    };
    let start = match console.idp.start().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %log_safe(&e.to_string()), "console login cannot start");
            return Ok(ConsoleMessage::page(
                &p,
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "Connexion momentanément indisponible",
                vec!["Le service de connexion ne répond pas. Réessayez dans quelques minutes.".to_owned()],
            ));
        }
    };
    let id = random_token();
    let now = p.now();
    p.store()
        .create_staff_session(
            &TokenHash::of(&id),
            &random_token(),
            &start.pending,
            now + Duration::minutes(LOGIN_MINUTES),
            now,
        )
        .await?;
    let c = p.inner.cookies;
    let mut res = Redirect::to(&start.redirect_to).into_response();
    res.headers_mut().append(header::SET_COOKIE, c.set(c.console_name(), &id, LOGIN_MINUTES * 60));
    Ok(res)
}

/// The 400 page of a login that did not succeed.
fn failed(p: &Portal) -> Response {
    ConsoleMessage::page(
        p,
        None,
        StatusCode::BAD_REQUEST,
        "La connexion n'a pas abouti",
        vec!["La connexion n'a pas pu être vérifiée, ou elle a pris trop de temps. Reconnectez-vous.".to_owned()],
    )
}

/// `GET /console/auth/callback`: the provider's answer.
pub(crate) async fn callback(State(p): State<Portal>, headers: HeaderMap, RawQuery(query): RawQuery) -> Answer {
    let Some(console) = p.console() else {
        return Ok(not_served(&p));
    };
    let query = pairs_of(query.unwrap_or_default().as_bytes());
    let Some((hash, session)) = session_of(&p, &headers).await? else {
        return Ok(failed(&p));
    };
    let Some(pending) = session.login_pending else {
        return Ok(failed(&p));
    };
    let Login { identity, id_token, roles } = match console.idp.finish(&pending, &query).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %log_safe(&e.to_string()), "console login failed");
            return Ok(failed(&p));
        }
    };
    let store = p.store();
    if store.take_staff_login_pending(&hash).await?.as_deref() != Some(pending.as_str()) {
        return Ok(failed(&p));
    }
    let Some(role) = role_of(&identity.subject, &identity.email, &roles, &console.settings.roles) else {
        tracing::warn!("console login refused: no role");
        store.end_staff_session(&hash).await?;
        let c = p.inner.cookies;
        let mut res = ConsoleMessage::page(
            &p,
            None,
            StatusCode::FORBIDDEN,
            "Accès réservé",
            vec![format!(
                "Vous êtes connecté·e comme {}, mais ce compte n'a aucun rôle dans la console (agent, opérateur ou \
                 administrateur). Demandez l'accès à l'équipe migration.",
                if identity.name.is_empty() { &identity.subject } else { &identity.name }
            )],
        );
        res.headers_mut().append(header::SET_COOKIE, c.clear(c.console_name()));
        return Ok(res);
    };
    let who = StaffIdentity { subject: identity.subject, name: identity.name, email: identity.email, role };
    let new_id = random_token();
    let now = p.now();
    let minutes = console.settings.session_minutes.max(1);
    let new_hash = TokenHash::of(&new_id);
    let csrf = random_token();
    let login = bma_store::StaffLogin {
        old_id_hash: &hash,
        new_id_hash: &new_hash,
        csrf: &csrf,
        staff: &who,
        id_token: id_token.as_deref(),
        expires_at: now + Duration::minutes(minutes),
    };
    store.login_staff_session(&login, now).await?;
    tracing::info!(role = role.as_str(), "console login succeeded");
    let c = p.inner.cookies;
    let mut res = Redirect::to("/console").into_response();
    res.headers_mut().append(header::SET_COOKIE, c.set(c.console_name(), &new_id, minutes * 60));
    Ok(res)
}

/// `POST /console/deconnexion`: logout, then the provider's end of session.
pub(crate) async fn logout(State(p): State<Portal>, form: StaffForm) -> Answer {
    let id_token = p.store().end_staff_session(&form.staff.hash).await?;
    let end = match (p.console(), id_token) {
        (Some(c), Some(t)) => c.idp.logout_url(&t).await,
        _ => None,
    };
    let c = p.inner.cookies;
    let mut res = match end {
        Some(url) => Redirect::to(&url).into_response(),
        None => ConsoleMessage::page(
            &p,
            None,
            StatusCode::OK,
            "Vous êtes déconnecté·e",
            vec!["Votre session de la console est fermée.".to_owned()],
        ),
    };
    res.headers_mut().append(header::SET_COOKIE, c.clear(c.console_name()));
    Ok(res)
}
