//! The store on both backends: schema, registry import, lifecycle
//! transitions with their events, counts.

use bma_core::AddressRule;
use bma_core::lifecycle::{Actor, State};
use bma_core::registry;
use bma_store::{Store, StoreError};
use bma_tests::{TestBackend, TestDb, addr, on_both_backends};
use time::macros::datetime;

fn rows(csv: &str) -> Vec<registry::RegistryRow> {
    let parsed = registry::parse(csv.as_bytes(), &AddressRule::default()).expect("parse");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.rows
}

const LIST: &str = "address,name,quota_bytes,usage_bytes,messages\n\
ec000001@adm.cfwb.be,Athénée Royal,1000,500,10\n\
ec000002@adm.cfwb.be,École communale,2000,100,3\n\
po000003@adm.cfwb.be,Pouvoir organisateur,,,\n";

async fn import_is_idempotent_and_records_events(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let actor = Actor::System("import".into());
    let at = datetime!(2024-04-01 09:00 UTC);
    let first = store.apply_import(&rows(LIST), "list.csv", &actor, at).await.unwrap();
    assert_eq!((first.created, first.updated, first.unchanged), (3, 0, 0));
    let again = store.apply_import(&rows(LIST), "list.csv", &actor, at).await.unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 3));
    assert!(again.missing.is_empty());

    // A changed name and a dropped mailbox.
    let changed =
        "address,name\nec000001@adm.cfwb.be,Athénée Royal Jean Jaurès\nec000002@adm.cfwb.be,École communale\n";
    let third = store.apply_import(&rows(changed), "list2.csv", &actor, at).await.unwrap();
    assert_eq!((third.created, third.updated, third.unchanged), (0, 1, 1));
    assert_eq!(third.missing, vec!["po000003@adm.cfwb.be".to_owned()]);

    let m = store.mailbox(&addr("EC000001@adm.cfwb.be")).await.unwrap();
    assert_eq!(m.name, "Athénée Royal Jean Jaurès");
    assert_eq!(
        (m.quota_bytes, m.usage_bytes, m.messages),
        (Some(1000), Some(500), Some(10)),
        "absent columns keep values"
    );
    assert_eq!(m.state, State::Imported);
    let timeline = store.timeline(m.id).await.unwrap();
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["imported", "updated"]);
    assert_eq!(timeline[1].details["changes"][0]["field"], "name");
    // The mailbox missing from the last list is still there.
    assert!(store.mailbox(&addr("po000003@adm.cfwb.be")).await.is_ok());
    assert_eq!(store.campaign_events(10).await.unwrap().len(), 3);
    store.close().await;
    db.drop_db().await;
}

async fn transitions_are_checked_and_logged(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let at = datetime!(2024-04-22 08:00 UTC);
    store.apply_import(&rows(LIST), "list.csv", &Actor::System("import".into()), at).await.unwrap();
    let op = Actor::Operator("helpdesk1".into());
    let a = "ec000001@adm.cfwb.be";
    store.transition(&addr(a), State::Scheduled, &op, "wave 1", serde_json::json!({"wave": 1}), at).await.unwrap();
    let err = store.transition(&addr(a), State::Migrated, &op, "skip", serde_json::json!({}), at).await.unwrap_err();
    assert!(matches!(err, StoreError::Illegal { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "ec000001@adm.cfwb.be: a mailbox cannot go from scheduled to migrated (from scheduled: imported, invited, or blocked)"
    );
    let blocked =
        store.transition(&addr(a), State::Blocked, &op, "school closed", serde_json::json!({}), at).await.unwrap();
    assert_eq!((blocked.state, blocked.blocked_from), (State::Blocked, Some(State::Scheduled)));
    assert!(store.transition(&addr(a), State::Invited, &op, "", serde_json::json!({}), at).await.is_err());
    let back = store.transition(&addr(a), State::Scheduled, &op, "reopened", serde_json::json!({}), at).await.unwrap();
    assert_eq!((back.state, back.blocked_from), (State::Scheduled, None));
    let stored = store.mailbox(&addr(a)).await.unwrap();
    assert_eq!(stored, back);

    let events = store.timeline(stored.id).await.unwrap();
    let steps: Vec<(Option<State>, Option<State>, &str)> =
        events.iter().map(|e| (e.from_state, e.to_state, e.reason.as_str())).collect();
    assert_eq!(
        steps,
        vec![
            (None, Some(State::Imported), "registry import from list.csv, line 2"),
            (Some(State::Imported), Some(State::Scheduled), "wave 1"),
            (Some(State::Scheduled), Some(State::Blocked), "school closed"),
            (Some(State::Blocked), Some(State::Scheduled), "reopened"),
        ]
    );
    assert_eq!(events[1].actor, "operator:helpdesk1");
    assert_eq!(events[1].details["wave"], 1);
    assert_eq!(events[1].at, at);

    let missing =
        store.transition(&addr("ec999999@adm.cfwb.be"), State::Scheduled, &op, "", serde_json::json!({}), at).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));

    let counts = store.counts_by_state().await.unwrap();
    assert_eq!(counts.get(&State::Imported), Some(&2));
    assert_eq!(counts.get(&State::Scheduled), Some(&1));
    store.close().await;
    db.drop_db().await;
}

async fn concurrent_transitions_never_both_win(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let at = datetime!(2024-04-22 08:00 UTC);
    store.apply_import(&rows(LIST), "list.csv", &Actor::System("import".into()), at).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s: Store = store.clone();
        tasks.push(tokio::spawn(async move {
            let actor = Actor::System(format!("w{i}"));
            s.transition(&addr("ec000002@adm.cfwb.be"), State::Scheduled, &actor, "race", serde_json::json!({}), at)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "exactly one transition wins");
    let m = store.mailbox(&addr("ec000002@adm.cfwb.be")).await.unwrap();
    let transitions = store.timeline(m.id).await.unwrap().into_iter().filter(|e| e.kind == "transition").count();
    assert_eq!(transitions, 1, "one event per state change");
    store.close().await;
    db.drop_db().await;
}

async fn reopening_keeps_data_and_schema(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let at = datetime!(2024-04-22 08:00 UTC);
    {
        let store = db.store().await;
        store.apply_import(&rows(LIST), "list.csv", &Actor::System("import".into()), at).await.unwrap();
        store.close().await;
    }
    let store = db.store().await;
    assert_eq!(store.mailboxes().await.unwrap().len(), 3);
    store.close().await;
    db.drop_db().await;
}

/// Views of mailbox pages asked for at once are each recorded (one
/// statement per batch: `bma_store`'s view log), including those whose
/// request was dropped while waiting, and the log never stalls: a view
/// asked for afterwards is committed too.
async fn staff_views_at_once_are_each_recorded(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let at = datetime!(2024-04-01 09:00 UTC);
    store.apply_import(&rows(LIST), "list.csv", &Actor::System("import".into()), at).await.unwrap();
    let m = store.mailbox(&addr("ec000001@adm.cfwb.be")).await.unwrap();
    let agent = |i: usize| bma_store::StaffIdentity {
        subject: format!("agent-{i}"),
        name: format!("Agent {i}"),
        email: String::new(),
        role: bma_core::staff::Role::Agent,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        let (store, who) = (store.clone(), agent(i));
        tasks.spawn(async move { store.record_staff_view(&who, m.id, at).await });
    }
    for i in 300..350 {
        // polled once (queued), then dropped
        let _ = tokio::time::timeout(std::time::Duration::ZERO, store.record_staff_view(&agent(i), m.id, at)).await;
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    tokio::time::timeout(std::time::Duration::from_secs(10), store.record_staff_view(&agent(350), m.id, at))
        .await
        .expect("the log does not stall")
        .unwrap();
    let views = store.staff_views(m.id, 1000).await.unwrap();
    let mut subjects: Vec<String> = views.iter().map(|v| v.subject.clone()).collect();
    subjects.sort();
    let mut expected: Vec<String> = (0..=350).map(|i| format!("agent-{i}")).collect();
    expected.sort();
    assert_eq!(subjects, expected);
    assert!(views.iter().all(|v| v.at == at && v.name == format!("Agent {}", &v.subject[6..])));
    db.drop_db().await;
}

on_both_backends!(
    import_is_idempotent_and_records_events,
    transitions_are_checked_and_logged,
    concurrent_transitions_never_both_win,
    reopening_keeps_data_and_schema,
    staff_views_at_once_are_each_recorded,
);
