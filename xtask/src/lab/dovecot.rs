//! The two Dovecot instances (legacy and new): config, users, start/stop.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use sha_crypt::{PasswordHasher as _, ShaCrypt};

use super::{MAIL_USER, MASTER_PASSWORD, MASTER_USER, Paths, Platform, oidc, proc, render};

/// Directory for Dovecot's sockets and pid file. Unix socket paths are limited
/// to 108 bytes, so a deep workspace falls back to a short path under /run.
pub fn base_dir(paths: &Paths, p: Platform) -> PathBuf {
    let local = paths.platform(p).join("run");
    if local.as_os_str().len() <= 60 {
        local
    } else {
        PathBuf::from(format!("/run/bma-lab-{:08x}/{}", fnv(paths.lab.as_os_str().as_encoded_bytes()) as u32, p.name()))
    }
}

/// uid and gid of the mail storage owner.
pub fn mail_owner() -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == MAIL_USER {
            return Ok((f[2].parse()?, f[3].parse()?));
        }
    }
    bail!("system user {MAIL_USER} is missing: run `cargo xtask lab install`")
}

/// `chown -R` to the mail owner.
pub fn chown_tree(path: &Path) -> Result<()> {
    let (uid, gid) = mail_owner()?;
    fn walk(path: &Path, uid: u32, gid: u32) -> Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .with_context(|| format!("cannot chown {}", path.display()))?;
        let meta = fs::symlink_metadata(path)?;
        if meta.is_dir() {
            for entry in fs::read_dir(path)? {
                walk(&entry?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    walk(path, uid, gid)
}

/// Creates directories, the master passwd-file and renders dovecot.conf.
pub fn prepare(paths: &Paths, p: Platform) -> Result<()> {
    let dir = paths.platform(p);
    for d in [dir.clone(), dir.join("state"), paths.mail_root(p), paths.home_root(p)] {
        fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let (uid, gid) = mail_owner()?;
    for d in [paths.mail_root(p), paths.home_root(p)] {
        // a recreated system user may have another uid: take the tree back
        let meta = fs::metadata(&d)?;
        if std::os::unix::fs::MetadataExt::uid(&meta) != uid {
            chown_tree(&d)?;
        }
        std::os::unix::fs::chown(&d, Some(uid), Some(gid))?;
    }
    for file in [paths.users(p), paths.refused(p)] {
        if !file.exists() {
            write_atomically(&file, "")?;
        }
    }
    let master = format!("{MASTER_USER}:{}::::::\n", hash(MASTER_USER, MASTER_PASSWORD)?);
    if fs::read_to_string(paths.masters(p)).ok().as_deref() != Some(master.as_str()) {
        write_atomically(&paths.masters(p), &master)?;
    }
    let policy = fs::read_to_string(paths.templates.join(format!("dovecot/policy-{}.conf", p.name())))?;
    // Per-platform authentication: the new platform also takes OAuth 2.0 tokens.
    let auth_extra = render(
        &paths.templates.join(format!("dovecot/auth-{}.conf", p.name())),
        &[("OAUTH2_CONF", oauth2_conf(paths, p).display().to_string())],
    )?;
    if p == Platform::New {
        let conf = render(
            &paths.templates.join("dovecot/oauth2.conf.ext.in"),
            &[("INTROSPECTION_URL", oidc::introspection_url_for_dovecot())],
        )?;
        write_atomically(&oauth2_conf(paths, p), &conf)?;
    }
    let vars = [
        ("INSTANCE", p.name().to_string()),
        ("BASE_DIR", base_dir(paths, p).display().to_string()),
        ("STATE_DIR", dir.join("state").display().to_string()),
        ("LOG", paths.dovecot_log(p).display().to_string()),
        ("MAIL_ROOT", paths.mail_root(p).display().to_string()),
        ("HOME_ROOT", paths.home_root(p).display().to_string()),
        ("USERS", paths.users(p).display().to_string()),
        ("REFUSED", paths.refused(p).display().to_string()),
        ("LDAP_USERS", super::ldap::dovecot_args(paths, p, "users").display().to_string()),
        ("LDAP_REFUSED", super::ldap::dovecot_args(paths, p, "refused").display().to_string()),
        ("MASTERS", paths.masters(p).display().to_string()),
        ("MAIL_USER", MAIL_USER.to_string()),
        ("IMAP_PORT", p.imap_port().to_string()),
        ("SIEVE_PORT", p.dovecot_sieve_port().to_string()),
        ("LMTP_PORT", p.lmtp_port().to_string()),
        ("SUBMISSION_PORT", p.submission_port().to_string()),
        ("QUOTA", format!("{}M", p.quota_mb())),
        ("SIEVE_POLICY", policy.trim_end().to_string()),
        ("AUTH_EXTRA", auth_extra.trim_end().to_string()),
    ];
    super::ldap::write_dovecot_args(paths, p)?;
    let conf = render(&paths.templates.join("dovecot/dovecot.conf.in"), &vars)?;
    write_atomically(&paths.dovecot_conf(p), &conf)?;
    Ok(())
}

/// The oauth2 passdb's settings (`args` of its passdb; new platform only).
pub fn oauth2_conf(paths: &Paths, p: Platform) -> PathBuf {
    paths.platform(p).join("oauth2.conf.ext")
}

fn pid_file(paths: &Paths, p: Platform) -> PathBuf {
    base_dir(paths, p).join("master.pid")
}

/// Whether this instance's master process runs.
pub fn running(paths: &Paths, p: Platform) -> bool {
    proc::read_pid(&pid_file(paths, p)).is_some_and(proc::alive)
}

/// Starts the instance (it daemonizes), or reloads its config if it runs.
pub fn start(paths: &Paths, p: Platform) -> Result<()> {
    let conf = paths.dovecot_conf(p);
    if running(paths, p) {
        proc::run(Command::new("doveadm").arg("-c").arg(&conf).arg("reload"))
            .with_context(|| format!("cannot reload dovecot {}", p.name()))?;
        println!("dovecot {}: already running (config reloaded)", p.name());
        return Ok(());
    }
    proc::run_daemon(Command::new("dovecot").arg("-c").arg(&conf), &paths.dovecot_log(p)).with_context(|| {
        format!(
            "cannot start dovecot {}; see {}{}",
            p.name(),
            paths.dovecot_log(p).display(),
            proc::tail(&paths.dovecot_log(p), 10)
        )
    })?;
    println!(
        "dovecot {}: started (imap {}, managesieve {}, lmtp {})",
        p.name(),
        p.imap_port(),
        p.dovecot_sieve_port(),
        p.lmtp_port()
    );
    Ok(())
}

/// Stops the instance; tolerant of an instance already stopped.
pub fn stop(paths: &Paths, p: Platform) {
    let Some(pid) = proc::read_pid(&pid_file(paths, p)).filter(|pid| proc::alive(*pid)) else {
        println!("dovecot {}: not running", p.name());
        return;
    };
    let _ = proc::run(Command::new("dovecot").arg("-c").arg(paths.dovecot_conf(p)).arg("stop"));
    // `dovecot stop` only signals the master; wait for it to be gone.
    proc::terminate(pid, Duration::from_secs(5));
    println!("dovecot {}: stopped", p.name());
}

/// A `doveadm` command bound to this instance's config.
pub fn doveadm(paths: &Paths, p: Platform) -> Command {
    let mut cmd = Command::new("doveadm");
    cmd.arg("-c").arg(paths.dovecot_conf(p));
    cmd
}

/// A user to add: address, clear-text password, optional extra userdb fields
/// (space separated `userdb_…=…`).
pub type NewUser = (String, String, Option<String>);

/// Adds or updates users in a platform's passwd-file: through
/// `bma-platform`'s `PasswdFile` (one rewrite, the code the cutover runs),
/// with the platform's quota or the one a user's settings give, unless a
/// user has other Dovecot settings (`--userdb`, the quirks of the copy
/// tests), which the lab writes itself, each line replaced whole.
pub fn upsert_users(paths: &Paths, p: Platform, users: &[NewUser]) -> Result<()> {
    let quotas: Option<Vec<u64>> = users
        .iter()
        .map(|(_, _, extra)| match extra.as_deref() {
            None => Some(p.quota_mb() << 20),
            Some(extra) => own_quota(extra),
        })
        .collect();
    let Some(quotas) = quotas else { return write_users_with_settings(paths, p, users) };
    let mut accounts = Vec::new();
    for ((address, password, _), quota_bytes) in users.iter().zip(quotas) {
        let address = address.trim().to_lowercase();
        let hash = bma_platform::PasswordHash::parse(&hash(&address, password)?, None)?;
        accounts.push(bma_platform::NewAccount { address, hash, quota_bytes });
    }
    let file =
        bma_platform::files::PasswdFile::new(paths.users(p), paths.refused(p), Some(bma_platform::Scheme::Sha512Crypt));
    Ok(file.upsert_all(&accounts)?)
}

/// The quota of a passwd-file's `userdb_quota_rule=*:storage=<size>`, the
/// one per-user setting both backends hold (the size read as
/// `bma-platform` reads it).
pub fn own_quota(extra: &str) -> Option<u64> {
    bma_platform::files::parse_size(extra.trim().strip_prefix("userdb_quota_rule=*:storage=")?)
}

/// Users with Dovecot settings of their own, written by the lab (atomic
/// rewrite under the file's lock; Dovecot notices the change by itself).
fn write_users_with_settings(paths: &Paths, p: Platform, users: &[NewUser]) -> Result<()> {
    let file = paths.users(p);
    // The lock bma's cutover takes to write the same file.
    let _lock = bma_platform::files::lock(&file)?;
    let text = fs::read_to_string(&file).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (address, password, extra) in users {
        let address = address.trim().to_lowercase();
        if address.is_empty() || address.contains([':', ' ', '\n']) || !address.contains('@') {
            bail!("invalid address {address:?}");
        }
        let line = format!("{address}:{}::::::{}", hash(&address, password)?, extra.as_deref().unwrap_or(""));
        let prefix = format!("{address}:");
        match lines.iter_mut().find(|l| l.starts_with(&prefix)) {
            Some(existing) => *existing = line,
            None => lines.push(line),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    if out != text {
        write_users_file(&file, &out)?;
    }
    Ok(())
}

/// Rewrites a passwd-file so that Dovecot cannot miss the change. Dovecot
/// checks the file at most once per second of its clock and compares the
/// modification time in whole seconds: a login in the same second as the
/// rewrite may still see the old file, and two rewrites within one second
/// could look alike. So the new file's mtime is at least one second past the
/// previous one's, and we return only once the next second has begun.
fn write_users_file(file: &Path, text: &str) -> Result<()> {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let whole = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let previous = fs::metadata(file).and_then(|m| m.modified()).map(whole).unwrap_or(0);
    write_atomically(file, text)?;
    let now = whole(SystemTime::now());
    let stamp = UNIX_EPOCH + Duration::from_secs(now.max(previous + 1));
    fs::File::options()
        .write(true)
        .open(file)
        .and_then(|f| f.set_modified(stamp))
        .with_context(|| format!("cannot set the time of {}", file.display()))?;
    let into_second = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
    std::thread::sleep(Duration::from_millis(u64::from(1010 - into_second.min(1000))));
    Ok(())
}

/// Removes the refusals (`bma-platform`'s refused logins) of `addresses`
/// on both platforms.
pub fn allow_logins(paths: &Paths, addresses: &std::collections::BTreeSet<String>) -> Result<()> {
    for p in Platform::ALL {
        drop_lines(&paths.refused(p), |user| addresses.contains(user))?;
    }
    Ok(())
}

/// Removes from a platform's passwd-file every user `drop` selects.
pub fn remove_users(paths: &Paths, p: Platform, drop: impl Fn(&str) -> bool) -> Result<()> {
    drop_lines(&paths.users(p), drop)
}

/// Removes from a passwd-file (under its lock) the lines of the users `drop` selects.
fn drop_lines(file: &Path, drop: impl Fn(&str) -> bool) -> Result<()> {
    let _lock = bma_platform::files::lock(file)?;
    let text = fs::read_to_string(file).unwrap_or_default();
    let kept: Vec<&str> = text.lines().filter(|l| !drop(l.split(':').next().unwrap_or(""))).collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    if out != text {
        write_users_file(file, &out)?;
    }
    Ok(())
}

/// `{SHA512-CRYPT}$6$…` with a salt derived from the login (reproducible files).
pub fn hash(login: &str, password: &str) -> Result<String> {
    let h = fnv(login.as_bytes());
    let mut salt = [0u8; 12];
    salt[..8].copy_from_slice(&h.to_le_bytes());
    salt[8..].copy_from_slice(&(fnv(password.as_bytes()) as u32).to_le_bytes());
    let hashed = ShaCrypt::SHA512
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("SHA512-CRYPT failed: {e}"))?;
    Ok(format!("{{SHA512-CRYPT}}{hashed}"))
}

/// 64-bit FNV-1a.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Writes a file through a temporary file and a rename; mode 0644.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp~");
    fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
