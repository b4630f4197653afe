//! The cutover of one mailbox as the store records it: its start (the
//! move to `migrating` with the `check` step), each step done, mail 2
//! queued with its step, its end (`migrated`), and its way back (a
//! rollback or a failure: back to `cutover_scheduled`, or `failed`).
//!
//! Invariants: each function is one transaction that writes the step's
//! event (`cutover_step`, `details.step` its name) with what goes with it
//! (the transition, the outbox rows); a step is written only when the
//! mailbox is `migrating` (the start: `cutover_scheduled`), so a worker
//! that lost the mailbox to a rollback writes nothing; the steps of an
//! attempt are the `cutover_step` events since the mailbox last became
//! `migrating` ([`Store::switch_steps`]).

use bma_core::lifecycle::{Actor, State};
use bma_core::switch::Step;
use bma_core::{Address, AttentionReason, EventKind};
use sqlx::Row;
use time::OffsetDateTime;

use crate::events::{lock_mailbox, note};
use crate::outbox::{NewEmail, insert_email};
use crate::password_links::{NewPasswordLink, insert_link};
use crate::transition::{self, Also, Flag, Transition};
use crate::{EventRecord, Store, StoreError, from_millis, to_millis};

/// A step recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// Which.
    pub step: Step,
    /// When.
    pub at: OffsetDateTime,
    /// What it found or did.
    pub details: serde_json::Value,
}

/// Where a mailbox's cutover stands.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchProgress {
    /// The mailbox's state.
    pub state: State,
    /// When the current (or last) attempt started: the mailbox's last move to `migrating`.
    pub started_at: Option<OffsetDateTime>,
    /// The steps of that attempt, in the order recorded.
    pub steps: Vec<StepRecord>,
}

impl SwitchProgress {
    /// The progress a mailbox's whole timeline (its events by id, as
    /// [`Store::timeline`] reads them) shows, for a mailbox in `state`:
    /// the same as [`Store::switch_steps`] without reading the store again.
    pub fn from_timeline(state: State, events: &[EventRecord]) -> Result<SwitchProgress, StoreError> {
        let Some(start) =
            events.iter().rposition(|e| e.kind == EventKind::Transition && e.to_state == Some(State::Migrating))
        else {
            return Ok(SwitchProgress { state, started_at: None, steps: Vec::new() });
        };
        let steps = events[start..]
            .iter()
            .filter(|e| e.kind == EventKind::CutoverStep)
            .map(|e| {
                let name = e.details.get("step").and_then(|s| s.as_str()).unwrap_or_default();
                let step = name.parse::<Step>().map_err(|err| StoreError::Corrupt(err.to_string()))?;
                Ok(StepRecord { step, at: e.at, details: e.details.clone() })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(SwitchProgress { state, started_at: Some(events[start].at), steps })
    }

    /// The steps done.
    pub fn done(&self) -> Vec<Step> {
        self.steps.iter().map(|s| s.step).collect()
    }

    /// The details of `step`, if done.
    pub fn details(&self, step: Step) -> Option<&serde_json::Value> {
        self.steps.iter().rev().find(|s| s.step == step).map(|s| &s.details)
    }
}

/// A mailbox whose cutover is due ([`Store::switch_due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchDue {
    /// Its address.
    pub address: String,
    /// Its cutover is under way (`migrating`).
    pub started: bool,
}

/// A step done, as [`Store::record_step`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct StepDone<'a> {
    /// Which.
    pub step: Step,
    /// What it found or did (the event's details).
    pub details: &'a serde_json::Value,
    /// Emails it queues (mail 2 to the backup address; one already queued
    /// under its key is not queued again).
    pub emails: &'a [NewEmail],
    /// Emails it sent itself (mail 2 with a new password written out,
    /// which must not wait in the store): recorded `sent`, their header
    /// only, each with its mailbox's `email_sent` event.
    pub sent: &'a [NewEmail],
    /// The link of a new password it made, if any.
    pub link: Option<&'a NewPasswordLink>,
}

/// How a cutover ends that did not end `migrated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchEnd {
    /// Rolled back by an operator: `cutover_scheduled` again, to be cut over another day.
    RolledBack,
    /// Failed for good: `failed`, flagged `cutover_failed` for the helpdesk.
    Failed,
}

/// Writes the `cutover_step` event of `step`, its details with its name.
async fn note_step(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    now: OffsetDateTime,
    actor: &Actor,
    step: Step,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    note(tx, Some(id), now, actor, EventKind::CutoverStep, step.label_fr(), step_details(step, details)).await
}

fn step_details(step: Step, details: serde_json::Value) -> serde_json::Value {
    let mut details = details;
    match details.as_object_mut() {
        Some(map) => {
            map.insert("step".to_owned(), serde_json::Value::from(step.as_str()));
            details
        }
        None => serde_json::json!({ "step": step.as_str(), "value": details }),
    }
}

impl Store {
    /// Mailboxes whose cutover day has come by `day`: `cutover_scheduled`
    /// on or before it, not flagged for a reason a cutover must wait on (a
    /// failed cutover, a new platform that alters copies, a mailbox the
    /// legacy platform does not know); and `migrating` ones (a cutover to
    /// resume); the earliest cutover day first, then by address.
    pub async fn switch_due(&self, day: time::Date) -> Result<Vec<SwitchDue>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, state FROM mailboxes WHERE (state = 'migrating' OR (state = 'cutover_scheduled' \
             AND cutover_on IS NOT NULL AND cutover_on <= $1 \
             AND (attention IS NULL OR attention NOT IN ($2, $3, $4)))) ORDER BY cutover_on, address",
        )
        .bind(day.to_string())
        .bind(AttentionReason::CutoverFailed.as_str())
        .bind(AttentionReason::TargetAltered.as_str())
        .bind(AttentionReason::LegacyUnknown.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok(SwitchDue { address: r.try_get("address")?, started: state == State::Migrating.as_str() })
            })
            .collect()
    }

    /// The mailbox's cutover: its state and the steps of its last attempt.
    pub async fn switch_steps(&self, address: &Address) -> Result<SwitchProgress, StoreError> {
        let row = sqlx::query("SELECT id, state FROM mailboxes WHERE address = $1")
            .bind(address.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(address.to_string()))?;
        let id: i64 = row.try_get("id")?;
        let state = crate::mailbox::parse_state(&row.try_get::<String, _>("state")?)?;
        let since: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(id) FROM events WHERE mailbox_id = $1 AND kind = 'transition' AND to_state = 'migrating'",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        let Some(since) = since else {
            return Ok(SwitchProgress { state, started_at: None, steps: Vec::new() });
        };
        let started: i64 =
            sqlx::query_scalar("SELECT at FROM events WHERE id = $1").bind(since).fetch_one(self.pool()).await?;
        let rows =
            sqlx::query("SELECT at, details FROM events WHERE mailbox_id = $1 AND kind = $2 AND id >= $3 ORDER BY id")
                .bind(id)
                .bind(EventKind::CutoverStep.as_str())
                .bind(since)
                .fetch_all(self.pool())
                .await?;
        let mut steps = Vec::with_capacity(rows.len());
        for r in rows {
            let details: serde_json::Value = serde_json::from_str(&r.try_get::<String, _>("details")?)
                .map_err(|e| StoreError::Corrupt(format!("event details: {e}")))?;
            let name = details.get("step").and_then(|s| s.as_str()).unwrap_or_default();
            let step = name.parse::<Step>().map_err(|e| StoreError::Corrupt(e.to_string()))?;
            steps.push(StepRecord { step, at: from_millis(r.try_get("at")?), details });
        }
        Ok(SwitchProgress { state, started_at: Some(from_millis(started)), steps })
    }

    /// Starts a cutover: `cutover_scheduled` → `migrating` with the `check`
    /// step's findings, one transaction. False (nothing written) if the
    /// mailbox is not `cutover_scheduled`.
    pub async fn start_switch(
        &self,
        address: &Address,
        checks: serde_json::Value,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        if state != State::CutoverScheduled {
            return Ok(false);
        }
        let ms = to_millis(now);
        let change =
            Transition::of(id, address.as_str(), (state, State::Migrating), "cutover started", serde_json::json!({}));
        transition::apply(&mut tx, ms, &actor.to_text(), change, Also::default()).await?;
        note_step(&mut tx, id, now, actor, Step::Check, checks).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a step done, with what goes with it (see [`StepDone`]), in
    /// one transaction. False (nothing written) if the mailbox is no
    /// longer `migrating`.
    pub async fn record_step(
        &self,
        address: &Address,
        done: StepDone<'_>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let StepDone { step, details, emails, sent, link } = done;
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        if state != State::Migrating {
            return Ok(false);
        }
        if let Some(link) = link {
            insert_link(&mut tx, id, link, now).await?;
        }
        let mut details = step_details(step, details.clone());
        let mut queued = Vec::new();
        for email in emails {
            let (row, _) = insert_email(&mut tx, email, now).await?;
            queued.push(row);
        }
        if let (Some(map), false) = (details.as_object_mut(), queued.is_empty()) {
            map.insert("outbox".to_owned(), serde_json::json!(queued));
        }
        let mut recorded = Vec::new();
        for email in sent {
            recorded.push(crate::outbox::insert_sent_email(&mut tx, email, &actor.to_string(), now).await?);
        }
        if let (Some(map), false) = (details.as_object_mut(), recorded.is_empty()) {
            map.insert("sent".to_owned(), serde_json::json!(recorded));
        }
        note(&mut tx, Some(id), now, actor, EventKind::CutoverStep, step.label_fr(), details).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a cutover: the last step (`post_copy`) with its details, and
    /// `migrating` → `migrated` with the receipt, one transaction; a
    /// `cutover_failed` flag is cleared. False if not `migrating`.
    pub async fn finish_switch(
        &self,
        address: &Address,
        last: serde_json::Value,
        receipt: serde_json::Value,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        if state != State::Migrating {
            return Ok(false);
        }
        note_step(&mut tx, id, now, actor, Step::PostCopy, last).await?;
        let details = serde_json::json!({ "receipt": receipt });
        let change = Transition::of(id, address.as_str(), (state, State::Migrated), "cutover done", details);
        transition::apply(&mut tx, to_millis(now), &actor.to_text(), change, Also::default()).await?;
        sqlx::query("UPDATE mailboxes SET attention = NULL, attention_at = NULL WHERE id = $1 AND attention = $2")
            .bind(id)
            .bind(AttentionReason::CutoverFailed.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a cutover that did not reach `migrated` (or undoes one that
    /// did): `migrating` or `migrated` → `cutover_scheduled` (rolled back)
    /// or `failed` (flagged `cutover_failed`), with a `cutover_rollback`
    /// event saying what was undone, one transaction. False if the mailbox
    /// is in neither state.
    pub async fn end_switch(
        &self,
        address: &Address,
        end: SwitchEnd,
        reason: &str,
        undone: serde_json::Value,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        if !matches!(state, State::Migrating | State::Migrated) {
            return Ok(false);
        }
        note(&mut tx, Some(id), now, actor, EventKind::CutoverRollback, reason, undone).await?;
        let (to, attention) = match end {
            SwitchEnd::RolledBack => (State::CutoverScheduled, None),
            SwitchEnd::Failed => (State::Failed, Some(Flag::Raise(AttentionReason::CutoverFailed))),
        };
        let change = Transition::of(id, address.as_str(), (state, to), reason, serde_json::json!({}));
        transition::apply(&mut tx, to_millis(now), &actor.to_text(), change, Also { attention, ..Also::default() })
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
