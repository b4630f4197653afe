//! `cargo xtask bench outbox`: emails per second from the outbox through
//! the lab's Postfix, with 1, 2 and 4 `bma worker` processes on one
//! PostgreSQL store, and the delay from each email's due time to its
//! delivery in the recipient's mailbox.
//!
//! Each run: a fresh PostgreSQL database, a registry of `--emails`
//! mailboxes unique to the bench (`ec760001@adm.cfwb.be`…, legacy lab
//! users), one wave, the campaign started; then the workers (release
//! build) start together on a campaign clock that runs at real speed from
//! the wave's instant (`--clock-start 2024-04-22T08:00:00Z --speed 1`: the
//! wave is due at once), unpaced (`mail.max_per_minute = 0`), with the legacy platform
//! configured for the evidence check of uncertain emails. Mail 1 of every
//! mailbox is due at the step that composed it (its outbox `run_at`).
//!
//! Delivery is read in the mailboxes themselves, not in the store: the
//! legacy Dovecot writes each message delivered by Postfix (LMTP) into the
//! recipient's maildir as a file named `<seconds>.M<microseconds>P<pid>…`
//! at the moment it is stored; the bench scans those maildirs for files of
//! this run (their Message-ID carries a domain unique to the run), and
//! matches them to the outbox rows by Message-ID. Delay = delivery − due
//! time (the campaign clock mapped back to real time: the workers' clock
//! starts when they are spawned, so the mapping is off by their start-up,
//! tens of milliseconds, counted as delay). Throughput = emails delivered ÷
//! (last delivery − first due time). An email delivered twice is counted
//! and reported (exactly-once is the outbox's promise).
//!
//! Bounded in time: a run that has not delivered every email within
//! `--timeout` seconds stops its workers and is reported as a timeout with
//! what was delivered, never left hanging.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};

use super::{DOMAIN, HOST, MASTER_PASSWORD, MASTER_USER, Paths, Platform, SMTP_PORT, dovecot, proc};

/// `cargo xtask bench outbox` options.
#[derive(Debug, clap::Args)]
pub struct OutboxBenchArgs {
    /// Worker counts to measure, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub workers: Vec<usize>,
    /// Emails (mailboxes of the wave) per run.
    #[arg(long, default_value_t = 300)]
    pub emails: usize,
    /// Seconds a run may take before it is stopped and reported as a timeout.
    #[arg(long, default_value_t = 240)]
    pub timeout: u64,
}

/// The campaign clock's start: the wave's instant, 2024-04-22T08:00:00Z.
const CLOCK_START: &str = "2024-04-22T08:00:00Z";
const CLOCK_START_MS: i64 = 1_713_772_800_000;
const DATABASE: &str = "bma_bench_outbox";
const PASSWORD: &str = "secret-outboxbench";
const BOUNCES: &str = "bounces-outboxbench@bma.test";
const TEAM: &str = "team-outboxbench@bma.test";

/// The bench's mailboxes.
fn addresses(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("ec{:06}@{DOMAIN}", 760_000 + i)).collect()
}

/// What one run measured.
#[derive(Debug, Clone)]
struct Outcome {
    workers: usize,
    emails: usize,
    delivered: usize,
    duplicates: usize,
    /// First due time to last delivery.
    span: Duration,
    delays: Vec<Duration>,
    timed_out: Option<Duration>,
    /// Lines of the workers' stderr (errors, lost leases).
    worker_errors: usize,
}

impl Outcome {
    fn per_second(&self) -> f64 {
        if self.span.is_zero() { 0.0 } else { self.delivered as f64 / self.span.as_secs_f64() }
    }
}

/// The `q` quantile (0 to 1) of sorted durations, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Delivery time of a maildir file from its name (`<secs>.M<usecs>P…`),
/// else from its modification time.
fn delivered_at(path: &Path) -> Option<SystemTime> {
    let name = path.file_name()?.to_str()?;
    let (secs, rest) = name.split_once('.')?;
    let from_name = secs.parse::<u64>().ok().and_then(|s| {
        let usecs: u64 = rest.strip_prefix('M')?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
        Some(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_micros(usecs))
    });
    from_name.or_else(|| fs::metadata(path).and_then(|m| m.modified()).ok())
}

/// The Message-ID header of a message file (headers only).
fn message_id(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("message-id")
        {
            return Some(value.trim().trim_start_matches('<').trim_end_matches('>').to_owned());
        }
    }
    None
}

/// Every message of this run (Message-ID in `domain`) in the INBOX
/// maildirs of `users`: Message-ID → delivery time of each copy, by file
/// (its name without the `:2,…` flags, which change when it moves from
/// `new` to `cur`); more than one copy is a duplicate.
fn scan(
    mail_root: &Path,
    users: &[String],
    domain: &str,
    since: SystemTime,
) -> BTreeMap<String, BTreeMap<String, SystemTime>> {
    let mut found: BTreeMap<String, BTreeMap<String, SystemTime>> = BTreeMap::new();
    let since = since - Duration::from_secs(2);
    for user in users {
        let Some((local, dom)) = user.split_once('@') else { continue };
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(mail_root.join(dom).join(local).join(sub)) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(at) = delivered_at(&path) else { continue };
                if at < since {
                    continue;
                }
                if let Some(id) = message_id(&path).filter(|id| id.ends_with(&format!("@{domain}"))) {
                    let name = entry.file_name().to_string_lossy().split(':').next().unwrap_or_default().to_owned();
                    found.entry(id).or_default().insert(name, at);
                }
            }
        }
    }
    found
}

fn psql(sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args(["-h", HOST, "-U", "postgres", "-d", "postgres", "-qAt", "-F", "|", "-c", sql])
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn psql_db(sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args(["-h", HOST, "-U", "postgres", "-d", DATABASE, "-qAt", "-F", "|", "-c", sql])
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Worker processes, killed when dropped (a bench stopped by an error
/// leaves none behind).
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Bench {
    bma: PathBuf,
    dir: PathBuf,
    mail_root: PathBuf,
    url: String,
}

impl Bench {
    fn bma(&self, args: &[&str], domain: &str) -> Command {
        let mut c = Command::new(&self.bma);
        c.args(args)
            .current_dir(&self.dir)
            .env_remove("BMA_CONFIG")
            .env_remove("BMA_NOW")
            .env("BMA_DATABASE_URL", &self.url)
            .env("BMA_MAIL_SMTP_HOST", HOST)
            .env("BMA_MAIL_SMTP_PORT", SMTP_PORT.to_string())
            .env("BMA_MAIL_SMTP_TLS", "none")
            .env("BMA_MAIL_MAX_PER_MINUTE", "0")
            .env("BMA_MAIL_BOUNCE_ADDRESS", BOUNCES)
            .env("BMA_MAIL_TEAM_ADDRESS", TEAM)
            .env("BMA_MAIL_MESSAGE_ID_DOMAIN", domain)
            .env("BMA_LEGACY_URL", format!("imap://{HOST}:{}", Platform::Legacy.imap_port()))
            .env("BMA_LEGACY_TLS", "none")
            .env("BMA_LEGACY_ADMIN", MASTER_USER)
            .env("BMA_LEGACY_PASSWORD_FILE", self.dir.join("admin.password"))
            .env("BMA_PRESYNC_ENABLED", "false")
            // One wave, on 2024-04-22.
            .env("BMA_CAMPAIGN_INVITATION_DEADLINE", "2024-04-22")
            .env("BMA_LOG", "warn");
        c
    }

    fn ok(&self, args: &[&str], domain: &str) -> Result<()> {
        let out = self.bma(args, domain).output().context("cannot run bma")?;
        if !out.status.success() {
            bail!("bma {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    fn run(&self, workers: usize, users: &[String], timeout: Duration) -> Result<Outcome> {
        psql(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))?;
        psql(&format!("CREATE DATABASE {DATABASE}"))?;
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let domain = format!("outboxbench-{workers}w-{stamp}.bma.test");
        self.ok(&["import", "mailboxes", "registre.csv"], &domain)?;
        self.ok(&["plan", "--apply", "--today", "2024-04-01", "--as", "bench"], &domain)?;
        self.ok(&["campaign", "start", "--as", "bench", "--at", "2024-04-01T09:00:00Z"], &domain)?;

        let started_real = SystemTime::now();
        let started = Instant::now();
        let mut children = Vec::new();
        for i in 0..workers {
            let log = fs::File::create(self.dir.join(format!("worker-{workers}-{i}.log")))?;
            children.push(
                self.bma(&["worker", "--clock-start", CLOCK_START, "--speed", "1", "--interval", "1s"], &domain)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .context("cannot start bma worker")?,
            );
        }
        let mut running = Workers(children);
        let mut found;
        let timed_out = loop {
            std::thread::sleep(Duration::from_millis(500));
            found = scan(&self.mail_root, users, &domain, started_real);
            if found.len() >= users.len() {
                break None;
            }
            if started.elapsed() > timeout {
                break Some(started.elapsed());
            }
            if let Some((i, status)) =
                running.0.iter_mut().enumerate().find_map(|(i, c)| c.try_wait().ok().flatten().map(|s| (i, s)))
            {
                bail!(
                    "worker {i} stopped ({status}): see {}",
                    self.dir.join(format!("worker-{workers}-{i}.log")).display()
                );
            }
        };
        // A moment for a late duplicate, then the workers stop.
        std::thread::sleep(Duration::from_secs(2));
        drop(running);
        found = scan(&self.mail_root, users, &domain, started_real);

        // Due times from the store: the campaign clock, mapped back to real time.
        let rows = psql_db("SELECT message_id, run_at FROM outbox WHERE kind = 'invitation'")?;
        let due: HashMap<String, SystemTime> = rows
            .lines()
            .filter_map(|l| {
                let (id, run_at) = l.split_once('|')?;
                let offset = run_at.trim().parse::<i64>().ok()? - CLOCK_START_MS;
                Some((id.to_owned(), started_real + Duration::from_millis(offset.max(0) as u64)))
            })
            .collect();
        let mut delays = Vec::new();
        let mut first_due: Option<SystemTime> = None;
        let mut last_delivery: Option<SystemTime> = None;
        let mut duplicates = 0;
        for (id, times) in &found {
            duplicates += times.len() - 1;
            let Some(d) = due.get(id) else { continue };
            let Some(at) = times.values().min().copied() else { continue };
            delays.push(at.duration_since(*d).unwrap_or_default());
            first_due = Some(first_due.map_or(*d, |f| f.min(*d)));
            last_delivery = Some(last_delivery.map_or(at, |l| l.max(at)));
        }
        delays.sort();
        let span = match (first_due, last_delivery) {
            (Some(f), Some(l)) => l.duration_since(f).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let mut worker_errors = 0;
        for i in 0..workers {
            let log = fs::read_to_string(self.dir.join(format!("worker-{workers}-{i}.log"))).unwrap_or_default();
            worker_errors += log.lines().filter(|l| !l.contains(" started") && !l.contains(" stopped")).count();
        }
        psql(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))?;
        Ok(Outcome {
            workers,
            emails: users.len(),
            delivered: delays.len(),
            duplicates,
            span,
            delays,
            timed_out,
            worker_errors,
        })
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "–".to_owned(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
}

/// Runs the benchmark and writes its section of docs/benchmarks.md.
pub fn run(args: &OutboxBenchArgs) -> Result<()> {
    let paths = Paths::discover()?;
    super::ensure_up(&paths)?;
    if args.emails == 0 || args.workers.contains(&0) {
        bail!("--emails and --workers must be at least 1");
    }
    crate::pipeline::run(
        "cargo build --release -p bma",
        Command::new("cargo").args(["build", "--release", "-p", "bma"]),
    )?;
    let dir = paths.root.join("target/bench-outbox");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let users = addresses(args.emails);
    {
        let _lock = proc::lock(&paths.lock())?;
        let mut accounts: Vec<dovecot::NewUser> =
            users.iter().map(|a| (a.clone(), PASSWORD.to_owned(), None)).collect();
        accounts.push((BOUNCES.to_owned(), PASSWORD.to_owned(), None));
        accounts.push((TEAM.to_owned(), PASSWORD.to_owned(), None));
        dovecot::upsert_users(&paths, Platform::Legacy, &accounts)?;
    }
    fs::write(dir.join("admin.password"), format!("{MASTER_PASSWORD}\n"))?;
    let mut csv = String::from("address,name\n");
    for (i, a) in users.iter().enumerate() {
        let _ = writeln!(csv, "{a},École du banc d'essai {i}");
    }
    fs::write(dir.join("registre.csv"), csv)?;
    let bench = Bench {
        bma: paths.root.join("target/release/bma"),
        mail_root: paths.mail_root(Platform::Legacy),
        url: format!("postgres://postgres@{HOST}:5432/{DATABASE}"),
        dir,
    };
    let timeout = Duration::from_secs(args.timeout);
    let mut outcomes = Vec::new();
    for &w in &args.workers {
        println!("outbox bench: {w} worker(s), {} emails…", args.emails);
        let o = bench.run(w, &users, timeout)?;
        println!(
            "  {} of {} delivered in {:.2} s ({:.1}/s), delay median {} p99 {}, {} duplicates, {} worker log lines{}",
            o.delivered,
            o.emails,
            o.span.as_secs_f64(),
            o.per_second(),
            ms(quantile(&o.delays, 0.5)),
            ms(quantile(&o.delays, 0.99)),
            o.duplicates,
            o.worker_errors,
            o.timed_out.map_or(String::new(), |t| format!(", TIMED OUT after {:.0} s", t.as_secs_f64()))
        );
        outcomes.push(o);
    }

    let mut section = format!(
        "## Outbox (emails through Postfix, PostgreSQL)\n\n`cargo xtask bench outbox`: mail 1 of a wave of {} lab \
         mailboxes, from the outbox through the lab's Postfix (SMTP on loopback, no TLS) to the legacy Dovecot, \
         with N `bma worker` processes (release) on one PostgreSQL store, unpaced (`mail.max_per_minute = 0`), \
         steps every second. Delivery is read in the recipients' maildirs (the time Dovecot stored each message), \
         matched to the outbox by Message-ID; the delay runs from each email's due time (its outbox `run_at`) to its \
         delivery; throughput is the emails delivered over the time from the first due time to the last delivery. \
         A run stops after {} s and is reported as a timeout. \"Worker log lines\" counts the errors and warnings \
         the workers wrote (a lost lease, a failed step).\n\n\
         | workers | delivered | time | emails/s | delay p50 | delay p99 | delay max | duplicates | worker log lines | outcome |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        args.emails, args.timeout
    );
    for o in &outcomes {
        let _ = writeln!(
            section,
            "| {} | {}/{} | {:.2} s | {:.1} | {} | {} | {} | {} | {} | {} |",
            o.workers,
            o.delivered,
            o.emails,
            o.span.as_secs_f64(),
            o.per_second(),
            ms(quantile(&o.delays, 0.5)),
            ms(quantile(&o.delays, 0.99)),
            ms(o.delays.last().copied()),
            o.duplicates,
            o.worker_errors,
            o.timed_out
                .map_or_else(|| "complete".to_owned(), |t| format!("**timed out** after {:.0} s", t.as_secs_f64())),
        );
    }
    println!("{section}");
    crate::bench::write_section("Outbox (emails through Postfix, PostgreSQL)", &section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&v, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&v[..1], 0.99), Some(Duration::from_millis(1)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn maildir_names_give_the_delivery_time() {
        let at = delivered_at(Path::new("/x/new/1764558000.M123456P789Q1.bmalab,S=900,W=920:2,S")).unwrap();
        assert_eq!(at, UNIX_EPOCH + Duration::from_micros(1_764_558_000_123_456));
    }

    #[test]
    fn the_clock_start_constant_matches() {
        // 2024-04-22T08:00:00Z: 19,835 days after 1970-01-01, plus 8 hours.
        assert_eq!(CLOCK_START_MS, (19_835 * 86_400 + 8 * 3600) * 1000);
        assert!(CLOCK_START.starts_with("2024-04-22T08:00:00"));
    }
}
