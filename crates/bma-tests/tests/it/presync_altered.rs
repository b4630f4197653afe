//! Presync into a new platform that alters what it is given: the lab's
//! Cyrus (`munge8bit`, its default, replaces 8-bit header bytes with `X`)
//! as the campaign's new platform, on both backends. Every message gets
//! there, so the copy is recorded, and the job is done, not retried (a
//! retry would alter them again): the mailbox is flagged `target_altered`
//! once, naming the setting to change.
//!
//! Each run has a mailbox of its own (a fresh `ec…` address on the legacy
//! Dovecot and on Cyrus). Needs `cargo xtask lab up --with cyrus` and
//! `cargo xtask lab seed`.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use bma_core::job::JobKind;
use bma_core::lifecycle::{Actor, State};
use bma_core::{AddressRule, registry};
use bma_engine::{Engine, EngineSettings, PlatformAccess};
use bma_imap::{AppendMessage, Auth, MailboxName, Secret};
use bma_mail::Templates;
use bma_store::{CampaignAction, JobState, Store};
use bma_sync::Endpoint;
use bma_tests::engine::{lab_engine_settings, lab_smtp, presync_always};
use bma_tests::foreign::Foreign;
use bma_tests::{TestBackend, TestDb, addr, lab_file, on_both_backends};
use time::Duration;
use time::macros::datetime;

/// A message whose Subject holds raw UTF-8, as old clients wrote them.
const EIGHT_BIT: &[u8] = "From: Secrétariat <secretariat@ecole.test>\r\nTo: direction@ecole.test\r\n\
    Subject: Réunion de l'équipe éducative\r\nDate: Mon, 2 Sep 2024 08:00:00 +0200\r\n\
    Message-ID: <eight-bit@ecole.test>\r\n\r\nOrdre du jour en pièce jointe.\r\n"
    .as_bytes();

const PLAIN: &[u8] = b"From: Direction <direction@ecole.test>\r\nTo: secretariat@ecole.test\r\n\
    Subject: Conseil de classe\r\nDate: Tue, 3 Sep 2024 08:00:00 +0200\r\n\
    Message-ID: <plain@ecole.test>\r\n\r\nA 16 heures.\r\n";

/// A fresh address of the campaign's kind, on the legacy Dovecot and on
/// Cyrus, with two messages on the legacy side (one with 8-bit headers).
async fn mailbox() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let address = format!("ec{:06}@adm.cfwb.be", 100_000 + nanos % 800_000);
    let lab = lab_file("lab.json");
    let exe = lab["xtask"].as_str().expect("xtask in lab.json");
    for args in [
        vec!["lab", "adduser", "legacy", &address, "secret-altered"],
        vec!["lab", "foreign", "adduser", "cyrus", &address, "secret-altered"],
    ] {
        let out = Command::new(exe).args(&args).output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let legacy = bma_tests::engine::lab_platform("legacy");
    let owner = Endpoint {
        config: legacy.config.clone(),
        auth: Auth::Login { user: address.clone(), password: Secret::new("secret-altered") },
    };
    let mut c = bma_tests::copy::client(&owner).await;
    for body in [EIGHT_BIT, PLAIN] {
        c.append(&MailboxName::new("INBOX"), AppendMessage { body, flags: &[], internal_date: None })
            .await
            .expect("append on legacy");
    }
    address
}

/// The lab's Cyrus, its admin acting on behalf of each mailbox.
fn cyrus() -> PlatformAccess {
    let lab = lab_file("lab.json");
    let entry = &lab["foreign"][Foreign::Cyrus.name()];
    PlatformAccess {
        config: Foreign::Cyrus.config(),
        admin: entry["admin_user"].as_str().expect("admin_user").to_owned(),
        password: Secret::new(entry["admin_password"].as_str().expect("admin_password")),
        sieve: None,
    }
}

fn engine(store: Store, address: &str) -> Engine {
    let settings = EngineSettings { new: Some(cyrus()), presync: presync_always(1, 2), ..lab_engine_settings(address) };
    Engine::new(store, Templates::load(None).unwrap(), settings, lab_smtp(), "test-presync-altered")
}

async fn a_target_that_alters_messages_flags_the_mailbox_once_and_is_not_retried(backend: TestBackend) {
    let address = mailbox().await;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let now = datetime!(2024-04-23 21:00 UTC);
    let t0 = now - Duration::hours(1);
    let operator = Actor::Operator("test".into());
    let csv = format!("address,name,usage\n{address},École de test,1000000\n");
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), t0).await.unwrap();
    for state in [State::Scheduled, State::Invited, State::Enrolled] {
        store.transition(&addr(&address), state, &operator, "test", serde_json::json!({}), t0).await.unwrap();
    }
    store.change_campaign(CampaignAction::Start, &operator, "go", t0).await.unwrap();

    let r = engine(store.clone(), &address).step(now).await.unwrap();
    assert_eq!(r.presynced, 1, "{r:?}");
    let mut jobs = Vec::new();
    for state in [JobState::Queued, JobState::Running, JobState::Done, JobState::Dead] {
        jobs.extend(store.jobs_in(state, 100).await.unwrap().into_iter().filter(|j| j.kind == JobKind::Presync));
    }
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!((jobs[0].state, jobs[0].attempts), (JobState::Done, 1), "done, not retried: {:?}", jobs[0]);

    let m = store.mailbox(&addr(&address)).await.unwrap();
    assert_eq!(m.state, State::Presynced, "every message is there: the copy counts");
    let attention = store.attention_list().await.unwrap();
    let flags: Vec<&str> = attention.iter().filter(|a| a.address == address).map(|a| a.reason.as_str()).collect();
    assert_eq!(flags, ["target_altered"]);
    let events = store.timeline(m.id).await.unwrap();
    let flagged: Vec<&str> = events.iter().filter(|e| e.kind == "attention").map(|e| e.reason.as_str()).collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(flagged[0].contains("altered 1 messages"), "{flagged:?}");
    assert!(flagged[0].contains("munge8bit: no"), "the setting to change is named: {flagged:?}");

    // The next day's copy: the same finding, no second flag, still done.
    let r = engine(store.clone(), &address).step(now + Duration::days(1)).await.unwrap();
    assert_eq!(r.presynced, 1, "{r:?}");
    let events = store.timeline(m.id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "attention").count(), 1, "flagged once");
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(a_target_that_alters_messages_flags_the_mailbox_once_and_is_not_retried);
