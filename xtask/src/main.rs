//! Project automation: `cargo xtask <task>`.
//!
//! - `cargo xtask demo`: the main job, a demo campaign on the lab (SQLite);
//! - `cargo xtask test`: everything CI checks (lab, fmt, clippy, all tests on
//!   SQLite and PostgreSQL);
//! - `cargo xtask bench import|plan|sync|portal|helpdesk|outbox|cutover`: benchmarks, written to docs/benchmarks.md;
//! - `cargo xtask lab …` drives the local test lab: real Dovecot, Postfix, an
//!   OpenID Connect provider and PostgreSQL on loopback (see `lab/README.md`).

mod bench;
mod demo;
mod helpdeskbench;
mod lab;
mod pipeline;
mod portalbench;
mod wrkbench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Project automation for the bma workspace.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: start the lab and run a demo campaign on the embedded SQLite store.
    Demo,
    /// Every check CI runs: lab up and seeded, fmt, clippy, all tests on SQLite and PostgreSQL.
    Test {
        /// Skip cargo fmt and clippy.
        #[arg(long)]
        skip_lint: bool,
    },
    /// Benchmarks, side by side, written to docs/benchmarks.md.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// The local test lab: legacy and new Dovecot, Postfix, OIDC, PostgreSQL.
    Lab {
        #[command(subcommand)]
        command: lab::LabCommand,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// `bma import mailboxes` of 3,500 rows, SQLite and PostgreSQL.
    Import {
        /// Rows in the generated registry.
        #[arg(long, default_value_t = 3500)]
        rows: usize,
        /// Runs per measurement (the median is kept).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
    /// The wave planner on 3,500 and 1,000,000 mailboxes.
    Plan,
    /// `bma sync` against `doveadm backup` and mbsync on the lab.
    Sync(lab::syncbench::SyncBenchArgs),
    /// The enrolment portal (`bma serve`) under wrk: link page and status page, SQLite.
    Portal,
    /// The helpdesk console (`bma serve`) under wrk: search and mailbox page, 3,500 mailboxes with full histories, SQLite.
    Helpdesk,
    /// The outbox through the lab's Postfix with 1, 2 and 4 `bma worker` on PostgreSQL: emails/s, delay to delivery.
    Outbox(lab::outboxbench::OutboxBenchArgs),
    /// `bma cutover run` of presynced lab mailboxes with mail arriving: hold window and whole cutover, against `doveadm backup` incremental.
    Cutover(lab::cutoverbench::CutoverBenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lab { command } => lab::run(command),
        Command::Demo => demo::demo().map(|()| ExitCode::SUCCESS),
        Command::Test { skip_lint } => pipeline::test(skip_lint).map(|()| ExitCode::SUCCESS),
        Command::Bench { what: BenchWhat::Import { rows, repeats } } => {
            bench::import(rows, repeats).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench { what: BenchWhat::Plan } => bench::plan().map(|()| ExitCode::SUCCESS),
        Command::Bench { what: BenchWhat::Sync(args) } => lab::syncbench::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench { what: BenchWhat::Portal } => portalbench::run_bench().map(|()| ExitCode::SUCCESS),
        Command::Bench { what: BenchWhat::Helpdesk } => helpdeskbench::run_bench().map(|()| ExitCode::SUCCESS),
        Command::Bench { what: BenchWhat::Outbox(args) } => lab::outboxbench::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench { what: BenchWhat::Cutover(args) } => lab::cutoverbench::run(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
