//! The cutover on the lab, for `tests/it/cutover.rs`: the engine's
//! [`SwitchSettings`] on either of the lab's backends ([`Platforms`]: its
//! Dovecot passwd-files and Postfix transport table, or its directory,
//! both read by the lab's servers at once), the same as `BMA_CUTOVER_*`
//! variables for the CLI, and a mailbox of its own per test, on the
//! legacy platform with a password and some mail, in the store up to
//! `cutover_scheduled`.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bma_core::lifecycle::{Actor, State};
use bma_core::{AddressRule, registry};
use bma_engine::{ClientSettings, SwitchSettings};
use bma_imap::{AppendMessage, Auth, Client, MailboxName, Secret};
use bma_platform::files::{PasswdFile, TransportMap};
use bma_platform::ldap::{Directory, LdapAccounts, LdapRoutes};
use bma_platform::{Accounts, Routing, Scheme, Transports};
use bma_store::Store;
use bma_sync::Endpoint;
use time::OffsetDateTime;

use crate::{addr, lab_file};

/// The webmail the lab's mail 2 links.
pub const WEBMAIL: &str = "https://webmail.bma.test";

/// Where a test's accounts and routes live: the lab serves both at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platforms {
    /// Dovecot passwd-files and the Postfix transport table.
    Files,
    /// The lab's directory (slapd), read by Dovecot's `ldap` passdb and
    /// userdb and Postfix's `ldap:` table.
    Ldap,
}

impl Platforms {
    /// Its name, as `lab adduser --backend` and `[cutover] backend` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Platforms::Files => "files",
            Platforms::Ldap => "ldap",
        }
    }
}

/// The lab's accounts and routes on its passwd-files and transport table.
pub fn lab_switch_settings() -> SwitchSettings {
    lab_switch_settings_on(Platforms::Files)
}

/// The lab's accounts and routes on `on`, as the engine reaches them.
pub fn lab_switch_settings_on(on: Platforms) -> SwitchSettings {
    let lab = lab_file("lab.json");
    let file = |p: &str, key: &str| lab[p][key].as_str().unwrap_or_else(|| panic!("lab.json: {p}.{key}")).to_owned();
    let transports = Transports {
        legacy: file("legacy", "transport"),
        new: file("new", "transport"),
        held: file("smtp", "held_transport"),
    };
    let config_dir = Some(file("smtp", "config_dir").into());
    let (legacy_accounts, new_accounts, routing): (Arc<dyn Accounts>, Arc<dyn Accounts>, Arc<dyn Routing>) = match on {
        Platforms::Files => {
            let accounts = |p: &str| {
                Arc::new(PasswdFile::new(file(p, "users_file"), file(p, "refused_file"), Some(Scheme::Sha512Crypt)))
            };
            let routes = TransportMap::new(file("smtp", "transport_map"), "hash", config_dir, transports);
            (accounts("legacy"), accounts("new"), Arc::new(routes))
        }
        Platforms::Ldap => {
            let directory = Directory::new(
                &file("ldap", "url"),
                bma_imap::Security::None,
                true,
                &file("ldap", "bind_dn"),
                Secret::new(file("ldap", "password")),
            )
            .expect("the lab's directory");
            let accounts = |base: &str| Arc::new(LdapAccounts::new(directory.clone(), &file("ldap", base), None));
            let routes = LdapRoutes::new(directory.clone(), &file("ldap", "routes_base"), config_dir, transports);
            (accounts("legacy_base"), accounts("new_base"), Arc::new(routes))
        }
    };
    let (refused_during, refused_after, refused_new_after_rollback) = SwitchSettings::default_reasons(WEBMAIL);
    SwitchSettings {
        legacy_accounts,
        new_accounts,
        routing,
        accepted_schemes: Scheme::STRONG.to_vec(),
        webmail_url: WEBMAIL.to_owned(),
        password_delivery: bma_engine::PasswordDelivery::Link,
        clients: ClientSettings {
            imap_host: "imap.bma.test".into(),
            imap_port: 993,
            imap_security: "SSL/TLS".into(),
            smtp_host: "smtp.bma.test".into(),
            smtp_port: 587,
            smtp_security: "STARTTLS".into(),
        },
        limits: bma_core::switch::Limits { start_hour: 6, end_hour: 24, max_parallel: 4 },
        refused_during,
        refused_after,
        refused_new_after_rollback,
        crash: None,
    }
}

/// The same, as the CLI's `BMA_*` variables (with `[new]` on the lab).
pub fn cutover_env(dir: &Path) -> Vec<(String, String)> {
    cutover_env_on(dir, Platforms::Files)
}

/// The same on `on` (the directory's password written in `dir`).
pub fn cutover_env_on(dir: &Path, on: Platforms) -> Vec<(String, String)> {
    let mut vars = files_cutover_env(dir);
    if on == Platforms::Ldap {
        let lab = lab_file("lab.json");
        let ldap = |key: &str| lab["ldap"][key].as_str().unwrap_or_else(|| panic!("lab.json: ldap.{key}")).to_owned();
        let secret = dir.join("ldap.password");
        std::fs::write(&secret, format!("{}\n", ldap("password"))).expect("the directory's password file");
        // The files backend's keys give way to the directory's.
        let files = [
            "BACKEND",
            "LEGACY_USERS_FILE",
            "LEGACY_REFUSED_FILE",
            "NEW_USERS_FILE",
            "NEW_REFUSED_FILE",
            "TRANSPORT_MAP",
        ];
        vars.retain(|(k, _)| !files.iter().any(|f| k.strip_prefix("BMA_CUTOVER_") == Some(*f)));
        for (k, v) in [
            ("BACKEND", "ldap".to_owned()),
            ("LDAP_URL", ldap("url")),
            ("LDAP_TLS", "none".to_owned()),
            ("LDAP_BIND_DN", ldap("bind_dn")),
            ("LDAP_PASSWORD_FILE", secret.display().to_string()),
            ("LDAP_LEGACY_BASE", ldap("legacy_base")),
            ("LDAP_NEW_BASE", ldap("new_base")),
            ("LDAP_ROUTES_BASE", ldap("routes_base")),
        ] {
            vars.push((format!("BMA_CUTOVER_{k}"), v));
        }
    }
    vars
}

fn files_cutover_env(dir: &Path) -> Vec<(String, String)> {
    let lab = lab_file("lab.json");
    let file = |p: &str, key: &str| lab[p][key].as_str().unwrap_or_else(|| panic!("lab.json: {p}.{key}")).to_owned();
    let vars = [
        ("BMA_NEW_URL", "imap://127.0.0.1:20143".to_owned()),
        ("BMA_NEW_TLS", "none".to_owned()),
        ("BMA_NEW_ADMIN", "admin".to_owned()),
        ("BMA_NEW_PASSWORD_FILE", dir.join("admin.password").display().to_string()),
        ("BMA_CUTOVER_BACKEND", "files".to_owned()),
        ("BMA_CUTOVER_WEBMAIL_URL", WEBMAIL.to_owned()),
        ("BMA_CUTOVER_LEGACY_USERS_FILE", file("legacy", "users_file")),
        ("BMA_CUTOVER_LEGACY_REFUSED_FILE", file("legacy", "refused_file")),
        ("BMA_CUTOVER_NEW_USERS_FILE", file("new", "users_file")),
        ("BMA_CUTOVER_NEW_REFUSED_FILE", file("new", "refused_file")),
        ("BMA_CUTOVER_TRANSPORT_MAP", file("smtp", "transport_map")),
        ("BMA_CUTOVER_POSTFIX_CONFIG_DIR", file("smtp", "config_dir")),
        ("BMA_CUTOVER_LEGACY_TRANSPORT", file("legacy", "transport")),
        ("BMA_CUTOVER_NEW_TRANSPORT", file("new", "transport")),
        ("BMA_CUTOVER_HELD_TRANSPORT", file("smtp", "held_transport")),
        ("BMA_CUTOVER_IMAP_HOST", "imap.bma.test".to_owned()),
        ("BMA_CUTOVER_SMTP_HOST", "smtp.bma.test".to_owned()),
        // The platforms' ManageSieve (the cutover's `sieve` step).
        ("BMA_LEGACY_MANAGESIEVE", format!("127.0.0.1:{}", lab["legacy"]["managesieve_port"])),
        ("BMA_NEW_MANAGESIEVE", format!("127.0.0.1:{}", lab["new"]["managesieve_port"])),
    ];
    vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A fresh campaign address (`ec` and six digits), distinct per call.
pub fn fresh_address() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("ec{:06}@adm.cfwb.be", 100_000 + nanos % 800_000)
}

/// A plain message, unique by `n`.
pub fn message(address: &str, n: usize) -> Vec<u8> {
    format!(
        "From: Direction <direction@ecole.test>\r\nTo: {address}\r\nSubject: Message {n}\r\n\
         Date: Tue, 3 Sep 2024 08:00:00 +0200\r\nMessage-ID: <m{n}.{address}>\r\n\r\nContenu {n}.\r\n"
    )
    .into_bytes()
}

/// The owner's own session on a lab platform.
pub async fn login(platform: &str, address: &str, password: &str) -> Result<Client, bma_imap::Error> {
    let mut c = Client::connect(&crate::lab_imap_config(platform)).await?;
    c.login(&Auth::Login { user: address.to_owned(), password: Secret::new(password) }).await?;
    Ok(c)
}

/// A mailbox on the legacy platform's passwd-file with `password`, three
/// messages in INBOX and two in `Archives/2023`.
pub async fn legacy_mailbox(address: &str, password: &str) {
    legacy_mailbox_on(Platforms::Files, address, password).await;
}

/// The same, its account on `on`.
pub async fn legacy_mailbox_on(on: Platforms, address: &str, password: &str) {
    crate::lab_adduser_on(on.name(), "legacy", address, password);
    let owner = Endpoint {
        config: crate::lab_imap_config("legacy"),
        auth: Auth::Login { user: address.to_owned(), password: Secret::new(password) },
    };
    let mut c = crate::copy::client(&owner).await;
    let archives = MailboxName::new("Archives/2023");
    c.create(&archives).await.expect("create");
    for n in 0..5 {
        let folder = if n < 3 { MailboxName::new("INBOX") } else { archives.clone() };
        let body = message(address, n);
        c.append(&folder, AppendMessage { body: &body, flags: &[], internal_date: None }).await.expect("append");
    }
    let _ = c.logout().await;
}

/// The mailbox imported and moved to `cutover_scheduled`, its cutover
/// day `at`'s (no form: nothing says the manager lost the password).
pub async fn scheduled(store: &Store, address: &str, at: OffsetDateTime) {
    let csv = format!("address,name\n{address},École de la bascule\n");
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).expect("registry").rows;
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), at).await.expect("import");
    let operator = Actor::Operator("test".into());
    for state in [State::Scheduled, State::Invited, State::Enrolled] {
        store
            .transition(&addr(address), state, &operator, "test", serde_json::json!({}), at)
            .await
            .expect("transition");
    }
    assert!(store.schedule_cutover(&addr(address), at.date(), &operator, at).await.expect("a slot"), "scheduled");
}

/// The form of a manager who does not know the BMA's password, with
/// `backup` as the backup address, verified (as its link would), for a
/// mailbox already `invited` (its id `mailbox_id`).
pub async fn enrolled_without_password(
    store: &Store,
    address: &str,
    mailbox_id: i64,
    backup: &str,
    at: OffsetDateTime,
) {
    use bma_core::form::{EnrollmentForm, ManagerIdentity};
    use bma_store::{BackupVerificationRequest, NewEmail, VerifyOutcome};
    let form = EnrollmentForm {
        family_name: "Dupont".into(),
        given_name: "Marie".into(),
        phone: "+3224133090".into(),
        role: "direction".into(),
        backup_email: backup.to_owned(),
        knows_password: false,
    };
    let identity = ManagerIdentity {
        subject: format!("sub-{address}"),
        name: "Marie Dupont".into(),
        given_name: "Marie".into(),
        family_name: "Dupont".into(),
        email: "marie.dupont@ecole.test".into(),
    };
    let email = |kind: &str, to: &str| NewEmail {
        mailbox_id: Some(mailbox_id),
        kind: kind.into(),
        key: format!("{kind}:{address}"),
        recipient: to.to_owned(),
        envelope_from: "bounces@bma.test".into(),
        message_id: format!("{kind}.{mailbox_id}@bma.test"),
        subject: kind.into(),
        raw: format!("Subject: {kind}\r\n\r\n{kind}\r\n"),
        run_at: at,
        max_attempts: 1,
    };
    let code = bma_engine::new_token();
    let verification = BackupVerificationRequest {
        code_hash: bma_core::TokenHash::of(&code),
        email: email("backup_verification", backup),
        expires_at: at + time::Duration::days(14),
    };
    let confirmation = email("confirmation", address);
    store
        .submit_enrollment(mailbox_id, &form, &identity, &confirmation, Some(&verification), at)
        .await
        .expect("the form");
    let verified = store.verify_backup(&bma_core::TokenHash::of(&code), at).await.expect("verification");
    assert!(matches!(verified, VerifyOutcome::Verified { .. }), "{verified:?}");
    let operator = Actor::Operator("test".into());
    assert!(store.schedule_cutover(&addr(address), at.date(), &operator, at).await.expect("a slot"), "scheduled");
}
