//! The extractors: the preambles the handlers used to write out, once.
//!
//! - [`FormLink`]: the `{token}` of the path, well formed → hashed
//!   ([`TokenHash::of`]) → counted by the per-link limiter → its mailbox →
//!   not past the campaign's end; else the 404, 429 or 410 page.
//! - [`FormView`]: the same link and, in one store query, the request's
//!   session, the last form version and its backup verification (the hot
//!   path: the page of a link).
//! - [`CurrentSession`]: the request's session, if its cookie names a live one.
//! - [`CsrfForm`]: a POSTed form whose `csrf` field matches its session's
//!   token, else the 403 page; [`PostedForm`] leaves that decision to the
//!   handler (a submission keeps answers posted without a valid session).
//! - [`VerificationCode`]: the `{code}` of a backup verification link,
//!   well formed → hashed → counted by the per-link limiter.
//!
//! Rules: only hashes reach the store and the limiters; a POST's CSRF token
//! is checked before anything else its handler does (a handler that also
//! needs the form link opens it after, with `FormLink::open`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use bma_core::TokenHash;
use bma_store::{PortalMailbox, PortalSession, PortalView};

use crate::Portal;
use crate::error::Rejection;
use crate::session::{constant_time_eq, cookie};

/// A live session of the request.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The hash of its id (its key in the store).
    pub hash: TokenHash,
    /// The session.
    pub session: PortalSession,
}

impl LiveSession {
    /// Whether a login succeeded in it.
    pub fn signed_in(&self) -> bool {
        self.session.identity.is_some()
    }
}

/// The hash of the request's session cookie, if it is well formed.
pub(crate) fn session_hash(portal: &Portal, headers: &HeaderMap) -> Option<TokenHash> {
    cookie(headers, portal.inner.cookies.session_name())
        .filter(|id| bma_core::token::well_formed(id))
        .map(TokenHash::of)
}

/// The request's session, if its cookie names a live one (logged in or not).
#[derive(Debug, Clone)]
pub struct CurrentSession(pub Option<LiveSession>);

impl CurrentSession {
    /// The session read from `headers`.
    pub(crate) async fn of(portal: &Portal, headers: &HeaderMap) -> Result<CurrentSession, Rejection> {
        let Some(hash) = session_hash(portal, headers) else {
            return Ok(CurrentSession(None));
        };
        let found = portal.store().session(&hash, portal.now()).await?;
        Ok(CurrentSession(found.map(|session| LiveSession { hash, session })))
    }

    /// The session if a login succeeded in it.
    pub fn signed_in(self) -> Option<LiveSession> {
        self.0.filter(LiveSession::signed_in)
    }
}

impl FromRequestParts<Portal> for CurrentSession {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<CurrentSession, Rejection> {
        CurrentSession::of(portal, &parts.headers).await
    }
}

/// The `{token}` of the path: well formed, hashed and counted; `None` for
/// a token that cannot be one (no store query, not counted).
fn link_hash(portal: &Portal, token: &str) -> Result<Option<TokenHash>, Rejection> {
    if !bma_core::token::well_formed(token) {
        return Ok(None);
    }
    let hash = TokenHash::of(token);
    match portal.inner.link_limiter.hit(hash.as_str()) {
        Ok(()) => Ok(Some(hash)),
        Err(wait) => Err(portal.too_many(wait).into()),
    }
}

/// The `{token}` of the request's path.
async fn path_token(parts: &mut Parts, portal: &Portal) -> Result<String, Rejection> {
    let Path(token) = Path::<String>::from_request_parts(parts, portal).await.map_err(Rejection::Path)?;
    Ok(token)
}

/// A form link and its mailbox.
#[derive(Debug, Clone)]
pub struct FormLink {
    /// The token, as in the path (to build the page's links).
    pub token: String,
    /// The mailbox.
    pub mailbox: PortalMailbox,
}

impl FormLink {
    /// The mailbox of `token`, or the page that says why not (429, 404, 410).
    pub(crate) async fn open(portal: &Portal, token: String) -> Result<FormLink, Rejection> {
        let found = match link_hash(portal, &token)? {
            Some(hash) => portal.store().portal_mailbox_by_token_hash(&hash).await?,
            None => None,
        };
        let Some(mailbox) = found else {
            return Err(portal.unknown_link().into());
        };
        if let Some(gone) = portal.expired(&mailbox) {
            return Err(gone.into());
        }
        Ok(FormLink { token, mailbox })
    }
}

impl FromRequestParts<Portal> for FormLink {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<FormLink, Rejection> {
        let token = path_token(parts, portal).await?;
        FormLink::open(portal, token).await
    }
}

/// The whole page of a form link: the mailbox, the request's session, the
/// last form version and its backup verification, in one store query.
#[derive(Debug, Clone)]
pub struct FormView {
    /// The token, as in the path.
    pub token: String,
    /// What the store holds for the page.
    pub view: PortalView,
}

impl FromRequestParts<Portal> for FormView {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<FormView, Rejection> {
        let token = path_token(parts, portal).await?;
        let key = link_hash(portal, &token)?;
        let session = session_hash(portal, &parts.headers);
        let store = portal.store();
        let found = match (&key, &session) {
            (None, _) => None,
            // Without a session cookie only the mailbox matters: the light query.
            (Some(key), None) => store.portal_mailbox_by_token_hash(key).await?.map(|mailbox| PortalView {
                mailbox,
                session: None,
                latest: None,
                backup: None,
                forwards_outside: false,
            }),
            (Some(key), Some(session)) => store.portal_view(key, Some(session), portal.now()).await?,
        };
        let Some(view) = found else {
            return Err(portal.unknown_link().into());
        };
        if let Some(gone) = portal.expired(&view.mailbox) {
            return Err(gone.into());
        }
        Ok(FormView { token, view })
    }
}

/// The decoded pairs of an `application/x-www-form-urlencoded` body or query.
pub(crate) fn pairs_of(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A POSTed form, with its session when its `csrf` field matches it.
#[derive(Debug, Clone)]
pub struct PostedForm {
    /// The fields, decoded.
    pub pairs: Vec<(String, String)>,
    /// The session whose CSRF token the form carries; `None` when the
    /// request has no live session or the token does not match.
    pub checked: Option<LiveSession>,
}

impl FromRequest<Portal> for PostedForm {
    type Rejection = Rejection;

    async fn from_request(req: Request, portal: &Portal) -> Result<PostedForm, Rejection> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, portal).await.map_err(Rejection::Body)?;
        let pairs = pairs_of(&body);
        let CurrentSession(session) = CurrentSession::of(portal, &headers).await?;
        let sent = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
        let checked = match (session, sent) {
            (Some(s), Some(sent)) if constant_time_eq(sent.as_bytes(), s.session.csrf.as_bytes()) => Some(s),
            _ => None,
        };
        Ok(PostedForm { pairs, checked })
    }
}

/// A POSTed form whose CSRF token matches its session; else the 403 page.
#[derive(Debug, Clone)]
pub struct CsrfForm {
    /// The session.
    pub session: LiveSession,
    /// The fields, decoded.
    pub pairs: Vec<(String, String)>,
}

impl FromRequest<Portal> for CsrfForm {
    type Rejection = Rejection;

    async fn from_request(req: Request, portal: &Portal) -> Result<CsrfForm, Rejection> {
        let PostedForm { pairs, checked } = PostedForm::from_request(req, portal).await?;
        match checked {
            Some(session) => Ok(CsrfForm { session, pairs }),
            None => Err(portal.forbidden().into()),
        }
    }
}

/// The `{token}` of a new password's link: well formed, hashed, counted
/// (the token itself too: it opens the sealed password).
#[derive(Debug, Clone)]
pub struct PasswordToken {
    /// The token.
    pub token: String,
    /// Its hash.
    pub hash: TokenHash,
}

impl FromRequestParts<Portal> for PasswordToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<PasswordToken, Rejection> {
        let token = path_token(parts, portal).await?;
        if !bma_core::token::well_formed(&token) {
            return Err(crate::enrolment::invalid_password_link(portal).into());
        }
        let hash = TokenHash::of(&token);
        match portal.inner.link_limiter.hit(hash.as_str()) {
            Ok(()) => Ok(PasswordToken { token, hash }),
            Err(wait) => Err(portal.too_many(wait).into()),
        }
    }
}

/// The `{code}` of a backup verification link: well formed, hashed, counted.
#[derive(Debug, Clone)]
pub struct VerificationCode {
    /// Its hash.
    pub hash: TokenHash,
}

impl FromRequestParts<Portal> for VerificationCode {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<VerificationCode, Rejection> {
        let code = path_token(parts, portal).await?;
        if !bma_core::token::well_formed(&code) {
            return Err(crate::enrolment::invalid_verification_link(portal).into());
        }
        let hash = TokenHash::of(&code);
        match portal.inner.link_limiter.hit(hash.as_str()) {
            Ok(()) => Ok(VerificationCode { hash }),
            Err(wait) => Err(portal.too_many(wait).into()),
        }
    }
}
