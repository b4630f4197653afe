//! `bma-engine`: what turns a planned campaign into emails, copies and
//! flags for the helpdesk.
//!
//! - [`jobs`]: the jobs of the queue, a closed set ([`bma_core::job::JobKind`]),
//!   one file per kind with its typed payload, dispatched by one `match`;
//! - [`scheduler`]: [`Engine::step`] turns what is due at an instant into
//!   jobs of the durable queue (idempotent: the same instant twice enqueues
//!   nothing more), runs the due jobs and sends the outbox; `bma worker`,
//!   `bma serve` and `bma campaign run` all call it, on the system clock or
//!   on simulated time;
//! - [`emails`]: mail 1 of the waves due, reminders to those who have not
//!   answered, the deadline list to the migration team, each queued in the
//!   outbox in the same transaction as its state change or event;
//! - [`send`]: the outbox sender (SMTP, rate-limited), which looks for an
//!   uncertain email in the relay's queue and its recipient's legacy
//!   mailbox before sending it again;
//! - [`bounces`]: delivery status notifications read over IMAP from the
//!   bounce mailbox, matched to their mailbox;
//! - [`report`]: the migration team's daily report (the day before in
//!   figures, what needs a human now), once a day through the outbox;
//! - [`forwarding`]: the forwarding audit (every Sieve script of a box on
//!   the legacy platform, read by `bma-sieve`), before a wave's mail 1 and
//!   on request;
//! - [`cutover`]: cutover slots, and mailboxes whose window closed without a form;
//! - [`presync`]: background copies to the new platform with `bma-sync`;
//! - [`probe`]: a route confirmed by a probe message through the relay,
//!   waited for on the expected side and removed there;
//! - [`switch`]: the cutover of one mailbox, step by step, and its
//!   rollback, against the platforms (`bma-platform`), with its
//!   [`receipt`]; [`mail2_again`]: mail 2 sent again on request, without
//!   any password;
//! - [`operations`]: the operator actions on one mailbox and their rules
//!   (pin, exclude, priority, resend mail 1, transition), for the CLI and
//!   the helpdesk.
//!
//! Invariants: the campaign's time comes from the caller (`now`, or a
//! [`bma_core::Clock`] read afresh for each claim), never from the wall
//! clock; leases of jobs and emails are on the real clock (the same real
//! time whatever the campaign clock's speed) and extended while the work
//! is in progress; tokens are random (32 bytes from the OS) and only their hash is
//! stored; emails leave only through the outbox; a paused or unstarted
//! campaign does nothing.

pub mod bounces;
pub mod cutover;
pub mod emails;
pub mod forwarding;
pub mod jobs;
pub mod mail2_again;
pub mod operations;
pub mod presync;
pub mod probe;
pub mod receipt;
pub mod report;
pub mod scheduler;
pub mod send;
pub mod switch;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bma_core::settings::Settings;
use bma_imap::{Auth, Client, Config, Secret};
use bma_mail::{Composer, Sender, SmtpSender, Templates};
use bma_store::Store;
use rand::RngCore;

pub use mail2_again::Mail2Again;
pub use receipt::Receipt;
pub use scheduler::StepReport;
pub use send::SendReport;
pub use switch::{
    ClientSettings, Crash, PasswordDelivery, ResetOutcome, SwitchOutcome, SwitchSettings, Undone, UnknownDelivery,
};

/// Admin access to one platform's IMAP (a master user that logs in on
/// behalf of any mailbox, SASL PLAIN with an authorization identity).
#[derive(Debug, Clone)]
pub struct PlatformAccess {
    /// The IMAP server.
    pub config: Config,
    /// The admin (master) user.
    pub admin: String,
    /// Its password.
    pub password: Secret,
    /// Its ManageSieve server (the same master user), when it has one:
    /// the forwarding audit reads the legacy platform's scripts there, the
    /// cutover writes them on the new platform's.
    pub sieve: Option<bma_platform::managesieve::Config>,
}

impl PlatformAccess {
    /// The copy engine's endpoint for `user`.
    pub fn endpoint(&self, user: &str) -> bma_sync::Endpoint {
        bma_sync::Endpoint { config: self.config.clone(), auth: self.auth(user) }
    }

    fn auth(&self, user: &str) -> Auth {
        Auth::Plain { authzid: Some(user.to_owned()), authcid: self.admin.clone(), password: self.password.clone() }
    }

    /// A session on `user`'s mailbox.
    pub async fn session(&self, user: &str) -> Result<Client, bma_imap::Error> {
        let mut client = Client::connect(&self.config).await?;
        client.login(&self.auth(user)).await?;
        Ok(client)
    }
}

/// Limits of the background copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresyncSettings {
    /// Copies at all.
    pub enabled: bool,
    /// Mailboxes copied at once.
    pub parallel: usize,
    /// IMAP connections per server, all copies together.
    pub max_connections: usize,
    /// Bytes copied per second, all copies together (0: no limit).
    pub max_bytes_per_second: u64,
    /// Allowed hours (UTC), `from` inclusive to `until` exclusive, wrapping
    /// over midnight (20 to 7: nights); 0 to 24: always.
    pub hours: (u8, u8),
    /// All day on Saturdays and Sundays as well.
    pub weekends: bool,
}

/// What the engine needs beyond the campaign settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The campaign.
    pub settings: Settings,
    /// Base URL of the portal (`https://bma.example`): links are `<base>/formulaire/<token>`.
    pub portal_base_url: String,
    /// The domain of the Cerbère EDU login page (`oidc.issuer`'s host),
    /// named in the emails so that a reader can check where they log in.
    pub login_domain: Option<String>,
    /// The bounce mailbox; each recipient gets its VERP variant.
    pub bounce_address: String,
    /// Domain of our Message-IDs.
    pub message_id_domain: String,
    /// Days the manager is asked to answer within.
    pub reply_days: i64,
    /// The migration team, who get the deadline list and the daily report.
    pub team_address: String,
    /// The hour of the campaign clock from which the daily report is sent
    /// to the team (`None`: no report).
    pub daily_report_hour: Option<u8>,
    /// At most this many emails a minute to the relay (0: no limit).
    pub max_per_minute: u32,
    /// The legacy platform (bounce mailbox, evidence of delivery, presync source).
    pub legacy: Option<PlatformAccess>,
    /// The new platform (presync target).
    pub new: Option<PlatformAccess>,
    /// Background copies.
    pub presync: PresyncSettings,
    /// The cutover: accounts, routes, mail 2's settings (`None`: not configured).
    pub switch: Option<SwitchSettings>,
    /// Before a wave's mail 1, audit the forwarding of its boxes on the
    /// legacy platform's ManageSieve (when it has one), so that mail 1 names it.
    pub audit_before_mail1: bool,
}

/// How the engine holds its work and looks for uncertain emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxOptions {
    /// Real time a job's or an email's lease lasts unless extended (a
    /// worker extends it every third of it while it works).
    pub lease: std::time::Duration,
    /// The relay's queue as JSON lines (Postfix: `postqueue -c DIR -j`),
    /// split in words; empty: the queue is not consulted.
    pub relay_queue_command: Vec<String>,
    /// Real time before an uncertain email is looked for again, doubled
    /// at each look (at most five minutes).
    pub recheck: std::time::Duration,
    /// Inconclusive looks before the email is left to a human.
    pub max_checks: u32,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            lease: std::time::Duration::from_secs(30),
            relay_queue_command: Vec::new(),
            recheck: std::time::Duration::from_secs(5),
            max_checks: 12,
        }
    }
}

/// What a worker holds a lease on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leased {
    /// A job.
    Job(i64),
    /// An email of the outbox.
    Email(i64),
}

/// An engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bma_store::StoreError),
    /// An email could not be composed (a template variable missing, an
    /// address a message cannot be built for).
    #[error(transparent)]
    Compose(#[from] bma_mail::ComposeError),
    /// IMAP failed.
    #[error("IMAP: {0}")]
    Imap(#[from] bma_imap::Error),
    /// The copy failed.
    #[error("copy: {0}")]
    Sync(#[from] bma_sync::Error),
    /// The relay refused an email sent at once (not through the outbox).
    #[error("SMTP: {0}")]
    Send(#[from] bma_mail::SendError),
    /// A copy ended without everything on the target.
    #[error("copy incomplete: {0}")]
    Incomplete(String),
    /// The job's payload is not what its kind expects.
    #[error("job {0}: bad payload")]
    Payload(i64),
    /// A job's payload could not be written.
    #[error("job payload: {0}")]
    Encode(String),
    /// The legacy platform does not know the mailbox: its master user may
    /// not log in on behalf of it (`[AUTHORIZATIONFAILED]`). Permanent.
    #[error("{0}: unknown on the legacy platform")]
    UnknownOnLegacy(String),
    /// An address that is not one of the campaign's mailboxes.
    #[error(transparent)]
    Address(#[from] bma_core::AddressError),
    /// A platform's accounts or routes could not be read or changed.
    #[error("platform: {0}")]
    Platform(#[from] bma_platform::PlatformError),
    /// Refused: what is asked cannot be done as things are (a password
    /// scheme the new platform does not take, a mailbox in another
    /// state…); the reason says what to change. Permanent.
    #[error("{0}")]
    Refused(String),
}

impl EngineError {
    /// Whether trying again cannot help (the job is dead at once): a
    /// mailbox the legacy platform does not know, a payload that is not
    /// what the job's kind expects, a refusal.
    pub fn is_permanent(&self) -> bool {
        matches!(self, EngineError::UnknownOnLegacy(_) | EngineError::Payload(_) | EngineError::Refused(_))
    }
}

/// The campaign engine.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    composer: Composer,
    settings: EngineSettings,
    sender: SmtpSender,
    worker: String,
    pace: tokio::sync::Mutex<Option<std::time::Instant>>,
    outbox: OutboxOptions,
    /// Shared by every presync of this engine: the connection cap per server…
    presync_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// … and the byte rate.
    presync_rate: Option<std::sync::Arc<bma_sync::RateLimiter>>,
}

/// A fresh personal token: 32 random bytes, URL-safe base64 (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Engine {
    /// An engine on `store`, sending through `sender`, as worker `worker`.
    pub fn new(
        store: Store,
        templates: Templates,
        settings: EngineSettings,
        sender: SmtpSender,
        worker: &str,
    ) -> Engine {
        let presync_slots = std::sync::Arc::new(tokio::sync::Semaphore::new(settings.presync.max_connections.max(1)));
        let presync_rate = (settings.presync.max_bytes_per_second > 0)
            .then(|| std::sync::Arc::new(bma_sync::RateLimiter::new(settings.presync.max_bytes_per_second)));
        let sender_of_emails =
            Sender { name: settings.settings.sender.name.clone(), address: settings.settings.sender.address.clone() };
        let composer =
            Composer::new(templates, sender_of_emails, &settings.bounce_address, &settings.message_id_domain);
        Engine {
            store,
            composer,
            settings,
            sender,
            worker: worker.to_owned(),
            pace: tokio::sync::Mutex::new(None),
            outbox: OutboxOptions::default(),
            presync_slots,
            presync_rate,
        }
    }

    /// The same engine with these leases and evidence checks.
    pub fn with_outbox_options(mut self, options: OutboxOptions) -> Engine {
        self.outbox = options;
        self
    }

    /// The length of a lease, real time.
    fn lease_length(&self) -> time::Duration {
        time::Duration::try_from(self.outbox.lease.max(std::time::Duration::from_secs(1)))
            .unwrap_or(time::Duration::seconds(30))
    }

    /// Runs `work` while extending the lease on `what` every third of a
    /// lease; a lease found lost is logged (the work's own record then
    /// fails with `LeaseLost`, and the caller skips it).
    pub(crate) async fn holding<T>(&self, what: Leased, work: impl std::future::Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        let every = self.outbox.lease.max(std::time::Duration::from_secs(1)) / 3;
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep(every) => {
                    let lease = bma_store::Lease::real(self.lease_length());
                    let renewed = match what {
                        Leased::Job(id) => self.store.heartbeat(id, &self.worker, lease.now, lease.length).await,
                        Leased::Email(id) => self.store.extend_email_lease(id, &self.worker, lease).await,
                    };
                    if let Err(e) = renewed {
                        tracing::warn!(?what, error = %e, "cannot extend a lease");
                    }
                }
            }
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    fn actor(&self) -> bma_core::Actor {
        bma_core::Actor::System(self.worker.clone())
    }

    /// A mailbox address read back from the store or a job, checked
    /// against the campaign's address rule.
    fn address(&self, text: &str) -> Result<bma_core::Address, EngineError> {
        Ok(bma_core::Address::parse(text, &self.settings.settings.addresses)?)
    }

    fn form_link(&self, token: &str) -> String {
        format!("{}/formulaire/{token}", self.settings.portal_base_url.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let a = super::new_token();
        let b = super::new_token();
        assert!(bma_core::token::well_formed(&a), "{a}");
        assert_ne!(a, b);
    }
}
