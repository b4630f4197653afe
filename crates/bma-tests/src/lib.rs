//! Helpers shared by the integration tests: throw-away stores on both
//! backends, the `bma` binary and the commands that run it, the workspace
//! root, the lab's users and mailboxes.
//!
//! PostgreSQL tests use the machine's service (`BMA_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`): each test gets a
//! database of its own, dropped when the test ends. They are never skipped
//! silently: set `BMA_TEST_SKIP_POSTGRES=1` to leave them out on purpose.

pub mod browser;
pub mod copy;
pub mod engine;
pub mod foreign;
pub mod provider;
pub mod sieve;
pub mod smtp;
pub mod switch;
pub mod web;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use bma_store::Store;
use sqlx::Connection;

/// A mailbox address of the default campaign (any case), as the store's
/// APIs take it.
pub fn addr(text: &str) -> bma_core::Address {
    bma_core::Address::parse(text, &bma_core::AddressRule::default()).expect("an address of the campaign")
}

/// The backends a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL service.
    Postgres,
}

/// A database that exists for one test.
pub struct TestDb {
    /// URL to give to `Store::open` or `BMA_DATABASE_URL`.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("BMA_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether PostgreSQL tests were explicitly turned off.
pub fn postgres_skipped() -> bool {
    std::env::var("BMA_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    /// Creates an empty database on `backend`.
    pub async fn new(backend: TestBackend) -> TestDb {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("bma.db").display());
                TestDb { url, _dir: Some(dir), pg_name: None }
            }
            TestBackend::Postgres => {
                sqlx::any::install_default_drivers();
                let name = format!(
                    "bma_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
                );
                let admin = admin_url();
                let mut conn = sqlx::AnyConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed (or BMA_TEST_SKIP_POSTGRES=1): {e}"));
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                TestDb { url: format!("{base}/{name}"), _dir: None, pg_name: Some(name) }
            }
        }
    }

    /// Opens the store on this database.
    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    /// Drops a PostgreSQL database (SQLite files go with their directory).
    pub async fn drop_db(self) {
        if let Some(name) = &self.pg_name {
            let mut conn = sqlx::AnyConnection::connect(&admin_url()).await.expect("connect");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut conn)
                .await
                .expect("drop test database");
        }
    }
}

/// Defines `mod <name> { sqlite, postgres }` tests running `async fn(TestBackend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::TestBackend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::postgres_skipped() {
                        eprintln!("PostgreSQL left out (BMA_TEST_SKIP_POSTGRES=1)");
                        return;
                    }
                    super::$name($crate::TestBackend::Postgres).await;
                }
            }
        )*
    };
}

/// Each test on both store backends with the lab's passwd-files and
/// transport table, and on SQLite with the lab's directory: both platform
/// backends pass the same suite.
#[macro_export]
macro_rules! on_every_platform_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::TestBackend::Sqlite, $crate::switch::Platforms::Files).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::postgres_skipped() {
                        eprintln!("PostgreSQL left out (BMA_TEST_SKIP_POSTGRES=1)");
                        return;
                    }
                    super::$name($crate::TestBackend::Postgres, $crate::switch::Platforms::Files).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite_ldap() {
                    super::$name($crate::TestBackend::Sqlite, $crate::switch::Platforms::Ldap).await;
                }
            }
        )*
    };
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The `bma` binary built for this test run (`cargo build` first: the
/// test command of the README does it).
pub fn bma_bin() -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let bin = target.join(profile).join("bma");
    assert!(bin.exists(), "{} is missing: run `cargo build -p bma` first", bin.display());
    bin
}

/// `bma <args>` in `dir` on the store at `url`, without a configuration
/// file and without presync (the environment is the whole configuration).
pub fn bma_command(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(bma_bin());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("BMA_CONFIG")
        .env("BMA_DATABASE_URL", url)
        .env("BMA_PRESYNC_ENABLED", "false");
    cmd
}

/// [`bma_command`] on the lab: mail through its Postfix (plain SMTP), the
/// legacy platform's IMAP with its `admin` user (password in
/// `dir/admin.password`), one wave (everyone's invitation deadline on
/// 2024-04-22). The bounce and team addresses are the caller's.
pub fn bma_lab_command(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut cmd = bma_command(dir, url, args);
    cmd.env("BMA_MAIL_SMTP_PORT", "2525")
        .env("BMA_MAIL_SMTP_TLS", "none")
        .env("BMA_MAIL_MESSAGE_ID_DOMAIN", "bma.test")
        .env("BMA_LEGACY_URL", "imap://127.0.0.1:10143")
        .env("BMA_LEGACY_TLS", "none")
        .env("BMA_LEGACY_ADMIN", "admin")
        .env("BMA_LEGACY_PASSWORD_FILE", dir.join("admin.password"))
        .env("BMA_CAMPAIGN_INVITATION_DEADLINE", "2024-04-22")
        // The forwarding audit before mail 1 has its own tests (forwarding_mail1, the demo).
        .env("BMA_AUDIT_FORWARDING_BEFORE_MAIL1", "false");
    cmd
}

/// Runs `cmd`; its stdout, or panics with its output when it fails.
pub fn output_ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("run bma");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `bma <args>` in `dir` with exactly `env` as its configuration (no
/// configuration file); its stdout, or panics with its output when it fails.
pub fn bma_with(dir: &Path, env: &[(String, String)], args: &[&str]) -> String {
    let out = Command::new(bma_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("BMA_CONFIG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run bma");
    assert!(
        out.status.success(),
        "bma {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab's state directory (`target/lab`).
pub fn lab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/lab")
}

/// Reads a JSON file the lab wrote (`lab.json`, `seed.json`), or fails
/// saying how to bring the lab up.
pub fn lab_file(name: &str) -> serde_json::Value {
    let path = lab_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} is missing: run `cargo xtask lab up && cargo xtask lab seed` first", path.display())
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Creates (or resets) a user on a lab platform (`legacy` or `new`) with
/// `cargo xtask lab adduser`, through the xtask binary named in lab.json.
pub fn lab_adduser(platform: &str, address: &str, password: &str) {
    lab_adduser_on("files", platform, address, password);
}

/// Creates (or resets) a user on a lab platform, on one of the lab's
/// backends (`files` or `ldap`), through the lab's own provisioning.
pub fn lab_adduser_on(backend: &str, platform: &str, address: &str, password: &str) {
    let lab = lab_file("lab.json");
    let exe = lab["xtask"].as_str().expect("lab.json names the xtask binary");
    let out = std::process::Command::new(exe)
        .args(["lab", "adduser", platform, address, password, "--backend", backend])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    assert!(out.status.success(), "lab adduser: {}", String::from_utf8_lossy(&out.stderr));
}

/// Creates (or resets) many users at once on a lab platform, all with `password`.
pub fn lab_addusers(platform: &str, addresses: &[String], password: &str) {
    lab_addusers_with(platform, addresses, password, &[]);
}

/// Like [`lab_addusers`], with per-user Dovecot settings (`KEY=VALUE`, `userdb_` fields).
pub fn lab_addusers_with(platform: &str, addresses: &[String], password: &str, userdb: &[&str]) {
    let Some((first, rest)) = addresses.split_first() else { return };
    let lab = lab_file("lab.json");
    let exe = lab["xtask"].as_str().expect("lab.json names the xtask binary");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["lab", "adduser", platform, first, password, "--backend", "files"]);
    for a in rest {
        cmd.args(["--also", a]);
    }
    for kv in userdb {
        cmd.args(["--userdb", kv]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    assert!(out.status.success(), "lab adduser: {}", String::from_utf8_lossy(&out.stderr));
}

/// How to reach a lab platform's IMAP server (`legacy` or `new`): plain
/// IMAP on loopback.
pub fn lab_imap_config(platform: &str) -> bma_imap::Config {
    let lab = lab_file("lab.json");
    let host = lab[platform]["host"].as_str().expect("host");
    let port = lab[platform]["imap_port"].as_u64().expect("port") as u16;
    bma_imap::Config::new(host, port).with_security(bma_imap::Security::None)
}

/// The lab's master user logging in on behalf of `user` (SASL PLAIN with
/// an authorization identity).
pub fn lab_master_for(user: &str) -> bma_imap::Auth {
    let lab = lab_file("lab.json");
    bma_imap::Auth::Plain {
        authzid: Some(user.to_owned()),
        authcid: lab["master_user"].as_str().expect("master").to_owned(),
        password: bma_imap::Secret::new(lab["master_password"].as_str().expect("password")),
    }
}

/// Every message body in `user`'s INBOX on a lab platform, read over IMAP
/// with the master user.
pub async fn lab_inbox(platform: &str, user: &str) -> Vec<Vec<u8>> {
    use bma_imap::{Client, MailboxName, UidSet};
    let mut c = Client::connect(&lab_imap_config(platform)).await.expect("connect");
    c.login(&lab_master_for(user)).await.expect("login");
    c.select(&MailboxName::new("INBOX")).await.expect("select");
    let mut out = Vec::new();
    {
        let mut bodies = c.fetch_bodies(&UidSet::all()).await.expect("fetch");
        while let Some(m) = bodies.next().await.expect("message") {
            out.push(m.body);
        }
    }
    let _ = c.logout().await;
    out
}

/// The bodies of our emails of `kind` (the Message-ID's first part:
/// `invitation`, `reminder`, `deadline_watch`…) in `user`'s legacy INBOX,
/// quoted-printable soft line breaks undone (a link may be wrapped).
pub async fn lab_mails_of(user: &str, kind: &str) -> Vec<String> {
    lab_inbox("legacy", user)
        .await
        .into_iter()
        .map(|b| String::from_utf8_lossy(&b).replace("=\r\n", ""))
        .filter(|b| b.contains(&format!("Message-ID: <{kind}.")))
        .collect()
}

/// A fresh OAuth 2.0 access token for `address`, accepted by the new lab
/// platform's IMAP (SASL XOAUTH2 / OAUTHBEARER) for `ttl_seconds` (1 to
/// 3600): `cargo xtask lab token`, through the xtask binary named in lab.json.
pub fn lab_token(address: &str, ttl_seconds: u32) -> String {
    let lab = lab_file("lab.json");
    let exe = lab["xtask"].as_str().expect("lab.json names the xtask binary");
    let out = std::process::Command::new(exe)
        .args(["lab", "token", address, "--ttl", &ttl_seconds.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    assert!(out.status.success(), "lab token: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("a UTF-8 token").trim().to_owned();
    assert!(!token.is_empty() && !token.contains(char::is_whitespace), "lab token printed no single token");
    token
}
