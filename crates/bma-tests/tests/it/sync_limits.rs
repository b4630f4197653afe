//! `bma-sync` at the limits of the lab's real Dovecot servers: a target over
//! its quota (Dovecot 2.3 refuses APPEND and MULTIAPPEND with `[OVERQUOTA]`: the engine
//! pauses, reports the refused messages, duplicates nothing, and a rerun
//! once space is freed completes the copy); the connection cap, alone and
//! shared by a batch of four runs ([`Options::shared_by`]), measured by a
//! counting TCP relay in front of the target; subscriptions carried; and a
//! 40 MB message copied by the `bma` CLI with a peak RSS under three times
//! its size, body intact.
//!
//! Needs `cargo xtask lab up` (and `cargo build -p bma` for the CLI test).
//! Every test has its own users (legacy sources and new platform targets,
//! but for the quota test, whose target is a legacy user: 100 MiB).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bma_imap::{AppendMessage, Auth, Client, Flag, InternalDate, MailboxName, Secret, UidSet};
use bma_sync::{Endpoint, Options, Outcome};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use bma_tests::copy::{assert_same, client, fingerprints, sha256, state, sync_command};
use bma_tests::lab_file as read_json;
use bma_tests::lab_imap_config as config;

fn s(v: &Value) -> &str {
    v.as_str().expect("a string")
}

/// A name unique to this run and call.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("{what}{:x}{}", nanos & 0xffff_ffff, N.fetch_add(1, Ordering::Relaxed))
}

/// `n` users of their own on `platform` (one `lab adduser`: each costs a
/// second), with per-user Dovecot settings (`KEY=VALUE`); their endpoints.
fn users_with(platform: &str, name: &str, n: usize, settings: &[&str]) -> Vec<Endpoint> {
    let lab = read_json("lab.json");
    let addresses: Vec<String> = (0..n).map(|_| format!("synctest.{}@bma.test", unique(name))).collect();
    let password = format!("secret-{name}");
    let exe = s(&lab["xtask"]);
    let mut cmd = Command::new(exe);
    cmd.args(["lab", "adduser", platform, &addresses[0], &password]);
    for a in &addresses[1..] {
        cmd.args(["--also", a]);
    }
    for kv in settings {
        cmd.args(["--userdb", kv]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    assert!(out.status.success(), "adduser: {}", String::from_utf8_lossy(&out.stderr));
    addresses
        .into_iter()
        .map(|user| Endpoint {
            config: config(platform),
            auth: Auth::Login { user, password: Secret::new(password.clone()) },
        })
        .collect()
}

fn user(platform: &str, name: &str) -> Endpoint {
    users_with(platform, name, 1, &[]).remove(0)
}

/// A small message; `pad` bytes of filler make it bigger.
fn message(subject: &str, pad: usize) -> Vec<u8> {
    let mut body = format!(
        "From: Test <test@bma.test>\r\nTo: user@bma.test\r\nSubject: {subject}\r\n\
         Date: Sun, 19 Apr 1998 15:33:20 +0000\r\n\r\nBody of {subject}.\r\n"
    );
    for _ in 0..pad / 78 {
        body.push_str(&"y".repeat(76));
        body.push_str("\r\n");
    }
    body.into_bytes()
}

async fn append(c: &mut Client, folder: &str, body: &[u8], flags: &[Flag]) -> Option<u32> {
    let date = InternalDate::parse("02-Mar-2020 08:00:00 +0100");
    let done = c.append(&MailboxName::new(folder), AppendMessage { body, flags, internal_date: date }).await;
    done.unwrap_or_else(|e| panic!("append to {folder}: {e}")).map(|a| a.uid)
}

/// Appends `n` messages of about `pad` bytes to `folder`.
async fn fill(c: &mut Client, folder: &str, n: usize, tag: &str, pad: usize) {
    for i in 0..n {
        append(c, folder, &message(&format!("{tag} {i}"), pad), if i % 2 == 0 { &[Flag::Seen] } else { &[] }).await;
    }
}

/// `doveadm quota get` of `user` on `platform`: (used, limit) of its storage, in bytes.
fn storage_quota(platform: &str, user: &str) -> (u64, u64) {
    let lab = read_json("lab.json");
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(s(&lab[platform]["config"]))
        .args(["quota", "get", "-u", user])
        .output()
        .expect("doveadm quota get");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "quota get: {text}{}", String::from_utf8_lossy(&out.stderr));
    // "User quota STORAGE <used KiB> <limit KiB> <percent>"
    let row = text.lines().find(|l| l.contains("STORAGE")).unwrap_or_else(|| panic!("no STORAGE row: {text}"));
    let n: Vec<u64> = row.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(n.len() >= 2, "{row}");
    (n[0] * 1024, n[1] * 1024)
}

#[tokio::test]
async fn a_target_over_quota_is_paused_for_reported_then_completed_once_space_is_freed() {
    // The target is on the legacy platform, whose users have 100 MiB
    // (`lab adduser --userdb` takes no colon, so no `quota_rule` of our
    // own): a ballast fills it but for ≈2 MiB (Maildir stores LF line ends).
    let source = user("new", "quotasrc");
    let target = user("legacy", "quotadst");
    let mut tgt = client(&target).await;
    let (_, limit) = storage_quota("legacy", target.user());
    tgt.create(&MailboxName::new("Ballast")).await.expect("create");
    let ballast = message("ballast", limit as usize - (1 << 20));
    let ballast_uid = append(&mut tgt, "Ballast", &ballast, &[]).await.expect("APPENDUID");
    drop(ballast);
    let (used, limit) = storage_quota("legacy", target.user());
    let free = limit.saturating_sub(used);
    assert!((100_000..4 << 20).contains(&free), "{used} of {limit} bytes used");
    // Five messages of 0.4 × the free space: two fit, the others are refused.
    let mut src = client(&source).await;
    fill(&mut src, "INBOX", 5, "quota", (free as usize) * 2 / 5).await;

    let (_dir, store) = state().await;
    let opts = Options { pause: Duration::from_millis(100), pauses: 2, max_connections: 2, ..Options::default() };
    let first = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("run");
    assert_eq!(first.outcome, Outcome::Partial, "{first:#?}");
    let inbox = first.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    eprintln!("{free} bytes free: {} copied, {} skipped, {} pauses", inbox.copied, inbox.skipped.len(), inbox.pauses);
    assert!(inbox.pauses >= 1, "{inbox:#?}");
    assert!(!inbox.skipped.is_empty() && inbox.copied >= 1, "{inbox:#?}");
    assert_eq!(inbox.copied + inbox.skipped.len() as u64, 5, "{inbox:#?}");
    for sk in &inbox.skipped {
        assert!(sk.reason.to_lowercase().contains("quota"), "{sk:?}");
    }
    // What Dovecot 2.3 answers to an APPEND over quota: `NO [OVERQUOTA]`.
    let refused = tgt
        .append(
            &MailboxName::new("Ballast"),
            AppendMessage { body: &message("probe", free as usize), flags: &[], internal_date: None },
        )
        .await
        .expect_err("over quota");
    assert!(matches!(refused, bma_imap::Error::OverQuota { command: "APPEND", .. }), "{refused:?}");
    // And to a MULTIAPPEND: the whole command, `NO [OVERQUOTA]` too.
    let halves = [message("probe 1", free as usize / 2), message("probe 2", free as usize / 2)];
    let mut p = tgt.multiappend_pipeline(&MailboxName::new("Ballast")).expect("MULTIAPPEND");
    for (i, body) in halves.iter().enumerate() {
        p.push(i as u64, AppendMessage { body, flags: &[], internal_date: None }).await.expect("push");
    }
    let done = p.finish().await.expect("MULTIAPPEND sent");
    assert!(!done.is_empty(), "no result");
    for d in done {
        let e = d.result.expect_err("over quota");
        assert!(matches!(e, bma_imap::Error::OverQuota { .. }), "{e:?}");
    }
    // Nothing duplicated: what is on the target is a subset of the source, each message once.
    let want = fingerprints(&mut src, "INBOX").await;
    let got = fingerprints(&mut tgt, "INBOX").await;
    assert_eq!(got.len() as u64, inbox.copied, "{got:?}");
    let mut rest = want.clone();
    for g in &got {
        let at = rest.iter().position(|w| w == g).unwrap_or_else(|| panic!("{g:?} not (or no more) in the source"));
        rest.remove(at);
    }

    // Space freed (the ballast expunged, through another connection): the rerun completes.
    tgt.select(&MailboxName::new("Ballast")).await.expect("select");
    tgt.uid_store(&UidSet::range(ballast_uid, ballast_uid), bma_imap::StoreMode::Add, &[Flag::Deleted])
        .await
        .expect("store");
    tgt.uid_expunge(&UidSet::range(ballast_uid, ballast_uid)).await.expect("expunge");
    assert_eq!(tgt.status(&MailboxName::new("Ballast")).await.expect("status").messages, Some(0));
    let second = bma_sync::run(&source, &target, store.clone(), &opts).await.expect("rerun");
    assert_eq!(second.outcome, Outcome::Complete, "{second:#?}");
    let inbox2 = second.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert_eq!(inbox2.copied, inbox.skipped.len() as u64, "{inbox2:#?}");
    assert!(inbox2.skipped.is_empty(), "{inbox2:#?}");
    assert_eq!(fingerprints(&mut tgt, "INBOX").await, want);
}

/// A TCP relay in front of a lab server that counts the connections open
/// through it and keeps the peak.
struct Counter {
    port: u16,
    open: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

async fn counting_relay(upstream: (String, u16)) -> Counter {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (open, peak, total) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counter = Counter { port, open: open.clone(), peak: peak.clone(), total: total.clone() };
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let (upstream, open, peak, total) = (upstream.clone(), open.clone(), peak.clone(), total.clone());
            tokio::spawn(async move {
                // A connection closed just before this one was opened (a
                // slot handed over) may reach the relay in the same poll:
                // let its end be seen first.
                tokio::time::sleep(Duration::from_millis(2)).await;
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                total.fetch_add(1, Ordering::SeqCst);
                if let Ok(out) = tokio::net::TcpStream::connect(upstream).await {
                    let (mut ci, mut co) = inbound.into_split();
                    let (mut si, mut so) = out.into_split();
                    // Server to client in the background; the connection
                    // counts as open until the client closes its side.
                    let down = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut si, &mut co).await;
                        let _ = co.shutdown().await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match ci.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if so.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                    let _ = so.shutdown().await;
                    let _ = down.await;
                } else {
                    open.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    counter
}

/// Fills `source` with `folders` non-empty folders of a few messages each.
async fn with_folders(source: &Endpoint, folders: usize) {
    let mut src = client(source).await;
    fill(&mut src, "INBOX", 3, "inbox", 0).await;
    for i in 1..folders {
        let f = format!("Dossier{i}");
        src.create(&MailboxName::new(&f)).await.expect("create");
        fill(&mut src, &f, 3, &f, 0).await;
    }
}

#[tokio::test]
async fn the_connection_cap_is_respected_alone_and_shared_by_a_batch() {
    let source = user("legacy", "capsrc");
    with_folders(&source, 6).await;
    let direct = user("new", "capdst");
    let relay = counting_relay((direct.config.host.clone(), direct.config.port)).await;
    let mut target = direct.clone();
    target.config.port = relay.port;
    let (_dir, store) = state().await;
    let run = bma_sync::run(&source, &target, store, &Options { max_connections: 2, ..Options::default() })
        .await
        .expect("run");
    assert_eq!(run.outcome, Outcome::Complete, "{run:#?}");
    assert_eq!(run.copied, 18, "{run:#?}");
    let peak = relay.peak.load(Ordering::SeqCst);
    eprintln!("one run, max 2: peak {peak}, {} connections", relay.total.load(Ordering::SeqCst));
    assert!((1..=2).contains(&peak), "peak of {peak} connections to the target");
    assert_same(&source, &direct, &run).await;

    // Four runs sharing two connection pairs, all through one relay.
    let mut pairs = Vec::new();
    for (source, direct) in
        users_with("legacy", "bcapsrc", 4, &[]).into_iter().zip(users_with("new", "bcapdst", 4, &[]))
    {
        with_folders(&source, 3).await;
        pairs.push((source, direct));
    }
    let relay = counting_relay((pairs[0].1.config.host.clone(), pairs[0].1.config.port)).await;
    let shared = Options { max_connections: 2, ..Options::default() }.shared_by(4);
    let mut set = tokio::task::JoinSet::new();
    for (source, direct) in &pairs {
        let (source, mut target, opts) = (source.clone(), direct.clone(), shared.clone());
        target.config.port = relay.port;
        set.spawn(async move {
            let (_dir, store) = state().await;
            bma_sync::run(&source, &target, store, &opts).await.expect("run")
        });
    }
    let mut runs = Vec::new();
    while let Some(r) = set.join_next().await {
        runs.push(r.expect("task"));
    }
    let peak = relay.peak.load(Ordering::SeqCst);
    eprintln!("four runs sharing 2: peak {peak}, {} connections", relay.total.load(Ordering::SeqCst));
    assert!((1..=2).contains(&peak), "peak of {peak} connections to the target");
    // Every connection closed (the relay sees the last ends shortly after).
    let t = std::time::Instant::now();
    while relay.open.load(Ordering::SeqCst) > 0 && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(relay.open.load(Ordering::SeqCst), 0, "connections left open");
    for r in &runs {
        assert_eq!((r.outcome, r.copied), (Outcome::Complete, 9), "{r:#?}");
    }
    for (source, direct) in &pairs {
        let (_dir, store) = state().await;
        // An unchanged rerun (fresh state: every message reconciled, none appended).
        let again = bma_sync::run(source, direct, store, &Options::default()).await.expect("rerun");
        assert_eq!((again.outcome, again.copied), (Outcome::Complete, 0), "{again:#?}");
        assert_same(source, direct, &again).await;
    }
}

#[tokio::test]
async fn subscriptions_of_the_source_are_carried() {
    let source = user("legacy", "subsrc");
    let target = user("new", "subdst");
    let mut src = client(&source).await;
    let subscribed = ["Projets", "Projets/2024", "Clients"];
    let unsubscribed = ["Archives", "Archives/Vieux", "Brouillons perso"];
    for f in subscribed.iter().chain(&unsubscribed) {
        src.create(&MailboxName::new(f)).await.unwrap_or_else(|e| panic!("create {f}: {e}"));
        append(&mut src, f, &message(f, 0), &[]).await;
    }
    for f in subscribed.iter().chain(&unsubscribed) {
        src.subscribe(&MailboxName::new(f)).await.expect("subscribe");
    }
    for f in &unsubscribed {
        src.unsubscribe(&MailboxName::new(f)).await.expect("unsubscribe");
    }
    let on_source: BTreeMap<String, bool> =
        src.list().await.expect("list").into_iter().map(|m| (m.name.name().into_owned(), m.subscribed)).collect();
    for f in &subscribed {
        assert_eq!(on_source.get(*f), Some(&true), "{on_source:?}");
    }
    for f in &unsubscribed {
        assert_eq!(on_source.get(*f), Some(&false), "{on_source:?}");
    }
    let mut tgt = client(&target).await;
    let before: Vec<String> = tgt.list().await.expect("list").into_iter().map(|m| m.name.name().into_owned()).collect();

    let (_dir, store) = state().await;
    let run = bma_sync::run(&source, &target, store, &Options::default()).await.expect("run");
    assert_eq!(run.outcome, Outcome::Complete, "{run:#?}");
    let on_target: BTreeMap<String, bool> =
        tgt.list().await.expect("list").into_iter().map(|m| (m.name.name().into_owned(), m.subscribed)).collect();
    for f in &run.folders {
        let Some(&sub) = on_source.get(&f.source) else { continue };
        let got = on_target.get(&f.target).copied();
        if sub {
            assert_eq!(got, Some(true), "{} -> {}: {on_target:?}", f.source, f.target);
        } else if !before.contains(&f.target) {
            // Created by the run, not subscribed (nothing is unsubscribed either).
            assert_eq!(got, Some(false), "{} -> {}: {on_target:?}", f.source, f.target);
        }
    }
    // Each of the six folders was mapped to a folder of its own name.
    for f in subscribed.iter().chain(&unsubscribed) {
        assert!(run.folders.iter().any(|r| r.source == *f && r.target == *f), "{f}: {run:#?}");
    }
}

#[tokio::test]
async fn a_40_mb_message_is_copied_by_the_cli_in_bounded_memory() {
    const BIG: usize = 40 << 20;
    // Room for it on both sides, whatever the lab's defaults.
    // (The legacy source's quota is 100 MiB, the target's 2500 MiB.)
    let roomy = ["quota_max_mail_size=200M"];
    let source = users_with("legacy", "bigsrc", 1, &roomy).remove(0);
    let target = users_with("new", "bigdst", 1, &roomy).remove(0);
    let mut big = message("forty megabytes", 0);
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n";
    let mut n = 0u64;
    while big.len() + line.len() <= BIG {
        big.extend_from_slice(line);
        // Not one line repeated: a counter every line.
        let at = big.len() - 10;
        big[at..at + 8].copy_from_slice(format!("{n:08x}").as_bytes());
        n += 1;
    }
    let big_hash = sha256(&big);
    let mut src = client(&source).await;
    fill(&mut src, "INBOX", 3, "small before", 0).await;
    append(&mut src, "INBOX", &big, &[Flag::Seen]).await;
    fill(&mut src, "INBOX", 3, "small after", 0).await;
    drop(big);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut sync = sync_command(&source, &target, dir.path());
    sync.arg("--json");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(sync.get_program())
        .args(sync.get_args())
        .output()
        .expect("run bma under /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(summary["outcome"], "complete", "{summary:#}");
    assert_eq!(summary["copied"], 7, "{summary:#}");
    let rss_kb: u64 = stderr.lines().last().and_then(|l| l.trim().parse().ok()).expect("the peak RSS from time");
    eprintln!("bma sync of a {BIG}-byte message: peak RSS {rss_kb} KiB");
    assert!(rss_kb * 1024 < 3 * BIG as u64, "peak RSS {rss_kb} KiB for a {BIG}-byte message");

    let mut tgt = client(&target).await;
    let got = fingerprints(&mut tgt, "INBOX").await;
    assert_eq!(got.iter().filter(|(h, _, _)| *h == big_hash).count(), 1, "the big message, intact, once");
    assert_eq!(got, fingerprints(&mut src, "INBOX").await);
}
