//! The machine's PostgreSQL service: checked, started if down, never configured.

use std::fs;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::{HOST, PG_PORT, proc};

/// PostgreSQL part of lab.json.
#[derive(Serialize)]
pub struct PostgresJson {
    host: &'static str,
    port: u16,
    user: &'static str,
    url: String,
}

/// How tests reach PostgreSQL.
pub fn describe() -> PostgresJson {
    PostgresJson {
        host: HOST,
        port: PG_PORT,
        user: "postgres",
        url: format!("postgres://postgres@{HOST}:{PG_PORT}/postgres"),
    }
}

/// Starts the Debian cluster if nothing answers on 5432.
pub fn ensure_running() -> Result<()> {
    if proc::port_open(PG_PORT) {
        return Ok(());
    }
    let versions: Vec<String> = fs::read_dir("/etc/postgresql")
        .context("PostgreSQL is not installed (no /etc/postgresql): run `cargo xtask lab install`")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let Some(version) = versions.iter().max_by_key(|v| v.parse::<u32>().unwrap_or(0)) else {
        bail!("no PostgreSQL cluster in /etc/postgresql");
    };
    proc::run(Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", version, "main", "start"]))
        .context("cannot start PostgreSQL")?;
    proc::wait_port(
        "postgresql",
        PG_PORT,
        Duration::from_secs(20),
        std::path::Path::new(&format!("/var/log/postgresql/postgresql-{version}-main.log")),
    )?;
    println!("postgresql: started cluster {version}/main");
    Ok(())
}
