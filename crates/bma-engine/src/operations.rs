//! Operator actions on one mailbox, with their rules: move it to another
//! state, pin it to a wave, leave it out of the planning (or readmit it),
//! set its priority, send mail 1 again, give it a new password, copy it
//! again now. Called by the CLI (`bma mailbox …`, which only parses and
//! prints) and the helpdesk console (`bma_web::console`).
//!
//! Rules: every action says who acts, why and when ([`Operation`]); a
//! reason is never empty ([`Reason`]); a mailbox is named by a valid
//! [`Address`]; a pin is to one of the campaign's wave days; a state change
//! goes through the lifecycle's rules (the store refuses an illegal one and
//! writes nothing); each action is one store transaction with its event.
//! Mail 1 sent again leaves only through the outbox.

use std::fmt;
use std::str::FromStr;

use bma_core::settings::CampaignSettings;
use bma_core::{Actor, Address, State};
use bma_store::{MailboxRecord, OlderLinks, PlanningChange, Store, StoreError};
use time::{Date, OffsetDateTime};

use crate::{Engine, EngineError};

/// Why an operator acts: never empty (recorded in the timeline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// A reason, trimmed; refused if empty.
    pub fn new(s: &str) -> Result<Reason, OperationError> {
        let s = s.trim();
        if s.is_empty() { Err(OperationError::NoReason) } else { Ok(Reason(s.to_owned())) }
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Reason {
    type Err = OperationError;

    fn from_str(s: &str) -> Result<Reason, OperationError> {
        Reason::new(s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who acts, why and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Who.
    pub actor: Actor,
    /// Why.
    pub reason: Reason,
    /// When, on the campaign clock.
    pub at: OffsetDateTime,
}

/// An operator action refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The reason is empty.
    #[error("the reason must say why")]
    NoReason,
    /// A pin to a day that is not a wave day.
    #[error("{day} is not a wave day (waves: {waves})")]
    NotAWaveDay {
        /// The day asked for.
        day: Date,
        /// The campaign's wave days, comma-separated.
        waves: String,
    },
    /// The campaign's wave weekday is not a day.
    #[error("campaign.wave_weekday is not a day")]
    NoWaveWeekday,
    /// The store refused or failed (an illegal transition, an unknown mailbox, …).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine failed (rendering or queuing mail 1).
    #[error(transparent)]
    Engine(Box<EngineError>),
}

impl From<EngineError> for OperationError {
    fn from(e: EngineError) -> OperationError {
        match e {
            EngineError::Store(s) => OperationError::Store(s),
            other => OperationError::Engine(Box::new(other)),
        }
    }
}

/// Moves a mailbox to `to`, if the lifecycle allows it (the details record
/// `via`, the channel: `cli`, `helpdesk`).
pub async fn transition(
    store: &Store,
    address: &Address,
    to: State,
    via: &str,
    op: &Operation,
) -> Result<MailboxRecord, OperationError> {
    let details = serde_json::json!({ "via": via });
    Ok(store.transition(address, to, &op.actor, op.reason.as_str(), details, op.at).await?)
}

/// Pins a mailbox to the wave of `wave` (one of the campaign's wave days),
/// or unpins it with `None`.
pub async fn pin(
    store: &Store,
    campaign: &CampaignSettings,
    address: &Address,
    wave: Option<Date>,
    op: &Operation,
) -> Result<(), OperationError> {
    if let Some(day) = wave {
        check_wave_day(campaign, day)?;
    }
    change(store, address, &PlanningChange::Pin(wave), op).await
}

/// Whether `day` is one of the campaign's wave days.
pub fn check_wave_day(campaign: &CampaignSettings, day: Date) -> Result<(), OperationError> {
    let rules = bma_core::planner::WaveRules {
        start: campaign.start,
        deadline: campaign.invitation_deadline,
        weekday: campaign.weekday().ok_or(OperationError::NoWaveWeekday)?,
        capacity: None,
    };
    let days = rules.wave_dates();
    if days.contains(&day) {
        return Ok(());
    }
    let waves: Vec<String> = days.iter().map(ToString::to_string).collect();
    Err(OperationError::NotAWaveDay { day, waves: waves.join(", ") })
}

/// Leaves a mailbox out of the planning (`excluded`), or readmits it.
pub async fn exclude(store: &Store, address: &Address, excluded: bool, op: &Operation) -> Result<(), OperationError> {
    change(store, address, &PlanningChange::Exclude(excluded), op).await
}

/// Sets a mailbox's planning priority (higher is invited earlier).
pub async fn set_priority(
    store: &Store,
    address: &Address,
    priority: i64,
    op: &Operation,
) -> Result<(), OperationError> {
    change(store, address, &PlanningChange::Priority(priority), op).await
}

async fn change(
    store: &Store,
    address: &Address,
    change: &PlanningChange,
    op: &Operation,
) -> Result<(), OperationError> {
    Ok(store.change_planning(address, change, &op.actor, op.reason.as_str(), op.at).await?)
}

/// Sends mail 1 again with a fresh link (after a bounce, a lost email, a
/// link that may have leaked); the earlier links stop working unless
/// `older` keeps them. Returns the outbox id: the email leaves at the next
/// step of the scheduler.
pub async fn resend(
    engine: &Engine,
    address: &Address,
    older: OlderLinks,
    op: &Operation,
) -> Result<i64, OperationError> {
    Ok(engine.resend_invitation(address.as_str(), older, &op.actor, op.reason.as_str(), op.at).await?)
}

/// Sends mail 2 again to a migrated mailbox (the BMA and its verified
/// backup address), without any password: the manager lost it. The
/// emails leave at the next send.
pub async fn resend_mail2(
    engine: &Engine,
    address: &Address,
    op: &Operation,
) -> Result<crate::Mail2Again, OperationError> {
    Ok(engine.resend_mail2(address.as_str(), &op.actor, op.reason.as_str(), op.at).await?)
}

/// Gives a mailbox a new password, emailed as a link that shows it once
/// (to the BMA and its verified backup address); the old password and any
/// unopened link stop working.
pub async fn reset_password(
    engine: &Engine,
    address: &Address,
    op: &Operation,
) -> Result<crate::ResetOutcome, OperationError> {
    Ok(engine.reset_password(address.as_str(), op.reason.as_str(), &op.actor, op.at).await?)
}

/// Cuts a mailbox over now (or resumes its cutover where it stopped),
/// its steps recorded as the actor's, the reason with the first; then
/// the emails it queued (mail 2 to the backup address) leave.
pub async fn cut_over(
    engine: &Engine,
    address: &Address,
    op: &Operation,
) -> Result<crate::SwitchOutcome, OperationError> {
    let outcome = engine.cut_over_by(address.as_str(), &op.actor, Some(op.reason.as_str()), op.at).await?;
    engine.send_due(op.at).await?;
    Ok(outcome)
}

/// Rolls a mailbox's cutover back (routed to the legacy platform again,
/// what reached the new box copied back, the legacy login restored).
pub async fn roll_back(engine: &Engine, address: &Address, op: &Operation) -> Result<crate::Undone, OperationError> {
    Ok(engine
        .roll_back(address.as_str(), op.reason.as_str(), &op.actor, bma_store::SwitchEnd::RolledBack, op.at)
        .await?)
}

/// Queues a copy of the mailbox to the new platform now, beside the
/// scheduler's daily one (a failed presync whose cause is fixed, a box
/// the manager says changed a lot); recorded with who asked and why.
/// Returns the job's id.
pub async fn retry_presync(engine: &Engine, address: &Address, op: &Operation) -> Result<i64, OperationError> {
    use crate::jobs::Payload as _;
    let presync = crate::jobs::presync::PresyncJob { address: address.to_string(), day: op.at.date() };
    let mut job = presync.job(op.at)?;
    // Its own key: the day's job may be done, dead or running.
    job.key = format!("{}:requested:{}", presync.key(), op.at.unix_timestamp_nanos() / 1_000_000);
    let (id, _) = engine
        .store()
        .request_job(&job, address, bma_core::EventKind::PresyncRequested, &op.actor, op.reason.as_str(), op.at)
        .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use bma_core::settings::Settings;
    use time::macros::date;

    use super::{OperationError, Reason, check_wave_day};

    #[test]
    fn reasons_are_never_empty() {
        assert!(matches!(Reason::new("  "), Err(OperationError::NoReason)));
        assert_eq!(Reason::new(" fermée ").map(|r| r.to_string()).ok().as_deref(), Some("fermée"));
    }

    #[test]
    fn pins_are_to_wave_days() {
        let c = Settings::default().campaign;
        assert!(check_wave_day(&c, date!(2024 - 05 - 20)).is_ok());
        let e = check_wave_day(&c, date!(2024 - 05 - 21)).map_err(|e| e.to_string());
        assert!(e.as_ref().is_err_and(|e| e.starts_with("2024-05-21 is not a wave day (waves: 2024-04-22")), "{e:?}");
    }
}
