//! The administrators' page for one person's personal data (GDPR):
//! `GET /console/donnees-personnelles?adresse=…|sujet=…` shows what the
//! store holds about them (counts, per kind), `GET
//! /console/donnees-personnelles/export.json?…` hands it over as JSON
//! (article 15, the same document as `bma privacy export`), and `POST
//! /console/donnees-personnelles/effacer` erases it (article 17, the same
//! `Store::erase_person` as `bma privacy erase`).
//!
//! Rules: every route needs the role of `StaffAction::ExportPersonalData`
//! (erasure that of `ErasePersonalData`), checked before anything is read;
//! an erasure has a reason and is confirmed on a second page, and is
//! recorded in the timeline of each mailbox whose data named the person,
//! with the administrator as actor; the person looked up is never logged
//! (only counts are); nothing is cached.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use bma_core::staff::StaffAction;
use bma_store::{Person, PersonalData};
use serde::Deserialize;

use super::actions::{preflight, refused};
use super::auth::{Staff, StaffForm};
use super::pages::{ConsoleLayout, render};
use crate::Portal;
use crate::error::Answer;

/// Who is asked for: an address of theirs, or their identity subject.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Who {
    #[serde(default)]
    adresse: String,
    #[serde(default)]
    sujet: String,
}

impl Who {
    /// The person, `None` when neither field names one; an error text for
    /// an address that is not one.
    fn person(&self) -> Result<Option<Person>, String> {
        match (self.adresse.trim(), self.sujet.trim()) {
            ("", "") => Ok(None),
            ("", subject) => Ok(Person::subject(subject)),
            (address, _) => {
                Person::address(address).map(Some).ok_or_else(|| format!("« {address} » n'est pas une adresse email."))
            }
        }
    }

    /// The query string that names them again.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("adresse", self.adresse.trim()), ("sujet", self.sujet.trim())] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

/// The page.
#[derive(Template)]
#[template(path = "console/privacy.html")]
pub(crate) struct PrivacyPage {
    layout: ConsoleLayout,
    adresse: String,
    sujet: String,
    error: Option<String>,
    /// (what, how many) for the person asked for; `None`: nobody asked.
    found: Option<Vec<(&'static str, usize)>>,
    /// The mailboxes their data is about.
    mailboxes: Vec<String>,
    export_href: String,
    may_erase: bool,
    done: Option<String>,
    csrf: String,
}

/// (what, how many) of an export, in French.
fn counts(data: &PersonalData) -> Vec<(&'static str, usize)> {
    vec![
        ("Versions de formulaire", data.forms.len()),
        ("Vérifications d'adresse de secours", data.backup_verifications.len()),
        ("Sessions du portail", data.sessions.len()),
        ("Emails", data.emails.len()),
        ("Événements de l'historique", data.events.len()),
        ("Sessions de la console", data.staff_sessions.len()),
        ("Consultations dans la console", data.staff_views.len()),
    ]
}

/// The mailboxes an export is about, sorted, once each.
fn mailboxes_of(data: &PersonalData) -> Vec<String> {
    let mut all: Vec<String> = data
        .forms
        .iter()
        .map(|f| f.mailbox.clone())
        .chain(data.emails.iter().filter_map(|e| e.mailbox.clone()))
        .chain(data.events.iter().filter_map(|e| e.mailbox.clone()))
        .collect();
    all.sort();
    all.dedup();
    all
}

async fn page(p: &Portal, staff: &Staff, who: &Who, done: Option<String>) -> Answer {
    let mut page = PrivacyPage {
        layout: ConsoleLayout::of("Données personnelles", Some(staff)),
        adresse: who.adresse.trim().to_owned(),
        sujet: who.sujet.trim().to_owned(),
        error: None,
        found: None,
        mailboxes: Vec::new(),
        export_href: format!("/console/donnees-personnelles/export.json?{}", who.query()),
        may_erase: bma_core::staff::allows(staff.who.role, StaffAction::ErasePersonalData),
        done,
        csrf: staff.csrf.clone(),
    };
    let status = match who.person() {
        Err(text) => {
            page.error = Some(text);
            StatusCode::BAD_REQUEST
        }
        Ok(None) => StatusCode::OK,
        Ok(Some(person)) => {
            let data = p.store().export_person(&person).await?;
            page.mailboxes = mailboxes_of(&data);
            page.found = Some(counts(&data));
            tracing::info!(mailboxes = page.mailboxes.len(), "personal data looked up from the console");
            StatusCode::OK
        }
    };
    Ok(render(status, &page))
}

/// `GET /console/donnees-personnelles`.
pub(crate) async fn show(State(p): State<Portal>, staff: Staff, Query(who): Query<Who>) -> Answer {
    if let Err(refusal) = staff.may(&p, StaffAction::ExportPersonalData) {
        return Ok(refusal);
    }
    page(&p, &staff, &who, None).await
}

/// The person `who` names, or the 400 page that says what is missing.
fn needed(p: &Portal, staff: &Staff, who: &Who) -> Result<Person, axum::response::Response> {
    match who.person() {
        Ok(Some(person)) => Ok(person),
        Ok(None) => Err(refused(p, staff, StatusCode::BAD_REQUEST, "Indiquez une adresse ou un sujet.".into())),
        Err(text) => Err(refused(p, staff, StatusCode::BAD_REQUEST, text)),
    }
}

/// `GET /console/donnees-personnelles/export.json`.
pub(crate) async fn export(State(p): State<Portal>, staff: Staff, Query(who): Query<Who>) -> Answer {
    if let Err(refusal) = staff.may(&p, StaffAction::ExportPersonalData) {
        return Ok(refusal);
    }
    let person = match needed(&p, &staff, &who) {
        Ok(person) => person,
        Err(page) => return Ok(page),
    };
    let data = p.store().export_person(&person).await?;
    tracing::info!(mailboxes = mailboxes_of(&data).len(), "personal data exported from the console");
    let Ok(body) = serde_json::to_string_pretty(&data) else {
        tracing::error!("personal data export could not be written as JSON");
        return Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"bma-donnees-personnelles.json\""),
        ],
        body,
    )
        .into_response())
}

/// `POST /console/donnees-personnelles/effacer`: `adresse` or `sujet`,
/// `motif`, then `confirme=oui` from the confirmation page.
pub(crate) async fn erase(State(p): State<Portal>, form: StaffForm) -> Answer {
    let staff = form.staff.clone();
    let who = Who { adresse: form.field("adresse").to_owned(), sujet: form.field("sujet").to_owned() };
    if let Err(refusal) = staff.may(&p, StaffAction::ErasePersonalData) {
        return Ok(refusal);
    }
    let person = match needed(&p, &staff, &who) {
        Ok(person) => person,
        Err(page) => return Ok(page),
    };
    let target = match &person {
        Person::Address(a) => format!("la personne d'adresse {a}"),
        Person::Subject(s) => format!("la personne de sujet {s}"),
    };
    let reason =
        match preflight(&p, &form, StaffAction::ErasePersonalData, &target, "/console/donnees-personnelles/effacer") {
            Ok(r) => r,
            Err(page) => return Ok(page),
        };
    let done = p.store().erase_person(&person, &staff.actor(), reason.as_str(), p.now()).await;
    let text = match done {
        Ok(e) if e.scrubbed.is_empty() => "Rien n'était conservé sur cette personne : rien n'a été effacé.".to_owned(),
        Ok(e) => {
            tracing::info!(mailboxes = e.mailboxes.len(), "personal data erased from the console");
            format!(
                "Données effacées : {} version(s) de formulaire, {} vérification(s), {} session(s), {} email(s) \
                 annulé(s) et {} expurgé(s), {} événement(s). Enregistré dans l'historique de : {}.",
                e.scrubbed.forms,
                e.scrubbed.verifications,
                e.scrubbed.sessions + e.scrubbed.staff_sessions,
                e.scrubbed.emails_cancelled,
                e.scrubbed.emails_redacted,
                e.scrubbed.events_redacted,
                if e.mailboxes.is_empty() { "aucune boîte".to_owned() } else { e.mailboxes.join(", ") }
            )
        }
        Err(bma_store::StoreError::Conflict(_)) => {
            return Ok(refused(
                &p,
                &staff,
                StatusCode::CONFLICT,
                "Un email à cette personne est en cours d'envoi : rien n'a été effacé ; réessayez dans une minute."
                    .into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    page(&p, &staff, &who, Some(text)).await
}
