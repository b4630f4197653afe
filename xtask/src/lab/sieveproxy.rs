//! The new platform's ManageSieve policy proxy (`lab/sieve-policy/proxy.mjs`).
//!
//! Pigeonhole accepts `redirect "literal"` at upload whatever its settings;
//! the proxy refuses at upload a script that would send mail outside the
//! internal domains (a redirect or a mailto notification to a literal
//! outside them, or to a computed target), with a French `NO`, and passes
//! everything else. The internal domains are the campaign's ([`DOMAIN`]),
//! given by `BMA_LAB_SIEVE_INTERNAL_DOMAINS`. `lab up` restarts it alone
//! when `proxy.mjs` or its settings changed since it started.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::{DOMAIN, Paths, Platform, proc};

/// The domains whose addresses a new-platform script may redirect to.
pub const INTERNAL_DOMAINS: [&str; 1] = [DOMAIN];

fn pid_file(paths: &Paths) -> PathBuf {
    paths.platform(Platform::New).join("sieve-proxy.pid")
}

/// The settings the running proxy was started with (to restart it when they change).
fn settings_file(paths: &Paths) -> PathBuf {
    paths.platform(Platform::New).join("sieve-proxy.settings")
}

/// Log of the proxy.
pub fn log(paths: &Paths) -> PathBuf {
    paths.platform(Platform::New).join("sieve-proxy.log")
}

fn env(p: Platform) -> [(&'static str, String); 3] {
    [
        ("BMA_LAB_SIEVE_LISTEN", p.sieve_port().to_string()),
        ("BMA_LAB_SIEVE_UPSTREAM", p.dovecot_sieve_port().to_string()),
        ("BMA_LAB_SIEVE_INTERNAL_DOMAINS", INTERNAL_DOMAINS.join(",")),
    ]
}

/// The proxy's script and environment, as one text.
fn settings(paths: &Paths) -> String {
    let script = fs::read_to_string(paths.templates.join("sieve-policy/proxy.mjs")).unwrap_or_default();
    let env: Vec<String> = env(Platform::New).iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n{script}", env.join("\n"))
}

/// Starts the proxy in front of the new platform's ManageSieve, or restarts
/// it when its script or settings changed since it started.
pub fn start(paths: &Paths) -> Result<()> {
    let settings = settings(paths);
    if proc::read_pid(&pid_file(paths)).is_some_and(proc::alive) {
        if fs::read_to_string(settings_file(paths)).ok().as_deref() == Some(settings.as_str()) {
            println!("sieve policy proxy: already running");
            return Ok(());
        }
        println!("sieve policy proxy: proxy.mjs or its settings changed since it started, restarting it");
        stop(paths);
    }
    fs::create_dir_all(paths.platform(Platform::New))?;
    let p = Platform::New;
    let mut command = Command::new("node");
    command.arg(paths.templates.join("sieve-policy/proxy.mjs")).envs(env(p));
    let pid = proc::spawn_background(&mut command, &log(paths), &pid_file(paths))
        .context("cannot start the ManageSieve policy proxy")?;
    fs::write(settings_file(paths), settings)?;
    println!(
        "sieve policy proxy: started ({} -> dovecot {}, internal domains {}, pid {pid})",
        p.sieve_port(),
        p.dovecot_sieve_port(),
        INTERNAL_DOMAINS.join(", ")
    );
    Ok(())
}

/// Stops the proxy; tolerant of one already stopped.
pub fn stop(paths: &Paths) {
    match proc::read_pid(&pid_file(paths)) {
        Some(pid) if proc::terminate(pid, Duration::from_secs(3)) => {
            println!("sieve policy proxy: stopped");
        }
        _ => println!("sieve policy proxy: not running"),
    }
    let _ = fs::remove_file(pid_file(paths));
    let _ = fs::remove_file(settings_file(paths));
}
