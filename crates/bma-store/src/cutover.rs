//! Cutover slots: the mailboxes to place, a slot given (the move to
//! `cutover_scheduled`), and the invited mailboxes whose window closed.
//!
//! Invariants: a slot is given through the one transition path, in one
//! transaction with its event; a mailbox whose state changed meanwhile
//! gets none.

use bma_core::Address;
use bma_core::lifecycle::{Actor, State};
use sqlx::Row;
use time::{Date, OffsetDateTime};

use crate::mailbox::{parse_date, parse_state};
use crate::transition::{self, Also, Transition};
use crate::{Store, StoreError, from_millis, to_millis};

/// A mailbox to place on a cutover day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutoverRow {
    /// Address.
    pub address: String,
    /// Its state.
    pub state: State,
    /// When mail 1 left.
    pub invited_at: OffsetDateTime,
    /// When the form came (last time it became enrolled).
    pub enrolled_at: Option<OffsetDateTime>,
    /// Usage on the legacy platform.
    pub usage_bytes: Option<u64>,
    /// Its slot, if it has one.
    pub cutover_on: Option<Date>,
}

impl Store {
    /// Enrolled, presynced and cutover-scheduled mailboxes, for the cutover planner.
    pub async fn cutover_rows(&self) -> Result<Vec<CutoverRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.address, m.state, m.invited_at, m.usage_bytes, m.cutover_on, \
             (SELECT MAX(e.at) FROM events e WHERE e.mailbox_id = m.id AND e.to_state = 'enrolled') AS enrolled_at \
             FROM mailboxes m WHERE m.state IN ('enrolled', 'presynced', 'cutover_scheduled') \
             AND m.invited_at IS NOT NULL ORDER BY m.address",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CutoverRow {
                    address: r.try_get("address")?,
                    state: parse_state(&r.try_get::<String, _>("state")?)?,
                    invited_at: from_millis(r.try_get("invited_at")?),
                    enrolled_at: r.try_get::<Option<i64>, _>("enrolled_at")?.map(from_millis),
                    usage_bytes: r.try_get::<Option<i64>, _>("usage_bytes")?.and_then(|n| u64::try_from(n).ok()),
                    cutover_on: parse_date(r.try_get("cutover_on")?)?,
                })
            })
            .collect()
    }

    /// Gives an enrolled or presynced mailbox its cutover day, moving it to
    /// `cutover_scheduled`, with its event. False if its state changed.
    pub async fn schedule_cutover(
        &self,
        address: &Address,
        day: Date,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row =
            sqlx::query("SELECT id, state FROM mailboxes WHERE address = $1 AND state IN ('enrolled', 'presynced')")
                .bind(address.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else { return Ok(false) };
        let id: i64 = row.try_get("id")?;
        let from = parse_state(&row.try_get::<String, _>("state")?)?;
        let ms = to_millis(now);
        let reason = format!("cutover on {day}");
        let details = serde_json::json!({ "cutover_on": day.to_string() });
        let change = Transition {
            mailbox_id: id,
            address: address.as_str(),
            from,
            blocked_from: None,
            to: State::CutoverScheduled,
            reason: &reason,
            details,
        };
        let also = Also { cutover_on: Some(day), ..Also::default() };
        match transition::apply(&mut tx, ms, &actor.to_text(), change, also).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Invited mailboxes (no form) whose cutover window closed before `closed_before`.
    pub async fn invited_before(&self, invited_before: OffsetDateTime) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT address FROM mailboxes WHERE state = 'invited' AND invited_at < $1 \
             AND (attention IS NULL OR attention <> 'window_closed') ORDER BY address",
        )
        .bind(to_millis(invited_before))
        .fetch_all(self.pool())
        .await?)
    }
}
