//! `lab install`: Debian packages, the mail system user, the node modules
//! (the OIDC provider, and axe-core for the portal's browser test).
//!
//! Only what is missing is installed, so that `lab up` can call it every time.
//! The foreign IMAP servers (Cyrus, Courier) conflict with `dovecot-imapd`:
//! their Debian packages are unpacked under `target/lab/pkgs/root/`, never
//! installed; only their libraries are (`install_foreign`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::{MAIL_USER, Paths, proc};

/// (file proving the package is installed, Debian package).
const PACKAGES: [(&str, &str); 16] = [
    ("/usr/sbin/dovecot", "dovecot-core"),
    ("/usr/lib/dovecot/imap", "dovecot-imapd"),
    ("/usr/lib/dovecot/lmtp", "dovecot-lmtpd"),
    ("/usr/lib/dovecot/managesieve", "dovecot-managesieved"),
    ("/usr/lib/dovecot/modules/lib90_sieve_plugin.so", "dovecot-sieve"),
    ("/usr/sbin/postfix", "postfix"),
    // the cutover's directory backend: the server, and its readers
    ("/usr/sbin/slapd", "slapd"),
    ("/usr/lib/dovecot/modules/auth/libauthdb_ldap.so", "dovecot-ldap"),
    ("/usr/lib/postfix/postfix-ldap.so", "postfix-ldap"),
    ("/usr/bin/pg_ctlcluster", "postgresql"),
    ("/usr/bin/pg_isready", "postgresql-client"),
    ("node", "nodejs"),
    ("npm", "npm"),
    // `cargo xtask bench sync` compares bma with mbsync
    ("/usr/bin/mbsync", "isync"),
    ("/usr/bin/time", "time"),
    // `bma doctor autoconfig`'s tests ask a real DNS server on loopback (no daemon of its own)
    ("/usr/sbin/dnsmasq", "dnsmasq-base"),
];

/// What the portal's tests and benchmark need: a headless browser driven
/// over WebDriver (`portal_e2e`), wrk and curl (`cargo xtask bench portal`),
/// xmllint and openssl (`autoconfig`: the files validated against their
/// schemas, the signed Apple profile verified).
const PORTAL_PACKAGES: [(&str, &str); 6] = [
    ("/usr/bin/chromium", "chromium"),
    ("/usr/bin/chromedriver", "chromium-driver"),
    ("/usr/bin/wrk", "wrk"),
    ("/usr/bin/curl", "curl"),
    ("/usr/bin/xmllint", "libxml2-utils"),
    ("/usr/bin/openssl", "openssl"),
];

/// Debian packages of the foreign IMAP servers, unpacked but not installed
/// (`Conflicts: imap-server` with dovecot-imapd).
const FOREIGN_DEBS: [&str; 8] = [
    "cyrus-common",
    "cyrus-imapd",
    "sasl2-bin",
    "courier-base",
    "courier-imap",
    "courier-authlib",
    "courier-authdaemon",
    "courier-authlib-userdb",
];

/// Their shared libraries and tools, installed normally (none conflicts).
/// Left out: libclamav12 and libzephyr4 (cyr_virusscan and notifyd only).
const FOREIGN_LIBS: [&str; 27] = [
    "libcom-err2",
    "libgcc-s1",
    "libical3",
    "libicu72",
    "libjansson4",
    "libkrb5-3",
    "libldap-2.5-0",
    "libpcre3",
    "libpq5",
    "libsasl2-2",
    "libsasl2-modules",
    "libsasl2-modules-db",
    "libsqlite3-0",
    "libssl3",
    "libstdc++6",
    "libwrap0",
    "libxapian30",
    "libxml2",
    "zlib1g",
    "libdb5.3",
    "libcourier-unicode4",
    "libgamin0",
    "libgdbm6",
    "libidn12",
    "libltdl7",
    "libgnutls30",
    "perl",
];

/// Installs whatever is missing.
pub fn install(paths: &Paths) -> Result<()> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .chain(PORTAL_PACKAGES.iter())
        .filter(|(file, _)| !proc::have(file))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        apt_install(&missing)?;
        stop_system_daemons();
    }
    ensure_mail_user()?;
    npm_install(&paths.templates.join("oidc"), "oidc-provider")?;
    // axe-core, injected into the portal's pages by its browser test (WCAG 2.1 A and AA).
    npm_install(&paths.templates.join("axe"), "axe-core")?;
    Ok(())
}

/// Installs the foreign servers' libraries and unpacks their packages into
/// `target/lab/pkgs/root/` (once: a marker file says it is done); returns
/// that root. Fast when already done (one `dpkg-query`).
pub fn install_foreign(paths: &Paths) -> Result<PathBuf> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\n"])
        .args(FOREIGN_LIBS)
        .output()
        .context("cannot run dpkg-query")?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = listed
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ii"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let missing: Vec<&str> = FOREIGN_LIBS.iter().copied().filter(|p| !installed.contains(p)).collect();
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    let pkgs = paths.lab.join("pkgs");
    let root = pkgs.join("root");
    let marker = root.join(".unpacked");
    if marker.exists() {
        return Ok(root);
    }
    let start = Instant::now();
    let debs = pkgs.join("debs");
    fs::create_dir_all(&debs)?;
    let download = || proc::run(Command::new("apt-get").args(["download", "-q"]).args(FOREIGN_DEBS).current_dir(&debs));
    if download().is_err() {
        // stale package lists: refresh once and retry
        proc::run_visible(Command::new("apt-get").args(["update", "-q"]))?;
        download().context("apt-get download of the foreign IMAP servers failed")?;
    }
    let staging = pkgs.join("root.tmp");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(&staging)?;
    let mut unpacked = Vec::new();
    for entry in fs::read_dir(&debs)? {
        let file = entry?.path();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if FOREIGN_DEBS.iter().any(|d| name.starts_with(&format!("{d}_"))) && name.ends_with(".deb") {
            proc::run(Command::new("dpkg-deb").arg("-x").arg(&file).arg(&staging))?;
            unpacked.push(name);
        }
    }
    unpacked.sort();
    if unpacked.len() != FOREIGN_DEBS.len() {
        anyhow::bail!("expected {} packages in {}, found {unpacked:?}", FOREIGN_DEBS.len(), debs.display());
    }
    fs::write(staging.join(".unpacked"), unpacked.join("\n") + "\n")?;
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    fs::rename(&staging, &root)?;
    println!("lab install: Cyrus and Courier unpacked into {} in {:.1?}", root.display(), start.elapsed());
    Ok(root)
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let start = Instant::now();
    println!("lab install: apt-get install {}", packages.join(" "));
    // Postfix must not ask anything: the lab brings its own config directory.
    proc::run_with_input(
        &mut Command::new("debconf-set-selections"),
        b"postfix postfix/main_mailer_type select No configuration\n\
          slapd slapd/no_configuration boolean true\n",
    )
    .context("cannot preseed debconf for postfix and slapd")?;
    let lists_empty = fs::read_dir("/var/lib/apt/lists")
        .map(|d| !d.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().ends_with("Packages")))
        .unwrap_or(true);
    if lists_empty {
        proc::run_visible(Command::new("apt-get").args(["update", "-q"]))?;
    }
    let install = || {
        proc::run_visible(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(packages),
        )
    };
    if install().is_err() {
        // stale package lists: refresh once and retry
        proc::run_visible(Command::new("apt-get").args(["update", "-q"]))?;
        install().context("apt-get install failed")?;
    }
    println!("lab install: packages installed in {:.1?}", start.elapsed());
    Ok(())
}

/// The packages' postinst may have started system instances (outside
/// containers); the lab runs its own, so those are stopped.
fn stop_system_daemons() {
    for pid_file in ["/run/dovecot/master.pid", "/var/spool/postfix/pid/master.pid", "/run/slapd/slapd.pid"] {
        if let Some(pid) = proc::read_pid(Path::new(pid_file))
            && proc::terminate(pid, Duration::from_secs(5))
        {
            println!("lab install: stopped the system daemon of {pid_file}");
        }
    }
}

fn ensure_mail_user() -> Result<()> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    if passwd.lines().any(|l| l.starts_with(&format!("{MAIL_USER}:"))) {
        return Ok(());
    }
    proc::run(Command::new("useradd").args([
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "bma lab mail storage",
        MAIL_USER,
    ]))
    .with_context(|| format!("cannot create system user {MAIL_USER}"))?;
    println!("lab install: created system user {MAIL_USER}");
    Ok(())
}

/// `npm ci` (or `install`) in `dir` unless `module` is already there.
fn npm_install(dir: &Path, module: &str) -> Result<()> {
    if dir.join("node_modules").join(module).join("package.json").exists() {
        return Ok(());
    }
    let start = Instant::now();
    let verb = if dir.join("package-lock.json").exists() { "ci" } else { "install" };
    proc::run_visible(
        Command::new("npm").arg(verb).args(["--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir),
    )
    .with_context(|| format!("npm {verb} failed in {}", dir.display()))?;
    println!("lab install: npm {verb} in {:.1?}", start.elapsed());
    Ok(())
}
