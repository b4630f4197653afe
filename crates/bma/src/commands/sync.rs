//! `bma sync`: the copy engine alone, one mailbox (or, with `--batch`, one
//! per CSV row, `--parallel` at a time) from a source IMAP server to a
//! target IMAP server, with its state in a small SQLite file (or any store
//! URL).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use bma_imap::{Auth, Config, ImapUrl, Secret, Security};
use bma_store::Store;
use bma_sync::{Endpoint, MappingOptions, Options, Outcome, Progress, RateLimiter, Summary, Verify};

/// Exit code: some messages or folders were not copied.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit code: the run failed (connection, login, state).
pub const EXIT_FAILED: u8 = 4;

/// How to secure a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tls {
    /// Plaintext (a lab on loopback only).
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the start (imaps).
    Implicit,
}

/// Which appended messages are read back from the target and compared by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyArg {
    /// Those targets are known to rewrite: 8-bit or malformed headers, bare CR or LF,
    /// headers only, NUL bytes.
    Risky,
    /// Every message.
    Full,
}

/// Arguments of `bma sync`.
///
/// Exit codes: 0 when the target holds every source message; 3 (partial)
/// when some messages or folders were not copied (see the summary); 4
/// (failed) when the run could not be done (connection, authentication,
/// state); 2 for usage errors.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 complete, 3 partial (see the summary), 4 failed, 2 usage.\n\
Passwords come from --*-password-file or BMA_SOURCE_PASSWORD / BMA_TARGET_PASSWORD, never from the command line.")]
pub struct Args {
    /// Source server: imap://HOST[:PORT] (STARTTLS) or imaps://HOST[:PORT] (TLS).
    #[arg(long)]
    source: String,
    /// Source mailbox (user).
    #[arg(long, required_unless_present = "batch")]
    source_user: Option<String>,
    /// Source admin (master user) logging in on behalf of the user (SASL PLAIN authzid).
    #[arg(long)]
    source_admin: Option<String>,
    /// File holding the source password (of the admin when --source-admin); else BMA_SOURCE_PASSWORD.
    #[arg(long)]
    source_password_file: Option<PathBuf>,
    /// File holding an OAuth 2.0 access token for the source (SASL XOAUTH2) instead of a password.
    #[arg(long, conflicts_with_all = ["source_password_file", "source_admin"])]
    source_oauth2_token_file: Option<PathBuf>,
    /// Target server: imap://HOST[:PORT] or imaps://HOST[:PORT].
    #[arg(long)]
    target: String,
    /// Target mailbox (user).
    #[arg(long, required_unless_present = "batch")]
    target_user: Option<String>,
    /// Target admin (master user) logging in on behalf of the user.
    #[arg(long)]
    target_admin: Option<String>,
    /// File holding the target password; else BMA_TARGET_PASSWORD.
    #[arg(long)]
    target_password_file: Option<PathBuf>,
    /// File holding an OAuth 2.0 access token for the target (SASL XOAUTH2) instead of a password.
    #[arg(long, conflicts_with_all = ["target_password_file", "target_admin"])]
    target_oauth2_token_file: Option<PathBuf>,
    /// Connection security on both sides (default: from the URL scheme).
    #[arg(long, value_enum)]
    tls: Option<Tls>,
    /// Connection security of the source.
    #[arg(long, value_enum)]
    source_tls: Option<Tls>,
    /// Connection security of the target.
    #[arg(long, value_enum)]
    target_tls: Option<Tls>,
    /// Do not verify TLS certificates.
    #[arg(long)]
    insecure: bool,
    /// Sync state: a SQLite file, or a sqlite:// / postgres:// URL.
    #[arg(long, default_value = "./bma-sync.db")]
    state: String,
    /// Copy only source folders matching this glob (`*`, `?`; repeatable).
    #[arg(long)]
    include: Vec<String>,
    /// Leave out source folders matching this glob (repeatable).
    #[arg(long)]
    exclude: Vec<String>,
    /// Put source folder SRC in target folder DST (UTF-8 names; repeatable).
    #[arg(long, value_name = "SRC=DST")]
    folder_map: Vec<String>,
    /// Connections per server (folders copied at once); with --batch, in all, across the mailboxes, each
    /// mailbox copying with its share (N / --parallel, at least one).
    #[arg(long, default_value_t = 4)]
    max_connections: usize,
    /// Cap on bytes copied per second (in all, across folders and mailboxes).
    #[arg(long, value_name = "N")]
    max_bytes_per_second: Option<u64>,
    /// Messages per MULTIAPPEND command when the target offers MULTIAPPEND (1: single APPENDs).
    #[arg(long, default_value_t = 100)]
    batch_messages: usize,
    /// One mailbox per row: `source_user,target_user` (a header row and `#` comments allowed);
    /// every row uses the servers and credentials given (typically --source-admin / --target-admin).
    #[arg(long, value_name = "FILE.csv", conflicts_with_all = ["source_user", "target_user"])]
    batch: Option<PathBuf>,
    /// With --batch: mailboxes copied at once.
    #[arg(long, default_value_t = 4, requires = "batch")]
    parallel: usize,
    /// Show what would be copied; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Expunge from the target the messages this tool copied that are gone from the source.
    #[arg(long)]
    delete: bool,
    /// After APPEND, every message's size on the target is compared; these are also read back and
    /// compared byte for byte. A message the target stored differently is reported "altered by the
    /// target" (exit code 3).
    #[arg(long, value_enum, default_value = "risky")]
    verify: VerifyArg,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// How one side logs in, for any user.
struct Side {
    config: Config,
    admin: Option<String>,
    secret: Secret,
    /// The OAuth 2.0 token file (read again at each login), instead of a password.
    token_file: Option<PathBuf>,
}

impl Side {
    fn endpoint(&self, user: &str) -> Endpoint {
        let auth = match (&self.admin, &self.token_file) {
            (_, Some(path)) => Auth::XOAuth2File { user: user.to_owned(), path: path.clone() },
            (Some(a), None) => {
                Auth::Plain { authzid: Some(user.to_owned()), authcid: a.clone(), password: self.secret.clone() }
            }
            (None, None) => Auth::Login { user: user.to_owned(), password: self.secret.clone() },
        };
        Endpoint { config: self.config.clone(), auth }
    }
}

/// One side's flags, as given.
struct SideFlags<'a> {
    /// `source` or `target`.
    name: &'static str,
    url: &'a str,
    admin: Option<&'a String>,
    password_file: Option<&'a PathBuf>,
    token_file: Option<&'a PathBuf>,
    tls: Option<Tls>,
}

impl Args {
    fn source_flags(&self) -> SideFlags<'_> {
        SideFlags {
            name: "source",
            url: &self.source,
            admin: self.source_admin.as_ref(),
            password_file: self.source_password_file.as_ref(),
            token_file: self.source_oauth2_token_file.as_ref(),
            tls: self.source_tls.or(self.tls),
        }
    }

    fn target_flags(&self) -> SideFlags<'_> {
        SideFlags {
            name: "target",
            url: &self.target,
            admin: self.target_admin.as_ref(),
            password_file: self.target_password_file.as_ref(),
            token_file: self.target_oauth2_token_file.as_ref(),
            tls: self.target_tls.or(self.tls),
        }
    }
}

fn side(flags: &SideFlags<'_>, insecure: bool) -> anyhow::Result<Side> {
    let side = flags.name;
    let (host, port, security) = server(side, flags.url, flags.tls)?;
    let mut config = Config::new(&host, port).with_security(security);
    config.insecure = insecure;
    let env = format!("BMA_{}_PASSWORD", side.to_uppercase());
    // A token file is read now (a clear error before anything starts) and
    // again at each login (a refreshed token serves the next connection).
    let secret = match (flags.token_file, flags.password_file) {
        (Some(t), _) => Secret::read_file(t).with_context(|| format!("the {side} OAuth 2.0 token file"))?,
        (None, Some(f)) => Secret::read_file(f).with_context(|| format!("the {side} password file"))?,
        (None, None) => Secret::new(
            std::env::var(&env).with_context(|| format!("no {side} password: --{side}-password-file or {env}"))?,
        ),
    };
    Ok(Side { config, admin: flags.admin.cloned(), secret, token_file: flags.token_file.cloned() })
}

impl Tls {
    fn security(self) -> Security {
        match self {
            Tls::None => Security::None,
            Tls::Starttls => Security::StartTls,
            Tls::Implicit => Security::Tls,
        }
    }
}

/// Host, port and TLS mode of `imap://HOST[:PORT]` or `imaps://…` (HOST
/// may be `[IPV6]`; parsed by [`ImapUrl`]), with the `--tls` choice.
fn server(side: &str, url: &str, tls: Option<Tls>) -> anyhow::Result<(String, u16, Security)> {
    let url = ImapUrl::parse(url).map_err(|e| anyhow!("--{side}: {e}"))?;
    let security = url.security(tls.map(Tls::security)).map_err(|e| anyhow!("--{side}: {e}"))?;
    Ok((url.host, url.port, security))
}

/// The rows of a `--batch` file: (source user, target user).
fn batch_rows(path: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split([',', ';']).map(str::trim).collect();
        if i == 0 && fields.first().is_some_and(|f| f.eq_ignore_ascii_case("source_user")) {
            continue;
        }
        match fields.as_slice() {
            [s, t] if !s.is_empty() && !t.is_empty() => rows.push(((*s).to_owned(), (*t).to_owned())),
            _ => bail!("{} line {}: expected source_user,target_user", path.display(), i + 1),
        }
    }
    if rows.is_empty() {
        bail!("{}: no mailbox", path.display());
    }
    Ok(rows)
}

/// The progress bar at a terminal, and the warnings it has shown (each
/// once, above the bar, as soon as a run finds it; not again at the end).
struct Bar(indicatif::ProgressBar, Shown);

/// Warnings already shown.
type Shown = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

impl Progress for Bar {
    fn add_total(&self, _messages: u64, bytes: u64) {
        self.0.inc_length(bytes);
    }
    fn advance(&self, messages: u64, bytes: u64) {
        self.0.inc(bytes);
        let n = self.0.message().parse::<u64>().unwrap_or(0) + messages;
        self.0.set_message(n.to_string());
    }
    fn warn(&self, warning: &bma_sync::Warning) {
        let text = warning.to_string();
        if self.1.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(text.clone()) {
            self.0.println(format!("warning: {text}"));
        }
    }
}

/// One mailbox of a batch and how its copy ended.
#[derive(serde::Serialize)]
struct BatchItem {
    source_user: String,
    target_user: String,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<Summary>,
}

/// Runs one copy (or a batch); the exit code says how it ended.
pub async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let source = side(&args.source_flags(), args.insecure);
    let target = side(&args.target_flags(), args.insecure);
    let (source, target) = match (source, target) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let mut folder_map = Vec::new();
    for m in &args.folder_map {
        let Some((s, d)) = m.split_once('=') else {
            eprintln!("error: --folder-map {m}: expected SRC=DST");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        };
        folder_map.push((s.to_owned(), d.to_owned()));
    }
    let rows = match (&args.batch, &args.source_user, &args.target_user) {
        (Some(file), _, _) => match batch_rows(file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: --batch {e:#}");
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
        },
        (None, Some(s), Some(t)) => vec![(s.clone(), t.clone())],
        _ => {
            eprintln!("error: --source-user and --target-user, or --batch FILE.csv");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let url = if args.state.contains("://") || args.state.starts_with("sqlite:") {
        args.state.clone()
    } else {
        format!("sqlite://{}", args.state)
    };
    let store = match Store::open(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: sync state {}: {e}", args.state);
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    let bar = if !args.json && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} messages  {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}  [{wide_bar}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message("0");
        Some(b)
    } else {
        None
    };
    let shown = Shown::default();
    let options = Options {
        mapping: MappingOptions { include: args.include.clone(), exclude: args.exclude.clone(), folder_map },
        max_connections: args.max_connections.max(1),
        dry_run: args.dry_run,
        delete: args.delete,
        progress: bar.as_ref().map(|b| Arc::new(Bar(b.clone(), shown.clone())) as Arc<dyn Progress>),
        batch_messages: args.batch_messages,
        rate: args.max_bytes_per_second.map(|n| Arc::new(RateLimiter::new(n))),
        verify: match args.verify {
            VerifyArg::Risky => Verify::Risky,
            VerifyArg::Full => Verify::Full,
        },
        ..Options::default()
    };
    let options = if args.batch.is_some() { options.shared_by(args.parallel.max(1)) } else { options };
    let code = if args.batch.is_none() {
        let (s, t) = &rows[0];
        let result = bma_sync::run(&source.endpoint(s), &target.endpoint(t), store.clone(), &options).await;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        match result {
            Ok(summary) => {
                let shown = shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for w in summary.warnings.iter().filter(|w| !shown.contains(&w.to_string())) {
                    eprintln!("warning: {w}");
                }
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&summary).context("cannot print the summary")?);
                } else {
                    print_summary(&summary);
                }
                exit_of(summary.outcome)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_FAILED)
            }
        }
    } else {
        let items = run_batch(&rows, &source, &target, &store, &options, args.parallel.max(1)).await;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let mut warned = shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for w in items.iter().flat_map(|i| i.summary.iter().flat_map(|s| &s.warnings)) {
            if warned.insert(w.to_string()) {
                eprintln!("warning: {w}");
            }
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&items).context("cannot print the summary")?);
        } else {
            print_batch(&items);
        }
        let complete = items.iter().filter(|i| i.outcome == Outcome::Complete).count();
        let failed = items.iter().filter(|i| i.outcome == Outcome::Failed).count();
        exit_of(if complete == items.len() {
            Outcome::Complete
        } else if failed == items.len() {
            Outcome::Failed
        } else {
            Outcome::Partial
        })
    };
    store.close().await;
    Ok(code)
}

/// A folder's bytes as verified, or "unverified" (none known: no STATUS=SIZE, nothing read).
fn bytes(b: Option<u64>) -> String {
    b.map_or_else(|| "unverified".to_owned(), |b| b.to_string())
}

fn exit_of(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::Partial => ExitCode::from(EXIT_PARTIAL),
        Outcome::Failed => ExitCode::from(EXIT_FAILED),
    }
}

/// Copies every row, `parallel` mailboxes at a time, sharing the
/// connection cap and the byte rate.
async fn run_batch(
    rows: &[(String, String)],
    source: &Side,
    target: &Side,
    store: &Store,
    options: &Options,
    parallel: usize,
) -> Vec<BatchItem> {
    let mut set = tokio::task::JoinSet::new();
    let mut items: Vec<Option<BatchItem>> = rows.iter().map(|_| None).collect();
    let mut next = 0;
    loop {
        while set.len() < parallel && next < rows.len() {
            let (s, t) = rows[next].clone();
            let (se, te) = (source.endpoint(&s), target.endpoint(&t));
            let (store, options, i) = (store.clone(), options.clone(), next);
            set.spawn(async move {
                let r = bma_sync::run(&se, &te, store, &options).await;
                let item = match r {
                    Ok(summary) => BatchItem {
                        source_user: s,
                        target_user: t,
                        outcome: summary.outcome,
                        error: None,
                        summary: Some(summary),
                    },
                    Err(e) => BatchItem {
                        source_user: s,
                        target_user: t,
                        outcome: Outcome::Failed,
                        error: Some(e.to_string()),
                        summary: None,
                    },
                };
                (i, item)
            });
            next += 1;
        }
        match set.join_next().await {
            Some(Ok((i, item))) => items[i] = Some(item),
            Some(Err(e)) => tracing::error!("a batch copy task died: {e}"),
            None => break,
        }
    }
    rows.iter()
        .zip(items)
        .map(|((s, t), item)| {
            item.unwrap_or_else(|| BatchItem {
                source_user: s.clone(),
                target_user: t.clone(),
                outcome: Outcome::Failed,
                error: Some("the copy task died".into()),
                summary: None,
            })
        })
        .collect()
}

fn print_batch(items: &[BatchItem]) {
    println!(
        "{:<32} {:<32} {:<9} {:>8} {:>12} {:>7} {:>6} {:>8}",
        "source", "target", "outcome", "copied", "bytes", "skipped", "errors", "ms"
    );
    for i in items {
        let (copied, bytes, skipped, errors, ms) = i
            .summary
            .as_ref()
            .map_or((0, 0, 0, 0, 0), |s| (s.copied, s.copied_bytes, s.skipped, s.errors, s.elapsed_ms));
        println!(
            "{:<32} {:<32} {:<9} {:>8} {:>12} {:>7} {:>6} {:>8}",
            i.source_user,
            i.target_user,
            format!("{:?}", i.outcome).to_lowercase(),
            copied,
            bytes,
            skipped,
            errors,
            ms
        );
        if let Some(e) = &i.error {
            println!("    error: {e}");
        }
        for f in i.summary.iter().flat_map(|s| &s.folders) {
            for k in &f.skipped {
                println!("    {}: skipped UID {}: {}", f.source, k.uid, k.reason);
            }
            for a in &f.altered {
                println!("    {}: {a}", f.source);
            }
            for e in &f.errors {
                println!("    {}: error: {e}", f.source);
            }
        }
    }
    let complete = items.iter().filter(|i| i.outcome == Outcome::Complete).count();
    println!("{} mailboxes: {complete} complete, {} not", items.len(), items.len() - complete);
}

fn print_summary(s: &Summary) {
    println!(
        "{:<32} {:<24} {:>8} {:>12} {:>8} {:>12} {:>7} {:>7}",
        "source", "target", "src msgs", "src bytes", "tgt msgs", "tgt bytes", "copied", "skipped"
    );
    for f in &s.folders {
        println!(
            "{:<32} {:<24} {:>8} {:>12} {:>8} {:>12} {:>7} {:>7}",
            f.source,
            f.target,
            f.source_messages,
            bytes(f.source_bytes),
            f.target_messages,
            bytes(f.target_bytes),
            if s.dry_run { f.planned } else { f.copied },
            f.skipped.len()
        );
        if let Some(n) = &f.note {
            println!("    note: {n}");
        }
        if f.lost_on_target > 0 {
            println!("    {} messages removed from the target since the last run: copied again", f.lost_on_target);
        }
        if !s.dry_run && f.errors.is_empty() && f.target_messages < f.source_messages {
            println!(
                "    verification: the target holds {} messages, the source {}",
                f.target_messages, f.source_messages
            );
        }
        for k in &f.skipped {
            println!("    skipped UID {}: {}", k.uid, k.reason);
        }
        for a in &f.altered {
            println!("    {a}");
        }
        for e in &f.errors {
            println!("    error: {e}");
        }
    }
    let verified: u64 = s.folders.iter().map(|f| f.verified_size).sum();
    let by_content: u64 = s.folders.iter().map(|f| f.verified_content).sum();
    let by_digest: u64 = s.folders.iter().map(|f| f.verified_digest).sum();
    if verified > 0 {
        let digest = if by_digest > 0 { format!(" ({by_digest} by the target's digest)") } else { String::new() };
        println!("verified on the target: {verified} by size, {by_content} of them also by content{digest}");
    }
    println!(
        "{:?}: {} copied ({} bytes), {} skipped, {} altered by the target, {} errors in {} ms{}",
        s.outcome,
        s.copied,
        s.copied_bytes,
        s.skipped,
        s.altered,
        s.errors,
        s.elapsed_ms,
        if s.dry_run { " (dry run: nothing changed)" } else { "" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        type Want<'a> = Result<(&'a str, u16, Security), &'a str>;
        let cases: [(&str, Option<Tls>, Want<'_>); 9] = [
            ("imap://mail.example", None, Ok(("mail.example", 143, Security::StartTls))),
            ("imaps://mail.example", None, Ok(("mail.example", 993, Security::Tls))),
            ("imap://127.0.0.1:10143/", Some(Tls::None), Ok(("127.0.0.1", 10143, Security::None))),
            ("imap://[::1]", None, Ok(("::1", 143, Security::StartTls))),
            ("imaps://[2001:db8::1]:1993", None, Ok(("2001:db8::1", 1993, Security::Tls))),
            ("imap://mail.example:x", None, Err("bad port")),
            ("pop3://mail.example", None, Err("unknown scheme")),
            ("imaps://mail.example", Some(Tls::None), Err("cannot be used with --tls none")),
            ("imap://", None, Err("no host")),
        ];
        for (url, tls, want) in cases {
            match (server("source", url, tls), want) {
                (Ok((h, p, s)), Ok((wh, wp, ws))) => assert_eq!((h.as_str(), p, s), (wh, wp, ws), "{url}"),
                (Err(e), Err(text)) => assert!(format!("{e:#}").contains(text), "{url}: {e:#}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }
}
