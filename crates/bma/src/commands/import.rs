//! `bma import mailboxes FILE`: the registry import.
//!
//! All-or-nothing by default: one invalid row and nothing is imported,
//! every bad row is reported as `line N: …`, and the exit code is 1.
//! `--skip-invalid` imports the valid rows and writes the rejected ones,
//! with their reasons, to a CSV file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use bma_core::Actor;
use bma_core::csv_cell;
use bma_core::registry::{self, Parsed, RowError};

use super::open_store;
use crate::config::Config;

/// What to import.
#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// The list of mailboxes (CSV or an Excel CSV export).
    Mailboxes(Args),
}

/// Arguments of `bma import mailboxes`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file: header row with address (or type and fase) and name, optional
    /// quota_bytes, usage_bytes, messages; French names accepted.
    file: PathBuf,
    /// Import the valid rows and write the rejected ones to --rejects.
    #[arg(long)]
    skip_invalid: bool,
    /// Where rejected rows go with --skip-invalid (default: FILE.rejects.csv).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Check and report, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the import.
pub async fn run(config: &Config, what: What) -> anyhow::Result<ExitCode> {
    let What::Mailboxes(args) = what;
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let source =
        args.file.file_name().map_or_else(|| args.file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let parsed = registry::parse(&bytes, &config.addresses)
        .with_context(|| format!("{} cannot be imported", args.file.display()))?;
    let Parsed { rows, errors, encoding, delimiter, .. } = &parsed;
    let delimiter_name = match delimiter {
        ';' => "semicolons",
        ',' => "commas",
        _ => "tabs",
    };
    eprintln!("{}: {} valid rows, {} invalid ({encoding:?}, {delimiter_name})", source, rows.len(), errors.len());

    if !errors.is_empty() {
        for e in errors {
            eprintln!("{e}");
        }
        if !args.skip_invalid {
            eprintln!(
                "nothing imported: fix the rows above, or use --skip-invalid to import the {} valid rows",
                rows.len()
            );
            return Ok(ExitCode::FAILURE);
        }
        let rejects = args.rejects.clone().unwrap_or_else(|| default_rejects(&args.file));
        write_rejects(&rejects, &parsed.header, errors, *delimiter)?;
        eprintln!("{} rejected rows written to {}", errors.len(), rejects.display());
    }

    let store = open_store(config).await?;
    if args.dry_run {
        let plan = registry::plan_import(&store.known_mailboxes().await?, rows);
        let summary = serde_json::json!({
            "dry_run": true, "created": plan.new.len(), "updated": plan.updated.len(),
            "unchanged": plan.unchanged, "missing": plan.missing, "rejected": errors.len(),
        });
        report(&summary, args.json);
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = store.apply_import(rows, &source, &Actor::System("import".into()), super::campaign_now()?).await?;
    let summary = serde_json::json!({
        "dry_run": false, "created": outcome.created, "updated": outcome.updated,
        "unchanged": outcome.unchanged, "missing": outcome.missing, "rejected": errors.len(),
    });
    report(&summary, args.json);
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn report(summary: &serde_json::Value, json: bool) {
    if json {
        println!("{summary}");
        return;
    }
    let verb = if summary["dry_run"] == true { "would import" } else { "imported" };
    println!(
        "{verb}: {} new, {} updated, {} unchanged, {} rejected",
        summary["created"], summary["updated"], summary["unchanged"], summary["rejected"]
    );
    let missing = summary["missing"].as_array().map_or(&[][..], Vec::as_slice);
    if !missing.is_empty() {
        println!("{} mailboxes known to the campaign are not in this list (kept, not deleted):", missing.len());
        for a in missing.iter().take(20) {
            println!("  {}", a.as_str().unwrap_or_default());
        }
        if missing.len() > 20 {
            println!("  … and {} more (see --json)", missing.len() - 20);
        }
    }
}

fn default_rejects(file: &Path) -> PathBuf {
    let mut name = file.file_stem().unwrap_or_default().to_os_string();
    name.push(".rejects.csv");
    file.with_file_name(name)
}

/// The rejected rows as CSV (UTF-8 with BOM so that Excel opens it right):
/// `line`, the original columns, then `reason`; every cell neutralised
/// (`bma_core::csv_cell`) so that a spreadsheet runs no formula of the input.
fn write_rejects(path: &Path, header: &[String], errors: &[RowError], delimiter: char) -> anyhow::Result<()> {
    let mut out = Vec::from(&b"\xEF\xBB\xBF"[..]);
    {
        let mut w = csv::WriterBuilder::new().delimiter(delimiter as u8).flexible(true).from_writer(&mut out);
        let mut head = vec!["line".to_owned()];
        head.extend(header.iter().cloned());
        head.push("reason".to_owned());
        w.write_record(csv_cell::record(&head))?;
        for e in errors {
            let mut rec = vec![e.line.to_string()];
            rec.extend(e.fields.iter().cloned());
            rec.push(e.message.clone());
            w.write_record(csv_cell::record(&rec))?;
        }
        w.flush()?;
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}
