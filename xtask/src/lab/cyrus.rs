//! Cyrus IMAP 3.6 of the lab, run from Debian's unpacked packages: two
//! instances of one software, one per namespace setup (`cyrus`: `.` and
//! `INBOX.`; `cyrus-unix`: `/` and no prefix), sharing one sasldb.
//!
//! Rules: configs are rendered from `lab/cyrus/*.in` into
//! `target/lab/cyrus/NAME/`; `master` is started as root and drops to the
//! lab's mail user (`cyrus_user`); users are SASL users in
//! `target/lab/cyrus/sasldb2` (real passwords, `saslpasswd2 -f`), and their
//! mailboxes are created by the admin over IMAP (`CREATE user.NAME`) on every
//! instance, at `adduser` and again at each start (idempotent). `munge8bit`
//! stays at its default: the tests must see what it alters. Cyrus logs to
//! syslog (none in the lab); `master.log` holds its standard error only.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::dovecot::{chown_tree, mail_owner, write_atomically};
use super::foreign::{self, ForeignServer};
use super::{HOST, MAIL_USER, MASTER_PASSWORD, MASTER_USER, Paths, install, proc, render};

/// Cyrus' `servername`, also the SASL realm of the admin (who has no domain).
const SERVERNAME: &str = "localhost";

/// Subdirectories of `configdirectory` that Cyrus expects to exist.
const CONFIG_SUBDIRS: [&str; 9] = ["db", "proc", "socket", "log", "msg", "user", "quota", "sieve", "lock"];

/// State directory of one Cyrus instance.
pub fn dir(paths: &Paths, s: ForeignServer) -> PathBuf {
    paths.lab.join("cyrus").join(s.name())
}

/// Its rendered `imapd.conf`.
pub fn imapd_conf(paths: &Paths, s: ForeignServer) -> PathBuf {
    dir(paths, s).join("imapd.conf")
}

/// Its master's standard error (Cyrus logs to syslog otherwise).
pub fn log(paths: &Paths, s: ForeignServer) -> PathBuf {
    dir(paths, s).join("master.log")
}

fn cyrus_conf(paths: &Paths, s: ForeignServer) -> PathBuf {
    dir(paths, s).join("cyrus.conf")
}

fn pid_file(paths: &Paths, s: ForeignServer) -> PathBuf {
    dir(paths, s).join("master.pid")
}

/// The SASL password database of both instances.
fn sasldb(paths: &Paths) -> PathBuf {
    paths.lab.join("cyrus").join("sasldb2")
}

fn bin(root: &Path) -> PathBuf {
    root.join("usr/lib/cyrus/bin")
}

/// Where the unpacked `libcyrus*.so` live (Debian's multiarch directory).
fn lib_dir(root: &Path) -> PathBuf {
    root.join("usr/lib").join(format!("{}-linux-gnu", std::env::consts::ARCH))
}

/// `(altnamespace, unixhierarchysep)` of an instance.
fn namespace(s: ForeignServer) -> (bool, bool) {
    match s {
        ForeignServer::CyrusUnix => (true, true),
        _ => (false, false),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Settings of note for `lab.json`.
pub fn settings(s: ForeignServer) -> BTreeMap<&'static str, String> {
    let (alt, unix) = namespace(s);
    BTreeMap::from([
        ("altnamespace", yes_no(alt).to_string()),
        ("unixhierarchysep", yes_no(unix).to_string()),
        ("munge8bit", "yes (default): 8-bit header bytes become X on APPEND".to_string()),
        ("virtdomains", "userid".to_string()),
        ("sasldb", "shared by both Cyrus instances".to_string()),
        (
            "dotted_local_part",
            if unix {
                "fine".to_string()
            } else {
                "LIST shows such a user nothing (Cyrus 3.6 bug with `.` as separator): use addresses without a dot"
                    .to_string()
            },
        ),
    ])
}

/// The admin's name for a user's mailbox, as a pattern for `lab.json`.
pub fn user_mailbox_pattern(s: ForeignServer) -> String {
    match namespace(s) {
        (_, true) => "user/{local}@{domain}".to_string(),
        (_, false) => "user.{local}@{domain} (each . of {local} written ^)".to_string(),
    }
}

/// The admin's name for the mailbox of `address` (`local@domain`).
pub fn user_mailbox(s: ForeignServer, address: &str) -> Result<String> {
    let (local, domain) = address.split_once('@').with_context(|| format!("{address:?} has no domain"))?;
    Ok(match namespace(s) {
        (_, true) => format!("user/{local}@{domain}"),
        (_, false) => format!("user.{}@{domain}", local.replace('.', "^")),
    })
}

/// Renders the configs, creates the directories and the admin's password.
fn prepare(paths: &Paths, root: &Path, s: ForeignServer) -> Result<()> {
    let dir = dir(paths, s);
    let config = dir.join("config");
    let spool = dir.join("spool");
    let (uid, gid) = mail_owner()?;
    // a recreated system user may have another uid: take the tree back
    let take_back = dir.exists() && std::os::unix::fs::MetadataExt::uid(&fs::metadata(&dir)?) != uid;
    let mut owned = vec![dir.clone(), config.clone(), spool.clone()];
    owned.extend(CONFIG_SUBDIRS.iter().map(|d| config.join(d)));
    for d in &owned {
        fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        std::os::unix::fs::chown(d, Some(uid), Some(gid))?;
    }
    if take_back {
        chown_tree(&dir)?;
    }
    saslpasswd(paths, root, MASTER_USER, Some(SERVERNAME), MASTER_PASSWORD)?;
    let (cert, key) = foreign::certificate(paths)?;
    let (alt, unix) = namespace(s);
    let conf = render(
        &paths.templates.join("cyrus/imapd.conf.in"),
        &[
            ("INSTANCE", s.name().to_string()),
            ("CONFIG_DIR", config.display().to_string()),
            ("SPOOL_DIR", spool.display().to_string()),
            ("SERVERNAME", SERVERNAME.to_string()),
            ("MAIL_USER", MAIL_USER.to_string()),
            ("ALTNAMESPACE", yes_no(alt).to_string()),
            ("UNIXHIERARCHYSEP", yes_no(unix).to_string()),
            ("ADMIN", MASTER_USER.to_string()),
            ("SASLDB", sasldb(paths).display().to_string()),
            ("TLS_CERT", cert.display().to_string()),
            ("TLS_KEY", key.display().to_string()),
        ],
    )?;
    write_atomically(&imapd_conf(paths, s), &conf)?;
    let services = render(
        &paths.templates.join("cyrus/cyrus.conf.in"),
        &[
            ("INSTANCE", s.name().to_string()),
            ("BIN", bin(root).display().to_string()),
            ("IMAPD_CONF", imapd_conf(paths, s).display().to_string()),
            ("HOST", HOST.to_string()),
            ("PORT", s.imap_port().to_string()),
        ],
    )?;
    write_atomically(&cyrus_conf(paths, s), &services)?;
    Ok(())
}

/// Sets a SASL password in the lab's sasldb (created if missing), readable
/// by the mail user only.
fn saslpasswd(paths: &Paths, root: &Path, user: &str, realm: Option<&str>, password: &str) -> Result<()> {
    let db = sasldb(paths);
    if let Some(parent) = db.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut cmd = Command::new(root.join("usr/sbin/saslpasswd2"));
    cmd.arg("-f").arg(&db).args(["-p", "-c"]);
    if let Some(realm) = realm {
        cmd.args(["-u", realm]);
    }
    cmd.arg(user);
    proc::run_with_input(&mut cmd, password.as_bytes())
        .with_context(|| format!("cannot set the password of {user}"))?;
    let (uid, gid) = mail_owner()?;
    std::os::unix::fs::chown(&db, Some(uid), Some(gid))?;
    fs::set_permissions(&db, fs::Permissions::from_mode(0o640))?;
    Ok(())
}

/// The users of the sasldb, except the admin (`user@domain` each).
fn users(paths: &Paths, root: &Path) -> Result<Vec<String>> {
    let listed = proc::run(Command::new(root.join("usr/sbin/sasldblistusers2")).arg("-f").arg(sasldb(paths)))?;
    let admin = format!("{MASTER_USER}@{SERVERNAME}");
    Ok(listed
        .lines()
        .filter_map(|l| l.split_once(':').map(|(user, _)| user.trim().to_string()))
        .filter(|u| *u != admin && u.contains('@'))
        .collect())
}

fn running(paths: &Paths, s: ForeignServer) -> Option<u32> {
    proc::read_pid(&pid_file(paths, s)).filter(|pid| proc::alive(*pid))
}

/// Starts one instance (or leaves it running), waits for it, and makes sure
/// every sasldb user has a mailbox there.
pub fn start(paths: &Paths, root: &Path, s: ForeignServer) -> Result<()> {
    prepare(paths, root, s)?;
    if running(paths, s).is_some() {
        println!("{}: already running (a changed config needs `foreign down` first)", s.name());
    } else {
        let log = log(paths, s);
        proc::run_daemon(
            Command::new(bin(root).join("master"))
                .env("LD_LIBRARY_PATH", lib_dir(root))
                .arg("-C")
                .arg(imapd_conf(paths, s))
                .arg("-M")
                .arg(cyrus_conf(paths, s))
                .arg("-p")
                .arg(pid_file(paths, s))
                .arg("-d")
                .arg("-L")
                .arg(&log),
            &log,
        )
        .with_context(|| format!("cannot start {}", s.name()))?;
        println!(
            "{}: started (imap {}, separator {:?}, prefix {:?})",
            s.name(),
            s.imap_port(),
            s.separator(),
            s.prefix()
        );
    }
    foreign::wait(paths, s)?;
    for user in users(paths, root)? {
        create_mailbox(s, &user)?;
    }
    Ok(())
}

/// Stops one instance and every process of its group; tolerant of an
/// instance already stopped.
pub fn stop(paths: &Paths, s: ForeignServer) {
    let Some(pid) = running(paths, s) else {
        println!("{}: not running", s.name());
        return;
    };
    proc::terminate_group(pid, Duration::from_secs(10));
    let _ = fs::remove_file(pid_file(paths, s));
    println!("{}: stopped", s.name());
}

/// The user's mailbox on one instance, created by the admin unless it exists.
fn create_mailbox(s: ForeignServer, address: &str) -> Result<()> {
    let mailbox = user_mailbox(s, address)?;
    let answers = foreign::imap_as_admin(s.imap_port(), &[format!("CREATE {}", foreign::quote(&mailbox))])?;
    let answer = answers.first().map_or("", String::as_str);
    if !answer.starts_with("OK") && !answer.contains("already exists") {
        bail!("{}: CREATE {mailbox} refused: {answer}", s.name());
    }
    Ok(())
}

/// `lab foreign adduser cyrus ADDRESS PASSWORD`: the SASL user, and its
/// mailbox on every running instance (the others create it at their start).
pub fn adduser(paths: &Paths, address: &str, password: &str) -> Result<()> {
    let root = install::install_foreign(paths)?;
    saslpasswd(paths, &root, address, None, password)?;
    for s in [ForeignServer::Cyrus, ForeignServer::CyrusUnix] {
        if running(paths, s).is_some() && proc::port_open(s.imap_port()) {
            create_mailbox(s, address)?;
            println!("{address}: user and mailbox {} on {}", user_mailbox(s, address)?, s.name());
        } else {
            println!("{address}: user added; its mailbox on {} is created when it starts", s.name());
        }
    }
    Ok(())
}
