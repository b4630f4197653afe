//! Presync of a registered mailbox the legacy platform does not know, on
//! both backends against the lab's Dovecots: the master user's login on
//! behalf of it is refused as not authorized, so the copy is not a failure
//! to retry. The mailbox is flagged once (`legacy_unknown`, "unknown on the
//! legacy platform"), its job is dead after one attempt, and no later step
//! queues or tries it again.
//!
//! The address (`ec099990@adm.cfwb.be`) is on neither lab platform and no
//! other test uses it. Needs `cargo xtask lab up && cargo xtask lab seed`.

use bma_core::job::JobKind;
use bma_core::lifecycle::{Actor, State};
use bma_core::{AddressRule, AttentionReason, registry};
use bma_engine::{Engine, EngineSettings};
use bma_mail::Templates;
use bma_store::{CampaignAction, JobState, Store};
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp, presync_always};
use bma_tests::{TestBackend, TestDb, addr, on_both_backends};
use time::Duration;
use time::macros::datetime;

const UNKNOWN: &str = "ec099990@adm.cfwb.be";

/// An engine on the lab with presync on. Its bounce mailbox does not exist
/// (no new lab mailbox): the `bounces` job fails, which this test ignores.
fn engine(store: Store) -> Engine {
    let settings = EngineSettings {
        new: Some(lab_platform("new")),
        presync: presync_always(2, 2),
        ..lab_engine_settings(UNKNOWN)
    };
    Engine::new(store, Templates::load(None).unwrap(), settings, lab_smtp(), "test-presync-unknown")
}

/// The presync jobs, whatever their state.
async fn presync_jobs(store: &Store) -> Vec<bma_store::Job> {
    let mut jobs = Vec::new();
    for state in [JobState::Queued, JobState::Running, JobState::Done, JobState::Dead] {
        jobs.extend(store.jobs_in(state, 100).await.unwrap().into_iter().filter(|j| j.kind == JobKind::Presync));
    }
    jobs
}

async fn a_mailbox_unknown_on_legacy_is_flagged_once_and_not_retried(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    // Invited an hour before the step: no reminder is due meanwhile.
    let now = datetime!(2024-04-23 21:00 UTC);
    let t0 = now - Duration::hours(1);
    let operator = Actor::Operator("test".into());
    let csv = format!("address,name,usage\n{UNKNOWN},École inconnue,1000000\n");
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), t0).await.unwrap();
    for state in [State::Scheduled, State::Invited] {
        store.transition(&addr(UNKNOWN), state, &operator, "test", serde_json::json!({}), t0).await.unwrap();
    }
    store.change_campaign(CampaignAction::Start, &operator, "go", t0).await.unwrap();

    let r = engine(store.clone()).step(now).await.unwrap();
    assert_eq!((r.presynced, r.flagged), (0, 1), "{r:?}");
    let jobs = presync_jobs(&store).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!((jobs[0].state, jobs[0].attempts), (JobState::Dead, 1), "dead at once: {:?}", jobs[0]);
    let error = jobs[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("unknown on the legacy platform"), "{error}");
    let attention = store.attention_list().await.unwrap();
    let flags: Vec<&str> = attention.iter().filter(|a| a.address == UNKNOWN).map(|a| a.reason.as_str()).collect();
    assert_eq!(flags, ["legacy_unknown"]);

    // Another reason for a human (its cutover window closing, say) does not
    // erase it: the flag is what keeps its presync from being queued again.
    let closed = store
        .flag(&addr(UNKNOWN), AttentionReason::WindowClosed, "window closed", serde_json::json!({}), &operator, now)
        .await
        .unwrap();
    assert!(!closed, "legacy_unknown stands until a human acts");

    // Later the same day, and the next days: no new attempt, no second flag.
    for later in [now + Duration::hours(1), now + Duration::days(1), now + Duration::days(2)] {
        let r = engine(store.clone()).step(later).await.unwrap();
        assert_eq!((r.presynced, r.flagged), (0, 0), "{later}: {r:?}");
        let jobs = presync_jobs(&store).await;
        assert_eq!(jobs.len(), 1, "{later}: {jobs:?}");
        assert_eq!(jobs[0].attempts, 1, "{later}: not retried");
    }
    let m = store.mailbox(&addr(UNKNOWN)).await.unwrap();
    let events = store.timeline(m.id).await.unwrap();
    let flagged: Vec<&str> = events.iter().filter(|e| e.kind == "attention").map(|e| e.reason.as_str()).collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(flagged[0].contains("unknown on the legacy platform"), "{flagged:?}");
    assert_eq!(m.state, State::Invited, "the state is left as it was");
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(a_mailbox_unknown_on_legacy_is_flagged_once_and_not_retried);
