//! `bma sync` logging in on the target with SASL XOAUTH2, against the lab's
//! real servers: the new platform's Dovecot checks every access token at
//! the lab OIDC provider's introspection endpoint (an `oauth2` passdb), and
//! tokens come from `cargo xtask lab token` (see lab/README.md).
//!
//! A seeded mailbox is copied from legacy (master user, as in `sync.rs`) to a
//! new-platform user whose only credential given to `bma` is a freshly minted
//! token, then compared message by message (the target read over XOAUTH2
//! with the same token); an unchanged rerun copies nothing; the user's
//! password still works beside the token. A wrong token, an expired one and
//! another mailbox's token each fail the run with the "failed" exit code and
//! an error naming the target. No token ever appears in what `bma` prints
//! (with every log level on) nor in the new Dovecot's or the provider's log.
//!
//! Needs `cargo xtask lab up && cargo xtask lab seed`. The seeded mailbox is
//! only read; every target is a user of its own.
//!
//! Dovecot delays every login from an address after a failed one (its auth
//! penalty, per client IP: everything here is 127.0.0.1), so after each
//! refused token a good login clears it again for the other tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bma_imap::{Auth, Client, MailboxName, Secret};
use serde_json::Value;

use bma_tests::copy::fingerprints;
use bma_tests::lab_imap_config as imap_config;
use bma_tests::{lab_adduser, lab_file, lab_master_for, lab_token};

/// `bma sync`'s exit code for a run that could not be done.
const EXIT_FAILED: i32 = 4;

fn s(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn imap_url(platform: &str) -> String {
    let c = imap_config(platform);
    format!("imap://{}:{}", c.host, c.port)
}

/// A new-platform user of its own (address, password).
fn target_user(what: &str) -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let address = format!("oauthtest.{what}.{:x}{}@bma.test", nanos & 0xffff_ffff, N.fetch_add(1, Ordering::Relaxed));
    let password = format!("secret-{what}");
    lab_adduser("new", &address, &password);
    (address, password)
}

/// A regular seeded mailbox of the legacy platform and its message count.
fn seeded_source() -> (String, u64) {
    let seed = lab_file("seed.json");
    let m = seed["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .find(|m| m["kind"] == "regular")
        .expect("a regular seeded mailbox");
    (s(&m["address"]).to_owned(), m["messages"].as_u64().expect("a message count"))
}

/// `bma sync` from `source` on legacy (master user) to `target` on new with
/// the token in `dir/token`, logging everything (trace), JSON summary.
fn sync(dir: &Path, source: &str, target: &str, token: &str) -> Output {
    let lab = lab_file("lab.json");
    std::fs::write(dir.join("admin.pw"), s(&lab["master_password"])).expect("write the admin password");
    std::fs::write(dir.join("token"), format!("{token}\n")).expect("write the token");
    Command::new(bma_tests::bma_bin())
        .env("BMA_LOG", "trace")
        .args(["sync", "--tls", "none", "--json", "--max-connections", "2"])
        .args(["--source", &imap_url("legacy"), "--source-user", source, "--source-admin", s(&lab["master_user"])])
        .arg("--source-password-file")
        .arg(dir.join("admin.pw"))
        .args(["--target", &imap_url("new"), "--target-user", target])
        .arg("--target-oauth2-token-file")
        .arg(dir.join("token"))
        .arg("--state")
        .arg(dir.join("state.db"))
        .output()
        .expect("run bma")
}

/// Panics if `token` is in what `bma` printed or in a lab log.
fn assert_token_nowhere(token: &str, out: &Output) {
    let lab = lab_file("lab.json");
    let read = |key: &str| std::fs::read(s(&lab[key]["log"])).unwrap_or_else(|e| panic!("the {key} log: {e}"));
    for (what, bytes) in [
        ("stdout", out.stdout.clone()),
        ("stderr", out.stderr.clone()),
        ("the new Dovecot's log", read("new")),
        ("the provider's log", read("oidc")),
    ] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "the token appears in {what}");
    }
}

async fn login(platform: &str, auth: &Auth) -> Result<Client, bma_imap::Error> {
    let mut c = Client::connect(&imap_config(platform)).await?;
    c.login(auth).await?;
    Ok(c)
}

fn xoauth2(user: &str, token: &str) -> Auth {
    Auth::XOAuth2 { user: user.to_owned(), token: Secret::new(token) }
}

#[tokio::test]
async fn a_mailbox_is_copied_to_a_target_that_logs_in_with_an_oauth2_token() {
    let (source, seeded) = seeded_source();
    let (target, password) = target_user("copy");
    let token = lab_token(&target, 600);
    let dir = tempfile::tempdir().expect("tempdir");

    let out = sync(dir.path(), &source, &target, &token);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(summary["outcome"], "complete", "{summary:#}");
    assert_eq!(summary["copied"].as_u64(), Some(seeded), "{summary:#}");
    assert_token_nowhere(&token, &out);

    // Message by message: every source folder against the target folder it
    // went to (several source folders may share one target folder).
    let mut src = login("legacy", &lab_master_for(&source)).await.expect("source login");
    let mut tgt = login("new", &xoauth2(&target, &token)).await.expect("target login with the token");
    let mut want: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for f in summary["folders"].as_array().expect("folders") {
        let found = fingerprints(&mut src, s(&f["source"])).await;
        want.entry(s(&f["target"]).to_owned()).or_default().extend(found);
    }
    assert!(want.len() > 1, "the seeded mailbox has several folders: {summary:#}");
    for (folder, mut expected) in want {
        expected.sort();
        assert_eq!(fingerprints(&mut tgt, &folder).await, expected, "target folder {folder}");
    }
    let _ = tgt.logout().await;
    let _ = src.logout().await;

    // The same token again: nothing left to copy.
    let again = sync(dir.path(), &source, &target, &token);
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
    let rerun: Value = serde_json::from_slice(&again.stdout).expect("a JSON summary");
    assert_eq!((&rerun["outcome"], rerun["copied"].as_u64()), (&Value::from("complete"), Some(0)), "{rerun:#}");
    assert_token_nowhere(&token, &again);

    // The password and the master user still work for that user.
    let by_password = Auth::Login { user: target.clone(), password: Secret::new(password) };
    for (what, auth) in [("password", by_password), ("master user", lab_master_for(&target))] {
        let c = login("new", &auth).await.unwrap_or_else(|e| panic!("{what} login: {e}"));
        let _ = c.logout().await;
    }
}

#[tokio::test]
async fn a_refused_token_fails_the_run_and_names_the_target() {
    let (source, _) = seeded_source();
    let (target, _) = target_user("refused");
    let (other, _) = target_user("other");
    let good = lab_token(&target, 600);
    let expired = lab_token(&target, 1);
    let unique = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let cases = [
        ("a wrong token", format!("not-a-token-{unique:x}")),
        ("an expired token", expired),
        ("another mailbox's token", lab_token(&other, 600)),
    ];
    // The short-lived token is now surely past its expiry (1 s).
    std::thread::sleep(Duration::from_millis(2100));
    for (what, token) in &cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = sync(dir.path(), &source, &target, token);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(EXIT_FAILED), "{what}: {stderr}");
        assert!(stderr.contains("error: target: authentication with XOAUTH2 failed"), "{what}: {stderr}");
        assert!(!stderr.contains("error: source"), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}: no summary expected");
        assert_token_nowhere(token, &out);

        // Only the token was wrong: the good one logs in (and clears
        // Dovecot's penalty for the next case and the other tests).
        let c = login("new", &xoauth2(&target, &good)).await.unwrap_or_else(|e| panic!("after {what}: {e}"));
        let _ = c.logout().await;
    }
}

#[tokio::test]
async fn a_token_refreshed_in_its_file_serves_the_reconnection() {
    use bma_imap::{AppendMessage, Flag};
    use bma_sync::{Endpoint, Options, Outcome};
    // A legacy source of its own, 60 small messages.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let source = format!("oauthtest.src.{:x}@bma.test", nanos & 0xffff_ffff);
    lab_adduser("legacy", &source, "secret-src");
    let mut src = login("legacy", &lab_master_for(&source)).await.expect("source login");
    {
        let bodies: Vec<Vec<u8>> = (0..60)
            .map(|i| {
                format!("From: a@bma.test\r\nSubject: refresh {i}\r\n\r\nbody {i} {}\r\n", "x".repeat(150)).into_bytes()
            })
            .collect();
        let mut p = src.multiappend_pipeline(&MailboxName::new("INBOX")).expect("MULTIAPPEND");
        for (i, b) in bodies.iter().enumerate() {
            p.push(i as u64, AppendMessage { body: b, flags: &[Flag::Seen], internal_date: None }).await.expect("push");
        }
        p.finish().await.expect("appended");
    }
    let (target, _) = target_user("refresh");
    // The first token lives 8 s (minted just before the run: its first
    // login comes well within that, even on a loaded machine); the copy,
    // slowed down to about 12 s, is under way when it expires, and its
    // target connection is cut then.
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    let r = bma_tests::copy::relay((imap_config("new").host, imap_config("new").port)).await;
    let mut config = imap_config("new");
    config.port = r.port;
    let target_end = Endpoint { config, auth: Auth::XOAuth2File { user: target.clone(), path: token_file.clone() } };
    let source_end = Endpoint { config: imap_config("legacy"), auth: lab_master_for(&source) };
    let (_state_dir, store) = bma_tests::copy::state().await;
    let started = std::sync::Arc::new(Started(AtomicU32::new(0), tokio::sync::Notify::new()));
    let opts = Options {
        max_connections: 1,
        batch_messages: 5,
        rate: Some(std::sync::Arc::new(bma_sync::RateLimiter::new(1_000))),
        progress: Some(started.clone()),
        ..Options::default()
    };
    std::fs::write(&token_file, lab_token(&target, 8)).expect("write the token");
    let first_expires = std::time::Instant::now() + Duration::from_millis(8500);
    let mut task = tokio::spawn(async move { bma_sync::run(&source_end, &target_end, store, &opts).await });
    tokio::select! {
        () = started.1.notified() => {}
        ended = &mut task => panic!("the run ended before copying 10 messages: {ended:?}"),
        () = tokio::time::sleep(Duration::from_secs(60)) => panic!("no progress in 60 s"),
    }
    // Another program refreshes the token in the file; the first one expires.
    std::fs::write(&token_file, lab_token(&target, 600)).expect("refresh the token");
    tokio::time::sleep_until(first_expires.into()).await;
    assert!(!task.is_finished(), "the copy ended before the first token expired: slow it down");
    r.restart.send(Duration::from_millis(200)).await.expect("cut the target connection");
    let run = tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("the run ends")
        .expect("task")
        .expect("the run logs in again with the refreshed token");
    // A batch whose answer the cut lost is found on the target (reconciled), not copied twice.
    let inbox = run.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert_eq!((run.outcome, inbox.copied + inbox.reconciled, inbox.target_messages), (Outcome::Complete, 60, 60));
    assert!(run.folders.iter().any(|f| f.reconnects >= 1), "the connection was cut mid-copy: {run:#?}");
}

/// Tells when the copy has appended its first messages.
struct Started(AtomicU32, tokio::sync::Notify);

impl bma_sync::Progress for Started {
    fn add_total(&self, _messages: u64, _bytes: u64) {}
    fn advance(&self, messages: u64, _bytes: u64) {
        let before = self.0.fetch_add(u32::try_from(messages).unwrap_or(u32::MAX), Ordering::SeqCst);
        if before < 10 && before + u32::try_from(messages).unwrap_or(u32::MAX) >= 10 {
            self.1.notify_one();
        }
    }
}
