//! The console's actions: on one mailbox (`POST
//! /console/boites/{address}/actions/{action}`) and on the campaign
//! (`POST /console/campagne/{action}`).
//!
//! Rules, in this order: the CSRF token (the [`StaffForm`] extractor);
//! the action is one of `bma_core::staff::StaffAction` (else 404); the
//! staff member's role allows it (else 403, nothing done); a reason is
//! given (else 400); a destructive action is shown on a confirmation page
//! first and runs only when that page's button posts `confirme=oui`; it
//! then runs through the engine's operation, the same the CLI calls, with
//! the staff member as actor; success answers 303 to the mailbox's page,
//! which says what was done; a refusal of the operation (an illegal
//! transition, a pin off the wave days, …) is a 409 page with its reason.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bma_core::staff::StaffAction;
use bma_core::{Address, State as MailboxState};
use bma_engine::operations::{self, Operation, OperationError, Reason};
use bma_store::{CampaignAction, OlderLinks, RenewOutcome};

use super::auth::{Staff, StaffForm};
use super::mailbox::open;
use super::pages::{ConsoleLayout, ConsoleMessage, render};
use crate::Portal;
use crate::error::Answer;

/// The confirmation page of a destructive action.
#[derive(Template)]
#[template(path = "console/confirm.html")]
pub(crate) struct ConfirmPage {
    layout: ConsoleLayout,
    label: &'static str,
    target: String,
    post_to: String,
    fields: Vec<(String, String)>,
    csrf: String,
}

/// What a refused or failed action answers.
pub(crate) fn refused(p: &Portal, staff: &Staff, status: StatusCode, text: String) -> Response {
    ConsoleMessage::page(p, Some(staff), status, "Action non effectuée", vec![text])
}

/// The operation's refusal, in the page's words.
fn failed(p: &Portal, staff: &Staff, e: &OperationError) -> Response {
    let status = match e {
        OperationError::NoReason | OperationError::NotAWaveDay { .. } => StatusCode::BAD_REQUEST,
        OperationError::Store(bma_store::StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    };
    tracing::warn!(error = %e, "console action refused by its operation");
    refused(p, staff, status, format!("L'opération a été refusée : {e}."))
}

/// The checks every action goes through before it runs: its role, its
/// reason, and for a destructive one its confirmation. `Ok(None)`: go on.
pub(crate) fn preflight(
    p: &Portal,
    form: &StaffForm,
    action: StaffAction,
    target: &str,
    post_to: &str,
) -> Result<Reason, Response> {
    form.staff.may(p, action)?;
    let reason = Reason::new(form.field("motif")).map_err(|_| {
        refused(
            p,
            &form.staff,
            StatusCode::BAD_REQUEST,
            "Le motif est obligatoire : il est enregistré dans l'historique avec votre nom.".to_owned(),
        )
    })?;
    if action.is_destructive() && form.field("confirme") != "oui" {
        let page = ConfirmPage {
            layout: ConsoleLayout::of("Confirmer l'action", Some(&form.staff)),

            label: action.label_fr(),
            target: target.to_owned(),
            post_to: post_to.to_owned(),
            fields: form.pairs.iter().filter(|(k, _)| k != "csrf" && k != "confirme").cloned().collect(),
            csrf: form.staff.csrf.clone(),
        };
        return Err(render(StatusCode::OK, &page));
    }
    Ok(reason)
}

/// The engine, or the page that says this process has none.
fn engine<'a>(p: &'a Portal, staff: &Staff) -> Result<&'a bma_engine::Engine, Response> {
    p.console().and_then(|c| c.engine.as_deref()).ok_or_else(|| {
        refused(
            p,
            staff,
            StatusCode::SERVICE_UNAVAILABLE,
            "Cette action passe par le moteur de campagne, qui ne tourne pas dans ce processus (bma serve \
             --no-scheduler sans configuration des plateformes). Utilisez la commande bma correspondante."
                .to_owned(),
        )
    })
}

/// `POST /console/boites/{address}/actions/{action}`.
pub(crate) async fn on_mailbox(
    State(p): State<Portal>,
    Path((text, action)): Path<(String, String)>,
    form: StaffForm,
) -> Answer {
    let staff = form.staff.clone();
    let Ok(action) = StaffAction::parse(&action) else {
        return Ok(crate::site::not_found_page(&p));
    };
    if !action.on_mailbox() {
        return Ok(crate::site::not_found_page(&p));
    }
    // The role before the mailbox: a refused action says nothing about it.
    if let Err(page) = staff.may(&p, action) {
        return Ok(page);
    }
    let (address, m) = match open(&p, &staff, &text).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let post_to = format!("/console/boites/{}/actions/{}", m.address, action.as_str());
    let reason = match preflight(&p, &form, action, &m.address, &post_to) {
        Ok(r) => r,
        Err(page) => return Ok(page),
    };
    let op = Operation { actor: staff.actor(), reason, at: p.now() };
    let done = run(&p, &staff, &form, action, &address, &m, &op).await;
    match done {
        Ok(()) => {
            tracing::info!(action = action.as_str(), "console action done");
            Ok(Redirect::to(&format!("/console/boites/{}?fait={}", m.address, action.as_str())).into_response())
        }
        Err(page) => Ok(page),
    }
}

/// Runs a mailbox action through its operation.
async fn run(
    p: &Portal,
    staff: &Staff,
    form: &StaffForm,
    action: StaffAction,
    address: &Address,
    m: &bma_store::MailboxRecord,
    op: &Operation,
) -> Result<(), Response> {
    let store = p.store();
    let fail = |e: OperationError| failed(p, staff, &e);
    match action {
        StaffAction::CallNote => {
            store.note_call(address, &op.actor, op.reason.as_str(), op.at).await.map_err(|e| fail(e.into()))
        }
        StaffAction::ResendInvitation => {
            let engine = engine(p, staff)?;
            operations::resend(engine, address, OlderLinks::Revoke, op).await.map(|_| ()).map_err(fail)
        }
        StaffAction::ResendMail2 => {
            let engine = engine(p, staff)?;
            operations::resend_mail2(engine, address, op).await.map_err(fail)?;
            engine.send_due(op.at).await.map(|_| ()).map_err(|e| fail(e.into()))
        }
        StaffAction::NewVerificationLink => new_verification_link(p, staff, m, op).await,
        StaffAction::Pin => {
            let day = form.field("jour");
            let wave = if day.is_empty() {
                None
            } else {
                match time::Date::parse(day, &time::format_description::well_known::Iso8601::DATE) {
                    Ok(d) => Some(d),
                    Err(_) => {
                        return Err(refused(
                            p,
                            staff,
                            StatusCode::BAD_REQUEST,
                            format!("« {day} » n'est pas une date AAAA-MM-JJ."),
                        ));
                    }
                }
            };
            operations::pin(store, &p.settings().campaign.campaign, address, wave, op).await.map_err(fail)
        }
        StaffAction::Priority => {
            let Ok(priority) = form.field("priorite").parse::<i64>() else {
                return Err(refused(p, staff, StatusCode::BAD_REQUEST, "La priorité est un nombre entier.".to_owned()));
            };
            operations::set_priority(store, address, priority, op).await.map_err(fail)
        }
        StaffAction::Exclude => operations::exclude(store, address, true, op).await.map_err(fail),
        StaffAction::Readmit => operations::exclude(store, address, false, op).await.map_err(fail),
        StaffAction::Block => {
            operations::transition(store, address, MailboxState::Blocked, "console", op).await.map(|_| ()).map_err(fail)
        }
        StaffAction::Unblock => {
            let Some(back) = m.blocked_from else {
                return Err(refused(p, staff, StatusCode::CONFLICT, "Cette boîte n'est pas bloquée.".to_owned()));
            };
            operations::transition(store, address, back, "console", op).await.map(|_| ()).map_err(fail)
        }
        StaffAction::RetryPresync => {
            let engine = engine(p, staff)?;
            operations::retry_presync(engine, address, op).await.map(|_| ()).map_err(fail)
        }
        StaffAction::Cutover => {
            let engine = engine(p, staff)?;
            operations::cut_over(engine, address, op).await.map(|_| ()).map_err(fail)
        }
        StaffAction::Rollback => {
            let engine = engine(p, staff)?;
            operations::roll_back(engine, address, op).await.map(|_| ()).map_err(fail)
        }
        StaffAction::ResetPassword => {
            let engine = engine(p, staff)?;
            operations::reset_password(engine, address, op).await.map(|_| ()).map_err(fail)
        }
        StaffAction::CampaignStart
        | StaffAction::CampaignPause
        | StaffAction::CampaignResume
        | StaffAction::ExportPersonalData
        | StaffAction::ErasePersonalData
        | StaffAction::ImportRegistry => Err(crate::site::not_found_page(p)),
    }
}

/// A new link for the backup address of the latest form, if it is not
/// verified (the portal's own request, with its limits).
async fn new_verification_link(
    p: &Portal,
    staff: &Staff,
    m: &bma_store::MailboxRecord,
    op: &Operation,
) -> Result<(), Response> {
    let store = p.store();
    let internal = |e: crate::error::WebError| e.into_response();
    let latest = store.latest_enrollment(m.id).await.map_err(|e| internal(e.into()))?;
    let Some(e) = latest else {
        return Err(refused(
            p,
            staff,
            StatusCode::CONFLICT,
            "Aucun formulaire reçu : pas d'adresse de secours.".to_owned(),
        ));
    };
    let pm = bma_store::PortalMailbox {
        id: m.id,
        address: m.address.clone(),
        name: m.name.clone(),
        state: m.state,
        blocked_from: m.blocked_from,
        invited_at: None,
        wave: m.wave,
        cutover_on: None,
    };
    let manager = format!("{} {}", e.form.given_name, e.form.family_name);
    let request = p.verification_request(&pm, &e.form.backup_email, &manager).map_err(internal)?;
    match store
        .renew_backup_verification(m.id, &e.form.backup_email, &request, &op.actor, op.at)
        .await
        .map_err(|e| internal(e.into()))?
    {
        RenewOutcome::Sent => Ok(()),
        RenewOutcome::NothingPending => {
            Err(refused(p, staff, StatusCode::CONFLICT, "L'adresse de secours est déjà vérifiée.".to_owned()))
        }
        RenewOutcome::TooSoon { retry_at } => Err(refused(
            p,
            staff,
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Un lien a été envoyé récemment : un nouveau lien pourra partir à partir du {}.",
                super::mailbox::when(retry_at)
            ),
        )),
    }
}

/// `POST /console/campagne/{action}`: start, pause, resume (admin).
pub(crate) async fn on_campaign(State(p): State<Portal>, Path(action): Path<String>, form: StaffForm) -> Answer {
    let staff = form.staff.clone();
    let (action, change) = match StaffAction::parse(&action) {
        Ok(a @ StaffAction::CampaignStart) => (a, CampaignAction::Start),
        Ok(a @ StaffAction::CampaignPause) => (a, CampaignAction::Pause),
        Ok(a @ StaffAction::CampaignResume) => (a, CampaignAction::Resume),
        _ => return Ok(crate::site::not_found_page(&p)),
    };
    let post_to = format!("/console/campagne/{}", action.as_str());
    let reason = match preflight(&p, &form, action, "la campagne", &post_to) {
        Ok(r) => r,
        Err(page) => return Ok(page),
    };
    match p.store().change_campaign(change, &staff.actor(), reason.as_str(), p.now()).await {
        Ok(state) => Ok(ConsoleMessage::page(
            &p,
            Some(&staff),
            StatusCode::OK,
            "Campagne",
            vec![format!("Action effectuée : {}. État de la campagne : {state:?}.", action.label_fr())],
        )),
        Err(e) => Ok(failed(&p, &staff, &e.into())),
    }
}
