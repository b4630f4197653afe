//! The new platform's ManageSieve policy proxy (`lab/sieve-policy/proxy.mjs`).
//!
//! Pigeonhole accepts `redirect "literal"` at upload even with
//! `sieve_max_redirects = 0`; the proxy makes the upload itself fail.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::{Paths, Platform, proc};

fn pid_file(paths: &Paths) -> PathBuf {
    paths.platform(Platform::New).join("sieve-proxy.pid")
}

/// Log of the proxy.
pub fn log(paths: &Paths) -> PathBuf {
    paths.platform(Platform::New).join("sieve-proxy.log")
}

/// Starts the proxy in front of the new platform's ManageSieve.
pub fn start(paths: &Paths) -> Result<()> {
    if proc::read_pid(&pid_file(paths)).is_some_and(proc::alive) {
        println!("sieve policy proxy: already running");
        return Ok(());
    }
    fs::create_dir_all(paths.platform(Platform::New))?;
    let p = Platform::New;
    let pid = proc::spawn_background(
        Command::new("node")
            .arg(paths.templates.join("sieve-policy/proxy.mjs"))
            .env("BMA_LAB_SIEVE_LISTEN", p.sieve_port().to_string())
            .env("BMA_LAB_SIEVE_UPSTREAM", p.dovecot_sieve_port().to_string()),
        &log(paths),
        &pid_file(paths),
    )
    .context("cannot start the ManageSieve policy proxy")?;
    println!("sieve policy proxy: started ({} -> dovecot {}, pid {pid})", p.sieve_port(), p.dovecot_sieve_port());
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
}
