//! The kinds of the engine's jobs: a closed set.
//!
//! A job of the durable queue has a kind; the kind says how it is stored
//! (its name in the `jobs.kind` column), how many attempts it gets before it
//! is dead for a human, and whether the engine runs it one at a time or
//! several at once. Its payload type and its handler live in the engine
//! (`bma_engine::jobs`, one file per kind), which matches on this enum
//! exhaustively: a new kind that is not handled does not compile.
//!
//! Every job is leased for the same real time (the engine's configured
//! lease, extended while the job runs), whatever its kind.
//!
//! Pure: names and numbers, no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Mail 1 of the wave due today.
    Invitations,
    /// Reminders to the managers who have not answered.
    Reminders,
    /// The delivery reports of the bounce mailbox, hourly.
    Bounces,
    /// The deadline list to the migration team, once.
    DeadlineWatch,
    /// Cutover slots, and the windows closed without a form.
    Cutovers,
    /// One mailbox copied to the new platform, daily.
    Presync,
    /// One mailbox cut over to the new platform, on its day (one at a
    /// time per worker: several workers on PostgreSQL cut several over).
    Cutover,
    /// The daily report to the migration team, once a day.
    DailyReport,
}

/// How the engine claims a kind's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// One at a time, in queue order.
    Serial,
    /// Several at once (`presync.parallel`).
    Parallel,
    /// Last in a step, once the outbox is sent and no mail 1 is pending.
    AfterOutbox,
}

/// A kind name the store holds that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job kind '{0}'")]
pub struct UnknownJobKind(pub String);

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 8] = [
        JobKind::Invitations,
        JobKind::Reminders,
        JobKind::Bounces,
        JobKind::DeadlineWatch,
        JobKind::Cutovers,
        JobKind::Presync,
        JobKind::Cutover,
        JobKind::DailyReport,
    ];

    /// Its name in the store (`jobs.kind`) and in `bma campaign status`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Invitations => "invitations",
            JobKind::Reminders => "reminders",
            JobKind::Bounces => "bounces",
            JobKind::DeadlineWatch => "deadline_watch",
            JobKind::Cutovers => "cutovers",
            JobKind::Presync => "presync",
            JobKind::Cutover => "cutover",
            JobKind::DailyReport => "daily_report",
        }
    }

    /// Attempts before the job is dead (a claim counts as one).
    pub fn max_attempts(self) -> u32 {
        match self {
            JobKind::Bounces | JobKind::Presync | JobKind::Cutover => 3,
            JobKind::Invitations
            | JobKind::Reminders
            | JobKind::DeadlineWatch
            | JobKind::Cutovers
            | JobKind::DailyReport => 5,
        }
    }

    /// How the engine claims it.
    pub fn claim(self) -> Claim {
        match self {
            JobKind::Invitations
            | JobKind::Reminders
            | JobKind::Bounces
            | JobKind::Cutovers
            | JobKind::Cutover
            | JobKind::DailyReport => Claim::Serial,
            JobKind::Presync => Claim::Parallel,
            JobKind::DeadlineWatch => Claim::AfterOutbox,
        }
    }

    /// The kinds claimed in this way, in [`JobKind::ALL`]'s order.
    pub fn claimed(claim: Claim) -> Vec<JobKind> {
        JobKind::ALL.into_iter().filter(|k| k.claim() == claim).collect()
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = UnknownJobKind;

    fn from_str(s: &str) -> Result<JobKind, UnknownJobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownJobKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::{Claim, JobKind};

    #[test]
    fn names_attempts_and_claims() {
        let table: Vec<String> =
            JobKind::ALL.into_iter().map(|k| format!("{k} {} {:?}", k.max_attempts(), k.claim())).collect();
        expect![[r#"
            invitations 5 Serial
            reminders 5 Serial
            bounces 3 Serial
            deadline_watch 5 AfterOutbox
            cutovers 5 Serial
            presync 3 Parallel
            cutover 3 Serial
            daily_report 5 Serial"#]]
        .assert_eq(&table.join("\n"));
        assert_eq!(
            JobKind::claimed(Claim::Serial),
            [
                JobKind::Invitations,
                JobKind::Reminders,
                JobKind::Bounces,
                JobKind::Cutovers,
                JobKind::Cutover,
                JobKind::DailyReport
            ]
        );
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).ok(), Some(serde_json::Value::from(k.as_str())));
        }
        assert!("send_invitation".parse::<JobKind>().is_err());
    }
}
