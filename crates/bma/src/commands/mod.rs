//! The subcommands, one module each, and what they share: loading the
//! configuration and opening the store.

pub mod audit;
pub mod campaign;
pub mod cutover;
pub mod doctor;
pub mod import;
pub mod init;
pub mod mailbox;
pub mod plan;
pub mod privacy;
pub mod serve;
pub mod show;
pub mod simulate;
pub mod status;
pub mod sync;
pub mod worker;

use std::process::ExitCode;

use anyhow::Context;
use bma_core::Actor;
use bma_store::Store;

use crate::config::{self, Config};
use crate::{Cli, Command};

/// Exit code for usage and configuration errors.
pub const EXIT_USAGE: u8 = 2;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Init(args) = &cli.command {
        return init::run(args);
    }
    if let Command::Sync(args) = &cli.command {
        return sync::run(args).await;
    }
    let config = match config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("error: {errors}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    match cli.command {
        Command::Init(_) | Command::Sync(_) => unreachable!("handled above"),
        Command::Config => {
            let mut shown = config.clone();
            shown.database.url = bma_store::redact(&shown.database.url);
            if !shown.oidc.client_secret.is_empty() {
                shown.oidc.client_secret = "***".to_owned();
            }
            if !shown.console.client_secret.is_empty() {
                shown.console.client_secret = "***".to_owned();
            }
            if !shown.metrics.token.is_empty() {
                shown.metrics.token = "***".to_owned();
            }
            print!("{}", toml::to_string_pretty(&shown).context("cannot print the configuration")?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve::run(&config, &args).await,
        Command::Import { what } => import::run(&config, what).await,
        Command::Plan(args) => plan::run(&config, &args).await,
        Command::Audit { action } => audit::run(&config, action).await,
        Command::Doctor { action } => doctor::run(&config, action).await,
        Command::Campaign { action } => campaign::run(&config, action).await,
        Command::Status(args) => status::run(&config, &args).await,
        Command::Show(args) => show::run(&config, &args).await,
        Command::Mailbox { action } => mailbox::run(&config, action).await,
        Command::Cutover { action } => cutover::run(&config, action).await,
        Command::Privacy { action } => privacy::run(&config, action).await,
        Command::Worker(args) => worker::run(&config, &args).await,
        Command::Simulate(args) => simulate::run(&config, &args).await,
    }
}

/// Opens the configured store (creating and migrating it as needed).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.database.url).await.context("cannot open the store")
}

/// The mailbox an operator named (any case): an address that cannot be
/// one of the campaign's is one the registry does not have.
pub fn mailbox_address(config: &Config, text: &str) -> Result<bma_core::Address, bma_store::StoreError> {
    bma_core::Address::parse(text, &config.addresses)
        .map_err(|_| bma_store::StoreError::NotFound(text.trim().to_lowercase()))
}

/// The campaign clock of a command: `BMA_NOW` (RFC 3339) when set, for
/// rehearsals and demonstrations on simulated time, so that every event of
/// a timeline is on the same clock; else the system clock.
pub fn campaign_now() -> anyhow::Result<time::OffsetDateTime> {
    match std::env::var("BMA_NOW") {
        Ok(v) if !v.trim().is_empty() => campaign::instant(&v).map_err(|e| anyhow::anyhow!("BMA_NOW: {e}")),
        _ => Ok(bma_core::Clock::now(&bma_core::SystemClock)),
    }
}

/// The operator behind a command line: `--as`, else `$USER`, else `cli`.
pub fn operator(name: Option<&str>) -> Actor {
    let name = name.map(str::to_owned).or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".to_owned());
    Actor::Operator(name)
}
