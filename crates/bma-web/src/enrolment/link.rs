//! The pages of a form link: the link itself (the login link, the form or
//! the status page), the form again for a correction, and the confirmation
//! after a submission.
//!
//! Rules: nothing here writes; answers kept from an expired session are
//! shown again (`#reponses-conservees`) for this link only; another person
//! starts a correction from an empty form, never from someone else's
//! contact details.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use bma_core::form::{FieldErrors, FormInput};
use bma_core::lifecycle::State as MailboxState;

use super::pages::{FormMode, StatusNote, StatusRead, Visit};
use super::{prefilled, same_person};
use crate::Portal;
use crate::error::{Answer, WebError};
use crate::extract::{CurrentSession, FormLink, FormView, session_hash};

/// The note over answers kept from an expired session.
const KEPT: &str = "Votre session avait expiré : les réponses que vous aviez envoyées ont été conservées. Vérifiez-les, \
                    puis envoyez le formulaire.";

/// The answers kept in the request's session for this link, if any.
async fn kept_answers(p: &Portal, headers: &HeaderMap, token: &str) -> Result<Option<FormInput>, WebError> {
    let Some(hash) = session_hash(p, headers) else {
        return Ok(None);
    };
    let link = bma_core::TokenHash::of(token);
    let draft = p.store().session_draft(&hash, &link, p.now()).await?;
    Ok(draft.and_then(|d| serde_json::from_str(&d).ok()))
}

/// `GET /formulaire/{token}`: the login link, the form, or the status page.
pub(super) async fn link(State(p): State<Portal>, FormView { token, view }: FormView, headers: HeaderMap) -> Answer {
    let m = view.mailbox;
    let visit = Visit { portal: &p, mailbox: &m, token: &token };
    let Some(session) = view.session.filter(|s| s.identity.is_some()) else {
        return Ok(visit.login_page()?);
    };
    if m.state == MailboxState::Invited {
        let errors = FieldErrors::new();
        if let Some(kept) = kept_answers(&p, &headers, &token).await? {
            let mode = FormMode { correction: false, kept: Some(KEPT.to_owned()) };
            return Ok(visit.form_page(StatusCode::OK, &session, &kept, &errors, mode).await?);
        }
        let input = prefilled(&session);
        return Ok(visit.form_page(StatusCode::OK, &session, &input, &errors, FormMode::default()).await?);
    }
    let forwarding = match view.forwards_outside {
        true => p.store().forwarding_audit_of(m.id).await?.map(|a| a.announced()).unwrap_or_default(),
        false => bma_store::Announced::default(),
    };
    let read = StatusRead { latest: view.latest, backup: view.backup, forwarding };
    Ok(visit.status_page_of(StatusCode::OK, &session, StatusNote::default(), read)?)
}

/// `GET /formulaire/{token}/modifier`: the form again, to correct it.
pub(super) async fn edit(
    State(p): State<Portal>,
    FormLink { token, mailbox: m }: FormLink,
    session: CurrentSession,
    headers: HeaderMap,
) -> Answer {
    let visit = Visit { portal: &p, mailbox: &m, token: &token };
    let Some(live) = session.signed_in() else {
        return Ok(visit.login_page()?);
    };
    let session = live.session;
    if !matches!(m.state, MailboxState::Enrolled | MailboxState::Presynced) {
        return Ok(Redirect::to(&format!("/formulaire/{token}")).into_response());
    }
    let errors = FieldErrors::new();
    if let Some(kept) = kept_answers(&p, &headers, &token).await? {
        let mode = FormMode { correction: true, kept: Some(KEPT.to_owned()) };
        return Ok(visit.form_page(StatusCode::OK, &session, &kept, &errors, mode).await?);
    }
    // Another person starts from their own name: the previous answers
    // (contact details of someone else) are not shown to them.
    let input = match p.store().latest_enrollment(m.id).await? {
        Some(e) if same_person(&session, &e) => FormInput::from_enrollment(&e.form),
        _ => prefilled(&session),
    };
    let mode = FormMode { correction: true, kept: None };
    Ok(visit.form_page(StatusCode::OK, &session, &input, &errors, mode).await?)
}

/// `GET /formulaire/{token}/confirmation`: the status page after a submission.
pub(super) async fn confirmation(
    State(p): State<Portal>,
    FormLink { token, mailbox: m }: FormLink,
    session: CurrentSession,
) -> Answer {
    let visit = Visit { portal: &p, mailbox: &m, token: &token };
    let Some(live) = session.signed_in() else {
        return Ok(visit.login_page()?);
    };
    if p.store().latest_enrollment(m.id).await?.is_none() {
        return Ok(Redirect::to(&format!("/formulaire/{token}")).into_response());
    }
    let note = StatusNote { confirmed: true, notice: None };
    Ok(visit.status_page(StatusCode::OK, &live.session, note).await?)
}
