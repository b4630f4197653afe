//! The lab Postfix instance: private config dir, per-recipient transport map.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bma_platform::files::{TransportMap, Transports};
use bma_platform::{Route, Routing};

use super::dovecot::write_atomically;
use super::{DOMAINS, HOST, Paths, Platform, REDIRECT_SMTP_PORT, SMTP_PORT, proc, render, sieveproxy};

const TRANSPORT_HEADER: &str = "# bma lab: per-recipient routing, managed by `cargo xtask lab route`.\n\
# A full address wins over its domain. Run postmap after editing by hand.\n";

fn postfix(paths: &Paths) -> Command {
    let mut cmd = Command::new("postfix");
    cmd.arg("-c").arg(paths.postfix_etc());
    cmd
}

fn queue_dir(paths: &Paths) -> PathBuf {
    paths.postfix().join("spool")
}

fn pid_file(paths: &Paths) -> PathBuf {
    queue_dir(paths).join("pid/master.pid")
}

/// Whether the lab Postfix master runs.
pub fn running(paths: &Paths) -> bool {
    proc::read_pid(&pid_file(paths)).is_some_and(proc::alive)
}

/// Postfix's own `postfix -c DIR` refuses a directory that the default
/// main.cf does not list in `alternate_config_directories`; Debian's package
/// installed with "No configuration" has no /etc/postfix/main.cf at all.
fn authorize_config_dir(paths: &Paths) -> Result<()> {
    let main = Path::new("/etc/postfix/main.cf");
    let dir = paths.postfix_etc().display().to_string();
    let text = fs::read_to_string(main).unwrap_or_default();
    let listed = text.lines().any(|l| {
        l.trim_start().starts_with("alternate_config_directories") && l.split(['=', ' ', ',', '\t']).any(|w| w == dir)
    });
    if listed {
        return Ok(());
    }
    let mut out = String::new();
    let mut replaced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("alternate_config_directories") && !replaced {
            out.push_str(&format!("{line} {dir}\n"));
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        if text.is_empty() {
            out.push_str("# Written by the bma lab (cargo xtask lab): lets `postfix -c` use the lab's own\n# config directory. The system Postfix is otherwise unconfigured.\n");
        }
        out.push_str(&format!("alternate_config_directories = {dir}\n"));
    }
    fs::write(main, out).with_context(|| format!("cannot update {}", main.display()))?;
    Ok(())
}

/// Renders main.cf/master.cf, fixes queue permissions, builds the transport map.
pub fn prepare(paths: &Paths) -> Result<()> {
    let etc = paths.postfix_etc();
    for d in [&etc, &queue_dir(paths), &paths.postfix().join("data")] {
        fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    authorize_config_dir(paths)?;
    let vars = [
        ("CONFIG_DIR", etc.display().to_string()),
        ("QUEUE_DIR", queue_dir(paths).display().to_string()),
        ("DATA_DIR", paths.postfix().join("data").display().to_string()),
        ("LOG", paths.postfix_log().display().to_string()),
        ("STATE_DIR", paths.postfix().display().to_string()),
        ("DOMAINS", DOMAINS.join(", ")),
        ("SMTP_LISTEN", format!("{HOST}:{SMTP_PORT}")),
        ("REDIRECT_LISTEN", format!("{HOST}:{REDIRECT_SMTP_PORT}")),
        // a `regexp:` access table: recipients of the internal domains (any
        // case, not their subdomains) are OK
        (
            "REDIRECT_DOMAINS",
            sieveproxy::INTERNAL_DOMAINS.map(|d| format!("{{/@{}\\.?$$/ OK}}", d.replace('.', "\\."))).join(" "),
        ),
    ];
    for name in ["main.cf", "master.cf"] {
        let text = render(&paths.templates.join(format!("postfix/{name}.in")), &vars)?;
        write_atomically(&etc.join(name), &text)?;
    }
    super::ldap::write_postfix_table(paths)?;
    // Keep the per-address routes, regenerate the domain defaults.
    let routes = read_routes(paths)?;
    write_transport(paths, &routes)?;
    // Creates missing queue directories with the right owners and modes.
    proc::run(postfix(paths).arg("set-permissions")).context("postfix set-permissions failed")?;
    proc::run(postfix(paths).arg("check")).context("postfix check failed")?;
    Ok(())
}

/// Starts the instance, or reloads it when it already runs.
pub fn start(paths: &Paths) -> Result<()> {
    prepare(paths)?;
    if running(paths) {
        proc::run_daemon(postfix(paths).arg("reload"), &paths.postfix_log())?;
        println!("postfix: already running (reloaded)");
        return Ok(());
    }
    proc::run_daemon(postfix(paths).arg("start"), &paths.postfix_log()).with_context(|| {
        format!("cannot start postfix; see {}{}", paths.postfix_log().display(), proc::tail(&paths.postfix_log(), 10))
    })?;
    println!("postfix: started (smtp {HOST}:{SMTP_PORT}, new platform's redirects {HOST}:{REDIRECT_SMTP_PORT})");
    Ok(())
}

/// Stops the instance; tolerant of an instance already stopped.
pub fn stop(paths: &Paths) {
    let Some(pid) = proc::read_pid(&pid_file(paths)).filter(|p| proc::alive(*p)) else {
        println!("postfix: not running");
        return;
    };
    let _ = proc::run(postfix(paths).arg("stop"));
    proc::terminate(pid, Duration::from_secs(5));
    println!("postfix: stopped");
}

/// Per-address routes of the transport map (domains excluded).
fn read_routes(paths: &Paths) -> Result<Vec<(String, String)>> {
    let text = fs::read_to_string(paths.transport()).unwrap_or_default();
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .filter(|(key, _)| key.contains('@'))
        .collect())
}

fn write_transport(paths: &Paths, routes: &[(String, String)]) -> Result<()> {
    let mut text = String::from(TRANSPORT_HEADER);
    for d in DOMAINS {
        text.push_str(&format!("{d}\t{}\n", Platform::Legacy.transport()));
    }
    for (address, transport) in routes {
        text.push_str(&format!("{address}\t{transport}\n"));
    }
    let file = paths.transport();
    if fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) || !file.with_extension("db").exists() {
        write_atomically(&file, &text)?;
        proc::run(Command::new("postmap").arg("-c").arg(paths.postfix_etc()).arg(format!("hash:{}", file.display())))?;
    }
    Ok(())
}

/// The transport of a held address: LMTP to a closed port. Postfix accepts
/// the message (an `error`/`retry` transport would refuse it at RCPT),
/// cannot deliver it, keeps it deferred in its queue and tries again every
/// few seconds (the lab's backoff).
pub const HELD: &str = "lmtp:inet:127.0.0.1:1";

/// The lab's transport table as `bma-platform` writes it: the code that
/// ships switches the lab's routes.
pub fn transport_map(paths: &Paths) -> TransportMap {
    TransportMap::new(
        paths.transport(),
        "hash",
        Some(paths.postfix_etc()),
        Transports { legacy: Platform::Legacy.transport(), new: Platform::New.transport(), held: HELD.to_owned() },
    )
}

/// The lab's routes on its backend (`lab up --backend`), as `bma-platform`
/// switches them.
fn routing(paths: &Paths) -> Result<Box<dyn Routing>> {
    Ok(match super::ldap::backend(paths) {
        super::ldap::Backend::Files => Box::new(transport_map(paths)),
        super::ldap::Backend::Ldap => Box::new(super::ldap::routes(paths)?),
    })
}

/// Holds mail for `address` at the relay (`held`), or routes it to the
/// legacy platform again and delivers what was held, like [`route`].
pub fn hold(paths: &Paths, address: &str, held: bool) -> Result<()> {
    let address = lab_address(address)?;
    let map = routing(paths)?;
    map.set(&address, if held { Route::Held } else { Route::Legacy })?;
    if !held {
        map.release()?;
    }
    Ok(())
}

/// Routes mail for `address` to `platform`, so that the next message follows it.
pub fn route(paths: &Paths, address: &str, platform: Platform) -> Result<()> {
    let address = lab_address(address)?;
    let route = match platform {
        Platform::Legacy => Route::Legacy,
        Platform::New => Route::New,
    };
    routing(paths)?.set(&address, route)?;
    Ok(())
}

/// Routes `addresses` to the legacy platform again, those that have a
/// route of their own (a cutover's).
pub fn route_to_legacy(paths: &Paths, addresses: &std::collections::BTreeSet<String>) -> Result<()> {
    let routed: Vec<String> =
        read_routes(paths)?.into_iter().map(|(a, _)| a).filter(|a| addresses.contains(a)).collect();
    let map = transport_map(paths);
    for address in routed {
        map.set(&address, Route::Legacy)?;
    }
    Ok(())
}

/// An address of a lab domain, lower case.
fn lab_address(address: &str) -> Result<String> {
    let address = address.trim().to_lowercase();
    let Some((_, domain)) = address.split_once('@') else {
        bail!("not an address: {address:?}");
    };
    if !DOMAINS.contains(&domain) {
        bail!("{domain} is not a lab domain ({})", DOMAINS.join(", "));
    }
    Ok(address)
}
