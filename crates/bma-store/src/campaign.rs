//! The campaign as a whole: its state (not started, running, paused),
//! the operator's actions on it, its own emails (no mailbox) and the
//! outbox's counts.
//!
//! Invariants: each change is one transaction with its event; campaign
//! events have no mailbox.

use bma_core::EventKind;
use bma_core::lifecycle::Actor;
use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::events::note;
use crate::outbox::NewEmail;
use crate::{Store, StoreError, to_millis};

/// Where the campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Not started: nothing is invited or sent.
    NotStarted,
    /// Running.
    Running,
    /// Paused by an operator: nothing new is invited, sent or copied.
    Paused,
}

impl CampaignState {
    /// The name used in the store and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::NotStarted => "not_started",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
        }
    }
}

/// What an operator can do to the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    /// not started → running.
    Start,
    /// running → paused.
    Pause,
    /// paused → running.
    Resume,
}

impl Store {
    /// The campaign's state.
    pub async fn campaign_state(&self) -> Result<CampaignState, StoreError> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM campaign WHERE id = 1").fetch_optional(self.pool()).await?;
        match state.as_deref() {
            None | Some("not_started") => Ok(CampaignState::NotStarted),
            Some("running") => Ok(CampaignState::Running),
            Some("paused") => Ok(CampaignState::Paused),
            Some(other) => Err(StoreError::Corrupt(format!("campaign state '{other}'"))),
        }
    }

    /// Starts, pauses or resumes the campaign, with its event; refuses an
    /// action that does not fit the current state, saying why.
    pub async fn change_campaign(
        &self,
        action: CampaignAction,
        actor: &Actor,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<CampaignState, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM campaign WHERE id = 1").fetch_optional(&mut *tx).await?;
        let current = current.unwrap_or_else(|| "not_started".to_owned());
        let (from, to, verb, kind) = match action {
            CampaignAction::Start => ("not_started", CampaignState::Running, "start", EventKind::CampaignStart),
            CampaignAction::Pause => ("running", CampaignState::Paused, "pause", EventKind::CampaignPause),
            CampaignAction::Resume => ("paused", CampaignState::Running, "resume", EventKind::CampaignResume),
        };
        if current != from {
            return Err(StoreError::CampaignState(format!(
                "cannot {verb} the campaign: it is {} (only a campaign {} can be {verb}d)",
                current.replace('_', " "),
                from.replace('_', " ")
            )));
        }
        let ms = to_millis(now);
        // When it started, paused or resumed is in the campaign's events.
        sqlx::query(
            "INSERT INTO campaign (id, state, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(to.as_str())
        .bind(ms)
        .execute(&mut *tx)
        .await?;
        note(&mut tx, None, now, actor, kind, reason, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(to)
    }

    /// Queues an email of the campaign as a whole (no mailbox) with a
    /// campaign event, in one transaction; false when its key was queued
    /// before.
    pub async fn queue_campaign_email(
        &self,
        email: &NewEmail,
        event: EventKind,
        reason: &str,
        details: serde_json::Value,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (_, queued) = crate::outbox::insert_email(&mut tx, email, now).await?;
        if queued {
            note(&mut tx, None, now, actor, event, reason, details).await?;
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// Emails in the outbox per state (`pending`, `sending`, `sent`, `dead`).
    pub async fn outbox_counts(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state").fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("state")?, u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0))))
            .collect()
    }
}
