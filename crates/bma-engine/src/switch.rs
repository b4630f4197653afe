//! The cutover of one mailbox ([`Engine::cut_over`]) and its rollback
//! ([`Engine::roll_back`]): the steps of [`bma_core::switch`] done against
//! the platforms (`bma-platform`'s [`Accounts`] and [`Routing`]) and the
//! copy engine, each recorded by the store once its side effects are done.
//!
//! A run reads the steps the store holds for the mailbox's current attempt
//! and does the first one not recorded, then the next, so a worker killed
//! at any point resumes at the step it was doing and does it again; every
//! step is idempotent:
//!
//! - `check` changes nothing: a refusal (no legacy account, a password
//!   scheme the new platform does not accept, a mailbox whose copies the
//!   new platform alters) is [`EngineError::Refused`], permanent;
//! - `provision` writes the same account again (`Accounts::upsert` writes
//!   nothing when it is already so) and allows its logins;
//! - `hold` and `route` set a route the relay may already have; `route`
//!   and a rollback confirm theirs by a probe through the relay that must
//!   land on the expected side ([`crate::probe`]: found again if a killed
//!   run sent it, removed once landed);
//! - `final_copy`, `verify` and `post_copy` are incremental copies;
//! - `sieve` stores the legacy scripts, stripped of their external
//!   forwarding, on the new platform again (`PUTSCRIPT` replaces; see
//!   [`sieve`]: it never fails the cutover, a script left out flags the
//!   mailbox);
//! - `mail2` looks for its Message-ID in the legacy INBOX before putting
//!   it there (the Message-ID is the attempt's, the same at every run),
//!   and queues the backup address's copy under a key of the attempt.
//!
//! Mail 2 goes into the legacy INBOX while mail is held, so that the
//! post copy carries it to the new INBOX too: the manager finds it on
//! either side, without a new password. A manager who said they do not
//! know the password gets a new one, set on the new platform at this
//! step, in both copies of mail 2, as `passwords.delivery` says:
//!
//! - `link` (the default): a link that shows it once (`/mot-de-passe/…`);
//!   the store keeps the token's hash and the password sealed with a key
//!   only the token gives, until the link opens (then emptied) or expires;
//!   the backup copy waits in the outbox like any email (its body, the
//!   link, cut once sent);
//! - `inline`: the password written in the body. **Rule: the store never
//!   holds it, clear or sealed, not even for a moment.** It lives in the
//!   step's memory from its generation until both copies have left: the
//!   BMA's by IMAP APPEND into the legacy INBOX, the backup address's by
//!   SMTP to the relay from the step itself (not through the outbox,
//!   where it would wait in a row); the step's transaction then records
//!   the backup copy `sent`, its header only, with its `email_sent` event.
//!   A run killed between sending and recording makes, on resume, another
//!   password (the first is not kept anywhere to be sent again): the
//!   legacy copy is replaced and the backup address gets a second mail 2
//!   whose password is the one that works. A relay that refuses the copy
//!   fails the step, retried like any step.
//!
//! Either way the copy a killed run left in the legacy INBOX is replaced,
//! as it carries a password (or its link) the run now replaces, and the
//! password is never logged. Without a verified backup address (the BMA
//! copy alone would be out of the manager's reach) the password is
//! carried and the mailbox flagged for the helpdesk (`password_unknown`).
//!
//! A cutover whose job dies (its attempts spent, or refused) is undone by
//! the rollback's own path: mail routed to the legacy platform and what
//! was held released, the legacy login restored, the mailbox `failed` and
//! flagged `cutover_failed` for a human; one refused at `check` stays
//! `cutover_scheduled`, flagged, with nothing changed.

use std::sync::Arc;

use bma_core::settings::date_fr;
use bma_core::switch::Step;
use bma_core::{Actor, Address, AttentionReason, State};
use bma_imap::{AppendMessage, MailboxName};
use bma_mail::{TemplateKind, To};
use bma_platform::{Accounts, Login, NewAccount, Route, Routing, Scheme};
use bma_store::{MailboxRecord, NewPasswordLink, StepDone, SwitchEnd, SwitchProgress};
use bma_sync::Options;
use time::OffsetDateTime;

use crate::probe::PROBE_TIMEOUT;
use crate::receipt::Receipt;
use crate::{Engine, EngineError, PlatformAccess};

pub mod sieve;

/// How mail clients reach the new platform, as mail 2 tells the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// IMAP host.
    pub imap_host: String,
    /// IMAP port.
    pub imap_port: u16,
    /// IMAP security, as the client's settings name it (`SSL/TLS`, `STARTTLS`).
    pub imap_security: String,
    /// Submission host.
    pub smtp_host: String,
    /// Submission port.
    pub smtp_port: u16,
    /// Submission security.
    pub smtp_security: String,
}

/// How a new password reaches the manager (`passwords.delivery`): a
/// closed set, read from its name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordDelivery {
    /// A link that shows it once (OWASP's advice), in both copies of mail 2.
    #[default]
    Link,
    /// Written in the body of both copies of mail 2 (the FAQ's literal reading).
    Inline,
}

/// A `passwords.delivery` that is not one of [`PasswordDelivery`]'s names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not link or inline")]
pub struct UnknownDelivery(pub String);

impl PasswordDelivery {
    /// Its name in `bma.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordDelivery::Link => "link",
            PasswordDelivery::Inline => "inline",
        }
    }
}

impl std::str::FromStr for PasswordDelivery {
    type Err = UnknownDelivery;

    fn from_str(s: &str) -> Result<PasswordDelivery, UnknownDelivery> {
        [PasswordDelivery::Link, PasswordDelivery::Inline]
            .into_iter()
            .find(|d| d.as_str() == s.trim())
            .ok_or_else(|| UnknownDelivery(s.to_owned()))
    }
}

/// What the engine needs to cut mailboxes over.
#[derive(Debug, Clone)]
pub struct SwitchSettings {
    /// The legacy platform's accounts (read; logins refused and restored).
    pub legacy_accounts: Arc<dyn Accounts>,
    /// The new platform's accounts (created).
    pub new_accounts: Arc<dyn Accounts>,
    /// The relay's routes.
    pub routing: Arc<dyn Routing>,
    /// The password schemes the new platform accepts.
    pub accepted_schemes: Vec<Scheme>,
    /// The new platform's webmail, linked from mail 2.
    pub webmail_url: String,
    /// How a new password reaches the manager.
    pub password_delivery: PasswordDelivery,
    /// How mail clients reach the new platform.
    pub clients: ClientSettings,
    /// When and how many cutovers the scheduler starts (`hour`,
    /// `end_hour`, `max_parallel`); `bma cutover run` is an operator's and
    /// ignores them.
    pub limits: bma_core::switch::Limits,
    /// What the legacy platform answers a login while mail is held.
    pub refused_during: String,
    /// What the legacy platform answers a login once the mailbox migrated.
    pub refused_after: String,
    /// What the new platform answers a login after a rollback.
    pub refused_new_after_rollback: String,
    /// A test hook (`BMA_CUTOVER_CRASH_AFTER`): the process aborts at this
    /// point of a step, as a worker killed there would stop.
    pub crash: Option<Crash>,
}

impl SwitchSettings {
    /// The French reasons a platform answers, by default.
    pub fn default_reasons(webmail_url: &str) -> (String, String, String) {
        (
            "Votre boîte est en cours de migration vers la nouvelle messagerie : réessayez dans une heure.".to_owned(),
            format!("Votre boîte a été migrée : connectez-vous sur la nouvelle messagerie, {webmail_url}"),
            "La migration de votre boîte a été annulée : utilisez votre messagerie habituelle.".to_owned(),
        )
    }
}

/// Where the test hook stops a cutover: right after a step is recorded
/// (`provision`), or once its side effects are done but before it is
/// recorded (`before:provision`), the moment a resumed run must not repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    /// The step.
    pub step: Step,
    /// After its record (else before).
    pub recorded: bool,
}

impl std::str::FromStr for Crash {
    type Err = bma_core::switch::UnknownStep;

    fn from_str(s: &str) -> Result<Crash, Self::Err> {
        match s.trim().strip_prefix("before:") {
            Some(step) => Ok(Crash { step: step.parse()?, recorded: false }),
            None => Ok(Crash { step: s.trim().parse()?, recorded: true }),
        }
    }
}

impl Crash {
    fn at(self, step: Step, recorded: bool) {
        if self.step == step && self.recorded == recorded {
            tracing::error!(%step, recorded, "BMA_CUTOVER_CRASH_AFTER: aborting, as a worker killed here would stop");
            std::process::abort();
        }
    }
}

/// How a call to [`Engine::cut_over`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchOutcome {
    /// Migrated now, with its receipt.
    Migrated(Box<Receipt>),
    /// It already was.
    AlreadyMigrated,
    /// Its state changed meanwhile (a rollback, another worker): nothing more done.
    Left(State),
}

/// What a rollback undid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Undone {
    /// The state it was in.
    pub from: State,
    /// Whether mail was routed back to the legacy platform (and what was
    /// held released), confirmed by a probe landed in the legacy INBOX.
    pub routed_back: bool,
    /// Messages copied back from the new mailbox to the legacy one.
    pub copied_back: u64,
}

/// How long the link of a new password opens.
pub const PASSWORD_LINK_DAYS: i64 = 14;

/// What the `mail2` step did.
struct Mail2 {
    details: serde_json::Value,
    /// Queued in the outbox with the step.
    emails: Vec<bma_store::NewEmail>,
    /// Sent by the step itself (a password written out), recorded with it.
    sent: Vec<bma_store::NewEmail>,
    link: Option<NewPasswordLink>,
}

/// One mailbox's cutover at work.
struct Switch<'a> {
    engine: &'a Engine,
    settings: &'a SwitchSettings,
    legacy: &'a PlatformAccess,
    new: &'a PlatformAccess,
    address: Address,
    mailbox: MailboxRecord,
    actor: Actor,
    /// Why, when a person asked for it (recorded with the first step).
    reason: Option<String>,
}

impl Engine {
    /// The settings of the cutover, and both platforms, or why it cannot run.
    fn switch_parts(&self) -> Result<(&SwitchSettings, &PlatformAccess, &PlatformAccess), EngineError> {
        match (&self.settings.switch, &self.settings.legacy, &self.settings.new) {
            (Some(s), Some(l), Some(n)) => Ok((s, l, n)),
            _ => Err(EngineError::Incomplete(
                "the cutover needs [legacy], [new] and [cutover] (accounts and routes) configured".to_owned(),
            )),
        }
    }

    /// Cuts one mailbox over (or resumes its cutover where it stopped):
    /// every step not yet recorded for its current attempt, in order. The
    /// mailbox must be `cutover_scheduled` (a new attempt) or `migrating`.
    pub async fn cut_over(&self, address: &str, now: OffsetDateTime) -> Result<SwitchOutcome, EngineError> {
        self.cut_over_by(address, &self.actor(), None, now).await
    }

    /// [`Engine::cut_over`] at the request of `actor`, the steps recorded
    /// as theirs and `reason` with the first one.
    pub async fn cut_over_by(
        &self,
        address: &str,
        actor: &Actor,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<SwitchOutcome, EngineError> {
        let (settings, legacy, new) = self.switch_parts()?;
        let address = self.address(address)?;
        let mailbox = self.store.mailbox(&address).await?;
        let progress = self.store.switch_steps(&address).await?;
        match progress.state {
            State::Migrated => return Ok(SwitchOutcome::AlreadyMigrated),
            State::CutoverScheduled | State::Migrating => {}
            other => {
                return Err(EngineError::Refused(format!(
                    "{address} is {other}: only a mailbox in cutover_scheduled (or migrating, to resume) is cut over"
                )));
            }
        }
        let switch = Switch {
            engine: self,
            settings,
            legacy,
            new,
            address,
            mailbox,
            actor: actor.clone(),
            reason: reason.map(str::to_owned),
        };
        switch.run(progress, now).await
    }

    /// Rolls a cutover back: mail routed to the legacy platform again (and
    /// what was held released), whatever reached or was created in the new
    /// mailbox since the switch copied back, the legacy login restored, the
    /// new one refused; the mailbox `cutover_scheduled` again (or `failed`,
    /// for a cutover that died), with the event saying what was undone.
    pub async fn roll_back(
        &self,
        address: &str,
        reason: &str,
        actor: &Actor,
        end: SwitchEnd,
        now: OffsetDateTime,
    ) -> Result<Undone, EngineError> {
        let (settings, legacy, new) = self.switch_parts()?;
        let address = self.address(address)?;
        let progress = self.store.switch_steps(&address).await?;
        if !matches!(progress.state, State::Migrating | State::Migrated) {
            return Err(EngineError::Refused(format!(
                "{address} is {}: only a mailbox migrating or migrated is rolled back",
                progress.state
            )));
        }
        let done = progress.done();
        let a = address.as_str().to_owned();
        let mut undone = Undone { from: progress.state, routed_back: false, copied_back: 0 };
        if Step::switching(&done) {
            let routing = settings.routing.clone();
            let b = a.clone();
            blocking(move || {
                routing.set(&b, Route::Legacy)?;
                routing.release()
            })
            .await?;
            let unique = format!("{}-rollback", now.unix_timestamp_nanos() / 1_000_000);
            self.probe_route(&a, Route::Legacy, &unique, PROBE_TIMEOUT, now).await?;
            undone.routed_back = true;
        }
        if done.contains(&Step::Route) {
            // Mail reached the new box since the switch, and the manager may
            // have filed or written some: copied back, found again where it
            // came from (the reverse pair has its own state, and the copy
            // engine maps the messages the legacy box already holds).
            let options = Options { delete: false, ..Options::default() };
            let summary = bma_sync::run(&new.endpoint(&a), &legacy.endpoint(&a), self.store.clone(), &options).await?;
            if summary.outcome != bma_sync::Outcome::Complete {
                return Err(EngineError::Incomplete(format!(
                    "{a}: the copy back from the new platform is {:?}: nothing rolled back yet, try again",
                    summary.outcome
                )));
            }
            undone.copied_back = summary.copied;
        }
        let (legacy_accounts, new_accounts) = (settings.legacy_accounts.clone(), settings.new_accounts.clone());
        let refused = settings.refused_new_after_rollback.clone();
        let b = a.clone();
        blocking(move || {
            legacy_accounts.set_login(&b, &Login::Allowed)?;
            if done.contains(&Step::Provision) {
                new_accounts.set_login(&b, &Login::Refused(refused))?;
            }
            Ok(())
        })
        .await?;
        let details = serde_json::to_value(&undone).map_err(|e| EngineError::Encode(e.to_string()))?;
        self.store.end_switch(&address, end, reason, details, actor, now).await?;
        tracing::info!(address = %a, ?undone, "cutover rolled back");
        Ok(undone)
    }
}

/// What a password reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetOutcome {
    /// The platform whose account has the new password.
    pub platform: &'static str,
    /// Where the link goes: the BMA, and the verified backup address if any.
    pub recipients: Vec<String>,
}

impl Engine {
    /// A new password for a mailbox (the helpdesk's action, or the remedy
    /// for a password hash too weak to carry): set on the platform the
    /// mailbox lives on now (the new one once its account exists there,
    /// else the legacy one, so that the cutover carries a strong hash),
    /// the old password and every unopened link invalid; the link that
    /// shows it once emailed to the BMA and the verified backup address,
    /// with the `password_reset` event naming who and why, one transaction.
    pub async fn reset_password(
        &self,
        address: &str,
        reason: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ResetOutcome, EngineError> {
        let (settings, _, _) = self.switch_parts()?;
        let address = self.address(address)?;
        let mailbox = self.store.mailbox(&address).await?;
        let user = address.as_str().to_owned();
        let on_new = {
            let (accounts, user) = (settings.new_accounts.clone(), user.clone());
            matches!(mailbox.state, State::Migrating | State::Migrated)
                && blocking(move || accounts.read(&user)).await?.is_some()
        };
        let (platform, accounts) =
            if on_new { ("new", settings.new_accounts.clone()) } else { ("legacy", settings.legacy_accounts.clone()) };
        let password = bma_platform::password::generate();
        let hash = bma_platform::password::hash(&password)?;
        let token = crate::new_token();
        let sealed = bma_platform::password::seal(&password, &token)?;
        drop(password);
        let link = NewPasswordLink {
            token_hash: bma_core::TokenHash::of(&token),
            sealed,
            expires_at: now + time::Duration::days(PASSWORD_LINK_DAYS),
        };
        let s = &self.settings.settings;
        let contact = if on_new { &s.contacts.after } else { &s.contacts.during };
        let context = self.with_trust(serde_json::json!({
            "name": mailbox.name, "address": user,
            "password_link": format!("{}/mot-de-passe/{token}", self.settings.portal_base_url.trim_end_matches('/')),
            "password_expires_on": date_fr(link.expires_at.date()),
            "webmail_url": if on_new { settings.webmail_url.as_str() } else { "" },
            "contact": contact, "sender_name": s.sender.name,
        }));
        let mut recipients = vec![user.clone()];
        let form = self.store.latest_enrollment(mailbox.id).await?;
        recipients.extend(self.verified_backup(mailbox.id, form.as_ref()).await?);
        let mut emails = Vec::new();
        let stamp = now.unix_timestamp_nanos() / 1_000_000;
        for to in &recipients {
            let key = format!("new_password:{user}:{to}:{stamp}");
            let target = To { address: to, mailbox_id: Some(mailbox.id) };
            emails.push(self.compose(TemplateKind::NewPassword, target, key, &context, now)?);
        }
        // The platform first: a reset that fails after it is run again (a
        // newer link, the older ones revoked); one that fails before it
        // changed nothing.
        let account_user = user.clone();
        blocking(move || accounts.set_hash(&account_user, &hash)).await?;
        self.store.reset_password(&address, &link, &emails, reason, actor, now).await?;
        tracing::info!(address = %user, platform, "new password set, its link queued");
        Ok(ResetOutcome { platform, recipients })
    }
}

impl Engine {
    /// The backup address of `form` (a mailbox's latest), if it is verified:
    /// where a new password's link and mail 2 go beside the BMA.
    pub(crate) async fn verified_backup(
        &self,
        mailbox_id: i64,
        form: Option<&bma_store::Enrollment>,
    ) -> Result<Option<String>, EngineError> {
        let Some(f) = form else { return Ok(None) };
        let email = f.form.backup_email.trim().to_owned();
        if email.is_empty() {
            return Ok(None);
        }
        let verified = self.store.backup_status(mailbox_id, &email).await?.is_some_and(|b| b.verified_at.is_some());
        Ok(verified.then_some(email))
    }
}

/// Runs a platform call (files, processes) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, bma_platform::PlatformError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::Incomplete(format!("platform call: {e}")))?
        .map_err(Into::into)
}

impl Switch<'_> {
    async fn run(&self, progress: SwitchProgress, now: OffsetDateTime) -> Result<SwitchOutcome, EngineError> {
        let mut done = if progress.state == State::Migrating { progress.done() } else { Vec::new() };
        let mut started_at = if progress.state == State::Migrating { progress.started_at } else { None };
        let mut receipt: Option<Receipt> = progress
            .details(Step::Verify)
            .filter(|_| progress.state == State::Migrating)
            .and_then(|d| d.get("receipt"))
            .and_then(|r| serde_json::from_value(r.clone()).ok());
        let mut scripts = progress.details(Step::Sieve).filter(|_| progress.state == State::Migrating).cloned();
        // The campaign's clock, advanced by the real time the steps take.
        let started = std::time::Instant::now();
        while let Some(step) = Step::next(&done) {
            let at = now + time::Duration::try_from(started.elapsed()).unwrap_or(time::Duration::ZERO);
            let t0 = std::time::Instant::now();
            let (mut emails, mut sent) = (Vec::new(), Vec::new());
            let mut link = None;
            let details = match step {
                Step::Check => {
                    let mut details = self.check().await?;
                    if let (Some(reason), Some(map)) = (&self.reason, details.as_object_mut()) {
                        map.insert("reason".to_owned(), serde_json::Value::from(reason.as_str()));
                    }
                    details
                }
                Step::Provision => self.provision().await?,
                Step::Hold => self.hold().await?,
                Step::FinalCopy => self.copy(true).await?,
                Step::PostCopy => {
                    self.point_to_new().await?;
                    self.copy(false).await?
                }
                Step::Verify => {
                    let r = self.verify().await?;
                    let details = serde_json::json!({ "receipt": &r });
                    receipt = Some(r);
                    details
                }
                Step::Sieve => {
                    let details = self.sieve(at).await?;
                    scripts = Some(details.clone());
                    details
                }
                Step::Mail2 => {
                    let done = self.mail2(started_at.unwrap_or(at), at, scripts.as_ref()).await?;
                    (emails, sent, link) = (done.emails, done.sent, done.link);
                    done.details
                }
                Step::Route => self.route(started_at.unwrap_or(at), at).await?,
            };
            if let Some(crash) = self.settings.crash {
                crash.at(step, false);
            }
            // A step is recorded at the time it is done.
            let at = now + time::Duration::try_from(started.elapsed()).unwrap_or(time::Duration::ZERO);
            let store = &self.engine.store;
            let recorded = match step {
                Step::Check => store.start_switch(&self.address, details, &self.actor, at).await?,
                Step::PostCopy => {
                    let receipt = serde_json::to_value(&receipt).map_err(|e| EngineError::Encode(e.to_string()))?;
                    store.finish_switch(&self.address, details, receipt, &self.actor, at).await?
                }
                _ => {
                    let done = StepDone { step, details: &details, emails: &emails, sent: &sent, link: link.as_ref() };
                    store.record_step(&self.address, done, &self.actor, at).await?
                }
            };
            if !recorded {
                let state = store.switch_steps(&self.address).await?.state;
                tracing::warn!(address = %self.address, %step, %state, "cutover: the mailbox changed state meanwhile");
                return Ok(SwitchOutcome::Left(state));
            }
            tracing::info!(address = %self.address, %step, ms = t0.elapsed().as_millis() as u64, "cutover step done");
            if step == Step::Check {
                started_at = store.switch_steps(&self.address).await?.started_at;
            }
            done.push(step);
            if let Some(crash) = self.settings.crash {
                crash.at(step, true);
            }
        }
        if self.unknown_password().await? && self.verified_backup().await?.is_none() {
            let why = "the manager does not know the BMA's password and has no verified backup address: give a new one";
            let address = &self.address;
            self.engine
                .store
                .flag(address, AttentionReason::PasswordUnknown, why, serde_json::json!({}), &self.actor, now)
                .await?;
        }
        let receipt = receipt.ok_or_else(|| EngineError::Incomplete("migrated without a receipt".to_owned()))?;
        Ok(SwitchOutcome::Migrated(Box::new(receipt)))
    }

    fn user(&self) -> String {
        self.address.as_str().to_owned()
    }

    /// The checks before anything changes.
    async fn check(&self) -> Result<serde_json::Value, EngineError> {
        if self.mailbox_flag().await? == Some(AttentionReason::TargetAltered) {
            return Err(EngineError::Refused(format!(
                "{}: the new platform altered messages copied to it (flagged target_altered): change its setting and copy again first",
                self.address
            )));
        }
        // The new platform answers.
        let client = bma_imap::Client::connect(&self.new.config).await?;
        drop(client);
        let accounts = self.settings.legacy_accounts.clone();
        let user = self.user();
        let account = blocking(move || accounts.read(&user))
            .await?
            .ok_or_else(|| EngineError::Refused(format!("{}: no account on the legacy platform", self.address)))?;
        let scheme = account.hash.scheme();
        if !self.settings.accepted_schemes.contains(&scheme) {
            let accepted: Vec<&str> = self.settings.accepted_schemes.iter().map(|s| s.as_str()).collect();
            return Err(EngineError::Refused(format!(
                "{}: its password hash is {scheme}, which the new platform does not accept ({}){}: give the mailbox a new password (`bma mailbox reset-password`) or add the scheme to cutover.accepted_schemes if the new platform takes it",
                self.address,
                accepted.join(", "),
                if scheme.is_strong() { "" } else { ", and which is too weak to carry" }
            )));
        }
        Ok(serde_json::json!({ "scheme": scheme.as_str() }))
    }

    async fn mailbox_flag(&self) -> Result<Option<AttentionReason>, EngineError> {
        let list = self.engine.store.attention_list().await?;
        Ok(list.into_iter().find(|a| a.address == self.address.as_str()).map(|a| a.reason))
    }

    /// The legacy quota: the account's own, else what IMAP says, else the registry's.
    async fn legacy_quota(&self, account_quota: Option<u64>) -> Result<u64, EngineError> {
        if let Some(q) = account_quota {
            return Ok(q);
        }
        let mut session = self.legacy.session(self.address.as_str()).await?;
        let quota = session.quota(&MailboxName::new("INBOX")).await?;
        let _ = session.logout().await;
        quota.map(|q| q.limit_bytes).or(self.mailbox.quota_bytes).ok_or_else(|| {
            EngineError::Refused(format!(
                "{}: the legacy quota is unknown (no QUOTA, none in the registry)",
                self.address
            ))
        })
    }

    /// The account on the new platform: the legacy hash, the quota × the multiplier.
    async fn provision(&self) -> Result<serde_json::Value, EngineError> {
        let accounts = self.settings.legacy_accounts.clone();
        let user = self.user();
        let legacy = blocking(move || accounts.read(&user))
            .await?
            .ok_or_else(|| EngineError::Refused(format!("{}: no account on the legacy platform", self.address)))?;
        let legacy_quota = self.legacy_quota(legacy.quota_bytes).await?;
        let multiplier = u64::from(self.engine.settings.settings.campaign.quota_multiplier.max(1));
        let quota = legacy_quota.saturating_mul(multiplier);
        let account = NewAccount { address: self.user(), hash: legacy.hash.clone(), quota_bytes: quota };
        let accounts = self.settings.new_accounts.clone();
        let user = self.user();
        let written = blocking(move || {
            accounts.upsert(&account)?;
            accounts.set_login(&account.address, &Login::Allowed)?;
            accounts.read(&user)
        })
        .await?;
        if written.as_ref().map(|a| (&a.hash, a.quota_bytes)) != Some((&legacy.hash, Some(quota))) {
            return Err(EngineError::Incomplete(format!(
                "{}: the new account does not read back as written",
                self.address
            )));
        }
        // What the new platform's IMAP says (a quota in KiB).
        let mut session = self.new.session(self.address.as_str()).await?;
        let seen = session.quota(&MailboxName::new("INBOX")).await?;
        let _ = session.logout().await;
        if let Some(q) = seen
            && q.limit_bytes < quota.saturating_sub(1024)
        {
            return Err(EngineError::Incomplete(format!(
                "{}: the new platform's quota is {} bytes, {quota} expected",
                self.address, q.limit_bytes
            )));
        }
        Ok(serde_json::json!({
            "scheme": legacy.hash.scheme().as_str(),
            "legacy_quota_bytes": legacy_quota,
            "quota_bytes": quota,
            "imap_quota_bytes": seen.map(|q| q.limit_bytes),
        }))
    }

    /// The legacy login refused; then mail held at the relay (last, so
    /// that the time mail is held is the step's end to the route's).
    async fn hold(&self) -> Result<serde_json::Value, EngineError> {
        let (routing, accounts) = (self.settings.routing.clone(), self.settings.legacy_accounts.clone());
        let (user, reason) = (self.user(), self.settings.refused_during.clone());
        blocking(move || {
            accounts.set_login(&user, &Login::Refused(reason))?;
            routing.set(&user, Route::Held)
        })
        .await?;
        Ok(serde_json::json!({ "route": Route::Held.as_str(), "legacy_login": "refused" }))
    }

    /// An incremental copy from the legacy platform (`delete`: removals
    /// carried, the final copy; not after the switch, when the new box is
    /// the manager's).
    async fn copy(&self, delete: bool) -> Result<serde_json::Value, EngineError> {
        let options = Options { delete, ..Options::default() };
        let user = self.user();
        let summary =
            bma_sync::run(&self.legacy.endpoint(&user), &self.new.endpoint(&user), self.engine.store.clone(), &options)
                .await?;
        if summary.outcome != bma_sync::Outcome::Complete {
            return Err(EngineError::Incomplete(format!(
                "{user}: {:?}, {} copied, {} refused, {} altered, {} folder errors",
                summary.outcome, summary.copied, summary.skipped, summary.altered, summary.errors
            )));
        }
        Ok(serde_json::json!({
            "copied": summary.copied, "copied_bytes": summary.copied_bytes,
            "folders": summary.folders.len(), "elapsed_ms": summary.elapsed_ms,
        }))
    }

    /// The receipt, from a pass while mail is held; refused if anything is missing.
    async fn verify(&self) -> Result<Receipt, EngineError> {
        let options = Options { delete: true, ..Options::default() };
        let user = self.user();
        let summary =
            bma_sync::run(&self.legacy.endpoint(&user), &self.new.endpoint(&user), self.engine.store.clone(), &options)
                .await?;
        let receipt = Receipt::of(&summary);
        match receipt.shortfall() {
            None => Ok(receipt),
            Some(why) => Err(EngineError::Incomplete(format!("{user}: the receipt is short: {why}"))),
        }
    }

    /// The Sieve scripts carried to the new platform without their
    /// external forwarding ([`sieve`]); the mailbox flagged for a human
    /// when one was left out, never a failure.
    async fn sieve(&self, at: OffsetDateTime) -> Result<serde_json::Value, EngineError> {
        let domains = self.engine.internal_domains();
        let migration = sieve::migrate(self.legacy, self.new, self.address.as_str(), &domains).await;
        if let Some(why) = migration.left_out() {
            tracing::warn!(address = %self.address, %why, "cutover: Sieve scripts left out");
            let names: Vec<&str> = migration.scripts.iter().filter(|s| !s.stored).map(|s| s.name.as_str()).collect();
            let details = serde_json::json!({ "scripts": names });
            let store = &self.engine.store;
            store.flag(&self.address, AttentionReason::SieveNotMigrated, &why, details, &self.actor, at).await?;
        }
        Ok(migration.to_details())
    }

    async fn unknown_password(&self) -> Result<bool, EngineError> {
        let form = self.engine.store.latest_enrollment(self.mailbox.id).await?;
        Ok(form.is_some_and(|f| !f.form.knows_password))
    }

    /// Mail 2: into the legacy INBOX (unless already there), and to the
    /// verified backup address; for a manager who does not know the
    /// password and has a verified backup address, a new password on the
    /// new platform, in both copies as a link or written out
    /// (`passwords.delivery`). The backup copy goes through the outbox,
    /// except one with the password written out: it leaves from here, so
    /// that the password never waits in the store (see the module doc).
    async fn mail2(
        &self,
        attempt: OffsetDateTime,
        at: OffsetDateTime,
        scripts: Option<&serde_json::Value>,
    ) -> Result<Mail2, EngineError> {
        let engine = self.engine;
        let s = &engine.settings.settings;
        let form = engine.store.latest_enrollment(self.mailbox.id).await?;
        let password_unknown = form.as_ref().is_some_and(|f| !f.form.knows_password);
        let backup = self.verified_backup().await?;
        let (mut link, mut password_link, mut password) = (None, None, None);
        if password_unknown && backup.is_some() {
            let new = self.new_password().await?;
            match self.settings.password_delivery {
                PasswordDelivery::Link => {
                    let (l, url) = self.password_link(&new, at)?;
                    (link, password_link) = (Some(l), Some(url));
                }
                PasswordDelivery::Inline => password = Some(new),
            }
        }
        let c = &self.settings.clients;
        let mut context = engine.with_trust(serde_json::json!({
            "name": self.mailbox.name, "address": self.address.as_str(),
            "migrated_on": date_fr(at.date()), "resent": false,
            "webmail_url": self.settings.webmail_url,
            "password_unknown": password_unknown,
            "password_link": password_link,
            "new_password": password.as_ref().map(|p| p.expose()),
            "password_expires_on": date_fr((at + time::Duration::days(PASSWORD_LINK_DAYS)).date()),
            "quota_multiplier": s.campaign.quota_multiplier,
            "imap_host": c.imap_host, "imap_port": c.imap_port, "imap_security": c.imap_security,
            "smtp_host": c.smtp_host, "smtp_port": c.smtp_port, "smtp_security": c.smtp_security,
            "contact": &s.contacts.after, "sender_name": s.sender.name,
        }));
        sieve::add_to_mail2(&mut context, scripts, &engine.settings.portal_base_url);
        drop(password);
        let unique = (attempt.unix_timestamp_nanos() / 1_000_000).to_string();
        let to = To { address: self.address.as_str(), mailbox_id: Some(self.mailbox.id) };
        let letter = engine.composer.compose_stable(TemplateKind::Migrated, to, &context, &unique)?;
        let user = self.user();
        let there = crate::send::inbox_uids(self.legacy, &user, &letter.message_id).await?;
        // A copy left by a run killed before its record: the same letter,
        // unless it carries a password (or its link) since replaced.
        let new_password = password_unknown && backup.is_some();
        let put = there.is_empty() || new_password;
        if put {
            crate::send::expunge_from_inbox(self.legacy, &user, &there).await?;
            let mut session = self.legacy.session(&user).await?;
            let inbox = MailboxName::new("INBOX");
            session.append(&inbox, AppendMessage { body: &letter.raw, flags: &[], internal_date: None }).await?;
            let _ = session.logout().await;
        }
        let (mut emails, mut sent) = (Vec::new(), Vec::new());
        if let Some(email) = &backup {
            let to = To { address: email, mailbox_id: Some(self.mailbox.id) };
            let key = format!("mail2:{}:{unique}", self.address);
            let row = engine.compose(TemplateKind::Migrated, to, key, &context, at)?;
            if new_password && self.settings.password_delivery == PasswordDelivery::Inline {
                engine.send_now(&row).await?;
                sent.push(row);
            } else {
                emails.push(row);
            }
        }
        let details = serde_json::json!({
            "message_id": letter.message_id, "legacy_inbox": if put { "put" } else { "found" },
            "backup": backup, "new_password": new_password,
            "password_delivery": new_password.then_some(self.settings.password_delivery.as_str()),
        });
        Ok(Mail2 { details, emails, sent, link })
    }

    /// The verified backup address of the latest form, if any.
    async fn verified_backup(&self) -> Result<Option<String>, EngineError> {
        let form = self.engine.store.latest_enrollment(self.mailbox.id).await?;
        self.engine.verified_backup(self.mailbox.id, form.as_ref()).await
    }

    /// A new password, its hash set on the new platform (its quota kept).
    async fn new_password(&self) -> Result<bma_imap::Secret, EngineError> {
        let password = bma_platform::password::generate();
        let hash = bma_platform::password::hash(&password)?;
        let accounts = self.settings.new_accounts.clone();
        let user = self.user();
        blocking(move || accounts.set_hash(&user, &hash)).await?;
        Ok(password)
    }

    /// The link that shows `password` once: the password sealed under a
    /// key only the link's token gives, and the link's URL.
    fn password_link(
        &self,
        password: &bma_imap::Secret,
        at: OffsetDateTime,
    ) -> Result<(NewPasswordLink, String), EngineError> {
        let token = crate::new_token();
        let sealed = bma_platform::password::seal(password, &token)?;
        let link = NewPasswordLink {
            token_hash: bma_core::TokenHash::of(&token),
            sealed,
            expires_at: at + time::Duration::days(PASSWORD_LINK_DAYS),
        };
        let url = format!("{}/mot-de-passe/{token}", self.engine.settings.portal_base_url.trim_end_matches('/'));
        Ok((link, url))
    }

    /// Mail routed to the new platform, what was held released, and the
    /// route confirmed by a probe that lands in the new INBOX (the
    /// attempt's, so that a resumed run finds the one it sent).
    async fn route(&self, attempt: OffsetDateTime, at: OffsetDateTime) -> Result<serde_json::Value, EngineError> {
        let (routing, user) = (self.settings.routing.clone(), self.user());
        blocking(move || {
            routing.set(&user, Route::New)?;
            routing.release()
        })
        .await?;
        let unique = format!("{}-route", attempt.unix_timestamp_nanos() / 1_000_000);
        let probe = self.engine.probe_route(self.address.as_str(), Route::New, &unique, PROBE_TIMEOUT, at).await?;
        Ok(serde_json::json!({ "route": Route::New.as_str(), "released": true, "probe": probe }))
    }

    /// The legacy login's refusal now pointing to the new webmail (after
    /// the release: mail is no longer held while the file is rewritten).
    async fn point_to_new(&self) -> Result<(), EngineError> {
        let (accounts, user, reason) =
            (self.settings.legacy_accounts.clone(), self.user(), self.settings.refused_after.clone());
        blocking(move || accounts.set_login(&user, &Login::Refused(reason))).await
    }
}
