//! `bma privacy …`: the rights of a person over their data (GDPR) and
//! the retention of the campaign's. Only parses and prints: what is found,
//! erased and purged, and how, is `bma_store::privacy`'s.
//!
//! - `export --subject SUB | --address ADDR`: everything held about one
//!   person, as JSON on stdout (the right of access);
//! - `erase --subject SUB | --address ADDR --reason "…" --yes`: the person
//!   replaced everywhere, in one transaction recorded on each mailbox it
//!   touched (without `--yes`: what would be erased, nothing written);
//! - `purge [--dry-run]`: the personal data of every mailbox whose
//!   retention is over (`[privacy] retention_months` after its migration
//!   or after the campaign's end, counted in days by
//!   `PrivacySettings::retention_days`), one transaction per mailbox.

use std::process::ExitCode;

use bma_engine::operations::Reason;
use bma_store::{Person, PersonalData, Retention, Scrubbed};

use super::{EXIT_USAGE, open_store, operator};
use crate::config::Config;

/// Who a request is about: one of the two.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Who {
    /// Their identity subject at the identity provider (Cerbère EDU).
    #[arg(long)]
    subject: Option<String>,
    /// An email address of theirs (a backup address, their identity's address).
    #[arg(long)]
    address: Option<String>,
}

impl Who {
    fn person(&self) -> anyhow::Result<Person> {
        match (&self.subject, &self.address) {
            (Some(s), _) => Person::subject(s).ok_or_else(|| anyhow::anyhow!("--subject is empty")),
            (None, Some(a)) => Person::address(a).ok_or_else(|| anyhow::anyhow!("--address '{a}' is not an address")),
            (None, None) => Err(anyhow::anyhow!("--subject or --address is needed")),
        }
    }
}

/// Personal data.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Everything held about one person, as JSON on stdout (GDPR article 15).
    Export {
        #[command(flatten)]
        who: Who,
    },
    /// Erase one person (GDPR article 17): their forms, sessions, emails and the events naming them
    /// keep their rows with the person replaced by "[effacé]" (addresses by efface@bma.invalid),
    /// pending emails to them are cancelled. Without --yes, only says what would be erased.
    Erase {
        #[command(flatten)]
        who: Who,
        /// Why (recorded in the timeline of each mailbox touched, the person replaced in it).
        #[arg(long)]
        reason: String,
        /// Erase (without it: what would be erased, nothing written).
        #[arg(long)]
        yes: bool,
        /// Who acts (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Remove the personal data whose retention is over ([privacy] retention_months after a mailbox's
    /// migration or after the campaign's end).
    Purge {
        /// Say what would go, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the mailboxes as JSON.
        #[arg(long)]
        json: bool,
        /// Who acts (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
}

/// `3 form version(s), 1 session(s), …`: the counts that are not zero.
fn summary(s: &Scrubbed) -> String {
    let parts: Vec<String> = [
        (s.forms, "form version(s)"),
        (s.verifications, "backup verification(s)"),
        (s.sessions, "portal session(s)"),
        (s.emails_cancelled, "pending email(s) cancelled"),
        (s.emails_redacted, "email(s)"),
        (s.events_redacted, "event(s)"),
        (s.staff_sessions, "console session(s)"),
        (s.staff_views, "console view(s) of the mailbox"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() { "nothing".to_owned() } else { parts.join(", ") }
}

/// What an export found, as counts.
fn found(data: &PersonalData) -> String {
    format!(
        "{} form version(s), {} backup verification(s), {} portal session(s), {} email(s), {} event(s), \
         {} console session(s), {} console view(s)",
        data.forms.len(),
        data.backup_verifications.len(),
        data.sessions.len(),
        data.emails.len(),
        data.events.len(),
        data.staff_sessions.len(),
        data.staff_views.len()
    )
}

/// Runs the action.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let now = super::campaign_now()?;
    let code = match action {
        Action::Export { who } => {
            let data = store.export_person(&who.person()?).await?;
            println!("{}", serde_json::to_string_pretty(&data)?);
            ExitCode::SUCCESS
        }
        Action::Erase { who, reason, yes, actor } => {
            let person = who.person()?;
            let reason = Reason::new(&reason).map_err(|_| anyhow::anyhow!("--reason must say why"))?;
            if yes {
                let done = store.erase_person(&person, &operator(actor.as_deref()), reason.as_str(), now).await?;
                if done.scrubbed.is_empty() {
                    println!("{person}: nothing held, nothing erased");
                } else {
                    println!("{person}: erased: {}", summary(&done.scrubbed));
                    println!("recorded in the timeline of: {}", done.mailboxes.join(", "));
                }
                ExitCode::SUCCESS
            } else {
                let data = store.export_person(&person).await?;
                println!("{person}: held: {}", found(&data));
                eprintln!("nothing erased: add --yes to erase");
                ExitCode::from(EXIT_USAGE)
            }
        }
        Action::Purge { dry_run, json, actor } => {
            let end = config.campaign.end;
            let retention = Retention { days: config.privacy.retention_days(end), campaign_end: end };
            let items = store.purge_personal_data(&retention, now, dry_run, &operator(actor.as_deref())).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                let verb = if dry_run { "would go" } else { "removed" };
                for item in &items {
                    println!("{}: {verb}: {} (due {})", item.mailbox, summary(&item.scrubbed), item.due_at.date());
                }
                println!(
                    "{} mailbox(es) {}; retention {} months ({} days) after a migration or the campaign's end ({end})",
                    items.len(),
                    if dry_run { "to purge, nothing written (--dry-run)" } else { "purged" },
                    config.privacy.retention_months,
                    retention.days
                );
            }
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}
