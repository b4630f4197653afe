//! The lab's OpenLDAP (`slapd` from Debian): the directory backend of both
//! platforms, beside the passwd-files and the transport table.
//!
//! Both backends are live at once: each Dovecot asks its passwd-files
//! first, then its directory subtree (`ou=legacy`, `ou=new`); Postfix's
//! `transport_maps` asks its hash table, then the directory's routes
//! (`ou=routes`). Which one the lab's own provisioning writes (`lab up
//! --backend`, `lab adduser --backend`), and which one the demo's cutover
//! is configured with, is the lab's setting, `files` by default. The lab
//! writes accounts and routes through `bma-platform`'s `ldap` module, the
//! code the cutover runs.
//!
//! Three service accounts, each with only what it needs: `cn=bma` writes
//! the accounts and the routes, `cn=dovecot` reads the accounts, `cn=postfix`
//! reads the routes (`lab/ldap/slapd.conf.in`).

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use bma_imap::{Secret, Security};
use bma_platform::ldap::{Directory, LdapAccounts, LdapRoutes};
use bma_platform::{Login, NewAccount, PasswordHash, Route, Scheme, Transports};
use clap::ValueEnum;
use serde::Serialize;

use super::dovecot::write_atomically;
use super::{HOST, Paths, Platform, postfix, proc, render};

/// slapd's port.
pub const LDAP_PORT: u16 = 10389;
/// The directory's suffix.
pub const SUFFIX: &str = "dc=bma,dc=test";
/// bma's service account (writes accounts and routes) and its password.
pub const BMA: (&str, &str) = ("cn=bma,dc=bma,dc=test", "secret-ldap-bma");
/// Dovecot's (reads the accounts).
const DOVECOT: (&str, &str) = ("cn=dovecot,dc=bma,dc=test", "secret-ldap-dovecot");
/// Postfix's (reads the routes).
const POSTFIX: (&str, &str) = ("cn=postfix,dc=bma,dc=test", "secret-ldap-postfix");

/// Which backend the lab's provisioning writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Dovecot passwd-files, the Postfix hash table.
    #[default]
    Files,
    /// The directory.
    Ldap,
}

impl Backend {
    /// Its name, as `[cutover] backend` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Files => "files",
            Backend::Ldap => "ldap",
        }
    }
}

/// The lab's setting (`files` until `lab up --backend ldap`).
pub fn backend(paths: &Paths) -> Backend {
    match fs::read_to_string(setting(paths)).unwrap_or_default().trim() {
        "ldap" => Backend::Ldap,
        _ => Backend::Files,
    }
}

/// Records the lab's setting.
pub fn set_backend(paths: &Paths, backend: Backend) -> Result<()> {
    fs::create_dir_all(&paths.lab)?;
    write_atomically(&setting(paths), &format!("{}\n", backend.name()))
}

fn setting(paths: &Paths) -> PathBuf {
    paths.lab.join("backend")
}

/// `ldap://127.0.0.1:10389`.
pub fn uri() -> String {
    format!("ldap://{HOST}:{LDAP_PORT}")
}

/// The base of a platform's accounts.
pub fn accounts_base(p: Platform) -> String {
    format!("ou={},{SUFFIX}", p.name())
}

/// The base of the routes.
pub fn routes_base() -> String {
    format!("ou=routes,{SUFFIX}")
}

fn dir(paths: &Paths) -> PathBuf {
    paths.lab.join("ldap")
}

fn data(paths: &Paths) -> PathBuf {
    dir(paths).join("data")
}

fn conf(paths: &Paths) -> PathBuf {
    dir(paths).join("slapd.conf")
}

/// slapd's log.
pub fn log(paths: &Paths) -> PathBuf {
    dir(paths).join("slapd.log")
}

fn pid_file(paths: &Paths) -> PathBuf {
    dir(paths).join("slapd.pid")
}

/// The settings file of a Dovecot `ldap` passdb/userdb of a platform:
/// its accounts (`users`) or its refused logins (`refused`).
pub fn dovecot_args(paths: &Paths, p: Platform, which: &str) -> PathBuf {
    paths.platform(p).join(format!("ldap-{which}.conf.ext"))
}

/// Postfix's `ldap:` table of the routes.
pub fn postfix_table(paths: &Paths) -> PathBuf {
    paths.postfix_etc().join("routes.cf")
}

/// `{SSHA}` hash of a service password, by slapd's own tool.
fn ssha(password: &str) -> Result<String> {
    Ok(proc::run(Command::new("slappasswd").args(["-h", "{SSHA}", "-s", password]))?.trim().to_owned())
}

/// Renders slapd.conf; loads the base entries into a new database.
pub fn prepare(paths: &Paths) -> Result<()> {
    for d in [dir(paths), data(paths)] {
        fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let vars = [
        ("SCHEMA", paths.templates.join("ldap/bma.schema").display().to_string()),
        ("RUN", dir(paths).display().to_string()),
        ("DATA", data(paths).display().to_string()),
        ("SUFFIX", SUFFIX.to_owned()),
        ("BMA_DN", BMA.0.to_owned()),
        ("DOVECOT_DN", DOVECOT.0.to_owned()),
        ("POSTFIX_DN", POSTFIX.0.to_owned()),
    ];
    let text = render(&paths.templates.join("ldap/slapd.conf.in"), &vars)?;
    write_atomically(&conf(paths), &text)?;
    if !data(paths).join("data.mdb").exists() {
        let mut vars = vars.to_vec();
        vars.extend([
            ("BMA_HASH", ssha(BMA.1)?),
            ("DOVECOT_HASH", ssha(DOVECOT.1)?),
            ("POSTFIX_HASH", ssha(POSTFIX.1)?),
        ]);
        let ldif = render(&paths.templates.join("ldap/base.ldif.in"), &vars)?;
        let file = dir(paths).join("base.ldif");
        write_atomically(&file, &ldif)?;
        proc::run(Command::new("slapadd").arg("-f").arg(conf(paths)).arg("-l").arg(&file))
            .context("slapadd of the base entries failed")?;
    }
    Ok(())
}

/// Whether slapd runs.
pub fn running(paths: &Paths) -> bool {
    proc::read_pid(&pid_file(paths)).is_some_and(proc::alive)
}

/// Starts slapd (it daemonizes), unless it runs; a running one keeps its
/// configuration (slapd.conf is read at start only).
pub fn start(paths: &Paths) -> Result<()> {
    prepare(paths)?;
    if running(paths) {
        println!("slapd: already running");
        return Ok(());
    }
    let listen = format!("{}/", uri());
    proc::run(Command::new("slaptest").arg("-u").arg("-f").arg(conf(paths)))
        .with_context(|| format!("{} does not pass slaptest", conf(paths).display()))?;
    // In the foreground (`-d stats`: each operation logged to its output,
    // the lab's log), in a process group of its own like the provider.
    proc::spawn_background(
        Command::new("slapd").arg("-f").arg(conf(paths)).arg("-h").arg(&listen).args(["-d", "256"]),
        &log(paths),
        &pid_file(paths),
    )
    .context("cannot start slapd")?;
    println!("slapd: started ({listen})");
    Ok(())
}

/// Stops slapd; tolerant of one already stopped.
pub fn stop(paths: &Paths) {
    let Some(pid) = proc::read_pid(&pid_file(paths)).filter(|p| proc::alive(*p)) else {
        println!("slapd: not running");
        return;
    };
    proc::terminate(pid, Duration::from_secs(5));
    println!("slapd: stopped");
}

/// The Dovecot settings files of both platforms (the users' and the refusals').
pub fn write_dovecot_args(paths: &Paths, p: Platform) -> Result<()> {
    for which in ["users", "refused"] {
        let vars = [
            ("URI", uri()),
            ("DN", DOVECOT.0.to_owned()),
            ("PASSWORD", DOVECOT.1.to_owned()),
            ("BASE", accounts_base(p)),
        ];
        let text = render(&paths.templates.join(format!("dovecot/ldap-{which}.conf.ext.in")), &vars)?;
        let file = dovecot_args(paths, p, which);
        write_atomically(&file, &text)?;
        // it holds a password: Dovecot's auth process reads it as root
        fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    Ok(())
}

/// Postfix's `ldap:` table of the routes.
pub fn write_postfix_table(paths: &Paths) -> Result<()> {
    let vars =
        [("URI", uri()), ("DN", POSTFIX.0.to_owned()), ("PASSWORD", POSTFIX.1.to_owned()), ("BASE", routes_base())];
    let text = render(&paths.templates.join("postfix/routes.cf.in"), &vars)?;
    write_atomically(&postfix_table(paths), &text)
}

/// The directory, bound as bma.
pub fn directory() -> Result<Directory> {
    Ok(Directory::new(&uri(), Security::None, true, BMA.0, Secret::new(BMA.1))?)
}

/// A platform's accounts in the directory.
pub fn accounts(p: Platform) -> Result<LdapAccounts> {
    Ok(LdapAccounts::new(directory()?, &accounts_base(p), Some(Scheme::Sha512Crypt)))
}

/// The routes in the directory.
pub fn routes(paths: &Paths) -> Result<LdapRoutes> {
    Ok(LdapRoutes::new(
        directory()?,
        &routes_base(),
        Some(paths.postfix_etc()),
        Transports {
            legacy: Platform::Legacy.transport(),
            new: Platform::New.transport(),
            held: postfix::HELD.to_owned(),
        },
    ))
}

/// Adds or updates users in a platform's subtree, with the platform's
/// quota as their own (the directory has no per-user settings beyond it),
/// their logins allowed: one connection for the accounts, one for the logins.
pub fn upsert_users(p: Platform, users: &[super::dovecot::NewUser]) -> Result<()> {
    let mut new = Vec::new();
    for (address, password, extra) in users {
        let quota_bytes = match extra.as_deref() {
            None => p.quota_mb() << 20,
            Some(extra) => super::dovecot::own_quota(extra).with_context(|| {
                format!("{address}: per-user Dovecot settings ({extra}) other than a storage quota exist on the files backend only")
            })?,
        };
        let address = address.trim().to_lowercase();
        let hash = PasswordHash::parse(&super::dovecot::hash(&address, password)?, None)?;
        new.push(NewAccount { address, hash, quota_bytes });
    }
    let accounts = accounts(p)?;
    accounts.upsert_all(&new)?;
    let addresses: Vec<&str> = new.iter().map(|a| a.address.as_str()).collect();
    accounts.set_login_all(&addresses, &Login::Allowed)?;
    Ok(())
}

/// Removes `addresses`' accounts from a platform's subtree (absent ones
/// are skipped), on one connection.
pub fn remove_users(p: Platform, addresses: &BTreeSet<String>) -> Result<()> {
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    Ok(accounts(p)?.remove_all(&addresses)?)
}

/// What a cutover left in the directory for `addresses`: refusals on both
/// platforms lifted, routes back to the legacy platform (one connection
/// for each platform's accounts, one for the routes).
pub fn clear(paths: &Paths, addresses: &BTreeSet<String>) -> Result<()> {
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    for p in Platform::ALL {
        // the addresses without an account on `p` are left alone
        accounts(p)?.set_login_all(&addresses, &Login::Allowed)?;
    }
    routes(paths)?.set_all(&addresses, Route::Legacy)?;
    Ok(())
}

/// `target/lab/lab.json`'s `ldap`: how tests reach the directory.
#[derive(Serialize)]
pub struct LdapJson {
    backend: Backend,
    url: String,
    port: u16,
    bind_dn: &'static str,
    password: &'static str,
    legacy_base: String,
    new_base: String,
    routes_base: String,
    log: PathBuf,
}

/// The directory, for lab.json.
pub fn describe(paths: &Paths) -> LdapJson {
    LdapJson {
        backend: backend(paths),
        url: uri(),
        port: LDAP_PORT,
        bind_dn: BMA.0,
        password: BMA.1,
        legacy_base: accounts_base(Platform::Legacy),
        new_base: accounts_base(Platform::New),
        routes_base: routes_base(),
        log: log(paths),
    }
}
