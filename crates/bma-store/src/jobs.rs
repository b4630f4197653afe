//! The durable job queue.
//!
//! A job has a kind (a [`JobKind`]: the closed set of the engine's jobs,
//! never a free string), an idempotency key (enqueuing the same kind and key
//! twice does nothing more: running the scheduler twice for the same instant
//! is harmless), a JSON payload and a due time. Workers claim due jobs with a
//! lease; a worker that dies loses its lease when it expires and the job is
//! claimed again. A failed job is retried with exponential backoff until its
//! attempts are spent, then it is dead, with the reason, for a human.
//!
//! Claiming is one statement: on PostgreSQL the candidates are locked with
//! `FOR UPDATE SKIP LOCKED`, so several workers never take the same job and
//! never wait on each other; on SQLite the writer lock serialises claims.
//! Completing or failing a job checks the lease owner: a worker whose lease
//! was taken over cannot overwrite the new owner's work.
//!
//! Every function takes the current instant: time comes from the caller's
//! clock, so tests and simulations move weeks in seconds. Due times are on
//! the campaign's clock, which may run faster than real time; lease
//! deadlines are on the clock of [`Lease::now`], which the engine takes
//! from the real clock ([`Store::claim_leased`]), so a lease lasts the same
//! real time whatever the campaign clock's speed, and a worker extends it
//! ([`Store::heartbeat`]) while the work is in progress.

use bma_core::job::JobKind;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use crate::{Backend, Store, StoreError, from_millis, to_millis};

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its due time or a worker.
    Queued,
    /// Leased by a worker.
    Running,
    /// Finished.
    Done,
    /// Attempts spent; needs a human.
    Dead,
}

impl JobState {
    /// Name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Result<JobState, StoreError> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            other => return Err(StoreError::Corrupt(format!("job state '{other}'"))),
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What to do.
    pub kind: JobKind,
    /// Idempotency key, unique per kind (`ec012345@adm.cfwb.be:2024-04-22`).
    pub key: String,
    /// Parameters.
    pub payload: serde_json::Value,
    /// Not before.
    pub run_at: OffsetDateTime,
    /// Attempts before the job is dead.
    pub max_attempts: u32,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Store id.
    pub id: i64,
    /// Kind.
    pub kind: JobKind,
    /// Idempotency key.
    pub key: String,
    /// Parameters.
    pub payload: serde_json::Value,
    /// State.
    pub state: JobState,
    /// Due time (or next retry).
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: OffsetDateTime,
    /// Attempts so far (a claim counts as one).
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Current lease holder.
    pub lease_owner: Option<String>,
    /// Lease expiry.
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_until: Option<OffsetDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A lease: its deadline is `now + length`, on the clock of `now` (the
/// real clock in the engine). Comparisons with other leases use the same
/// clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The current instant on the lease clock.
    pub now: OffsetDateTime,
    /// How long the lease lasts unless extended.
    pub length: Duration,
}

impl Lease {
    /// A lease of `length` on the real clock, from now.
    pub fn real(length: Duration) -> Lease {
        Lease { now: OffsetDateTime::now_utc(), length }
    }

    fn until(self) -> i64 {
        to_millis(self.now + self.length)
    }
}

/// What happened to a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again for this instant.
    Retry(OffsetDateTime),
    /// No attempts left.
    Dead,
}

/// The delay before retry number `attempt` (1-based): 30 s, 1 min, 2 min, …
/// capped at one hour.
pub fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(7);
    Duration::seconds((30i64 << exp).min(3600))
}

/// `Ok` when an update conditional on `worker`'s lease touched its row;
/// `LeaseLost` otherwise (the lease expired and another worker took over).
pub(crate) fn lease_held(rows_affected: u64, id: i64, worker: &str) -> Result<(), StoreError> {
    if rows_affected == 1 { Ok(()) } else { Err(StoreError::LeaseLost { job: id, worker: worker.to_owned() }) }
}

impl Store {
    /// What a failed attempt of a leased row of `table` (the job queue or
    /// the outbox, both with `attempts` and `max_attempts`) leads to: retry
    /// after [`backoff`], or dead when its attempts are spent or the failure
    /// is `permanent`. `LeaseLost` if `worker` no longer holds it.
    pub(crate) async fn after_failure(
        &self,
        table: &'static str,
        leased_state: &'static str,
        id: i64,
        worker: &str,
        permanent: bool,
        now: OffsetDateTime,
    ) -> Result<FailOutcome, StoreError> {
        let sql = format!(
            "SELECT attempts, max_attempts FROM {table} WHERE id = $1 AND state = '{leased_state}' AND lease_owner = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(worker.to_owned())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::LeaseLost { job: id, worker: worker.to_owned() })?;
        let (attempts, max_attempts): (i64, i64) = (row.try_get("attempts")?, row.try_get("max_attempts")?);
        Ok(if permanent || attempts >= max_attempts {
            FailOutcome::Dead
        } else {
            FailOutcome::Retry(now + backoff(u32::try_from(attempts).unwrap_or(u32::MAX)))
        })
    }
}

/// A kind as stored.
fn kind_of(name: &str) -> Result<JobKind, StoreError> {
    name.parse().map_err(|e: bma_core::job::UnknownJobKind| StoreError::Corrupt(e.to_string()))
}

fn job_from_row(r: &AnyRow) -> Result<Job, StoreError> {
    let payload: String = r.try_get("payload")?;
    let count = |c: &str| -> Result<u32, StoreError> { Ok(u32::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0)) };
    Ok(Job {
        id: r.try_get("id")?,
        kind: kind_of(&r.try_get::<String, _>("kind")?)?,
        key: r.try_get("key")?,
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("job payload: {e}")))?,
        state: JobState::parse(&r.try_get::<String, _>("state")?)?,
        run_at: from_millis(r.try_get("run_at")?),
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get::<Option<i64>, _>("lease_until")?.map(from_millis),
        last_error: r.try_get("last_error")?,
    })
}

const JOB_COLUMNS: &str =
    "id, kind, key, payload, state, run_at, attempts, max_attempts, lease_owner, lease_until, last_error";

impl Store {
    /// Enqueues a job unless one with the same kind and key exists. Returns
    /// the job's id and whether it was created now.
    pub async fn enqueue(&self, job: &NewJob, now: OffsetDateTime) -> Result<(i64, bool), StoreError> {
        let mut conn = self.pool().acquire().await?;
        enqueue_on(&mut conn, job, now).await
    }

    /// Claims up to `limit` due jobs of `kinds` (all kinds when empty) for
    /// `worker`, leasing them until `now + lease` (leases on the same clock
    /// as due times; see [`Store::claim_leased`]).
    pub async fn claim(
        &self,
        worker: &str,
        kinds: &[JobKind],
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        self.claim_leased(worker, kinds, now, Lease { now, length: lease }, limit).await
    }

    /// Claims up to `limit` jobs of `kinds` (all kinds when empty) due by
    /// `now` for `worker`, leasing them as `lease` says. Jobs whose lease
    /// expired (on the lease clock) with attempts left are claimed again;
    /// those with none left are marked dead first.
    pub async fn claim_leased(
        &self,
        worker: &str,
        kinds: &[JobKind],
        now: OffsetDateTime,
        lease: Lease,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let now_ms = to_millis(now);
        let lease_now = to_millis(lease.now);
        sqlx::query(
            "UPDATE jobs SET state = 'dead', updated_at = $1, lease_owner = NULL, lease_until = NULL, \
             last_error = 'the worker ' || COALESCE(lease_owner, '?') || ' stopped answering (lease expired) on its last attempt' \
             WHERE state = 'running' AND lease_until < $2 AND attempts >= max_attempts",
        )
        .bind(now_ms)
        .bind(lease_now)
        .execute(self.pool())
        .await?;
        let kinds_filter = if kinds.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 6)).collect();
            format!("AND kind IN ({})", list.join(", "))
        };
        let lock = if self.backend() == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
             started_at = $3, updated_at = $3 WHERE id IN (SELECT id FROM jobs WHERE ((state = 'queued' \
             AND run_at <= $3) OR (state = 'running' AND lease_until < $5 AND attempts < max_attempts)) {kinds_filter} \
             ORDER BY run_at, id LIMIT $4 {lock}) RETURNING {JOB_COLUMNS}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(worker.to_owned())
            .bind(lease.until())
            .bind(now_ms)
            .bind(i64::from(limit))
            .bind(lease_now);
        for k in kinds {
            q = q.bind(k.as_str());
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    /// Running jobs whose lease expired before `lease_now` (on the lease
    /// clock): their worker stopped answering and no other took them yet.
    pub async fn stale_jobs(&self, lease_now: OffsetDateTime) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' AND lease_until < $1 ORDER BY run_at, id"
        )))
        .bind(to_millis(lease_now))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Extends the lease of a running job to `now + lease` (on the lease
    /// clock); fails if `worker` lost it.
    pub async fn heartbeat(
        &self,
        id: i64,
        worker: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND state = 'running' AND lease_owner = $3")
                .bind(to_millis(now + lease))
                .bind(id)
                .bind(worker.to_owned())
                .execute(self.pool())
                .await?;
        lease_held(done.rows_affected(), id, worker)
    }

    /// Marks a job done; fails if `worker` no longer holds its lease.
    pub async fn complete(&self, id: i64, worker: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $1 \
             WHERE id = $2 AND state = 'running' AND lease_owner = $3",
        )
        .bind(to_millis(now))
        .bind(id)
        .bind(worker.to_owned())
        .execute(self.pool())
        .await?;
        lease_held(done.rows_affected(), id, worker)
    }

    /// Records a failed attempt: queued again after [`backoff`], or dead when
    /// its attempts are spent (or when `permanent`).
    pub async fn fail(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        permanent: bool,
        now: OffsetDateTime,
    ) -> Result<FailOutcome, StoreError> {
        let outcome = self.after_failure("jobs", "running", id, worker, permanent, now).await?;
        let (state, run_at) = match outcome {
            FailOutcome::Retry(at) => (JobState::Queued, at),
            FailOutcome::Dead => (JobState::Dead, now),
        };
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, run_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL, \
             updated_at = $4 WHERE id = $5 AND state = 'running' AND lease_owner = $6",
        )
        .bind(state.as_str())
        .bind(to_millis(run_at))
        .bind(error.to_owned())
        .bind(to_millis(now))
        .bind(id)
        .bind(worker.to_owned())
        .execute(self.pool())
        .await?;
        lease_held(done.rows_affected(), id, worker).map(|()| outcome)
    }

    /// One job.
    pub async fn job(&self, id: i64) -> Result<Job, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
        job_from_row(&row)
    }

    /// Jobs in a state, oldest due first.
    pub async fn jobs_in(&self, state: JobState, limit: i64) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY run_at, id LIMIT $2"
        )))
        .bind(state.as_str())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// The jobs of `kind` queued or running (their lease held or not), oldest due first.
    pub async fn active_jobs(&self, kind: JobKind) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = $1 AND state IN ($2, $3) ORDER BY run_at, id"
        )))
        .bind(kind.as_str())
        .bind(JobState::Queued.as_str())
        .bind(JobState::Running.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Number of jobs per kind and state.
    pub async fn job_counts(&self) -> Result<Vec<(JobKind, JobState, u64)>, StoreError> {
        let rows = sqlx::query("SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state ORDER BY kind, state")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    kind_of(&r.try_get::<String, _>("kind")?)?,
                    JobState::parse(&r.try_get::<String, _>("state")?)?,
                    u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                ))
            })
            .collect()
    }
}

/// [`Store::enqueue`] on `conn` (inside a caller's transaction).
pub(crate) async fn enqueue_on(
    conn: &mut sqlx::AnyConnection,
    job: &NewJob,
    now: OffsetDateTime,
) -> Result<(i64, bool), StoreError> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO jobs (kind, key, payload, state, run_at, attempts, max_attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, 'queued', $4, 0, $5, $6, $6) ON CONFLICT (kind, key) DO NOTHING RETURNING id",
    )
    .bind(job.kind.as_str())
    .bind(job.key.clone())
    .bind(job.payload.to_string())
    .bind(to_millis(job.run_at))
    .bind(i64::from(job.max_attempts.max(1)))
    .bind(to_millis(now))
    .fetch_optional(&mut *conn)
    .await?;
    match inserted {
        Some(id) => Ok((id, true)),
        None => {
            let id: i64 = sqlx::query_scalar("SELECT id FROM jobs WHERE kind = $1 AND key = $2")
                .bind(job.kind.as_str())
                .bind(job.key.clone())
                .fetch_one(&mut *conn)
                .await?;
            Ok((id, false))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_then_caps() {
        let secs: Vec<i64> = (1..=10).map(|a| super::backoff(a).whole_seconds()).collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }
}
