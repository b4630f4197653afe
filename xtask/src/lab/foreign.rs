//! `cargo xtask lab foreign …`: IMAP servers other than Dovecot, to prove
//! `bma sync` against them: Cyrus IMAP 3.6 in two namespace setups and
//! Courier-IMAP 5.0, each on its own loopback port.
//!
//! Rules: their Debian packages conflict with `dovecot-imapd`, so they run
//! from the tree `lab install` unpacks under `target/lab/pkgs/root/` (no
//! systemd; pid files and logs under `target/lab/cyrus|courier/`). `foreign
//! up|down` touch only these servers, never the Dovecot lab; `lab up --with
//! cyrus,courier` calls the same functions. `lab.json` gets one entry per
//! foreign server (`foreign.NAME`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use super::{HOST, MASTER_PASSWORD, MASTER_USER, Paths, courier, cyrus, install, proc};

/// `cargo xtask lab foreign <command>`.
#[derive(Subcommand)]
pub enum ForeignCommand {
    /// Start Cyrus (both setups) and Courier (unpacking them first if needed); idempotent.
    Up {
        /// Only these servers (default: all).
        #[arg(long, value_delimiter = ',')]
        only: Vec<ForeignKind>,
    },
    /// Stop them (no process is left).
    Down,
    /// One line per foreign server; non-zero if any is down.
    Status,
    /// Add (or update) a user with a mailbox on a foreign server (idempotent).
    Adduser {
        /// `cyrus` (both setups) or `courier`.
        server: ForeignKind,
        /// Login name (the email address).
        address: String,
        /// Clear-text password.
        password: String,
    },
}

/// A foreign IMAP software, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ForeignKind {
    /// Cyrus IMAP 3.6 (both namespace setups).
    Cyrus,
    /// Courier-IMAP 5.0.
    Courier,
}

/// One running foreign server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForeignServer {
    /// Cyrus with the classic namespace: `.` separator, `INBOX.` prefix
    /// (`altnamespace: no`, `unixhierarchysep: no`).
    Cyrus,
    /// Cyrus with its 3.x defaults: `/` separator, no prefix
    /// (`altnamespace: yes`, `unixhierarchysep: yes`).
    CyrusUnix,
    /// Courier-IMAP: `.` separator, `INBOX.` prefix.
    Courier,
}

impl ForeignServer {
    /// Every foreign server.
    pub const ALL: [ForeignServer; 3] = [ForeignServer::Cyrus, ForeignServer::CyrusUnix, ForeignServer::Courier];

    /// Name in `lab.json` and in messages; the Cyrus instances' directory name.
    pub fn name(self) -> &'static str {
        match self {
            ForeignServer::Cyrus => "cyrus",
            ForeignServer::CyrusUnix => "cyrus-unix",
            ForeignServer::Courier => "courier",
        }
    }
    /// The software it runs.
    pub fn kind(self) -> ForeignKind {
        match self {
            ForeignServer::Cyrus | ForeignServer::CyrusUnix => ForeignKind::Cyrus,
            ForeignServer::Courier => ForeignKind::Courier,
        }
    }
    /// IMAP port on 127.0.0.1 (plain text allowed; STARTTLS on Cyrus).
    pub fn imap_port(self) -> u16 {
        match self {
            ForeignServer::Cyrus => 30143,
            ForeignServer::CyrusUnix => 31143,
            ForeignServer::Courier => 40143,
        }
    }
    /// Hierarchy separator of the personal namespace.
    pub fn separator(self) -> char {
        match self {
            ForeignServer::Cyrus | ForeignServer::Courier => '.',
            ForeignServer::CyrusUnix => '/',
        }
    }
    /// Prefix of the personal namespace.
    pub fn prefix(self) -> &'static str {
        match self {
            ForeignServer::Cyrus | ForeignServer::Courier => "INBOX.",
            ForeignServer::CyrusUnix => "",
        }
    }
    fn of(kinds: &[ForeignKind]) -> Vec<ForeignServer> {
        ForeignServer::ALL.into_iter().filter(|s| kinds.is_empty() || kinds.contains(&s.kind())).collect()
    }
    /// The log to show when it does not answer.
    fn log(self, paths: &Paths) -> PathBuf {
        match self.kind() {
            ForeignKind::Cyrus => cyrus::log(paths, self),
            ForeignKind::Courier => courier::log(paths),
        }
    }
    /// Whether it has been set up here (its state directory exists).
    fn prepared(self, paths: &Paths) -> bool {
        match self.kind() {
            ForeignKind::Cyrus => cyrus::dir(paths, self).exists(),
            ForeignKind::Courier => courier::dir(paths).exists(),
        }
    }
}

/// Runs one `lab foreign` subcommand.
pub fn run(paths: &Paths, command: ForeignCommand) -> Result<ExitCode> {
    match command {
        ForeignCommand::Up { only } => {
            let _lock = proc::lock(&paths.lock())?;
            up(paths, &only)?;
            update_lab_json(paths)?;
            println!("foreign servers are up; described under `foreign` in {}", paths.lab_json().display());
        }
        ForeignCommand::Down => down(paths),
        ForeignCommand::Status => return Ok(status(paths, true)),
        ForeignCommand::Adduser { server, address, password } => {
            let address = checked_address(&address)?;
            let _lock = proc::lock(&paths.lock())?;
            match server {
                ForeignKind::Cyrus => cyrus::adduser(paths, &address, &password)?,
                ForeignKind::Courier => courier::adduser(paths, &address, &password)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Unpacks (if needed), prepares and starts the foreign servers of `kinds`
/// (all if empty), and waits until each answers. The caller holds the lab's
/// lock.
pub fn up(paths: &Paths, kinds: &[ForeignKind]) -> Result<()> {
    let root = install::install_foreign(paths)?;
    for server in ForeignServer::of(kinds) {
        match server.kind() {
            ForeignKind::Cyrus => cyrus::start(paths, &root, server)?,
            ForeignKind::Courier => courier::start(paths, &root)?,
        }
    }
    Ok(())
}

/// Stops every foreign server set up here; tolerant of servers already stopped.
pub fn down(paths: &Paths) {
    for server in ForeignServer::ALL.into_iter().filter(|s| s.prepared(paths)) {
        match server.kind() {
            ForeignKind::Cyrus => cyrus::stop(paths, server),
            ForeignKind::Courier => courier::stop(paths),
        }
    }
}

/// Prints one line per foreign server (only those set up here unless
/// `all`); failure if any shown is down.
pub fn status(paths: &Paths, all: bool) -> ExitCode {
    let mut all_up = true;
    for s in ForeignServer::ALL.into_iter().filter(|s| all || s.prepared(paths)) {
        let up = proc::port_open(s.imap_port());
        all_up &= up;
        println!("{:<28} {HOST}:{:<6} {}", format!("{} imap", s.name()), s.imap_port(), if up { "up" } else { "DOWN" });
    }
    if all_up { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Waits until a foreign server answers on its port.
pub fn wait(paths: &Paths, server: ForeignServer) -> Result<()> {
    proc::wait_port(server.name(), server.imap_port(), Duration::from_secs(20), &server.log(paths))
}

fn checked_address(address: &str) -> Result<String> {
    let address = address.trim().to_lowercase();
    let valid = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && address.bytes().all(|b| b.is_ascii_alphanumeric() || b"@.-_+".contains(&b))
    });
    if !valid {
        bail!("invalid address {address:?}: expected local@domain in ASCII letters, digits and .-_+");
    }
    Ok(address)
}

/// A foreign server in `lab.json` (`foreign.NAME`).
#[derive(Serialize)]
pub struct ForeignJson {
    software: &'static str,
    host: &'static str,
    imap_port: u16,
    /// `starttls` (optional: plain-text logins are allowed too) or `none`.
    tls: &'static str,
    /// The self-signed certificate STARTTLS presents (null without TLS).
    tls_certificate: Option<PathBuf>,
    separator: char,
    prefix: &'static str,
    /// The admin, who may log in as any user by SASL PLAIN with
    /// authzid = user, authcid = admin (Cyrus only).
    admin_user: Option<&'static str>,
    admin_password: Option<&'static str>,
    /// How the admin names a user's mailbox in CREATE (`{local}`, `{domain}`).
    user_mailbox: Option<String>,
    /// Settings of note (what the server alters, its namespace).
    settings: BTreeMap<&'static str, String>,
    config: PathBuf,
    log: PathBuf,
}

/// The `foreign` section of `lab.json`: every foreign server set up here.
pub fn describe(paths: &Paths) -> BTreeMap<&'static str, ForeignJson> {
    let mut out = BTreeMap::new();
    for s in ForeignServer::ALL.into_iter().filter(|s| s.prepared(paths)) {
        // Courier: no STARTTLS (its imaplogin wants a system user `courier`).
        let tls = s.kind() == ForeignKind::Cyrus;
        let (software, admin, user_mailbox, settings, config) = match s.kind() {
            ForeignKind::Cyrus => (
                "Cyrus IMAP 3.6",
                true,
                Some(cyrus::user_mailbox_pattern(s)),
                cyrus::settings(s),
                cyrus::imapd_conf(paths, s),
            ),
            ForeignKind::Courier => ("Courier-IMAP 5.0", false, None, courier::settings(), courier::dir(paths)),
        };
        out.insert(
            s.name(),
            ForeignJson {
                software,
                host: HOST,
                imap_port: s.imap_port(),
                tls: if tls { "starttls" } else { "none" },
                tls_certificate: tls.then(|| paths.lab.join("tls/foreign-cert.pem")),
                separator: s.separator(),
                prefix: s.prefix(),
                admin_user: admin.then_some(MASTER_USER),
                admin_password: admin.then_some(MASTER_PASSWORD),
                user_mailbox,
                settings,
                config,
                log: s.log(paths),
            },
        );
    }
    out
}

/// Sets `foreign` in `lab.json` (creating a file with only that section if
/// the Dovecot lab was never brought up here), leaving the rest as it is.
pub fn update_lab_json(paths: &Paths) -> Result<()> {
    let file = paths.lab_json();
    let mut json: serde_json::Value = match fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?,
        Err(_) => serde_json::json!({ "version": 1 }),
    };
    let Some(object) = json.as_object_mut() else { bail!("{} is not a JSON object", file.display()) };
    object.insert("foreign".into(), serde_json::to_value(describe(paths))?);
    let tmp = file.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_string_pretty(&json)? + "\n")?;
    fs::rename(&tmp, &file)?;
    Ok(())
}

/// Runs IMAP commands after `LOGIN admin` on 127.0.0.1:`port` and returns
/// each command's tagged completion line (`OK …`, `NO …`, `BAD …`).
/// Arguments must already be quoted; plain-text IMAP, loopback only.
pub fn imap_as_admin(port: u16, commands: &[String]) -> Result<Vec<String>> {
    let stream = TcpStream::connect((HOST, port)).with_context(|| format!("cannot connect to {HOST}:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("* OK") {
        bail!("unexpected IMAP greeting on port {port}: {}", line.trim_end());
    }
    let mut exchange = |tag: &str, command: &str| -> Result<String> {
        writer.write_all(format!("{tag} {command}\r\n").as_bytes())?;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("the server on port {port} closed the connection after `{command}`");
            }
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return Ok(rest.trim_end().to_string());
            }
        }
    };
    let login = exchange("a0", &format!("LOGIN {} {}", quote(MASTER_USER), quote(MASTER_PASSWORD)))?;
    if !login.starts_with("OK") {
        bail!("admin login refused on port {port}: {login}");
    }
    let mut out = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        out.push(exchange(&format!("a{}", i + 1), command)?);
    }
    let _ = exchange("z", "LOGOUT");
    Ok(out)
}

/// An IMAP quoted string (the lab's names have no `"` nor `\`).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Cyrus' self-signed certificate for STARTTLS (CN and SAN localhost,
/// 127.0.0.1), made once by openssl: `(cert, key)`, the key readable by the
/// mail user only.
pub fn certificate(paths: &Paths) -> Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = paths.lab.join("tls");
    let (cert, key) = (dir.join("foreign-cert.pem"), dir.join("foreign-key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    fs::create_dir_all(&dir)?;
    let (key_tmp, cert_tmp) = (key.with_extension("tmp~"), cert.with_extension("tmp~"));
    proc::run(
        std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
            .arg(&key_tmp)
            .arg("-out")
            .arg(&cert_tmp),
    )
    .context("cannot make the Cyrus certificate")?;
    let (uid, gid) = super::dovecot::mail_owner()?;
    for (tmp, file, mode) in [(&key_tmp, &key, 0o600), (&cert_tmp, &cert, 0o644)] {
        std::os::unix::fs::chown(tmp, Some(uid), Some(gid))?;
        fs::set_permissions(tmp, fs::Permissions::from_mode(mode))?;
        fs::rename(tmp, file)?;
    }
    Ok((cert, key))
}

/// Creates `dir` (and parents) owned by the lab's mail user, mode 0700.
pub fn mail_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (uid, gid) = super::dovecot::mail_owner()?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
}
