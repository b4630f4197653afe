//! `bma mailbox …`: operator actions on one mailbox. Only parses and
//! prints: the actions and their rules are `bma_engine::operations`.

use std::process::ExitCode;

use bma_core::{Address, State};
use bma_engine::operations::{self, Operation, Reason};
use bma_store::OlderLinks;

use super::{open_store, operator};
use crate::config::Config;

/// Operator actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Move a mailbox to another state (refused if the lifecycle forbids it).
    Transition {
        /// The BMA address.
        address: String,
        /// Target state (imported, scheduled, invited, …, blocked).
        state: State,
        /// Why (recorded in the timeline).
        #[arg(long)]
        reason: String,
        /// Who acts (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Pin a mailbox to an invitation wave (YYYY-MM-DD), or `none` to unpin.
    Pin {
        /// The BMA address.
        address: String,
        /// The wave day (YYYY-MM-DD), or none.
        wave: String,
        /// Why.
        #[arg(long, default_value = "pinned by an operator")]
        reason: String,
    },
    /// Leave a mailbox out of the planning (`--undo` to readmit it).
    Exclude {
        /// The BMA address.
        address: String,
        /// Readmit instead.
        #[arg(long)]
        undo: bool,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Send mail 1 again, with a fresh link (after a bounce, when the manager lost it, or when a
    /// link may have leaked or reached the wrong person); the links sent before stop working
    /// unless --keep-old-links. The outbox sends it at the next step of the scheduler.
    Resend {
        /// The BMA address.
        address: String,
        /// Why (recorded in the timeline).
        #[arg(long)]
        reason: String,
        /// Keep the links sent before working (mail 1, reminders, earlier resends).
        #[arg(long)]
        keep_old_links: bool,
        /// Who acts (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Send mail 2 again to a migrated mailbox (the manager lost it): to the BMA and its verified
    /// backup address, without any password (one lost is replaced by reset-password). The emails
    /// leave now.
    ResendMail2 {
        /// The BMA address.
        address: String,
        /// Why (recorded in the timeline).
        #[arg(long)]
        reason: String,
        /// Who acts (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Give the mailbox a new password (the manager lost it, or its hash is too weak to carry):
    /// set on the platform it lives on now, emailed to the BMA and its verified backup address as
    /// a link that shows it once; the old password and any unopened link stop working. The
    /// emails leave now.
    ResetPassword {
        /// The BMA address.
        address: String,
        /// Why (recorded in the timeline).
        #[arg(long)]
        reason: String,
        /// Who acts (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Set the planning priority (higher is invited earlier).
    Priority {
        /// The BMA address.
        address: String,
        /// The priority.
        #[arg(allow_negative_numbers = true)]
        priority: i64,
        /// Why.
        #[arg(long, default_value = "priority set by an operator")]
        reason: String,
    },
}

/// A wave day, or `none` to unpin.
fn pin_value(s: &str) -> Result<Option<time::Date>, String> {
    if s.eq_ignore_ascii_case("none") { Ok(None) } else { bma_core::settings::iso_date::parse(s).map(Some) }
}

/// The reason given, which must say why.
fn reason(s: &str) -> anyhow::Result<Reason> {
    Reason::new(s).map_err(|_| anyhow::anyhow!("--reason must say why"))
}

/// Runs the action: parses, calls `bma_engine::operations`, prints.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let address = |a: &str| Address::parse(a, &config.addresses);
    let at = super::campaign_now()?;
    match action {
        Action::Transition { address: a, state, reason: why, actor } => {
            let op = Operation { actor: operator(actor.as_deref()), reason: reason(&why)?, at };
            let m = operations::transition(&store, &address(&a)?, state, "cli", &op).await?;
            println!("{}: now {} ({})", m.address, m.state, m.state.label_fr());
        }
        Action::Pin { address: a, wave, reason: why } => {
            let wave = pin_value(&wave).map_err(anyhow::Error::msg)?;
            let op = Operation { actor: operator(None), reason: reason(&why)?, at };
            let a = address(&a)?;
            operations::pin(&store, &config.campaign, &a, wave, &op).await?;
            println!("{a}: pinned to {}", wave.map_or_else(|| "no wave".to_owned(), |d| d.to_string()));
        }
        Action::Exclude { address: a, undo, reason: why } => {
            let op = Operation { actor: operator(None), reason: reason(&why)?, at };
            let a = address(&a)?;
            operations::exclude(&store, &a, !undo, &op).await?;
            println!("{a}: {}", if undo { "back in the planning" } else { "left out of the planning" });
        }
        Action::Resend { address: a, reason: why, keep_old_links, actor } => {
            let op = Operation { actor: operator(actor.as_deref()), reason: reason(&why)?, at };
            let a = address(&a)?;
            let engine = crate::engine_config::engine(config, &format!("cli-{}", std::process::id())).await?;
            let older = if keep_old_links { OlderLinks::Keep } else { OlderLinks::Revoke };
            let id = operations::resend(&engine, &a, older, &op).await?;
            engine.store().close().await;
            let links = match older {
                OlderLinks::Keep => "the links sent before still work",
                OlderLinks::Revoke => "the links sent before no longer work",
            };
            println!("{a}: mail 1 queued again (outbox {id}), {links}; it leaves at the next step of the scheduler");
        }
        Action::ResendMail2 { address: a, reason: why, actor } => {
            let op = Operation { actor: operator(actor.as_deref()), reason: reason(&why)?, at };
            let a = address(&a)?;
            let engine = crate::engine_config::engine(config, &format!("cli-{}", std::process::id())).await?;
            let done = operations::resend_mail2(&engine, &a, &op).await?;
            let sent = engine.send_due(at).await?;
            engine.store().close().await;
            println!(
                "{a}: mail 2 sent again, without any password, to {} ({} email(s) left now)",
                done.recipients.join(" and "),
                sent.sent
            );
        }
        Action::ResetPassword { address: a, reason: why, actor } => {
            let op = Operation { actor: operator(actor.as_deref()), reason: reason(&why)?, at };
            let a = address(&a)?;
            let engine = crate::engine_config::engine(config, &format!("cli-{}", std::process::id())).await?;
            let done = operations::reset_password(&engine, &a, &op).await?;
            let sent = engine.send_due(at).await?;
            engine.store().close().await;
            println!(
                "{a}: new password set on the {} platform; its link sent to {} ({} email(s) left now)",
                done.platform,
                done.recipients.join(" and "),
                sent.sent
            );
        }
        Action::Priority { address: a, priority, reason: why } => {
            let op = Operation { actor: operator(None), reason: reason(&why)?, at };
            let a = address(&a)?;
            operations::set_priority(&store, &a, priority, &op).await?;
            println!("{a}: priority {priority}");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
