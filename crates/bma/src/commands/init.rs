//! `bma init`: writes the commented configuration file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::config::TEMPLATE;

/// Arguments of `bma init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write it.
    #[arg(default_value = "bma.toml")]
    path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

/// Writes the template, refusing to overwrite without `--force`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.path.exists() && !args.force {
        bail!("{} already exists (use --force to overwrite it)", args.path.display());
    }
    std::fs::write(&args.path, TEMPLATE).with_context(|| format!("cannot write {}", args.path.display()))?;
    println!(
        "wrote {} (the FAQ's campaign; edit it, then check it with `bma --config {} config`)",
        args.path.display(),
        args.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
