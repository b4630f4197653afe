//! `presync`: one mailbox copied to the new platform (`Engine::presync`, in
//! `crate::presync`). Queued daily per mailbox within the allowed hours;
//! claimed several at a time. When its attempts are spent, or at once when
//! the legacy platform does not know the mailbox (a permanent failure), the
//! job is dead and its mailbox flagged for the operators: `legacy_unknown`
//! ("unknown on the legacy platform") or `presync_failed`.

use bma_core::AttentionReason;
use bma_store::Job;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Done, Payload};
use crate::{Engine, EngineError};

/// One mailbox's copy of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresyncJob {
    /// The mailbox (its BMA address).
    pub address: String,
    /// The day (UTC) of the copy.
    #[serde(with = "bma_core::settings::iso_date")]
    pub day: Date,
}

impl Payload for PresyncJob {
    const KIND: bma_core::job::JobKind = bma_core::job::JobKind::Presync;

    fn key(&self) -> String {
        format!("{}:{}", self.address, self.day)
    }
}

/// Copies the mailbox.
pub(crate) async fn run(engine: &Engine, job: &PresyncJob, now: OffsetDateTime) -> Result<Done, EngineError> {
    engine.presync(&job.address, now).await.map(|_| Done::Presynced)
}

/// Flags the mailbox of a dead presync job; true if flagged now.
pub(crate) async fn flag_dead(
    engine: &Engine,
    presync: &PresyncJob,
    job: &Job,
    error: &EngineError,
    now: OffsetDateTime,
) -> Result<bool, EngineError> {
    let details = serde_json::json!({ "job": job.id });
    let (reason, why) = match error {
        EngineError::UnknownOnLegacy(_) => (AttentionReason::LegacyUnknown, error.to_string()),
        _ => (AttentionReason::PresyncFailed, format!("presync failed {} times: {error}", job.attempts)),
    };
    let address = engine.address(&presync.address)?;
    Ok(engine.store.flag(&address, reason, &why, details, &engine.actor(), now).await?)
}
