//! The route confirmed by a probe, on the lab, on both store backends:
//! the `route` step and a rollback each send a probe through the lab's
//! Postfix that lands on the expected side and is expunged there (the
//! manager never sees it); a probe a killed run left is found (not sent
//! again) and removed, with any older one of the mailbox; a route that
//! does not deliver fails with a clear error after the timeout.

use std::time::Duration;

use bma_core::lifecycle::Actor;
use bma_core::switch::Step;
use bma_engine::{Engine, EngineSettings, SwitchOutcome};
use bma_mail::Templates;
use bma_platform::Route;
use bma_store::SwitchEnd;
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp};
use bma_tests::switch::{fresh_address, lab_switch_settings, legacy_mailbox, scheduled};
use bma_tests::{TestBackend, TestDb, addr, lab_inbox, on_both_backends};
use time::macros::datetime;

/// The Message-IDs of `user`'s INBOX on `platform` that are probes.
async fn probes(platform: &str, user: &str) -> Vec<String> {
    lab_inbox(platform, user)
        .await
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).into_owned())
        .filter(|text| text.contains("\r\nX-BMA-Probe: "))
        .map(|text| text.lines().find_map(|l| l.strip_prefix("Message-ID: ")).unwrap_or("").to_owned())
        .collect()
}

/// A probe of mailbox `id` with `unique`, as a killed run would have sent it, landed in the new INBOX.
async fn left_probe(address: &str, id: i64, unique: &str) {
    let raw = format!(
        "From: <migrationbma@cfwb.be>\r\nTo: <{address}>\r\nSubject: bma route probe\r\n\
         Message-ID: <probe.{id}.{unique}@bma.test>\r\nX-BMA-Probe: {unique}\r\n\r\nprobe\r\n"
    );
    bma_tests::smtp::send(2525, "bounces@bma.test", address, &raw);
    for _ in 0..100 {
        if probes("new", address).await.iter().any(|p| p.contains(unique)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the left probe never landed");
}

async fn the_route_is_confirmed_by_a_probe_removed_where_it_lands(backend: TestBackend) {
    let address = fresh_address();
    legacy_mailbox(&address, "mot-de-passe").await;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let now = datetime!(2024-06-04 06:00 UTC);
    scheduled(&store, &address, now).await;
    let settings = EngineSettings {
        new: Some(lab_platform("new")),
        switch: Some(lab_switch_settings()),
        ..lab_engine_settings("bounces@bma.test")
    };
    let engine = Engine::new(store.clone(), Templates::load(None).expect("templates"), settings, lab_smtp(), "w1");

    let outcome = engine.cut_over(&address, now).await.expect("cut over");
    assert!(matches!(outcome, SwitchOutcome::Migrated(_)), "{outcome:?}");
    let progress = store.switch_steps(&addr(&address)).await.expect("steps");
    let probe = &progress.details(Step::Route).expect("the route step")["probe"];
    assert_eq!((probe["sent"].as_bool(), probe["removed"].as_u64()), (Some(true), Some(1)), "{probe}");
    assert_eq!(probes("new", &address).await, Vec::<String>::new(), "no probe left in the new INBOX");

    // A run killed after its probe landed: found, not sent again; an older one removed with it.
    let id = store.mailbox(&addr(&address)).await.expect("mailbox").id;
    left_probe(&address, id, "older").await;
    left_probe(&address, id, "resumed").await;
    let again = engine.probe_route(&address, Route::New, "resumed", Duration::from_secs(20), now).await.expect("probe");
    assert_eq!((again["sent"].as_bool(), again["removed"].as_u64()), (Some(false), Some(2)), "{again}");
    assert!(probes("new", &address).await.is_empty());

    // A route that does not deliver (mail held): a clear error after the timeout.
    let routing = lab_switch_settings().routing;
    routing.set(&address, Route::Held).expect("held");
    let err =
        engine.probe_route(&address, Route::New, "held", Duration::from_secs(2), now).await.expect_err("not confirmed");
    let text = err.to_string();
    assert!(text.contains("not confirmed") && text.contains("within 2 s"), "{text}");
    routing.set(&address, Route::New).expect("new");
    routing.release().expect("released");
    // The held probe arrives late: the next probe sweeps it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    engine.probe_route(&address, Route::New, "sweep", Duration::from_secs(20), now).await.expect("probe");

    // A rollback confirms the legacy route the same way.
    let undone = engine
        .roll_back(&address, "test", &Actor::Operator("t".into()), SwitchEnd::RolledBack, now)
        .await
        .expect("rolled back");
    assert!(undone.routed_back, "{undone:?}");
    assert!(probes("legacy", &address).await.is_empty(), "no probe left in the legacy INBOX");
    assert!(probes("new", &address).await.is_empty(), "nor in the new one");
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(the_route_is_confirmed_by_a_probe_removed_where_it_lands);
