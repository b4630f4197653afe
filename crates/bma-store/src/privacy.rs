//! Personal data (GDPR): everything the store holds about one person
//! ([`Store::export_person`], the right of access), its erasure on request
//! ([`Store::erase_person`], the right to erasure) and its removal at the
//! end of the retention period ([`Store::purge_personal_data`]).
//!
//! A person is named by their identity subject (Cerbère EDU) or by an
//! email address of theirs (a backup address, the identity's address). The
//! forms that name them are found first (by subject, or by backup or
//! identity address, compared without ASCII case); what those forms say
//! (their full names both ways round, their phones, their addresses, their
//! subjects) are the *needles* looked for everywhere else: portal sessions
//! (their identity, a form kept in `draft`), backup verifications, the
//! outbox (recipients, VERP return paths, subjects, keys, errors, bodies)
//! and the event log (the actor `manager:<subject>`, reasons, details).
//! Matching is by substring, ignoring ASCII case; a needle shorter than
//! [`MIN_NEEDLE`] characters (a short subject, a two-letter name) only
//! matches a whole value, never inside another text.
//!
//! Rules:
//! - nothing is deleted from the history of a mailbox: its events stay,
//!   the person in them replaced by [`ERASED`] (text) or [`ERASED_ADDRESS`]
//!   (an address at the reserved `.invalid` TLD, which no mail reaches);
//!   form versions stay with every personal column replaced (the role and
//!   whether the password was known are about the mailbox and stay);
//! - sessions and backup verifications of the person are deleted (a
//!   session is a login, a verification a hashed code for an address that
//!   no longer exists here);
//! - an email of theirs still pending is cancelled (state `cancelled`, its
//!   body dropped): nothing is sent to an erased person; an email being
//!   sent right now makes the erasure a [`StoreError::Conflict`] (try
//!   again once its sender is done); an email already sent, dead or
//!   unconfirmed keeps its row with the person replaced and its body (the
//!   header, by then) dropped;
//! - an erasure is one transaction with a `personal_data_erased` event on
//!   each mailbox it touched (a campaign event if it touched none), whose
//!   reason is the operator's with the person replaced too; a purge is one
//!   transaction per mailbox with its `personal_data_purged` event;
//! - the event log is otherwise append-only: the `UPDATE events` here are
//!   the only ones of the crate, and they rewrite who, never what happened
//!   or when.

use std::collections::{BTreeMap, BTreeSet};

use bma_core::lifecycle::{Actor, State};
use bma_core::{EventKind, form::EnrollmentForm, form::ManagerIdentity};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use crate::enrollment::Enrollment;
use crate::events::{Event, record_many};
use crate::mailbox::{EventRecord, event_from_row, parse_state};
use crate::{Store, StoreError, from_millis, to_millis};

/// What replaces a person's text (a name, a phone, a subject).
pub const ERASED: &str = "[effacé]";

/// What replaces a person's email address: at the `.invalid` TLD reserved
/// by RFC 2606, so that nothing can ever be delivered to it.
pub const ERASED_ADDRESS: &str = "efface@bma.invalid";

/// [`ERASED_ADDRESS`] as the tag of a VERP return path (`local=domain`).
const ERASED_VERP: &str = "efface=bma.invalid";

/// Needles shorter than this (in characters) match whole values only.
pub const MIN_NEEDLE: usize = 6;

/// Rows read per statement when the outbox and the event log are scanned.
const PAGE: i64 = 500;

/// Who the request is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Person {
    /// Their identity subject at the identity provider (exact).
    Subject(String),
    /// An email address of theirs (any ASCII case).
    Address(String),
}

impl Person {
    /// A subject, trimmed; `None` if empty.
    pub fn subject(text: &str) -> Option<Person> {
        let s = text.trim();
        (!s.is_empty()).then(|| Person::Subject(s.to_owned()))
    }

    /// An address, trimmed; `None` unless it looks like one (`x@y`).
    pub fn address(text: &str) -> Option<Person> {
        let a = text.trim();
        let ok =
            a.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !a.contains(char::is_whitespace));
        ok.then(|| Person::Address(a.to_owned()))
    }
}

impl std::fmt::Display for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Person::Subject(s) => write!(f, "subject {s}"),
            Person::Address(a) => write!(f, "address {a}"),
        }
    }
}

/// One version of a form that names the person, with its mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonForm {
    /// The BMA.
    pub mailbox: String,
    /// The version, what it says and who gave it.
    #[serde(flatten)]
    pub enrollment: Enrollment,
}

/// A verification of one of their addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonVerification {
    /// The BMA it is the backup address of.
    pub mailbox: String,
    /// The address.
    pub email: String,
    /// When the last link was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// When it was verified.
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
}

/// A portal session of theirs (its id, CSRF token and ID token are
/// credentials and are not exported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonSession {
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Who is logged in.
    pub identity: Option<ManagerIdentity>,
    /// The form it keeps for after a new login, as posted.
    pub draft: Option<String>,
}

/// An email to them or about them (its body is not exported: while it
/// waits it holds a form link, a credential of the BMA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonEmail {
    /// Outbox id.
    pub id: i64,
    /// The BMA it concerns.
    pub mailbox: Option<String>,
    /// `confirmation`, `backup_verification`, …
    pub kind: String,
    /// RCPT TO.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// `pending`, `sending`, `sent`, `dead`, `unconfirmed`, `cancelled`.
    pub state: String,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    /// When it was sent.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

/// An event that names them, with its mailbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonEvent {
    /// The BMA, if the event concerns one.
    pub mailbox: Option<String>,
    /// The event.
    #[serde(flatten)]
    pub event: EventRecord,
}

/// Everything the store holds about one person (the right of access).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonalData {
    /// Who was asked for.
    pub person: Person,
    /// Form versions where they are the manager, the backup address or the one who logged in.
    pub forms: Vec<PersonForm>,
    /// Verifications of their addresses.
    pub backup_verifications: Vec<PersonVerification>,
    /// Their portal sessions.
    pub sessions: Vec<PersonSession>,
    /// Emails addressed to them or about them.
    pub emails: Vec<PersonEmail>,
    /// Events that name them.
    pub events: Vec<PersonEvent>,
    /// Their helpdesk console sessions (a staff member).
    pub staff_sessions: Vec<crate::privacy_staff::PersonStaffSession>,
    /// The console's views they made, and the views of the mailboxes whose form they filled.
    pub staff_views: Vec<crate::privacy_staff::PersonStaffView>,
}

impl PersonalData {
    /// Whether the store holds nothing about them.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
            && self.backup_verifications.is_empty()
            && self.sessions.is_empty()
            && self.emails.is_empty()
            && self.events.is_empty()
            && self.staff_sessions.is_empty()
            && self.staff_views.is_empty()
    }
}

/// What an erasure or a purge changed (or, dry, would change).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scrubbed {
    /// Form versions whose personal columns were replaced.
    pub forms: usize,
    /// Backup verifications deleted.
    pub verifications: usize,
    /// Portal sessions deleted.
    pub sessions: usize,
    /// Pending emails cancelled.
    pub emails_cancelled: usize,
    /// Other emails with the person replaced and the body dropped.
    pub emails_redacted: usize,
    /// Events with the person replaced.
    pub events_redacted: usize,
    /// Helpdesk console sessions deleted (a staff member's erasure).
    pub staff_sessions: usize,
    /// Entries of the console's view log deleted (a mailbox's purge).
    pub staff_views: usize,
}

impl Scrubbed {
    /// Whether nothing was (or would be) changed.
    pub fn is_empty(&self) -> bool {
        *self == Scrubbed::default()
    }
}

/// What [`Store::erase_person`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    /// The BMAs whose data named them (each got a `personal_data_erased` event).
    pub mailboxes: Vec<String>,
    /// What changed.
    #[serde(flatten)]
    pub scrubbed: Scrubbed,
}

/// How long personal data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days kept after a mailbox's migration, or after the campaign's end.
    pub days: u32,
    /// The campaign's last day.
    pub campaign_end: Date,
}

/// Why a mailbox's personal data is due to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "after")]
pub enum PurgeReason {
    /// Its migration, at this time.
    Migration {
        /// When it became `migrated`.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The campaign's end.
    CampaignEnd,
}

/// One mailbox whose personal data a purge removed (or would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeItem {
    /// The BMA.
    pub mailbox: String,
    /// Since when its data may go.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// After what.
    pub reason: PurgeReason,
    /// What went (or would go).
    #[serde(flatten)]
    pub scrubbed: Scrubbed,
}

/// The instant the personal data of a mailbox is due to go: `days` after
/// its migration if it is migrated, else (and at the latest) `days` after
/// the end of the campaign's last day (midnight UTC after it).
pub fn due_at(retention: &Retention, migrated_at: Option<OffsetDateTime>) -> (OffsetDateTime, PurgeReason) {
    let keep = time::Duration::days(i64::from(retention.days));
    let end = retention.campaign_end.next_day().unwrap_or(retention.campaign_end).midnight().assume_utc();
    match migrated_at {
        Some(at) if at < end => (at + keep, PurgeReason::Migration { at }),
        _ => (end + keep, PurgeReason::CampaignEnd),
    }
}

// ---------------------------------------------------------------------------
// Needles: what names a person, and its replacement (pure).

/// What to look for and what to put instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Needles {
    /// Identity subjects (exact).
    subjects: BTreeSet<String>,
    /// Addresses, ASCII-lowercased.
    addresses: BTreeSet<String>,
    /// (needle, replacement), longest first.
    texts: Vec<(String, &'static str)>,
}

/// Finds `needle` in `hay` ignoring ASCII case, from byte `from`.
fn find_ci(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (from..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

impl Needles {
    fn add_text(&mut self, text: &str, replacement: &'static str) {
        let t = text.trim();
        if t.is_empty() || t == ERASED || t.eq_ignore_ascii_case(ERASED_ADDRESS) || t.eq_ignore_ascii_case(ERASED_VERP)
        {
            return;
        }
        if !self.texts.iter().any(|(n, _)| n.eq_ignore_ascii_case(t)) {
            self.texts.push((t.to_owned(), replacement));
            // Longest first: an address before a name it contains.
            self.texts.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        }
    }

    /// A subject of theirs.
    pub(crate) fn subject(&mut self, s: &str) {
        let s = s.trim();
        if !s.is_empty() && s != ERASED {
            self.subjects.insert(s.to_owned());
            self.add_text(s, ERASED);
        }
    }

    /// An address of theirs (and its VERP form, `local=domain`).
    pub(crate) fn address(&mut self, a: &str) {
        let a = a.trim();
        if a.is_empty() || a.eq_ignore_ascii_case(ERASED_ADDRESS) || !a.contains('@') {
            return;
        }
        self.addresses.insert(a.to_ascii_lowercase());
        self.add_text(a, ERASED_ADDRESS);
        self.add_text(&a.replacen('@', "=", 1), ERASED_VERP);
    }

    /// A name or a phone of theirs.
    pub(crate) fn text(&mut self, t: &str) {
        self.add_text(t, ERASED);
    }

    /// Everything a form version says about who gave it and who manages the mailbox.
    pub(crate) fn form(&mut self, f: &EnrollmentForm, id: &ManagerIdentity) {
        self.subject(&id.subject);
        self.address(&f.backup_email);
        self.address(&id.email);
        for (a, b) in [(&f.given_name, &f.family_name), (&id.given_name, &id.family_name)] {
            if !a.trim().is_empty() && !b.trim().is_empty() {
                self.text(&format!("{} {}", a.trim(), b.trim()));
                self.text(&format!("{} {}", b.trim(), a.trim()));
            }
        }
        self.text(&id.name);
        self.text(&f.phone);
    }

    /// Whether there is nothing to look for.
    pub(crate) fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Whether `a` is one of their addresses.
    pub(crate) fn is_address(&self, a: &str) -> bool {
        self.addresses.contains(&a.trim().to_ascii_lowercase())
    }

    /// Whether `s` is one of their subjects.
    pub(crate) fn is_subject(&self, s: &str) -> bool {
        self.subjects.contains(s)
    }

    /// `text` with every needle replaced, or `None` if none is in it. A
    /// short needle replaces only a whole value.
    pub(crate) fn redact(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for (needle, replacement) in &self.texts {
            let current = out.as_deref().unwrap_or(text);
            if needle.chars().count() < MIN_NEEDLE {
                if current.trim().eq_ignore_ascii_case(needle) {
                    out = Some((*replacement).to_owned());
                }
                continue;
            }
            let Some(mut at) = find_ci(current, needle, 0) else { continue };
            let mut next = String::with_capacity(current.len());
            let mut done = 0;
            loop {
                next.push_str(&current[done..at]);
                next.push_str(replacement);
                done = at + needle.len();
                match find_ci(current, needle, done) {
                    Some(i) => at = i,
                    None => break,
                }
            }
            next.push_str(&current[done..]);
            out = Some(next);
        }
        out
    }

    /// `value` with every string in it redacted, or `None` if unchanged.
    pub(crate) fn redact_json(&self, value: &serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match value {
            Value::String(s) => self.redact(s).map(Value::String),
            Value::Array(items) => {
                let new: Vec<Option<Value>> = items.iter().map(|v| self.redact_json(v)).collect();
                new.iter().any(Option::is_some).then(|| {
                    Value::Array(new.into_iter().zip(items).map(|(n, old)| n.unwrap_or_else(|| old.clone())).collect())
                })
            }
            Value::Object(map) => {
                let mut changed = false;
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let key = self.redact(k).inspect(|_| changed = true).unwrap_or_else(|| k.clone());
                    let val = self.redact_json(v).inspect(|_| changed = true).unwrap_or_else(|| v.clone());
                    out.insert(key, val);
                }
                changed.then_some(Value::Object(out))
            }
            _ => None,
        }
    }

    /// The actor text with a subject of theirs replaced.
    fn redact_actor(&self, actor: &str) -> Option<String> {
        match Actor::from_text(actor) {
            Actor::Manager(s) if self.is_subject(&s) => Some(Actor::Manager(ERASED.to_owned()).to_text()),
            _ => self.redact(actor),
        }
    }
}

// ---------------------------------------------------------------------------
// The rows looked at, and what to write instead (pure).

/// An outbox row as scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmailRow {
    id: i64,
    mailbox_id: Option<i64>,
    mailbox: Option<String>,
    kind: String,
    key: String,
    recipient: String,
    envelope_from: String,
    subject: String,
    raw: String,
    state: String,
    last_error: Option<String>,
    queued_at: i64,
    sent_at: Option<i64>,
}

/// What to write on an outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmailChange {
    id: i64,
    /// The state read (the update is conditional on it).
    was: String,
    state: String,
    key: String,
    recipient: String,
    envelope_from: String,
    subject: String,
    raw: String,
    last_error: Option<String>,
}

/// Whether an email concerns them: it is tied to their data (`tied`: sent
/// with one of their form versions, or of a mailbox being purged), it is
/// addressed to them, or it names them.
fn concerns(row: &EmailRow, needles: &Needles, tied: bool) -> bool {
    tied || needles.is_address(&row.recipient) || scrub_email(row, needles, false).is_some()
}

/// What becomes of an outbox row: `None` if it does not concern them or is
/// already scrubbed. A pending email that concerns them is cancelled; the
/// body of any that concerns them is dropped; their addresses and texts
/// are replaced in every column (a key that changes becomes `erased:<id>`,
/// keys are unique). The caller refuses a row being sent.
fn scrub_email(row: &EmailRow, needles: &Needles, tied: bool) -> Option<EmailChange> {
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
struct EventRow {
    record: EventRecord,
    mailbox: Option<String>,
}

/// What to write on an event row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EventChange {
    id: i64,
    mailbox_id: Option<i64>,
    actor: String,
    reason: String,
    details: String,
}

/// The event with the person replaced in who, why and the details; `None`
/// if it does not name them.
fn scrub_event(actor: &str, reason: &str, details: &str, needles: &Needles) -> Option<(String, String, String)> {
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
struct FormRow {
    id: i64,
    mailbox_id: i64,
    mailbox: String,
    enrollment: Enrollment,
}

impl FormRow {
    /// Whether its personal columns are already replaced.
    fn erased(&self) -> bool {
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
struct VerificationRow {
    id: i64,
    mailbox_id: i64,
    public: PersonVerification,
}

/// A session as scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionRow {
    id_hash: String,
    public: PersonSession,
}

impl SessionRow {
    fn concerns(&self, needles: &Needles) -> bool {
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
struct Plan {
    needles: Needles,
    forms: Vec<FormRow>,
    verifications: Vec<VerificationRow>,
    sessions: Vec<SessionRow>,
    /// Emails that concern them, with the change (`None`: nothing to change).
    emails: Vec<(EmailRow, Option<EmailChange>)>,
    events: Vec<(EventRow, EventChange)>,
    /// Console sessions to delete (a staff member's).
    staff_sessions: Vec<crate::privacy_staff::StaffSessionRow>,
    /// The mailbox purged, whose console view log goes with it, and its size.
    staff_views_of: Option<(i64, usize)>,
}

impl Plan {
    fn counts(&self) -> Scrubbed {
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
    fn mailboxes(&self) -> BTreeMap<i64, String> {
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

// ---------------------------------------------------------------------------
// Reading.

const FORM_SELECT: &str = "SELECT e.id, e.mailbox_id, m.address AS mailbox, e.version, e.submitted_at, e.family_name, \
     e.given_name, e.phone, e.role, e.backup_email, e.knows_password, e.id_subject, e.id_name, e.id_given_name, \
     e.id_family_name, e.id_email FROM enrollments e JOIN mailboxes m ON m.id = e.mailbox_id";

fn form_from_row(r: &AnyRow) -> Result<FormRow, StoreError> {
    let text = |c: &str| -> Result<String, StoreError> { Ok(r.try_get(c)?) };
    Ok(FormRow {
        id: r.try_get("id")?,
        mailbox_id: r.try_get("mailbox_id")?,
        mailbox: text("mailbox")?,
        enrollment: Enrollment {
            version: r.try_get("version")?,
            submitted_at: from_millis(r.try_get("submitted_at")?),
            form: EnrollmentForm {
                family_name: text("family_name")?,
                given_name: text("given_name")?,
                phone: text("phone")?,
                role: text("role")?,
                backup_email: text("backup_email")?,
                knows_password: r.try_get::<i64, _>("knows_password")? != 0,
            },
            identity: ManagerIdentity {
                subject: text("id_subject")?,
                name: text("id_name")?,
                given_name: text("id_given_name")?,
                family_name: text("id_family_name")?,
                email: text("id_email")?,
            },
        },
    })
}

async fn forms_where(conn: &mut AnyConnection, filter: &str, id: Option<i64>) -> Result<Vec<FormRow>, StoreError> {
    let sql = format!("{FORM_SELECT} {filter} ORDER BY e.mailbox_id, e.version");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(id) = id {
        q = q.bind(id);
    }
    q.fetch_all(&mut *conn).await?.iter().map(form_from_row).collect()
}

async fn verifications(conn: &mut AnyConnection, mailbox_id: Option<i64>) -> Result<Vec<VerificationRow>, StoreError> {
    let sql = "SELECT v.id, v.mailbox_id, m.address AS mailbox, v.email, v.requested_at, v.verified_at \
               FROM backup_verifications v JOIN mailboxes m ON m.id = v.mailbox_id \
               WHERE $1 IS NULL OR v.mailbox_id = $1 ORDER BY v.id";
    let rows = sqlx::query(sql).bind(mailbox_id).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(VerificationRow {
                id: r.try_get("id")?,
                mailbox_id: r.try_get("mailbox_id")?,
                public: PersonVerification {
                    mailbox: r.try_get("mailbox")?,
                    email: r.try_get("email")?,
                    requested_at: from_millis(r.try_get("requested_at")?),
                    verified_at: r.try_get::<Option<i64>, _>("verified_at")?.map(from_millis),
                },
            })
        })
        .collect()
}

async fn sessions(conn: &mut AnyConnection) -> Result<Vec<SessionRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id_hash, created_at, expires_at, id_subject, id_name, id_given_name, id_family_name, id_email, draft \
         FROM portal_sessions ORDER BY created_at",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let text =
                |c: &str| -> Result<String, StoreError> { Ok(r.try_get::<Option<String>, _>(c)?.unwrap_or_default()) };
            let identity = match r.try_get::<Option<String>, _>("id_subject")? {
                Some(subject) => Some(ManagerIdentity {
                    subject,
                    name: text("id_name")?,
                    given_name: text("id_given_name")?,
                    family_name: text("id_family_name")?,
                    email: text("id_email")?,
                }),
                None => None,
            };
            Ok(SessionRow {
                id_hash: r.try_get("id_hash")?,
                public: PersonSession {
                    created_at: from_millis(r.try_get("created_at")?),
                    expires_at: from_millis(r.try_get("expires_at")?),
                    identity,
                    draft: r.try_get("draft")?,
                },
            })
        })
        .collect()
}

/// The outbox, page by page (`mailbox_id`: its rows and those of no mailbox only).
async fn emails(conn: &mut AnyConnection, mailbox_id: Option<i64>) -> Result<Vec<EmailRow>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0_i64;
    loop {
        let rows = sqlx::query(
            "SELECT o.id, o.mailbox_id, m.address AS mailbox, o.kind, o.key, o.recipient, o.envelope_from, o.subject, \
             o.raw, o.state, o.last_error, o.queued_at, o.sent_at FROM outbox o LEFT JOIN mailboxes m ON m.id = o.mailbox_id \
             WHERE o.id > $1 AND ($2 IS NULL OR o.mailbox_id = $2 OR o.mailbox_id IS NULL) ORDER BY o.id LIMIT $3",
        )
        .bind(after)
        .bind(mailbox_id)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            let row = EmailRow {
                id: r.try_get("id")?,
                mailbox_id: r.try_get("mailbox_id")?,
                mailbox: r.try_get("mailbox")?,
                kind: r.try_get("kind")?,
                key: r.try_get("key")?,
                recipient: r.try_get("recipient")?,
                envelope_from: r.try_get("envelope_from")?,
                subject: r.try_get("subject")?,
                raw: r.try_get("raw")?,
                state: r.try_get("state")?,
                last_error: r.try_get("last_error")?,
                queued_at: r.try_get("queued_at")?,
                sent_at: r.try_get("sent_at")?,
            };
            after = row.id;
            out.push(row);
        }
        if i64::try_from(rows.len()).unwrap_or(0) < PAGE {
            return Ok(out);
        }
    }
}

/// The events that name them, page by page (`mailbox_id`: its events and
/// those of no mailbox only), with what to write instead.
async fn events_naming(
    conn: &mut AnyConnection,
    needles: &Needles,
    mailbox_id: Option<i64>,
) -> Result<Vec<(EventRow, EventChange)>, StoreError> {
    let mut out = Vec::new();
    if needles.is_empty() {
        return Ok(out);
    }
    let mut after = 0_i64;
    loop {
        let rows = sqlx::query(
            "SELECT e.*, m.address AS mailbox FROM events e LEFT JOIN mailboxes m ON m.id = e.mailbox_id \
             WHERE e.id > $1 AND ($2 IS NULL OR e.mailbox_id = $2 OR e.mailbox_id IS NULL) ORDER BY e.id LIMIT $3",
        )
        .bind(after)
        .bind(mailbox_id)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            after = id;
            let actor: String = r.try_get("actor")?;
            let reason: String = r.try_get("reason")?;
            let details: String = r.try_get("details")?;
            if let Some((actor, reason, new_details)) = scrub_event(&actor, &reason, &details, needles) {
                let record = event_from_row(r)?;
                let change = EventChange { id, mailbox_id: record.mailbox_id, actor, reason, details: new_details };
                out.push((EventRow { record, mailbox: r.try_get("mailbox")? }, change));
            }
        }
        if i64::try_from(rows.len()).unwrap_or(0) < PAGE {
            return Ok(out);
        }
    }
}

/// What the store holds about `person`, and what erasing it would write.
async fn plan_for_person(conn: &mut AnyConnection, person: &Person) -> Result<Plan, StoreError> {
    let mut needles = Needles::default();
    match person {
        Person::Subject(s) => needles.subject(s),
        Person::Address(a) => needles.address(a),
    }
    let all_forms = forms_where(conn, "", None).await?;
    let forms: Vec<FormRow> = all_forms
        .into_iter()
        .filter(|f| {
            let (form, id) = (&f.enrollment.form, &f.enrollment.identity);
            match person {
                Person::Subject(s) => id.subject == *s,
                Person::Address(a) => form.backup_email.eq_ignore_ascii_case(a) || id.email.eq_ignore_ascii_case(a),
            }
        })
        .collect();
    for f in &forms {
        needles.form(&f.enrollment.form, &f.enrollment.identity);
    }
    // The emails queued with one of their versions (the confirmation, the
    // verification, the notices of a change): same mailbox, same instant.
    let tied: BTreeSet<(i64, i64)> =
        forms.iter().map(|f| (f.mailbox_id, to_millis(f.enrollment.submitted_at))).collect();
    let verifications =
        verifications(conn, None).await?.into_iter().filter(|v| needles.is_address(&v.public.email)).collect();
    let sessions = sessions(conn).await?.into_iter().filter(|s| s.concerns(&needles)).collect();
    let mut found = Vec::new();
    for e in emails(conn, None).await? {
        let is_tied = e.mailbox_id.is_some_and(|m| tied.contains(&(m, e.queued_at)));
        if concerns(&e, &needles, is_tied) {
            let change = scrub_email(&e, &needles, is_tied);
            found.push((e, change));
        }
    }
    let events = events_naming(conn, &needles, None).await?;
    let staff_sessions = crate::privacy_staff::sessions_of(conn, person).await?;
    Ok(Plan { needles, forms, verifications, sessions, emails: found, events, staff_sessions, staff_views_of: None })
}

/// What a purge of one mailbox would write: every form version of it,
/// its verifications, the sessions of those who filled its form, its
/// emails (bodies dropped, addresses other than the BMA's replaced, any
/// still pending cancelled), its events and the campaign's that name them.
async fn plan_for_mailbox(conn: &mut AnyConnection, mailbox_id: i64, address: &str) -> Result<Plan, StoreError> {
    let mut needles = Needles::default();
    let forms = forms_where(conn, "WHERE e.mailbox_id = $1", Some(mailbox_id)).await?;
    for f in forms.iter().filter(|f| !f.erased()) {
        needles.form(&f.enrollment.form, &f.enrollment.identity);
    }
    let verifications = verifications(conn, Some(mailbox_id)).await?;
    for v in &verifications {
        needles.address(&v.public.email);
    }
    let all = emails(conn, Some(mailbox_id)).await?;
    for e in all.iter().filter(|e| e.mailbox_id == Some(mailbox_id)) {
        if !e.recipient.eq_ignore_ascii_case(address) {
            needles.address(&e.recipient);
        }
    }
    let sessions = sessions(conn).await?.into_iter().filter(|s| s.concerns(&needles)).collect();
    let mut found = Vec::new();
    for e in all {
        let own = e.mailbox_id == Some(mailbox_id);
        if own && e.state == "sending" {
            // Left for a later purge: its sender holds it.
            continue;
        }
        if concerns(&e, &needles, own) {
            let change = scrub_email(&e, &needles, own);
            found.push((e, change));
        }
    }
    let events = events_naming(conn, &needles, Some(mailbox_id)).await?;
    let views = crate::privacy_staff::views_of_mailbox(conn, mailbox_id).await?;
    Ok(Plan {
        needles,
        forms,
        verifications,
        sessions,
        emails: found,
        events,
        staff_sessions: Vec::new(),
        staff_views_of: (views > 0).then_some((mailbox_id, views)),
    })
}

// ---------------------------------------------------------------------------
// Writing.

/// Writes `plan` in the caller's transaction; a row that moved since it
/// was read (an email claimed by a sender) is a conflict.
async fn apply(conn: &mut AnyConnection, plan: &Plan, what: &str) -> Result<(), StoreError> {
    for f in plan.forms.iter().filter(|f| !f.erased()) {
        sqlx::query(
            "UPDATE enrollments SET family_name = $1, given_name = $1, phone = $1, backup_email = $2, \
             id_subject = $1, id_name = $1, id_given_name = $1, id_family_name = $1, id_email = $2 WHERE id = $3",
        )
        .bind(ERASED)
        .bind(ERASED_ADDRESS)
        .bind(f.id)
        .execute(&mut *conn)
        .await?;
    }
    for v in &plan.verifications {
        sqlx::query("DELETE FROM backup_verifications WHERE id = $1").bind(v.id).execute(&mut *conn).await?;
    }
    for s in &plan.sessions {
        sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
            .bind(s.id_hash.clone())
            .execute(&mut *conn)
            .await?;
    }
    for (row, change) in &plan.emails {
        if row.state == "sending" {
            return Err(StoreError::Conflict(format!("{what}: email {} is being sent", row.id)));
        }
        let Some(c) = change else { continue };
        let done = sqlx::query(
            "UPDATE outbox SET state = $1, key = $2, recipient = $3, envelope_from = $4, subject = $5, raw = $6, \
             last_error = $7, lease_owner = NULL, lease_until = NULL WHERE id = $8 AND state = $9",
        )
        .bind(c.state.clone())
        .bind(c.key.clone())
        .bind(c.recipient.clone())
        .bind(c.envelope_from.clone())
        .bind(c.subject.clone())
        .bind(c.raw.clone())
        .bind(c.last_error.clone())
        .bind(c.id)
        .bind(c.was.clone())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("{what}: email {} changed meanwhile", c.id)));
        }
    }
    for (_, c) in &plan.events {
        sqlx::query("UPDATE events SET actor = $1, reason = $2, details = $3 WHERE id = $4")
            .bind(c.actor.clone())
            .bind(c.reason.clone())
            .bind(c.details.clone())
            .bind(c.id)
            .execute(&mut *conn)
            .await?;
    }
    crate::privacy_staff::delete(conn, &plan.staff_sessions, plan.staff_views_of.map(|(id, _)| id)).await?;
    Ok(())
}

/// Takes SQLite's write lock at the start of a transaction (a no-op
/// statement on PostgreSQL), so what is read is not stale when written.
async fn write_lock(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *conn).await?;
    Ok(())
}

fn details_of(scrubbed: &Scrubbed) -> serde_json::Value {
    serde_json::to_value(scrubbed).unwrap_or_else(|_| serde_json::json!({}))
}

impl Store {
    /// Everything the store holds about `person` (GDPR article 15): the
    /// form versions that name them, the verifications of their addresses,
    /// their portal sessions, the emails to them or about them, the events
    /// that name them.
    pub async fn export_person(&self, person: &Person) -> Result<PersonalData, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let plan = plan_for_person(&mut conn, person).await?;
        // Views they made (as staff), and views of the mailboxes whose form they filled.
        let mut viewers: BTreeSet<String> =
            plan.staff_sessions.iter().filter_map(|s| s.public.subject.clone()).collect();
        if let Person::Subject(s) = person {
            viewers.insert(s.clone());
        }
        let theirs: BTreeSet<i64> = plan.forms.iter().map(|f| f.mailbox_id).collect();
        let staff_views = crate::privacy_staff::views(&mut conn, &viewers, &theirs).await?;
        Ok(PersonalData {
            staff_sessions: plan.staff_sessions.into_iter().map(|s| s.public).collect(),
            staff_views,
            person: person.clone(),
            forms: plan
                .forms
                .into_iter()
                .map(|f| PersonForm { mailbox: f.mailbox, enrollment: f.enrollment })
                .collect(),
            backup_verifications: plan.verifications.into_iter().map(|v| v.public).collect(),
            sessions: plan.sessions.into_iter().map(|s| s.public).collect(),
            emails: plan
                .emails
                .into_iter()
                .map(|(e, _)| PersonEmail {
                    id: e.id,
                    mailbox: e.mailbox,
                    kind: e.kind,
                    recipient: e.recipient,
                    subject: e.subject,
                    state: e.state,
                    queued_at: from_millis(e.queued_at),
                    sent_at: e.sent_at.map(from_millis),
                })
                .collect(),
            events: plan.events.into_iter().map(|(e, _)| PersonEvent { mailbox: e.mailbox, event: e.record }).collect(),
        })
    }

    /// Erases `person` (GDPR article 17) in one transaction: their form
    /// versions keep their rows with every personal column replaced, their
    /// sessions and verifications are deleted, their pending emails
    /// cancelled, the others and the events keep their rows with the
    /// person replaced; each mailbox touched gets a `personal_data_erased`
    /// event by `actor` with `reason` (the person replaced in it too).
    /// Nothing held: nothing written, an empty [`Erasure`]. An email of
    /// theirs being sent: [`StoreError::Conflict`], nothing written.
    pub async fn erase_person(
        &self,
        person: &Person,
        actor: &Actor,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Erasure, StoreError> {
        let mut tx = self.pool().begin().await?;
        write_lock(&mut tx).await?;
        let plan = plan_for_person(&mut tx, person).await?;
        let scrubbed = plan.counts();
        let mailboxes = plan.mailboxes();
        if scrubbed.is_empty() {
            return Ok(Erasure { mailboxes: Vec::new(), scrubbed });
        }
        apply(&mut tx, &plan, &person.to_string()).await?;
        let why = plan.needles.redact(reason).unwrap_or_else(|| reason.to_owned());
        let why = format!("personal data erased on request: {why}");
        let details = details_of(&scrubbed);
        let events: Vec<Event<'_>> = if mailboxes.is_empty() {
            vec![Event::note(None, EventKind::PersonalDataErased, &why, details)]
        } else {
            mailboxes
                .keys()
                .map(|id| Event::note(Some(*id), EventKind::PersonalDataErased, &why, details.clone()))
                .collect()
        };
        record_many(&mut tx, to_millis(now), &actor.to_text(), &events).await?;
        tx.commit().await?;
        Ok(Erasure { mailboxes: mailboxes.into_values().collect(), scrubbed })
    }

    /// Removes the personal data of every mailbox whose retention is over
    /// at `now` ([`due_at`]): one transaction per mailbox with its
    /// `personal_data_purged` event by `actor`. A mailbox with nothing
    /// left to remove is skipped (a purge run again writes nothing). With
    /// `dry_run`, says what would go and writes nothing. An email of the
    /// mailbox being sent is left for the next purge.
    pub async fn purge_personal_data(
        &self,
        retention: &Retention,
        now: OffsetDateTime,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<Vec<PurgeItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.address, m.state, \
             (SELECT MAX(e.at) FROM events e WHERE e.mailbox_id = m.id AND e.to_state = 'migrated') AS migrated_at \
             FROM mailboxes m ORDER BY m.address",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let address: String = r.try_get("address")?;
            let state = parse_state(&r.try_get::<String, _>("state")?)?;
            let migrated = match state {
                State::Migrated => r.try_get::<Option<i64>, _>("migrated_at")?.map(from_millis),
                _ => None,
            };
            let (due, reason) = due_at(retention, migrated);
            if due > now {
                continue;
            }
            let scrubbed = if dry_run {
                let mut conn = self.pool().acquire().await?;
                plan_for_mailbox(&mut conn, id, &address).await?.counts()
            } else {
                let mut tx = self.pool().begin().await?;
                write_lock(&mut tx).await?;
                let plan = plan_for_mailbox(&mut tx, id, &address).await?;
                let scrubbed = plan.counts();
                if scrubbed.is_empty() {
                    continue;
                }
                apply(&mut tx, &plan, &address).await?;
                let why = match reason {
                    PurgeReason::Migration { at } => {
                        format!("retention over: {} days after its migration on {}", retention.days, at.date())
                    }
                    PurgeReason::CampaignEnd => {
                        format!(
                            "retention over: {} days after the campaign's end on {}",
                            retention.days, retention.campaign_end
                        )
                    }
                };
                let event = Event::note(Some(id), EventKind::PersonalDataPurged, &why, details_of(&scrubbed));
                record_many(&mut tx, to_millis(now), &actor.to_text(), std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                scrubbed
            };
            if !scrubbed.is_empty() {
                out.push(PurgeItem { mailbox: address, due_at: due, reason, scrubbed });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn marie() -> Needles {
        let mut n = Needles::default();
        n.form(
            &EnrollmentForm {
                family_name: "Dupont".into(),
                given_name: "Marie".into(),
                phone: "+3224133090".into(),
                role: "direction".into(),
                backup_email: "Marie.Perso@Ecole.test".into(),
                knows_password: false,
            },
            &ManagerIdentity {
                subject: "cerbere-0001".into(),
                name: "Marie Dupont".into(),
                given_name: "Marie".into(),
                family_name: "Dupont".into(),
                email: "marie.dupont@ecole.test".into(),
            },
        );
        n
    }

    #[test]
    fn redaction() {
        let n = marie();
        let cases: &[(&str, Option<&str>)] = &[
            ("nothing of hers", None),
            ("Marie Dupont called", Some("[effacé] called")),
            ("DUPONT Marie called", Some("[effacé] called")),
            (
                "to marie.perso@ecole.test and MARIE.DUPONT@ECOLE.TEST",
                Some("to efface@bma.invalid and efface@bma.invalid"),
            ),
            ("bounces+marie.perso=ecole.test@cfwb.be", Some("bounces+efface=bma.invalid@cfwb.be")),
            ("phone +3224133090.", Some("phone [effacé].")),
            ("subject cerbere-0001", Some("subject [effacé]")),
            // A given name alone is not hers: Marie is everybody's.
            ("Institut Sainte-Marie", None),
            ("Dupont", None),
            // Not ASCII: compared exactly, left intact around.
            ("Élève: Marie Dupont — été", Some("Élève: [effacé] — été")),
        ];
        for (text, expected) in cases {
            assert_eq!(n.redact(text).as_deref(), *expected, "{text:?}");
        }
    }

    #[test]
    fn short_needles_match_whole_values_only() {
        let mut n = Needles::default();
        n.subject("42");
        n.text("Al Bo");
        let cases: &[(&str, Option<&str>)] =
            &[("42", Some(ERASED)), ("1420", None), ("al bo", Some(ERASED)), ("Albo Street", None)];
        for (text, expected) in cases {
            assert_eq!(n.redact(text).as_deref(), *expected, "{text:?}");
        }
        assert_eq!(n.redact_actor("manager:42").as_deref(), Some("manager:[effacé]"));
        assert_eq!(n.redact_actor("manager:420"), None);
        assert_eq!(n.redact_actor("operator:jdoe"), None);
    }

    #[test]
    fn json_details_keep_their_shape() {
        let n = marie();
        let v =
            serde_json::json!({"recipient": "marie.perso@ecole.test", "outbox_id": 3, "list": ["x", "Marie Dupont"]});
        let got = n.redact_json(&v).expect("changed");
        assert_eq!(got, serde_json::json!({"recipient": ERASED_ADDRESS, "outbox_id": 3, "list": ["x", ERASED]}));
        assert_eq!(n.redact_json(&serde_json::json!({"outbox_id": 3})), None);
        let scrubbed = scrub_event("manager:cerbere-0001", "form received", "not json Marie Dupont", &n).unwrap();
        assert_eq!(scrubbed, ("manager:[effacé]".into(), "form received".into(), "not json [effacé]".into()));
        assert_eq!(scrub_event("system:x", "sent", "{\"outbox_id\":1}", &n), None);
    }

    fn email(state: &str, recipient: &str, raw: &str) -> EmailRow {
        EmailRow {
            id: 7,
            mailbox_id: Some(1),
            mailbox: Some("ec000001@adm.cfwb.be".into()),
            kind: "confirmation".into(),
            key: format!("k:{recipient}"),
            recipient: recipient.into(),
            envelope_from: format!("bounces+{}@cfwb.be", recipient.replacen('@', "=", 1)),
            subject: "Formulaire reçu".into(),
            raw: raw.into(),
            state: state.into(),
            last_error: None,
            queued_at: 0,
            sent_at: None,
        }
    }

    #[test]
    fn emails() {
        let n = marie();
        let bma = "ec000001@adm.cfwb.be";
        // (row, tied, expected: None, or (state, recipient, raw empty, key erased))
        type Expect = Option<(&'static str, &'static str, bool, bool)>;
        let cases: Vec<(EmailRow, bool, Expect)> = vec![
            // Not hers at all.
            (email("sent", bma, "To: ec000001\r\n"), false, None),
            // Pending to her: cancelled, body gone, address replaced.
            (
                email("pending", "marie.perso@ecole.test", "To: x\r\n\r\nbody"),
                false,
                Some(("cancelled", ERASED_ADDRESS, true, true)),
            ),
            // Sent to her: kept sent, header gone, address replaced.
            (email("sent", "Marie.Perso@Ecole.test", "To: x\r\n"), false, Some(("sent", ERASED_ADDRESS, true, true))),
            // To the BMA but naming her: cancelled if pending.
            (email("pending", bma, "To: x\r\n\r\nBonjour Marie Dupont"), false, Some(("cancelled", bma, true, false))),
            // Tied to her form (the confirmation of her version), sent: header dropped.
            (email("sent", bma, "To: ec000001\r\n"), true, Some(("sent", bma, true, false))),
            // Already scrubbed: nothing to do.
            (email("sent", bma, ""), true, None),
        ];
        for (row, tied, expected) in cases {
            let got = scrub_email(&row, &n, tied);
            let got = got.map(|c| (c.state, c.recipient, c.raw.is_empty(), c.key.starts_with("erased:")));
            let expected = expected.map(|(s, r, body, key)| (s.to_owned(), r.to_owned(), body, key));
            assert_eq!(got, expected, "{row:?} tied={tied}");
        }
        assert!(concerns(&email("sent", bma, ""), &n, true));
        assert!(!concerns(&email("sent", bma, ""), &n, false));
    }

    #[test]
    fn due_times() {
        let retention = Retention { days: 365, campaign_end: date!(2024 - 05 - 31) };
        let cases = [
            (None, datetime!(2025-06-01 0:00 UTC), PurgeReason::CampaignEnd),
            (
                Some(datetime!(2024-05-10 9:00 UTC)),
                datetime!(2025-05-10 9:00 UTC),
                PurgeReason::Migration { at: datetime!(2024-05-10 9:00 UTC) },
            ),
            // Migrated after the campaign's end (a late cutover): the campaign's end counts.
            (Some(datetime!(2024-06-10 9:00 UTC)), datetime!(2025-06-01 0:00 UTC), PurgeReason::CampaignEnd),
        ];
        for (migrated, due, reason) in cases {
            assert_eq!(due_at(&retention, migrated), (due, reason), "{migrated:?}");
        }
    }

    #[test]
    fn persons() {
        assert_eq!(Person::subject("  s-1 "), Some(Person::Subject("s-1".into())));
        assert_eq!(Person::subject("  "), None);
        assert_eq!(Person::address(" a@b.be "), Some(Person::Address("a@b.be".into())));
        for bad in ["", "a@", "@b", "ab", "a b@c"] {
            assert_eq!(Person::address(bad), None, "{bad:?}");
        }
    }
}
