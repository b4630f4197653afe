//! `cutover`: one mailbox cut over to the new platform on its day
//! (`Engine::cut_over`, in `crate::switch`), resumed where it stopped when
//! a worker died. When its attempts are spent, or at once when it is
//! refused, the job is dead: a cutover under way is rolled back by the
//! rollback's own path (mail routed to the legacy platform, its login
//! restored) and the mailbox is `failed`; one refused at its checks stays
//! `cutover_scheduled`, nothing changed. Either way it is flagged
//! `cutover_failed` with the reason.

use bma_core::{AttentionReason, State};
use bma_store::{Job, SwitchEnd};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Done, Payload};
use crate::{Engine, EngineError, SwitchOutcome};

/// One mailbox's cutover on its day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutoverJob {
    /// The mailbox (its BMA address).
    pub address: String,
    /// Its cutover day.
    #[serde(with = "bma_core::settings::iso_date")]
    pub day: Date,
}

impl Payload for CutoverJob {
    const KIND: bma_core::job::JobKind = bma_core::job::JobKind::Cutover;

    fn key(&self) -> String {
        format!("{}:{}", self.address, self.day)
    }
}

/// Cuts the mailbox over; one not started yet whose job comes after the
/// cutover hours (queued in time, claimed late) is left for the next
/// allowed day, where the scheduler queues it again.
pub(crate) async fn run(engine: &Engine, job: &CutoverJob, now: OffsetDateTime) -> Result<Done, EngineError> {
    if let Some(switch) = &engine.settings.switch
        && !switch.limits.may_start(now.hour())
        && engine.store.switch_steps(&engine.address(&job.address)?).await?.state == State::CutoverScheduled
    {
        tracing::info!(address = %job.address, hour = now.hour(), "cutover: past the cutover hours, left to the next allowed day");
        return Ok(Done::Migrated(0));
    }
    match engine.cut_over(&job.address, now).await? {
        SwitchOutcome::Migrated(_) => Ok(Done::Migrated(1)),
        SwitchOutcome::AlreadyMigrated | SwitchOutcome::Left(_) => Ok(Done::Migrated(0)),
    }
}

/// Undoes and flags the cutover of a dead job; true if flagged now.
pub(crate) async fn flag_dead(
    engine: &Engine,
    cutover: &CutoverJob,
    job: &Job,
    error: &EngineError,
    now: OffsetDateTime,
) -> Result<bool, EngineError> {
    let address = engine.address(&cutover.address)?;
    let why = if error.is_permanent() {
        format!("cutover refused: {error}")
    } else {
        format!("cutover failed {} times: {error}", job.attempts)
    };
    let state = engine.store.switch_steps(&address).await?.state;
    if state == State::Migrating {
        engine.roll_back(&cutover.address, &why, &engine.actor(), SwitchEnd::Failed, now).await?;
        return Ok(true);
    }
    let details = serde_json::json!({ "job": job.id });
    Ok(engine.store.flag(&address, AttentionReason::CutoverFailed, &why, details, &engine.actor(), now).await?)
}
