//! Helpers of the copy-engine tests (`tests/sync*.rs`): log in to a lab
//! mailbox, a throwaway sync state, `bma sync` as a command line, the
//! message-by-message comparison of a source and its copy (SHA-256 of the
//! body, flags, INTERNALDATE), and a TCP relay that plays a server
//! restarting.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use bma_imap::{Auth, Client, MailboxName, UidSet};
use bma_store::Store;
use bma_sync::{Endpoint, Summary};
use sha2::{Digest, Sha256};

/// A logged-in connection to `e`.
pub async fn client(e: &Endpoint) -> Client {
    let mut c = Client::connect(&e.config).await.expect("connect");
    c.login(&e.auth).await.expect("login");
    c
}

/// A sync state of its own: a SQLite file in a temporary directory (kept
/// while the directory is).
pub async fn state() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("sync.db").display())).await.expect("state");
    (dir, store)
}

/// `bma sync` from `source` to `target` as an operator types it, in plain
/// IMAP (the lab): each side's password in a file under `dir` (a master
/// user as `--*-admin`), the state in `dir/state.db`. More arguments may
/// be added.
pub fn sync_command(source: &Endpoint, target: &Endpoint, dir: &Path) -> Command {
    let mut c = Command::new(crate::bma_bin());
    c.args(["sync", "--tls", "none"]);
    for (side, e) in [("source", source), ("target", target)] {
        let file = dir.join(format!("{side}.pw"));
        let password = match &e.auth {
            Auth::Login { user, password } => {
                c.args([format!("--{side}-user"), user.clone()]);
                password
            }
            Auth::Plain { authzid: Some(user), authcid, password } => {
                c.args([format!("--{side}-user"), user.clone(), format!("--{side}-admin"), authcid.clone()]);
                password
            }
            other => unreachable!("the lab's users log in with LOGIN or a master user: {other:?}"),
        };
        // With a newline at the end, as `echo` and editors write it.
        std::fs::write(&file, format!("{}\n", password.expose())).expect("write a password file");
        c.arg(format!("--{side}")).arg(format!("imap://{}:{}", e.config.host, e.config.port));
        c.arg(format!("--{side}-password-file")).arg(file);
    }
    c.arg("--state").arg(dir.join("state.db"));
    c
}

/// Polls `folder` on `c` (NOOP, then STATUS: some servers count stale
/// without the NOOP) until it holds at least `n` messages or `limit` has
/// passed; returns how many it holds. To kill a copy mid-way.
pub async fn wait_for_messages(c: &mut Client, folder: &str, n: u32, limit: std::time::Duration) -> u32 {
    let start = std::time::Instant::now();
    loop {
        c.noop().await.expect("noop");
        let held = c.status(&MailboxName::new(folder)).await.expect("status").messages.unwrap_or(0);
        if held >= n || start.elapsed() > limit {
            return held;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// SHA-256 of `body`, in hexadecimal.
pub fn sha256(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// A message as compared: SHA-256 of the body, flags (settable, sorted), INTERNALDATE.
pub type Fingerprint = (String, String, i64);

/// Every message of `folder`, sorted.
pub async fn fingerprints(c: &mut Client, folder: &str) -> Vec<Fingerprint> {
    let info = c.examine(&MailboxName::new(folder)).await.unwrap_or_else(|e| panic!("examine {folder}: {e}"));
    let mut out = Vec::new();
    if info.exists > 0 {
        let mut st = c.fetch_bodies(&UidSet::all()).await.expect("fetch");
        while let Some(m) = st.next().await.expect("fetch") {
            let flags = bma_sync::canonical_flags(m.flags.as_deref().unwrap_or(&[]));
            let date = m.internal_date.map(|d| d.0.unix_timestamp()).unwrap_or_default();
            out.push((sha256(&m.body), flags, date));
        }
    }
    out.sort();
    out
}

/// Every message of `folder` by UID.
pub async fn fingerprints_by_uid(c: &mut Client, folder: &str) -> std::collections::BTreeMap<u32, Fingerprint> {
    let info = c.examine(&MailboxName::new(folder)).await.unwrap_or_else(|e| panic!("examine {folder}: {e}"));
    let mut out = std::collections::BTreeMap::new();
    if info.exists > 0 {
        let mut st = c.fetch_bodies(&UidSet::all()).await.expect("fetch");
        while let Some(m) = st.next().await.expect("fetch") {
            let flags = bma_sync::canonical_flags(m.flags.as_deref().unwrap_or(&[]));
            let date = m.internal_date.map(|d| d.0.unix_timestamp()).unwrap_or_default();
            out.insert(m.uid, (sha256(&m.body), flags, date));
        }
    }
    out
}

/// Compares every selectable source folder with the target folder the
/// summary says it went to, message by message: a source folder missing
/// from the summary, or two sharing one target folder, fail.
pub async fn assert_same(source: &Endpoint, target: &Endpoint, summary: &Summary) {
    let (mut src, mut tgt) = (client(source).await, client(target).await);
    let list = src.list().await.expect("list");
    let mut targets = BTreeSet::new();
    for m in list.iter().filter(|m| m.selectable()) {
        let name = m.name.name().into_owned();
        let f = summary.folders.iter().find(|f| f.source == name).unwrap_or_else(|| panic!("{name} not copied"));
        assert!(targets.insert(f.target.clone()), "two source folders in {}", f.target);
        let want = fingerprints(&mut src, &name).await;
        assert_eq!(fingerprints(&mut tgt, &f.target).await, want, "folder {name} -> {}", f.target);
    }
}

/// A TCP relay in front of a lab server that can be "restarted": every
/// connection through it is cut and, for a while, new ones are refused.
pub struct Relay {
    /// The port it listens on.
    pub port: u16,
    /// Send a duration: the "server" is down that long.
    pub restart: tokio::sync::mpsc::Sender<std::time::Duration>,
}

/// A relay to `upstream` (host, port) on a port of its own.
pub async fn relay(upstream: (String, u16)) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::time::Duration>(1);
    tokio::spawn(async move {
        let mut listener = Some(listener);
        let mut conns: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        loop {
            let accept = async {
                match &listener {
                    Some(l) => l.accept().await.ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                down = rx.recv() => {
                    let Some(down) = down else { return };
                    // The "server" goes away: connections cut, the port closed.
                    drop(listener.take());
                    for c in conns.drain(..) {
                        c.abort();
                    }
                    tokio::time::sleep(down).await;
                    listener = Some(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("rebind"));
                }
                Some((mut inbound, _)) = accept => {
                    let upstream = upstream.clone();
                    conns.push(tokio::spawn(async move {
                        if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        }
                    }));
                }
            }
        }
    });
    Relay { port, restart: tx }
}
