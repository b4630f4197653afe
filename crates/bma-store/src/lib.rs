//! `bma-store`: the campaign store.
//!
//! Invariants:
//! - the only crate that knows SQL; callers see typed records and errors;
//! - one code path for SQLite (the embedded default: a file, WAL) and
//!   PostgreSQL (several workers), through sqlx's `Any` driver with runtime
//!   queries; the few dialect differences live in [`schema`];
//! - every state change is one transaction writing the new state and its
//!   event (who, when, why, details), so the timeline of a mailbox is
//!   complete by construction: `mailboxes.state` changes only in
//!   `transition` (the lifecycle's rule, a conditional UPDATE, the
//!   event), events are written only by `events`;
//! - timestamps are stored as Unix milliseconds (UTC) on both backends.

mod attention;
mod backup;
mod bounces;
mod campaign;
mod cols;
mod cutover;
mod deadline;
mod enrollment;
mod error;
mod events;
mod figures;
mod form_links;
mod forwarding;
mod invitation;
mod jobs;
mod outbox;
mod password_links;
#[macro_use]
mod mailbox;
mod mailbox_file;
mod planning;
mod portal_session;
mod presync;
mod privacy;

mod reminders;
mod schema;
mod staff;
mod switch;
mod sync_state;
mod telemetry;
mod transition;
mod view_log;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use time::OffsetDateTime;

pub use attention::Attention;
pub use backup::{RESEND_MIN_INTERVAL, RESENDS_PER_DAY, RenewOutcome, VerifyOutcome};
pub use bounces::{BounceOutcome, SentEmail};
pub use campaign::{CampaignAction, CampaignState};
pub use cutover::CutoverRow;
pub use deadline::Undelivered;
pub use enrollment::{
    BackupChange, BackupStatus, BackupVerificationRequest, Enrollment, EnrollmentForm, ManagerIdentity, PortalMailbox,
    PortalView, Submission, SubmitOutcome,
};
pub use error::StoreError;
pub use figures::{DayCount, PlannedCutovers, WaveStateCount, clamp_days, day_start};
pub use form_links::{OlderLinks, ResentLink};
pub use forwarding::{
    Announced, FindingKind, ForwardingAudit, ForwardingFinding, ForwardingSummary, Reach as ForwardingReach,
    target_domain,
};
pub use invitation::{DueInvitation, InviteOutcome};
pub use jobs::{FailOutcome, Job, JobState, Lease, NewJob, backoff};
pub use mailbox::{EventRecord, ImportOutcome, MailboxRecord};
pub use mailbox_file::{MailboxFile, VIEWS as MAILBOX_FILE_VIEWS};
pub use outbox::{CheckOutcome, NewEmail, OutboxEmail, OutboxHealth};
pub use password_links::{LinkOutcome, NewPasswordLink};
pub use planning::{PlanOutcome, PlanningChange};
pub use portal_session::PortalSession;
pub use privacy::{
    ERASED, ERASED_ADDRESS, Erasure, Person, PersonEmail, PersonEvent, PersonForm, PersonSession, PersonStaffSession,
    PersonStaffView, PersonVerification, PersonalData, PurgeItem, PurgeReason, Retention, Scrubbed, due_at,
};

pub use reminders::DueReminder;
pub use staff::{SearchRow, StaffIdentity, StaffLogin, StaffSession, StaffView};
pub use switch::{StepDone, StepRecord, SwitchDue, SwitchEnd, SwitchProgress};
pub use sync_state::{SyncFolder, SyncMessage};
pub use telemetry::{Copied, CopyPhase, DurationBucket, HoldWindows};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file, one node.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A connection pool to the campaign store, with its schema up to date.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The staff's views waiting for their group commit.
    views: std::sync::Arc<view_log::ViewLog>,
}

impl Store {
    /// Opens the store at `url` (`sqlite://relative.db`, `sqlite:///abs/path.db`,
    /// `sqlite::memory:`, `postgres://…`), creating the SQLite file if needed,
    /// and applies the embedded schema migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url)?;
        let options = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::Url(redact(&url), e.to_string()))?;
        let pool = match backend {
            Backend::Sqlite => {
                let memory = url.contains(":memory:");
                AnyPoolOptions::new()
                    .max_connections(if memory { 1 } else { 8 })
                    .acquire_timeout(Duration::from_secs(30))
                    // A file on this machine: no connection goes stale, and a
                    // ping on every acquire doubles each query's round trips
                    // to the connection's thread.
                    .test_before_acquire(false)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await
            }
        }
        .map_err(|e| StoreError::Connect(redact(&url), e))?;
        let store = Store { pool, backend, views: std::sync::Arc::default() };
        schema::migrate(&store).await?;
        Ok(store)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Accepts the forms people write and returns what sqlx expects:
/// a SQLite URL gets `mode=rwc` so the file is created on first use.
fn normalise_url(url: &str) -> Result<(Backend, String), StoreError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if rest == ":memory:" || rest.starts_with(":memory:?") {
            return Ok((Backend::Sqlite, "sqlite::memory:".to_owned()));
        }
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(StoreError::Url(url.to_owned(), "no file path after sqlite://".to_owned()));
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        let with_mode = if path.contains("mode=") { path.to_owned() } else { format!("{path}{sep}mode=rwc") };
        return Ok((Backend::Sqlite, format!("sqlite://{with_mode}")));
    }
    Err(StoreError::Url(redact(url), "expected sqlite://FILE, sqlite::memory: or postgres://USER@HOST/DB".to_owned()))
}

/// A URL with its password hidden, for messages and logs: the one of the
/// user information (`postgres://bma:***@db/bma`) and a `password=` query
/// parameter (`?password=***`).
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &base[..scheme_end], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// `($1, $2), ($3, $4)`: numbered placeholders for a multi-row VALUES,
/// which both backends accept.
pub(crate) fn values_placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// Rows per multi-row INSERT. Binding in sqlx's SQLite driver costs more
/// than linearly in the parameters of one statement: importing 3,500 rows
/// took 0.67 s with 500 rows (5,000 parameters) per statement, 0.19 s with
/// 100 and 0.13 s with 50 (`cargo xtask bench import`).
pub(crate) const CHUNK: usize = 50;

pub(crate) fn to_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            ("sqlite://bma.db", Ok((Backend::Sqlite, "sqlite://bma.db?mode=rwc"))),
            ("sqlite:///var/lib/bma/bma.db", Ok((Backend::Sqlite, "sqlite:///var/lib/bma/bma.db?mode=rwc"))),
            ("sqlite:bma.db", Ok((Backend::Sqlite, "sqlite://bma.db?mode=rwc"))),
            ("sqlite::memory:", Ok((Backend::Sqlite, "sqlite::memory:"))),
            ("postgres://u@h/db", Ok((Backend::Postgres, "postgres://u@h/db"))),
            ("mysql://x", Err(())),
            ("sqlite://", Err(())),
        ];
        for (input, expected) in cases {
            let got = normalise_url(input).map_err(|_| ());
            assert_eq!(got, expected.map(|(b, u)| (b, u.to_owned())), "{input}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://bma:s3cret@db:5432/bma"), "postgres://bma:***@db:5432/bma");
        assert_eq!(redact("postgres://bma@db/bma"), "postgres://bma@db/bma");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(redact("postgres://db/bma?user=bma&password=s3cret"), "postgres://db/bma?user=bma&password=***");
    }

    #[test]
    fn placeholders() {
        assert_eq!(values_placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_placeholders(1, 1), "($1)");
    }

    #[test]
    fn millis_round_trip() {
        let t = time::macros::datetime!(2024-04-22 08:30:15.123 UTC);
        assert_eq!(from_millis(to_millis(t)), t);
    }
}
