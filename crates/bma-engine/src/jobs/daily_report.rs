//! `daily_report`: the migration team's daily report (`Engine::daily_report`),
//! queued once a day from `mail.daily_report_hour`; its key is the day, and
//! its email's outbox key too, so several workers send it once.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Done, Payload};
use crate::{Engine, EngineError};

/// The day the report is sent (it reports the day before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyReportJob {
    /// The day it is sent.
    #[serde(with = "bma_core::settings::iso_date")]
    pub day: Date,
}

impl Payload for DailyReportJob {
    const KIND: bma_core::job::JobKind = bma_core::job::JobKind::DailyReport;

    fn key(&self) -> String {
        self.day.to_string()
    }
}

/// Queues the report.
pub(crate) async fn run(engine: &Engine, job: &DailyReportJob, now: OffsetDateTime) -> Result<Done, EngineError> {
    Ok(Done::Reported(engine.daily_report(job.day, now).await?))
}
