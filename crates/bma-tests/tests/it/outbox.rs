//! The email outbox on both backends: idempotent queuing, exclusive claims,
//! the sent record and its event in one transaction, an email whose sender
//! died while sending claimed again as uncertain, retries then dead.

use std::collections::HashSet;

use bma_core::AddressRule;
use bma_core::lifecycle::Actor;
use bma_store::{FailOutcome, NewEmail, Store, StoreError};
use bma_tests::{TestBackend, TestDb, addr, on_both_backends};
use time::Duration;
use time::macros::datetime;

const T0: time::OffsetDateTime = datetime!(2024-04-22 08:00 UTC);

async fn store_with_mailboxes(db: &TestDb, n: usize) -> Store {
    let store = db.store().await;
    let mut csv = String::from("address,name\n");
    for i in 1..=n {
        csv.push_str(&format!("ec{i:06}@adm.cfwb.be,École {i}\n"));
    }
    let rows = bma_core::registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "t.csv", &Actor::System("import".into()), T0).await.unwrap();
    store
}

fn email(mailbox_id: i64, i: usize) -> NewEmail {
    NewEmail {
        mailbox_id: Some(mailbox_id),
        kind: "invitation".into(),
        key: format!("invitation:2024-04-22:ec{i:06}@adm.cfwb.be"),
        recipient: format!("ec{i:06}@adm.cfwb.be"),
        envelope_from: format!("bounces+ec{i:06}=adm.cfwb.be@bma.test"),
        message_id: format!("invitation.{i}@bma.test"),
        subject: "Migration de votre boîte mail administrative".into(),
        raw: "Subject: x\r\n\r\nBonjour\r\n".into(),
        run_at: T0,
        max_attempts: 2,
    }
}

async fn queue_claim_send_once(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = store_with_mailboxes(&db, 1).await;
    let m = store.mailbox(&addr("ec000001@adm.cfwb.be")).await.unwrap();
    let (id, created) = store.queue_email(&email(m.id, 1), T0).await.unwrap();
    assert!(created);
    assert_eq!(store.queue_email(&email(m.id, 1), T0).await.unwrap(), (id, false), "queued once");
    let claimed = store.claim_emails("s1", T0, Duration::minutes(2), 10).await.unwrap();
    assert_eq!((claimed.len(), claimed[0].uncertain, claimed[0].state.as_str()), (1, false, "sending"));
    assert!(store.claim_emails("s2", T0, Duration::minutes(2), 10).await.unwrap().is_empty(), "leased");
    store.mark_sent(id, "s1", T0 + Duration::seconds(1)).await.unwrap();
    assert!(store.claim_emails("s2", T0 + Duration::hours(1), Duration::minutes(2), 10).await.unwrap().is_empty());
    let sent = store.emails_of(m.id).await.unwrap();
    assert_eq!((sent[0].state.as_str(), sent[0].sent_at), ("sent", Some(T0 + Duration::seconds(1))));
    let events = store.timeline(m.id).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.kind, "email_sent");
    assert_eq!(last.details["message_id"], "invitation.1@bma.test");
    assert!(matches!(store.mark_sent(id, "s1", T0).await, Err(StoreError::LeaseLost { .. })), "sent only once");
    store.close().await;
    db.drop_db().await;
}

async fn a_dead_sender_leaves_an_uncertain_email(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = store_with_mailboxes(&db, 2).await;
    let a = store.mailbox(&addr("ec000001@adm.cfwb.be")).await.unwrap();
    let b = store.mailbox(&addr("ec000002@adm.cfwb.be")).await.unwrap();
    let (ia, _) = store.queue_email(&email(a.id, 1), T0).await.unwrap();
    store.claim_emails("dead", T0, Duration::minutes(2), 1).await.unwrap();
    let (ib, _) = store.queue_email(&email(b.id, 2), T0).await.unwrap();
    let later = store.claim_emails("s2", T0 + Duration::minutes(3), Duration::minutes(2), 10).await.unwrap();
    let flags: Vec<(i64, bool)> = later.iter().map(|e| (e.id, e.uncertain)).collect();
    assert_eq!(flags, vec![(ia, true), (ib, false)], "the one being sent when its sender died is uncertain");
    // A transient failure retries once, then the email is dead.
    let outcome = store.mark_email_failed(ib, "s2", "451 try later", false, T0 + Duration::minutes(3)).await.unwrap();
    let FailOutcome::Retry(at) = outcome else { panic!("retry") };
    let again = store.claim_emails("s2", at, Duration::minutes(2), 10).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ib]);
    assert_eq!(store.mark_email_failed(ib, "s2", "451 again", false, at).await.unwrap(), FailOutcome::Dead);
    let stored = store.emails_of(b.id).await.unwrap();
    assert_eq!((stored[0].state.as_str(), stored[0].last_error.as_deref()), ("dead", Some("451 again")));
    store.close().await;
    db.drop_db().await;
}

async fn concurrent_senders_never_share_an_email(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = store_with_mailboxes(&db, 40).await;
    for i in 1..=40 {
        let m = store.mailbox(&addr(&format!("ec{i:06}@adm.cfwb.be"))).await.unwrap();
        store.queue_email(&email(m.id, i), T0).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("s{w}");
            let mut sent = Vec::new();
            loop {
                let batch = s.claim_emails(&me, T0, Duration::minutes(2), 3).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                for e in batch {
                    s.mark_sent(e.id, &me, T0).await.unwrap();
                    sent.push(e.id);
                }
            }
            sent
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!((all.len(), all.iter().collect::<HashSet<_>>().len()), (40, 40));
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(
    queue_claim_send_once,
    a_dead_sender_leaves_an_uncertain_email,
    concurrent_senders_never_share_an_email
);
