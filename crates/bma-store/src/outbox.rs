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
//! platform, and the relay's queue) before sending it again. Marking an
//! email sent writes the mailbox's `email_sent` event in the same
//! transaction.
//!
//! Leases are on the lease clock of [`Lease`] (the real clock in the
//! engine), claims take one due time and one lease each. An email of a
//! mailbox is never claimed while an earlier email of the same mailbox is
//! still pending, being sent, or unconfirmed: mail 1 leaves before the
//! first reminder, which leaves before the second. `attempts` counts SMTP
//! transactions (a claim of a pending email, or an uncertain one sent
//! again); `checks` counts the looks for an uncertain email's delivery that
//! concluded nothing. Over its checks an email is `unconfirmed` and its
//! mailbox flagged (`email_unconfirmed`), for a human.
//!
//! The body of an email (its links, its verification code) is kept only
//! while it may still have to be sent: the transaction that records it
//! sent, or dead, cuts `raw` to its header, so a copy of the store opens
//! nothing.

use bma_core::AttentionReason;
use serde::Serialize;
use sqlx::Row;
use time::{Duration, OffsetDateTime};

use crate::cols::Cols;
use crate::jobs::{FailOutcome, Lease};
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
    /// `pending`, `sending`, `sent`, `dead`, `unconfirmed`.
    pub state: String,
    /// Due time.
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: OffsetDateTime,
    /// SMTP transactions so far.
    pub attempts: u32,
    /// Looks for its delivery that concluded nothing.
    pub checks: u32,
    /// When it was sent.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// Last failure.
    pub last_error: Option<String>,
    /// Claimed after a sender died while sending it: it may have been
    /// delivered; look for it before sending again.
    pub uncertain: bool,
}

pub(crate) fn email_from_row(r: &impl Cols) -> Result<OutboxEmail, StoreError> {
    Ok(OutboxEmail {
        id: r.int("id")?,
        mailbox_id: r.opt_int("mailbox_id")?,
        kind: r.text("kind")?,
        recipient: r.text("recipient")?,
        envelope_from: r.text("envelope_from")?,
        message_id: r.text("message_id")?,
        subject: r.text("subject")?,
        raw: r.text("raw")?,
        state: r.text("state")?,
        run_at: from_millis(r.int("run_at")?),
        attempts: u32::try_from(r.int("attempts")?).unwrap_or(0),
        checks: u32::try_from(r.int("checks")?).unwrap_or(0),
        sent_at: r.opt_int("sent_at")?.map(from_millis),
        last_error: r.opt_text("last_error")?,
        uncertain: r.int("uncertain")? != 0,
    })
}

const COLUMNS: &str = "id, mailbox_id, kind, recipient, envelope_from, message_id, subject, raw, state, run_at, \
     attempts, checks, sent_at, last_error, uncertain";

/// [`COLUMNS`] without the message itself (`raw` read empty): what a list
/// of emails shows.
pub(crate) const LISTED_COLUMNS: &str = "id, mailbox_id, kind, recipient, envelope_from, message_id, subject, \
     '' AS raw, state, run_at, attempts, checks, sent_at, last_error, uncertain";

/// What a look for an uncertain email's delivery that concluded nothing led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Looked for again once the given lease deadline passed.
    Later,
    /// Over its checks: `unconfirmed`, its mailbox flagged for a human.
    Human,
}

/// The outbox's health, for `bma campaign status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxHealth {
    /// Emails due and waiting to be sent.
    pub due: u64,
    /// The due time of the oldest of them.
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_due: Option<OffsetDateTime>,
    /// Emails being sent whose lease expired (their sender stopped).
    pub past_lease: u64,
    /// Uncertain emails waiting for their delivery to be confirmed.
    pub being_checked: u64,
    /// Emails over their evidence checks, for a human.
    pub unconfirmed: u64,
    /// Emails given up (attempts spent or permanent failure).
    pub dead: u64,
}

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

/// `raw` cut to its header (up to the first empty line), as
/// [`Store::headers_only`] cuts a sent email in SQL.
fn header_of(raw: &str) -> &str {
    raw.find("\r\n\r\n").map_or("", |end| &raw[..end + 2])
}

/// Records an email its caller already sent (an email that must not wait
/// in the store: mail 2 with a new password written out): `sent`, its
/// header only, with its mailbox's `email_sent` event, in the caller's
/// transaction; one already recorded under its key is left. Returns its id.
pub(crate) async fn insert_sent_email(
    conn: &mut sqlx::AnyConnection,
    email: &NewEmail,
    actor: &str,
    now: OffsetDateTime,
) -> Result<i64, StoreError> {
    let header = NewEmail { raw: header_of(&email.raw).to_owned(), ..email.clone() };
    let (id, new) = insert_email(conn, &header, now).await?;
    if new {
        sqlx::query("UPDATE outbox SET state = 'sent', sent_at = $1, attempts = 1 WHERE id = $2")
            .bind(to_millis(now))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        let details = serde_json::json!({
            "outbox_id": id, "kind": email.kind, "message_id": email.message_id, "recipient": email.recipient,
        });
        let reason = format!("{} sent: {}", email.kind, email.subject);
        let event = crate::events::Event::note(email.mailbox_id, bma_core::EventKind::EmailSent, &reason, details);
        crate::events::record(conn, to_millis(now), actor, event).await?;
    }
    Ok(id)
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

    /// Queues `emails` about the mailbox `address` and notes `kind` (who,
    /// why, the outbox ids in its details), in one transaction: an email
    /// sent again on request. Returns the outbox ids.
    pub async fn queue_noted(
        &self,
        address: &bma_core::Address,
        emails: &[NewEmail],
        kind: bma_core::EventKind,
        actor: &bma_core::Actor,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, _) = crate::events::lock_mailbox(&mut tx, address).await?;
        let mut queued = Vec::new();
        for email in emails {
            queued.push(insert_email(&mut tx, email, now).await?.0);
        }
        let details = serde_json::json!({ "outbox": queued });
        crate::events::note(&mut tx, Some(id), now, actor, kind, reason, details).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Claims due emails for `worker` (pending ones, and `sending` ones whose
    /// sender's lease expired, flagged uncertain), leases on the same clock
    /// as due times (see [`Store::claim_emails_leased`]).
    pub async fn claim_emails(
        &self,
        worker: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        self.claim_emails_leased(worker, now, Lease { now, length: lease }, limit).await
    }

    /// Claims up to `limit` emails for `worker`, oldest due first: pending
    /// ones due by `now`, and `sending` ones whose lease expired on the
    /// lease clock (their sender stopped, or their delivery is to be looked
    /// for again), flagged uncertain, whatever their due time. One
    /// statement; an email waits while an earlier one of its mailbox is not
    /// settled. A pending email's claim counts an attempt, an uncertain
    /// one's a check.
    pub async fn claim_emails_leased(
        &self,
        worker: &str,
        now: OffsetDateTime,
        lease: Lease,
        limit: u32,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        let lock = if self.backend() == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE outbox SET uncertain = CASE WHEN state = 'sending' THEN 1 ELSE 0 END, \
             attempts = CASE WHEN state = 'sending' THEN attempts ELSE attempts + 1 END, \
             checks = CASE WHEN state = 'sending' THEN checks + 1 ELSE checks END, \
             state = 'sending', lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT o.id FROM outbox o WHERE \
             ((o.state = 'pending' AND o.run_at <= $3) OR (o.state = 'sending' AND o.lease_until < $5)) \
             AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.mailbox_id = o.mailbox_id AND p.id < o.id \
             AND p.state IN ('pending', 'sending', 'unconfirmed')) \
             ORDER BY o.run_at, o.id LIMIT $4 {lock}) RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(worker.to_owned())
            .bind(to_millis(lease.now + lease.length))
            .bind(to_millis(now))
            .bind(i64::from(limit))
            .bind(to_millis(lease.now))
            .fetch_all(self.pool())
            .await?;
        let mut out = rows.iter().map(email_from_row).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    /// Extends `worker`'s lease on an email being sent (a heartbeat).
    pub async fn extend_email_lease(&self, id: i64, worker: &str, lease: Lease) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE outbox SET lease_until = $1 WHERE id = $2 AND state = 'sending' AND lease_owner = $3")
                .bind(to_millis(lease.now + lease.length))
                .bind(id)
                .bind(worker.to_owned())
                .execute(self.pool())
                .await?;
        crate::jobs::lease_held(done.rows_affected(), id, worker)
    }

    /// Counts the attempt of sending an uncertain email again (no evidence
    /// of its delivery); fails if `worker` lost it.
    pub async fn resending(&self, id: i64, worker: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1 WHERE id = $1 AND state = 'sending' AND lease_owner = $2",
        )
        .bind(id)
        .bind(worker.to_owned())
        .execute(self.pool())
        .await?;
        crate::jobs::lease_held(done.rows_affected(), id, worker)
    }

    /// Records a look for an uncertain email that concluded nothing (still
    /// in the relay's queue, or the evidence unreadable): it stays
    /// `sending`, unowned, to be looked for again once `again` (on the
    /// lease clock) passed; over `max_checks` it is `unconfirmed` and its
    /// mailbox flagged `email_unconfirmed`, with the event, in one
    /// transaction. `LeaseLost` if `worker` no longer holds it.
    pub async fn check_again(
        &self,
        id: i64,
        worker: &str,
        why: &str,
        again: OffsetDateTime,
        max_checks: u32,
        now: OffsetDateTime,
    ) -> Result<CheckOutcome, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "SELECT checks, mailbox_id, kind, recipient, message_id FROM outbox \
             WHERE id = $1 AND state = 'sending' AND lease_owner = $2",
        )
        .bind(id)
        .bind(worker.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::LeaseLost { job: id, worker: worker.to_owned() })?;
        let checks: i64 = row.try_get("checks")?;
        if checks < i64::from(max_checks) {
            sqlx::query("UPDATE outbox SET lease_owner = NULL, lease_until = $1, last_error = $2 WHERE id = $3")
                .bind(to_millis(again))
                .bind(why.to_owned())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(CheckOutcome::Later);
        }
        sqlx::query(
            "UPDATE outbox SET state = 'unconfirmed', lease_owner = NULL, lease_until = NULL, last_error = $1 WHERE id = $2",
        )
        .bind(why.to_owned())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mailbox_id: Option<i64> = row.try_get("mailbox_id")?;
        if let Some(mailbox_id) = mailbox_id {
            let kind: String = row.try_get("kind")?;
            let reason = format!("{kind} not confirmed after {checks} looks for its delivery: {why}");
            let details = serde_json::json!({
                "outbox_id": id, "kind": kind, "message_id": row.try_get::<String, _>("message_id")?,
                "recipient": row.try_get::<String, _>("recipient")?, "attention": AttentionReason::EmailUnconfirmed.as_str(),
            });
            sqlx::query(
                "UPDATE mailboxes SET attention = $1, attention_at = $2 WHERE id = $3 \
                 AND (attention IS NULL OR attention <> $4)",
            )
            .bind(AttentionReason::EmailUnconfirmed.as_str())
            .bind(to_millis(now))
            .bind(mailbox_id)
            .bind(AttentionReason::InvitationBounced.as_str())
            .execute(&mut *tx)
            .await?;
            let event = crate::events::Event::note(Some(mailbox_id), bma_core::EventKind::Attention, &reason, details);
            crate::events::record(&mut tx, to_millis(now), &format!("system:{worker}"), event).await?;
        }
        tx.commit().await?;
        Ok(CheckOutcome::Human)
    }

    /// The outbox's health at `now` (due times) and `lease_now` (leases).
    pub async fn outbox_health(
        &self,
        now: OffsetDateTime,
        lease_now: OffsetDateTime,
    ) -> Result<OutboxHealth, StoreError> {
        let row = sqlx::query(
            "SELECT \
             COALESCE(SUM(CASE WHEN state = 'pending' AND run_at <= $1 THEN 1 ELSE 0 END), 0) AS due, \
             MIN(CASE WHEN state = 'pending' AND run_at <= $1 THEN run_at END) AS oldest, \
             COALESCE(SUM(CASE WHEN state = 'sending' AND lease_owner IS NOT NULL AND lease_until < $2 THEN 1 ELSE 0 END), 0) AS past_lease, \
             COALESCE(SUM(CASE WHEN state = 'sending' AND lease_owner IS NULL THEN 1 ELSE 0 END), 0) AS checked, \
             COALESCE(SUM(CASE WHEN state = 'unconfirmed' THEN 1 ELSE 0 END), 0) AS unconfirmed, \
             COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) AS dead \
             FROM outbox",
        )
        .bind(to_millis(now))
        .bind(to_millis(lease_now))
        .fetch_one(self.pool())
        .await?;
        let n = |c: &str| -> Result<u64, StoreError> { Ok(u64::try_from(row.try_get::<i64, _>(c)?).unwrap_or(0)) };
        Ok(OutboxHealth {
            due: n("due")?,
            oldest_due: row.try_get::<Option<i64>, _>("oldest")?.map(from_millis),
            past_lease: n("past_lease")?,
            being_checked: n("checked")?,
            unconfirmed: n("unconfirmed")?,
            dead: n("dead")?,
        })
    }

    /// Mail 1 emails not settled yet (pending, being sent, or their
    /// delivery being looked for): the deadline list waits for them.
    pub async fn unsettled_invitations(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'invitation' AND state IN ('pending', 'sending')",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
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
            let event = crate::events::Event::note(Some(mailbox_id), bma_core::EventKind::EmailSent, &reason, details);
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
        rows.iter().map(email_from_row).collect()
    }
}
