//! Reminders: the invited mailboxes owed one, and each queued with a
//! fresh form link.
//!
//! Invariants: a reminder is queued at most once per mailbox and rank (its
//! outbox key `reminder:<rank>:<address>`), with a fresh form token whose
//! hash is kept beside the first one, so every link a manager received
//! keeps working; the email, the token and the event are one transaction.

use bma_core::lifecycle::{Actor, State};
use bma_core::{Address, EventKind, TokenHash};
use sqlx::Row;
use time::OffsetDateTime;

use crate::events::{lock_mailbox, note};
use crate::form_links::insert_form_token;
use crate::outbox::NewEmail;
use crate::{Store, StoreError, from_millis, to_millis};

/// A reminder due for a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    /// Mailbox id.
    pub mailbox_id: i64,
    /// Address.
    pub address: String,
    /// Establishment name.
    pub name: String,
    /// When mail 1 left.
    pub invited_at: OffsetDateTime,
    /// Rank of the reminder (1 for the first).
    pub rank: usize,
}

impl Store {
    /// Invited mailboxes (no form yet) owed a reminder by `now`, given the
    /// reminder days (counted in days from mail 1's day); each gets only the latest one due (a worker that was
    /// stopped for a while does not send two at once), and none if that one
    /// or a later one was already queued. Reminder keys are
    /// `reminder:<rank>:<address>`.
    pub async fn due_reminders(&self, now: OffsetDateTime, days: &[u32]) -> Result<Vec<DueReminder>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, address, name, invited_at FROM mailboxes WHERE state = 'invited' AND invited_at IS NOT NULL \
             ORDER BY address",
        )
        .fetch_all(self.pool())
        .await?;
        // The highest rank queued per mailbox, from the keys `reminder:<rank>:<address>`.
        let keys = sqlx::query(
            "SELECT o.mailbox_id, o.key FROM outbox o JOIN mailboxes m ON m.id = o.mailbox_id \
             WHERE o.kind = 'reminder' AND m.state = 'invited'",
        )
        .fetch_all(self.pool())
        .await?;
        let mut queued: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        for k in &keys {
            let key: String = k.try_get("key")?;
            let rank = key.split(':').nth(1).and_then(|r| r.parse::<usize>().ok()).unwrap_or(0);
            let entry = queued.entry(k.try_get("mailbox_id")?).or_default();
            *entry = (*entry).max(rank);
        }
        let mut due = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let invited_at = from_millis(r.try_get("invited_at")?);
            // By day: the daily job runs at the wave hour, perhaps a little
            // earlier in the day than mail 1 left.
            let reached =
                days.iter().filter(|d| invited_at.date() + time::Duration::days(i64::from(**d)) <= now.date()).count();
            if reached > queued.get(&id).copied().unwrap_or(0) {
                due.push(DueReminder {
                    mailbox_id: id,
                    address: r.try_get("address")?,
                    name: r.try_get("name")?,
                    invited_at,
                    rank: reached,
                });
            }
        }
        Ok(due)
    }

    /// Queues reminder `rank` of an invited mailbox with a fresh form token
    /// (its hash kept beside the others), with its event, in one
    /// transaction. Returns false when the mailbox is no longer invited or
    /// that reminder is already queued.
    pub async fn remind(
        &self,
        address: &Address,
        rank: usize,
        token_hash: &TokenHash,
        email: &NewEmail,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        if state != State::Invited {
            return Ok(false);
        }
        let (outbox_id, queued) = crate::outbox::insert_email(&mut tx, email, now).await?;
        if !queued {
            return Ok(false);
        }
        insert_form_token(&mut tx, token_hash, id, "reminder", to_millis(now)).await?;
        let details = serde_json::json!({ "outbox_id": outbox_id, "message_id": email.message_id, "rank": rank });
        let reason = format!("reminder {rank} queued");
        note(&mut tx, Some(id), now, actor, EventKind::ReminderQueued, &reason, details).await?;
        tx.commit().await?;
        Ok(true)
    }
}
