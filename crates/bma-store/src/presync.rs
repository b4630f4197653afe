//! Presync results: the mailboxes the presync copies, and a copy
//! recorded (the first full one of an enrolled mailbox makes it
//! `presynced`).
//!
//! Invariants: a completed copy clears a `presync_failed` flag; a copy
//! that brought nothing new writes no event.

use bma_core::lifecycle::{Actor, State};
use bma_core::{Address, AttentionReason, EventKind, PresyncDetails};
use time::OffsetDateTime;

use crate::events::{lock_mailbox, note};
use crate::transition::{self, Also, Transition};
use crate::{Store, StoreError, to_millis};

impl Store {
    /// Mailboxes the presync copies: invited, enrolled, presynced or
    /// cutover-scheduled, in address order; not one the legacy platform
    /// does not know (flagged `legacy_unknown`, tried once, never again
    /// while the flag stands).
    pub async fn presync_candidates(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT address FROM mailboxes WHERE state IN ('invited', 'enrolled', 'presynced', 'cutover_scheduled') \
             AND (attention IS NULL OR attention <> $1) ORDER BY address",
        )
        .bind(AttentionReason::LegacyUnknown.as_str())
        .fetch_all(self.pool())
        .await?)
    }

    /// Records a successful presync: the first one of an enrolled mailbox
    /// moves it to `presynced`; later ones are an event with their figures
    /// when they copied something.
    pub async fn record_presync(
        &self,
        address: &Address,
        figures: &PresyncDetails,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        let ms = to_millis(now);
        sqlx::query("UPDATE mailboxes SET attention = NULL, attention_at = NULL WHERE id = $1 AND attention = $2")
            .bind(id)
            .bind(AttentionReason::PresyncFailed.as_str())
            .execute(&mut *tx)
            .await?;
        let details = serde_json::to_value(figures).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if state == State::Enrolled {
            let change = Transition {
                mailbox_id: id,
                address: address.as_str(),
                from: state,
                blocked_from: None,
                to: State::Presynced,
                reason: "first full copy done",
                details,
            };
            transition::apply(&mut tx, ms, &actor.to_text(), change, Also::default()).await?;
        } else if figures.copied > 0 {
            // A copy that brought nothing new is not worth a line in the timeline.
            note(&mut tx, Some(id), now, actor, EventKind::Presync, "copy brought up to date", details).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
