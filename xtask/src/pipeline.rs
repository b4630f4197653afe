//! `cargo xtask test`: everything CI checks, on a fresh machine.
//!
//! Brings the lab up (installing its servers if needed, Cyrus and Courier
//! included) and seeds it, then
//! runs `cargo fmt --check`, `cargo clippy -D warnings`, builds `bma` and
//! runs every test (nextest when present, else `cargo test`) on SQLite and
//! PostgreSQL. `cargo xtask demo`: the main job, a demo campaign on the lab
//! with the embedded default store.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Runs a command from the workspace root, failing with its name.
pub fn run(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!("==> {what}");
    let status = cmd.current_dir(root()).status().with_context(|| format!("cannot start: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    eprintln!("    {what}: ok in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs this xtask again with other arguments (`lab up`, `lab seed`).
pub fn xtask(args: &[&str]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    run(&format!("cargo xtask {}", args.join(" ")), Command::new(exe).args(args))
}

fn has_nextest() -> bool {
    cargo().args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success())
}

/// `cargo xtask test`.
pub fn test(skip_lint: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    // Cyrus and Courier too (≈ 1 s more): the copy engine's suite runs
    // against them as targets and as sources.
    xtask(&["lab", "up", "--with", "cyrus,courier"])?;
    xtask(&["lab", "seed"])?;
    if !skip_lint {
        run("cargo fmt --check", cargo().args(["fmt", "--all", "--check"]))?;
        run("cargo clippy", cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    }
    run("cargo build -p bma", cargo().args(["build", "-p", "bma"]))?;
    if has_nextest() {
        run(
            "cargo nextest run (SQLite and PostgreSQL)",
            cargo().args(["nextest", "run", "--workspace", "--no-fail-fast", "--failure-output", "final"]),
        )?;
    } else {
        eprintln!("cargo-nextest is not installed: running cargo test");
        run("cargo test (SQLite and PostgreSQL)", cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    }
    eprintln!("all checks passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
