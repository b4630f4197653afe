//! `deadline_watch`: the list of mailboxes without a delivered mail 1,
//! sent once to the migration team (`Engine::deadline_watch`). Queued from
//! the invitation deadline's wave hour, claimed last in a step once no
//! mail 1 is pending (`crate::scheduler`); one per campaign.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Done, Payload};
use crate::{Engine, EngineError};

/// The deadline the list is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineWatchJob {
    /// The invitation deadline.
    #[serde(with = "bma_core::settings::iso_date")]
    pub deadline: Date,
}

impl Payload for DeadlineWatchJob {
    const KIND: bma_core::job::JobKind = bma_core::job::JobKind::DeadlineWatch;

    fn key(&self) -> String {
        self.deadline.to_string()
    }
}

/// Queues the deadline list.
pub(crate) async fn run(engine: &Engine, _job: &DeadlineWatchJob, now: OffsetDateTime) -> Result<Done, EngineError> {
    Ok(Done::DeadlineListed(engine.deadline_watch(now).await?))
}
