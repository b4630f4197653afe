//! The durable job queue on both backends: idempotent enqueue, exclusive
//! claims under concurrency, lease expiry and takeover, retries with
//! backoff, dead letters with their reason. Time is passed in, never read.

use std::collections::HashSet;

use bma_core::job::JobKind;
use bma_store::{FailOutcome, JobState, NewJob, Store, StoreError};
use bma_tests::{TestBackend, TestDb, on_both_backends};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2024-04-22 08:00 UTC);

fn job(key: &str, run_at: OffsetDateTime, max_attempts: u32) -> NewJob {
    NewJob {
        kind: JobKind::Presync,
        key: key.into(),
        payload: serde_json::json!({ "address": key }),
        run_at,
        max_attempts,
    }
}

async fn enqueue_is_idempotent_and_waits_for_its_time(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (a, created) = store.enqueue(&job("ec000001@adm.cfwb.be", T0 + Duration::hours(1), 3), T0).await.unwrap();
    assert!(created);
    let (b, created) = store.enqueue(&job("ec000001@adm.cfwb.be", T0, 3), T0).await.unwrap();
    assert_eq!((a, created), (b, false), "same kind and key: nothing more");
    assert!(store.claim("w1", &[], T0, Duration::minutes(5), 10).await.unwrap().is_empty(), "not due yet");
    let claimed =
        store.claim("w1", &[JobKind::Reminders], T0 + Duration::hours(2), Duration::minutes(5), 10).await.unwrap();
    assert!(claimed.is_empty(), "kind filter");
    let claimed =
        store.claim("w1", &[JobKind::Presync], T0 + Duration::hours(1), Duration::minutes(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].state, claimed[0].attempts), (JobState::Running, 1));
    assert_eq!(claimed[0].payload["address"], "ec000001@adm.cfwb.be");
    store.complete(a, "w1", T0 + Duration::hours(1)).await.unwrap();
    assert_eq!(store.job(a).await.unwrap().state, JobState::Done);
    store.close().await;
    db.drop_db().await;
}

async fn concurrent_workers_never_share_a_job(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    for i in 0..60 {
        store.enqueue(&job(&format!("ec{i:06}@adm.cfwb.be"), T0, 3), T0).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s: Store = store.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            loop {
                let batch = s.claim(&worker, &[], T0, Duration::minutes(5), 3).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                for j in batch {
                    s.complete(j.id, &worker, T0).await.unwrap();
                    mine.push(j.id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (60, 60), "each job claimed exactly once");
    assert!(store.jobs_in(JobState::Done, 100).await.unwrap().len() == 60);
    store.close().await;
    db.drop_db().await;
}

async fn an_expired_lease_is_taken_over(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (id, _) = store.enqueue(&job("ec000001@adm.cfwb.be", T0, 3), T0).await.unwrap();
    assert_eq!(store.claim("crashed", &[], T0, Duration::minutes(5), 1).await.unwrap().len(), 1);
    assert!(store.claim("w2", &[], T0 + Duration::minutes(4), Duration::minutes(5), 1).await.unwrap().is_empty());
    store.heartbeat(id, "crashed", T0 + Duration::minutes(4), Duration::minutes(5)).await.unwrap();
    assert!(
        store.claim("w2", &[], T0 + Duration::minutes(8), Duration::minutes(5), 1).await.unwrap().is_empty(),
        "heartbeat extended it"
    );
    let taken = store.claim("w2", &[], T0 + Duration::minutes(10), Duration::minutes(5), 1).await.unwrap();
    assert_eq!((taken.len(), taken[0].attempts), (1, 2));
    let late = store.complete(id, "crashed", T0 + Duration::minutes(11)).await;
    assert!(matches!(late, Err(StoreError::LeaseLost { .. })), "the old worker cannot complete it");
    store.complete(id, "w2", T0 + Duration::minutes(11)).await.unwrap();
    store.close().await;
    db.drop_db().await;
}

async fn failures_retry_with_backoff_then_die_with_the_reason(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (id, _) = store.enqueue(&job("ec000001@adm.cfwb.be", T0, 3), T0).await.unwrap();
    let mut now = T0;
    for attempt in 1..=3u32 {
        let claimed = store.claim("w", &[], now, Duration::minutes(5), 1).await.unwrap();
        assert_eq!(claimed.len(), 1, "attempt {attempt}");
        let outcome = store.fail(id, "w", &format!("SMTP 451 attempt {attempt}"), false, now).await.unwrap();
        if attempt < 3 {
            let FailOutcome::Retry(at) = outcome else { panic!("retry expected") };
            assert_eq!(at - now, bma_store::backoff(attempt));
            assert!(
                store.claim("w", &[], at - Duration::seconds(1), Duration::minutes(5), 1).await.unwrap().is_empty()
            );
            now = at;
        } else {
            assert_eq!(outcome, FailOutcome::Dead);
        }
    }
    let dead = store.jobs_in(JobState::Dead, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("SMTP 451 attempt 3"));

    // A worker that dies on the last attempt: the job is dead once the lease expires.
    let (id2, _) = store.enqueue(&job("ec000002@adm.cfwb.be", T0, 1), T0).await.unwrap();
    assert_eq!(store.claim("ghost", &[], now, Duration::minutes(5), 1).await.unwrap().len(), 1);
    assert!(store.claim("w", &[], now + Duration::minutes(6), Duration::minutes(5), 1).await.unwrap().is_empty());
    let j = store.job(id2).await.unwrap();
    assert_eq!(j.state, JobState::Dead);
    assert!(j.last_error.unwrap().contains("ghost stopped answering"));
    // A permanent failure is dead at once.
    let (id3, _) = store.enqueue(&job("ec000003@adm.cfwb.be", T0, 5), T0).await.unwrap();
    store.claim("w", &[], now, Duration::minutes(5), 1).await.unwrap();
    assert_eq!(store.fail(id3, "w", "550 no such user", true, now).await.unwrap(), FailOutcome::Dead);
    let counts = store.job_counts().await.unwrap();
    assert_eq!(counts, vec![(JobKind::Presync, JobState::Dead, 3)]);
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(
    enqueue_is_idempotent_and_waits_for_its_time,
    concurrent_workers_never_share_a_job,
    an_expired_lease_is_taken_over,
    failures_retry_with_backoff_then_die_with_the_reason,
);

/// Migration 15 on a queue made before it: the jobs a running campaign had
/// queued with only `{"key": K}` get the typed payload of their kind, so an
/// upgrade mid-campaign loses none of them (before the migration each one
/// died at once as a bad payload).
async fn jobs_queued_before_typed_payloads_keep_working(backend: TestBackend) {
    use bma_engine::jobs::{
        bounces::BouncesJob, cutovers::CutoversJob, deadline_watch::DeadlineWatchJob, invitations::InvitationsJob,
        presync::PresyncJob, reminders::RemindersJob,
    };
    use sqlx::Connection;

    let db = TestDb::new(backend).await;
    db.store().await.close().await;
    let old = [
        ("invitations", "2024-04-22"),
        ("reminders", "2024-04-23"),
        ("cutovers", "2024-04-24"),
        ("deadline_watch", "2024-05-24"),
        ("bounces", "2024-04-22T07"),
        ("presync", "ec012345@adm.cfwb.be:2024-04-25"),
    ];
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for (kind, key) in old {
        let sql = format!(
            "INSERT INTO jobs (kind, key, payload, state, run_at, attempts, max_attempts, created_at, updated_at) \
             VALUES ('{kind}', '{key}', '{{\"key\":\"{key}\"}}', 'queued', 0, 0, 3, 0, 0)"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    sqlx::raw_sql("DELETE FROM bma_schema WHERE version = 15").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    let store = db.store().await;
    let jobs = store.jobs_in(JobState::Queued, 10).await.unwrap();
    assert_eq!(jobs.len(), old.len(), "{jobs:?}");
    let payload = |kind: JobKind| jobs.iter().find(|j| j.kind == kind).expect("the job").payload.clone();
    let day = |d: &str| time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).unwrap();
    assert_eq!(
        serde_json::from_value::<InvitationsJob>(payload(JobKind::Invitations)).unwrap(),
        InvitationsJob { day: day("2024-04-22") }
    );
    assert_eq!(
        serde_json::from_value::<RemindersJob>(payload(JobKind::Reminders)).unwrap(),
        RemindersJob { day: day("2024-04-23") }
    );
    assert_eq!(
        serde_json::from_value::<CutoversJob>(payload(JobKind::Cutovers)).unwrap(),
        CutoversJob { day: day("2024-04-24") }
    );
    assert_eq!(
        serde_json::from_value::<DeadlineWatchJob>(payload(JobKind::DeadlineWatch)).unwrap(),
        DeadlineWatchJob { deadline: day("2024-05-24") }
    );
    assert_eq!(
        serde_json::from_value::<BouncesJob>(payload(JobKind::Bounces)).unwrap(),
        BouncesJob { day: day("2024-04-22"), hour: 7 }
    );
    assert_eq!(
        serde_json::from_value::<PresyncJob>(payload(JobKind::Presync)).unwrap(),
        PresyncJob { address: "ec012345@adm.cfwb.be".into(), day: day("2024-04-25") }
    );
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(jobs_queued_before_typed_payloads_keep_working);
