//! The scheduler: one [`Engine::step`] per instant of the campaign clock.
//!
//! A step (1) turns what is due into jobs of the durable queue, keyed so
//! that the same instant (or the same day, for daily work) enqueues
//! nothing more; (2) runs the due jobs, presync copies several at a time;
//! (3) sends the outbox. Several workers may step at once on PostgreSQL:
//! the queue's leases (`FOR UPDATE SKIP LOCKED`) give each job to one.
//! Jobs are claimed one at a time (presync copies `presync.parallel` at a
//! time), each at the campaign clock's current instant
//! ([`Engine::step_on`]), leased on the real clock and the lease extended
//! while the job runs; a job whose lease was lost meanwhile is left to the
//! worker that took it over, and the step goes on. The deadline list is
//! claimed last, after the outbox was sent, and only once no mail 1 is
//! still due or in the outbox (it waits in the queue, no attempt counted),
//! so that it names only mailboxes without a delivered one.
//!
//! | job | key | when |
//! |---|---|---|
//! | `invitations` | day | a wave's day at the wave hour, if mailboxes are due |
//! | `reminders` | day | daily at the wave hour |
//! | `bounces` | hour | hourly, when the legacy platform is configured |
//! | `deadline_watch` | deadline | once, at the deadline's wave hour |
//! | `cutovers` | day | daily: slots, and windows closed without a form |
//! | `presync` | address:day | daily per mailbox, within the allowed hours, unless the legacy platform does not know it (flagged `legacy_unknown`) |
//! | `cutover` | address:day | on a mailbox's cutover day (or a later one) from `[cutover] hour` until `end_hour`, at most `max_parallel` mailboxes in flight (`bma_core::switch::Limits::admit`), when the cutover is configured, unless it is flagged (a failed cutover, a new platform that alters copies, unknown on legacy); one under way is resumed at any hour |
//! | `daily_report` | day | daily from `mail.daily_report_hour`, when set: the day before in figures, what needs a human now, to the migration team |
//!
//! What each job does, and its payload, is in [`crate::jobs`].
//!
//! Invariant: a campaign not started, or paused, runs nothing at all.

use std::collections::BTreeSet;

use bma_core::Clock;
use bma_core::job::{Claim, JobKind};
use bma_core::switch::Due;
use bma_store::{CampaignState, JobState, Lease, NewJob};
use time::OffsetDateTime;

use crate::jobs::Payload as _;
use crate::jobs::bounces::BouncesJob;
use crate::jobs::cutover::CutoverJob;
use crate::jobs::cutovers::CutoversJob;
use crate::jobs::daily_report::DailyReportJob;
use crate::jobs::deadline_watch::DeadlineWatchJob;
use crate::jobs::invitations::InvitationsJob;
use crate::jobs::presync::PresyncJob;
use crate::jobs::reminders::RemindersJob;
use crate::{Engine, EngineError, SendReport};

/// What one [`Engine::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The campaign's state (nothing ran unless running).
    pub state: CampaignState,
    /// Jobs enqueued now.
    pub enqueued: usize,
    /// Mailboxes invited.
    pub invited: usize,
    /// Reminders queued.
    pub reminded: usize,
    /// Mailboxes found bounced.
    pub bounced: usize,
    /// The deadline list, when it was queued now.
    pub deadline_listed: Option<usize>,
    /// Cutover slots given.
    pub cutovers: usize,
    /// Mailboxes flagged for the helpdesk.
    pub flagged: usize,
    /// Presync copies done.
    pub presynced: usize,
    /// Mailboxes cut over.
    pub migrated: usize,
    /// The daily report was queued now.
    pub reported: bool,
    /// Jobs that failed (retried later, or dead).
    pub failed_jobs: usize,
    /// The outbox.
    pub send: SendReport,
}

impl StepReport {
    fn idle(state: CampaignState) -> StepReport {
        StepReport {
            state,
            enqueued: 0,
            invited: 0,
            reminded: 0,
            bounced: 0,
            deadline_listed: None,
            cutovers: 0,
            flagged: 0,
            presynced: 0,
            migrated: 0,
            reported: false,
            failed_jobs: 0,
            send: SendReport::default(),
        }
    }
}

impl Engine {
    /// One instant of the campaign: schedule, run the due jobs, send.
    pub async fn step(&self, now: OffsetDateTime) -> Result<StepReport, EngineError> {
        self.step_on(&bma_core::ManualClock::new(now)).await
    }

    /// One step on `clock`: schedule what is due at its current instant,
    /// then run the due jobs and send the outbox, each claim at the clock's
    /// instant then.
    pub async fn step_on(&self, clock: &dyn Clock) -> Result<StepReport, EngineError> {
        let state = self.store.campaign_state().await?;
        if state != CampaignState::Running {
            return Ok(StepReport::idle(state));
        }
        let mut report = StepReport::idle(state);
        report.enqueued = self.schedule(clock.now()).await?;
        self.run_jobs(clock, &mut report).await?;
        report.send = self.send_due_on(clock).await?;
        if self.deadline_list_due(clock, &mut report).await? {
            let more = self.send_due_on(clock).await?;
            report.send.sent += more.sent;
            report.send.found_delivered += more.found_delivered;
            report.send.retried += more.retried;
            report.send.dead += more.dead;
            report.send.checking += more.checking;
            report.send.unconfirmed += more.unconfirmed;
            report.send.lease_lost += more.lease_lost;
        }
        Ok(report)
    }

    /// Runs the deadline list's job if it is due and no mail 1 is still to
    /// be queued (an `invitations` job waiting or running; a dead one does
    /// not hold the list back) or in the outbox (otherwise it waits in the
    /// queue). True if it ran.
    async fn deadline_list_due(&self, clock: &dyn Clock, report: &mut StepReport) -> Result<bool, EngineError> {
        let now = clock.now();
        // Before the deadline's day the job is not even queued: no query on every step.
        if self.campaign_day(now) < self.settings.settings.campaign.invitation_deadline {
            return Ok(false);
        }
        let inviting = self.store.job_counts().await?.iter().any(|(kind, state, n)| {
            *kind == JobKind::Invitations && matches!(state, JobState::Queued | JobState::Running) && *n > 0
        });
        if inviting || self.store.unsettled_invitations().await? > 0 {
            return Ok(false);
        }
        let lease = Lease::real(self.lease_length());
        let mut ran = false;
        let kinds = JobKind::claimed(Claim::AfterOutbox);
        for job in self.store.claim_leased(&self.worker, &kinds, now, lease, 1).await? {
            let result = self.holding(crate::Leased::Job(job.id), self.run_job(&job, now)).await;
            self.finish(&job, result, clock.now(), report).await?;
            ran = true;
        }
        Ok(ran)
    }

    /// Enqueues what is due at `now`; returns how many jobs are new.
    pub async fn schedule(&self, now: OffsetDateTime) -> Result<usize, EngineError> {
        let day = self.campaign_day(now);
        let day_key = day.to_string();
        let mut jobs: Vec<NewJob> = Vec::new();
        if !self.store.due_invitations(&day_key).await?.is_empty() {
            jobs.push(InvitationsJob { day }.job(now)?);
        }
        jobs.push(RemindersJob { day }.job(now)?);
        if self.settings.legacy.is_some() {
            jobs.push(BouncesJob::at(now).job(now)?);
        }
        let deadline = self.settings.settings.campaign.invitation_deadline;
        if day >= deadline {
            jobs.push(DeadlineWatchJob { deadline }.job(now)?);
        }
        jobs.push(CutoversJob { day }.job(now)?);
        if self.settings.daily_report_hour.is_some_and(|h| now.hour() >= h) {
            jobs.push(DailyReportJob { day: now.date() }.job(now)?);
        }
        if self.presync_due(now) {
            // A mailbox the legacy platform does not know is not a candidate.
            for address in self.store.presync_candidates().await? {
                jobs.push(PresyncJob { address, day: now.date() }.job(now)?);
            }
        }
        if let Some(switch) = &self.settings.switch {
            let due = self.store.switch_due(now.date()).await?;
            if !due.is_empty() {
                let queued: BTreeSet<String> = self
                    .store
                    .active_jobs(JobKind::Cutover)
                    .await?
                    .iter()
                    .filter_map(|job| crate::jobs::payload::<CutoverJob>(job).ok())
                    .map(|p| p.address)
                    .collect();
                let due: Vec<Due<'_>> = due
                    .iter()
                    .map(|d| Due { address: &d.address, started: d.started, queued: queued.contains(&d.address) })
                    .collect();
                for address in switch.limits.admit(now.hour(), &due) {
                    jobs.push(CutoverJob { address: address.to_owned(), day: now.date() }.job(now)?);
                }
            }
        }
        let mut new = 0;
        for job in jobs {
            if self.store.enqueue(&job, now).await?.1 {
                new += 1;
            }
        }
        Ok(new)
    }

    async fn run_jobs(&self, clock: &dyn Clock, report: &mut StepReport) -> Result<(), EngineError> {
        let serial = JobKind::claimed(Claim::Serial);
        loop {
            let lease = Lease::real(self.lease_length());
            let Some(job) = self.store.claim_leased(&self.worker, &serial, clock.now(), lease, 1).await?.pop() else {
                break;
            };
            let now = clock.now();
            let result = self.holding(crate::Leased::Job(job.id), self.run_job(&job, now)).await;
            self.finish(&job, result, clock.now(), report).await?;
        }
        let parallel_kinds = JobKind::claimed(Claim::Parallel);
        let parallel = u32::try_from(self.settings.presync.parallel.max(1)).unwrap_or(1);
        loop {
            let lease = Lease::real(self.lease_length());
            let jobs = self.store.claim_leased(&self.worker, &parallel_kinds, clock.now(), lease, parallel).await?;
            if jobs.is_empty() {
                break;
            }
            let now = clock.now();
            let runs = jobs.iter().map(|job| self.holding(crate::Leased::Job(job.id), self.run_job(job, now)));
            let results = futures_util::future::join_all(runs).await;
            for (job, result) in jobs.iter().zip(results) {
                self.finish(job, result, clock.now(), report).await?;
            }
        }
        Ok(())
    }
}
