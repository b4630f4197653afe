//! New passwords given by a link: a link issued (with the step or the
//! reset that made the password, one transaction), and opened once.
//!
//! Invariants: the store never holds a password or a link in clear: a row
//! has the hash of the link's token and the password sealed with a key
//! only the token gives (`bma_platform::password::seal`); a new link of a
//! mailbox revokes its unopened ones; opening is conditional on the row
//! being unopened (two clicks at once: one wins), empties `sealed` and
//! writes the `password_link_opened` event in the same transaction.

use bma_core::lifecycle::Actor;
use bma_core::{Address, EventKind, TokenHash};
use sqlx::Row;
use time::OffsetDateTime;

use crate::events::{lock_mailbox, note};
use crate::outbox::{NewEmail, insert_email};
use crate::{Store, StoreError, to_millis};

/// A link to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasswordLink {
    /// The hash of its token.
    pub token_hash: TokenHash,
    /// The password, sealed with the token's key.
    pub sealed: String,
    /// Until when it opens.
    pub expires_at: OffsetDateTime,
}

/// What opening a link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Opened now: the mailbox and the sealed password (gone from the store).
    Opened {
        /// The BMA.
        address: String,
        /// The password, sealed.
        sealed: String,
    },
    /// Opened before (it works once).
    AlreadyOpened,
    /// Past its expiry.
    Expired,
    /// A newer password replaced it.
    Revoked,
    /// No such link.
    Unknown,
}

/// Revokes the mailbox's unopened links and inserts `link`.
pub(crate) async fn insert_link(
    conn: &mut sqlx::AnyConnection,
    mailbox_id: i64,
    link: &NewPasswordLink,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let ms = to_millis(now);
    sqlx::query(
        "UPDATE password_links SET revoked_at = $1, sealed = '' WHERE mailbox_id = $2 \
         AND opened_at IS NULL AND revoked_at IS NULL",
    )
    .bind(ms)
    .bind(mailbox_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO password_links (mailbox_id, token_hash, sealed, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(mailbox_id)
    .bind(link.token_hash.as_str().to_owned())
    .bind(link.sealed.clone())
    .bind(ms)
    .bind(to_millis(link.expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// A new password for a mailbox (`bma mailbox reset-password`): the
    /// link (older unopened ones revoked), the emails carrying it and the
    /// `password_reset` event with who and why, one transaction.
    pub async fn reset_password(
        &self,
        address: &Address,
        link: &NewPasswordLink,
        emails: &[NewEmail],
        reason: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, _) = lock_mailbox(&mut tx, address).await?;
        insert_link(&mut tx, id, link, now).await?;
        let mut queued = Vec::new();
        for email in emails {
            queued.push(insert_email(&mut tx, email, now).await?.0);
        }
        let details = serde_json::json!({ "outbox": queued, "expires_at": to_millis(link.expires_at) });
        note(&mut tx, Some(id), now, actor, EventKind::PasswordReset, reason, details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Opens a link once: its sealed password, emptied in the store.
    pub async fn open_password_link(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<LinkOutcome, StoreError> {
        let mut tx = self.pool().begin().await?;
        // SQLite: take the writer lock before reading (see events::lock_mailbox).
        sqlx::query("UPDATE password_links SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let row = sqlx::query(
            "SELECT l.id, l.mailbox_id, l.sealed, l.expires_at, l.opened_at, l.revoked_at, m.address \
             FROM password_links l JOIN mailboxes m ON m.id = l.mailbox_id WHERE l.token_hash = $1",
        )
        .bind(hash.as_str().to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(LinkOutcome::Unknown) };
        if row.try_get::<Option<i64>, _>("opened_at")?.is_some() {
            return Ok(LinkOutcome::AlreadyOpened);
        }
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            return Ok(LinkOutcome::Revoked);
        }
        let ms = to_millis(now);
        if row.try_get::<i64, _>("expires_at")? <= ms {
            return Ok(LinkOutcome::Expired);
        }
        let (id, mailbox_id): (i64, i64) = (row.try_get("id")?, row.try_get("mailbox_id")?);
        let done = sqlx::query(
            "UPDATE password_links SET opened_at = $1, sealed = '' WHERE id = $2 AND opened_at IS NULL AND revoked_at IS NULL",
        )
        .bind(ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(LinkOutcome::AlreadyOpened);
        }
        let system = Actor::System("portal".to_owned());
        note(
            &mut tx,
            Some(mailbox_id),
            now,
            &system,
            EventKind::PasswordLinkOpened,
            "new password shown once",
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(LinkOutcome::Opened { address: row.try_get("address")?, sealed: row.try_get("sealed")? })
    }
}
