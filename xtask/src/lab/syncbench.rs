//! `cargo xtask bench sync`: `bma sync` against `doveadm backup` and mbsync,
//! side by side in one run on the lab (legacy Dovecot → new Dovecot over
//! loopback).
//!
//! Scenarios: one mailbox of 3,000 messages (`ec900000`, ≈99 MB, 11
//! folders), then the same again with nothing changed; 100 mailboxes × 200
//! messages (`ec900001`…`ec900100`) 4 at a time, then again unchanged. Each
//! tool starts from an empty target mailbox (killed sessions, maildir
//! removed, its own state removed); tools take turns within each repeat, each
//! repeat starting with the next tool, so
//! the machine's noise hits them alike; the median of the repeats is kept.
//! Wall time is the whole process; peak RSS is the process's maximum
//! resident set (GNU time, from `wait4`), the largest of the processes for tools run once
//! per mailbox. Every copy is checked: the target must hold as many messages
//! as the source, per folder.
//!
//! - bma: `bma sync` (release build), master user on both sides, plain IMAP
//!   on both sides (APPEND into the new Dovecot's IMAP server);
//! - doveadm: `doveadm backup -R -u USER imapc:` run with the new Dovecot's
//!   config, `mail_prefetch_count=20`, `imapc_features=rfc822.size`: reads
//!   the legacy server over IMAP and writes the new one's storage directly;
//! - mbsync (isync, `PipelineDepth 50` on both stores, `Sync Pull`, `Create
//!   Near`): IMAP on both sides, like bma.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::{DOMAIN, HOST, MASTER_PASSWORD, MASTER_USER, Paths, Platform, dovecot, install, proc, seed};

/// The tools compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Bma,
    Doveadm,
    Mbsync,
}

impl Tool {
    const ALL: [Tool; 3] = [Tool::Bma, Tool::Doveadm, Tool::Mbsync];
    fn name(self) -> &'static str {
        match self {
            Tool::Bma => "bma sync",
            Tool::Doveadm => "doveadm backup (imapc)",
            Tool::Mbsync => "mbsync",
        }
    }
}

/// One measured process run.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    /// Peak resident set, KiB.
    rss_kib: u64,
    /// CPU time of the process (user + system).
    cpu: Duration,
}

/// Runs `cmd` under GNU time (`/usr/bin/time -f %M`, which reads the
/// child's own peak RSS from `wait4`); returns the wall time, peak RSS and output.
fn measure(cmd: &Command, what: &str) -> Result<(Run, String)> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!("{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let out_path = std::env::temp_dir().join(format!("bma-bench-{id}-{what}.out").replace(' ', "_"));
    let rss_path = std::env::temp_dir().join(format!("bma-bench-{id}-{what}.rss").replace(' ', "_"));
    let out = fs::File::create(&out_path)?;
    let err = out.try_clone()?;
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M %U %S").arg("-o").arg(&rss_path).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let started = Instant::now();
    let status =
        timed.stdin(Stdio::null()).stdout(out).stderr(err).status().with_context(|| format!("cannot start {what}"))?;
    let wall = started.elapsed();
    let output = fs::read_to_string(&out_path).unwrap_or_default();
    let rss = fs::read_to_string(&rss_path).unwrap_or_default();
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&rss_path);
    if !status.success() {
        bail!("{what} failed ({status}):\n{}\n{}", tail(&output, 30), rss.trim());
    }
    let (rss_kib, cpu) = rss
        .lines()
        .rev()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [m, u, s] = f.as_slice() else { return None };
            Some((m.parse::<u64>().ok()?, u.parse::<f64>().ok()? + s.parse::<f64>().ok()?))
        })
        .context("no RSS and CPU time from /usr/bin/time")?;
    Ok((Run { wall, rss_kib, cpu: Duration::from_secs_f64(cpu) }, output))
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

struct Bench {
    paths: Paths,
    bma: PathBuf,
    dir: PathBuf,
    password_file: PathBuf,
    /// Mailboxes moved aside so far.
    moved: std::sync::atomic::AtomicU64,
}

impl Bench {
    /// Empties the target mailbox and every tool's state for `address`.
    ///
    /// The mailbox is moved aside into [`Bench::trash`], deleted once the
    /// bench is over: on an ext4 without a journal (this machine's disk),
    /// each new file's inode is found only after a scan past the inodes
    /// freed in the last minutes (the kernel's `recently_deleted` check), so
    /// deleting thousands of messages between runs made every following
    /// file creation, by any tool, cost more than the copy itself.
    fn reset(&self, address: &str) -> Result<()> {
        let _ = proc::run(dovecot::doveadm(&self.paths, Platform::New).args(["kick", address]));
        let (local, domain) = address.split_once('@').context("address")?;
        for root in [self.paths.mail_root(Platform::New), self.paths.home_root(Platform::New)] {
            let d = root.join(domain).join(local);
            if d.exists() {
                let n = self.moved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let aside = self.trash().join(n.to_string());
                fs::create_dir_all(self.trash())?;
                fs::rename(&d, &aside).with_context(|| format!("cannot move {} aside", d.display()))?;
            }
        }
        for f in [self.state_db(address), self.mbsync_state(address)] {
            let _ = fs::remove_dir_all(&f);
            let _ = fs::remove_file(&f);
        }
        for ext in ["-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{ext}", self.state_db(address).display()));
        }
        Ok(())
    }

    /// Where emptied target mailboxes wait, until the end of the bench.
    fn trash(&self) -> PathBuf {
        self.dir.join("trash")
    }

    fn state_db(&self, address: &str) -> PathBuf {
        self.dir.join(format!("bma-{address}.db"))
    }

    fn batch_db(&self) -> PathBuf {
        self.dir.join("bma-batch.db")
    }

    fn mbsync_state(&self, address: &str) -> PathBuf {
        self.dir.join(format!("mbsync-{address}"))
    }

    fn bma_cmd(&self) -> Command {
        let mut c = Command::new(&self.bma);
        c.args(["sync", "--tls", "none", "--source", &format!("imap://{HOST}:{}", Platform::Legacy.imap_port())])
            .args(["--target", &format!("imap://{HOST}:{}", Platform::New.imap_port())])
            .args(["--source-admin", MASTER_USER, "--target-admin", MASTER_USER])
            .arg("--source-password-file")
            .arg(&self.password_file)
            .arg("--target-password-file")
            .arg(&self.password_file)
            .env_remove("BMA_CONFIG");
        c
    }

    fn run_bma(&self, address: &str) -> Result<Run> {
        let mut c = self.bma_cmd();
        c.args(["--source-user", address, "--target-user", address, "--json"])
            .arg("--state")
            .arg(self.state_db(address));
        Ok(measure(&c, "bma sync")?.0)
    }

    fn run_bma_batch(&self, csv: &Path, parallel: usize) -> Result<Run> {
        let mut c = self.bma_cmd();
        c.arg("--batch")
            .arg(csv)
            .args(["--parallel", &parallel.to_string(), "--json"])
            .arg("--state")
            .arg(self.batch_db());
        Ok(measure(&c, "bma sync --batch")?.0)
    }

    fn run_doveadm(&self, address: &str) -> Result<Run> {
        Ok(measure(&doveadm_backup(&self.paths, address), "doveadm backup")?.0)
    }

    fn run_mbsync(&self, address: &str) -> Result<Run> {
        let state = self.mbsync_state(address);
        fs::create_dir_all(&state)?;
        let conf = state.join("mbsyncrc");
        let store = |name: &str, port: u16| {
            format!(
                "IMAPAccount {name}\nHost {HOST}\nPort {port}\nUser \"{address}*{MASTER_USER}\"\nPass {MASTER_PASSWORD}\n\
                 SSLType None\nAuthMechs LOGIN\nPipelineDepth 50\n\nIMAPStore {name}\nAccount {name}\n\n"
            )
        };
        let text = format!(
            "{}{}Channel copy\nFar :src:\nNear :dst:\nPatterns *\nCreate Near\nSync Pull\nExpunge None\n\
             SyncState {}/\nCopyArrivalDate yes\n",
            store("src", Platform::Legacy.imap_port()),
            store("dst", Platform::New.imap_port()),
            state.display()
        );
        fs::write(&conf, text)?;
        let mut c = Command::new("mbsync");
        c.arg("-q").arg("-c").arg(&conf).arg("copy");
        Ok(measure(&c, "mbsync")?.0)
    }

    fn run_tool(&self, tool: Tool, address: &str) -> Result<Run> {
        match tool {
            Tool::Bma => self.run_bma(address),
            Tool::Doveadm => self.run_doveadm(address),
            Tool::Mbsync => self.run_mbsync(address),
        }
    }

    /// Messages per folder as Dovecot sees them.
    fn counts(&self, p: Platform, address: &str) -> Result<BTreeMap<String, u64>> {
        let out = proc::run(
            dovecot::doveadm(&self.paths, p).args(["-f", "tab", "mailbox", "status", "-u", address, "messages", "*"]),
        )?;
        let mut m = BTreeMap::new();
        for line in out.lines().skip(1) {
            if let Some((name, n)) = line.rsplit_once('\t') {
                m.insert(name.to_owned(), n.trim().parse().unwrap_or(0));
            }
        }
        Ok(m)
    }

    /// The target holds as many messages as the source, folder by folder
    /// (names as each tool maps them: totals, and no folder of the source
    /// missing its count on the target).
    fn check(&self, tool: Tool, address: &str) -> Result<()> {
        let s = self.counts(Platform::Legacy, address)?;
        let t = self.counts(Platform::New, address)?;
        let (ns, nt): (u64, u64) = (s.values().sum(), t.values().sum());
        if ns != nt {
            bail!("{}: {address}: source has {ns} messages, target {nt}: {s:?} vs {t:?}", tool.name());
        }
        Ok(())
    }
}

/// The tools in the order of repeat `rep`: each repeat starts with the
/// next tool, so that no tool always runs first (after the resets) or last.
fn turns(tools: &[Tool], rep: usize) -> Vec<Tool> {
    tools.iter().cycle().skip(rep % tools.len().max(1)).take(tools.len()).copied().collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Per tool: first-copy runs, rerun runs.
type Results = BTreeMap<Tool, (Vec<Run>, Vec<Run>)>;

/// Median wall time, largest peak RSS, median CPU time.
fn summarise(runs: &[Run]) -> (Duration, u64, Duration) {
    (
        median(runs.iter().map(|r| r.wall).collect()),
        runs.iter().map(|r| r.rss_kib).max().unwrap_or(0),
        median(runs.iter().map(|r| r.cpu).collect()),
    )
}

/// Runs `f` for each mailbox, `parallel` at a time; returns the wall time and the largest RSS.
fn fan_out(addresses: &[String], parallel: usize, f: impl Fn(&str) -> Result<Run> + Sync) -> Result<Run> {
    let queue = Mutex::new(addresses.iter().collect::<Vec<_>>());
    let rss = Mutex::new((0u64, Duration::ZERO));
    let started = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..parallel {
            handles.push(s.spawn(|| -> Result<()> {
                loop {
                    let Some(a) = queue.lock().expect("queue").pop() else { return Ok(()) };
                    let r = f(a)?;
                    let mut m = rss.lock().expect("rss");
                    *m = (m.0.max(r.rss_kib), m.1 + r.cpu);
                }
            }));
        }
        for h in handles {
            h.join().expect("bench thread")?;
        }
        Ok(())
    })?;
    let (rss_kib, cpu) = *rss.lock().expect("rss");
    Ok(Run { wall: started.elapsed(), rss_kib, cpu })
}

/// `doveadm backup -R` of `address` from the legacy server over IMAP
/// (imapc, the master user) into the new Dovecot's storage, with the
/// bench's settings: `mail_prefetch_count=20`, `imapc_features=rfc822.size`.
pub(super) fn doveadm_backup(paths: &Paths, address: &str) -> Command {
    let mut c = Command::new("doveadm");
    c.arg("-c").arg(paths.dovecot_conf(Platform::New));
    for o in [
        format!("imapc_host={HOST}"),
        format!("imapc_port={}", Platform::Legacy.imap_port()),
        format!("imapc_user={address}"),
        format!("imapc_master_user={MASTER_USER}"),
        format!("imapc_password={MASTER_PASSWORD}"),
        "imapc_features=rfc822.size".into(),
        "mail_prefetch_count=20".into(),
    ] {
        c.arg("-o").arg(o);
    }
    c.args(["backup", "-R", "-u", address, "imapc:"]);
    c
}

/// Options of `cargo xtask bench sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncBenchArgs {
    /// Repeats of each measurement (the median is kept).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Mailboxes of the batch scenario (up to 100).
    #[arg(long, default_value_t = 100)]
    pub mailboxes: usize,
    /// Mailboxes copied at once in the batch scenario.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Leave out the batch scenario.
    #[arg(long)]
    pub single_only: bool,
    /// Only these tools (bma, doveadm, mbsync); default all.
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Use target/release/bma as it is (no `cargo build --release`).
    #[arg(long)]
    pub no_build: bool,
    /// Run the bench users of the new Dovecot with `mail_fsync = never`
    /// (a per-user setting, so doveadm and IMAP alike): the protocol and CPU
    /// limit rather than the disk's.
    #[arg(long)]
    pub no_fsync: bool,
    /// Repeats of mbsync (much slower than the others; default 1).
    #[arg(long, default_value_t = 1)]
    pub mbsync_repeats: usize,
    /// Print the results without writing docs/benchmarks.md.
    #[arg(long)]
    pub no_write: bool,
}

fn load() -> String {
    let l = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Runs the benchmark; writes its section of docs/benchmarks.md.
pub fn run(args: &SyncBenchArgs) -> Result<()> {
    let paths = Paths::discover()?;
    super::ensure_up(&paths)?;
    install::install(&paths)?;
    println!("bench sync: {}", seed::ensure_bench(&paths)?);
    super::write_lab_json(&paths)?;
    let single = format!("ec900000@{DOMAIN}");
    let batch: Vec<String> = (1..=args.mailboxes.min(100)).map(|i| format!("ec{:06}@{DOMAIN}", 900_000 + i)).collect();
    {
        let _lock = proc::lock(&paths.lock())?;
        let users: Vec<dovecot::NewUser> = std::iter::once(&single)
            .chain(&batch)
            .map(|a| {
                let pw = format!("secret-{}", a.split('@').next().unwrap_or(a));
                let mut extra = "userdb_quota_rule=*:storage=2G".to_string();
                if args.no_fsync {
                    extra.push_str(" userdb_mail_fsync=never");
                }
                (a.clone(), pw, Some(extra))
            })
            .collect();
        dovecot::upsert_users(&paths, Platform::New, &users)?;
    }
    let tools: Vec<Tool> = Tool::ALL
        .into_iter()
        .filter(|t| {
            args.tools.is_empty()
                || args.tools.iter().any(|n| t.name().starts_with(n.as_str()) || (n == "bma" && *t == Tool::Bma))
        })
        .collect();
    if tools.contains(&Tool::Bma) && !args.no_build {
        crate::pipeline::run(
            "cargo build --release -p bma",
            Command::new("cargo").args(["build", "--release", "-p", "bma"]),
        )?;
    }
    let dir = paths.root.join("target/bench-sync");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let password_file = dir.join("admin.pw");
    fs::write(&password_file, MASTER_PASSWORD)?;
    let b = Bench {
        bma: paths.root.join("target/release/bma"),
        paths: paths.clone(),
        dir,
        password_file,
        moved: Default::default(),
    };
    let loads_before = load();
    let mbsync_version = proc::run(Command::new("mbsync").arg("-v")).unwrap_or_default().trim().to_owned();
    let source_bytes: u64 = {
        let out = proc::run(
            dovecot::doveadm(&paths, Platform::Legacy)
                .args(["-f", "tab", "mailbox", "status", "-u", &single, "vsize", "*"]),
        )?;
        out.lines().skip(1).filter_map(|l| l.rsplit_once('\t')).filter_map(|(_, v)| v.trim().parse::<u64>().ok()).sum()
    };

    // One mailbox.
    let mut one: Results = BTreeMap::new();
    for rep in 0..args.repeats {
        for tool in turns(&tools, rep) {
            if tool == Tool::Mbsync && rep >= args.mbsync_repeats {
                continue;
            }
            b.reset(&single)?;
            let first = b.run_tool(tool, &single)?;
            b.check(tool, &single)?;
            let again = b.run_tool(tool, &single)?;
            println!(
                "single #{rep} {:<24} first {:>6.2} s ({:>4} MB)   rerun {:>6.3} s ({:>4} MB)   load {}",
                tool.name(),
                first.wall.as_secs_f64(),
                first.rss_kib / 1024,
                again.wall.as_secs_f64(),
                again.rss_kib / 1024,
                load()
            );
            let e = one.entry(tool).or_default();
            e.0.push(first);
            e.1.push(again);
        }
    }
    b.reset(&single)?;

    // A batch, `parallel` at a time.
    let mut many: Results = BTreeMap::new();
    if !args.single_only {
        let csv = b.dir.join("batch.csv");
        let mut text = String::from("source_user,target_user\n");
        for a in &batch {
            let _ = writeln!(text, "{a},{a}");
        }
        fs::write(&csv, text)?;
        for rep in 0..args.repeats {
            for tool in turns(&tools, rep) {
                if tool == Tool::Mbsync && rep >= args.mbsync_repeats {
                    continue;
                }
                for a in &batch {
                    b.reset(a)?;
                }
                let _ = fs::remove_file(b.batch_db());
                let (first, again) = if tool == Tool::Bma {
                    (b.run_bma_batch(&csv, args.parallel)?, b.run_bma_batch(&csv, args.parallel)?)
                } else {
                    let f = fan_out(&batch, args.parallel, |a| b.run_tool(tool, a))?;
                    (f, fan_out(&batch, args.parallel, |a| b.run_tool(tool, a))?)
                };
                for a in &batch {
                    b.check(tool, a)?;
                }
                println!(
                    "batch #{rep} {:<24} first {:>6.2} s ({:>4} MB)   rerun {:>6.3} s ({:>4} MB)   load {}",
                    tool.name(),
                    first.wall.as_secs_f64(),
                    first.rss_kib / 1024,
                    again.wall.as_secs_f64(),
                    again.rss_kib / 1024,
                    load()
                );
                let e = many.entry(tool).or_default();
                e.0.push(first);
                e.1.push(again);
            }
        }
        for a in &batch {
            b.reset(a)?;
        }
    }
    let loads_after = load();
    // Deleted now that nothing is timed any more.
    fs::remove_dir_all(b.trash())
        .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })?;

    let mut s = String::new();
    let _ = writeln!(s, "## Copy engine: bma sync vs doveadm backup vs mbsync\n");
    let _ = writeln!(
        s,
        "`cargo xtask bench sync{}`: legacy Dovecot → new Dovecot (2.3, Maildir, `mail_fsync = {}` on the \
         target) on loopback, side by side in one run, each tool from an empty target, tools taking turns (each repeat starts with the next tool); median \
         of {} repeats (mbsync: {}). `bma sync` and mbsync ({mbsync_version}, `PipelineDepth 50`) speak IMAP on both sides; \
         `doveadm backup -R … imapc:` (`mail_prefetch_count=20`) reads IMAP and writes the new server's storage \
         directly. Ratios are to doveadm's time (≤ 1.00 means at least as fast). Peak RSS is the process's; \
         for tools run once per mailbox, the largest process. Load average (1, 5, 15 min) before: {loads_before}; \
         after: {loads_after}.\n",
        if args.no_fsync { " --no-fsync" } else { "" },
        if args.no_fsync { "never" } else { "optimized" },
        args.repeats,
        args.mbsync_repeats.min(args.repeats),
    );
    let table = |s: &mut String, title: &str, r: &Results, per: usize| {
        let base = r.get(&Tool::Doveadm).map(|(f, a)| (summarise(f).0, summarise(a).0));
        let _ = writeln!(s, "{title}\n");
        let _ = writeln!(
            s,
            "| tool | first copy | ratio | tool's CPU | peak RSS | rerun, nothing changed | per mailbox | ratio | peak RSS |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for (tool, (f, a)) in r {
            let ((tf, rf, cf), (ta, ra, _)) = (summarise(f), summarise(a));
            let ratio = |x: Duration, y: Option<Duration>| {
                y.map_or("–".to_owned(), |y| format!("{:.2}", x.as_secs_f64() / y.as_secs_f64()))
            };
            let _ = writeln!(
                s,
                "| {} | {:.2} s | {} | {:.2} s | {} MB | {:.3} s | {:.0} ms | {} | {} MB |",
                tool.name(),
                tf.as_secs_f64(),
                ratio(tf, base.map(|b| b.0)),
                cf.as_secs_f64(),
                rf / 1024,
                ta.as_secs_f64(),
                ta.as_secs_f64() * 1000.0 / per as f64,
                ratio(ta, base.map(|b| b.1)),
                ra / 1024
            );
        }
        let _ = writeln!(s);
    };
    table(
        &mut s,
        &format!(
            "One mailbox, 3,000 messages, {:.0} MB, 11 folders (targets: ≤ 1.00, rerun ≤ 50 ms, ≤ 64 MB):",
            source_bytes as f64 / 1e6
        ),
        &one,
        1,
    );
    if !args.single_only {
        table(
            &mut s,
            &format!(
                "{} mailboxes × 200 messages, {} at a time (targets: ≤ 1.00, rerun ≤ 50 ms per mailbox, ≤ 128 MB):",
                batch.len(),
                args.parallel
            ),
            &many,
            batch.len(),
        );
    }
    let _ = writeln!(
        s,
        "Where the time goes: a tool's CPU is its own process only (user + system; summed over the processes \
         when run once per mailbox): `bma`'s is a small part of its wall time, the rest is the two Dovecot \
         servers sharing the 2 cores, and the target's disk. Each saved message is a maildir file created and \
         fsynced (`mail_fsync = optimized`), which `doveadm backup` pays too, and each APPEND transaction adds \
         the fsyncs of the folder and of `dovecot-uidlist` and the index updates. `bma` sends MULTIAPPEND \
         batches of up to 100 messages, one transaction each, copies up to 4 folders at once (with `--batch`, \
         up to 4 mailboxes, one connection pair each), and shares a large first copy (INBOX here, 1,345 \
         messages) batch by batch with the connections that have no folder left, each batch committed in the \
         source's order so that the target's UIDs keep it; `doveadm backup` writes one message after the other \
         in one process. `bma` verifies what it wrote (the default `--verify risky`): per folder a SELECT and \
         one UID FETCH of the appended messages' RFC822.SIZE, and the bytes of the risky ones read back (none \
         in this corpus); `doveadm backup` checks nothing after writing. System-wide profiles (`perf record \
         -a`) of a first copy: one mailbox, about 80 % of the 2 cores busy, the `imap` processes of both \
         servers 60 % of all samples (two thirds of it in the kernel: file creation, fsync, loopback), `bma` \
         9 %, the idle rest mostly the start (logins, the state's creation, the probe) and the last batch; the \
         batch, 87 % busy, `imap` 60 %, the logins (`imap-login`, `auth`, the master process: a process and a \
         SHA512-CRYPT check per connection on each server, where `doveadm backup` needs none on the target) \
         10 %, `bma` 11 %. Both tools make the servers do the same work per message, and on the batch case that \
         work fills the 2 cores: more connections make it slower (`--max-connections 8`: 1.15× the time of 4). \
         Between runs the target mailboxes are moved aside, not deleted: this disk's ext4 has no journal, and \
         there every new file's inode is found only after a scan past the inodes freed in the last minutes \
         (`recently_deleted`), which had made each tool's file creations cost more than its copy. The other \
         jobs of this shared machine move every figure (see the load averages): compare within one run.\n"
    );
    println!("{s}");
    if !args.no_write {
        let title = if args.no_fsync {
            "Copy engine without fsync: bma sync vs doveadm backup vs mbsync"
        } else {
            "Copy engine: bma sync vs doveadm backup vs mbsync"
        };
        crate::bench::write_section(title, &s.replacen("Copy engine: bma sync vs doveadm backup vs mbsync", title, 1))?;
    }
    Ok(())
}
