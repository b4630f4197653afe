//! `passwords.delivery = "inline"`, on both store backends: a manager who
//! said the BMA's password is lost gets a new one written in the body of
//! mail 2, no link. Read as the manager reads it, from the legacy INBOX
//! over IMAP and from the backup address's own mailbox: the same password
//! in both, it logs into the new platform, the old one does not; the
//! backup copy is recorded sent with its header only, and no column of the
//! store holds the password, clear or sealed.

use std::collections::BTreeSet;
use std::time::Duration;

use bma_core::State;
use bma_core::lifecycle::Actor;
use bma_engine::{Engine, EngineSettings, PasswordDelivery, SwitchOutcome};
use bma_mail::Templates;
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp};
use bma_tests::switch::{enrolled_without_password, fresh_address, lab_switch_settings, legacy_mailbox, login};
use bma_tests::{TestBackend, TestDb, addr, lab_adduser, lab_inbox, on_both_backends};
use time::macros::datetime;

const OLD: &str = "mot-de-passe-oublie";

/// The password written in mail 2 in `user`'s INBOX on `platform`, as the
/// text part shows it (the line after "supprimez ce message :"), waiting
/// for mail 2 to arrive; and whether that mail 2 has a password link.
async fn written_password(platform: &str, user: &str) -> (String, bool) {
    for _ in 0..100 {
        let texts: Vec<String> = lab_inbox(platform, user)
            .await
            .iter()
            .filter_map(|raw| bma_mail::inspect::part(raw, "text/plain"))
            .filter(|t| t.contains("a été migrée"))
            .collect();
        if let Some(text) = texts.last() {
            let lines: Vec<&str> = text.lines().collect();
            let at = lines.iter().position(|l| l.contains("supprimez ce message :")).expect("the password's paragraph");
            let password = lines[at + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty()).expect("a password");
            return (password.to_owned(), text.contains("/mot-de-passe/"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no mail 2 reached {user} on {platform}");
}

async fn an_inline_password_is_written_in_both_copies_of_mail_2_and_logs_in(backend: TestBackend) {
    let address = fresh_address();
    legacy_mailbox(&address, OLD).await;
    let backup = format!("secours-{}@ecole.test", &address[..8]);
    lab_adduser("legacy", &backup, "secret-secours");
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let now = datetime!(2024-06-04 06:00 UTC);
    let csv = format!("address,name\n{address},École du mot de passe\n");
    let rows = bma_core::registry::parse(csv.as_bytes(), &bma_core::AddressRule::default()).expect("registry").rows;
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), now).await.expect("import");
    for state in [State::Scheduled, State::Invited] {
        let operator = Actor::Operator("test".into());
        store.transition(&addr(&address), state, &operator, "test", serde_json::json!({}), now).await.expect("moved");
    }
    let id = store.mailbox(&addr(&address)).await.expect("mailbox").id;
    enrolled_without_password(&store, &address, id, &backup, now).await;
    let switch = bma_engine::SwitchSettings { password_delivery: PasswordDelivery::Inline, ..lab_switch_settings() };
    let settings = EngineSettings {
        new: Some(lab_platform("new")),
        switch: Some(switch),
        ..lab_engine_settings("bounces@bma.test")
    };
    let engine = Engine::new(store.clone(), Templates::load(None).expect("templates"), settings, lab_smtp(), "w1");

    let outcome = engine.cut_over(&address, now).await.expect("cut over");
    assert!(matches!(outcome, SwitchOutcome::Migrated(_)), "{outcome:?}");
    // No outbox run: the backup copy left with the step.
    let (in_bma, bma_link) = written_password("legacy", &address).await;
    let (in_backup, backup_link) = written_password("legacy", &backup).await;
    let (in_new, _) = written_password("new", &address).await;
    assert_eq!((&in_bma, &in_new), (&in_backup, &in_backup), "one password in the three copies");
    assert!(!bma_link && !backup_link, "no link with inline");
    assert!(in_bma.len() >= 15 && in_bma.split('-').count() == 5, "{in_bma}");
    login("new", &address, &in_bma).await.expect("the written password logs into the new platform");
    login("new", &address, OLD).await.expect_err("the old password does not");

    // The backup copy is recorded sent, its header only; the store holds the password nowhere.
    let emails = store.emails_of(id).await.expect("outbox");
    let copy = emails.iter().find(|e| e.kind == "migrated" && e.recipient == backup).expect("the backup copy");
    assert_eq!(copy.state, "sent", "{copy:?}");
    let timeline = store.timeline(id).await.expect("timeline");
    assert!(timeline.iter().any(|e| e.kind == "email_sent" && e.details.to_string().contains(&backup)));
    store.close().await;
    let (cells, found) = crate::trust::scan(&db.url, backend, &BTreeSet::from([in_bma.clone()])).await;
    assert!(cells > 100 && found.is_empty(), "{cells} cells, the password in {found:?}");
    db.drop_db().await;
}

on_both_backends!(an_inline_password_is_written_in_both_copies_of_mail_2_and_logs_in);
