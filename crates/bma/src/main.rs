//! `bma`: runs a mailbox migration campaign from end to end.
//!
//! This binary is thin: it parses the command line, loads and validates the
//! configuration, opens the store and calls the libraries. Exit codes:
//! 0 success, 1 failure (including invalid input: nothing was changed),
//! 2 usage or configuration error.

mod autoconfig_config;
mod commands;
mod config;
mod console_config;
mod cutover_config;
mod engine_config;
mod metrics_config;
mod scheduler_lock;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Runs mailbox migration campaigns end to end (BMA of the Fédération Wallonie-Bruxelles).
#[derive(Debug, Parser)]
#[command(name = "bma", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: none, built-in defaults and BMA_* variables).
    #[arg(long, global = true, env = "BMA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// More logging (-v info, -vv debug); BMA_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented bma.toml with the FAQ's campaign as defaults.
    Init(commands::init::Args),
    /// Print the effective configuration (file + environment), or its errors.
    Config,
    /// Import data into the campaign.
    Import {
        #[command(subcommand)]
        what: commands::import::What,
    },
    /// Audits of the legacy platform: `forwarding` reads every mailbox's Sieve scripts.
    Audit {
        #[command(subcommand)]
        action: commands::audit::Action,
    },
    /// Checks of the platforms as people's clients see them: `autoconfig DOMAIN` (DNS, TLS, URLs).
    Doctor {
        #[command(subcommand)]
        action: commands::doctor::Action,
    },
    /// Run the campaign engine: invitations of due waves, the outbox.
    Campaign {
        #[command(subcommand)]
        action: commands::campaign::Action,
    },
    /// Preview (or --apply) the invitation waves.
    Plan(commands::plan::Args),
    /// Counts of mailboxes per state.
    Status(commands::status::Args),
    /// One mailbox and its timeline.
    Show(commands::show::Args),
    /// Act on one mailbox (operators).
    Mailbox {
        #[command(subcommand)]
        action: commands::mailbox::Action,
    },
    /// Cut mailboxes over to the new platform: run one now, see where they stand, roll one back.
    Cutover {
        #[command(subcommand)]
        action: commands::cutover::Action,
    },
    /// Personal data (GDPR): export or erase what is held about one person, purge after the retention.
    Privacy {
        #[command(subcommand)]
        action: commands::privacy::Action,
    },
    /// Serve the enrolment portal (the form behind the link of mail 1).
    Serve(commands::serve::Args),
    /// Run the campaign's scheduler and jobs until stopped (invitations, reminders, bounces, presync…).
    Worker(commands::worker::Args),
    /// The whole campaign on simulated time with modelled behaviour, week by week (sends nothing).
    Simulate(commands::simulate::Args),
    /// Copy one mailbox from a source IMAP server to a target (exit 0 complete, 3 partial, 4 failed).
    Sync(Box<commands::sync::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BMA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colours_on_stderr(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").is_some()))
        .init();
}

/// Colours only for a person at a terminal: never into a pipe or a file
/// (a log collected by systemd, the demo's output), never with `NO_COLOR`
/// set (no-color.org).
fn colours_on_stderr(is_terminal: bool, no_color: bool) -> bool {
    is_terminal && !no_color
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_only_at_a_terminal_without_no_color() {
        for (terminal, no_color, expected) in
            [(true, false, true), (true, true, false), (false, false, false), (false, true, false)]
        {
            assert_eq!(super::colours_on_stderr(terminal, no_color), expected, "{terminal} {no_color}");
        }
    }
}
