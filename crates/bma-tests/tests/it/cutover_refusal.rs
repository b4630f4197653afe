//! `[cutover] legacy_refusal`, on both store backends: a mailbox cut over
//! by `bma cutover run` with the text set in its configuration; a real
//! IMAP login on the legacy Dovecot with the mailbox's own password gets
//! that text, not the default one.

use bma_core::State;
use bma_tests::switch::{cutover_env, fresh_address, legacy_mailbox, login, scheduled};
use bma_tests::{TestBackend, TestDb, addr, bma_lab_command, on_both_backends};
use time::macros::datetime;

const PASSWORD: &str = "mot-de-passe-de-la-bma";
const REFUSAL: &str = "Cette boîte a déménagé : ouvrez https://webmail.bma.test ou appelez le 02 800 10 10.";

async fn the_legacy_login_gets_the_configured_refusal(backend: TestBackend) {
    let address = fresh_address();
    legacy_mailbox(&address, PASSWORD).await;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    scheduled(&store, &address, datetime!(2024-06-04 06:00 UTC)).await;
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(dir.path().join("admin.password"), "adminpass\n").expect("password file");
    let mut cmd = bma_lab_command(dir.path(), &db.url, &["cutover", "run", &address]);
    cmd.envs(cutover_env(dir.path())).env("BMA_CUTOVER_LEGACY_REFUSAL", REFUSAL);
    let out = cmd.output().expect("bma cutover run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(store.mailbox(&addr(&address)).await.expect("mailbox").state, State::Migrated);

    let refused = login("legacy", &address, PASSWORD).await.expect_err("the legacy login is refused");
    // Dovecot answers the reason as written (its spaces stored as no-break spaces).
    let text = refused.to_string().replace('\u{a0}', " ");
    assert!(text.contains(REFUSAL), "{text}");
    assert!(!text.contains("connectez-vous sur la nouvelle messagerie"), "not the default text: {text}");
    login("new", &address, PASSWORD).await.expect("the new platform takes the password");
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(the_legacy_login_gets_the_configured_refusal);
