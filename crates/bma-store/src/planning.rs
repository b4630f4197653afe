//! Planning data of mailboxes: waves, pins, exclusions, priorities.
//!
//! Applying a wave plan is one transaction: every newly planned mailbox
//! moves from `imported` to `scheduled` (a transition event with its wave),
//! every scheduled mailbox whose wave changes gets a `replanned` event, and
//! a `wave_plan` summary event is written. Either all of it lands or none.

use std::collections::HashMap;

use bma_core::lifecycle::{self, Actor, State};
use bma_core::planner::{Candidate, WavePlan};
use bma_core::{Address, EventKind};
use serde::Serialize;
use sqlx::Row;
use time::{Date, OffsetDateTime};

use crate::events::{self, Event};
use crate::mailbox::{parse_date, parse_state};
use crate::transition::{self, Also, Transition};
use crate::{Store, StoreError, to_millis};

/// What applying a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanOutcome {
    /// Mailboxes moved from imported to scheduled.
    pub scheduled: usize,
    /// Scheduled mailboxes moved to another wave.
    pub moved: usize,
    /// Already in the right wave.
    pub unchanged: usize,
}

/// An operator's change to the planning data of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanningChange {
    /// Pin to a wave (or unpin with `None`).
    Pin(Option<Date>),
    /// Exclude from (or readmit to) the planning.
    Exclude(bool),
    /// Set the priority.
    Priority(i64),
}

impl Store {
    /// Every mailbox as the planner sees it. Blocked mailboxes are left out
    /// (as excluded); mailboxes past `scheduled` count as invited.
    pub async fn planning_candidates(&self) -> Result<Vec<Candidate>, StoreError> {
        let rows =
            sqlx::query("SELECT address, state, blocked_from, wave, pinned_wave, excluded, priority FROM mailboxes")
                .fetch_all(self.pool())
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let state = parse_state(&r.try_get::<String, _>("state")?)?;
            let blocked_from: Option<String> = r.try_get("blocked_from")?;
            let effective = match (state, blocked_from.as_deref()) {
                (State::Blocked, Some(from)) => parse_state(from)?,
                (s, _) => s,
            };
            let invited = !matches!(effective, State::Imported | State::Scheduled);
            out.push(Candidate {
                address: r.try_get("address")?,
                invited,
                invited_in: if invited { parse_date(r.try_get("wave")?)? } else { None },
                pinned: parse_date(r.try_get("pinned_wave")?)?,
                excluded: r.try_get::<i64, _>("excluded")? != 0 || state == State::Blocked,
                priority: r.try_get("priority")?,
            });
        }
        Ok(out)
    }

    /// Applies a wave plan in one transaction (see the module doc).
    pub async fn apply_wave_plan(
        &self,
        plan: &WavePlan,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<PlanOutcome, StoreError> {
        let now = to_millis(at);
        let actor = actor.to_text();
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let rows = sqlx::query("SELECT id, address, state, wave FROM mailboxes").fetch_all(&mut *tx).await?;
        let mut current: HashMap<String, (i64, State, Option<Date>)> = HashMap::with_capacity(rows.len());
        for r in &rows {
            current.insert(
                r.try_get("address")?,
                (r.try_get("id")?, parse_state(&r.try_get::<String, _>("state")?)?, parse_date(r.try_get("wave")?)?),
            );
        }
        let mut outcome = PlanOutcome::default();
        for wave in &plan.waves {
            let day = wave.starts.to_string();
            for address in &wave.planned {
                let (id, state, old_wave) =
                    current.get(address).cloned().ok_or_else(|| StoreError::NotFound(address.clone()))?;
                let details = serde_json::json!({ "wave": day });
                match state {
                    State::Imported => {
                        outcome.scheduled += 1;
                        let reason = format!("planned in the wave of {day}");
                        let change = Transition {
                            mailbox_id: id,
                            address,
                            from: state,
                            blocked_from: None,
                            to: State::Scheduled,
                            reason: &reason,
                            details,
                        };
                        let also = Also { wave: Some(wave.starts), ..Also::default() };
                        transition::apply(&mut tx, now, &actor, change, also).await?;
                    }
                    State::Scheduled if old_wave != Some(wave.starts) => {
                        outcome.moved += 1;
                        let from = old_wave.map_or_else(|| "none".to_owned(), |d| d.to_string());
                        let reason = format!("moved from the wave of {from} to {day}");
                        // The state stays; the update is conditional on it all the same.
                        let done =
                            sqlx::query("UPDATE mailboxes SET wave = $1, updated_at = $2 WHERE id = $3 AND state = $4")
                                .bind(day.clone())
                                .bind(now)
                                .bind(id)
                                .bind(state.as_str())
                                .execute(&mut *tx)
                                .await?;
                        if done.rows_affected() != 1 {
                            return Err(StoreError::Conflict(address.clone()));
                        }
                        let event = Event::note(Some(id), EventKind::Replanned, &reason, details);
                        events::record(&mut tx, now, &actor, event).await?;
                    }
                    State::Scheduled => {
                        outcome.unchanged += 1;
                        continue;
                    }
                    other => {
                        return Err(StoreError::Illegal {
                            address: address.clone(),
                            why: lifecycle::IllegalTransition::NotAllowed { from: other, to: State::Scheduled },
                        });
                    }
                }
            }
        }
        let summary: Vec<serde_json::Value> = plan
            .waves
            .iter()
            .map(|w| serde_json::json!({ "starts": w.starts.to_string(), "mailboxes": w.size() }))
            .collect();
        let reason =
            format!("{} scheduled, {} moved, {} unchanged", outcome.scheduled, outcome.moved, outcome.unchanged);
        let details = serde_json::json!({ "waves": summary });
        events::record(&mut tx, now, &actor, Event::note(None, EventKind::WavePlan, &reason, details)).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Pins, excludes or prioritises a mailbox, with its event, in one transaction.
    pub async fn change_planning(
        &self,
        address: &Address,
        change: &PlanningChange,
        actor: &Actor,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let (sql, kind, details): (&str, EventKind, serde_json::Value) = match change {
            PlanningChange::Pin(d) => (
                "UPDATE mailboxes SET pinned_wave = $1, updated_at = $2 WHERE address = $3 RETURNING id",
                EventKind::Pinned,
                serde_json::json!({ "wave": d.map(|d| d.to_string()) }),
            ),
            PlanningChange::Exclude(e) => (
                "UPDATE mailboxes SET excluded = $1, updated_at = $2 WHERE address = $3 RETURNING id",
                EventKind::Excluded,
                serde_json::json!({ "excluded": e }),
            ),
            PlanningChange::Priority(p) => (
                "UPDATE mailboxes SET priority = $1, updated_at = $2 WHERE address = $3 RETURNING id",
                EventKind::Priority,
                serde_json::json!({ "priority": p }),
            ),
        };
        let q = sqlx::query_scalar::<_, i64>(sql);
        let q = match change {
            PlanningChange::Pin(d) => q.bind(d.map(|d| d.to_string())),
            PlanningChange::Exclude(e) => q.bind(i64::from(*e)),
            PlanningChange::Priority(p) => q.bind(*p),
        };
        let id = q
            .bind(to_millis(at))
            .bind(address.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(address.to_string()))?;
        let event = Event::note(Some(id), kind, reason, details);
        events::record(&mut tx, to_millis(at), &actor.to_text(), event).await?;
        tx.commit().await?;
        Ok(())
    }
}
