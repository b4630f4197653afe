//! `cargo xtask bench cutover`: the cutover of presynced lab mailboxes with
//! mail arriving, against the anchor way of doing the final pass.
//!
//! The corpus is `--mailboxes` legacy mailboxes of `--messages` messages
//! (3,000 make ≈99 MB; `seed::cutover_corpus`), their new-platform copies
//! removed first. bma: the mailboxes imported into a campaign store of
//! their own (`target/bench-cutover/bma.db`), presynced by `bma sync
//! --batch` into that store (the cutover's final copy is incremental on
//! the presync's state, as in a campaign), then a few new messages
//! delivered to each, then `bma cutover run` one mailbox after the other
//! (as one worker does), while a generator sends one message a second,
//! round robin, through Postfix. Each mailbox's step times come from `bma
//! cutover status --json` (the campaign clock advances with real time
//! during a cutover): the **hold window** is from `hold` to the release of
//! held mail to the new platform (the `route` step, less the probe that
//! confirms the route afterwards, which it records); the **whole cutover** from
//! `check` to `post_copy`. Every generated message must then be in its new
//! INBOX exactly once.
//!
//! Anchor: the final pass as imapsync's and Exchange's plans do it, an
//! incremental copy while delivery is held: `doveadm backup -R` (imapc, the
//! sync bench's settings) of each mailbox after a full `doveadm backup` and
//! the same few new messages; its time is the least hold window that way
//! (the route switch and the release are then manual).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::{HOST, MASTER_PASSWORD, MASTER_USER, Paths, Platform, SMTP_PORT, dovecot, proc, seed};

/// Options of `cargo xtask bench cutover`.
#[derive(Debug, Clone, clap::Args)]
pub struct CutoverBenchArgs {
    /// Mailboxes cut over.
    #[arg(long, default_value_t = 20)]
    pub mailboxes: usize,
    /// Messages per mailbox (3,000 ≈ 99 MB).
    #[arg(long, default_value_t = 3000)]
    pub messages: usize,
    /// Print the results without writing docs/benchmarks.md.
    #[arg(long)]
    pub no_write: bool,
}

/// A bma command on the bench's store, with the lab's platforms and routes.
fn bma(root: &Path, dir: &Path, args: &[&str]) -> Result<Command> {
    let mut c = Command::new(root.join("target/release/bma"));
    c.args(args)
        .current_dir(dir)
        .env_remove("BMA_CONFIG")
        .env("BMA_DATABASE_URL", format!("sqlite://{}", dir.join("bma.db").display()))
        .env("BMA_PRESYNC_ENABLED", "false")
        .env("BMA_MAIL_SMTP_PORT", SMTP_PORT.to_string())
        .env("BMA_MAIL_SMTP_TLS", "none")
        .env("BMA_MAIL_MESSAGE_ID_DOMAIN", "bma.test")
        .env("BMA_CAMPAIGN_INVITATION_DEADLINE", "2024-04-22");
    for (p, up) in [(Platform::Legacy, "LEGACY"), (Platform::New, "NEW")] {
        c.env(format!("BMA_{up}_URL"), format!("imap://{HOST}:{}", p.imap_port()))
            .env(format!("BMA_{up}_TLS"), "none")
            .env(format!("BMA_{up}_ADMIN"), MASTER_USER)
            .env(format!("BMA_{up}_PASSWORD_FILE"), dir.join("admin.password"));
    }
    c.envs(super::cutover_env()?);
    Ok(c)
}

fn ok(mut c: Command, what: &str) -> Result<String> {
    let out = c.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Removes the new platform's copy of `address` (moved aside into `trash`).
fn reset_new(paths: &Paths, trash: &Path, address: &str, n: usize) -> Result<()> {
    let _ = proc::run(dovecot::doveadm(paths, Platform::New).args(["kick", address]));
    let (local, domain) = address.split_once('@').context("address")?;
    for (k, root) in [paths.mail_root(Platform::New), paths.home_root(Platform::New)].into_iter().enumerate() {
        let d = root.join(domain).join(local);
        if d.exists() {
            fs::create_dir_all(trash)?;
            fs::rename(&d, trash.join(format!("{n}-{k}")))?;
        }
    }
    Ok(())
}

/// A short message through the lab's Postfix.
fn send(to: &str, subject: &str) -> Result<()> {
    let id = subject.replace(' ', ".");
    super::smtp::send_mail(
        "direction@ecole.test",
        to,
        &format!(
            "From: <direction@ecole.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{id}@bench.bma.test>\r\n\r\nCourrier pendant la bascule.\r\n"
        ),
    )
}

/// Subjects of `address`'s new INBOX.
fn new_inbox_subjects(paths: &Paths, address: &str) -> Result<Vec<String>> {
    let out = proc::run(dovecot::doveadm(paths, Platform::New).args([
        "-f",
        "tab",
        "fetch",
        "-u",
        address,
        "hdr.subject",
        "mailbox",
        "INBOX",
    ]))?;
    Ok(out.lines().skip(1).map(|l| l.trim().to_owned()).collect())
}

fn doveadm_backup(paths: &Paths, address: &str) -> Result<Duration> {
    let t0 = Instant::now();
    ok(super::syncbench::doveadm_backup(paths, address), "doveadm backup")?;
    Ok(t0.elapsed())
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The time between two steps of a `bma cutover status --json` output.
fn between(status: &serde_json::Value, from: &str, to: &str) -> Result<Duration> {
    let at = |step: &str| -> Result<time::OffsetDateTime> {
        let s = status["steps"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["step"] == step))
            .and_then(|s| s["done_at"].as_str())
            .with_context(|| format!("no {step} in {status}"))?;
        Ok(time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)?)
    };
    Ok(Duration::try_from(at(to)? - at(from)?).unwrap_or_default())
}

/// Runs the benchmark; writes its section of docs/benchmarks.md.
pub fn run(args: &CutoverBenchArgs) -> Result<()> {
    let paths = Paths::discover()?;
    super::ensure_up(&paths)?;
    let root = paths.root.clone();
    proc::run(Command::new("cargo").args(["build", "--release", "-p", "bma"]).current_dir(&root))?;
    let dir = root.join("target/bench-cutover");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("admin.password"), format!("{MASTER_PASSWORD}\n"))?;
    let trash = dir.join("trash");
    println!("bench cutover: writing {} mailboxes of {} messages", args.mailboxes, args.messages);
    let corpus = seed::cutover_corpus(&paths, args.mailboxes, args.messages)?;
    let addresses: Vec<String> = corpus.iter().map(|(a, _)| a.clone()).collect();
    for (n, a) in addresses.iter().enumerate() {
        reset_new(&paths, &trash, a, n)?;
    }
    // The presync copies into accounts the new platform already has (the
    // cutover provisions them again with the legacy hash and quota).
    {
        let _lock = proc::lock(&paths.lock())?;
        let users: Vec<dovecot::NewUser> = corpus.iter().map(|(a, p)| (a.clone(), p.clone(), None)).collect();
        super::provision(&paths, None, Platform::New, &users)?;
    }
    let bytes: u64 = addresses
        .iter()
        .map(|a| {
            let (local, domain) = a.split_once('@').unwrap_or_default();
            dir_size(&paths.mail_root(Platform::Legacy).join(domain).join(local))
        })
        .sum();

    // The anchor first: a full doveadm backup, new mail, then the timed incremental pass.
    println!("bench cutover: anchor (doveadm backup incremental)");
    let mut anchor = Vec::new();
    for (n, a) in addresses.iter().enumerate() {
        doveadm_backup(&paths, a)?;
        for k in 0..3 {
            send(a, &format!("anchor {n} {k}"))?;
        }
        std::thread::sleep(Duration::from_millis(300));
        anchor.push(doveadm_backup(&paths, a)?);
        reset_new(&paths, &trash, a, 1000 + n)?;
    }

    // bma: a campaign store, the presync, new mail, the cutovers with mail arriving.
    println!("bench cutover: bma presync");
    let csv: String = std::iter::once("address,name".to_owned())
        .chain(addresses.iter().map(|a| format!("{a},École {a}")))
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(dir.join("registre.csv"), csv + "\n")?;
    ok(bma(&root, &dir, &["import", "mailboxes", "registre.csv"])?, "bma import")?;
    for a in &addresses {
        for state in ["scheduled", "invited", "enrolled", "cutover_scheduled"] {
            ok(
                bma(&root, &dir, &["mailbox", "transition", a, state, "--reason", "bench", "--as", "bench"])?,
                "transition",
            )?;
        }
    }
    let batch = dir.join("batch.csv");
    fs::write(&batch, addresses.iter().map(|a| format!("{a},{a}\n")).collect::<String>())?;
    let state = format!("sqlite://{}", dir.join("bma.db").display());
    let mut sync = bma(&root, &dir, &["sync", "--tls", "none", "--parallel", "4", "--json"])?;
    sync.args(["--source", &format!("imap://{HOST}:{}", Platform::Legacy.imap_port())])
        .args(["--target", &format!("imap://{HOST}:{}", Platform::New.imap_port())])
        .args(["--source-admin", MASTER_USER, "--target-admin", MASTER_USER])
        .arg("--source-password-file")
        .arg(dir.join("admin.password"))
        .arg("--target-password-file")
        .arg(dir.join("admin.password"))
        .arg("--batch")
        .arg(&batch)
        .args(["--state", &state]);
    let t0 = Instant::now();
    ok(sync, "bma sync --batch")?;
    let presync = t0.elapsed();
    for (n, a) in addresses.iter().enumerate() {
        for k in 0..3 {
            send(a, &format!("before {n} {k}"))?;
        }
    }
    std::thread::sleep(Duration::from_millis(500));

    println!("bench cutover: bma cutover run, one message a second arriving");
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (stop, addresses) = (stop.clone(), addresses.clone());
        std::thread::spawn(move || -> Result<Vec<(String, String)>> {
            let mut sent = Vec::new();
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let to = addresses[k % addresses.len()].clone();
                let subject = format!("arrivee {k}");
                send(&to, &subject)?;
                sent.push((to, subject));
                k += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            Ok(sent)
        })
    };
    let mut holds = Vec::new();
    let mut probes = Vec::new();
    let mut wholes = Vec::new();
    let mut walls = Vec::new();
    let cutovers = (|| -> Result<()> {
        for a in &addresses {
            let t0 = Instant::now();
            ok(bma(&root, &dir, &["cutover", "run", a])?, "bma cutover run")?;
            walls.push(t0.elapsed());
            let status: serde_json::Value = serde_json::from_str(&ok(
                bma(&root, &dir, &["cutover", "status", a, "--json"])?,
                "bma cutover status",
            )?)?;
            // Mail is released before the route's probe is sent: the window ends there.
            let probe = Duration::from_millis(status["route_probe_ms"].as_u64().context("no route_probe_ms")?);
            holds.push(between(&status, "hold", "route")?.saturating_sub(probe));
            probes.push(probe);
            wholes.push(between(&status, "check", "post_copy")?);
        }
        Ok(())
    })();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let sent = generator.join().map_err(|_| anyhow::anyhow!("the generator panicked"))??;
    cutovers?;
    // Every message sent during the cutovers in its new INBOX, once.
    std::thread::sleep(Duration::from_secs(3));
    let _ = proc::run(Command::new("postqueue").arg("-c").arg(paths.postfix_etc()).arg("-f"));
    std::thread::sleep(Duration::from_secs(2));
    let mut lost = Vec::new();
    for (to, subject) in &sent {
        let n = new_inbox_subjects(&paths, to)?.iter().filter(|s| *s == subject).count();
        if n != 1 {
            lost.push(format!("{subject} → {to}: {n} copies"));
        }
    }
    if !lost.is_empty() {
        bail!("messages sent during the cutovers not in the new INBOX exactly once: {}", lost.join("; "));
    }

    let mb = bytes as f64 / 1e6 / addresses.len().max(1) as f64;
    let mut body = String::new();
    let backend = super::ldap::backend(&paths);
    let title = match backend {
        super::ldap::Backend::Files => "Cutover on the files backend",
        super::ldap::Backend::Ldap => "Cutover on the directory backend",
    };
    let how = match backend {
        super::ldap::Backend::Files => "Dovecot passwd-files, the Postfix hash table".to_owned(),
        super::ldap::Backend::Ldap => "OpenLDAP, read by Dovecot's `ldap` passdb/userdb and a Postfix `ldap:` table \
                                       (`cargo xtask lab up --backend ldap` first)"
            .to_owned(),
    };
    writeln!(body, "## {title} (`cargo xtask bench cutover`)\n\nAccounts and routes: {how}.\n")?;
    writeln!(
        body,
        "{} presynced lab mailboxes of {} messages (≈{mb:.0} MB each, {:.1} GB in all; presync by `bma sync --batch` \
         in {}), three new messages each, then `bma cutover run` one mailbox after the other while a generator sent \
         one message a second through Postfix ({} messages: each in its new INBOX exactly once, none bounced). Step \
         times from `bma cutover status --json`; the anchor is the final pass done the usual way, `doveadm backup` \
         (imapc) incremental after a full one and the same three new messages, delivery held meanwhile by hand.\n",
        addresses.len(),
        args.messages,
        bytes as f64 / 1e9,
        secs(presync),
        sent.len()
    )?;
    writeln!(body, "| | median | p99 | target |")?;
    writeln!(body, "|---|---|---|---|")?;
    let row = |b: &mut String, what: &str, v: &[Duration], target: &str| {
        let _ = writeln!(b, "| {what} | {} | {} | {target} |", secs(percentile(v, 0.5)), secs(percentile(v, 0.99)));
    };
    row(&mut body, "bma: hold window (mail deferred, `hold` → release)", &holds, "p99 ≤ 5 s");
    row(&mut body, "doveadm backup incremental (the anchor's final pass alone)", &anchor, "");
    row(&mut body, "bma: route confirmed by a probe landed in the new INBOX (after the release)", &probes, "");
    row(&mut body, "bma: whole cutover (`check` → `post_copy`)", &wholes, "p99 ≤ 30 s");
    row(&mut body, "bma: `bma cutover run` process, wall", &walls, "");
    let ratio = percentile(&holds, 0.5).as_secs_f64() / percentile(&anchor, 0.5).as_secs_f64().max(1e-9);
    writeln!(
        body,
        "\nMedian hold window / median anchor final pass: {ratio:.2}×. The hold window holds bma's final copy, the \
         receipt pass (a second pass over every folder), mail 2 into the legacy INBOX and the route switch (the \
         route written, Postfix reloaded, the route confirmed by Postfix's own lookup through every table of \
         `transport_maps`) with the release; the anchor's figure is its final pass alone. Outside the window: the \
         probe that confirms the route end to end (sent once mail is released), and the account changes (the new \
         account; the legacy login refused before mail is held, then pointing to the webmail once it is released; \
         on files each rewrite waits for the next second so that Dovecot cannot miss it)."
    )?;
    print!("{body}");
    let _ = fs::remove_dir_all(&trash);
    if !args.no_write {
        crate::bench::write_section(title, &body)?;
        println!("written to docs/benchmarks.md");
    }
    Ok(())
}

fn dir_size(p: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(p) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
