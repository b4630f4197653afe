//! `bma-imap` against the lab's real Dovecot pair: logins (user, master with
//! authorization identity, wrong password), LIST of non-ASCII folders, SELECT
//! and FETCH against the seed manifest, APPEND round trips on the new
//! platform, typed refusals ([TRYCREATE], [OVERQUOTA]), STARTTLS required.
//!
//! Needs `cargo xtask lab up && cargo xtask lab seed`. Seeded legacy
//! mailboxes are only read, except for folders a test creates and deletes
//! itself; on the new platform each test has its own user and folder.
//!
//! `BMA_IMAP_BENCH=1 cargo test -p bma-tests --test imap --release -- --nocapture bench`
//! prints throughput numbers (not an assertion).

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bma_imap::{
    AppendMessage, Auth, Client, Error, Flag, InternalDate, MailboxName, ResponseCode, Secret, Security, StoreMode,
    UidSet,
};
use serde_json::Value;

use bma_tests::lab_file as read_json;
use bma_tests::lab_imap_config as config;

fn s(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn master() -> (String, Secret) {
    let lab = read_json("lab.json");
    (s(&lab["master_user"]).to_owned(), Secret::new(s(&lab["master_password"])))
}

/// The seeded mailbox of this kind (`regular`, `hard-cases`), `n`-th of its kind.
fn seeded(kind: &str, n: usize) -> Value {
    let seed = read_json("seed.json");
    let all: Vec<Value> =
        seed["mailboxes"].as_array().expect("mailboxes").iter().filter(|m| m["kind"] == kind).cloned().collect();
    all.get(n).cloned().unwrap_or_else(|| panic!("no {kind} mailbox #{n} in seed.json"))
}

fn login_of(mbx: &Value) -> Auth {
    Auth::Login { user: s(&mbx["address"]).to_owned(), password: Secret::new(s(&mbx["password"])) }
}

async fn connect(platform: &str, auth: &Auth) -> Client {
    let mut c = Client::connect(&config(platform)).await.expect("connect");
    c.login(auth).await.expect("login");
    c
}

/// A name unique to this run and call.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("{what}-{}-{nanos:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A user of its own on the new platform (created or reset), logged in.
async fn new_platform_user(name: &str) -> Client {
    let lab = read_json("lab.json");
    let address = format!("imaptest.{name}@bma.test");
    let password = format!("secret-{name}");
    let exe = s(&lab["xtask"]);
    // `adduser` rewrites the passwd-file: one at a time, or two tests race.
    static ADDUSER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = ADDUSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = Command::new(exe)
        .args(["lab", "adduser", "new", &address, &password])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    drop(guard);
    assert!(out.status.success(), "adduser: {}", String::from_utf8_lossy(&out.stderr));
    connect("new", &Auth::Login { user: address, password: Secret::new(password) }).await
}

fn message(subject: &str, extra: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: Test <test@bma.test>\r\nTo: user@bma.test\r\nSubject: {subject}\r\n\
         Date: Sun, 19 Apr 1998 15:33:20 +0000\r\nMessage-ID: <{subject}@bma.test>\r\n\r\nBody of {subject}.\r\n"
    )
    .into_bytes();
    m.extend_from_slice(extra);
    m
}

/// `data` with every LF not preceded by CR made CRLF.
fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn flag_set(flags: &[Flag]) -> BTreeSet<Flag> {
    flags.iter().filter(|f| **f != Flag::Recent).cloned().collect()
}

#[tokio::test]
async fn login_as_user_and_as_master_for_the_user() {
    let mbx = seeded("regular", 0);
    // Not INBOX: the campaign's tests deliver mail 1 to seeded addresses
    // through the lab's Postfix, which only ever lands in INBOX.
    let folder = &mbx["folders"][1];
    assert_ne!(folder["name"], "INBOX");
    let count = folder["messages"].as_u64().expect("count") as u32;
    let name = bma_imap::MailboxName::new(s(&folder["name"]));

    let mut c = connect("legacy", &login_of(&mbx)).await;
    assert!(c.capabilities().uidplus() && c.capabilities().literal_plus(), "{:?}", c.capabilities());
    assert_eq!(c.examine(&name).await.expect("EXAMINE").exists, count);
    c.logout().await.expect("LOGOUT");

    let (admin, password) = master();
    let auth = Auth::Plain { authzid: Some(s(&mbx["address"]).to_owned()), authcid: admin, password };
    let mut c = connect("legacy", &auth).await;
    assert_eq!(c.examine(&name).await.expect("EXAMINE").exists, count);
    c.logout().await.expect("LOGOUT");
}

#[tokio::test]
async fn wrong_password_is_a_typed_auth_error_without_the_secret() {
    // Two failures only: after failures Dovecot delays logins from 127.0.0.1
    // (auth penalty), which slows the other tests.
    let mbx = seeded("regular", 1);
    let (admin, _) = master();
    let cases = [
        Auth::Login { user: s(&mbx["address"]).to_owned(), password: Secret::new("not-the-password") },
        Auth::Plain {
            authzid: Some(s(&mbx["address"]).to_owned()),
            authcid: admin,
            password: Secret::new("not-the-password"),
        },
    ];
    for auth in cases {
        assert!(!format!("{auth:?}").contains("not-the-password"));
        let mut c = Client::connect(&config("legacy")).await.expect("connect");
        let err = c.login(&auth).await.expect_err("must fail");
        assert!(
            matches!(err, Error::AuthFailed { code: Some(ResponseCode::AuthenticationFailed), .. }),
            "{auth:?}: {err:?}"
        );
        assert!(!format!("{err:?} {err}").contains("not-the-password"));
    }
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_refused() {
    let cfg = config("legacy").with_security(Security::StartTls);
    let err = Client::connect(&cfg).await.expect_err("the lab has no TLS");
    assert!(matches!(err, Error::StartTlsUnavailable), "{err:?}");
}

#[tokio::test]
async fn list_decodes_non_ascii_folders_with_subscriptions() {
    let mbx = seeded("hard-cases", 0);
    let mut c = connect("legacy", &login_of(&mbx)).await;
    let ns = c.namespace().await.expect("NAMESPACE");
    assert_eq!(ns.personal[0].delimiter, Some('/'));
    let listed = c.list().await.expect("LIST");
    for f in mbx["folders"].as_array().expect("folders") {
        let name = s(&f["name"]);
        let m = listed.iter().find(|m| m.name.name() == name).unwrap_or_else(|| panic!("{name} not in {listed:?}"));
        assert_eq!(m.name.wire(), s(&f["imap_name"]), "{name}");
        assert_eq!(m.subscribed, f["subscribed"].as_bool().expect("bool"), "{name}");
        assert_eq!(m.delimiter, Some('/'));
    }
    assert!(listed.iter().any(|m| m.name.name() == "Projets ~ Été & Hiver"));
    assert!(listed.iter().any(|m| m.name.name() == "Non abonné" && !m.subscribed));
}

#[tokio::test]
async fn select_and_status_agree_with_the_seed() {
    let mbx = seeded("hard-cases", 0);
    let mut c = connect("legacy", &login_of(&mbx)).await;
    assert!(c.enable_modseq().await.expect("ENABLE"));
    assert!(c.enabled().contains("CONDSTORE"), "{:?}", c.enabled());
    for f in mbx["folders"].as_array().expect("folders") {
        let name = MailboxName::new(s(&f["name"]));
        let want = f["messages"].as_u64().expect("count") as u32;
        let st = c.status(&name).await.expect("STATUS");
        let sel = c.examine(&name).await.expect("EXAMINE");
        assert_eq!(sel.exists, want, "{name}");
        assert!(sel.read_only);
        assert!(sel.uid_validity > 0 && sel.highest_modseq.is_some(), "{sel:?}");
        assert_eq!(st.messages, Some(want), "{name}");
        assert_eq!(st.uid_validity, Some(sel.uid_validity));
        assert_eq!(st.uid_next, sel.uid_next);
        assert!(st.size.is_some() && st.highest_modseq.is_some(), "{st:?}");
    }
}

#[tokio::test]
async fn fetch_every_body_of_the_hard_cases_with_sizes_equal_to_rfc822_size() {
    let mbx = seeded("hard-cases", 0);
    let mut c = connect("legacy", &login_of(&mbx)).await;
    let (mut count, mut bytes, mut status_bytes, mut deleted, mut biggest) = (0u64, 0u64, 0u64, 0u64, 0usize);
    for f in mbx["folders"].as_array().expect("folders") {
        let name = MailboxName::new(s(&f["name"]));
        status_bytes += c.status(&name).await.expect("STATUS").size.expect("STATUS=SIZE");
        let sel = c.examine(&name).await.expect("EXAMINE");
        if sel.exists == 0 {
            continue;
        }
        let mut sizes = std::collections::BTreeMap::new();
        let mut meta = c.fetch_meta(&UidSet::all(), None).await.expect("FETCH meta");
        while let Some(m) = meta.next().await.expect("meta") {
            assert!(m.internal_date.is_some() && m.modseq.is_some(), "{m:?}");
            deleted += u64::from(m.flags.contains(&Flag::Deleted));
            sizes.insert(m.uid, m.size.expect("size"));
        }
        drop(meta);
        assert_eq!(sizes.len() as u32, sel.exists, "{name}");
        let mut bodies = c.fetch_bodies(&UidSet::all()).await.expect("FETCH bodies");
        let mut n = 0;
        while let Some(msg) = bodies.next().await.expect("body") {
            assert_eq!(Some(&(msg.body.len() as u64)), sizes.get(&msg.uid), "{name} UID {}", msg.uid);
            assert!(msg.flags.is_some() && msg.internal_date.is_some());
            biggest = biggest.max(msg.body.len());
            bytes += msg.body.len() as u64;
            n += 1;
        }
        drop(bodies);
        assert_eq!(n, sizes.len(), "{name}");
        count += n as u64;
    }
    assert_eq!(count, mbx["messages"].as_u64().expect("count"));
    // seed.json counts the generated files (LF line ends); Dovecot serves
    // CRLF, and its sizes (RFC822.SIZE, STATUS SIZE) count CRLF.
    assert_eq!(bytes, status_bytes);
    assert!(bytes >= mbx["bytes"].as_u64().expect("bytes"));
    assert!(deleted >= 1, "the \\Deleted message is fetched like the others");
    assert!(biggest > 5_000_000, "the ~5 MB message: {biggest}");
}

#[tokio::test]
async fn a_stream_dropped_early_leaves_the_connection_usable() {
    let mbx = seeded("hard-cases", 0);
    let mut c = connect("legacy", &login_of(&mbx)).await;
    let sel = c.examine(&"INBOX".into()).await.expect("EXAMINE");
    {
        let mut bodies = c.fetch_bodies(&UidSet::all()).await.expect("FETCH");
        assert!(bodies.next().await.expect("first").is_some());
    }
    {
        let _meta = c.fetch_meta(&UidSet::all(), None).await.expect("FETCH");
    }
    c.noop().await.expect("NOOP after drained streams");
    assert_eq!(c.status(&"INBOX".into()).await.expect("STATUS").messages, Some(sel.exists));
}

#[tokio::test]
async fn append_round_trips_bytes_flags_and_internaldate() {
    let mut c = new_platform_user("append").await;
    let folder = MailboxName::new(&format!("Éléments {}", unique("append")));
    c.create(&folder).await.expect("CREATE");
    let body = message(&unique("round-trip"), b"");
    let flags = vec![
        Flag::Seen,
        Flag::Flagged,
        Flag::Answered,
        Flag::Keyword("$Forwarded".into()),
        Flag::Keyword("Important".into()),
    ];
    let date = InternalDate::parse("19-Apr-1998 15:33:20 +0200").expect("date");
    let uid = c
        .append(&folder, AppendMessage { body: &body, flags: &flags, internal_date: Some(date) })
        .await
        .expect("APPEND")
        .expect("APPENDUID");
    let sel = c.select(&folder).await.expect("SELECT");
    assert_eq!(sel.uid_validity, uid.uid_validity);
    let mut bodies = c.fetch_bodies(&UidSet::range(uid.uid, uid.uid)).await.expect("FETCH");
    let got = bodies.next().await.expect("fetch").expect("the message");
    assert!(bodies.next().await.expect("end").is_none());
    drop(bodies);
    assert_eq!(got.uid, uid.uid);
    assert_eq!(got.body, body);
    assert_eq!(flag_set(&got.flags.expect("flags")), flag_set(&flags));
    let got_date = got.internal_date.expect("date");
    assert_eq!(got_date.0, date.0, "same instant: {got_date} vs {date}");
    c.delete(&folder).await.expect("DELETE");
}

#[tokio::test]
async fn append_keeps_8bit_bytes_exact_and_dovecot_makes_bare_lf_crlf() {
    let mut c = new_platform_user("eightbit").await;
    let folder = MailboxName::new(&unique("eightbit"));
    c.create(&folder).await.expect("CREATE");
    let cases: Vec<Vec<u8>> = vec![
        b"Subject: bare LF\nFrom: a@b\n\nline one\nline two\n".to_vec(),
        b"Subject: 8-bit \xc3\xa9t\xc3\xa9\r\n\r\nLatin-1 \xe9t\xe9, raw \xff\xfe bytes\r\n".to_vec(),
        b"Subject: mixed\r\n\r\nCRLF\r\nbare LF\nbare CR\rend".to_vec(),
        b"Subject: literal-looking {5}\r\n\r\nA line ending like a literal {12}\r\n".to_vec(),
    ];
    let mut uids = Vec::new();
    for body in &cases {
        let uid = c.append(&folder, AppendMessage { body, flags: &[], internal_date: None }).await.expect("APPEND");
        uids.push(uid.expect("APPENDUID").uid);
    }
    c.examine(&folder).await.expect("EXAMINE");
    let mut bodies = c.fetch_bodies(&uids.iter().copied().collect()).await.expect("FETCH");
    let mut got = Vec::new();
    while let Some(m) = bodies.next().await.expect("fetch") {
        got.push(m);
    }
    drop(bodies);
    got.sort_by_key(|m| m.uid);
    assert_eq!(got.len(), cases.len());
    for (m, sent) in got.iter().zip(&cases) {
        // Dovecot (maildir) serves every bare LF as CRLF; anything else,
        // 8-bit bytes and bare CR included, comes back as sent.
        let want = crlf(sent);
        assert_eq!(String::from_utf8_lossy(&m.body), String::from_utf8_lossy(&want));
        assert_eq!(m.body, want);
    }
    c.delete(&folder).await.expect("DELETE");
}

#[tokio::test]
async fn pipelined_appends_then_store_and_uid_expunge() {
    let mut c = new_platform_user("pipeline").await;
    let folder = MailboxName::new(&unique("pipeline"));
    c.create(&folder).await.expect("CREATE");
    let bodies: Vec<Vec<u8>> = (0..40).map(|i| message(&unique(&format!("p{i}")), &vec![b'x'; i * 100])).collect();
    let mut p = c.append_pipeline(&folder);
    let mut results = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        p.push(i as u64, AppendMessage { body, flags: &[Flag::Seen], internal_date: None }).await.expect("push");
        assert!(p.in_flight() <= 16);
    }
    results.extend(p.finish().await.expect("finish"));
    assert_eq!(results.len(), bodies.len());
    let uids: Vec<u32> = results
        .iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(d.id, i as u64, "results in order");
            d.result.as_ref().expect("appended").expect("APPENDUID").uid
        })
        .collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "{uids:?}");

    let sel = c.select(&folder).await.expect("SELECT");
    assert_eq!(sel.exists, 40);
    let odd: UidSet = uids.iter().copied().step_by(2).collect();
    c.uid_store(&odd, StoreMode::Add, &[Flag::Deleted, Flag::Recent]).await.expect("STORE");
    let mut deleted = 0;
    let mut meta = c.fetch_meta(&UidSet::all(), None).await.expect("FETCH");
    while let Some(m) = meta.next().await.expect("meta") {
        deleted += usize::from(m.flags.contains(&Flag::Deleted));
    }
    drop(meta);
    assert_eq!(deleted, 20);
    c.uid_expunge(&odd).await.expect("UID EXPUNGE");
    assert_eq!(c.status(&folder).await.expect("STATUS").messages, Some(20));
    let modseq = c.examine(&folder).await.expect("EXAMINE").highest_modseq.expect("modseq");
    let mut changed = c.fetch_meta(&UidSet::all(), Some(modseq)).await.expect("CHANGEDSINCE");
    assert!(changed.next().await.expect("meta").is_none(), "nothing changed since {modseq}");
    drop(changed);
    c.delete(&folder).await.expect("DELETE");
}

#[tokio::test]
async fn append_to_a_missing_folder_is_trycreate() {
    let mut c = new_platform_user("trycreate").await;
    let folder = MailboxName::new(&unique("missing"));
    let err = c
        .append(&folder, AppendMessage { body: &message("x", b""), flags: &[], internal_date: None })
        .await
        .expect_err("no such folder");
    assert!(matches!(err, Error::TryCreate { .. }), "{err:?}");
    let err = c.select(&folder).await.expect_err("no such folder");
    assert!(matches!(err, Error::No { .. }), "{err:?}");
    c.noop().await.expect("still usable");
}

/// The legacy platform has a 100 MB quota: an APPEND announced bigger is
/// refused with [OVERQUOTA] before its bytes are sent (synchronising literal).
#[tokio::test]
async fn append_over_quota_is_typed_and_cheap() {
    let mbx = seeded("regular", 2);
    let mut c = connect("legacy", &login_of(&mbx)).await;
    let folder = MailboxName::new(&unique("zz-quota"));
    c.create(&folder).await.expect("CREATE");
    let body = vec![b'a'; 105 * 1024 * 1024];
    let started = Instant::now();
    let err = c
        .append(&folder, AppendMessage { body: &body, flags: &[], internal_date: None })
        .await
        .expect_err("over quota");
    assert!(matches!(err, Error::OverQuota { .. }), "{err:?}");
    assert!(started.elapsed().as_secs() < 5, "refused before sending 105 MB: {:?}", started.elapsed());
    c.noop().await.expect("still usable");
    c.delete(&folder).await.expect("DELETE");
}

/// Throughput numbers, printed; run with `BMA_IMAP_BENCH=1` and `--nocapture`.
#[tokio::test]
async fn bench_fetch_and_append() {
    if std::env::var("BMA_IMAP_BENCH").as_deref() != Ok("1") {
        return;
    }
    let seed = read_json("seed.json");
    let biggest = seed["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .max_by_key(|m| m["bytes"].as_u64())
        .expect("a mailbox")
        .clone();
    let mut c = connect("legacy", &login_of(&biggest)).await;
    let started = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    for f in biggest["folders"].as_array().expect("folders") {
        let sel = c.examine(&MailboxName::new(s(&f["name"]))).await.expect("EXAMINE");
        if sel.exists == 0 {
            continue;
        }
        let mut bodies = c.fetch_bodies(&UidSet::all()).await.expect("FETCH");
        while let Some(m) = bodies.next().await.expect("body") {
            n += 1;
            bytes += m.body.len() as u64;
        }
        drop(bodies);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fetch {}: {n} messages, {:.1} MB in {:.3} s = {:.1} MB/s",
        s(&biggest["address"]),
        bytes as f64 / 1e6,
        secs,
        bytes as f64 / 1e6 / secs
    );

    let mut t = new_platform_user("bench").await;
    let count = 500;
    let bodies: Vec<Vec<u8>> = (0..count).map(|i| message(&unique(&format!("b{i}")), &vec![b'y'; 2000])).collect();
    let mut timings = Vec::new();
    for pipelined in [false, true, false, true] {
        let folder = MailboxName::new(&unique("bench"));
        t.create(&folder).await.expect("CREATE");
        let started = Instant::now();
        if pipelined {
            let mut p = t.append_pipeline(&folder);
            for (i, b) in bodies.iter().enumerate() {
                p.push(i as u64, AppendMessage { body: b, flags: &[Flag::Seen], internal_date: None })
                    .await
                    .expect("push");
            }
            assert!(p.finish().await.expect("finish").iter().all(|d| d.result.is_ok()));
        } else {
            for b in &bodies {
                t.append(&folder, AppendMessage { body: b, flags: &[Flag::Seen], internal_date: None })
                    .await
                    .expect("APPEND");
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "append {count} x ~2.3 KB {}: {secs:.3} s",
            if pipelined { "pipelined (depth 16)" } else { "sequential" }
        );
        timings.push(secs);
        t.delete(&folder).await.expect("DELETE");
    }
    println!("sequential / pipelined = {:.2}", (timings[0] + timings[2]) / (timings[1] + timings[3]));
}
