//! The mailbox page: everything about one mailbox a caller may ask, and
//! what the staff member may do about it.
//!
//! Rules: the state in plain French and since when; whom the caller should
//! contact now and what happens next in the words of the manager's own
//! status page (`enrolment::pages::next_steps`); the timeline (every event:
//! when, who, what, why); every email with its delivery status; each
//! version of the form and who gave it; the backup address and its
//! verification; the last presync; the cutover's steps and receipt; what
//! needs a human. Personal data by role: an agent sees names and the
//! masked phone and backup address (enough to recognise a caller), an
//! operator or admin sees them whole, the identity subject only an admin;
//! opening the page records who looked (shown at the bottom).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bma_core::form;
use bma_core::staff::{Role, StaffAction, allows};
use bma_core::switch::Step;
use bma_core::{Address, EventKind, State as MailboxState};
use bma_store::{EventRecord, StoreError};
use serde::Deserialize;

use super::auth::Staff;
use super::pages::{ConsoleLayout, ConsoleMessage, render};
use crate::Portal;
use crate::error::Answer;

/// Date and time in French, Brussels' offset not assumed: UTC, said so.
pub(crate) fn when(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{} à {:02}:{:02} UTC", bma_core::settings::date_fr(t.date()), t.hour(), t.minute())
}

/// An event kind in French.
pub(crate) fn event_fr(kind: EventKind) -> &'static str {
    use EventKind as K;
    match kind {
        K::Transition => "changement d'état",
        K::Imported => "importée du registre",
        K::Updated => "mise à jour par le registre",
        K::RegistryImport => "import du registre",
        K::WavePlan => "plan des vagues",
        K::Replanned => "déplacée dans une autre vague",
        K::Pinned => "épinglée à une vague",
        K::Excluded => "exclue ou réadmise",
        K::Priority => "priorité changée",
        K::CampaignStart => "campagne démarrée",
        K::CampaignPause => "campagne en pause",
        K::CampaignResume => "campagne reprise",
        K::ReminderQueued => "rappel envoyé",
        K::EmailSent => "email remis au relais",
        K::Bounce => "email revenu en erreur",
        K::BounceUnverified => "rapport d'erreur non vérifié",
        K::DeadlineWatch => "liste de l'échéance",
        K::Attention => "signalée au helpdesk",
        K::Presync => "présynchronisation",
        K::InvitationResent => "mail 1 renvoyé",
        K::FormCorrected => "formulaire corrigé",
        K::BackupChanged => "adresse de secours changée",
        K::BackupVerificationRequested => "lien de vérification envoyé",
        K::BackupVerified => "adresse de secours vérifiée",
        K::CutoverStep => "étape de bascule",
        K::CutoverRollback => "bascule annulée",
        K::PasswordReset => "nouveau mot de passe",
        K::PasswordLinkOpened => "lien du mot de passe ouvert",
        K::CallNote => "appel noté",
        K::Mail2Resent => "mail 2 renvoyé (sans mot de passe)",
        K::DailyReport => "rapport quotidien envoyé à l'équipe",
        K::PresyncRequested => "présynchronisation demandée",
        K::PersonalDataErased => "données personnelles effacées",
        K::PersonalDataPurged => "données personnelles supprimées (fin de conservation)",
        K::ForwardingAudited => "renvois automatiques audités",
    }
}

/// A line of the timeline.
#[derive(Debug, Clone)]
pub(crate) struct TimelineRow {
    at: String,
    actor: String,
    what: String,
    reason: String,
}

/// A line of the emails.
#[derive(Debug, Clone)]
pub(crate) struct EmailRow {
    at: String,
    kind: String,
    recipient: String,
    subject: String,
    status: String,
    status_code: &'static str,
}

/// A version of the form as shown.
#[derive(Debug, Clone)]
pub(crate) struct FormRow {
    version: i64,
    at: String,
    name: String,
    role: &'static str,
    phone: String,
    backup: String,
    knows_password: bool,
    given_by: String,
}

/// A finding of the forwarding audit as shown.
#[derive(Debug, Clone)]
pub(crate) struct ForwardRow {
    script: String,
    line: u32,
    what: String,
    target: String,
    reach: &'static str,
}

/// The forwarding audit as shown.
#[derive(Debug, Clone)]
pub(crate) struct ForwardView {
    at: String,
    active: String,
    outside: bool,
    rows: Vec<ForwardRow>,
}

fn reach_fr(reach: Option<bma_store::ForwardingReach>) -> &'static str {
    use bma_store::ForwardingReach as R;
    match reach {
        Some(R::Stays) => "reste dans la boîte",
        Some(R::Internal) => "vers une adresse de l'organisation",
        Some(R::External) => "vers l'extérieur",
        Some(R::Dynamic) => "vers une adresse calculée (peut-être l'extérieur)",
        Some(R::Sender) => "réponse à l'expéditeur",
        Some(R::Opaque) => "vers un programme",
        None => "script illisible",
    }
}

/// An action offered on the page.
#[derive(Debug, Clone)]
pub(crate) struct Offered {
    code: &'static str,
    label: &'static str,
    /// `pin` asks for a day, `priority` for a number.
    field: &'static str,
    destructive: bool,
}

/// The mailbox page.
#[derive(Template)]
#[template(path = "console/mailbox.html")]
pub(crate) struct MailboxPage {
    layout: ConsoleLayout,
    csrf: String,
    done: Option<String>,
    address: String,
    name: String,
    kind: &'static str,
    fase: u32,
    state: &'static str,
    state_code: &'static str,
    since: String,
    blocked_from: Option<&'static str>,
    wave: String,
    planning: String,
    contact_name: String,
    contact_email: String,
    contact_phone: String,
    next: Vec<String>,
    attention: Option<String>,
    forms: Vec<FormRow>,
    backup: Option<String>,
    presync: Option<String>,
    cutover: Vec<(String, &'static str)>,
    receipt: Option<String>,
    emails: Vec<EmailRow>,
    timeline: Vec<TimelineRow>,
    actions: Vec<Offered>,
    forwarding: Option<ForwardView>,
    views: Vec<String>,
}

/// The query of the page (`?fait=action` after an action).
#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    #[serde(default)]
    fait: String,
}

/// The page saying no mailbox has the address `text` (404).
fn not_found(p: &Portal, staff: &Staff, text: &str) -> axum::response::Response {
    ConsoleMessage::page(
        p,
        Some(staff),
        StatusCode::NOT_FOUND,
        "Boîte introuvable",
        vec![format!("Aucune boîte du registre n'a l'adresse « {} ».", text.trim())],
    )
}

/// The mailbox an address of the path names, or the 404 page.
pub(crate) async fn open(
    p: &Portal,
    staff: &Staff,
    text: &str,
) -> Result<Result<(Address, bma_store::MailboxRecord), axum::response::Response>, StoreError> {
    let Ok(address) = Address::parse(text, &p.settings().campaign.addresses) else {
        return Ok(Err(not_found(p, staff, text)));
    };
    match p.store().mailbox(&address).await {
        Ok(m) => Ok(Ok((address, m))),
        Err(StoreError::NotFound(_)) => Ok(Err(not_found(p, staff, text))),
        Err(e) => Err(e),
    }
}

fn email_status(e: &bma_store::OutboxEmail, bounces: &[&EventRecord]) -> (String, &'static str) {
    let bounced = bounces.iter().find(|b| {
        b.details.get("message_id").and_then(|v| v.as_str()).is_some_and(|id| {
            id.trim_matches(|c| c == '<' || c == '>') == e.message_id.trim_matches(|c| c == '<' || c == '>')
        })
    });
    if let Some(b) = bounced {
        let code = b.details.get("status").and_then(|v| v.as_str()).unwrap_or("?");
        return (format!("revenu en erreur (code {code})"), "bounced");
    }
    match e.state.as_str() {
        "sent" => (e.sent_at.map_or_else(|| "envoyé".to_owned(), |t| format!("envoyé le {}", when(t))), "sent"),
        "pending" | "sending" if e.uncertain => ("incertain : vérifié avant tout nouvel envoi".to_owned(), "uncertain"),
        "pending" | "sending" => ("en attente d'envoi".to_owned(), "pending"),
        "unconfirmed" => ("incertain : distribution non confirmée".to_owned(), "uncertain"),
        "dead" => (
            format!("échec définitif{}", e.last_error.as_deref().map_or_else(String::new, |x| format!(" : {x}"))),
            "dead",
        ),
        other => (other.to_owned(), "other"),
    }
}

/// `GET /console/boites/{address}`: the page.
pub(crate) async fn page(
    State(p): State<Portal>,
    staff: Staff,
    Path(text): Path<String>,
    Query(Done { fait }): Query<Done>,
) -> Answer {
    let Ok(address) = Address::parse(&text, &p.settings().campaign.addresses) else {
        return Ok(not_found(&p, &staff, &text));
    };
    let store = p.store();
    let now = p.now();
    // The mailbox, its flag, timeline, emails, forms, backup addresses and
    // last views: one statement; then this view, committed before the page
    // is answered, and first in the list.
    let file = match store.mailbox_file(&address).await {
        Ok(file) => file,
        Err(StoreError::NotFound(_)) => return Ok(not_found(&p, &staff, &text)),
        Err(e) => return Err(e.into()),
    };
    store.record_staff_view(&staff.who, file.mailbox.id, now).await?;
    let backup = file.forms.last().and_then(|e| file.backup_status(&e.form.backup_email)).cloned();
    let bma_store::MailboxFile { mailbox: m, attention, events, emails, forms, views: earlier, .. } = file;
    let views: Vec<bma_store::StaffView> = std::iter::once(bma_store::StaffView {
        at: now,
        subject: staff.who.subject.clone(),
        name: staff.who.name.clone(),
    })
    .chain(earlier)
    .take(bma_store::MAILBOX_FILE_VIEWS)
    .collect();
    let latest = forms.last().cloned();
    // The cutover's steps are in the timeline read above; the forwarding
    // audit is read only for a mailbox whose timeline has one: most have
    // none, and it is several statements on a page opened all day.
    let progress = bma_store::SwitchProgress::from_timeline(m.state, &events)?;
    let audit = if events.iter().any(|e| e.kind == EventKind::ForwardingAudited) {
        store.forwarding_audit(&address).await?
    } else {
        None
    };
    let role = staff.role();
    let whole = role >= Role::Operator;
    let mask_email = |e: &str| if whole { e.to_owned() } else { form::mask_email(e) };
    let mask_phone = |e: &str| if whole { crate::display::phone(e) } else { form::mask_phone(e) };

    let since = events.iter().rev().find(|e| e.to_state.is_some()).map_or_else(|| when(m.updated_at), |e| when(e.at));
    let contact = p.settings().campaign.contacts.for_state(m.state, m.blocked_from).clone();
    let bounces: Vec<&EventRecord> =
        events.iter().filter(|e| e.kind == EventKind::Bounce || e.details.get("status").is_some()).collect();
    let presync = events.iter().rev().find(|e| e.kind == EventKind::Presync).map(|e| {
        let d = &e.details;
        format!(
            "dernière copie le {} : {} messages, {} octets copiés, {} dossiers",
            when(e.at),
            d.get("copied").and_then(serde_json::Value::as_u64).unwrap_or(0),
            d.get("copied_bytes").and_then(serde_json::Value::as_u64).unwrap_or(0),
            d.get("folders").and_then(serde_json::Value::as_u64).unwrap_or(0)
        )
    });
    let receipt = progress.details(Step::Verify).and_then(|d| d.get("receipt")).map(|r| {
        format!(
            "{} messages, {} octets dans {} dossiers, {} manquant(s)",
            r["messages"],
            r["bytes"],
            r["folders"].as_array().map_or(0, Vec::len),
            r["missing"]
        )
    });
    let actions = StaffAction::ALL
        .iter()
        .copied()
        .filter(|a| a.on_mailbox())
        .filter(|a| allows(role, *a))
        .filter(|a| match a {
            StaffAction::Exclude => !m.excluded,
            StaffAction::Readmit => m.excluded,
            StaffAction::Block => m.state != MailboxState::Blocked && !m.state.is_terminal(),
            StaffAction::Unblock => m.state == MailboxState::Blocked,
            StaffAction::Rollback => matches!(m.state, MailboxState::Migrating | MailboxState::Migrated),
            StaffAction::Cutover => matches!(m.state, MailboxState::CutoverScheduled | MailboxState::Migrating),
            StaffAction::ResendMail2 => m.state == MailboxState::Migrated,
            StaffAction::ResendInvitation => !matches!(m.state, MailboxState::Migrating | MailboxState::Migrated),
            StaffAction::NewVerificationLink => backup.as_ref().is_some_and(|b| b.verified_at.is_none()),
            _ => true,
        })
        .map(|a| Offered {
            code: a.as_str(),
            label: a.label_fr(),
            field: match a {
                StaffAction::Pin => "pin",
                StaffAction::Priority => "priority",
                _ => "",
            },
            destructive: a.is_destructive(),
        })
        .collect();
    let page = MailboxPage {
        layout: ConsoleLayout::of(&m.address, Some(&staff)),
        csrf: staff.csrf.clone(),
        done: StaffAction::parse(&fait).ok().map(|a| format!("Action effectuée : {}.", a.label_fr())),
        address: m.address.clone(),
        name: m.name.clone(),
        kind: m.kind.label_fr(),
        fase: m.fase,
        state: m.state.label_fr(),
        state_code: m.state.as_str(),
        since,
        blocked_from: m.blocked_from.map(MailboxState::label_fr),
        wave: m.wave.map_or_else(|| "pas encore planifiée".to_owned(), bma_core::settings::date_fr),
        planning: {
            let mut parts = vec![format!("priorité {}", m.priority)];
            if let Some(pin) = m.pinned_wave {
                parts.push(format!("épinglée au {}", bma_core::settings::date_fr(pin)));
            }
            if m.excluded {
                parts.push("exclue de la planification".to_owned());
            }
            parts.join(", ")
        },
        contact_name: contact.name,
        contact_email: contact.email,
        contact_phone: contact.phone,
        next: crate::enrolment::pages::next_steps(m.state, latest.as_ref(), None),
        attention: attention.map(|(reason, since)| format!("{} (depuis le {})", reason.label_fr(), when(since))),
        forms: forms
            .iter()
            .rev()
            .map(|e| FormRow {
                version: e.version,
                at: when(e.submitted_at),
                name: format!("{} {}", e.form.given_name, e.form.family_name),
                role: form::role_label(&e.form.role),
                phone: mask_phone(&e.form.phone),
                backup: mask_email(&e.form.backup_email),
                knows_password: e.form.knows_password,
                given_by: {
                    let n = if e.identity.name.is_empty() { "?" } else { e.identity.name.as_str() };
                    if role == Role::Admin { format!("{n} (sujet {})", e.identity.subject) } else { n.to_owned() }
                },
            })
            .collect(),
        backup: backup.map(|b| match b.verified_at {
            Some(t) => format!("{} : vérifiée le {}", mask_email(&b.email), when(t)),
            None => format!("{} : lien envoyé le {}, pas encore vérifiée", mask_email(&b.email), when(b.requested_at)),
        }),
        presync,
        cutover: progress.steps.iter().map(|s| (when(s.at), s.step.label_fr())).collect(),
        receipt,
        emails: emails
            .iter()
            .rev()
            .map(|e| {
                let (status, status_code) = email_status(e, &bounces);
                EmailRow {
                    at: when(e.sent_at.unwrap_or(e.run_at)),
                    kind: e.kind.clone(),
                    recipient: if e.recipient.eq_ignore_ascii_case(&m.address) {
                        e.recipient.clone()
                    } else {
                        mask_email(&e.recipient)
                    },
                    subject: e.subject.clone(),
                    status,
                    status_code,
                }
            })
            .collect(),
        timeline: events
            .iter()
            .rev()
            .map(|e| TimelineRow {
                at: when(e.at),
                actor: e.actor.clone(),
                what: match (e.from_state, e.to_state) {
                    (Some(f), Some(t)) => format!("{} → {}", f.label_fr(), t.label_fr()),
                    (None, Some(t)) => format!("{} ({})", event_fr(e.kind), t.label_fr()),
                    _ => match e.details.get("step").and_then(|s| s.as_str()) {
                        Some(step) if e.kind == EventKind::CutoverStep => format!("{} : {step}", event_fr(e.kind)),
                        _ => event_fr(e.kind).to_owned(),
                    },
                },
                reason: e.reason.clone(),
            })
            .collect(),
        actions,
        forwarding: audit.map(|a| ForwardView {
            at: when(a.audited_at),
            active: a.active_script.clone().unwrap_or_else(|| "aucun".to_owned()),
            outside: a.forwards_outside(),
            rows: a
                .findings
                .iter()
                .map(|f| ForwardRow {
                    script: f.script.clone(),
                    line: f.line,
                    what: format!("{}{}", f.detail, if f.active { "" } else { " (script inactif)" }),
                    target: if f.reach == Some(bma_store::ForwardingReach::External) {
                        mask_email(&f.target)
                    } else {
                        f.target.clone()
                    },
                    reach: reach_fr(f.reach),
                })
                .collect(),
        }),
        views: views.iter().map(|v| format!("{} — {}", when(v.at), v.name)).collect(),
    };
    Ok(render(StatusCode::OK, &page))
}
