//! What a handler answers when it does not answer its page: one
//! [`WebError`] (something failed: the 500 page) and one [`Rejection`]
//! (a refusal page with its status: 403, 404, 410, 429, …), both
//! [`IntoResponse`], so handlers and extractors use `?`.
//!
//! Rules: a failure's log line names the kind of failure only (a message
//! may name a mailbox); every page here is French, with the contact of the
//! phase, and its title starts "Erreur : " when its status is 4xx or 5xx.

use askama::Template;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use bma_core::contact::Contact;
use bma_store::StoreError;

use crate::oidc::AuthError;
use crate::pages::{Layout, MessagePage};

/// Why the portal cannot start or answer.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The settings are not usable.
    #[error("portal settings: {0}")]
    Settings(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A page failed to render.
    #[error("page rendering: {0}")]
    Page(#[from] askama::Error),
    /// An email could not be composed.
    #[error(transparent)]
    Email(#[from] bma_mail::ComposeError),
    /// The identity provider failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        // The message may name a mailbox: log only what kind of failure it was.
        let kind = match &self {
            WebError::Store(StoreError::Db(e)) => format!("database: {e}"),
            WebError::Store(_) => "store".to_owned(),
            WebError::Page(e) => format!("page: {e}"),
            WebError::Email(_) => "email".to_owned(),
            WebError::Auth(e) => format!("identity provider: {e}"),
            WebError::Settings(e) => format!("settings: {e}"),
        };
        tracing::error!(kind, "request failed");
        let body = "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
                    <title>Erreur\u{a0}: une erreur est survenue — Migration des BMA</title></head>\
                    <body><main><h1>Une erreur est survenue</h1><p>Le portail n'a pas pu traiter votre demande. \
                    Réessayez dans quelques minutes\u{a0}; si le problème persiste, contactez l'équipe migration du \
                    SGNE\u{a0}: migrationbma@cfwb.be, +32 (0)2 413.3090.</p></main></body></html>";
        (StatusCode::INTERNAL_SERVER_ERROR, Html(body)).into_response()
    }
}

/// A page of a heading and a few paragraphs, answered with its status:
/// results, refusals and explanations.
#[derive(Debug, Clone)]
pub struct Notice {
    status: StatusCode,
    heading: String,
    paragraphs: Vec<String>,
    contact: Contact,
    retry_after: Option<u64>,
}

impl Notice {
    /// A notice with `status`, its heading as title.
    pub fn new(status: StatusCode, heading: &str, paragraphs: &[&str], contact: &Contact) -> Notice {
        Notice {
            status,
            heading: heading.to_owned(),
            paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
            contact: contact.clone(),
            retry_after: None,
        }
    }

    /// The same notice with a `Retry-After` of `seconds`.
    pub fn retry_after(self, seconds: u64) -> Notice {
        Notice { retry_after: Some(seconds), ..self }
    }

    /// The page.
    pub fn render(self) -> Result<Response, WebError> {
        let error = self.status.is_client_error() || self.status.is_server_error();
        let page = MessagePage {
            layout: Layout { title: self.heading.clone(), who: None, contact: self.contact, error },
            heading: self.heading,
            paragraphs: self.paragraphs,
            link: None,
        };
        let mut res = (self.status, Html(page.render()?)).into_response();
        if let Some(wait) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        Ok(res)
    }
}

impl IntoResponse for Notice {
    fn into_response(self) -> Response {
        self.render().unwrap_or_else(IntoResponse::into_response)
    }
}

/// Why a request does not get the page it asked for.
#[derive(Debug)]
pub enum Rejection {
    /// A refusal page (403, 404, 410, 429, …).
    Refused(Box<Notice>),
    /// The body could not be read (413 over the limit, …): axum's answer.
    Body(BytesRejection),
    /// The path could not be decoded: axum's answer.
    Path(PathRejection),
    /// Something failed: the 500 page.
    Failed(WebError),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::Refused(notice) => notice.into_response(),
            Rejection::Body(r) => r.into_response(),
            Rejection::Path(r) => r.into_response(),
            Rejection::Failed(e) => e.into_response(),
        }
    }
}

impl From<Notice> for Rejection {
    fn from(notice: Notice) -> Rejection {
        Rejection::Refused(Box::new(notice))
    }
}

impl From<WebError> for Rejection {
    fn from(e: WebError) -> Rejection {
        Rejection::Failed(e)
    }
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Rejection {
        Rejection::Failed(e.into())
    }
}

impl From<askama::Error> for Rejection {
    fn from(e: askama::Error) -> Rejection {
        Rejection::Failed(e.into())
    }
}

impl From<bma_mail::ComposeError> for Rejection {
    fn from(e: bma_mail::ComposeError) -> Rejection {
        Rejection::Failed(e.into())
    }
}

/// What a handler returns: its page, or why not.
pub type Answer = Result<Response, Rejection>;
