//! `cutovers`: cutover slots for the enrolled mailboxes without one, and
//! the helpdesk flags of the windows closed without a form (in
//! `crate::cutover`). Queued daily; one per day.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Done, Payload};
use crate::{Engine, EngineError};

/// The campaign day of the planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutoversJob {
    /// The campaign day.
    #[serde(with = "bma_core::settings::iso_date")]
    pub day: Date,
}

impl Payload for CutoversJob {
    const KIND: bma_core::job::JobKind = bma_core::job::JobKind::Cutovers;

    fn key(&self) -> String {
        self.day.to_string()
    }
}

/// Gives the slots and flags the closed windows.
pub(crate) async fn run(engine: &Engine, _job: &CutoversJob, now: OffsetDateTime) -> Result<Done, EngineError> {
    let plan = engine.plan_cutovers(now, true).await?;
    let flagged = plan.unplaced.len() + engine.flag_closed_windows(now).await?;
    Ok(Done::Cutovers { slots: plan.slots.len(), flagged })
}
