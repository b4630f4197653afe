//! Courier-IMAP 5.0 of the lab, run from Debian's unpacked packages:
//! `authdaemond` with `authuserdb`, and `imapd` behind `couriertcpd` on its
//! own port, Maildirs under `target/lab/courier/mail/DOMAIN/LOCAL`.
//!
//! Rules: Courier's paths are compiled in (`/etc/courier`, the socket
//! `/run/courier/authdaemon/socket`, modules in `/usr/lib/courier-authlib`),
//! so both daemons run in their own mount namespace (`unshare --mount`, as
//! root) where those three paths are bound to `target/lab/courier/etc`,
//! `target/lab/courier/run` and the unpacked modules; on the host they are
//! only empty mount points. The userdb is built by the unpacked
//! `makeuserdb`; imapd runs as the lab's mail user (the userdb's uid).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::dovecot::{hash, mail_owner, write_atomically};
use super::foreign::{self, ForeignServer};
use super::{HOST, Paths, install, proc, render};

/// Host paths compiled into Courier, bound inside its mount namespace.
const MOUNT_POINTS: [&str; 3] = ["/etc/courier", "/run/courier", "/usr/lib/courier-authlib"];

/// Binds the lab's directories (`$1`..`$3`) over the compiled-in paths,
/// then runs the rest of the arguments.
const NAMESPACE_SCRIPT: &str = r#"mount --bind "$1" /etc/courier && mount --bind "$2" /run/courier && mount --bind "$3" /usr/lib/courier-authlib && shift 3 && exec "$@""#;

/// State directory of Courier.
pub fn dir(paths: &Paths) -> PathBuf {
    paths.lab.join("courier")
}

/// imapd's log (couriertcpd's standard error: logins, disconnections).
pub fn log(paths: &Paths) -> PathBuf {
    dir(paths).join("imapd.log")
}

fn etc(paths: &Paths) -> PathBuf {
    dir(paths).join("etc")
}

fn run_dir(paths: &Paths) -> PathBuf {
    dir(paths).join("run")
}

fn mail_root(paths: &Paths) -> PathBuf {
    dir(paths).join("mail")
}

fn userdb(paths: &Paths) -> PathBuf {
    etc(paths).join("userdb")
}

fn auth_log(paths: &Paths) -> PathBuf {
    dir(paths).join("authdaemond.log")
}

fn auth_pid(paths: &Paths) -> PathBuf {
    dir(paths).join("authdaemond.pid")
}

fn imapd_pid(paths: &Paths) -> PathBuf {
    dir(paths).join("imapd.pid")
}

/// Settings of note for `lab.json`.
pub fn settings() -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("auth", "authdaemond + authuserdb (SHA512-CRYPT); no admin, no proxy login".to_string()),
        ("IMAP_EMPTYTRASH", "empty (Debian's Trash:7 purge is off)".to_string()),
        ("maildirs", "mail/{domain}/{local}".to_string()),
    ])
}

/// `unshare` running `program` with Courier's paths bound to the lab's.
fn in_namespace(paths: &Paths, root: &Path, program: &Path) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT, "sh"])
        .arg(etc(paths))
        .arg(run_dir(paths))
        .arg(root.join("usr/lib/courier-authlib"))
        .arg(program);
    cmd
}

/// Creates the directories and renders the configs (and the userdb, empty,
/// if there is none yet).
fn prepare(paths: &Paths, root: &Path) -> Result<()> {
    for d in [dir(paths), etc(paths), etc(paths).join("shared"), run_dir(paths).join("authdaemon")] {
        fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    fs::create_dir_all(mail_root(paths))?;
    let (uid, gid) = mail_owner()?;
    std::os::unix::fs::chown(mail_root(paths), Some(uid), Some(gid))?;
    for m in MOUNT_POINTS {
        fs::create_dir_all(m).with_context(|| format!("cannot create the mount point {m}"))?;
    }
    let rc =
        render(&paths.templates.join("courier/authdaemonrc.in"), &[("RUN_DIR", run_dir(paths).display().to_string())])?;
    write_atomically(&etc(paths).join("authdaemonrc"), &rc)?;
    // Debian's makeuserdb, pointed at the unpacked makedatprog.
    let script = fs::read_to_string(root.join("usr/sbin/makeuserdb"))?;
    let compiled = "$makedat=\"/usr/lib/courier/courier-authlib/makedatprog\";";
    if !script.contains(compiled) {
        bail!("unexpected makeuserdb script in {}: no {compiled}", root.display());
    }
    let unpacked = root.join("usr/lib/courier/courier-authlib/makedatprog");
    let script = script.replace(compiled, &format!("$makedat=\"{}\";", unpacked.display()));
    write_atomically(&dir(paths).join("makeuserdb"), &script)?;
    if !userdb(paths).exists() {
        write_userdb(paths, "")?;
    }
    Ok(())
}

/// Writes the userdb source (mode 0600: makeuserdb refuses any other) and
/// rebuilds `userdb.dat`, which authuserdb reads at each login.
fn write_userdb(paths: &Paths, text: &str) -> Result<()> {
    let file = userdb(paths);
    let tmp = file.with_extension("tmp~");
    fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    fs::rename(&tmp, &file)?;
    proc::run(Command::new("perl").arg(dir(paths).join("makeuserdb")).arg("-f").arg(&file))
        .context("makeuserdb failed")?;
    Ok(())
}

/// imapd's environment, from `lab/courier/imapd.env.in`.
fn imapd_env(paths: &Paths, root: &Path) -> Result<Vec<(String, String)>> {
    let text = render(
        &paths.templates.join("courier/imapd.env.in"),
        &[
            ("LIB_DIR", root.join("usr/lib").display().to_string()),
            ("SHARED_INDEX", etc(paths).join("shared/index").display().to_string()),
        ],
    )?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn running(pid_file: &Path) -> Option<u32> {
    proc::read_pid(pid_file).filter(|pid| proc::alive(*pid))
}

/// Starts authdaemond and imapd (or leaves them running) and waits for both.
pub fn start(paths: &Paths, root: &Path) -> Result<()> {
    prepare(paths, root)?;
    let socket = run_dir(paths).join("authdaemon/socket");
    if running(&auth_pid(paths)).is_none() {
        let _ = fs::remove_file(&socket);
        let mut cmd = in_namespace(paths, root, &root.join("usr/lib/courier/courier-authlib/authdaemond"));
        cmd.env("LD_LIBRARY_PATH", root.join("usr/lib"));
        proc::spawn_background(&mut cmd, &auth_log(paths), &auth_pid(paths))?;
        let start = Instant::now();
        while !socket.exists() {
            if start.elapsed() > Duration::from_secs(10) || running(&auth_pid(paths)).is_none() {
                bail!("courier authdaemond did not start{}", proc::tail(&auth_log(paths), 10));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let s = ForeignServer::Courier;
    if running(&imapd_pid(paths)).is_none() {
        let mut cmd = in_namespace(paths, root, &root.join("usr/sbin/couriertcpd"));
        cmd.env_clear()
            .envs(imapd_env(paths, root)?)
            .arg(format!("-address={HOST}"))
            .args(["-maxprocs=40", "-maxperip=40", "-nodnslookup", "-noidentlookup"])
            .arg(s.imap_port().to_string())
            .arg(root.join("usr/lib/courier/courier/imaplogin"))
            .arg(root.join("usr/bin/imapd"))
            .arg("Maildir");
        proc::spawn_background(&mut cmd, &log(paths), &imapd_pid(paths))?;
        println!("courier: started (imap {}, separator {:?}, prefix {:?})", s.imap_port(), s.separator(), s.prefix());
    } else {
        println!("courier: already running");
    }
    foreign::wait(paths, s)
}

/// Stops imapd and authdaemond with every process of their groups.
pub fn stop(paths: &Paths) {
    let mut any = false;
    for pid_file in [imapd_pid(paths), auth_pid(paths)] {
        if let Some(pid) = running(&pid_file) {
            proc::terminate_group(pid, Duration::from_secs(10));
            any = true;
        }
        let _ = fs::remove_file(&pid_file);
    }
    println!("courier: {}", if any { "stopped" } else { "not running" });
}

/// `lab foreign adduser courier ADDRESS PASSWORD`: a userdb entry (uid of
/// the mail user, SHA512-CRYPT password) and its Maildir.
pub fn adduser(paths: &Paths, address: &str, password: &str) -> Result<()> {
    let root = install::install_foreign(paths)?;
    prepare(paths, &root)?;
    let (local, domain) = address.split_once('@').with_context(|| format!("{address:?} has no domain"))?;
    let maildir = mail_root(paths).join(domain).join(local);
    foreign::mail_dir(&mail_root(paths).join(domain))?;
    for d in [maildir.clone(), maildir.join("cur"), maildir.join("new"), maildir.join("tmp")] {
        foreign::mail_dir(&d)?;
    }
    let (uid, gid) = mail_owner()?;
    let crypt = hash(address, password)?.replace("{SHA512-CRYPT}", "");
    let entry =
        format!("{address}\tuid={uid}|gid={gid}|home={home}|mail={home}|systempw={crypt}", home = maildir.display());
    let text = fs::read_to_string(userdb(paths)).unwrap_or_default();
    let prefix = format!("{address}\t");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match lines.iter_mut().find(|l| l.starts_with(&prefix)) {
        Some(existing) => *existing = entry,
        None => lines.push(entry),
    }
    let out = lines.join("\n") + "\n";
    if out != text {
        write_userdb(paths, &out)?;
    }
    println!("{address}: user and Maildir {} on courier", maildir.display());
    Ok(())
}
