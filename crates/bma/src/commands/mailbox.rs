//! `bma mailbox …`: operator actions on one mailbox.

use std::process::ExitCode;

use bma_core::State;
use bma_store::{OlderLinks, PlanningChange};

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

/// Runs the action.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    match action {
        Action::Transition { address, state, reason, actor } => {
            if reason.trim().is_empty() {
                anyhow::bail!("--reason must say why");
            }
            let actor = operator(actor.as_deref());
            let m = store
                .transition(
                    &super::mailbox_address(config, &address)?,
                    state,
                    &actor,
                    &reason,
                    serde_json::json!({ "via": "cli" }),
                    super::campaign_now()?,
                )
                .await?;
            println!("{}: now {} ({})", m.address, m.state, m.state.label_fr());
        }
        Action::Pin { address, wave, reason } => {
            let wave = pin_value(&wave).map_err(anyhow::Error::msg)?;
            if let Some(day) = wave {
                let rules = (config.campaign.wave_rules())
                    .ok_or_else(|| anyhow::anyhow!("campaign.wave_weekday is not a day"))?;
                let days = rules.wave_dates();
                if !days.contains(&day) {
                    let list: Vec<String> = days.iter().map(ToString::to_string).collect();
                    anyhow::bail!("{day} is not a wave day (waves: {})", list.join(", "));
                }
            }
            store
                .change_planning(
                    &super::mailbox_address(config, &address)?,
                    &PlanningChange::Pin(wave),
                    &operator(None),
                    &reason,
                    super::campaign_now()?,
                )
                .await?;
            println!("{address}: pinned to {}", wave.map_or_else(|| "no wave".to_owned(), |d| d.to_string()));
        }
        Action::Exclude { address, undo, reason } => {
            store
                .change_planning(
                    &super::mailbox_address(config, &address)?,
                    &PlanningChange::Exclude(!undo),
                    &operator(None),
                    &reason,
                    super::campaign_now()?,
                )
                .await?;
            println!("{address}: {}", if undo { "back in the planning" } else { "left out of the planning" });
        }
        Action::Resend { address, reason, keep_old_links, actor } => {
            if reason.trim().is_empty() {
                anyhow::bail!("--reason must say why");
            }
            let engine = crate::engine_config::engine(config, &format!("cli-{}", std::process::id())).await?;
            let older = if keep_old_links { OlderLinks::Keep } else { OlderLinks::Revoke };
            let id = engine
                .resend_invitation(&address, older, &operator(actor.as_deref()), &reason, super::campaign_now()?)
                .await?;
            engine.store().close().await;
            let links = match older {
                OlderLinks::Keep => "the links sent before still work",
                OlderLinks::Revoke => "the links sent before no longer work",
            };
            println!(
                "{address}: mail 1 queued again (outbox {id}), {links}; it leaves at the next step of the scheduler"
            );
        }
        Action::Priority { address, priority, reason } => {
            store
                .change_planning(
                    &super::mailbox_address(config, &address)?,
                    &PlanningChange::Priority(priority),
                    &operator(None),
                    &reason,
                    super::campaign_now()?,
                )
                .await?;
            println!("{address}: priority {priority}");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
