//! `bounces`: the new messages of the bounce mailbox read and matched to
//! their mailbox (`Engine::read_bounces`, in `crate::bounces`). Queued
//! hourly when the legacy platform is configured; one per hour.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Done, Payload};
use crate::{Engine, EngineError};

/// The hour (UTC) the bounce mailbox is read for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BouncesJob {
    /// The day.
    #[serde(with = "bma_core::settings::iso_date")]
    pub day: Date,
    /// The hour of that day, 0 to 23.
    pub hour: u8,
}

impl BouncesJob {
    /// The hour of `now`.
    pub fn at(now: OffsetDateTime) -> BouncesJob {
        BouncesJob { day: now.date(), hour: now.hour() }
    }
}

impl Payload for BouncesJob {
    const KIND: bma_core::job::JobKind = bma_core::job::JobKind::Bounces;

    fn key(&self) -> String {
        format!("{}T{:02}", self.day, self.hour)
    }
}

/// Reads the bounce mailbox.
pub(crate) async fn run(engine: &Engine, _job: &BouncesJob, now: OffsetDateTime) -> Result<Done, EngineError> {
    Ok(Done::Bounced(engine.read_bounces(now).await?.bounced))
}
