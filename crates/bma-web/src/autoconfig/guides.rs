//! The French guides of `bma serve`: `/guides` and one page per client
//! (Outlook, Thunderbird, Apple Mail on macOS, smartphone and tablet,
//! webmail), each with the settings' real values: what the client finds
//! by itself from the address, and what to type when it does not. Mail 2
//! and the status page of a migrated mailbox link `/guides`.
//!
//! The guides are for after the migration: their footer names the
//! contact of a migrated mailbox. Without autoconfiguration settings they
//! are still served and say that the values are not published yet.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use super::{AutoconfigSettings, Security, settings};
use crate::Portal;
use crate::error::Answer;
use crate::pages::Layout;
use crate::pages::filters;

/// The routes of the guides.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/guides", get(index))
        .route("/guides/outlook", get(outlook))
        .route("/guides/thunderbird", get(thunderbird))
        .route("/guides/apple-mail", get(apple_mail))
        .route("/guides/smartphone", get(smartphone))
        .route("/guides/webmail", get(webmail))
}

/// A server as the guides show it.
#[derive(Debug, Clone)]
pub struct ServerView {
    /// Its name.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `SSL/TLS` or `STARTTLS`.
    pub security: &'static str,
    /// Whether it is TLS from the first byte.
    pub implicit: bool,
}

/// The values every guide shows.
#[derive(Debug, Clone)]
pub struct Values {
    /// The BMA domain (`adm.cfwb.be`).
    pub domain: String,
    /// An address of it as the guides write it (`ecXXXXXX@adm.cfwb.be`).
    pub example: String,
    /// Where mail is read.
    pub imap: ServerView,
    /// Where mail is sent.
    pub smtp: ServerView,
    /// The webmail.
    pub webmail: Option<String>,
}

impl Values {
    fn of(s: &AutoconfigSettings) -> Values {
        let view = |server: &super::Server| ServerView {
            host: server.host.clone(),
            port: server.port,
            security: server.security.label_fr(),
            implicit: server.security == Security::Tls,
        };
        let domain = s.domains.first().cloned().unwrap_or_default();
        Values {
            example: format!("ecXXXXXX@{domain}"),
            domain,
            imap: view(&s.imap),
            smtp: view(&s.submission),
            webmail: s.webmail_url.clone(),
        }
    }
}

macro_rules! guide {
    ($name:ident, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Template)]
        #[template(path = $path)]
        pub struct $name {
            /// Layout.
            pub layout: Layout,
            /// The values, when configured.
            pub values: Option<Values>,
        }
    };
}

guide!(IndexPage, "guides/index.html", "`/guides`: which guide for which client.");
guide!(OutlookPage, "guides/outlook.html", "Outlook (Windows, macOS, the new Outlook).");
guide!(ThunderbirdPage, "guides/thunderbird.html", "Thunderbird.");
guide!(AppleMailPage, "guides/apple-mail.html", "Apple Mail on macOS, with the profile to download.");
guide!(SmartphonePage, "guides/smartphone.html", "iPhone, iPad and Android.");
guide!(WebmailPage, "guides/webmail.html", "The webmail.");

fn parts(p: &Portal, title: &str) -> (Layout, Option<Values>) {
    let layout = Layout {
        title: title.to_owned(),
        who: None,
        contact: p.settings().campaign.contacts.after.clone(),
        error: false,
    };
    (layout, settings(p).map(Values::of))
}

async fn index(State(p): State<Portal>) -> Answer {
    let (layout, values) = parts(&p, "Configurer votre messagerie");
    Ok(Html(IndexPage { layout, values }.render()?).into_response())
}

async fn outlook(State(p): State<Portal>) -> Answer {
    let (layout, values) = parts(&p, "Configurer Outlook");
    Ok(Html(OutlookPage { layout, values }.render()?).into_response())
}

async fn thunderbird(State(p): State<Portal>) -> Answer {
    let (layout, values) = parts(&p, "Configurer Thunderbird");
    Ok(Html(ThunderbirdPage { layout, values }.render()?).into_response())
}

async fn apple_mail(State(p): State<Portal>) -> Answer {
    let (layout, values) = parts(&p, "Configurer Apple Mail sur Mac");
    Ok(Html(AppleMailPage { layout, values }.render()?).into_response())
}

async fn smartphone(State(p): State<Portal>) -> Answer {
    let (layout, values) = parts(&p, "Configurer un smartphone ou une tablette");
    Ok(Html(SmartphonePage { layout, values }.render()?).into_response())
}

async fn webmail(State(p): State<Portal>) -> Answer {
    let (layout, values) = parts(&p, "Lire vos emails dans le navigateur (webmail)");
    Ok(Html(WebmailPage { layout, values }.render()?).into_response())
}
