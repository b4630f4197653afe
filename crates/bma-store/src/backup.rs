//! The verification of a backup address: where it stands, a new link
//! (limited per mailbox), and the link followed.
//!
//! Invariants: codes are stored hashed; new links are limited per mailbox
//! ([`RESEND_MIN_INTERVAL`], [`RESENDS_PER_DAY`]), counted from the
//! `backup_verification_requested` events, so the limit holds across
//! restarts and portals; following a link again is harmless.

use bma_core::lifecycle::Actor;
use bma_core::{EventKind, TokenHash};
use sqlx::Row;
use time::OffsetDateTime;

use crate::cols::Cols;
use crate::enrollment::{BackupStatus, BackupVerificationRequest};
use crate::events::{Event, record};
use crate::outbox::insert_email;
use crate::{Store, StoreError, from_millis, to_millis};

/// Shortest time between two verification links for one mailbox.
pub const RESEND_MIN_INTERVAL: time::Duration = time::Duration::minutes(10);

/// Most verification links sent for one mailbox in 24 hours.
pub const RESENDS_PER_DAY: i64 = 4;

/// What [`Store::renew_backup_verification`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewOutcome {
    /// A new link is queued; the old one stops working.
    Sent,
    /// Nothing pending: the address is verified (or unknown).
    NothingPending,
    /// The last link is too recent, or the day's links are used up: the
    /// next one may be asked from this instant.
    TooSoon {
        /// When.
        retry_at: OffsetDateTime,
    },
}

/// What following a verification link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// Verified now (or already): the mailbox's address and the backup address.
    Verified {
        /// The BMA.
        mailbox: String,
        /// The verified address.
        email: String,
    },
    /// The link is past its expiry.
    Expired,
    /// No such code.
    Unknown,
}

/// A verification as [`Store::backup_status`] reads it (`email`,
/// `requested_at`, `verified_at`).
pub(crate) fn backup_from_row(r: &impl Cols) -> Result<BackupStatus, StoreError> {
    Ok(BackupStatus {
        email: r.text("email")?,
        requested_at: from_millis(r.int("requested_at")?),
        verified_at: r.opt_int("verified_at")?.map(from_millis),
    })
}

impl Store {
    /// Where the verification of `email` as the backup address of the
    /// mailbox stands; `None` if none was requested.
    pub async fn backup_status(&self, mailbox_id: i64, email: &str) -> Result<Option<BackupStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT email, requested_at, verified_at FROM backup_verifications WHERE mailbox_id = $1 AND email = $2",
        )
        .bind(mailbox_id)
        .bind(email.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(backup_from_row).transpose()
    }

    /// Sends a new verification link for the pending backup address of the
    /// mailbox (the old link stops working): the new code and its email in
    /// one transaction, unless the last link is younger than
    /// [`RESEND_MIN_INTERVAL`] or [`RESENDS_PER_DAY`] were sent in the last
    /// 24 hours (the first link counts).
    pub async fn renew_backup_verification(
        &self,
        mailbox_id: i64,
        email: &str,
        request: &BackupVerificationRequest,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<RenewOutcome, StoreError> {
        let now_ms = to_millis(now);
        let mut tx = self.pool().begin().await?;
        // Takes SQLite's write lock now, so two requests cannot both count below the limit.
        sqlx::query("UPDATE backup_verifications SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let day_ago = to_millis(now - time::Duration::days(1));
        let sent: Vec<i64> = sqlx::query_scalar(
            "SELECT at FROM events WHERE mailbox_id = $1 AND kind = $3 AND at > $2 \
             ORDER BY at",
        )
        .bind(mailbox_id)
        .bind(day_ago)
        .bind(EventKind::BackupVerificationRequested.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let mut retry_at = None;
        if let Some(&last) = sent.last() {
            let next = from_millis(last) + RESEND_MIN_INTERVAL;
            if next > now {
                retry_at = Some(next);
            }
        }
        if sent.len() as i64 >= RESENDS_PER_DAY {
            let oldest = sent.len() - RESENDS_PER_DAY as usize;
            let next = from_millis(sent[oldest]) + time::Duration::days(1);
            retry_at = Some(retry_at.map_or(next, |r: OffsetDateTime| r.max(next)));
        }
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM backup_verifications WHERE mailbox_id = $1 AND email = $2 AND verified_at IS NULL",
        )
        .bind(mailbox_id)
        .bind(email.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        if pending.is_none() {
            return Ok(RenewOutcome::NothingPending);
        }
        if let Some(retry_at) = retry_at {
            return Ok(RenewOutcome::TooSoon { retry_at });
        }
        let done = sqlx::query(
            "UPDATE backup_verifications SET code_hash = $1, requested_at = $2, expires_at = $3 \
             WHERE mailbox_id = $4 AND email = $5 AND verified_at IS NULL",
        )
        .bind(request.code_hash.as_str())
        .bind(now_ms)
        .bind(to_millis(request.expires_at))
        .bind(mailbox_id)
        .bind(email.to_owned())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(RenewOutcome::NothingPending);
        }
        let (outbox_id, _) = insert_email(&mut tx, &request.email, now).await?;
        let details = serde_json::json!({ "outbox_id": outbox_id, "message_id": request.email.message_id });
        let reason = "verification link sent again for the backup address";
        let event = Event::note(Some(mailbox_id), EventKind::BackupVerificationRequested, reason, details);
        record(&mut tx, now_ms, &actor.to_text(), event).await?;
        tx.commit().await?;
        Ok(RenewOutcome::Sent)
    }

    /// Follows a verification link: marks the address verified, with the
    /// mailbox's event, in one transaction. Following it again is harmless.
    pub async fn verify_backup(&self, code_hash: &TokenHash, now: OffsetDateTime) -> Result<VerifyOutcome, StoreError> {
        let now_ms = to_millis(now);
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE backup_verifications SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let row = sqlx::query(
            "SELECT v.id, v.mailbox_id, v.email, v.expires_at, v.verified_at, m.address FROM backup_verifications v \
             JOIN mailboxes m ON m.id = v.mailbox_id WHERE v.code_hash = $1",
        )
        .bind(code_hash.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(VerifyOutcome::Unknown);
        };
        let mailbox: String = row.try_get("address")?;
        let email: String = row.try_get("email")?;
        if row.try_get::<Option<i64>, _>("verified_at")?.is_some() {
            return Ok(VerifyOutcome::Verified { mailbox, email });
        }
        if row.try_get::<i64, _>("expires_at")? < now_ms {
            return Ok(VerifyOutcome::Expired);
        }
        let id: i64 = row.try_get("id")?;
        let mailbox_id: i64 = row.try_get("mailbox_id")?;
        sqlx::query("UPDATE backup_verifications SET verified_at = $1 WHERE id = $2 AND verified_at IS NULL")
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let details = serde_json::json!({ "email": email });
        let reason = "backup address verified by its link";
        let event = Event::note(Some(mailbox_id), EventKind::BackupVerified, reason, details);
        record(&mut tx, now_ms, "system:portal", event).await?;
        tx.commit().await?;
        Ok(VerifyOutcome::Verified { mailbox, email })
    }
}
