//! `reminders`: reminders to the managers who have not answered
//! (`Engine::remind_due`). Queued daily at the wave hour; one per day.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Done, Payload};
use crate::{Engine, EngineError};

/// The campaign day of the reminders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemindersJob {
    /// The campaign day.
    #[serde(with = "bma_core::settings::iso_date")]
    pub day: Date,
}

impl Payload for RemindersJob {
    const KIND: bma_core::job::JobKind = bma_core::job::JobKind::Reminders;

    fn key(&self) -> String {
        self.day.to_string()
    }
}

/// Queues the reminders due at `now`.
pub(crate) async fn run(engine: &Engine, _job: &RemindersJob, now: OffsetDateTime) -> Result<Done, EngineError> {
    Ok(Done::Reminded(engine.remind_due(now).await?))
}
