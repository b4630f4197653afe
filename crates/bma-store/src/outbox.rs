//! The email outbox: every email of the campaign is a row here before it
//! leaves, and leaves only from here.
//!
//! Queuing is idempotent by key (`invitation:2024-04-22:ec012345@…`): the
//! same email is never queued twice. A sender claims due emails with a
//! lease, like jobs. The one moment SMTP cannot make safe is between the
//! relay's acceptance and our record of it: an email whose sender died
//! while it was `sending` is claimed again with [`OutboxEmail::uncertain`]
//! set, and the sender must look for evidence of delivery (our Message-ID
//! in the recipient's mailbox, which the campaign can read on the legacy
//! platform) before sending it again. Marking an email sent writes the
//! mailbox's `email_sent` event in the same transaction.
//!
//! The body of an email (its links, its verification code) is kept only
//! while it may still have to be sent: the transaction that records it
//! sent, or dead, cuts `raw` to its header, so a copy of the store opens
//! nothing.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use crate::jobs::FailOutcome;
use crate::{Backend, Store, StoreError, from_millis, to_millis};

/// An email to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmail {
    /// The mailbox it concerns, if any.
    pub mailbox_id: Option<i64>,
    /// `invitation`, `reminder`, `confirmation`, …
    pub kind: String,
    /// Idempotency key.
    pub key: String,
    /// RCPT TO.
    pub recipient: String,
    /// MAIL FROM (VERP).
    pub envelope_from: String,
    /// Message-ID, without brackets.
    pub message_id: String,
    /// Subject, for the timeline.
    pub subject: String,
    /// The message as it will be sent.
    pub raw: String,
    /// Not before.
    pub run_at: OffsetDateTime,
    /// Attempts before giving up.
    pub max_attempts: u32,
}

/// An email as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEmail {
    /// Store id.
    pub id: i64,
    /// The mailbox it concerns.
    pub mailbox_id: Option<i64>,
    /// Kind.
    pub kind: String,
    /// RCPT TO.
    pub recipient: String,
    /// MAIL FROM.
    pub envelope_from: String,
    /// Message-ID.
    pub message_id: String,
    /// Subject.
    pub subject: String,
    /// The message while it may still be sent; its header only once sent or dead.
    #[serde(skip)]
    pub raw: String,
    /// `pending`, `sending`, `sent`, `dead`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was sent.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// Last failure.
    pub last_error: Option<String>,
    /// Claimed after a sender died while sending it: it may have been
    /// delivered; look for it before sending again.
    pub uncertain: bool,
}

fn email_from_row(r: &AnyRow, uncertain: bool) -> Result<OutboxEmail, StoreError> {
    Ok(OutboxEmail {
        id: r.try_get("id")?,
        mailbox_id: r.try_get("mailbox_id")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        envelope_from: r.try_get("envelope_from")?,
        message_id: r.try_get("message_id")?,
        subject: r.try_get("subject")?,
        raw: r.try_get("raw")?,
        state: r.try_get("state")?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
        sent_at: r.try_get::<Option<i64>, _>("sent_at")?.map(from_millis),
        last_error: r.try_get("last_error")?,
        uncertain,
    })
}

const COLUMNS: &str =
    "id, mailbox_id, kind, recipient, envelope_from, message_id, subject, raw, state, attempts, sent_at, last_error";

/// Inserts an email unless one with its key exists, on any connection or
/// transaction; returns its id and whether it was inserted now.
pub(crate) async fn insert_email(
    conn: &mut sqlx::AnyConnection,
    email: &NewEmail,
    now: OffsetDateTime,
) -> Result<(i64, bool), StoreError> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO outbox (mailbox_id, kind, key, recipient, envelope_from, message_id, subject, raw, state, \
         run_at, attempts, max_attempts, queued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, 0, $10, $11) \
         ON CONFLICT (key) DO NOTHING RETURNING id",
    )
    .bind(email.mailbox_id)
    .bind(email.kind.clone())
    .bind(email.key.clone())
    .bind(email.recipient.clone())
    .bind(email.envelope_from.clone())
    .bind(email.message_id.clone())
    .bind(email.subject.clone())
    .bind(email.raw.clone())
    .bind(to_millis(email.run_at))
    .bind(i64::from(email.max_attempts.max(1)))
    .bind(to_millis(now))
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => Ok((id, true)),
        None => {
            let id = sqlx::query_scalar("SELECT id FROM outbox WHERE key = $1")
                .bind(email.key.clone())
                .fetch_one(&mut *conn)
                .await?;
            Ok((id, false))
        }
    }
}

impl Store {
    /// The SQL expression of `raw` cut to its header (up to the first empty
    /// line): what an email keeps once sent or dead. The body holds the
    /// links and codes, which must not outlive their sending in clear; the
    /// header (From, To, Subject, Date, Message-ID) opens nothing.
    fn headers_only(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => {
                "CASE WHEN instr(raw, char(13, 10, 13, 10)) > 0 \
                 THEN substr(raw, 1, instr(raw, char(13, 10, 13, 10)) + 1) ELSE '' END"
            }
            Backend::Postgres => {
                "CASE WHEN strpos(raw, E'\\r\\n\\r\\n') > 0 \
                 THEN substr(raw, 1, strpos(raw, E'\\r\\n\\r\\n') + 1) ELSE '' END"
            }
        }
    }

    /// Queues an email unless one with the same key exists; returns its id
    /// and whether it was queued now.
    pub async fn queue_email(&self, email: &NewEmail, now: OffsetDateTime) -> Result<(i64, bool), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_email(&mut conn, email, now).await
    }

    /// Claims due emails for `worker` (pending ones, and `sending` ones whose
    /// sender's lease expired, flagged uncertain).
    pub async fn claim_emails(
        &self,
        worker: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        let lock = if self.backend() == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let mut out = Vec::new();
        // First the emails whose sender died while sending (uncertain), then
        // the pending ones: one statement each, so the flag is exact.
        for (which, uncertain) in
            [("state = 'sending' AND lease_until < $3", true), ("state = 'pending' AND run_at <= $3", false)]
        {
            let room = i64::from(limit) - out.len() as i64;
            if room <= 0 {
                break;
            }
            let sql = format!(
                "UPDATE outbox SET state = 'sending', lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM outbox WHERE {which} ORDER BY run_at, id LIMIT $4 {lock}) \
                 RETURNING {COLUMNS}"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(worker.to_owned())
                .bind(to_millis(now + lease))
                .bind(to_millis(now))
                .bind(room)
                .fetch_all(self.pool())
                .await?;
            for r in &rows {
                out.push(email_from_row(r, uncertain)?);
            }
        }
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    /// Records that the relay accepted the email, with the mailbox's
    /// `email_sent` event, in one transaction.
    pub async fn mark_sent(&self, id: i64, worker: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let headers = self.headers_only();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET state = 'sent', sent_at = $1, lease_owner = NULL, lease_until = NULL, raw = {headers} \
             WHERE id = $2 AND state = 'sending' AND lease_owner = $3 RETURNING mailbox_id, kind, message_id, subject, recipient",
        )))
        .bind(to_millis(now))
        .bind(id)
        .bind(worker.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::LeaseLost { job: id, worker: worker.to_owned() })?;
        let mailbox_id: Option<i64> = row.try_get("mailbox_id")?;
        if let Some(mailbox_id) = mailbox_id {
            let kind: String = row.try_get("kind")?;
            let subject: String = row.try_get("subject")?;
            let details = serde_json::json!({
                "outbox_id": id, "kind": kind, "message_id": row.try_get::<String, _>("message_id")?,
                "recipient": row.try_get::<String, _>("recipient")?,
            });
            let reason = format!("{kind} sent: {subject}");
            let event = crate::events::Event::note(Some(mailbox_id), "email_sent", &reason, details);
            crate::events::record(&mut tx, to_millis(now), &format!("system:{worker}"), event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt: pending again after the backoff, or dead.
    pub async fn mark_email_failed(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        permanent: bool,
        now: OffsetDateTime,
    ) -> Result<FailOutcome, StoreError> {
        let outcome = self.after_failure("outbox", "sending", id, worker, permanent, now).await?;
        let (state, run_at) = match outcome {
            FailOutcome::Retry(at) => ("pending", at),
            FailOutcome::Dead => ("dead", now),
        };
        let headers = self.headers_only();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET state = $1, run_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL, \
             raw = CASE WHEN $1 = 'dead' THEN {headers} ELSE raw END WHERE id = $4 AND lease_owner = $5",
        )))
        .bind(state)
        .bind(to_millis(run_at))
        .bind(error.to_owned())
        .bind(id)
        .bind(worker.to_owned())
        .execute(self.pool())
        .await?;
        Ok(outcome)
    }

    /// The emails of a mailbox, oldest first (what was sent when).
    pub async fn emails_of(&self, mailbox_id: i64) -> Result<Vec<OutboxEmail>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM outbox WHERE mailbox_id = $1 ORDER BY id")))
                .bind(mailbox_id)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| email_from_row(r, false)).collect()
    }
}
