//! The engine's jobs: one file per [`JobKind`], each with its typed
//! payload (serde JSON in the job row) and its handler.
//!
//! Rules: the payload says everything a handler needs; nothing is parsed
//! back out of the job's idempotency key, which only keeps the same job
//! from being queued twice. Dispatch is one exhaustive `match` on the kind
//! (`Engine::run_job`): a new kind that is not handled does not compile.
//! The queue's semantics (leases, attempts, exactly-once) are the store's
//! (`bma_store::jobs`); here a finished job is completed, a failed one
//! recorded for a retry or, attempts spent or the failure permanent, dead
//! (a dead presync flags its mailbox).
//!
//! | kind | payload | key | file |
//! |---|---|---|---|
//! | `invitations` | the day | day | [`invitations`] |
//! | `reminders` | the day | day | [`reminders`] |
//! | `bounces` | the hour | `dayThh` | [`bounces`] |
//! | `deadline_watch` | the deadline | deadline | [`deadline_watch`] |
//! | `cutovers` | the day | day | [`cutovers`] |
//! | `presync` | the mailbox and the day | `address:day` | [`presync`] |
//! | `cutover` | the mailbox and its day | `address:day` | [`cutover`] |
//! | `daily_report` | the day it is sent | day | [`daily_report`] |

pub mod bounces;
pub mod cutover;
pub mod cutovers;
pub mod daily_report;
pub mod deadline_watch;
pub mod invitations;
pub mod presync;
pub mod reminders;

use bma_core::job::JobKind;
use bma_store::{FailOutcome, Job, NewJob, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::{Engine, EngineError, StepReport};

/// A job's payload, tied to its kind.
pub trait Payload: Serialize + DeserializeOwned {
    /// Its kind.
    const KIND: JobKind;

    /// Its idempotency key: the same work at the same time has the same key.
    fn key(&self) -> String;

    /// The job to enqueue, due at `run_at`.
    fn job(&self, run_at: OffsetDateTime) -> Result<NewJob, EngineError> {
        Ok(NewJob {
            kind: Self::KIND,
            key: self.key(),
            payload: serde_json::to_value(self).map_err(|e| EngineError::Encode(e.to_string()))?,
            run_at,
            max_attempts: Self::KIND.max_attempts(),
        })
    }
}

/// The payload of `job`, of the type its kind says.
pub(crate) fn payload<P: Payload>(job: &Job) -> Result<P, EngineError> {
    if job.kind != P::KIND {
        return Err(EngineError::Payload(job.id));
    }
    serde_json::from_value(job.payload.clone()).map_err(|_| EngineError::Payload(job.id))
}

/// What one job did, for the step's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Mailboxes invited.
    Invited(usize),
    /// Reminders queued.
    Reminded(usize),
    /// Mailboxes found bounced.
    Bounced(usize),
    /// The deadline list, if it was queued now.
    DeadlineListed(Option<usize>),
    /// Cutover slots given, mailboxes flagged.
    Cutovers {
        /// Slots given.
        slots: usize,
        /// Mailboxes flagged for the helpdesk.
        flagged: usize,
    },
    /// A mailbox copied.
    Presynced,
    /// Mailboxes cut over now (0: already, or left to another).
    Migrated(usize),
    /// The daily report: whether it was queued now (not by another worker before).
    Reported(bool),
}

impl StepReport {
    /// Adds what a job did.
    pub(crate) fn add(&mut self, done: Done) {
        match done {
            Done::Invited(n) => self.invited += n,
            Done::Reminded(n) => self.reminded += n,
            Done::Bounced(n) => self.bounced += n,
            Done::DeadlineListed(listed) => self.deadline_listed = listed,
            Done::Cutovers { slots, flagged } => {
                self.cutovers += slots;
                self.flagged += flagged;
            }
            Done::Presynced => self.presynced += 1,
            Done::Migrated(n) => self.migrated += n,
            Done::Reported(now) => self.reported |= now,
        }
    }
}

impl Engine {
    /// Runs one job at `now`: the one dispatch on its kind.
    pub(crate) async fn run_job(&self, job: &Job, now: OffsetDateTime) -> Result<Done, EngineError> {
        match job.kind {
            JobKind::Invitations => invitations::run(self, &payload(job)?, now).await,
            JobKind::Reminders => reminders::run(self, &payload(job)?, now).await,
            JobKind::Bounces => bounces::run(self, &payload(job)?, now).await,
            JobKind::DeadlineWatch => deadline_watch::run(self, &payload(job)?, now).await,
            JobKind::Cutovers => cutovers::run(self, &payload(job)?, now).await,
            JobKind::Presync => presync::run(self, &payload(job)?, now).await,
            JobKind::Cutover => cutover::run(self, &payload(job)?, now).await,
            JobKind::DailyReport => daily_report::run(self, &payload(job)?, now).await,
        }
    }

    /// Completes a job, or records its failure (retry with backoff, or
    /// dead; a dead presync flags its mailbox). A job whose lease another
    /// worker took over is left to that worker.
    pub(crate) async fn finish(
        &self,
        job: &Job,
        result: Result<Done, EngineError>,
        now: OffsetDateTime,
        report: &mut StepReport,
    ) -> Result<(), EngineError> {
        match self.record(job, result, now, report).await {
            Err(EngineError::Store(StoreError::LeaseLost { .. })) => {
                tracing::warn!(job = job.id, kind = %job.kind, "another worker took this job over: left to it");
                Ok(())
            }
            other => other,
        }
    }

    async fn record(
        &self,
        job: &Job,
        result: Result<Done, EngineError>,
        now: OffsetDateTime,
        report: &mut StepReport,
    ) -> Result<(), EngineError> {
        let error = match result {
            Ok(done) => {
                report.add(done);
                self.store.complete(job.id, &self.worker, now).await?;
                return Ok(());
            }
            Err(e) => e,
        };
        report.failed_jobs += 1;
        let message = error.to_string();
        tracing::warn!(job = job.id, kind = %job.kind, error = %message, "job failed");
        // A permanent failure (a mailbox the legacy platform does not know, a bad payload) is dead at once.
        let outcome = self.store.fail(job.id, &self.worker, &message, error.is_permanent(), now).await?;
        if outcome == FailOutcome::Dead
            && job.kind == JobKind::Presync
            && let Ok(p) = payload::<presync::PresyncJob>(job)
            && presync::flag_dead(self, &p, job, &error, now).await?
        {
            report.flagged += 1;
        }
        if outcome == FailOutcome::Dead
            && job.kind == JobKind::Cutover
            && let Ok(p) = payload::<cutover::CutoverJob>(job)
            && cutover::flag_dead(self, &p, job, &error, now).await?
        {
            report.flagged += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::Payload;
    use super::bounces::BouncesJob;
    use super::cutover::CutoverJob;
    use super::cutovers::CutoversJob;
    use super::daily_report::DailyReportJob;
    use super::deadline_watch::DeadlineWatchJob;
    use super::invitations::InvitationsJob;
    use super::presync::PresyncJob;
    use super::reminders::RemindersJob;

    /// A job's key and payload as stored, and its payload read back.
    fn stored<P: Payload + PartialEq + std::fmt::Debug>(p: &P) -> String {
        let job = p.job(datetime!(2024-04-22 08:00 UTC)).expect("a job");
        let back: P = serde_json::from_value(job.payload.clone()).expect("its payload read back");
        assert_eq!(&back, p);
        format!("{} {} {} {}", job.kind, job.max_attempts, job.key, job.payload)
    }

    #[test]
    fn keys_are_those_of_before_and_payloads_round_trip() {
        let day = date!(2024 - 04 - 22);
        let rows = [
            stored(&InvitationsJob { day }),
            stored(&RemindersJob { day }),
            stored(&BouncesJob::at(datetime!(2024-04-22 07:05 UTC))),
            stored(&DeadlineWatchJob { deadline: date!(2024 - 05 - 24) }),
            stored(&CutoversJob { day }),
            stored(&PresyncJob { address: "ec012345@adm.cfwb.be".into(), day }),
            stored(&CutoverJob { address: "ec012345@adm.cfwb.be".into(), day }),
            stored(&DailyReportJob { day }),
        ];
        expect_test::expect![[r#"
            invitations 5 2024-04-22 {"day":"2024-04-22"}
            reminders 5 2024-04-22 {"day":"2024-04-22"}
            bounces 3 2024-04-22T07 {"day":"2024-04-22","hour":7}
            deadline_watch 5 2024-05-24 {"deadline":"2024-05-24"}
            cutovers 5 2024-04-22 {"day":"2024-04-22"}
            presync 3 ec012345@adm.cfwb.be:2024-04-22 {"address":"ec012345@adm.cfwb.be","day":"2024-04-22"}
            cutover 3 ec012345@adm.cfwb.be:2024-04-22 {"address":"ec012345@adm.cfwb.be","day":"2024-04-22"}
            daily_report 5 2024-04-22 {"day":"2024-04-22"}"#]]
        .assert_eq(&rows.join("\n"));
    }
}
