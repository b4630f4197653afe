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
//!
//! The steps, one module each: [`needles`] (what names the person, and its
//! replacement), [`scrub`] (the rows looked at and what to write instead,
//! gathered in a plan), [`read`] (the plan read from the store), [`write`]
//! (the plan written), [`staff`] (the helpdesk console's rows).

use std::collections::BTreeSet;

use bma_core::lifecycle::{Actor, State};
use bma_core::{EventKind, form::ManagerIdentity};
use serde::Serialize;
use sqlx::Row;
use time::{Date, OffsetDateTime};

use crate::enrollment::Enrollment;
use crate::events::{Event, record_many};
use crate::mailbox::{EventRecord, parse_state};
use crate::{Store, StoreError, from_millis, to_millis};

mod needles;
mod read;
mod scrub;
mod staff;
mod write;

use read::{plan_for_mailbox, plan_for_person};
use write::{apply, write_lock};

pub use staff::{PersonStaffSession, PersonStaffView};

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
    pub staff_sessions: Vec<staff::PersonStaffSession>,
    /// The console's views they made, and the views of the mailboxes whose form they filled.
    pub staff_views: Vec<staff::PersonStaffView>,
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
        let staff_views = staff::views(&mut conn, &viewers, &theirs).await?;
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
    use bma_core::form::EnrollmentForm;

    use super::needles::Needles;
    use super::scrub::{EmailRow, concerns, scrub_email, scrub_event};
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
