//! A submission of the form: checked, stored in one store transaction with
//! its emails, or kept for after a new login.
//!
//! Rules: the CSRF token first (nothing is stored as an answer without
//! it); a form posted without a valid session is kept server-side in the
//! session row (a new login session if needed), never refused with a 403
//! nor stored; the confirmation, the backup verification and the notices
//! of a changed backup address enter the outbox in the submission's
//! transaction.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect};
use bma_core::TokenHash;
use bma_core::form::{self, FormInput};
use bma_core::lifecycle::State as MailboxState;
use bma_core::settings::date_fr;
use bma_mail::TemplateKind;
use bma_store::{BackupChange, StoreError, Submission};
use time::Duration;

use super::DRAFT_MINUTES;
use super::pages::{FormMode, StatusNote, Visit};
use crate::Portal;
use crate::error::{Answer, WebError};
use crate::extract::{CurrentSession, FormLink, PostedForm};
use crate::pages::{Layout, MessagePage};
use crate::session::random_token;

/// Whether the form of a mailbox in `state` can still be sent.
fn open(state: MailboxState) -> bool {
    matches!(state, MailboxState::Invited | MailboxState::Enrolled | MailboxState::Presynced)
}

/// `POST /formulaire/{token}`: a submission.
pub(super) async fn submit(
    State(p): State<Portal>,
    Path(token): Path<String>,
    headers: HeaderMap,
    PostedForm { pairs, checked }: PostedForm,
) -> Answer {
    // The CSRF token first: nothing is stored as an answer without it. A
    // form posted with a session that expired (or was replaced) is kept
    // for after the login instead of being refused.
    let Some(live) = checked else {
        return keep_answers(&p, token, &pairs, &headers).await;
    };
    let FormLink { token, mailbox: m } = FormLink::open(&p, token).await?;
    let session = live.session;
    let Some(identity) = session.identity.clone() else {
        return keep_answers(&p, token, &pairs, &headers).await;
    };
    let visit = Visit { portal: &p, mailbox: &m, token: &token };
    let correction = m.state != MailboxState::Invited;
    if !open(m.state) {
        let notice = "Le formulaire ne peut plus être modifié à ce stade de la migration.".to_owned();
        return Ok(visit
            .status_page(StatusCode::CONFLICT, &session, StatusNote { confirmed: false, notice: Some(notice) })
            .await?);
    }
    let input = FormInput::from_pairs(&pairs);
    let rule = &p.settings().campaign.addresses;
    let ctx = form::Context { bma_address: &m.address, bma_domain: &rule.domain };
    let valid = match form::validate(&input, &ctx) {
        Ok(v) => v,
        Err(errors) => {
            let mode = FormMode { correction, kept: None };
            return Ok(visit.form_page(StatusCode::UNPROCESSABLE_ENTITY, &session, &input, &errors, mode).await?);
        }
    };
    let manager_name = format!("{} {}", valid.given_name, valid.family_name);
    let s = p.settings();
    let submitted_on = date_fr(p.now().date());
    let context = serde_json::json!({
        "name": m.name, "address": m.address,
        "submitted_on": submitted_on, "manager_name": manager_name,
        "password_unknown": !valid.knows_password,
        "form_link": format!("{}/formulaire/{token}", s.base_url),
        "contact": s.campaign.contacts.during, "sender_name": s.campaign.sender.name,
        "faq_url": s.campaign.campaign.faq_url,
        "login_domain": s.oidc.as_ref().map(|o| bma_mail::templates::url_host(&o.issuer)),
    });
    let key = format!("confirmation:{}:{}", m.address, &random_token()[..16]);
    let confirmation = p.email(TemplateKind::Confirmation, m.id, &m.address, key, &context)?;
    let verification = p.verification_request(&m, &valid.backup_email, &manager_name)?;
    // A new backup address: the previous one and the BMA are told.
    let store = p.store();
    let change = match store.latest_enrollment(m.id).await? {
        Some(e) if e.form.backup_email != valid.backup_email => {
            let context = serde_json::json!({
                "name": m.name, "address": m.address, "submitted_on": submitted_on, "manager_name": manager_name,
                "previous_backup": e.form.backup_email, "new_backup": form::mask_email(&valid.backup_email),
                "contact": s.campaign.contacts.during, "sender_name": s.campaign.sender.name,
            });
            let mark = &random_token()[..16];
            let mut notices = Vec::new();
            for to in [e.form.backup_email.as_str(), m.address.as_str()] {
                let key = format!("backup_changed:{}:{to}:{mark}", m.address);
                notices.push(p.email(TemplateKind::BackupChanged, m.id, to, key, &context)?);
            }
            Some(BackupChange { previous: e.form.backup_email, notices })
        }
        Some(e) => Some(BackupChange { previous: e.form.backup_email, notices: Vec::new() }),
        None => None,
    };
    let submission = Submission {
        form: &valid,
        identity: &identity,
        confirmation: &confirmation,
        verification: Some(&verification),
        change: change.as_ref(),
    };
    let submit = || store.submit_enrollment_notifying(m.id, &submission, p.now());
    let mut result = submit().await;
    if let (Err(StoreError::Conflict(_)), false) = (&result, correction) {
        // Another first submission of this mailbox committed first (a
        // double click): this one is stored as the next version, as a correction.
        result = submit().await;
    }
    match result {
        Ok(outcome) => {
            tracing::info!(version = outcome.version, first = outcome.first, "form received");
            store.clear_draft(&live.hash).await?;
            Ok(Redirect::to(&format!("/formulaire/{token}/confirmation")).into_response())
        }
        Err(StoreError::FormClosed { .. } | StoreError::Conflict(_) | StoreError::Illegal { .. }) => {
            let notice = "Le formulaire n'a pas pu être enregistré : l'état de la migration a changé entre-temps. \
                          Vérifiez ci-dessous où elle en est."
                .to_owned();
            let m = store.portal_mailbox_by_token(&token).await?.unwrap_or(m);
            let visit = Visit { portal: &p, mailbox: &m, token: &token };
            let note = StatusNote { confirmed: false, notice: Some(notice) };
            Ok(visit.status_page(StatusCode::CONFLICT, &session, note).await?)
        }
        Err(e) => Err(WebError::from(e).into()),
    }
}

/// A form posted without a valid session: the answers are kept in the
/// session (a new one that starts a login, if the request has no
/// logged-in session) and shown again after the login; never lost.
async fn keep_answers(p: &Portal, token: String, pairs: &[(String, String)], headers: &HeaderMap) -> Answer {
    let FormLink { token, mailbox: m } = FormLink::open(p, token).await?;
    let input = FormInput::from_pairs(pairs);
    if input == FormInput::default() || !open(m.state) {
        return Err(p.forbidden().into());
    }
    let draft = serde_json::to_string(&input).map_err(|e| WebError::Settings(e.to_string()))?;
    let token_hash = TokenHash::of(&token);
    let back = if m.state == MailboxState::Invited {
        format!("/formulaire/{token}")
    } else {
        format!("/formulaire/{token}/modifier")
    };
    // Logged in already (a new login in another tab replaced the
    // session the form was opened with): back to the form.
    let store = p.store();
    if let Some(live) = CurrentSession::of(p, headers).await?.signed_in() {
        store.keep_draft(&live.hash, &token_hash, &draft).await?;
        tracing::info!("answers kept: the form was posted with an old session");
        return Ok(Redirect::to(&back).into_response());
    }
    let start = match super::login::start_at_provider(p, &m).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(p.forbidden().into()),
        Err(unavailable) => return Ok(unavailable.render()?),
    };
    let id = random_token();
    let hash = TokenHash::of(&id);
    let now = p.now();
    store.create_session(&hash, &random_token(), now + Duration::minutes(DRAFT_MINUTES), now).await?;
    store.set_login_pending(&hash, &start.pending).await?;
    store.keep_draft(&hash, &token_hash, &draft).await?;
    tracing::info!("answers kept: the form was posted after its session expired");
    let page = MessagePage {
        layout: Layout {
            title: "Reconnectez-vous".to_owned(),
            who: None,
            contact: p.contact_of(&m).clone(),
            error: false,
        },
        heading: "Votre session a expiré : reconnectez-vous".to_owned(),
        paragraphs: vec![
            "Vos réponses n'ont pas encore été enregistrées, mais elles ne sont pas perdues : elles ont été \
             conservées et vous seront présentées à nouveau après la connexion, pour que vous les vérifiiez et \
             les envoyiez."
                .to_owned(),
        ],
        link: Some((start.redirect_to, "Se reconnecter avec Cerbère EDU".to_owned())),
    };
    let c = p.inner.cookies;
    let mut res = Html(askama::Template::render(&page).map_err(WebError::from)?).into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, c.set(c.session_name(), &id, DRAFT_MINUTES * 60));
    h.append(header::SET_COOKIE, c.set(c.return_name(), &token, DRAFT_MINUTES * 60));
    Ok(res)
}
