//! `bma mailbox …`: operator actions on one mailbox.

use std::process::ExitCode;

use bma_core::State;

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
                    &address,
                    state,
                    &actor,
                    &reason,
                    serde_json::json!({ "via": "cli" }),
                    bma_core::Clock::now(&bma_core::SystemClock),
                )
                .await?;
            println!("{}: now {} ({})", m.address, m.state, m.state.label_fr());
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
