//! Small process and network helpers: running commands, pid files, ports.

use std::fs::{self, File};
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// Runs `cmd` to completion and returns its stdout; fails with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with `input` on its standard input; fails with its stderr.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Result<String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {shown}"))?;
    child.stdin.take().context("no stdin")?.write_all(input).with_context(|| format!("cannot write to {shown}"))?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with inherited stdout/stderr (long, user-visible steps).
pub fn run_visible(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.stdin(Stdio::null()).status().with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// Whether an executable named `name` is on PATH (or is an existing path).
pub fn have(name: &str) -> bool {
    if name.contains('/') {
        return Path::new(name).exists();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).any(|dir| dir.join(name).is_file())
}

/// Reads a pid file; `None` if absent or unparsable.
pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // state is the field after the parenthesised command name
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Sends `signal` (e.g. "TERM") to `pid`, ignoring errors.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Terminates `pid` (TERM, then KILL after `grace`); true if it was running.
pub fn terminate(pid: u32, grace: Duration) -> bool {
    if !alive(pid) {
        return false;
    }
    signal(pid, "TERM");
    let start = Instant::now();
    while alive(pid) && start.elapsed() < grace {
        sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        signal(pid, "KILL");
        sleep(Duration::from_millis(100));
    }
    true
}

/// Terminates the process group `pgid` (TERM, then KILL after `grace`) and
/// waits until its leader is gone; true if the leader was running. For
/// daemons that fork workers into their own group (Cyrus' master, Courier's
/// authdaemond and couriertcpd): no worker is left behind.
pub fn terminate_group(pgid: u32, grace: Duration) -> bool {
    let was_alive = alive(pgid);
    let group = format!("-{pgid}");
    let send = |sig: &str| {
        let _ = Command::new("kill")
            .args([format!("-{sig}").as_str(), "--", group.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    send("TERM");
    let start = Instant::now();
    while group_alive(pgid) && start.elapsed() < grace {
        sleep(Duration::from_millis(50));
    }
    if group_alive(pgid) {
        send("KILL");
        sleep(Duration::from_millis(100));
    }
    was_alive
}

/// Whether any live (non-zombie) process belongs to process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else { return false };
    dir.filter_map(Result::ok).filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).any(|pid| {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            // after the parenthesised name: state ppid pgrp …
            let mut rest = stat.rsplit(')').next().unwrap_or("").split_whitespace();
            let state = rest.next().unwrap_or("Z");
            let pgrp = rest.nth(1).and_then(|p| p.parse::<u32>().ok());
            pgrp == Some(pgid) && !state.starts_with('Z') && !state.starts_with('X')
        })
    })
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Waits until 127.0.0.1:`port` answers; the error names `what` and `log`.
pub fn wait_port(what: &str, port: u16, timeout: Duration, log: &Path) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if port_open(port) {
            return Ok(());
        }
        sleep(Duration::from_millis(100));
    }
    bail!(
        "{what} does not answer on 127.0.0.1:{port} after {:?}; see its log: {}{}",
        timeout,
        log.display(),
        tail(log, 15)
    )
}

/// Last `n` lines of a file, prefixed for inclusion in an error message.
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            let mut out = String::from("\n--- last lines ---\n");
            out.push_str(&lines[start..].join("\n"));
            out
        }
        Err(_) => String::new(),
    }
}

/// An exclusive advisory lock on a file, released on drop.
pub struct FileLock(#[expect(dead_code, reason = "held only to keep the lock until drop")] File);

/// Takes an exclusive lock on `path` (created if missing), waiting for it.
pub fn lock(path: &Path) -> Result<FileLock> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(FileLock(file))
}

/// Runs a command that daemonizes itself: its output goes to `log` (a pipe
/// would stay open in the daemon and never reach EOF).
pub fn run_daemon(cmd: &mut Command, log: &Path) -> Result<()> {
    let shown = format!("{cmd:?}");
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status}){}", tail(log, 10));
    }
    Ok(())
}

/// Spawns a long-running program in its own process group, output appended
/// to `log`, pid written to `pid_file`; returns the pid.
pub fn spawn_background(cmd: &mut Command, log: &Path, pid_file: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let shown = format!("{cmd:?}");
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {shown}"))?;
    fs::write(pid_file, format!("{}\n", child.id()))?;
    Ok(child.id())
}
