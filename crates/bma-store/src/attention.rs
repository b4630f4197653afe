//! Mailboxes that need a human: the helpdesk flag and its list.
//!
//! Invariants: a mailbox is flagged at most once per reason, with an
//! event; a reason that is kept ([`AttentionReason::is_kept`]: a bounced
//! mail 1, a mailbox the legacy platform does not know) is not replaced by
//! another one.

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
    /// it is already flagged for that reason, or for a reason that is kept
    /// until a human acts (a bounced mail 1, a mailbox the legacy platform
    /// does not know). Returns whether it was flagged now.
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
        let current: Option<Option<String>> = sqlx::query_scalar("SELECT attention FROM mailboxes WHERE address = $1")
            .bind(address.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Ok(false);
        };
        let kept = match current.as_deref().map(AttentionReason::parse) {
            Some(Ok(r)) => r == reason || r.is_kept(),
            Some(Err(e)) => return Err(e.into()),
            None => false,
        };
        if kept {
            return Ok(false);
        }
        // Conditional on the reason read: a flag set meanwhile by another
        // worker is not overwritten.
        let done = sqlx::query(
            "UPDATE mailboxes SET attention = $1, attention_at = $2 WHERE address = $3 \
             AND attention IS NOT DISTINCT FROM $4",
        )
        .bind(reason.as_str())
        .bind(ms)
        .bind(address.as_str())
        .bind(current)
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
        self.attention_where("", None).await
    }

    /// The flag of one mailbox, if it has one (the console's mailbox page:
    /// one row, not the whole list).
    pub async fn attention_of(&self, address: &Address) -> Result<Option<Attention>, StoreError> {
        Ok(self.attention_where("AND address = $1", Some(address)).await?.pop())
    }

    async fn attention_where(&self, filter: &str, address: Option<&Address>) -> Result<Vec<Attention>, StoreError> {
        let sql = format!(
            "SELECT address, state, attention, attention_at FROM mailboxes WHERE attention IS NOT NULL {filter} \
             ORDER BY attention_at, address"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(a) = address {
            query = query.bind(a.as_str());
        }
        let rows = query.fetch_all(self.pool()).await?;
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
