//! The link of a new password (sent with mail 2 to a manager who lost the
//! BMA's password, or by `bma mailbox reset-password`): a page with a
//! button, and the password shown once.
//!
//! Rules: a GET shows nothing (mail scanners fetch links); only the
//! button's POST opens the link, with the token as its credential (no
//! session: the link is read on the backup address, often elsewhere); the
//! store keeps the token's hash and the password sealed with the token's
//! key, and empties it as the link opens, so a second opening, an expired
//! link or one a newer password replaced shows nothing.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use bma_store::LinkOutcome;

use super::invalid_password_link;
use super::pages::PasswordPage;
use crate::Portal;
use crate::error::{Answer, Notice};
use crate::extract::PasswordToken;
use crate::pages::Layout;

fn layout(p: &Portal, title: &str) -> Layout {
    Layout { title: title.to_owned(), who: None, contact: p.settings().campaign.contacts.after.clone(), error: false }
}

/// `GET /mot-de-passe/{token}`: the button.
pub(super) async fn page(State(p): State<Portal>, Path(token): Path<String>) -> Answer {
    if !bma_core::token::well_formed(&token) {
        return Err(invalid_password_link(&p).into());
    }
    let page = PasswordPage { layout: layout(&p, "Afficher votre nouveau mot de passe"), token, shown: None };
    Ok(Html(page.render()?).into_response())
}

/// `POST /mot-de-passe/{token}`: the password, once.
pub(super) async fn show(State(p): State<Portal>, PasswordToken { token, hash }: PasswordToken) -> Answer {
    let contact = &p.settings().campaign.contacts.after;
    let gone = |heading: &str, why: &str| {
        let again = "Pour en recevoir un nouveau, contactez le Service Desk en précisant vos nom, prénom et adresse mail administrative.";
        Notice::new(StatusCode::GONE, heading, &[why, again], contact)
    };
    let notice = match p.store().open_password_link(&hash, p.now()).await? {
        LinkOutcome::Opened { address, sealed } => match bma_platform::password::unseal(&sealed, &token) {
            Some(password) => {
                tracing::info!(mailbox = %address, "new password shown once");
                let page = PasswordPage {
                    layout: layout(&p, "Votre nouveau mot de passe"),
                    token: String::new(),
                    shown: Some(password.expose().to_owned()),
                };
                return Ok(Html(page.render()?).into_response());
            }
            None => gone(
                "Ce mot de passe ne peut pas être affiché",
                "Le lien ne correspond pas au mot de passe enregistré.",
            ),
        },
        LinkOutcome::AlreadyOpened => gone(
            "Ce lien a déjà été ouvert",
            "Le mot de passe ne s'affiche qu'une fois, à la première ouverture du lien.",
        ),
        LinkOutcome::Expired => {
            gone("Ce lien a expiré", "Le mot de passe n'était affichable que pendant quelques jours.")
        }
        LinkOutcome::Revoked => gone(
            "Ce lien n'est plus valable",
            "Un mot de passe plus récent a été envoyé : utilisez le lien du dernier email reçu.",
        ),
        LinkOutcome::Unknown => invalid_password_link(&p),
    };
    Ok(notice.render()?)
}
