//! The backup address's verification: the link sent to it (a page with a
//! button), the button, and a new link asked for from the status page.
//!
//! Rules: a GET verifies nothing (mail scanners fetch links); only the
//! button's POST does, with the code as its credential (no session: the
//! address is read anywhere, often on another device); codes are stored
//! hashed and work 14 days; a new link stops the old one, one per
//! 10 minutes and 4 per 24 hours per mailbox (the store counts them).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use bma_core::TokenHash;
use bma_core::form;
use bma_core::settings::date_fr;
use bma_mail::TemplateKind;
use bma_store::{BackupVerificationRequest, PortalMailbox, RenewOutcome, VerifyOutcome};
use time::Duration;

use super::pages::{StatusNote, VerifyPage, Visit};
use super::{VERIFICATION_DAYS, invalid_verification_link, same_person};
use crate::Portal;
use crate::error::{Answer, Notice, WebError};
use crate::extract::{CsrfForm, FormLink, VerificationCode};
use crate::pages::Layout;
use crate::session::random_token;

impl Portal {
    /// A new verification code for `backup_email` and its email.
    pub(crate) fn verification_request(
        &self,
        m: &PortalMailbox,
        backup_email: &str,
        manager_name: &str,
    ) -> Result<BackupVerificationRequest, WebError> {
        let code = random_token();
        let code_hash = TokenHash::of(&code);
        let expires_at = self.now() + Duration::days(VERIFICATION_DAYS);
        let s = self.settings();
        let context = serde_json::json!({
            "name": m.name, "address": m.address, "manager_name": manager_name,
            "verification_link": format!("{}/verification/{code}", s.base_url),
            "expires_on": date_fr(expires_at.date()),
            "contact": s.campaign.contacts.during, "sender_name": s.campaign.sender.name,
            "faq_url": s.campaign.campaign.faq_url,
            "login_domain": s.oidc.as_ref().map(|o| bma_mail::templates::url_host(&o.issuer)),
        });
        let key = format!("backup_verification:{}:{}", m.address, &code_hash.as_str()[..16]);
        let email = self.email(TemplateKind::BackupVerification, m.id, backup_email, key, &context)?;
        Ok(BackupVerificationRequest { code_hash, email, expires_at })
    }
}

/// `POST /formulaire/{token}/verification`: a new link for the backup
/// address, from the status page.
pub(super) async fn resend(State(p): State<Portal>, Path(token): Path<String>, form: CsrfForm) -> Answer {
    // The CSRF token first (the extractor), then the link.
    let session = form.session.session;
    let FormLink { token, mailbox: m } = FormLink::open(&p, token).await?;
    let Some(identity) = session.identity.clone() else {
        return Err(p.forbidden().into());
    };
    let now = p.now();
    let (status, notice) = match p.store().latest_enrollment(m.id).await? {
        Some(e) => {
            let request = p.verification_request(&m, &e.form.backup_email, &identity.name)?;
            let actor = bma_core::Actor::Manager(identity.subject.clone());
            let shown = if same_person(&session, &e) {
                e.form.backup_email.clone()
            } else {
                form::mask_email(&e.form.backup_email)
            };
            match p.store().renew_backup_verification(m.id, &e.form.backup_email, &request, &actor, now).await? {
                RenewOutcome::Sent => {
                    (StatusCode::OK, format!("Un nouveau lien de vérification a été envoyé à {shown}."))
                }
                RenewOutcome::NothingPending => (StatusCode::OK, "L'adresse de secours est déjà vérifiée.".to_owned()),
                RenewOutcome::TooSoon { retry_at } => {
                    let minutes = ((retry_at - now).whole_seconds() + 59) / 60;
                    let when = if minutes < 120 {
                        format!("dans {minutes} minute{}", if minutes > 1 { "s" } else { "" })
                    } else {
                        format!("dans {} heures", (minutes + 59) / 60)
                    };
                    let text = format!(
                        "Un lien de vérification a été envoyé récemment à {shown} : vérifiez sa boîte de réception \
                         et ses courriers indésirables. Vous pourrez demander un nouveau lien {when}."
                    );
                    (StatusCode::TOO_MANY_REQUESTS, text)
                }
            }
        }
        None => (StatusCode::OK, "Complétez d'abord le formulaire.".to_owned()),
    };
    let visit = Visit { portal: &p, mailbox: &m, token: &token };
    Ok(visit.status_page(status, &session, StatusNote { confirmed: false, notice: Some(notice) }).await?)
}

/// `GET /verification/{code}`: a button (a GET verifies nothing, so mail
/// scanners that fetch links cannot verify an address).
pub(super) async fn page(State(p): State<Portal>, Path(code): Path<String>) -> Answer {
    if !bma_core::token::well_formed(&code) {
        return Err(invalid_verification_link(&p).into());
    }
    let page = VerifyPage {
        layout: Layout {
            title: "Confirmer l'adresse de secours".to_owned(),
            who: None,
            contact: p.general_contact().clone(),
            error: false,
        },
        code,
    };
    Ok(Html(page.render()?).into_response())
}

/// `POST /verification/{code}`: the button. No session here (the address
/// is read anywhere, often on another device): the code is the credential.
pub(super) async fn verify(State(p): State<Portal>, VerificationCode { hash }: VerificationCode) -> Answer {
    let contact = p.general_contact();
    let notice = match p.store().verify_backup(&hash, p.now()).await? {
        VerifyOutcome::Verified { email, .. } => {
            let text = format!("L'adresse {email} est confirmée comme adresse de secours de la BMA. Merci !");
            Notice::new(StatusCode::OK, "Adresse de secours vérifiée", &[text.as_str()], contact)
        }
        VerifyOutcome::Expired => Notice::new(
            StatusCode::GONE,
            "Ce lien de vérification a expiré",
            &["Rouvrez le lien du formulaire reçu sur la BMA et demandez un nouveau lien de vérification."],
            contact,
        ),
        VerifyOutcome::Unknown => Notice::new(
            StatusCode::NOT_FOUND,
            "Lien de vérification invalide",
            &[
                "Ce lien de vérification n'est pas (ou plus) valable : un lien plus récent a peut-être été envoyé.",
                "Rouvrez le lien du formulaire reçu sur la BMA pour voir où en est la vérification.",
            ],
            contact,
        ),
    };
    Ok(notice.render()?)
}
