//! `[cutover]` limits on the lab, on both store backends: the scheduler
//! queues at most `max_parallel` cutovers at once (the rest start at a
//! later step of the day), none new from `end_hour` on (that day's rest
//! start the next day, from `hour`). The decision itself is
//! `bma_core::switch::Limits::admit`, tested by its table.

use bma_core::State;
use bma_core::job::JobKind;
use bma_core::lifecycle::Actor;
use bma_core::switch::Limits;
use bma_engine::{Engine, EngineSettings, SwitchSettings};
use bma_mail::Templates;
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp};
use bma_tests::switch::{fresh_address, lab_switch_settings, legacy_mailbox, scheduled};
use bma_tests::{TestBackend, TestDb, addr, on_both_backends};
use time::Duration;
use time::macros::datetime;

async fn the_scheduler_keeps_to_max_parallel_and_the_hours(backend: TestBackend) {
    // Sorted: the scheduler admits due mailboxes by day, then address, and
    // fresh addresses wrap around (nanoseconds modulo 800,000), so the
    // third to be admitted is the third in address order.
    let mut addresses: Vec<String> = (0..4).map(|_| fresh_address()).collect();
    addresses.sort();
    for a in &addresses {
        legacy_mailbox(a, "mot-de-passe").await;
    }
    let bounces = format!("bounces-{}", addresses[0].replace('@', "-at-")) + "@bma.test";
    bma_tests::lab_addusers("legacy", std::slice::from_ref(&bounces), "secret-bounces");
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let day = datetime!(2024-06-04 05:00 UTC);
    for a in &addresses[..3] {
        scheduled(&store, a, day).await;
    }
    store.change_campaign(bma_store::CampaignAction::Start, &Actor::Operator("t".into()), "go", day).await.expect("go");
    let switch =
        SwitchSettings { limits: Limits { start_hour: 6, end_hour: 8, max_parallel: 2 }, ..lab_switch_settings() };
    let settings =
        EngineSettings { new: Some(lab_platform("new")), switch: Some(switch), ..lab_engine_settings(&bounces) };
    let engine = Engine::new(store.clone(), Templates::load(None).expect("templates"), settings, lab_smtp(), "w1");
    let state = |a: &str| {
        let store = store.clone();
        let a = a.to_owned();
        async move { store.mailbox(&addr(&a)).await.expect("mailbox").state }
    };
    let queued = || async { store.active_jobs(JobKind::Cutover).await.expect("jobs").len() };

    // Before the hours: nothing queued.
    engine.schedule(day).await.expect("schedule");
    assert_eq!(queued().await, 0);
    // At 6:00, three due: two queued, and queuing again adds none.
    let six = day + Duration::hours(1);
    engine.schedule(six).await.expect("schedule");
    engine.schedule(six + Duration::minutes(1)).await.expect("schedule");
    assert_eq!(queued().await, 2, "max_parallel = 2");
    let r = engine.step(six).await.expect("step");
    assert_eq!(r.migrated, 2, "{r:?}");
    assert_eq!(state(&addresses[2]).await, State::CutoverScheduled, "the third waits for a place");
    // A place is free: the third starts at the next step of the day.
    let r = engine.step(six + Duration::minutes(30)).await.expect("step");
    assert_eq!(r.migrated, 1, "{r:?}");
    assert_eq!(state(&addresses[2]).await, State::Migrated);

    // From the end hour (8:00) none new starts that day; it starts the next day from 6:00.
    scheduled(&store, &addresses[3], day).await;
    let r = engine.step(day + Duration::hours(3) + Duration::minutes(30)).await.expect("step");
    assert_eq!((r.migrated, queued().await), (0, 0), "{r:?}");
    assert_eq!(state(&addresses[3]).await, State::CutoverScheduled);
    let r = engine.step(day + Duration::hours(25)).await.expect("step");
    assert_eq!(r.migrated, 1, "{r:?}");
    assert_eq!(state(&addresses[3]).await, State::Migrated);
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(the_scheduler_keeps_to_max_parallel_and_the_hours);
