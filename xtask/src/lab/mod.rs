//! `cargo xtask lab …`: the local test lab of real servers on loopback.
//!
//! Everything lives under `target/lab/` of the workspace (generated configs,
//! mail storage, logs, pid files); templates are under `lab/`. The foreign
//! IMAP servers (Cyrus, Courier) start only on demand: `lab foreign up` or
//! `lab up --with cyrus,courier`.

mod courier;
pub mod cutoverbench;
mod cyrus;
mod dovecot;
mod foreign;
mod install;
pub mod ldap;
mod mail;
mod oidc;
pub mod outboxbench;
mod postfix;
mod postgres;
mod proc;
mod seed;
mod sieveproxy;
mod smtp;
pub mod syncbench;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

pub use smtp::send_mail;

/// Loopback address every lab server listens on.
pub const HOST: &str = "127.0.0.1";
/// Postfix smtpd port.
pub const SMTP_PORT: u16 = 2525;
/// Postfix's second smtpd, for the mail the new platform's Sieve scripts
/// send (its `submission_host`): recipients of the internal domains only,
/// so a redirect outside fails at delivery (see `lab/postfix/master.cf.in`).
pub const REDIRECT_SMTP_PORT: u16 = 2526;
/// OIDC provider port.
pub const OIDC_PORT: u16 = 9090;
/// PostgreSQL port (the machine's service).
pub const PG_PORT: u16 = 5432;
/// Master user of both Dovecot instances.
pub const MASTER_USER: &str = "admin";
/// Password of the master user.
pub const MASTER_PASSWORD: &str = "adminpass";
/// Separator of the `user*master` login syntax.
pub const MASTER_SEPARATOR: &str = "*";
/// The mailbox domain of the campaign.
pub const DOMAIN: &str = "adm.cfwb.be";
/// Every domain the lab Postfix accepts mail for.
pub const DOMAINS: [&str; 3] = [DOMAIN, "ecole.test", "bma.test"];
/// System user owning the mail storage of both Dovecot instances.
pub const MAIL_USER: &str = "bmalab";
/// Mailboxes created on the legacy platform at `lab up` (address, password).
pub const SYSTEM_ACCOUNTS: [(&str, &str); 6] = [
    ("bounces@bma.test", "secret-bounces"),
    ("migrationbma@bma.test", "secret-migrationbma"),
    ("marie.dupont@ecole.test", "secret-marie.dupont"),
    ("luc.martin@ecole.test", "secret-luc.martin"),
    ("eric.lejeune@ecole.test", "secret-eric.lejeune"),
    ("sophie.renard@ecole.test", "secret-sophie.renard"),
];

/// `cargo xtask lab <command>`.
#[derive(Subcommand)]
pub enum LabCommand {
    /// Install what is missing (Debian packages, system user, npm modules).
    Install,
    /// Start every server (installing first what is missing); idempotent.
    Up {
        /// Also start these foreign IMAP servers (see `lab foreign`).
        #[arg(long, value_delimiter = ',', value_name = "cyrus,courier")]
        with: Vec<foreign::ForeignKind>,
        /// Where the lab's provisioning writes accounts and routes, and which
        /// backend the demo's cutover uses (kept until changed; both are
        /// always live in Dovecot and Postfix).
        #[arg(long)]
        backend: Option<ldap::Backend>,
    },
    /// Stop every server started by `up` (PostgreSQL is left alone).
    Down,
    /// Print each server, its port and whether it answers; non-zero if any is down.
    Status,
    /// Create the seed mailboxes and fill them with generated mail.
    Seed {
        /// Number of regular seed mailboxes.
        #[arg(long, default_value_t = 36)]
        mailboxes: usize,
        /// Messages per regular seed mailbox.
        #[arg(long, default_value_t = 40)]
        messages: usize,
        /// Also create the benchmark corpus (1 × 3,000 and 100 × 200 messages, ~730 MB).
        #[arg(long)]
        bench: bool,
    },
    /// Route mail for ADDRESS to a platform (rewrites the Postfix transport map).
    Route {
        /// The recipient address.
        address: String,
        /// Platform that receives its mail from now on.
        platform: Platform,
    },
    /// Hold mail for ADDRESS at the relay (deferred in Postfix's queue,
    /// retried every few seconds) until `--release`, which routes it to the
    /// legacy platform again: a slow relay, for one test's recipients only.
    Hold {
        /// The recipient address.
        address: String,
        /// Deliver it again (and what was held for it, at the next retry).
        #[arg(long)]
        release: bool,
    },
    /// Add (or update) a user on a platform (its passwd-file, or its
    /// subtree of the directory).
    Adduser {
        /// Platform to add the user to.
        platform: Platform,
        /// Login name (the email address).
        address: String,
        /// Clear-text password (stored as SHA512-CRYPT).
        password: String,
        /// More addresses with the same password, in the same rewrite.
        #[arg(long)]
        also: Vec<String>,
        /// A per-user Dovecot setting, KEY=VALUE without spaces (repeatable; a
        /// `userdb_KEY=VALUE` field), e.g. `namespace/inbox/prefix=INBOX.`,
        /// `imap_capability=IMAP4rev1`, `quota_max_mail_size=10k`.
        #[arg(long, value_name = "KEY=VALUE")]
        userdb: Vec<String>,
        /// Where to write it (default: the lab's setting, see `lab up --backend`).
        #[arg(long)]
        backend: Option<ldap::Backend>,
    },
    /// IMAP servers other than Dovecot: Cyrus (two namespace setups) and
    /// Courier, started only on demand, on ports of their own.
    Foreign {
        #[command(subcommand)]
        command: foreign::ForeignCommand,
    },
    /// Print a fresh OAuth 2.0 access token for ADDRESS, accepted by the new
    /// platform's IMAP (SASL XOAUTH2 / OAUTHBEARER) until it expires.
    Token {
        /// The mailbox address the token is for (the XOAUTH2 user).
        address: String,
        /// Lifetime in seconds (1 to 3600).
        #[arg(long, default_value_t = oidc::MAX_TOKEN_TTL)]
        ttl: u32,
    },
}

/// One of the two Dovecot instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// The legacy mail platform (mail source).
    Legacy,
    /// The new mail platform (migration target).
    New,
}

impl Platform {
    /// Both platforms.
    pub const ALL: [Platform; 2] = [Platform::Legacy, Platform::New];

    /// Short name, also the directory name under `target/lab/`.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Legacy => "legacy",
            Platform::New => "new",
        }
    }
    /// IMAP port.
    pub fn imap_port(self) -> u16 {
        match self {
            Platform::Legacy => 10143,
            Platform::New => 20143,
        }
    }
    /// ManageSieve port.
    pub fn sieve_port(self) -> u16 {
        match self {
            Platform::Legacy => 14190,
            Platform::New => 24190,
        }
    }
    /// Port of Dovecot's own ManageSieve listener. On the new platform the
    /// public port is a policy proxy that refuses redirect scripts.
    pub fn dovecot_sieve_port(self) -> u16 {
        match self {
            Platform::Legacy => 14190,
            Platform::New => 24191,
        }
    }
    /// LMTP port.
    pub fn lmtp_port(self) -> u16 {
        match self {
            Platform::Legacy => 10024,
            Platform::New => 20024,
        }
    }
    /// Per-user storage quota in MiB.
    pub fn quota_mb(self) -> u64 {
        match self {
            Platform::Legacy => 100,
            Platform::New => 2500,
        }
    }
    /// The Postfix transport that delivers to this platform.
    pub fn transport(self) -> String {
        format!("lmtp:inet:{HOST}:{}", self.lmtp_port())
    }
    /// Where this platform's Sieve scripts send mail (redirect, vacation,
    /// notify): the lab Postfix; on the new platform its listener that
    /// refuses recipients outside the internal domains.
    pub fn submission_port(self) -> u16 {
        match self {
            Platform::Legacy => SMTP_PORT,
            Platform::New => REDIRECT_SMTP_PORT,
        }
    }
}

/// Adds or updates `users` on a platform, on `backend` (the lab's setting
/// when `None`), and removes them from the other backend, whose account
/// would shadow or be shadowed (Dovecot asks the passwd-file first).
pub fn provision(paths: &Paths, backend: Option<ldap::Backend>, p: Platform, users: &[dovecot::NewUser]) -> Result<()> {
    let addresses: std::collections::BTreeSet<String> = users.iter().map(|(a, _, _)| a.trim().to_lowercase()).collect();
    match backend.unwrap_or_else(|| ldap::backend(paths)) {
        ldap::Backend::Files => {
            ldap::remove_users(p, &addresses)?;
            dovecot::upsert_users(paths, p, users)
        }
        ldap::Backend::Ldap => {
            dovecot::remove_users(paths, p, |a| addresses.contains(a))?;
            ldap::upsert_users(p, users)
        }
    }
}

/// `[cutover]` on the lab, as `BMA_CUTOVER_*` variables, on the lab's
/// backend: its Dovecot passwd-files and Postfix transport table, or its
/// directory; the transports of the three routes (for the demo and `cargo
/// xtask bench cutover`).
pub fn cutover_env() -> Result<Vec<(String, String)>> {
    let paths = Paths::discover()?;
    let file = |p: PathBuf| p.display().to_string();
    let backend = ldap::backend(&paths);
    let where_: Vec<(&str, String)> = match backend {
        ldap::Backend::Files => vec![
            ("LEGACY_USERS_FILE", file(paths.users(Platform::Legacy))),
            ("LEGACY_REFUSED_FILE", file(paths.refused(Platform::Legacy))),
            ("NEW_USERS_FILE", file(paths.users(Platform::New))),
            ("NEW_REFUSED_FILE", file(paths.refused(Platform::New))),
            ("TRANSPORT_MAP", file(paths.transport())),
        ],
        ldap::Backend::Ldap => {
            let secret = paths.lab.join("ldap").join("bma.password");
            dovecot::write_atomically(&secret, &format!("{}\n", ldap::BMA.1))?;
            vec![
                ("LDAP_URL", ldap::uri()),
                ("LDAP_TLS", "none".to_owned()),
                ("LDAP_BIND_DN", ldap::BMA.0.to_owned()),
                ("LDAP_PASSWORD_FILE", file(secret)),
                ("LDAP_LEGACY_BASE", ldap::accounts_base(Platform::Legacy)),
                ("LDAP_NEW_BASE", ldap::accounts_base(Platform::New)),
                ("LDAP_ROUTES_BASE", ldap::routes_base()),
            ]
        }
    };
    Ok([("BACKEND", backend.name().to_owned()), ("WEBMAIL_URL", "https://webmail.bma.test".to_owned())]
        .into_iter()
        .chain(where_)
        .chain([
            ("POSTFIX_CONFIG_DIR", file(paths.postfix_etc())),
            ("LEGACY_TRANSPORT", Platform::Legacy.transport()),
            ("NEW_TRANSPORT", Platform::New.transport()),
            ("HELD_TRANSPORT", postfix::HELD.to_owned()),
            ("IMAP_HOST", "imap.bma.test".to_owned()),
            ("SMTP_HOST", "smtp.bma.test".to_owned()),
        ])
        .map(|(k, v)| (format!("BMA_CUTOVER_{k}"), v))
        .collect())
}

/// Locations of the workspace, templates and lab state.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Workspace root.
    pub root: PathBuf,
    /// `lab/`: templates and the OIDC node package.
    pub templates: PathBuf,
    /// `target/lab/`: all state.
    pub lab: PathBuf,
}

impl Paths {
    fn discover() -> Result<Paths> {
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask has no parent directory")?.to_path_buf();
        // Always `<workspace>/target/lab`, whatever CARGO_TARGET_DIR says: tests
        // find lab.json there.
        Ok(Paths { templates: root.join("lab"), lab: root.join("target").join("lab"), root })
    }
    /// State directory of one platform.
    pub fn platform(&self, p: Platform) -> PathBuf {
        self.lab.join(p.name())
    }
    /// passwd-file of one platform's users.
    pub fn users(&self, p: Platform) -> PathBuf {
        self.platform(p).join("users")
    }
    /// passwd-file of one platform's refused logins (`bma-platform`'s `PasswdFile`).
    pub fn refused(&self, p: Platform) -> PathBuf {
        self.platform(p).join("refused")
    }
    /// passwd-file of one platform's master users.
    pub fn masters(&self, p: Platform) -> PathBuf {
        self.platform(p).join("masters")
    }
    /// Mail root of one platform (`%d/%n` below it).
    pub fn mail_root(&self, p: Platform) -> PathBuf {
        self.platform(p).join("mail")
    }
    /// Home root of one platform (Sieve scripts live in homes).
    pub fn home_root(&self, p: Platform) -> PathBuf {
        self.platform(p).join("home")
    }
    /// Generated Dovecot config of one platform.
    pub fn dovecot_conf(&self, p: Platform) -> PathBuf {
        self.platform(p).join("dovecot.conf")
    }
    /// Dovecot log of one platform.
    pub fn dovecot_log(&self, p: Platform) -> PathBuf {
        self.platform(p).join("dovecot.log")
    }
    /// Postfix state directory.
    pub fn postfix(&self) -> PathBuf {
        self.lab.join("postfix")
    }
    /// Postfix config directory (main.cf, master.cf, transport).
    pub fn postfix_etc(&self) -> PathBuf {
        self.postfix().join("etc")
    }
    /// The Postfix transport map (source text; `.db` beside it).
    pub fn transport(&self) -> PathBuf {
        self.postfix_etc().join("transport")
    }
    /// Postfix log file.
    pub fn postfix_log(&self) -> PathBuf {
        self.postfix().join("postfix.log")
    }
    /// OIDC provider state directory.
    pub fn oidc(&self) -> PathBuf {
        self.lab.join("oidc")
    }
    /// OIDC provider log.
    pub fn oidc_log(&self) -> PathBuf {
        self.oidc().join("oidc.log")
    }
    /// `target/lab/lab.json`.
    pub fn lab_json(&self) -> PathBuf {
        self.lab.join("lab.json")
    }
    /// `target/lab/seed.json`.
    pub fn seed_manifest(&self) -> PathBuf {
        self.lab.join("seed.json")
    }
    /// Lock serialising changes to passwd-files and the transport map.
    pub fn lock(&self) -> PathBuf {
        self.lab.join("lab.lock")
    }
}

/// Runs one `lab` subcommand.
pub fn run(command: LabCommand) -> Result<ExitCode> {
    let paths = Paths::discover()?;
    match command {
        LabCommand::Install => {
            let start = Instant::now();
            install::install(&paths)?;
            install::install_foreign(&paths)?;
            println!("lab install: done in {:.1?}", start.elapsed());
        }
        LabCommand::Up { with, backend } => {
            if let Some(backend) = backend {
                ldap::set_backend(&paths, backend)?;
            }
            up(&paths, &with)?;
        }
        LabCommand::Down => down(&paths)?,
        LabCommand::Status => return Ok(status(&paths)),
        LabCommand::Seed { mailboxes, messages, bench } => {
            ensure_up(&paths)?;
            let start = Instant::now();
            let summary = seed::seed(&paths, mailboxes, messages, bench)?;
            write_lab_json(&paths)?;
            println!("lab seed: {summary} in {:.1?}", start.elapsed());
        }
        LabCommand::Route { address, platform } => {
            let _lock = proc::lock(&paths.lock())?;
            postfix::route(&paths, &address, platform)?;
            println!("{address} → {} ({})", platform.name(), platform.transport());
        }
        LabCommand::Hold { address, release } => {
            let _lock = proc::lock(&paths.lock())?;
            postfix::hold(&paths, &address, !release)?;
            println!("{address}: {}", if release { "delivered again" } else { "held at the relay" });
        }
        LabCommand::Adduser { platform, address, password, also, userdb, backend } => {
            if let Some(bad) = userdb.iter().find(|f| !f.contains('=') || f.contains([' ', ':', '\n'])) {
                bail!("--userdb {bad:?}: expected KEY=VALUE without spaces or colons");
            }
            let extra = (!userdb.is_empty())
                .then(|| userdb.iter().map(|f| format!("userdb_{f}")).collect::<Vec<_>>().join(" "));
            let _lock = proc::lock(&paths.lock())?;
            let mut users = vec![(address.clone(), password.clone(), extra.clone())];
            users.extend(also.iter().map(|a| (a.clone(), password.clone(), extra.clone())));
            let backend = backend.unwrap_or_else(|| ldap::backend(&paths));
            provision(&paths, Some(backend), platform, &users)?;
            println!("{address} and {} more added to {} ({})", also.len(), platform.name(), backend.name());
        }
        LabCommand::Foreign { command } => return foreign::run(&paths, command),
        LabCommand::Token { address, ttl } => println!("{}", oidc::mint(&address, ttl)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn ensure_up(paths: &Paths) -> Result<()> {
    let down: Vec<_> = servers(paths).into_iter().filter(|s| !proc::port_open(s.port)).map(|s| s.name).collect();
    if !down.is_empty() {
        bail!("the lab is not up ({} down): run `cargo xtask lab up` first", down.join(", "));
    }
    Ok(())
}

/// One server, as `status` shows it.
struct Server {
    name: String,
    port: u16,
    log: PathBuf,
}

fn servers(paths: &Paths) -> Vec<Server> {
    let mut out = Vec::new();
    for p in Platform::ALL {
        for (what, port) in [("imap", p.imap_port()), ("managesieve", p.sieve_port()), ("lmtp", p.lmtp_port())] {
            out.push(Server { name: format!("{} {what}", p.name()), port, log: paths.dovecot_log(p) });
        }
    }
    let new = Platform::New;
    out.push(Server {
        name: "new managesieve (dovecot)".into(),
        port: new.dovecot_sieve_port(),
        log: paths.dovecot_log(new),
    });
    out[4].log = sieveproxy::log(paths);
    out.push(Server { name: "postfix smtp".into(), port: SMTP_PORT, log: paths.postfix_log() });
    out.push(Server { name: "postfix redirect smtp".into(), port: REDIRECT_SMTP_PORT, log: paths.postfix_log() });
    out.push(Server { name: "oidc".into(), port: OIDC_PORT, log: paths.oidc_log() });
    out.push(Server { name: "slapd".into(), port: ldap::LDAP_PORT, log: ldap::log(paths) });
    out.push(Server { name: "postgresql".into(), port: PG_PORT, log: PathBuf::from("/var/log/postgresql") });
    out
}

fn up(paths: &Paths, with: &[foreign::ForeignKind]) -> Result<()> {
    let start = Instant::now();
    let was_up = servers(paths).iter().all(|s| proc::port_open(s.port)) && paths.lab_json().exists();
    install::install(paths)?;
    fs::create_dir_all(&paths.lab)?;
    let _lock = proc::lock(&paths.lock())?;

    postgres::ensure_running()?;
    for p in Platform::ALL {
        dovecot::prepare(paths, p)?;
    }
    let system: Vec<_> = SYSTEM_ACCOUNTS.iter().map(|(a, pw)| ((*a).to_string(), (*pw).to_string(), None)).collect();
    dovecot::upsert_users(paths, Platform::Legacy, &system)?;
    // The provider first: the new Dovecot asks it about every token login
    // (nothing at its own start, so the reverse order only fails such logins
    // until the provider listens, and `up` waits for every port anyway).
    oidc::start(paths)?;
    // The directory before the servers that read it.
    ldap::start(paths)?;
    for p in Platform::ALL {
        dovecot::start(paths, p)?;
    }
    postfix::start(paths)?;
    sieveproxy::start(paths)?;

    let timeout = Duration::from_secs(20);
    for s in servers(paths) {
        proc::wait_port(&s.name, s.port, timeout, &s.log)?;
    }
    if !with.is_empty() {
        foreign::up(paths, with)?;
    }
    write_lab_json(paths)?;
    if was_up {
        println!("lab was already up (configs re-rendered and reloaded); {}", paths.lab_json().display());
    } else {
        println!("lab is up in {:.1?}; description in {}", start.elapsed(), paths.lab_json().display());
    }
    Ok(())
}

fn down(paths: &Paths) -> Result<()> {
    foreign::down(paths);
    oidc::stop(paths);
    sieveproxy::stop(paths);
    postfix::stop(paths);
    for p in Platform::ALL {
        dovecot::stop(paths, p);
    }
    ldap::stop(paths);
    println!("lab is down (PostgreSQL, the machine's service, is left running)");
    Ok(())
}

fn status(paths: &Paths) -> ExitCode {
    let mut all_up = true;
    for s in servers(paths) {
        let up = proc::port_open(s.port);
        all_up &= up;
        println!("{:<28} {HOST}:{:<6} {}", s.name, s.port, if up { "up" } else { "DOWN" });
    }
    // the foreign servers are shown, but start only on demand: not counted
    let _ = foreign::status(paths, false);
    if all_up { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `target/lab/lab.json`: everything a test needs to reach the lab.
#[derive(Serialize)]
struct LabJson {
    version: u32,
    workspace: PathBuf,
    lab_dir: PathBuf,
    xtask: PathBuf,
    host: &'static str,
    domain: &'static str,
    domains: Vec<&'static str>,
    master_user: &'static str,
    master_password: &'static str,
    master_separator: &'static str,
    legacy: PlatformJson,
    new: PlatformJson,
    smtp: SmtpJson,
    oidc: oidc::OidcJson,
    ldap: ldap::LdapJson,
    postgres: postgres::PostgresJson,
    system_accounts: Vec<AccountJson>,
    seed: Option<seed::SeedSummaryJson>,
    /// Foreign IMAP servers set up here (`lab foreign up`), by name.
    foreign: std::collections::BTreeMap<&'static str, foreign::ForeignJson>,
}

#[derive(Serialize)]
struct PlatformJson {
    host: &'static str,
    imap_port: u16,
    managesieve_port: u16,
    managesieve_dovecot_port: u16,
    lmtp_port: u16,
    transport: String,
    users_file: PathBuf,
    refused_file: PathBuf,
    master_users_file: PathBuf,
    mail_root: PathBuf,
    home_root: PathBuf,
    config: PathBuf,
    log: PathBuf,
    quota_mb: u64,
    /// Whether a Sieve redirect to any address is allowed (legacy), or only
    /// to `sieve_internal_domains` (new: refused at upload by the policy
    /// proxy, at delivery by the relay's redirect listener).
    sieve_external_redirect_allowed: bool,
    sieve_internal_domains: Vec<&'static str>,
    /// The SMTP port its Sieve scripts send through (`submission_host`).
    sieve_submission_port: u16,
}

#[derive(Serialize)]
struct SmtpJson {
    host: &'static str,
    port: u16,
    redirect_port: u16,
    transport_map: PathBuf,
    config_dir: PathBuf,
    log: PathBuf,
    default_transport: String,
    held_transport: &'static str,
}

#[derive(Serialize)]
struct AccountJson {
    address: String,
    password: String,
    platform: Platform,
}

fn write_lab_json(paths: &Paths) -> Result<()> {
    let platform = |p: Platform| PlatformJson {
        host: HOST,
        imap_port: p.imap_port(),
        managesieve_port: p.sieve_port(),
        managesieve_dovecot_port: p.dovecot_sieve_port(),
        lmtp_port: p.lmtp_port(),
        transport: p.transport(),
        users_file: paths.users(p),
        refused_file: paths.refused(p),
        master_users_file: paths.masters(p),
        mail_root: paths.mail_root(p),
        home_root: paths.home_root(p),
        config: paths.dovecot_conf(p),
        log: paths.dovecot_log(p),
        quota_mb: p.quota_mb(),
        sieve_external_redirect_allowed: p == Platform::Legacy,
        sieve_internal_domains: sieveproxy::INTERNAL_DOMAINS.to_vec(),
        sieve_submission_port: p.submission_port(),
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| paths.root.join("target/debug/xtask"));
    let json = LabJson {
        version: 1,
        workspace: paths.root.clone(),
        lab_dir: paths.lab.clone(),
        xtask: exe,
        host: HOST,
        domain: DOMAIN,
        domains: DOMAINS.to_vec(),
        master_user: MASTER_USER,
        master_password: MASTER_PASSWORD,
        master_separator: MASTER_SEPARATOR,
        legacy: platform(Platform::Legacy),
        new: platform(Platform::New),
        smtp: SmtpJson {
            host: HOST,
            port: SMTP_PORT,
            redirect_port: REDIRECT_SMTP_PORT,
            transport_map: paths.transport(),
            config_dir: paths.postfix_etc(),
            log: paths.postfix_log(),
            default_transport: Platform::Legacy.transport(),
            held_transport: postfix::HELD,
        },
        oidc: oidc::describe(paths)?,
        ldap: ldap::describe(paths),
        postgres: postgres::describe(),
        system_accounts: SYSTEM_ACCOUNTS
            .iter()
            .map(|(a, p)| AccountJson { address: (*a).into(), password: (*p).into(), platform: Platform::Legacy })
            .collect(),
        seed: seed::summary(paths)?,
        foreign: foreign::describe(paths),
    };
    let text = serde_json::to_string_pretty(&json)?;
    let tmp = paths.lab_json().with_extension("json.tmp");
    fs::write(&tmp, text + "\n")?;
    fs::rename(&tmp, paths.lab_json())?;
    Ok(())
}

/// Renders a template: every `{{KEY}}` is replaced; unknown keys are an error.
pub fn render(template: &Path, vars: &[(&str, String)]) -> Result<String> {
    let mut text =
        fs::read_to_string(template).with_context(|| format!("cannot read template {}", template.display()))?;
    for (key, value) in vars {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(pos) = text.find("{{") {
        let end = text[pos..].find("}}").map_or(text.len(), |e| pos + e + 2);
        bail!("template {} has an unfilled placeholder {}", template.display(), &text[pos..end]);
    }
    Ok(text)
}
