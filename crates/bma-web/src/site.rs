//! The pages and files of the site that belong to no audience: the home
//! page, the privacy notice, the accessibility statement, the 404 page, the
//! stylesheet and the icon, and the liveness probe.
//!
//! Rules: the pages go through the per-address rate limit like every
//! audience's routes; the probe and the static files do not (see
//! [`crate::app`]); only the static files may be cached.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use bma_core::contact::Contact;
use bma_core::settings::date_fr;

use crate::Portal;
use crate::error::{Answer, Notice};
use crate::pages::{AccessibilityPage, HomePage, Layout, PrivacyPage};

/// The pages (rate-limited with the audiences' routes).
pub(crate) fn pages() -> Router<Portal> {
    Router::new()
        .route("/", get(home))
        .route("/confidentialite", get(privacy))
        .route("/accessibilite", get(accessibility))
}

/// The probe and the static files (not rate-limited).
pub(crate) fn assets() -> Router<Portal> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/static/portal.css", get(stylesheet))
        .route("/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(|| async { Redirect::permanent("/static/favicon.svg") }))
}

fn layout(title: &str, contact: &Contact) -> Layout {
    Layout { title: title.to_owned(), who: None, contact: contact.clone(), error: false }
}

async fn home(State(p): State<Portal>) -> Answer {
    // The FAQ: whoever has no mail 1 by the invitation deadline calls the
    // SGNE migration team; before it, Enseignement.be answers about the BMA.
    let campaign = &p.settings().campaign;
    let deadline = campaign.campaign.invitation_deadline;
    let after_deadline = p.now().date() >= deadline;
    let contact = if after_deadline { &campaign.contacts.during } else { &campaign.contacts.before };
    let page = HomePage {
        layout: layout("Accueil", contact),
        no_mail_contact: contact.clone(),
        deadline: date_fr(deadline),
        after_deadline,
    };
    Ok(Html(page.render()?).into_response())
}

async fn privacy(State(p): State<Portal>) -> Answer {
    let s = p.settings();
    let page = PrivacyPage {
        layout: layout("Protection des données", p.general_contact()),
        privacy: s.privacy.clone(),
        campaign: s.campaign.campaign.name.clone(),
        campaign_end: date_fr(s.campaign.campaign.end),
    };
    Ok(Html(page.render()?).into_response())
}

async fn accessibility(State(p): State<Portal>) -> Answer {
    let page = AccessibilityPage {
        layout: layout("Accessibilité", p.general_contact()),
        report_to: p.general_contact().clone(),
    };
    Ok(Html(page.render()?).into_response())
}

/// The 404 page of any path no route knows.
pub(crate) async fn not_found(State(p): State<Portal>) -> Notice {
    not_found_notice(&p)
}

fn not_found_notice(p: &Portal) -> Notice {
    Notice::new(
        StatusCode::NOT_FOUND,
        "Page introuvable",
        &["Cette page n'existe pas. Le formulaire s'ouvre par le lien personnel reçu par email."],
        p.general_contact(),
    )
}

/// The 404 page, for a route that exists only when configured.
pub(crate) fn not_found_page(p: &Portal) -> Response {
    not_found_notice(p).into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../static/portal.css"),
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")],
        include_str!("../static/favicon.svg"),
    )
        .into_response()
}
