//! The copy engine's suite against the lab's foreign servers (Cyrus IMAP
//! 3.6 with `.` and with `/`, Courier-IMAP 5.0), each as a target and as a
//! source: the hard-cases mailbox copied in and every message accounted
//! for (identical, refused with its reason, or reported altered by the
//! target with what changed: no other difference is allowed); an unchanged
//! rerun appends nothing and reports the same; that copy copied out again
//! into Dovecot, byte for byte; `bma sync` killed with SIGKILL mid-copy then
//! rerun (nothing lost, nothing twice) and an incremental run with
//! `--delete` (new messages, a flag change, an expunge), each into the
//! server and out of it; folder names it refuses, special-use folders it
//! lacks, a quota without `[OVERQUOTA]`, a missing account, `--verify full`
//! by Cyrus' digest.
//!
//! Needs `cargo xtask lab up --with cyrus,courier && cargo xtask lab seed`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bma_imap::{AppendMessage, Auth, Client, Flag, InternalDate, MailboxName, StoreMode, UidSet};
use bma_sync::{Change, Endpoint, Options, Outcome, Summary};
use bma_tests::copy::{
    Fingerprint, assert_same, client, fingerprints, fingerprints_by_uid, state, sync_command, wait_for_messages,
};
use bma_tests::foreign::Foreign;
use bma_tests::{lab_file, lab_imap_config, lab_master_for};
use serde_json::Value;

fn options() -> Options {
    Options { max_connections: 4, ..Options::default() }
}

/// The seeded hard-cases mailbox, read through the master user.
fn hard_cases() -> Endpoint {
    let seed = lab_file("seed.json");
    let m = seed["mailboxes"].as_array().expect("mailboxes").iter().find(|m| m["kind"] == "hard-cases").cloned();
    let address = m.expect("a hard-cases mailbox")["address"].as_str().expect("address").to_owned();
    Endpoint { config: lab_imap_config("legacy"), auth: lab_master_for(&address) }
}

/// A new user of its own on a lab Dovecot platform (`legacy` or `new`).
fn dovecot_user(platform: &str, what: &str) -> Endpoint {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let address = format!("matrix.{what}{:x}n{}@bma.test", nanos & 0xffff_ffff, N.fetch_add(1, Ordering::Relaxed));
    let password = format!("secret-{what}");
    bma_tests::lab_adduser(platform, &address, &password);
    Endpoint {
        config: lab_imap_config(platform),
        auth: Auth::Login { user: address, password: bma_imap::Secret::new(password) },
    }
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Test <test@bma.test>\r\nTo: user@bma.test\r\nSubject: {subject}\r\n\
         Date: Sun, 19 Apr 1998 15:33:20 +0000\r\n\r\nBody of {subject}.\r\n"
    )
    .into_bytes()
}

async fn fill(c: &mut Client, folder: &str, n: usize, tag: &str) {
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| message(&format!("{tag} {i}"))).collect();
    let date = InternalDate::parse("02-Mar-2020 08:00:00 +0100");
    let inbox = MailboxName::new(folder);
    let mut p = c.append_pipeline(&inbox);
    for (i, b) in bodies.iter().enumerate() {
        let flags: &[Flag] = if i % 3 == 0 { &[Flag::Seen] } else { &[] };
        p.push(i as u64, AppendMessage { body: b, flags, internal_date: date }).await.expect("append");
    }
    p.finish().await.expect("appends");
}

/// Removes one of each `want` from `got`; returns what is left of `got`
/// and of `want`.
fn multiset_diff(mut got: Vec<Fingerprint>, want: &[Fingerprint]) -> (Vec<Fingerprint>, Vec<Fingerprint>) {
    let mut missing = Vec::new();
    for w in want {
        match got.iter().position(|g| g == w) {
            Some(i) => {
                got.swap_remove(i);
            }
            None => missing.push(w.clone()),
        }
    }
    (got, missing)
}

/// Every source message is on the target unchanged, except those the
/// summary lists as refused (skipped, not on the target) or altered by the
/// target (on the target, changed): those are exactly the differences.
/// Returns the number of altered messages.
async fn assert_accounted_for(source: &Endpoint, target: &Endpoint, summary: &Summary) -> usize {
    let (mut src, mut tgt) = (client(source).await, client(target).await);
    let mut altered_total = 0;
    for m in src.list().await.expect("list").iter().filter(|m| m.selectable()) {
        let name = m.name.name().into_owned();
        let f = summary.folders.iter().find(|f| f.source == name).unwrap_or_else(|| panic!("{name} not copied"));
        assert!(f.errors.is_empty(), "{name}: {f:#?}");
        let by_uid: BTreeMap<u32, Fingerprint> = fingerprints_by_uid(&mut src, &name).await;
        let skipped: HashSet<u32> = f.skipped.iter().map(|s| s.uid).collect();
        let altered: HashSet<u32> = f.altered.iter().map(|a| a.uid).collect();
        for a in &f.altered {
            assert!(!a.changes.is_empty(), "{name}: UID {} altered without saying what changed", a.uid);
            // What the lab's targets do is known: each change is named.
            assert!(!a.changes.contains(&Change::Content), "{name}: UID {} altered in a way not named: {a:?}", a.uid);
            assert!(by_uid.contains_key(&a.uid), "{name}: UID {} reported altered is not in the source", a.uid);
        }
        for s in &f.skipped {
            assert!(!s.reason.is_empty(), "{name}: UID {} skipped without a reason", s.uid);
        }
        let want: Vec<Fingerprint> = by_uid
            .iter()
            .filter(|(u, _)| !skipped.contains(u) && !altered.contains(u))
            .map(|(_, fp)| fp.clone())
            .collect();
        let got = fingerprints(&mut tgt, &f.target).await;
        assert_eq!(got.len(), by_uid.len() - skipped.len(), "{name} -> {}: {f:#?}", f.target);
        let (extra, missing) = multiset_diff(got, &want);
        assert!(missing.is_empty(), "{name} -> {}: changed or missing and not reported: {missing:?}\n{f:#?}", f.target);
        assert_eq!(extra.len(), altered.len(), "{name} -> {}: {f:#?}", f.target);
        altered_total += altered.len();
    }
    altered_total
}

/// Hard cases into `server`, then an unchanged rerun, then the copy out
/// again into Dovecot.
async fn into_and_out_of(server: Foreign) {
    let source = hard_cases();
    let target = server.user("matrix");
    let (_dir, store) = state().await;
    let t = Instant::now();
    let first = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("run");
    eprintln!(
        "{}: hard cases in {:?}: {} copied, {} skipped, {} altered",
        server.name(),
        t.elapsed(),
        first.copied,
        first.skipped,
        first.altered
    );
    let altered = assert_accounted_for(&source, &target, &first).await;
    // Cyrus offers DIGEST=SHA1: the risky messages it kept are compared
    // by its digest, not read back; the others have no digest.
    let by_digest: u64 = first.folders.iter().map(|f| f.verified_digest).sum();
    let by_content: u64 = first.folders.iter().map(|f| f.verified_content).sum();
    assert!(by_content > 0, "{first:#?}");
    if matches!(server, Foreign::Cyrus | Foreign::CyrusUnix) {
        assert!(by_digest > 0, "{first:#?}");
    } else {
        assert_eq!(by_digest, 0, "{first:#?}");
    }
    let expected = if first.skipped == 0 && altered == 0 { Outcome::Complete } else { Outcome::Partial };
    assert_eq!(first.outcome, expected, "{first:#?}");

    let again = bma_sync::run(&source, &target, store.clone(), &options()).await.expect("rerun");
    assert_eq!(again.copied, 0, "{}: the rerun appended again: {again:#?}", server.name());
    assert_eq!(again.outcome, first.outcome, "{again:#?}");

    assert_eq!(assert_accounted_for(&source, &target, &again).await, altered);

    // The foreign copy as a source: into Dovecot, byte for byte.
    let back = dovecot_user("new", "back");
    let (_dir2, store2) = state().await;
    let out = bma_sync::run(&target, &back, store2.clone(), &options()).await.expect("copy out");
    assert_eq!(out.outcome, Outcome::Complete, "{out:#?}");

    assert_same(&target, &back, &out).await;
    let out_again = bma_sync::run(&target, &back, store2, &options()).await.expect("copy out again");
    assert_eq!((out_again.outcome, out_again.copied), (Outcome::Complete, 0), "{out_again:#?}");
}

/// Which way a test copies: into the foreign server (from the legacy
/// Dovecot), or out of it (into the new Dovecot).
#[derive(Clone, Copy)]
enum Way {
    Into,
    OutOf,
}

impl Way {
    /// New users of their own: (source, target).
    fn pair(self, server: Foreign, what: &str) -> (Endpoint, Endpoint) {
        match self {
            Way::Into => (dovecot_user("legacy", &format!("{what}src")), server.user(&format!("{what}dst"))),
            Way::OutOf => (server.user(&format!("{what}src")), dovecot_user("new", &format!("{what}dst"))),
        }
    }
}

/// Plain messages into `server` through `bma sync`, killed with SIGKILL
/// mid-copy, then rerun.
async fn killed_then_resumed(server: Foreign, way: Way) {
    let (source, target) = way.pair(server, "kill");
    let mut src = client(&source).await;
    fill(&mut src, "INBOX", 150, "kill").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = || {
        let mut c = sync_command(&source, &target, dir.path());
        c.arg("--json");
        c
    };
    let mut child =
        cli().args(["--max-bytes-per-second", "5000"]).stdout(std::process::Stdio::null()).spawn().expect("spawn bma");
    wait_for_messages(&mut client(&target).await, "INBOX", 20, std::time::Duration::from_secs(20)).await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    let rerun = cli().output().expect("rerun");
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{}: {}\n{}",
        server.name(),
        String::from_utf8_lossy(&rerun.stderr),
        String::from_utf8_lossy(&rerun.stdout)
    );
    let summary: Value = serde_json::from_slice(&rerun.stdout).expect("JSON summary");
    assert_eq!(summary["outcome"], "complete", "{summary:#}");
    let want = fingerprints(&mut src, "INBOX").await;
    let mut tgt = client(&target).await;
    let (twice, lost) = multiset_diff(fingerprints(&mut tgt, "INBOX").await, &want);
    assert!(
        twice.is_empty() && lost.is_empty(),
        "{}: after the kill, twice or foreign on the target: {twice:#?}\nlost: {lost:#?}\nthe rerun: {summary:#}",
        server.name()
    );
}

/// A first copy into `server`, then new messages, a flag change and an
/// expunge on the source, carried by a run with `--delete`.
async fn incremental_with_delete(server: Foreign, way: Way) {
    let (source, target) = way.pair(server, "inc");
    let mut src = client(&source).await;
    fill(&mut src, "INBOX", 12, "inc").await;
    let (_dir, store) = state().await;
    let opts = Options { delete: true, ..options() };
    let first = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("first");
    assert_eq!(first.outcome, Outcome::Complete, "{first:#?}");

    src.select(&MailboxName::new("INBOX")).await.expect("select");
    src.uid_store(&UidSet::from_iter([2u32]), StoreMode::Add, &[Flag::Flagged, Flag::Keyword("$Important".into())])
        .await
        .expect("flag");
    src.uid_store(&UidSet::from_iter([5u32]), StoreMode::Add, &[Flag::Deleted]).await.expect("delete");
    src.uid_expunge(&UidSet::from_iter([5u32])).await.expect("expunge");
    fill(&mut src, "INBOX", 3, "later").await;

    let second = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("second");
    assert_eq!(second.outcome, Outcome::Complete, "{second:#?}");
    let inbox = second.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert_eq!((inbox.copied, inbox.deleted, inbox.flags_updated), (3, 1, 1), "{inbox:#?}");
    assert_same(&source, &target, &second).await;
    let third = bma_sync::run(&source, &target, store, &opts).await.expect("third");
    assert_eq!((third.outcome, third.copied), (Outcome::Complete, 0), "{third:#?}");
}

/// `bma sync` as an operator runs it (human output) from the hard cases
/// into `server`, twice: the warning before copying names the setting, each
/// altered message is listed with what changed, and the exit code is 3
/// (partial), on the rerun too (the alterations are remembered). The first
/// copy tells the target's bytes from the sizes it checked; the rerun,
/// which appends nothing, only where the server has STATUS=SIZE, else
/// "unverified".
fn cli_reports_alterations(server: Foreign, setting: &str, bytes_told: bool) {
    let source = hard_cases();
    let target = server.user("cli");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || sync_command(&source, &target, dir.path()).output().expect("bma sync");
    let mut counts = Vec::new();
    for first in [true, false] {
        let out = run();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let all = format!("{stderr}\n{stdout}");
        assert_eq!(out.status.code(), Some(3), "{all}");
        if first {
            assert!(
                stderr.contains("warning: the target rewrites messages on APPEND") && stderr.contains(setting),
                "{all}"
            );
        }
        let altered: Vec<&str> = stdout.lines().filter(|l| l.contains("altered by the target (UID")).collect();
        assert!(!altered.is_empty(), "{all}");
        assert!(altered.iter().all(|l| l.contains(" bytes -> ")), "{all}");
        counts.push(altered.len());
        let last = stdout.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("Partial: ") && last.contains(&format!("{} altered by the target", altered.len())),
            "{all}"
        );
        let inbox = stdout.lines().find(|l| l.starts_with("INBOX ")).expect("an INBOX line");
        // Columns: source, target, src msgs, src bytes, tgt msgs, tgt bytes, ...
        let tgt_bytes = inbox.split_whitespace().nth(5).expect("tgt bytes");
        if first || bytes_told {
            assert!(tgt_bytes.parse::<u64>().is_ok_and(|b| b > 0), "{inbox}");
        } else {
            assert_eq!(tgt_bytes, "unverified", "{inbox}");
        }
    }
    assert_eq!(counts[0], counts[1], "the rerun reports the same alterations");
}

/// At a terminal, the probe's warning is shown as soon as it is known,
/// above the progress bar, while the copy still goes on (so that the
/// operator may stop it and change the setting), and not again at the end.
#[test]
fn at_a_terminal_the_warning_is_shown_while_the_copy_goes_on_and_once() {
    use std::io::Read;
    let source = hard_cases();
    let target = Foreign::Cyrus.user("tty");
    let dir = tempfile::tempdir().expect("tempdir");
    // About 5 MB at 1 MB/s: a copy of several seconds.
    let mut cmd = sync_command(&source, &target, dir.path());
    cmd.args(["--max-bytes-per-second", "1000000"]);
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    // script(1) runs it on a pseudo-terminal and passes on what it writes as it comes.
    let start = Instant::now();
    let mut child = std::process::Command::new("script")
        .args(["-qefc", &line.join(" "), "/dev/null"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1)");
    let mut out = child.stdout.take().expect("stdout");
    let (mut seen, mut warned_at, mut chunk) = (Vec::new(), None, [0u8; 4096]);
    loop {
        let n = out.read(&mut chunk).expect("read the terminal");
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&chunk[..n]);
        if warned_at.is_none() && String::from_utf8_lossy(&seen).contains("warning: the target rewrites messages") {
            warned_at = Some(start.elapsed());
        }
    }
    let status = child.wait().expect("wait");
    let ended = start.elapsed();
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(status.code(), Some(3), "{text}");
    let warned_at = warned_at.unwrap_or_else(|| panic!("no warning: {text}"));
    assert!(
        ended.saturating_sub(warned_at) >= std::time::Duration::from_secs(1),
        "warned at {warned_at:?}, ended at {ended:?}"
    );
    assert_eq!(text.matches("warning: the target rewrites messages").count(), 1, "shown once: {text}");
    assert!(text.contains("munge8bit: no"), "{text}");
}

/// `--verify full` into Cyrus: every message compared by content, by
/// Cyrus' `DIGEST.SHA1`, none read back; into Courier (no digest), read
/// back.
#[tokio::test]
async fn verify_full_compares_every_message_by_the_digest_where_offered() {
    for (server, by_digest) in [(Foreign::Cyrus, 12), (Foreign::Courier, 0)] {
        let source = dovecot_user("legacy", "fullsrc");
        let target = server.user("fulldst");
        fill(&mut client(&source).await, "INBOX", 12, "full").await;
        let (_dir, store) = state().await;
        let opts = Options { verify: bma_sync::Verify::Full, ..options() };
        let s = bma_sync::run(&source, &target, store, &opts).await.expect("run");
        assert_eq!(s.outcome, Outcome::Complete, "{s:#?}");
        let inbox = s.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
        assert_eq!(
            (inbox.verified_size, inbox.verified_content, inbox.verified_digest),
            (12, 12, by_digest),
            "{}: {inbox:#?}",
            server.name()
        );
    }
}

/// Cyrus answers a plain `NO Over quota` (no `[OVERQUOTA]`): the engine
/// pauses and retries as for the coded refusal, reports what stayed
/// refused, and a rerun once the quota is raised copies the rest, once.
#[tokio::test]
async fn cyrus_over_quota_without_a_code_is_paused_for_then_completed() {
    let source = dovecot_user("legacy", "quotasrc");
    let target = Foreign::Cyrus.user("quotadst");
    Foreign::Cyrus.set_quota_kib(target.user(), 24);
    let mut src = client(&source).await;
    let body = |i: usize| {
        let mut m = message(&format!("quota {i}"));
        m.extend(std::iter::repeat_n(b'x', 8000));
        m.extend_from_slice(b"\r\n");
        m
    };
    let mut p = src.append_pipeline(&MailboxName::new("INBOX"));
    let bodies: Vec<Vec<u8>> = (0..5).map(body).collect();
    for (i, b) in bodies.iter().enumerate() {
        p.push(i as u64, AppendMessage { body: b, flags: &[], internal_date: None }).await.expect("append");
    }
    p.finish().await.expect("appends");
    let (_dir, store) = state().await;
    let opts = Options { pause: std::time::Duration::from_millis(100), pauses: 2, ..options() };
    let first = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("run");
    assert_eq!(first.outcome, Outcome::Partial, "{first:#?}");
    let inbox = first.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert!(inbox.pauses >= 1, "{inbox:#?}");
    assert!(inbox.copied >= 1 && !inbox.skipped.is_empty(), "{inbox:#?}");
    assert_eq!(inbox.copied + inbox.skipped.len() as u64, 5, "{inbox:#?}");
    assert!(inbox.skipped.iter().all(|s| s.reason.to_lowercase().contains("quota")), "{inbox:#?}");

    Foreign::Cyrus.set_quota_kib(target.user(), 10_000);
    let second = bma_sync::run(&source, &target, store, &opts).await.expect("rerun");
    assert_eq!(second.outcome, Outcome::Complete, "{second:#?}");
    assert_eq!(second.copied, inbox.skipped.len() as u64, "{second:#?}");
    let mut tgt = client(&target).await;
    assert_eq!(fingerprints(&mut tgt, "INBOX").await, fingerprints(&mut src, "INBOX").await);
}

/// A source with a folder whose name Courier refuses (an emoji, outside
/// the BMP), a French Sent folder, and INBOX subscribed; copied into
/// `server`. Returns the summary and the target's LIST.
async fn names_and_uses(server: Foreign) -> (Summary, Vec<bma_imap::MailboxInfo>) {
    let source = dovecot_user("legacy", "namesrc");
    let target = server.user("namedst");
    let mut src = client(&source).await;
    for folder in ["Émoji 📧", "Éléments envoyés"] {
        let name = MailboxName::new(folder);
        src.create(&name).await.expect("create");
        src.subscribe(&name).await.expect("subscribe");
        fill(&mut src, folder, 2, "names").await;
    }
    src.subscribe(&MailboxName::new("INBOX")).await.expect("subscribe INBOX");
    let (_dir, store) = state().await;
    let summary = bma_sync::run(&source, &target, store, &options()).await.expect("run");
    assert_eq!(summary.outcome, Outcome::Complete, "{summary:#?}");
    assert_eq!(summary.copied, 4, "{summary:#?}");
    let list = client(&target).await.list().await.expect("list");
    let inbox = list.iter().find(|m| m.name.is_inbox()).expect("INBOX");
    assert!(inbox.subscribed, "the INBOX subscription was not carried: {list:#?}");
    (summary, list)
}

#[tokio::test]
async fn courier_a_refused_name_is_created_without_what_it_refuses_and_a_sent_folder_keeps_its_name() {
    let (summary, list) = names_and_uses(Foreign::Courier).await;
    let emoji = summary.folders.iter().find(|f| f.source == "Émoji 📧").expect("the emoji folder");
    assert_eq!(emoji.target, "INBOX.Émoji _", "{emoji:#?}");
    assert!(emoji.note.as_deref().is_some_and(|n| n.contains("refused the name")), "{emoji:#?}");
    assert!(list.iter().any(|m| m.name.name() == "INBOX.Émoji _" && m.subscribed), "{list:#?}");
    assert!(!list.iter().any(|m| m.name.name() == "INBOX.Émoji 📧"), "the refused name is listed: {list:#?}");
    // Courier has no SPECIAL-USE: the source's name is kept, not renamed "Sent".
    let sent = summary.folders.iter().find(|f| f.source == "Éléments envoyés").expect("Sent");
    assert_eq!(sent.target, "INBOX.Éléments envoyés", "{sent:#?}");
}

#[tokio::test]
async fn cyrus_a_sent_folder_it_lacks_is_created_with_its_special_use() {
    let (summary, list) = names_and_uses(Foreign::Cyrus).await;
    let sent = summary.folders.iter().find(|f| f.source == "Éléments envoyés").expect("Sent");
    assert_eq!(sent.target, "INBOX.Sent", "{sent:#?}");
    let on_target = list.iter().find(|m| m.name.name() == "INBOX.Sent").expect("INBOX.Sent listed");
    assert_eq!(on_target.special_use, Some(bma_imap::SpecialUse::Sent), "{on_target:#?}");
    let emoji = summary.folders.iter().find(|f| f.source == "Émoji 📧").expect("the emoji folder");
    assert_eq!((emoji.target.as_str(), emoji.note.as_deref()), ("INBOX.Émoji 📧", None), "{emoji:#?}");
}

/// Cyrus lets its admin act for any name: a mailbox not created on the
/// target is said in one line, before anything is created or copied.
#[test]
fn cli_a_target_account_that_does_not_exist_is_said_in_one_line() {
    let source = dovecot_user("legacy", "ghostsrc");
    let lab = bma_tests::lab_file("lab.json");
    let cyrus = &lab["foreign"]["cyrus"];
    let (admin, admin_pw) =
        (cyrus["admin_user"].as_str().expect("admin"), cyrus["admin_password"].as_str().expect("pw"));
    let ghost = Endpoint {
        config: Foreign::Cyrus.config(),
        auth: Auth::Plain {
            authzid: Some("ghost42@bma.test".into()),
            authcid: admin.into(),
            password: bma_imap::Secret::new(admin_pw),
        },
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = sync_command(&source, &ghost, dir.path()).output().expect("bma sync");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(
        errors,
        ["error: target: the account ghost42@bma.test has no INBOX there: create the account on the target first"],
        "{stderr}"
    );
    assert!(!stderr.contains("CREATE") && !stderr.contains("STATUS"), "{stderr}");
}

#[test]
fn cli_on_cyrus_warns_with_munge8bit_and_lists_altered_messages() {
    cli_reports_alterations(Foreign::Cyrus, "munge8bit: no", true);
}

#[test]
fn cli_on_courier_lists_altered_messages_and_sizes_it_cannot_verify() {
    cli_reports_alterations(Foreign::Courier, "Courier-IMAP ends a message whose last line has no line ending", false);
}

macro_rules! suite {
    ($($module:ident => $server:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test]
            async fn hard_cases_in_and_out_every_difference_reported() {
                into_and_out_of($server).await;
            }

            #[tokio::test]
            async fn killed_with_sigkill_then_rerun_loses_and_duplicates_nothing() {
                killed_then_resumed($server, Way::Into).await;
            }

            #[tokio::test]
            async fn incremental_with_delete_carries_new_flags_and_expunges() {
                incremental_with_delete($server, Way::Into).await;
            }

            #[tokio::test]
            async fn as_a_source_killed_with_sigkill_then_rerun_loses_and_duplicates_nothing() {
                killed_then_resumed($server, Way::OutOf).await;
            }

            #[tokio::test]
            async fn as_a_source_incremental_with_delete_carries_new_flags_and_expunges() {
                incremental_with_delete($server, Way::OutOf).await;
            }
        }
    )*};
}

suite! {
    cyrus => Foreign::Cyrus,
    cyrus_unix => Foreign::CyrusUnix,
    courier => Foreign::Courier,
}
