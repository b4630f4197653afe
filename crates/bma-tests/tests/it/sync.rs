//! `bma-sync` against the lab's real Dovecot pair: the hard-cases mailbox
//! copied through the master user and compared message by message (SHA-256
//! of the body, flags, INTERNALDATE, as multisets per folder); an unchanged
//! rerun copies nothing; an incremental run carries a new message, a flag
//! change and (with `delete`) an expunge; a run aborted mid-copy with
//! nothing recorded, then rerun, loses nothing and duplicates nothing (and
//! a run with a lost state, as after a UIDVALIDITY change, maps what is
//! there without appending anything); a wrong source password is reported as the source's.
//! Then sources and targets that differ from the lab's defaults, through
//! per-user Dovecot settings (`lab adduser --userdb`): a source that offers
//! only IMAP4rev1 (no CONDSTORE, QRESYNC, UIDPLUS, LITERAL+, NAMESPACE); a
//! `.` separator with an `INBOX.` prefix on either side; a target that
//! refuses a message (`[LIMIT]`, CLI exit 3, the run goes on); a real
//! UIDVALIDITY change (folder deleted and recreated); connections dropped by
//! the server in the middle of a copy (`doveadm kick`); the sync state on
//! SQLite and PostgreSQL through a killed run; `bma sync --batch` of two
//! mailboxes under one `--max-bytes-per-second` cap; a target "restarted"
//! mid-copy (a relay in front of the lab's Dovecot cuts every connection and
//! refuses new ones for 2.5 s, so that the shared lab itself keeps running).
//!
//! Needs `cargo xtask lab up && cargo xtask lab seed`. Seeded mailboxes are
//! only read; every test has its own users (legacy scratch sources and new
//! platform targets).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bma_imap::{AppendMessage, Auth, Client, Flag, InternalDate, MailboxName, Secret, StoreMode, UidSet};
use bma_sync::{Endpoint, Options, Outcome, Progress, Side, Summary};
use serde_json::Value;
use sha2::{Digest, Sha256};

use bma_tests::copy::{
    assert_same, client, fingerprints, fingerprints_by_uid, relay, state, sync_command, wait_for_messages,
};
use bma_tests::lab_file as read_json;
use bma_tests::lab_imap_config as config;
use bma_tests::lab_master_for;

fn s(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn hard_cases() -> String {
    let seed = read_json("seed.json");
    let m = seed["mailboxes"].as_array().expect("mailboxes").iter().find(|m| m["kind"] == "hard-cases").cloned();
    s(&m.expect("a hard-cases mailbox")["address"]).to_owned()
}

/// A name unique to this run and call.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("{what}{:x}{}", nanos & 0xffff_ffff, N.fetch_add(1, Ordering::Relaxed))
}

/// A user of its own on `platform` (`legacy` or `new`); its endpoint.
fn user(platform: &str, name: &str) -> Endpoint {
    let lab = read_json("lab.json");
    let address = format!("synctest.{}@bma.test", unique(name));
    let password = format!("secret-{name}");
    let exe = s(&lab["xtask"]);
    static ADDUSER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = ADDUSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = Command::new(exe)
        .args(["lab", "adduser", platform, &address, &password])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    drop(guard);
    assert!(out.status.success(), "adduser: {}", String::from_utf8_lossy(&out.stderr));
    Endpoint { config: config(platform), auth: Auth::Login { user: address, password: Secret::new(password) } }
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Test <test@bma.test>\r\nTo: user@bma.test\r\nSubject: {subject}\r\n\
         Date: Sun, 19 Apr 1998 15:33:20 +0000\r\n\r\nBody of {subject}.\r\n"
    )
    .into_bytes()
}

async fn append(c: &mut Client, folder: &str, body: &[u8], flags: &[Flag]) {
    let date = InternalDate::parse("02-Mar-2020 08:00:00 +0100");
    c.append(&MailboxName::new(folder), AppendMessage { body, flags, internal_date: date }).await.expect("append");
}

fn options() -> Options {
    Options { max_connections: 4, ..Options::default() }
}

#[tokio::test]
async fn hard_cases_are_copied_message_by_message_and_an_unchanged_rerun_copies_nothing() {
    let source = Endpoint { config: config("legacy"), auth: lab_master_for(&hard_cases()) };
    let target = user("new", "hard");
    let (_dir, store) = state().await;
    let t = Instant::now();
    let first = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("run");
    eprintln!("hard cases: {} messages, {} bytes in {:?}", first.copied, first.copied_bytes, t.elapsed());
    assert_eq!(first.outcome, Outcome::Complete, "{first:#?}");
    assert!(first.copied >= 20, "{first:#?}");
    for f in &first.folders {
        assert_eq!((f.target_messages, f.target_bytes), (f.source_messages, f.source_bytes), "{f:#?}");
    }
    assert_same(&source, &target, &first).await;
    // A folder named "Éléments envoyés" lands in the target's Sent.
    assert!(first.folders.iter().any(|f| f.source == "Éléments envoyés" && f.target == "Sent"), "{first:#?}");

    let t = Instant::now();
    let again = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("rerun");
    eprintln!("unchanged rerun in {:?}", t.elapsed());
    assert_eq!(again.outcome, Outcome::Complete);
    assert_eq!(again.copied, 0, "{again:#?}");
    assert!(again.folders.iter().all(|f| f.unchanged || f.source_messages == 0 || f.planned == 0));
}

#[tokio::test]
async fn two_sent_folders_are_kept_apart_never_merged() {
    let source = user("legacy", "twosent");
    let target = user("new", "twosent");
    let mut src = client(&source).await;
    for folder in ["Sent", "Éléments envoyés"] {
        src.create(&MailboxName::new(folder)).await.expect("create");
        // the same message in both, byte for byte, and one of each's own
        append(&mut src, folder, &message("sent twice"), &[Flag::Seen]).await;
        append(&mut src, folder, &message(&format!("only in {folder}")), &[Flag::Seen]).await;
    }
    let (_dir, store) = state().await;
    let first = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("run");
    assert_eq!(first.outcome, Outcome::Complete, "{first:#?}");
    assert_eq!(first.copied, 4, "{first:#?}");
    let kept = first.folders.iter().find(|f| f.note.as_deref().is_some_and(|n| n.starts_with("kept apart")));
    assert!(kept.is_some(), "one of the two is kept apart, with a note: {first:#?}");
    assert_same(&source, &target, &first).await;
    // new mail in one of them, then a run with a lost state: nothing lost, nothing doubled
    append(&mut src, "Sent", &message("sent later"), &[]).await;
    let second = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("rerun");
    assert_eq!((second.outcome, second.copied), (Outcome::Complete, 1), "{second:#?}");
    let (_dir2, fresh) = state().await;
    let again = bma_sync::run(&source, &target, fresh, &options()).await.expect("fresh state");
    assert_eq!((again.outcome, again.copied), (Outcome::Complete, 0), "{again:#?}");
    assert_eq!(again.folders.iter().map(|f| f.duplicates_removed).sum::<u64>(), 0, "{again:#?}");
    assert_same(&source, &target, &again).await;
}

#[tokio::test]
async fn messages_removed_from_the_target_are_copied_again() {
    let source = user("legacy", "lostsrc");
    let target = user("new", "lostdst");
    let mut src = client(&source).await;
    for i in 0..3 {
        append(&mut src, "INBOX", &message(&format!("kept {i}")), &[Flag::Seen]).await;
    }
    let (_dir, store) = state().await;
    let first = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("run");
    assert_eq!((first.outcome, first.copied), (Outcome::Complete, 3), "{first:#?}");
    // Someone removes one message on the target: the folder is not
    // "unchanged" any more, the message is copied again.
    let mut tgt = client(&target).await;
    tgt.select(&MailboxName::new("INBOX")).await.expect("select");
    tgt.uid_store(&UidSet::range(2, 2), StoreMode::Add, &[Flag::Deleted]).await.expect("store");
    tgt.uid_expunge(&UidSet::range(2, 2)).await.expect("expunge");
    let second = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("rerun");
    let inbox = second.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert_eq!((second.outcome, inbox.lost_on_target, inbox.copied), (Outcome::Complete, 1, 1), "{second:#?}");
    assert_eq!((inbox.source_messages, inbox.target_messages), (3, 3));
    assert_same(&source, &target, &second).await;
}

#[tokio::test]
async fn a_name_the_target_refuses_is_cleaned_and_reported() {
    let source = user("legacy", "namesrc");
    let target = user("new", "namedst");
    let mut src = client(&source).await;
    src.create(&MailboxName::new("Projets")).await.expect("create");
    append(&mut src, "Projets", &message("version 1.2"), &[]).await;
    // The lab's Maildir++ store refuses '.' in a name: "Projets v1.2" cannot be created there.
    let mut opts = options();
    opts.mapping.folder_map = vec![("Projets".into(), "Projets v1.2".into())];
    let (_dir, store) = state().await;
    for run in 0..2 {
        let s = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("run");
        assert_eq!(s.outcome, Outcome::Complete, "{s:#?}");
        let f = s.folders.iter().find(|f| f.source == "Projets").expect("Projets");
        assert_eq!((f.target.as_str(), f.copied), ("Projets v1_2", u64::from(run == 0)), "{f:#?}");
        assert!(f.note.as_deref().is_some_and(|n| n.contains("refused the name Projets v1.2")), "{f:#?}");
        assert_same(&source, &target, &s).await;
    }
}

#[tokio::test]
async fn with_delete_a_folder_gone_from_the_source_is_emptied_on_the_target() {
    let source = user("legacy", "gonesrc");
    let target = user("new", "gonedst");
    let mut src = client(&source).await;
    for (folder, n) in [("Projets", 3), ("Garder", 1), ("Ignoré", 1)] {
        src.create(&MailboxName::new(folder)).await.expect("create");
        for i in 0..n {
            append(&mut src, folder, &message(&format!("{folder} {i}")), &[]).await;
        }
    }
    let (_dir, store) = state().await;
    let opts = Options { delete: true, ..options() };
    let first = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("run");
    assert_eq!((first.outcome, first.copied), (Outcome::Complete, 5), "{first:#?}");
    // "Projets" deleted on the source; "Ignoré" left out of this run on purpose.
    src.delete(&MailboxName::new("Projets")).await.expect("delete");
    let mut opts2 = opts.clone();
    opts2.mapping.exclude = vec!["Ignoré".into()];
    let second = bma_sync::run(&source, &target, store.clone(), &opts2).await.expect("rerun");
    assert_eq!(second.outcome, Outcome::Complete, "{second:#?}");
    let gone = second.folders.iter().find(|f| f.source == "Projets").expect("a report for the gone folder");
    assert_eq!((gone.deleted, gone.target_messages), (3, 0), "{gone:#?}");
    assert!(gone.note.as_deref().is_some_and(|n| n.starts_with("gone from the source")), "{gone:#?}");
    let mut tgt = client(&target).await;
    for (folder, n) in [("Projets", 0), ("Garder", 1), ("Ignoré", 1)] {
        assert_eq!(fingerprints(&mut tgt, folder).await.len(), n, "{folder}");
    }
    let third = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("third");
    assert!(third.folders.iter().all(|f| f.source != "Projets" && f.deleted == 0), "{third:#?}");
}

#[tokio::test]
async fn incremental_run_carries_new_messages_flags_and_deletions() {
    let source = user("legacy", "incsrc");
    let target = user("new", "incdst");
    let mut src = client(&source).await;
    src.create(&MailboxName::new("Projets")).await.expect("create");
    for i in 0..3 {
        append(&mut src, "Projets", &message(&format!("m{i}")), &[Flag::Seen]).await;
    }
    // Two byte-identical messages in INBOX, no Message-ID.
    append(&mut src, "INBOX", &message("twin"), &[]).await;
    append(&mut src, "INBOX", &message("twin"), &[]).await;
    let (_dir, store) = state().await;
    let opts = Options { delete: true, ..options() };
    let first = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("run");
    assert_eq!(first.outcome, Outcome::Complete, "{first:#?}");
    assert_eq!(first.copied, 5);

    append(&mut src, "Projets", &message("new one"), &[Flag::Keyword("$Important".into())]).await;
    src.select(&MailboxName::new("Projets")).await.expect("select");
    src.uid_store(&UidSet::range(1, 1), StoreMode::Add, &[Flag::Flagged, Flag::Deleted]).await.expect("store");
    src.uid_store(&UidSet::range(2, 2), StoreMode::Add, &[Flag::Deleted]).await.expect("store");
    src.uid_expunge(&UidSet::range(2, 2)).await.expect("expunge");
    let second = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("rerun");
    assert_eq!(second.outcome, Outcome::Complete, "{second:#?}");
    assert_eq!(second.copied, 1, "{second:#?}");
    let projets = second.folders.iter().find(|f| f.source == "Projets").expect("Projets");
    assert_eq!((projets.flags_updated, projets.deleted), (1, 1), "{projets:#?}");
    // The lab's Dovecot has QRESYNC: the expunge was read from VANISHED,
    // not found by listing every UID.
    assert!(projets.qresync && projets.changedsince, "{projets:#?}");
    assert_same(&source, &target, &second).await;
    let third = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("third");
    assert_eq!(third.copied + third.folders.iter().map(|f| f.flags_updated).sum::<u64>(), 0, "{third:#?}");
}

/// Signals when `n` messages have been appended.
struct Stop(AtomicU64, u64, tokio::sync::Notify);

impl Progress for Stop {
    fn add_total(&self, _messages: u64, _bytes: u64) {}
    fn advance(&self, messages: u64, _bytes: u64) {
        if self.0.fetch_add(messages, Ordering::SeqCst) + messages >= self.1 {
            self.2.notify_one();
        }
    }
}

/// Records what a progress bar is told.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(bool, u64, u64)>>);

impl Progress for Recorder {
    fn add_total(&self, messages: u64, bytes: u64) {
        self.0.lock().expect("lock").push((true, messages, bytes));
    }
    fn advance(&self, messages: u64, bytes: u64) {
        self.0.lock().expect("lock").push((false, messages, bytes));
    }
}

#[tokio::test]
async fn a_progress_bar_knows_the_whole_first_copy_before_it_starts() {
    let source = user("legacy", "barsrc");
    let target = user("new", "bardst");
    let mut src = client(&source).await;
    src.create(&MailboxName::new("Archives")).await.expect("create");
    fill(&mut src, "INBOX", 7, "bar").await;
    fill(&mut src, "Archives", 5, "bar old").await;
    let (_dir, store) = state().await;
    let rec = Arc::new(Recorder::default());
    let opts = Options { progress: Some(rec.clone()), ..options() };
    let run = bma_sync::run(&source, &target, store, &opts).await.expect("run");
    assert_eq!((run.outcome, run.copied), (Outcome::Complete, 12), "{run:#?}");
    let events = rec.0.lock().expect("lock").clone();
    let totals: Vec<&(bool, u64, u64)> = events.iter().filter(|e| e.0).collect();
    assert_eq!(totals.len(), 1, "one total, before the copy: {events:?}");
    assert!(events[0].0, "{events:?}");
    let advanced: (u64, u64) = events.iter().filter(|e| !e.0).fold((0, 0), |a, e| (a.0 + e.1, a.1 + e.2));
    assert_eq!((totals[0].1, totals[0].2), advanced, "{events:?}");
}

#[tokio::test]
async fn a_run_killed_mid_copy_then_rerun_loses_nothing_and_duplicates_nothing() {
    let source = user("legacy", "crashsrc");
    let target = user("new", "crashdst");
    let mut src = client(&source).await;
    for i in 0..60 {
        // Every tenth message twice, byte for byte.
        let body = message(&format!("crash {}", i - i % 10 * usize::from(i % 10 == 1)));
        append(&mut src, "INBOX", &body, if i % 3 == 0 { &[Flag::Seen] } else { &[] }).await;
    }
    let (_dir, store) = state().await;
    let stop = Arc::new(Stop(AtomicU64::new(0), 25, tokio::sync::Notify::new()));
    // Nothing is recorded before the abort: every appended message must be
    // reconciled. MULTIAPPEND batches of 10, so that the abort lands between
    // batches, or in the middle of one being written (which the server drops whole).
    let opts = Options { commit_every: 10_000, batch_messages: 10, progress: Some(stop.clone()), ..options() };
    let task = {
        let (source, target, store, opts) = (source.clone(), target.clone(), store.clone(), opts.clone());
        tokio::spawn(async move { bma_sync::run(&source, &target, store, &opts).await })
    };
    stop.2.notified().await;
    task.abort();
    let _ = task.await;
    let mut tgt = client(&target).await;
    let partial = tgt.status(&MailboxName::new("INBOX")).await.expect("status").messages.unwrap_or(0);
    assert!((25..60).contains(&partial), "{partial} messages on the target after the abort");

    let rerun = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("rerun");
    assert_eq!(rerun.outcome, Outcome::Complete, "{rerun:#?}");
    let inbox = rerun.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert_eq!(inbox.reconciled + inbox.copied, 60, "{inbox:#?}");
    assert!(inbox.reconciled >= 25, "{inbox:#?}");
    assert_eq!(inbox.target_messages, 60);
    assert_same(&source, &target, &rerun).await;

    // A lost state (as after a UIDVALIDITY change): every message is found again, none appended.
    let (_dir2, fresh) = state().await;
    let rescan = bma_sync::run(&source, &target, fresh, &options()).await.expect("rescan");
    assert_eq!(rescan.outcome, Outcome::Complete, "{rescan:#?}");
    assert_eq!(rescan.copied, 0, "{rescan:#?}");
    assert_eq!(rescan.folders.iter().map(|f| f.reconciled).sum::<u64>(), 60);
}

#[tokio::test]
async fn a_wrong_source_password_names_the_source() {
    let mut source = user("legacy", "badpw");
    source.auth = Auth::Login { user: source.user().to_owned(), password: Secret::new("wrong") };
    let target = user("new", "badpwdst");
    let (_dir, store) = state().await;
    let err = bma_sync::run(&source, &target, store, &options()).await.expect_err("must fail");
    assert_eq!(err.side(), Some(Side::Source), "{err}");
    assert!(err.to_string().starts_with("source: "), "{err}");
}

fn password_of(e: &Endpoint) -> &str {
    match &e.auth {
        Auth::Login { password, .. } => password.expose(),
        _ => unreachable!("test users log in with LOGIN"),
    }
}

/// `bma sync` as a child process, from `source` to `target`, state in `dir`.
/// `bma sync --json` from `source`, logging in with `source_password`, to `target`.
fn cli(source: &Endpoint, target: &Endpoint, dir: &std::path::Path, source_password: &str) -> Command {
    let auth = Auth::Login { user: source.user().to_owned(), password: bma_imap::Secret::new(source_password) };
    let source = Endpoint { config: source.config.clone(), auth };
    let mut c = sync_command(&source, target, dir);
    c.arg("--json");
    c
}

#[tokio::test]
async fn cli_killed_with_sigkill_then_rerun_and_a_wrong_password_names_the_side() {
    let source = user("legacy", "clisrc");
    let target = user("new", "clidst");
    let mut src = client(&source).await;
    {
        let inbox = MailboxName::new("INBOX");
        let bodies: Vec<Vec<u8>> = (0..150).map(|i| message(&format!("cli {}", i % 140))).collect();
        let mut p = src.append_pipeline(&inbox);
        for (i, b) in bodies.iter().enumerate() {
            let flags: &[Flag] = if i % 2 == 0 { &[Flag::Seen] } else { &[Flag::Deleted] };
            p.push(i as u64, AppendMessage { body: b, flags, internal_date: None }).await.expect("append");
        }
        p.finish().await.expect("appends");
    }
    let dir = tempfile::tempdir().expect("tempdir");

    let wrong = cli(&source, &target, dir.path(), "wrong").output().expect("run bma");
    assert_eq!(wrong.status.code(), Some(4), "{wrong:?}");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("source: authentication"), "{wrong:?}");

    // Slowed down (≈ 150 bytes a message, 4 s in all) so that the kill
    // lands mid-copy however fast the machine is.
    let mut child = cli(&source, &target, dir.path(), password_of(&source))
        .args(["--max-bytes-per-second", "5000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn bma");
    let mut tgt = client(&target).await;
    wait_for_messages(&mut tgt, "INBOX", 20, std::time::Duration::from_secs(20)).await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    let killed_at = tgt.status(&MailboxName::new("INBOX")).await.expect("status").messages.unwrap_or(0);
    assert!(killed_at < 150, "the copy ended before the kill ({killed_at})");

    let rerun = cli(&source, &target, dir.path(), password_of(&source)).output().expect("rerun");
    assert_eq!(rerun.status.code(), Some(0), "{}", String::from_utf8_lossy(&rerun.stderr));
    let summary: Value = serde_json::from_slice(&rerun.stdout).expect("JSON summary");
    assert_eq!(summary["outcome"], "complete");
    let inbox = &summary["folders"][0];
    eprintln!(
        "killed at {killed_at}: rerun copied {}, reconciled {}, removed {} late duplicates",
        inbox["copied"], inbox["reconciled"], inbox["duplicates_removed"]
    );
    let want = fingerprints(&mut src, "INBOX").await;
    assert_eq!(want.len(), 150);
    assert_eq!(fingerprints(&mut tgt, "INBOX").await, want, "killed at {killed_at}");
}

/// A user of its own on `platform` with per-user Dovecot settings (`KEY=VALUE`).
fn user_with(platform: &str, name: &str, settings: &[&str]) -> Endpoint {
    let lab = read_json("lab.json");
    let address = format!("synctest.{}@bma.test", unique(name));
    let password = format!("secret-{name}");
    let exe = s(&lab["xtask"]);
    let mut cmd = Command::new(exe);
    cmd.args(["lab", "adduser", platform, &address, &password]);
    for kv in settings {
        cmd.args(["--userdb", kv]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    assert!(out.status.success(), "adduser: {}", String::from_utf8_lossy(&out.stderr));
    Endpoint { config: config(platform), auth: Auth::Login { user: address, password: Secret::new(password) } }
}

/// Appends `n` messages to `folder` in one MULTIAPPEND (fast set-up).
async fn fill(c: &mut Client, folder: &str, n: usize, tag: &str) {
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| message(&format!("{tag} {i}"))).collect();
    let date = InternalDate::parse("02-Mar-2020 08:00:00 +0100");
    let name = MailboxName::new(folder);
    if c.capabilities().multiappend() && c.capabilities().literal_plus() {
        let mut p = c.multiappend_pipeline(&name).expect("MULTIAPPEND");
        for (i, b) in bodies.iter().enumerate() {
            let flags: &[Flag] = if i % 3 == 0 { &[Flag::Seen] } else { &[] };
            p.push(i as u64, AppendMessage { body: b, flags, internal_date: date }).await.expect("append");
        }
        for d in p.finish().await.expect("appends") {
            d.result.expect("batch appended");
        }
    } else {
        for (i, b) in bodies.iter().enumerate() {
            append(c, folder, b, if i % 3 == 0 { &[Flag::Seen] } else { &[] }).await;
        }
    }
}

#[tokio::test]
async fn a_large_first_copy_is_shared_by_idle_connections_and_keeps_the_source_order() {
    let source = user("legacy", "splitsrc");
    let target = user("new", "splitdst");
    let mut src = client(&source).await;
    src.create(&MailboxName::new("Small")).await.expect("create");
    fill(&mut src, "INBOX", 240, "in order").await;
    fill(&mut src, "Small", 5, "small").await;
    let (_dir, store) = state().await;
    // Batches of 10 over 3 connections: 24 batches of INBOX, two folders,
    // so that at least one connection has nothing of its own to copy.
    let opts = Options { max_connections: 3, batch_messages: 10, ..options() };
    let first = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("run");
    assert_eq!(first.outcome, Outcome::Complete, "{first:#?}");
    let inbox = first.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert_eq!((inbox.copied, inbox.target_messages, inbox.verified_size), (240, 240, 240), "{inbox:#?}");
    assert!(inbox.helpers >= 1, "no other connection helped: {inbox:#?}");
    assert_same(&source, &target, &first).await;
    // The target's UIDs follow the source's order, message by message.
    let mut tgt = client(&target).await;
    let want: Vec<_> = fingerprints_by_uid(&mut src, "INBOX").await.into_values().collect();
    let got: Vec<_> = fingerprints_by_uid(&mut tgt, "INBOX").await.into_values().collect();
    assert_eq!(got, want, "the target's order differs from the source's");
    // Every mapping was recorded: nothing to copy again.
    let again = bma_sync::run(&source, &target, store, &opts).await.expect("rerun");
    assert_eq!((again.outcome, again.copied), (Outcome::Complete, 0), "{again:#?}");
}

#[tokio::test]
async fn a_source_with_only_imap4rev1_is_copied_then_updated_from_full_flag_reads() {
    let source = user_with("legacy", "plainsrc", &["imap_capability=IMAP4rev1"]);
    let target = user("new", "plaindst");
    let mut src = client(&source).await;
    let caps = src.capabilities().clone();
    assert!(!caps.condstore() && !caps.qresync() && !caps.uidplus() && !caps.multiappend(), "{caps:?}");
    src.create(&MailboxName::new("Archives")).await.expect("create");
    fill(&mut src, "INBOX", 12, "plain").await;
    fill(&mut src, "Archives", 5, "old").await;
    let (_dir, store) = state().await;
    let first = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("run");
    assert_eq!(first.outcome, Outcome::Complete, "{first:#?}");
    assert_eq!(first.copied, 17);
    assert_same(&source, &target, &first).await;

    // A flag change, an expunge and a new message: read from every
    // message's flags and UIDs (no CHANGEDSINCE, no VANISHED), with --delete.
    src.select(&MailboxName::new("Archives")).await.expect("select");
    src.uid_store(&UidSet::range(2, 2), StoreMode::Add, &[Flag::Answered]).await.expect("store");
    src.uid_store(&UidSet::range(5, 5), StoreMode::Add, &[Flag::Deleted]).await.expect("store");
    src.expunge().await.expect("expunge");
    append(&mut src, "INBOX", &message("late"), &[Flag::Flagged]).await;
    let with_delete = Options { delete: true, ..options() };
    let second = bma_sync::run(&source, &target, store.clone(), &with_delete).await.expect("rerun");
    assert_eq!(second.outcome, Outcome::Complete, "{second:#?}");
    assert_eq!(second.copied, 1, "{second:#?}");
    assert_eq!(second.folders.iter().map(|f| f.flags_updated).sum::<u64>(), 1, "{second:#?}");
    assert_eq!(second.folders.iter().map(|f| f.deleted).sum::<u64>(), 1, "{second:#?}");
    assert!(second.folders.iter().all(|f| !f.changedsince && !f.qresync), "{second:#?}");
    assert_same(&source, &target, &second).await;
}

#[tokio::test]
async fn a_condstore_source_is_updated_with_changedsince() {
    let source = user("legacy", "modsrc");
    let target = user("new", "moddst");
    let mut src = client(&source).await;
    fill(&mut src, "INBOX", 8, "mod").await;
    let (_dir, store) = state().await;
    let first = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("run");
    assert_eq!((first.outcome, first.copied), (Outcome::Complete, 8), "{first:#?}");
    src.select(&MailboxName::new("INBOX")).await.expect("select");
    src.uid_store(&UidSet::range(3, 4), StoreMode::Add, &[Flag::Keyword("$Label1".into())]).await.expect("store");
    append(&mut src, "INBOX", &message("new"), &[]).await;
    let second = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("rerun");
    let inbox = second.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert!(inbox.changedsince, "{inbox:#?}");
    assert_eq!((inbox.copied, inbox.flags_updated, inbox.mapped), (1, 2, 9), "{inbox:#?}");
    assert_eq!(second.outcome, Outcome::Complete, "{second:#?}");
    assert_same(&source, &target, &second).await;
}

#[tokio::test]
async fn dot_separator_and_inbox_prefix_on_either_side() {
    let dotted = ["namespace/inbox/separator=.", "namespace/inbox/prefix=INBOX."];
    // Source "INBOX." with ".", target "" with "/".
    let source = user_with("legacy", "dotsrc", &dotted);
    let target = user("new", "slashdst");
    let mut src = client(&source).await;
    for f in ["INBOX.Projets", "INBOX.Projets.2024", "INBOX.Sent Items"] {
        src.create(&MailboxName::new(f)).await.unwrap_or_else(|e| panic!("create {f}: {e}"));
    }
    fill(&mut src, "INBOX", 3, "inbox").await;
    fill(&mut src, "INBOX.Projets.2024", 4, "p2024").await;
    fill(&mut src, "INBOX.Sent Items", 2, "sent").await;
    let (_dir, store) = state().await;
    let run = bma_sync::run(&source, &target, store, &options()).await.expect("run");
    assert_eq!(run.outcome, Outcome::Complete, "{run:#?}");
    let map: BTreeMap<&str, &str> = run.folders.iter().map(|f| (f.source.as_str(), f.target.as_str())).collect();
    assert_eq!(map.get("INBOX.Projets.2024"), Some(&"Projets/2024"), "{map:?}");
    assert_eq!(map.get("INBOX.Sent Items"), Some(&"Sent"), "{map:?}");
    assert_eq!(map.get("INBOX"), Some(&"INBOX"), "{map:?}");
    assert_same(&source, &target, &run).await;

    // Source "" with "/", target "INBOX." with "." (a "." inside a source
    // name, which becomes "_", cannot be made here: Maildir++ refuses it;
    // the mapping's unit tests cover it).
    let source = user("legacy", "slashsrc");
    let target = user_with("new", "dotdst", &dotted);
    let mut src = client(&source).await;
    for f in ["Archives", "Archives/2023", "Réunions & Conseils"] {
        src.create(&MailboxName::new(f)).await.unwrap_or_else(|e| panic!("create {f}: {e}"));
    }
    fill(&mut src, "Archives/2023", 3, "a2023").await;
    fill(&mut src, "Réunions & Conseils", 2, "reunions").await;
    let (_dir2, store) = state().await;
    let run = bma_sync::run(&source, &target, store, &options()).await.expect("run");
    assert_eq!(run.outcome, Outcome::Complete, "{run:#?}");
    let map: BTreeMap<&str, &str> = run.folders.iter().map(|f| (f.source.as_str(), f.target.as_str())).collect();
    assert_eq!(map.get("Archives/2023"), Some(&"INBOX.Archives.2023"), "{map:?}");
    assert_eq!(map.get("Réunions & Conseils"), Some(&"INBOX.Réunions & Conseils"), "{map:?}");
    assert_same(&source, &target, &run).await;
}

#[tokio::test]
async fn a_message_the_target_refuses_is_reported_and_the_run_goes_on_with_exit_3() {
    let source = user("legacy", "refsrc");
    let target = user_with("new", "refdst", &["quota_max_mail_size=10k"]);
    let mut src = client(&source).await;
    fill(&mut src, "INBOX", 6, "small").await;
    let big = message(&format!("big {}", "x".repeat(20_000)));
    append(&mut src, "INBOX", &big, &[Flag::Seen]).await;
    fill(&mut src, "INBOX", 3, "after").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&source, &target, dir.path(), password_of(&source)).output().expect("run bma");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(summary["outcome"], "partial");
    let inbox = summary["folders"].as_array().expect("folders").iter().find(|f| f["source"] == "INBOX").expect("INBOX");
    let skipped = inbox["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{inbox:#}");
    assert_eq!(skipped[0]["uid"], 7, "{inbox:#}");
    assert!(s(&skipped[0]["reason"]).contains("too big"), "{inbox:#}");
    assert_eq!(inbox["copied"], 9, "{inbox:#}");
    assert_eq!(inbox["batches_retried"], 1, "{inbox:#}");
    // Every other message is there, unaltered.
    let mut tgt = client(&target).await;
    let mut want = fingerprints(&mut src, "INBOX").await;
    let big_hash: String = Sha256::digest(&big).iter().map(|b| format!("{b:02x}")).collect();
    want.retain(|(h, _, _)| *h != big_hash);
    assert_eq!(fingerprints(&mut tgt, "INBOX").await, want);
    // A rerun tries the refused message again, and only it.
    let again = cli(&source, &target, dir.path(), password_of(&source)).output().expect("rerun bma");
    assert_eq!(again.status.code(), Some(3));
    let summary: Value = serde_json::from_slice(&again.stdout).expect("JSON summary");
    assert_eq!(summary["copied"], 0);
    assert_eq!(summary["skipped"], 1);
}

#[tokio::test]
async fn a_real_uidvalidity_change_is_rescanned_without_duplicates() {
    let source = user("legacy", "uvsrc");
    let target = user("new", "uvdst");
    let mut src = client(&source).await;
    let projets = MailboxName::new("Projets");
    src.create(&projets).await.expect("create");
    fill(&mut src, "Projets", 10, "uv").await;
    let before = src.status(&projets).await.expect("status").uid_validity;
    let (_dir, store) = state().await;
    let first = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("run");
    assert_eq!((first.outcome, first.copied), (Outcome::Complete, 10), "{first:#?}");

    // The folder is deleted and recreated with the same messages and one more: new UIDVALIDITY.
    src.delete(&projets).await.expect("delete");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    src.create(&projets).await.expect("recreate");
    fill(&mut src, "Projets", 10, "uv").await;
    append(&mut src, "Projets", &message("uv new"), &[]).await;
    let after = src.status(&projets).await.expect("status").uid_validity;
    assert_ne!(before, after, "UIDVALIDITY did not change");

    let second = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("rerun");
    assert_eq!(second.outcome, Outcome::Complete, "{second:#?}");
    let f = second.folders.iter().find(|f| f.source == "Projets").expect("Projets");
    assert_eq!((f.reconciled, f.copied, f.target_messages), (10, 1, 11), "{f:#?}");
    assert_same(&source, &target, &second).await;
}

/// `doveadm kick` of a user on a lab platform: the server closes every session of it.
fn kick(platform: &str, user: &str) {
    let lab = read_json("lab.json");
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(s(&lab[platform]["config"]))
        .args(["kick", user])
        .output()
        .expect("doveadm kick");
    assert!(out.status.success(), "kick: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn connections_dropped_by_the_server_mid_copy_are_reopened_and_the_copy_resumes() {
    let source = user("legacy", "dropsrc");
    let target = user("new", "dropdst");
    let mut src = client(&source).await;
    src.create(&MailboxName::new("Archives")).await.expect("create");
    fill(&mut src, "INBOX", 200, "drop").await;
    fill(&mut src, "Archives", 100, "drop archive").await;
    let (_dir, store) = state().await;
    let stop = Arc::new(Stop(AtomicU64::new(0), 60, tokio::sync::Notify::new()));
    // Slow enough (≈40 KB/s over ≈60 KB) for the kicks to land mid-copy.
    let opts = Options {
        batch_messages: 10,
        rate: Some(Arc::new(bma_sync::RateLimiter::new(40_000))),
        progress: Some(stop.clone()),
        ..options()
    };
    let task = {
        let (source, target, store, opts) = (source.clone(), target.clone(), store.clone(), opts.clone());
        tokio::spawn(async move { bma_sync::run(&source, &target, store, &opts).await })
    };
    stop.2.notified().await;
    kick("new", target.user());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    kick("legacy", source.user());
    let run = task.await.expect("task").expect("run");
    assert_eq!(run.outcome, Outcome::Complete, "{run:#?}");
    assert!(run.folders.iter().map(|f| f.reconnects).sum::<u64>() >= 1, "{run:#?}");
    assert_eq!(run.folders.iter().map(|f| f.target_messages).sum::<u64>(), 300, "{run:#?}");
    assert_same(&source, &target, &run).await;
}

bma_tests::on_both_backends!(the_sync_state_survives_a_killed_run);

async fn the_sync_state_survives_a_killed_run(backend: bma_tests::TestBackend) {
    let db = bma_tests::TestDb::new(backend).await;
    let source = user("legacy", "statesrc");
    let target = user("new", "statedst");
    let mut src = client(&source).await;
    fill(&mut src, "INBOX", 80, "state").await;
    let store = db.store().await;
    let stop = Arc::new(Stop(AtomicU64::new(0), 30, tokio::sync::Notify::new()));
    let opts = Options { commit_every: 10, batch_messages: 10, progress: Some(stop.clone()), ..options() };
    let task = {
        let (source, target, store, opts) = (source.clone(), target.clone(), store.clone(), opts.clone());
        tokio::spawn(async move { bma_sync::run(&source, &target, store, &opts).await })
    };
    stop.2.notified().await;
    task.abort();
    let _ = task.await;
    let rerun = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("rerun");
    assert_eq!(rerun.outcome, Outcome::Complete, "{rerun:#?}");
    let inbox = rerun.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    // Batches recorded before the abort are not looked at again.
    assert!(inbox.copied + inbox.reconciled < 80, "{inbox:#?}");
    assert_eq!(inbox.target_messages, 80, "{inbox:#?}");
    assert_same(&source, &target, &rerun).await;
    let again = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("again");
    assert!(again.folders.iter().all(|f| f.unchanged), "{again:#?}");
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn cli_batch_copies_each_row_under_one_byte_rate_and_reports_per_mailbox() {
    // Two sources and two targets sharing a password, so that one pair of password files serves every row.
    let lab = read_json("lab.json");
    let exe = s(&lab["xtask"]);
    let password = "secret-batch";
    let mut rows = Vec::new();
    for i in 0..2 {
        let (src, dst) =
            (format!("synctest.{}@bma.test", unique("bsrc")), format!("synctest.{}@bma.test", unique("bdst")));
        for (platform, a) in [("legacy", &src), ("new", &dst)] {
            let out = Command::new(exe).args(["lab", "adduser", platform, a, password]).output().expect("adduser");
            assert!(out.status.success(), "adduser: {}", String::from_utf8_lossy(&out.stderr));
        }
        let source = Endpoint {
            config: config("legacy"),
            auth: Auth::Login { user: src.clone(), password: Secret::new(password) },
        };
        let mut c = client(&source).await;
        // ≈60 KB per mailbox.
        for j in 0..6 {
            append(&mut c, "INBOX", &message(&format!("batch {i} {j} {}", "z".repeat(10_000))), &[]).await;
        }
        rows.push((src, dst));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let csv: String = std::iter::once("source_user,target_user\n".to_owned())
        .chain(rows.iter().map(|(s, t)| format!("{s},{t}\n")))
        .collect();
    std::fs::write(dir.path().join("rows.csv"), csv).expect("csv");
    std::fs::write(dir.path().join("pw"), password).expect("pw");
    let url = |p: &str| format!("imap://{}:{}", s(&lab[p]["host"]), lab[p]["imap_port"]);
    let run = || {
        let mut c = Command::new(bma_tests::bma_bin());
        c.args(["sync", "--tls", "none", "--json", "--source", &url("legacy"), "--target", &url("new")])
            .arg("--source-password-file")
            .arg(dir.path().join("pw"))
            .arg("--target-password-file")
            .arg(dir.path().join("pw"))
            .arg("--batch")
            .arg(dir.path().join("rows.csv"))
            .args(["--parallel", "2", "--max-connections", "2", "--max-bytes-per-second", "40000"])
            .arg("--state")
            .arg(dir.path().join("state.db"));
        c.output().expect("run bma")
    };
    let t = Instant::now();
    let out = run();
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let items: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let items = items.as_array().expect("one item per row");
    assert_eq!(items.len(), 2);
    let mut bytes = 0;
    for (item, (src, dst)) in items.iter().zip(&rows) {
        assert_eq!((s(&item["source_user"]), s(&item["target_user"])), (src.as_str(), dst.as_str()));
        assert_eq!(item["outcome"], "complete", "{item:#}");
        assert_eq!(item["summary"]["copied"], 6, "{item:#}");
        bytes += item["summary"]["copied_bytes"].as_u64().expect("bytes");
    }
    // ≈120 KB at 40 KB/s in all: about 3 s, whatever the parallelism.
    let floor = std::time::Duration::from_secs_f64(bytes as f64 / 40_000.0 * 0.8);
    assert!(took >= floor, "{bytes} bytes in {took:?}: the rate cap was not applied");
    // An unchanged rerun copies nothing.
    let again = run();
    assert_eq!(again.status.code(), Some(0));
    let items: Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert!(items.as_array().expect("items").iter().all(|i| i["summary"]["copied"] == 0), "{items:#}");
}

/// Copies `folders` (name, messages) through a relay in front of the
/// `restarted` side's server, which goes down for `down` once `stop_at`
/// messages are copied; returns the run and the two direct endpoints.
async fn copy_through_a_restart(
    restarted: Side,
    name: &str,
    folders: &[(&str, usize)],
    stop_at: u64,
    down: std::time::Duration,
) -> (Summary, Endpoint, Endpoint) {
    let (source, target) = (user("legacy", &format!("{name}src")), user("new", &format!("{name}dst")));
    let mut src = client(&source).await;
    for &(folder, n) in folders {
        if folder != "INBOX" {
            src.create(&MailboxName::new(folder)).await.expect("create");
        }
        fill(&mut src, folder, n, &format!("restart {folder}")).await;
    }
    let (mut via_source, mut via_target) = (source.clone(), target.clone());
    let behind = if restarted == Side::Source { &mut via_source } else { &mut via_target };
    let r = relay((behind.config.host.clone(), behind.config.port)).await;
    behind.config.port = r.port;
    let (_dir, store) = state().await;
    let stop = Arc::new(Stop(AtomicU64::new(0), stop_at, tokio::sync::Notify::new()));
    let opts = Options {
        batch_messages: 10,
        rate: Some(Arc::new(bma_sync::RateLimiter::new(30_000))),
        progress: Some(stop.clone()),
        ..options()
    };
    let task = tokio::spawn(async move { bma_sync::run(&via_source, &via_target, store, &opts).await });
    stop.2.notified().await;
    r.restart.send(down).await.expect("restart");
    let run = task.await.expect("task").expect("run");
    (run, source, target)
}

#[tokio::test]
async fn a_target_server_restarted_mid_copy_is_waited_for_and_the_copy_resumes() {
    // Down for 2.5 s: the first reconnection attempts (after 1 s, 2 s) find nothing listening.
    let folders = [("INBOX", 150), ("Archives", 80)];
    let (run, source, target) =
        copy_through_a_restart(Side::Target, "rst", &folders, 50, std::time::Duration::from_millis(2500)).await;
    assert_eq!(run.outcome, Outcome::Complete, "{run:#?}");
    assert!(run.folders.iter().map(|f| f.reconnects).max().unwrap_or(0) >= 2, "{run:#?}");
    assert_eq!(run.folders.iter().map(|f| f.target_messages).sum::<u64>(), 230, "{run:#?}");
    assert_same(&source, &target, &run).await;
}

#[tokio::test]
async fn a_source_server_restarted_mid_copy_is_waited_for_and_the_copy_resumes() {
    let folders = [("INBOX", 120)];
    let (run, source, target) =
        copy_through_a_restart(Side::Source, "srcrst", &folders, 40, std::time::Duration::from_millis(1500)).await;
    assert_eq!(run.outcome, Outcome::Complete, "{run:#?}");
    assert!(run.folders.iter().map(|f| f.reconnects).max().unwrap_or(0) >= 1, "{run:#?}");
    assert_eq!(run.folders.iter().find(|f| f.source == "INBOX").map(|f| f.target_messages), Some(120));
    assert_same(&source, &target, &run).await;
}

#[tokio::test]
async fn a_target_down_when_the_run_starts_is_waited_for() {
    let source = user("legacy", "downsrc");
    let mut target = user("new", "downdst");
    let mut src = client(&source).await;
    fill(&mut src, "INBOX", 20, "down at start").await;
    let r = relay((target.config.host.clone(), target.config.port)).await;
    let direct = target.clone();
    target.config.port = r.port;
    // Down for 1.5 s from now: the first attempts (then 1 s, 2 s later) find nothing listening.
    r.restart.send(std::time::Duration::from_millis(1500)).await.expect("down");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_dir, store) = state().await;
    let run = bma_sync::run(&source, &target, store, &options()).await.expect("run after the target came back");
    assert_eq!((run.outcome, run.copied), (Outcome::Complete, 20), "{run:#?}");
    assert_same(&source, &direct, &run).await;
}

#[tokio::test]
async fn a_target_without_uidplus_is_refused_at_the_start() {
    let source = user("legacy", "nouidsrc");
    let target = user_with("new", "nouiddst", &["imap_capability=IMAP4rev1"]);
    let mut src = client(&source).await;
    append(&mut src, "INBOX", &message("not copied"), &[]).await;
    let (_dir, store) = state().await;
    let e = bma_sync::run(&source, &target, store, &options()).await.expect_err("no UIDPLUS on the target");
    assert_eq!(e.side(), Some(bma_sync::Side::Target));
    assert!(e.to_string().contains("UIDPLUS"), "{e}");
    let mut tgt = client(&target).await;
    assert!(fingerprints(&mut tgt, "INBOX").await.is_empty(), "nothing appended");
}

#[tokio::test]
async fn cli_killed_at_random_points_then_rerun_holds_every_message_once() {
    let source = user("legacy", "rndsrc");
    let target = user("new", "rnddst");
    let mut src = client(&source).await;
    src.create(&MailboxName::new("Archives")).await.expect("create");
    fill(&mut src, "INBOX", 300, "random").await;
    fill(&mut src, "Archives", 150, "random archive").await;
    // Byte-identical twins, which must both arrive, once each.
    fill(&mut src, "Archives", 20, "random archive").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Deterministic "random" delays (printed, so that a failure can be replayed).
    let mut x = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as u64 | 1;
    // Slowed to ≈ 2 s for the whole copy, in batches of 25, so that the
    // kills land mid-copy, between and inside batches.
    let mut tgt = client(&target).await;
    let mut mid_copy = 0;
    for round in 0..5 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = std::time::Duration::from_millis(100 + x % 1000);
        let mut child = cli(&source, &target, dir.path(), password_of(&source))
            .args(["--max-bytes-per-second", "40000", "--batch-messages", "25"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn bma");
        tokio::time::sleep(delay).await;
        child.kill().expect("kill -9");
        let status = child.wait().expect("wait");
        let mut on_target = 0;
        for folder in ["INBOX", "Archives"] {
            on_target += tgt.status(&MailboxName::new(folder)).await.map_or(0, |s| s.messages.unwrap_or(0));
        }
        mid_copy += usize::from(on_target < 470);
        eprintln!("round {round}: killed after {delay:?} ({status}), {on_target} messages on the target");
    }
    assert!(mid_copy > 0, "no kill landed before the copy ended");
    let rerun = cli(&source, &target, dir.path(), password_of(&source)).output().expect("rerun");
    assert_eq!(rerun.status.code(), Some(0), "{}", String::from_utf8_lossy(&rerun.stderr));
    for folder in ["INBOX", "Archives"] {
        let want = fingerprints(&mut src, folder).await;
        assert_eq!(want.len(), if folder == "INBOX" { 300 } else { 170 });
        assert_eq!(fingerprints(&mut tgt, folder).await, want, "{folder}");
    }
}
