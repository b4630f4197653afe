//! Reading what names a person, or what a mailbox being purged holds,
//! into a [`Plan`] (one scan per table, in pages).

use std::collections::BTreeSet;

use bma_core::form::{EnrollmentForm, ManagerIdentity};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::needles::Needles;
use super::scrub::*;
use super::{PAGE, Person, PersonSession, PersonVerification};
use crate::enrollment::Enrollment;
use crate::mailbox::event_from_row;
use crate::{StoreError, from_millis, to_millis};

pub(super) const FORM_SELECT: &str = "SELECT e.id, e.mailbox_id, m.address AS mailbox, e.version, e.submitted_at, e.family_name, \
     e.given_name, e.phone, e.role, e.backup_email, e.knows_password, e.id_subject, e.id_name, e.id_given_name, \
     e.id_family_name, e.id_email FROM enrollments e JOIN mailboxes m ON m.id = e.mailbox_id";

pub(super) fn form_from_row(r: &AnyRow) -> Result<FormRow, StoreError> {
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

pub(super) async fn forms_where(
    conn: &mut AnyConnection,
    filter: &str,
    id: Option<i64>,
) -> Result<Vec<FormRow>, StoreError> {
    let sql = format!("{FORM_SELECT} {filter} ORDER BY e.mailbox_id, e.version");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(id) = id {
        q = q.bind(id);
    }
    q.fetch_all(&mut *conn).await?.iter().map(form_from_row).collect()
}

pub(super) async fn verifications(
    conn: &mut AnyConnection,
    mailbox_id: Option<i64>,
) -> Result<Vec<VerificationRow>, StoreError> {
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

pub(super) async fn sessions(conn: &mut AnyConnection) -> Result<Vec<SessionRow>, StoreError> {
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
pub(super) async fn emails(conn: &mut AnyConnection, mailbox_id: Option<i64>) -> Result<Vec<EmailRow>, StoreError> {
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
pub(super) async fn events_naming(
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
pub(super) async fn plan_for_person(conn: &mut AnyConnection, person: &Person) -> Result<Plan, StoreError> {
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
    let staff_sessions = super::staff::sessions_of(conn, person).await?;
    Ok(Plan { needles, forms, verifications, sessions, emails: found, events, staff_sessions, staff_views_of: None })
}

/// What a purge of one mailbox would write: every form version of it,
/// its verifications, the sessions of those who filled its form, its
/// emails (bodies dropped, addresses other than the BMA's replaced, any
/// still pending cancelled), its events and the campaign's that name them.
pub(super) async fn plan_for_mailbox(
    conn: &mut AnyConnection,
    mailbox_id: i64,
    address: &str,
) -> Result<Plan, StoreError> {
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
    let views = super::staff::views_of_mailbox(conn, mailbox_id).await?;
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
