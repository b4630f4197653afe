//! `invitations`: mail 1 of the wave due today, queued in the outbox with
//! each mailbox's move to `invited` (`Engine::invite_due`). Queued on a
//! wave's day at the wave hour when mailboxes are due; one per day.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Done, Payload};
use crate::{Engine, EngineError};

/// The campaign day whose wave is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationsJob {
    /// The campaign day.
    #[serde(with = "bma_core::settings::iso_date")]
    pub day: Date,
}

impl Payload for InvitationsJob {
    const KIND: bma_core::job::JobKind = bma_core::job::JobKind::Invitations;

    fn key(&self) -> String {
        self.day.to_string()
    }
}

/// Invites the mailboxes due at `now`.
pub(crate) async fn run(engine: &Engine, _job: &InvitationsJob, now: OffsetDateTime) -> Result<Done, EngineError> {
    Ok(Done::Invited(engine.invite_due(now).await?))
}
