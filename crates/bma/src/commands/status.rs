//! `bma status`: how many mailboxes are in each state.

use std::process::ExitCode;

use bma_core::State;

use super::open_store;
use crate::config::Config;

/// Arguments of `bma status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: `{"mailboxes": N, "by_state": {"imported": N, …}}`.
    #[arg(long)]
    json: bool,
}

/// Prints the counts per state (every state, zeros included).
pub async fn run(config: &Config, args: &Args) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let counts = store.counts_by_state().await?;
    let total: u64 = counts.values().sum();
    if args.json {
        let by_state: serde_json::Map<String, serde_json::Value> =
            State::ALL.iter().map(|s| (s.as_str().to_owned(), counts.get(s).copied().unwrap_or(0).into())).collect();
        println!("{}", serde_json::json!({ "mailboxes": total, "by_state": by_state }));
    } else {
        println!("{} — {total} mailboxes", config.campaign.name);
        for s in State::ALL {
            let n = counts.get(&s).copied().unwrap_or(0);
            println!("  {:<20} {:>6}   {}", s.as_str(), n, s.label_fr());
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
