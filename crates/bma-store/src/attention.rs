//! Mailboxes that need a human: the helpdesk flag and its list.
//!
//! Invariants: a mailbox is flagged at most once per reason, with an
//! event; a bounced mail 1 (`invitation_bounced`) is not replaced by
//! another reason until a resend clears it.

use bma_core::lifecycle::{Actor, State};
use bma_core::{Address, AttentionReason, EventKind};
use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::events::note;
use crate::mailbox::parse_state;
use crate::{Store, StoreError, from_millis, to_millis};

/// A mailbox that needs a human, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attention {
    /// Address.
    pub address: String,
    /// Its state.
    pub state: State,
    /// Why.
    pub reason: AttentionReason,
    /// Since when.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

impl Store {
    /// Flags a mailbox for the helpdesk with `reason`, with an event, unless
    /// it is already flagged for that reason, or for a bounced mail 1 (the
    /// flag the helpdesk must act on first, until a resend clears it).
    /// Returns whether it was flagged now.
    pub async fn flag(
        &self,
        address: &Address,
        reason: AttentionReason,
        why: &str,
        details: serde_json::Value,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let ms = to_millis(now);
        let done = sqlx::query(
            "UPDATE mailboxes SET attention = $1, attention_at = $2 WHERE address = $3 \
             AND (attention IS NULL OR (attention <> $1 AND attention <> $4))",
        )
        .bind(reason.as_str())
        .bind(ms)
        .bind(address.as_str())
        .bind(AttentionReason::InvitationBounced.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let id: i64 = sqlx::query_scalar("SELECT id FROM mailboxes WHERE address = $1")
            .bind(address.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let mut details = details;
        if let Some(map) = details.as_object_mut() {
            map.insert("attention".to_owned(), serde_json::Value::String(reason.as_str().to_owned()));
        }
        note(&mut tx, Some(id), now, actor, EventKind::Attention, why, details).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every mailbox flagged for the helpdesk, oldest flag first.
    pub async fn attention_list(&self) -> Result<Vec<Attention>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, state, attention, attention_at FROM mailboxes WHERE attention IS NOT NULL \
             ORDER BY attention_at, address",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Attention {
                    address: r.try_get("address")?,
                    state: parse_state(&r.try_get::<String, _>("state")?)?,
                    reason: AttentionReason::parse(&r.try_get::<String, _>("attention")?)?,
                    since: from_millis(r.try_get("attention_at")?),
                })
            })
            .collect()
    }
}
