//! `cargo xtask bench import`: the registry import, measured.
//!
//! Builds `bma` in release, generates a registry of 3,500 mailboxes as an
//! Excel export (Windows-1252, semicolons, CRLF), and times `bma import
//! mailboxes` on a fresh store (schema creation included), then again on
//! the same store (nothing changes), on SQLite and on PostgreSQL, side by
//! side in one run. Results replace their section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::pipeline::{root, run};

/// Generates `n` rows of an Excel CSV export: `type;fase;nom;quota;utilisation;messages`.
pub fn excel_registry(n: usize) -> Vec<u8> {
    let mut out = b"type;fase;nom;quota;utilisation;messages\r\n".to_vec();
    for i in 0..n {
        let kind = if i % 7 == 0 { "po" } else { "ec" };
        let fase = 1000 + i;
        // Windows-1252: 0xC9 = É, 0xE9 = é.
        out.extend_from_slice(format!("{kind};{fase};").as_bytes());
        out.extend_from_slice(b"\xC9cole fondamentale de la Communaut\xE9 n\xB0 ");
        out.extend_from_slice(format!("{i};{};{};{}\r\n", 104_857_600, 1_000_000 + i * 7919, 100 + i % 900).as_bytes());
    }
    out
}

fn time_import(bin: &Path, dir: &Path, db_url: &str, file: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new(bin)
        .args(["import", "mailboxes", file, "--json"])
        .current_dir(dir)
        .env("BMA_DATABASE_URL", db_url)
        .env_remove("BMA_CONFIG")
        .output()
        .context("cannot run bma")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!("bma import failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn psql(sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql])
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Runs the import benchmark and writes its section of docs/benchmarks.md.
pub fn import(rows: usize, repeats: usize) -> anyhow::Result<()> {
    run("cargo build --release -p bma", Command::new("cargo").args(["build", "--release", "-p", "bma"]))?;
    let bin = root().join("target/release/bma");
    let dir = tempfile_dir()?;
    std::fs::write(dir.join("registre.csv"), excel_registry(rows))?;

    let mut results: Vec<(&str, Duration, Duration)> = Vec::new();
    for backend in ["sqlite", "postgres"] {
        let mut fresh = Vec::new();
        let mut again = Vec::new();
        for i in 0..repeats {
            let url = if backend == "sqlite" {
                let f = dir.join(format!("bench-{i}.db"));
                let _ = std::fs::remove_file(&f);
                format!("sqlite://{}", f.display())
            } else {
                psql("DROP DATABASE IF EXISTS bma_bench_import WITH (FORCE)")?;
                psql("CREATE DATABASE bma_bench_import")?;
                "postgres://postgres@127.0.0.1:5432/bma_bench_import".to_owned()
            };
            fresh.push(time_import(&bin, &dir, &url, "registre.csv")?);
            again.push(time_import(&bin, &dir, &url, "registre.csv")?);
        }
        if backend == "postgres" {
            psql("DROP DATABASE IF EXISTS bma_bench_import WITH (FORCE)")?;
        }
        results.push((backend, median(fresh), median(again)));
    }
    let _ = std::fs::remove_dir_all(&dir);

    let target = Duration::from_secs(1);
    let mut section = String::new();
    let _ = writeln!(section, "## Registry import ({rows} rows)\n");
    let _ = writeln!(
        section,
        "`cargo xtask bench import`: `bma import mailboxes` (release build, whole process: start, parse a \
         Windows-1252 Excel export, plan, one transaction) on a fresh store (schema created), then again on \
         the same store (nothing changes). Median of {repeats} runs. The target is \"well under a second\".\n"
    );
    let _ = writeln!(section, "| store | fresh import | ratio to 1 s | re-import (no change) | ratio to 1 s |");
    let _ = writeln!(section, "|---|---|---|---|---|");
    for (backend, fresh, again) in &results {
        let _ = writeln!(
            section,
            "| {backend} | {:.0} ms | {:.2} | {:.0} ms | {:.2} |",
            fresh.as_secs_f64() * 1000.0,
            fresh.as_secs_f64() / target.as_secs_f64(),
            again.as_secs_f64() * 1000.0,
            again.as_secs_f64() / target.as_secs_f64()
        );
    }
    println!("{section}");
    write_section("Registry import", &section)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = root().join("target/bench-import");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Replaces the section starting with `## <title>` in docs/benchmarks.md
/// (up to the next `## `), or appends it; records the machine.
pub fn write_section(title: &str, body: &str) -> anyhow::Result<()> {
    let path = root().join("docs/benchmarks.md");
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nMeasured side by side in one run on the project's machine (2 cores); \
         regenerate with the `cargo xtask bench …` command named in each section.\n\n"
            .to_owned()
    });
    let head = format!("## {title}");
    let mut out = String::new();
    let mut skipping = false;
    let mut replaced = false;
    for line in current.lines() {
        if line.starts_with(&head) {
            skipping = true;
            replaced = true;
            out.push_str(body.trim_end());
            out.push_str("\n\n");
            continue;
        }
        if skipping && line.starts_with("## ") {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(body.trim_end());
        out.push('\n');
    }
    std::fs::create_dir_all(path.parent().expect("docs dir"))?;
    std::fs::write(&path, out.trim_end().to_owned() + "\n")?;
    Ok(())
}

/// `cargo xtask bench plan`: the wave planner on 3,500 and 1,000,000
/// generated mailboxes (release build of `bma-core`'s `plan_bench` example).
pub fn plan() -> anyhow::Result<()> {
    let out = Command::new("cargo")
        .args(["run", "--quiet", "--release", "-p", "bma-core", "--example", "plan_bench", "--", "3500", "1000000"])
        .current_dir(root())
        .output()
        .context("cannot run the planner benchmark")?;
    if !out.status.success() {
        bail!("plan_bench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut section = String::from(
        "## Wave planner\n\n`cargo xtask bench plan`: `plan_waves` on generated registries (1 in 97 excluded, three \
         priorities, balanced over the FAQ's 5 waves), then `plan_cutovers` on the planned mailboxes (all enrolled, \
         sizes up to 200 MB, a weekly capacity of an eighth of the registry), release build, median time.\n\n\
         | planner | mailboxes | placed | median | target | ratio to target |\n|---|---|---|---|---|---|\n",
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).context("plan_bench output")?;
        let planner = v["planner"].as_str().unwrap_or("?");
        let n = v["mailboxes"].as_u64().unwrap_or(0);
        let placed = v["placed"].as_u64().unwrap_or(0);
        let ms = v["median_ms"].as_f64().unwrap_or(f64::NAN);
        let target_ms = if n <= 3_500 { 100.0 } else { 10_000.0 };
        let _ = writeln!(
            section,
            "| {planner} | {n} | {placed} | {ms:.2} ms | {target_ms:.0} ms | {:.4} |",
            ms / target_ms
        );
    }
    println!("{section}");
    write_section("Wave planner", &section)
}
