//! The rows an erasure or a purge looks at (outbox, events, forms,
//! verifications, sessions), what to write instead (pure), and the plan
//! that gathers them.

use std::collections::BTreeMap;

use super::needles::Needles;
use super::{ERASED, ERASED_ADDRESS, PersonSession, PersonVerification, Scrubbed};
use crate::enrollment::Enrollment;
use crate::mailbox::EventRecord;

/// An outbox row as scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmailRow {
    pub(super) id: i64,
    pub(super) mailbox_id: Option<i64>,
    pub(super) mailbox: Option<String>,
    pub(super) kind: String,
    pub(super) key: String,
    pub(super) recipient: String,
    pub(super) envelope_from: String,
    pub(super) subject: String,
    pub(super) raw: String,
    pub(super) state: String,
    pub(super) last_error: Option<String>,
    pub(super) queued_at: i64,
    pub(super) sent_at: Option<i64>,
}

/// What to write on an outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmailChange {
    pub(super) id: i64,
    /// The state read (the update is conditional on it).
    pub(super) was: String,
    pub(super) state: String,
    pub(super) key: String,
    pub(super) recipient: String,
    pub(super) envelope_from: String,
    pub(super) subject: String,
    pub(super) raw: String,
    pub(super) last_error: Option<String>,
}

/// Whether an email concerns them: it is tied to their data (`tied`: sent
/// with one of their form versions, or of a mailbox being purged), it is
/// addressed to them, or it names them.
pub(super) fn concerns(row: &EmailRow, needles: &Needles, tied: bool) -> bool {
    tied || needles.is_address(&row.recipient) || scrub_email(row, needles, false).is_some()
}

/// What becomes of an outbox row: `None` if it does not concern them or is
/// already scrubbed. A pending email that concerns them is cancelled; the
/// body of any that concerns them is dropped; their addresses and texts
/// are replaced in every column (a key that changes becomes `erased:<id>`,
/// keys are unique). The caller refuses a row being sent.
pub(super) fn scrub_email(row: &EmailRow, needles: &Needles, tied: bool) -> Option<EmailChange> {
    let theirs = needles.is_address(&row.recipient);
    let redact = |t: &str| needles.redact(t).unwrap_or_else(|| t.to_owned());
    let mentioned = needles.redact(&row.raw).is_some();
    let whole = tied || theirs || mentioned;
    let state = if whole && row.state == "pending" { "cancelled".to_owned() } else { row.state.clone() };
    let raw = if whole { String::new() } else { row.raw.clone() };
    let recipient = if theirs { ERASED_ADDRESS.to_owned() } else { redact(&row.recipient) };
    let key = if needles.redact(&row.key).is_some() { format!("erased:{}", row.id) } else { row.key.clone() };
    let mut last_error = row.last_error.as_deref().map(redact);
    if state == "cancelled" && row.state != "cancelled" {
        last_error = Some("cancelled: personal data erased".to_owned());
    }
    let change = EmailChange {
        id: row.id,
        was: row.state.clone(),
        state,
        key,
        recipient,
        envelope_from: redact(&row.envelope_from),
        subject: redact(&row.subject),
        raw,
        last_error,
    };
    let same = change.state == row.state
        && change.key == row.key
        && change.recipient == row.recipient
        && change.envelope_from == row.envelope_from
        && change.subject == row.subject
        && change.raw == row.raw
        && change.last_error == row.last_error;
    (!same).then_some(change)
}

/// An event row as scanned.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EventRow {
    pub(super) record: EventRecord,
    pub(super) mailbox: Option<String>,
}

/// What to write on an event row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EventChange {
    pub(super) id: i64,
    pub(super) mailbox_id: Option<i64>,
    pub(super) actor: String,
    pub(super) reason: String,
    pub(super) details: String,
}

/// The event with the person replaced in who, why and the details; `None`
/// if it does not name them.
pub(super) fn scrub_event(
    actor: &str,
    reason: &str,
    details: &str,
    needles: &Needles,
) -> Option<(String, String, String)> {
    let new_actor = needles.redact_actor(actor);
    let new_reason = needles.redact(reason);
    let new_details = match serde_json::from_str::<serde_json::Value>(details) {
        Ok(v) => needles.redact_json(&v).map(|v| v.to_string()),
        Err(_) => needles.redact(details),
    };
    if new_actor.is_none() && new_reason.is_none() && new_details.is_none() {
        return None;
    }
    Some((
        new_actor.unwrap_or_else(|| actor.to_owned()),
        new_reason.unwrap_or_else(|| reason.to_owned()),
        new_details.unwrap_or_else(|| details.to_owned()),
    ))
}

/// A form version as scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FormRow {
    pub(super) id: i64,
    pub(super) mailbox_id: i64,
    pub(super) mailbox: String,
    pub(super) enrollment: Enrollment,
}

impl FormRow {
    /// Whether its personal columns are already replaced.
    pub(super) fn erased(&self) -> bool {
        let (f, i) = (&self.enrollment.form, &self.enrollment.identity);
        [&f.family_name, &f.given_name, &f.phone, &i.subject, &i.name, &i.given_name, &i.family_name]
            .iter()
            .all(|t| t.as_str() == ERASED)
            && f.backup_email == ERASED_ADDRESS
            && i.email == ERASED_ADDRESS
    }
}

/// A backup verification as scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct VerificationRow {
    pub(super) id: i64,
    pub(super) mailbox_id: i64,
    pub(super) public: PersonVerification,
}

/// A session as scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SessionRow {
    pub(super) id_hash: String,
    pub(super) public: PersonSession,
}

impl SessionRow {
    pub(super) fn concerns(&self, needles: &Needles) -> bool {
        let by_identity = self
            .public
            .identity
            .as_ref()
            .is_some_and(|i| needles.is_subject(&i.subject) || needles.is_address(&i.email));
        by_identity || self.public.draft.as_deref().is_some_and(|d| needles.redact(d).is_some())
    }
}

/// Everything found about a person, or in a mailbox being purged, and
/// what to write instead.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) needles: Needles,
    pub(super) forms: Vec<FormRow>,
    pub(super) verifications: Vec<VerificationRow>,
    pub(super) sessions: Vec<SessionRow>,
    /// Emails that concern them, with the change (`None`: nothing to change).
    pub(super) emails: Vec<(EmailRow, Option<EmailChange>)>,
    pub(super) events: Vec<(EventRow, EventChange)>,
    /// Console sessions to delete (a staff member's).
    pub(super) staff_sessions: Vec<super::staff::StaffSessionRow>,
    /// The mailbox purged, whose console view log goes with it, and its size.
    pub(super) staff_views_of: Option<(i64, usize)>,
}

impl Plan {
    pub(super) fn counts(&self) -> Scrubbed {
        let changes = || self.emails.iter().filter_map(|(_, c)| c.as_ref());
        Scrubbed {
            forms: self.forms.iter().filter(|f| !f.erased()).count(),
            verifications: self.verifications.len(),
            sessions: self.sessions.len(),
            emails_cancelled: changes().filter(|c| c.state == "cancelled" && c.was != "cancelled").count(),
            emails_redacted: changes().filter(|c| !(c.state == "cancelled" && c.was != "cancelled")).count(),
            events_redacted: self.events.len(),
            staff_sessions: self.staff_sessions.len(),
            staff_views: self.staff_views_of.map_or(0, |(_, n)| n),
        }
    }

    /// The mailboxes it touches, by id.
    pub(super) fn mailboxes(&self) -> BTreeMap<i64, String> {
        let mut out = BTreeMap::new();
        for f in self.forms.iter().filter(|f| !f.erased()) {
            out.insert(f.mailbox_id, f.mailbox.clone());
        }
        for v in &self.verifications {
            out.insert(v.mailbox_id, v.public.mailbox.clone());
        }
        for (e, c) in &self.emails {
            if let (Some(id), Some(m), Some(_)) = (e.mailbox_id, &e.mailbox, c) {
                out.insert(id, m.clone());
            }
        }
        for (e, _) in &self.events {
            if let (Some(id), Some(m)) = (e.record.mailbox_id, &e.mailbox) {
                out.insert(id, m.clone());
            }
        }
        out
    }
}
