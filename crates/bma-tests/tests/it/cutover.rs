//! The cutover of one mailbox on the lab's real servers (Dovecot legacy
//! and new, Postfix), on both store backends: the account on the new
//! platform with the same password and the quota × 25, the legacy login
//! refused with its French reason, mail 2 in both boxes, the receipt, a
//! message sent afterwards landing on the new platform; a generator
//! sending throughout a cutover, every message in the new INBOX exactly
//! once; a rollback that brings delivery and login back to the legacy
//! platform with nothing lost; a password scheme the new platform does
//! not take refused at the checks with nothing changed.
//!
//! Each test has a mailbox of its own (a fresh `ec…` address), and runs on
//! both platform backends, the lab's passwd-files and its directory. Needs
//! `cargo xtask lab up`.

use std::collections::BTreeMap;
use std::time::Duration;

use bma_core::State;
use bma_core::lifecycle::Actor;
use bma_core::switch::Step;
use bma_engine::{Engine, EngineError, EngineSettings, SwitchOutcome};
use bma_imap::{Client, MailboxName, UidSet};
use bma_mail::Templates;
use bma_platform::{PasswordHash, Route};
use bma_store::{Store, SwitchEnd};
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp};
use bma_tests::switch::{
    Platforms, fresh_address, lab_switch_settings_on, legacy_mailbox_on, login, message, scheduled,
};
use bma_tests::{TestBackend, TestDb, addr, lab_imap_config, lab_master_for, on_every_platform_backend};
use time::macros::datetime;

const PASSWORD: &str = "ancien-mot-de-passe";
const MIB: u64 = 1024 * 1024;

fn engine(store: Store, on: Platforms) -> Engine {
    let settings = EngineSettings {
        new: Some(lab_platform("new")),
        switch: Some(lab_switch_settings_on(on)),
        ..lab_engine_settings("bounces@bma.test")
    };
    Engine::new(store, Templates::load(None).expect("templates"), settings, lab_smtp(), "test-cutover")
}

/// Subjects of the messages of every folder of `user` on a platform, by folder.
async fn folders(platform: &str, user: &str) -> BTreeMap<String, Vec<String>> {
    let mut c = Client::connect(&lab_imap_config(platform)).await.expect("connect");
    c.login(&lab_master_for(user)).await.expect("login");
    let mut out = BTreeMap::new();
    for f in c.list().await.expect("LIST") {
        if f.attributes.iter().any(|a| a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"))
        {
            continue;
        }
        let name = f.name.clone();
        c.examine(&name).await.expect("examine");
        let mut subjects = Vec::new();
        {
            let mut bodies = c.fetch_bodies(&UidSet::all()).await.expect("fetch");
            while let Some(m) = bodies.next().await.expect("message") {
                let text = String::from_utf8_lossy(&m.body).into_owned();
                let subject = text.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("").to_owned();
                subjects.push(subject);
            }
        }
        subjects.sort();
        out.insert(name.to_string(), subjects);
    }
    let _ = c.logout().await;
    out
}

/// Waits until `user`'s INBOX on `platform` holds a message whose subject is `subject`.
async fn wait_for(platform: &str, user: &str, subject: &str) {
    for _ in 0..100 {
        if folders(platform, user).await.get("INBOX").is_some_and(|s| s.iter().any(|x| x == subject)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{subject:?} never reached {user} on {platform}");
}

/// A fresh mailbox on the legacy platform (five messages), scheduled for
/// its cutover today on a new test database.
async fn ready(backend: TestBackend, on: Platforms) -> (String, TestDb, Store, time::OffsetDateTime) {
    let address = fresh_address();
    legacy_mailbox_on(on, &address, PASSWORD).await;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let now = datetime!(2024-06-04 06:00 UTC);
    scheduled(&store, &address, now).await;
    (address, db, store, now)
}

fn send(address: &str, n: usize) {
    let raw = String::from_utf8(message(address, n)).expect("text");
    bma_tests::smtp::send(2525, "direction@ecole.test", address, &raw);
}

async fn a_mailbox_is_cut_over_with_its_password_its_quota_mail_2_and_a_receipt(backend: TestBackend, on: Platforms) {
    let (address, db, store, now) = ready(backend, on).await;

    let outcome = engine(store.clone(), on).cut_over(&address, now).await.expect("cut over");
    let SwitchOutcome::Migrated(receipt) = outcome else { panic!("{outcome:?}") };
    assert_eq!((receipt.messages, receipt.missing, receipt.folders.len()), (5, 0, 2), "{receipt:?}");
    assert_eq!(receipt.digest.len(), 64);

    let m = store.mailbox(&addr(&address)).await.expect("mailbox");
    assert_eq!(m.state, State::Migrated);
    let progress = store.switch_steps(&addr(&address)).await.expect("steps");
    assert_eq!(progress.done(), Step::ALL, "every step once, in order");

    // The old password logs into the new platform; the quota is 25 × the legacy one (100 MiB in the lab).
    let mut new = login("new", &address, PASSWORD).await.expect("the old password logs into the new platform");
    let quota = new.quota(&MailboxName::new("INBOX")).await.expect("GETQUOTAROOT").expect("a quota");
    assert_eq!(quota.limit_bytes, 2_500 * MIB);
    let _ = new.logout().await;
    // The legacy login is refused, in French, pointing to the new webmail.
    let refused = login("legacy", &address, PASSWORD).await.expect_err("the legacy login is refused");
    let text = refused.to_string();
    assert!(text.contains("migrée") && text.contains(bma_tests::switch::WEBMAIL), "{text}");

    // Mail 2 in both boxes, once; every message on the new side.
    let mail2 = format!("Votre BMA {address} est ");
    let legacy_boxes = folders("legacy", &address).await;
    let new_boxes = folders("new", &address).await;
    // (Its subject's first line: the rest, with accents, is encoded on the next one.)
    let count = |b: &BTreeMap<String, Vec<String>>| b["INBOX"].iter().filter(|s| s.starts_with(&mail2)).count();
    assert_eq!((count(&legacy_boxes), count(&new_boxes)), (1, 1), "{legacy_boxes:?} {new_boxes:?}");
    assert_eq!(legacy_boxes, new_boxes, "the new box holds what the legacy box holds");

    // A message sent now lands on the new platform only.
    send(&address, 100);
    wait_for("new", &address, "Message 100").await;
    assert!(!folders("legacy", &address).await["INBOX"].iter().any(|s| s == "Message 100"));

    // Running it again changes nothing.
    let again = engine(store.clone(), on).cut_over(&address, now).await.expect("again");
    assert_eq!(again, SwitchOutcome::AlreadyMigrated);
    store.close().await;
    db.drop_db().await;
}

async fn mail_sent_throughout_a_cutover_lands_in_the_new_inbox_exactly_once(backend: TestBackend, on: Platforms) {
    let (address, db, store, now) = ready(backend, on).await;

    // One message every 200 ms from before the cutover until after it.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let to = address.clone();
    let generator = tokio::task::spawn_blocking(move || {
        let mut n = 1000;
        loop {
            send(&to, n);
            n += 1;
            std::thread::sleep(Duration::from_millis(200));
            if stop_rx.try_recv().is_ok() {
                return n - 1000;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outcome = engine(store.clone(), on).cut_over(&address, now).await.expect("cut over");
    assert!(matches!(outcome, SwitchOutcome::Migrated(_)), "{outcome:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(()).expect("stop");
    let sent = generator.await.expect("generator");
    assert!(sent >= 5, "the generator sent {sent}");

    let last = format!("Message {}", 1000 + sent - 1);
    wait_for("new", &address, &last).await;
    let inbox = folders("new", &address).await.remove("INBOX").expect("INBOX");
    for n in 1000..1000 + sent {
        let subject = format!("Message {n}");
        let copies = inbox.iter().filter(|s| **s == subject).count();
        assert_eq!(copies, 1, "{subject}: {copies} copies in the new INBOX of {address}: {inbox:?}");
    }
    // None left on the legacy side only.
    let legacy_inbox = folders("legacy", &address).await.remove("INBOX").expect("INBOX");
    for subject in legacy_inbox {
        assert!(inbox.contains(&subject), "{subject} is on the legacy side only");
    }
    store.close().await;
    db.drop_db().await;
}

async fn a_rollback_brings_delivery_and_login_back_to_the_legacy_platform_with_nothing_lost(
    backend: TestBackend,
    on: Platforms,
) {
    let (address, db, store, now) = ready(backend, on).await;
    let engine = engine(store.clone(), on);
    engine.cut_over(&address, now).await.expect("cut over");
    // Mail reaches the new box after the switch.
    send(&address, 200);
    wait_for("new", &address, "Message 200").await;

    let operator = Actor::Operator("alice".into());
    let undone = engine
        .roll_back(&address, "la direction demande un report", &operator, SwitchEnd::RolledBack, now)
        .await
        .expect("rolled back");
    assert!(undone.routed_back && undone.copied_back >= 1, "{undone:?}");
    assert_eq!(store.mailbox(&addr(&address)).await.expect("mailbox").state, State::CutoverScheduled);
    // What reached the new box is in the legacy one, once; the legacy login works again.
    let legacy_inbox = folders("legacy", &address).await.remove("INBOX").expect("INBOX");
    assert_eq!(legacy_inbox.iter().filter(|s| *s == "Message 200").count(), 1, "{legacy_inbox:?}");
    assert_eq!(legacy_inbox.iter().filter(|s| *s == "Message 0").count(), 1, "nothing twice: {legacy_inbox:?}");
    login("legacy", &address, PASSWORD).await.expect("the legacy login works again");
    let refused = login("new", &address, PASSWORD).await.expect_err("the new box is closed again");
    assert!(refused.to_string().contains("annulée"), "{refused}");
    // Mail goes to the legacy platform again.
    assert_eq!(lab_switch_settings_on(on).routing.route(&address).expect("route"), Route::Legacy);
    send(&address, 201);
    wait_for("legacy", &address, "Message 201").await;
    let events = store.timeline(store.mailbox(&addr(&address)).await.expect("mailbox").id).await.expect("timeline");
    let rollback = events.iter().find(|e| e.kind == "cutover_rollback").expect("a rollback event");
    assert_eq!(
        (rollback.actor.as_str(), rollback.reason.as_str()),
        ("operator:alice", "la direction demande un report")
    );

    // And it can be cut over again.
    let outcome = engine.cut_over(&address, now).await.expect("cut over again");
    assert!(matches!(outcome, SwitchOutcome::Migrated(_)), "{outcome:?}");
    login("new", &address, PASSWORD).await.expect("the new box opens again");
    // The console reads the second attempt's steps from the timeline as the store does.
    let m = store.mailbox(&addr(&address)).await.expect("mailbox");
    let timeline = store.timeline(m.id).await.expect("timeline");
    let steps = store.switch_steps(&addr(&address)).await.expect("steps");
    assert_eq!(bma_store::SwitchProgress::from_timeline(m.state, &timeline).expect("progress"), steps);
    let mut done = steps.done();
    done.dedup();
    assert_eq!(done.len(), steps.steps.len(), "only the second attempt's steps: {:?}", steps.done());
    let new_inbox = folders("new", &address).await.remove("INBOX").expect("INBOX");
    for subject in ["Message 200", "Message 201"] {
        assert_eq!(new_inbox.iter().filter(|s| *s == subject).count(), 1, "{subject}: {new_inbox:?}");
    }
    store.close().await;
    db.drop_db().await;
}

async fn a_password_scheme_the_new_platform_does_not_take_is_refused_with_nothing_changed(
    backend: TestBackend,
    on: Platforms,
) {
    let address = fresh_address();
    legacy_mailbox_on(on, &address, PASSWORD).await;
    // The legacy account's hash in clear text ({PLAIN}), as old platforms kept some.
    let settings = lab_switch_settings_on(on);
    let weak = PasswordHash::parse(&format!("{{PLAIN}}{PASSWORD}"), None).expect("a hash");
    let legacy = settings.legacy_accounts.clone();
    legacy
        .upsert(&bma_platform::NewAccount { address: address.clone(), hash: weak, quota_bytes: 100 * MIB })
        .expect("weak hash written");
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let now = datetime!(2024-06-04 06:00 UTC);
    scheduled(&store, &address, now).await;

    let refused = engine(store.clone(), on).cut_over(&address, now).await.expect_err("refused");
    let text = refused.to_string();
    assert!(matches!(refused, EngineError::Refused(_)) && refused.is_permanent(), "{refused:?}");
    assert!(text.contains("PLAIN") && text.contains("reset-password") && text.contains("too weak"), "{text}");
    // Nothing changed: still scheduled, no account on the new side, mail and login on the legacy side.
    assert_eq!(store.mailbox(&addr(&address)).await.expect("mailbox").state, State::CutoverScheduled);
    assert_eq!(settings.new_accounts.read(&address).expect("read"), None);
    assert_eq!(settings.routing.route(&address).expect("route"), Route::Legacy);
    login("legacy", &address, PASSWORD).await.expect("the legacy login still works");
    store.close().await;
    db.drop_db().await;
}

async fn the_scheduler_cuts_over_on_the_day_and_a_refused_cutover_is_flagged_once(backend: TestBackend, on: Platforms) {
    let (good, weak) = (fresh_address(), fresh_address());
    legacy_mailbox_on(on, &good, PASSWORD).await;
    legacy_mailbox_on(on, &weak, PASSWORD).await;
    let hash = PasswordHash::parse(&format!("{{PLAIN}}{PASSWORD}"), None).expect("a hash");
    lab_switch_settings_on(on)
        .legacy_accounts
        .upsert(&bma_platform::NewAccount { address: weak.clone(), hash, quota_bytes: 100 * MIB })
        .expect("weak hash written");
    let bounces = format!("bounces-{}", good.replace('@', "-at-")) + "@bma.test";
    bma_tests::lab_addusers("legacy", std::slice::from_ref(&bounces), "secret-bounces");
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let day = datetime!(2024-06-04 05:00 UTC);
    scheduled(&store, &good, day).await;
    scheduled(&store, &weak, day).await;
    let operator = Actor::Operator("test".into());
    store.change_campaign(bma_store::CampaignAction::Start, &operator, "go", day).await.expect("started");
    let settings = EngineSettings {
        new: Some(lab_platform("new")),
        switch: Some(lab_switch_settings_on(on)),
        ..lab_engine_settings(&bounces)
    };
    let engine = Engine::new(store.clone(), Templates::load(None).expect("templates"), settings, lab_smtp(), "w1");

    // Before the cutover hour (6:00), nothing.
    let early = engine.step(day).await.expect("step");
    assert_eq!(early.migrated, 0, "{early:?}");
    let r = engine.step(day + time::Duration::hours(2)).await.expect("step");
    assert_eq!((r.migrated, r.flagged), (1, 1), "{r:?}");
    assert_eq!(store.mailbox(&addr(&good)).await.expect("mailbox").state, State::Migrated);
    // The refused one: nothing changed, flagged with the reason, not tried again the next day.
    assert_eq!(store.mailbox(&addr(&weak)).await.expect("mailbox").state, State::CutoverScheduled);
    let flags = store.attention_list().await.expect("attention");
    let flag = flags.iter().find(|a| a.address == weak).expect("flagged");
    assert_eq!(flag.reason, bma_core::AttentionReason::CutoverFailed);
    let next = engine.step(day + time::Duration::hours(26)).await.expect("step");
    assert_eq!((next.migrated, next.failed_jobs), (0, 0), "{next:?}");
    let m = store.mailbox(&addr(&weak)).await.expect("mailbox");
    let events = store.timeline(m.id).await.expect("timeline");
    let why: Vec<&str> = events.iter().filter(|e| e.kind == "attention").map(|e| e.reason.as_str()).collect();
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].contains("PLAIN") && why[0].contains("reset-password"), "{why:?}");
    store.close().await;
    db.drop_db().await;
}

async fn a_cutover_that_keeps_failing_dies_rolled_back_and_flagged(backend: TestBackend, on: Platforms) {
    let address = fresh_address();
    legacy_mailbox_on(on, &address, PASSWORD).await;
    let bounces = format!("bounces-{}", address.replace('@', "-at-")) + "@bma.test";
    bma_tests::lab_addusers("legacy", std::slice::from_ref(&bounces), "secret-bounces");
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let day = datetime!(2024-06-04 07:00 UTC);
    scheduled(&store, &address, day).await;
    let operator = Actor::Operator("test".into());
    store.change_campaign(bma_store::CampaignAction::Start, &operator, "go", day).await.expect("started");
    // The new platform answers, but refuses the master user (a password
    // changed there): the checks pass, the account's quota cannot be read.
    let mut new = lab_platform("new");
    new.password = bma_imap::Secret::new("not-the-admin-password");
    let settings =
        EngineSettings { new: Some(new), switch: Some(lab_switch_settings_on(on)), ..lab_engine_settings(&bounces) };
    let engine = Engine::new(store.clone(), Templates::load(None).expect("templates"), settings, lab_smtp(), "w1");

    let mut failed = 0;
    let mut flagged = 0;
    for hours in 0..6 {
        let r = engine.step(day + time::Duration::hours(hours)).await.expect("step");
        failed += r.failed_jobs;
        flagged += r.flagged;
    }
    assert_eq!((failed, flagged), (3, 1), "three attempts, then dead and flagged once");
    let m = store.mailbox(&addr(&address)).await.expect("mailbox");
    assert_eq!(m.state, State::Failed);
    let flags = store.attention_list().await.expect("attention");
    assert_eq!(
        flags.iter().find(|a| a.address == address).map(|a| a.reason),
        Some(bma_core::AttentionReason::CutoverFailed)
    );
    let events = store.timeline(m.id).await.expect("timeline");
    let rollback = events.iter().find(|e| e.kind == "cutover_rollback").expect("rolled back");
    assert!(rollback.reason.contains("cutover failed 3 times"), "{}", rollback.reason);
    // Nothing of the switch left: mail and login on the legacy platform.
    assert_eq!(lab_switch_settings_on(on).routing.route(&address).expect("route"), Route::Legacy);
    login("legacy", &address, PASSWORD).await.expect("the legacy login works");
    store.close().await;
    db.drop_db().await;
}

on_every_platform_backend!(
    a_cutover_that_keeps_failing_dies_rolled_back_and_flagged,
    the_scheduler_cuts_over_on_the_day_and_a_refused_cutover_is_flagged_once,
    a_mailbox_is_cut_over_with_its_password_its_quota_mail_2_and_a_receipt,
    mail_sent_throughout_a_cutover_lands_in_the_new_inbox_exactly_once,
    a_rollback_brings_delivery_and_login_back_to_the_legacy_platform_with_nothing_lost,
    a_password_scheme_the_new_platform_does_not_take_is_refused_with_nothing_changed,
);

/// A route is confirmed by Postfix's own lookup through every table of
/// `transport_maps`, not by reading back what was written: while the hash
/// table (asked first) holds an address, the directory's route for it is
/// refused as not confirmed; once that line is gone, what the directory
/// says is what both backends read, as Postfix does.
#[test]
fn a_route_that_another_table_shadows_is_not_confirmed() {
    let address = fresh_address();
    let (files, ldap) = (lab_switch_settings_on(Platforms::Files), lab_switch_settings_on(Platforms::Ldap));
    files.routing.set(&address, Route::Held).expect("held in the hash table");
    let shadowed = ldap.routing.set(&address, Route::New).expect_err("the hash table answers first");
    assert!(matches!(shadowed, bma_platform::PlatformError::NotConfirmed(_)), "{shadowed:?}");
    assert_eq!(ldap.routing.route(&address).expect("route"), Route::Held);
    // The hash table's line removed: the directory's entry, written but
    // not confirmed, is what Postfix reads now, and is said so.
    let uncovered = files.routing.set(&address, Route::Legacy).expect_err("the directory routes it to new");
    assert!(uncovered.to_string().contains("looks up new"), "{uncovered}");
    assert_eq!(files.routing.route(&address).expect("route"), Route::New);
    ldap.routing.set(&address, Route::New).expect("confirmed");
    ldap.routing.set(&address, Route::Legacy).expect("back to the legacy platform");
    assert_eq!(files.routing.route(&address).expect("route"), Route::Legacy);
}
