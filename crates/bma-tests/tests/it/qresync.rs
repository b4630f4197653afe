//! QRESYNC (RFC 7162) of `bma-imap` against the lab's real Dovecot: after
//! messages are expunged and flags changed through a second connection,
//! `examine_qresync` and `fetch_changes` report exactly those UIDs and flags;
//! a stale UIDVALIDITY gets no changes (so the caller falls back to a full
//! comparison); expunges announced while the mailbox is open do not break
//! the other commands.
//!
//! Needs `cargo xtask lab up && cargo xtask lab seed`. Each test has its
//! own user on the legacy platform (the copy engine's source).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bma_imap::{
    AppendMessage, Auth, Client, Config, Flag, MailboxName, MessageMeta, QresyncParams, Secret, Security, StoreMode,
    UidSet,
};
use bma_tests::{lab_adduser, lab_file};

/// A user of its own on the legacy platform: its address and password.
fn new_user(what: &str) -> Auth {
    static N: AtomicU32 = AtomicU32::new(0);
    // `adduser` rewrites the passwd-file: one at a time within this binary.
    static ADDUSER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let name = format!("qresync.{what}.{}.{nanos:x}.{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let address = format!("{name}@bma.test");
    let password = format!("secret-{name}");
    {
        let _guard = ADDUSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lab_adduser("legacy", &address, &password);
    }
    Auth::Login { user: address, password: Secret::new(password) }
}

fn config() -> Config {
    let lab = lab_file("lab.json");
    let host = lab["legacy"]["host"].as_str().expect("host");
    let port = lab["legacy"]["imap_port"].as_u64().expect("port") as u16;
    Config::new(host, port).with_security(Security::None)
}

/// Logged in, with CONDSTORE and QRESYNC enabled.
async fn connect(auth: &Auth) -> Client {
    let mut c = Client::connect(&config()).await.expect("connect");
    c.login(auth).await.expect("login");
    assert!(c.enable_modseq().await.expect("ENABLE"));
    assert!(c.qresync_enabled(), "the lab's Dovecot has QRESYNC: {:?}", c.capabilities());
    c
}

fn message(n: u32) -> Vec<u8> {
    format!(
        "From: Test <test@bma.test>\r\nTo: user@bma.test\r\nSubject: message {n}\r\n\
         Message-ID: <qresync-{n}@bma.test>\r\n\r\nBody of message {n}.\r\n"
    )
    .into_bytes()
}

/// Appends messages `from..=to` to `folder`; their UIDs.
async fn append(c: &mut Client, folder: &MailboxName, from: u32, to: u32) -> Vec<u32> {
    let mut uids = Vec::new();
    for n in from..=to {
        let body = message(n);
        let msg = AppendMessage { body: &body, flags: &[], internal_date: None };
        uids.push(c.append(folder, msg).await.expect("APPEND").expect("APPENDUID").uid);
    }
    uids
}

fn flags(m: &MessageMeta) -> BTreeSet<Flag> {
    m.flags.iter().filter(|f| **f != Flag::Recent).cloned().collect()
}

fn set(uids: &[u32]) -> UidSet {
    uids.iter().copied().collect()
}

/// Through a second connection: expunges `gone`, adds `\Flagged` to
/// `flagged`, sets `\Seen $Label` on `labelled`.
async fn change(auth: &Auth, folder: &MailboxName, gone: &[u32], flagged: u32, labelled: u32) {
    let mut c = connect(auth).await;
    c.select(folder).await.expect("SELECT");
    c.uid_store(&set(gone), StoreMode::Add, &[Flag::Deleted]).await.expect("STORE \\Deleted");
    c.uid_expunge(&set(gone)).await.expect("UID EXPUNGE");
    c.uid_store(&set(&[flagged]), StoreMode::Add, &[Flag::Flagged]).await.expect("STORE \\Flagged");
    let label = [Flag::Seen, Flag::Keyword("$Label".into())];
    c.uid_store(&set(&[labelled]), StoreMode::Replace, &label).await.expect("STORE $Label");
    c.logout().await.expect("LOGOUT");
}

#[tokio::test]
async fn examine_qresync_reports_exactly_the_expunged_and_changed_messages() {
    let auth = new_user("examine");
    let folder = MailboxName::new("Source");
    let mut c = connect(&auth).await;
    c.create(&folder).await.expect("CREATE");
    let uids = append(&mut c, &folder, 1, 10).await;
    let before = c.examine(&folder).await.expect("EXAMINE");
    let (uid_validity, mod_seq) = (before.uid_validity, before.highest_modseq.expect("HIGHESTMODSEQ"));
    c.logout().await.expect("LOGOUT");

    let gone = [uids[1], uids[2], uids[3], uids[6]];
    change(&auth, &folder, &gone, uids[4], uids[8]).await;
    let mut other = connect(&auth).await;
    let added = append(&mut other, &folder, 11, 11).await[0];
    other.logout().await.expect("LOGOUT");

    let known = set(&uids);
    let mut c = connect(&auth).await;
    let params = QresyncParams { uid_validity, mod_seq, known_uids: Some(&known) };
    let (info, changes) = c.examine_qresync(&folder, params).await.expect("EXAMINE QRESYNC");
    assert_eq!((info.uid_validity, info.exists), (uid_validity, 7));
    assert!(info.highest_modseq > Some(mod_seq), "{info:?}");
    let changes = changes.expect("resynchronised");
    assert_eq!(changes.vanished, set(&gone));
    let changed: Vec<(u32, BTreeSet<Flag>)> = changes.changed.iter().map(|m| (m.uid, flags(m))).collect();
    assert_eq!(
        changed,
        [
            (uids[4], BTreeSet::from([Flag::Flagged])),
            (uids[8], BTreeSet::from([Flag::Seen, Flag::Keyword("$Label".into())])),
        ],
        "{changes:?}: the known UIDs limit the changes too, the message added is not among them"
    );
    assert!(changes.changed.iter().all(|m| m.modseq > Some(mod_seq)), "{changes:?}");

    // Without the known UIDs: every expunge since the mod-sequence.
    let params = QresyncParams { uid_validity, mod_seq, known_uids: None };
    let (_, changes) = c.examine_qresync(&folder, params).await.expect("EXAMINE QRESYNC");
    let changes = changes.expect("resynchronised");
    assert_eq!(changes.vanished, set(&gone));
    let changed: Vec<u32> = changes.changed.iter().map(|m| m.uid).collect();
    assert_eq!(changed, [uids[4], uids[8], added], "{changes:?}");

    // The same asked of the open mailbox, with the whole metadata.
    let changes = c.fetch_changes(&UidSet::all(), mod_seq).await.expect("UID FETCH CHANGEDSINCE VANISHED");
    assert_eq!(changes.vanished, set(&gone));
    let got: Vec<(u32, BTreeSet<Flag>, Option<u64>)> =
        changes.changed.iter().map(|m| (m.uid, flags(m), m.size)).collect();
    assert_eq!(
        got,
        [
            (uids[4], BTreeSet::from([Flag::Flagged]), Some(message(5).len() as u64)),
            (uids[8], BTreeSet::from([Flag::Seen, Flag::Keyword("$Label".into())]), Some(message(9).len() as u64)),
            (added, BTreeSet::new(), Some(message(11).len() as u64)),
        ]
    );
    assert!(changes.changed.iter().all(|m| m.internal_date.is_some()));

    // Nothing changed since the newest mod-sequence.
    let now = info.highest_modseq.expect("HIGHESTMODSEQ");
    let params = QresyncParams { uid_validity, mod_seq: now, known_uids: Some(&known) };
    let (_, changes) = c.examine_qresync(&folder, params).await.expect("EXAMINE QRESYNC");
    assert_eq!(changes.expect("resynchronised"), bma_imap::QresyncChanges::default());

    // A stale UIDVALIDITY: the server ignores QRESYNC, the caller sees it.
    let params = QresyncParams { uid_validity: uid_validity.wrapping_sub(1).max(1), mod_seq, known_uids: None };
    let (info, changes) = c.examine_qresync(&folder, params).await.expect("EXAMINE QRESYNC");
    assert_eq!((info.uid_validity, changes), (uid_validity, None));
    c.logout().await.expect("LOGOUT");
}

#[tokio::test]
async fn expunges_while_the_mailbox_is_open_are_collected_and_break_nothing() {
    let auth = new_user("open");
    let folder = MailboxName::new("Source");
    let mut c = connect(&auth).await;
    c.create(&folder).await.expect("CREATE");
    let uids = append(&mut c, &folder, 1, 6).await;
    let before = c.examine(&folder).await.expect("EXAMINE");
    let (uid_validity, mod_seq) = (before.uid_validity, before.highest_modseq.expect("HIGHESTMODSEQ"));
    let params = QresyncParams { uid_validity, mod_seq, known_uids: None };
    let (_, changes) = c.examine_qresync(&folder, params).await.expect("EXAMINE QRESYNC");
    assert_eq!(changes, Some(bma_imap::QresyncChanges::default()));

    // Expunged by another connection while this one has the mailbox open:
    // Dovecot tells with `* VANISHED uid` (no EARLIER) at the next command.
    change(&auth, &folder, &[uids[0]], uids[1], uids[2]).await;
    let mut listed = Vec::new();
    {
        let mut s = c.fetch_meta(&UidSet::all(), None).await.expect("UID FETCH");
        while let Some(m) = s.next().await.expect("meta") {
            listed.push(m.uid);
        }
    }
    // The session still sees the message until it is told (Dovecot tells
    // after the FETCH responses): listed or not, the stream ends cleanly.
    assert!(listed == uids || listed == uids[1..], "{listed:?}");

    change(&auth, &folder, &[uids[3]], uids[1], uids[2]).await;
    let changes = c.fetch_changes(&UidSet::all(), mod_seq).await.expect("UID FETCH CHANGEDSINCE VANISHED");
    assert_eq!(changes.vanished, set(&[uids[0], uids[3]]));
    let changed: Vec<u32> = changes.changed.iter().map(|m| m.uid).collect();
    assert_eq!(changed, [uids[1], uids[2]]);

    // And an APPEND pipeline on the same connection, with an expunge pending.
    change(&auth, &folder, &[uids[4]], uids[1], uids[2]).await;
    let other = MailboxName::new("Other");
    c.create(&other).await.expect("CREATE");
    assert_eq!(append(&mut c, &other, 1, 3).await.len(), 3);
    let changes = c.fetch_changes(&UidSet::all(), mod_seq).await.expect("UID FETCH CHANGEDSINCE VANISHED");
    assert_eq!(changes.vanished, set(&[uids[0], uids[3], uids[4]]));
    c.logout().await.expect("LOGOUT");
}

#[tokio::test]
async fn scattered_expunges_stay_ranges_down_to_an_empty_folder() {
    let auth = new_user("scattered");
    let folder = MailboxName::new("Source");
    let mut c = connect(&auth).await;
    c.create(&folder).await.expect("CREATE");
    let bodies: Vec<Vec<u8>> = (1..=60).map(message).collect();
    let mut uids = Vec::new();
    {
        let mut p = c.append_pipeline(&folder);
        for (i, body) in bodies.iter().enumerate() {
            p.push(i as u64, AppendMessage { body, flags: &[], internal_date: None }).await.expect("APPEND");
        }
        for d in p.finish().await.expect("APPENDs") {
            uids.push(d.result.expect("appended").expect("APPENDUID").uid);
        }
    }
    let before = c.examine(&folder).await.expect("EXAMINE");
    let (uid_validity, mod_seq) = (before.uid_validity, before.highest_modseq.expect("HIGHESTMODSEQ"));
    c.logout().await.expect("LOGOUT");
    let known = set(&uids);

    // Every other message: 30 ranges of one UID each.
    let odd: Vec<u32> = uids.iter().copied().step_by(2).collect();
    let mut other = connect(&auth).await;
    other.select(&folder).await.expect("SELECT");
    other.uid_store(&set(&odd), StoreMode::Add, &[Flag::Deleted]).await.expect("STORE");
    other.uid_expunge(&set(&odd)).await.expect("UID EXPUNGE");
    let mut c = connect(&auth).await;
    let params = QresyncParams { uid_validity, mod_seq, known_uids: Some(&known) };
    let (info, changes) = c.examine_qresync(&folder, params).await.expect("EXAMINE QRESYNC");
    let changes = changes.expect("resynchronised");
    assert_eq!(info.exists, 30);
    assert_eq!((changes.vanished.ranges().len(), changes.vanished.count()), (30, 30));
    assert_eq!(changes.vanished, set(&odd));
    assert!(changes.changed.is_empty(), "{changes:?}");

    // All of them: the folder is empty, the answer is one range.
    other.uid_store(&UidSet::all(), StoreMode::Add, &[Flag::Deleted]).await.expect("STORE");
    other.uid_expunge(&UidSet::all()).await.expect("UID EXPUNGE");
    other.logout().await.expect("LOGOUT");
    let (info, changes) = c.examine_qresync(&folder, params).await.expect("EXAMINE QRESYNC");
    assert_eq!(info.exists, 0);
    assert_eq!(changes.expect("resynchronised").vanished, known);
    assert_eq!(known.ranges().len(), 1);
    let changes = c.fetch_changes(&UidSet::all(), mod_seq).await.expect("UID FETCH CHANGEDSINCE VANISHED");
    assert_eq!((changes.vanished, changes.changed), (known, Vec::new()));
    c.logout().await.expect("LOGOUT");
}
