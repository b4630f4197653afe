//! The OpenID Connect provider standing in for Cerbère EDU (`lab/oidc`, node).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::{HOST, OIDC_PORT, Paths, proc};

/// OIDC part of lab.json.
#[derive(Serialize)]
pub struct OidcJson {
    issuer: String,
    discovery_url: String,
    port: u16,
    client_id: &'static str,
    client_secret: &'static str,
    redirect_uris: [&'static str; 2],
    /// Ports whose `http://127.0.0.1:<port>/auth/callback` is registered
    /// too, for portals started by tests and benchmarks (first, last).
    test_redirect_ports: [u16; 2],
    pkce_required: bool,
    scopes: [&'static str; 3],
    log: PathBuf,
    accounts: Vec<Account>,
}

/// A lab account of the provider (lab/oidc/accounts.json).
#[derive(Serialize, Deserialize)]
struct Account {
    login: String,
    password: String,
    sub: String,
    given_name: String,
    family_name: String,
    email: String,
}

/// The provider's description for lab.json.
pub fn describe(paths: &Paths) -> Result<OidcJson> {
    let file = paths.templates.join("oidc/accounts.json");
    let accounts =
        serde_json::from_str(&fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?)?;
    let issuer = format!("http://{HOST}:{OIDC_PORT}");
    Ok(OidcJson {
        discovery_url: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
        port: OIDC_PORT,
        client_id: "bma-portal",
        client_secret: "bma-portal-secret",
        redirect_uris: ["http://127.0.0.1:8080/auth/callback", "http://localhost:8080/auth/callback"],
        test_redirect_ports: [18000, 18199],
        pkce_required: true,
        scopes: ["openid", "profile", "email"],
        log: paths.oidc_log(),
        accounts,
    })
}

fn pid_file(paths: &Paths) -> PathBuf {
    paths.oidc().join("oidc.pid")
}

/// Starts `node lab/oidc/server.mjs` in the background (own process group).
pub fn start(paths: &Paths) -> Result<()> {
    if proc::read_pid(&pid_file(paths)).is_some_and(proc::alive) {
        if !stale(paths) {
            println!("oidc: already running");
            return Ok(());
        }
        // Its clients or accounts changed since it started: only it restarts.
        println!("oidc: lab/oidc changed since it started, restarting it");
        stop(paths);
    }
    fs::create_dir_all(paths.oidc())?;
    let dir = paths.templates.join("oidc");
    let pid = proc::spawn_background(
        Command::new("node")
            .arg(dir.join("server.mjs"))
            .current_dir(&dir)
            .env("BMA_LAB_OIDC_PORT", OIDC_PORT.to_string())
            .env("BMA_LAB_OIDC_STATE", paths.oidc()),
        &paths.oidc_log(),
        &pid_file(paths),
    )
    .context("cannot start node for the OIDC provider")?;
    println!("oidc: started (issuer http://{HOST}:{OIDC_PORT}, pid {pid})");
    Ok(())
}

/// Whether `server.mjs` or `accounts.json` is newer than the running provider.
fn stale(paths: &Paths) -> bool {
    let modified = |p: PathBuf| fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(started) = modified(pid_file(paths)) else {
        return false;
    };
    let dir = paths.templates.join("oidc");
    ["server.mjs", "accounts.json"].iter().filter_map(|f| modified(dir.join(f))).any(|m| m > started)
}

/// Stops the provider; tolerant of one already stopped.
pub fn stop(paths: &Paths) {
    match proc::read_pid(&pid_file(paths)) {
        Some(pid) if proc::terminate(pid, Duration::from_secs(3)) => println!("oidc: stopped"),
        _ => println!("oidc: not running"),
    }
    let _ = fs::remove_file(pid_file(paths));
}
