//! `bma sync`: the copy engine alone, one mailbox from a source IMAP server
//! to a target IMAP server, with its state in a small SQLite file.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use bma_imap::{Auth, Config, Secret, Security};
use bma_store::Store;
use bma_sync::{Endpoint, MappingOptions, Options, Outcome, Progress, Summary};

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
    #[arg(long)]
    source_user: String,
    /// Source admin (master user) logging in on behalf of the user (SASL PLAIN authzid).
    #[arg(long)]
    source_admin: Option<String>,
    /// File holding the source password (of the admin when --source-admin); else BMA_SOURCE_PASSWORD.
    #[arg(long)]
    source_password_file: Option<PathBuf>,
    /// Target server: imap://HOST[:PORT] or imaps://HOST[:PORT].
    #[arg(long)]
    target: String,
    /// Target mailbox (user).
    #[arg(long)]
    target_user: String,
    /// Target admin (master user) logging in on behalf of the user.
    #[arg(long)]
    target_admin: Option<String>,
    /// File holding the target password; else BMA_TARGET_PASSWORD.
    #[arg(long)]
    target_password_file: Option<PathBuf>,
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
    /// Connections per server (folders copied at once).
    #[arg(long, default_value_t = 4)]
    max_connections: usize,
    /// Show what would be copied; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Expunge from the target the messages this tool copied that are gone from the source.
    #[arg(long)]
    delete: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn endpoint(
    side: &str,
    url: &str,
    user: &str,
    admin: Option<&String>,
    file: Option<&PathBuf>,
    tls: Option<Tls>,
    insecure: bool,
) -> anyhow::Result<Endpoint> {
    let (scheme, rest) = url.split_once("://").with_context(|| format!("--{side}: expected imap://HOST[:PORT]"))?;
    let (implicit, default_port) = match scheme {
        "imap" => (false, 143),
        "imaps" => (true, 993),
        _ => bail!("--{side}: unknown scheme {scheme}:// (imap:// or imaps://)"),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().with_context(|| format!("--{side}: bad port {p}"))?),
        None => (rest, default_port),
    };
    let security = match tls {
        Some(Tls::None) => Security::None,
        Some(Tls::Starttls) => Security::StartTls,
        Some(Tls::Implicit) => Security::Tls,
        None if implicit => Security::Tls,
        None => Security::StartTls,
    };
    let mut config = Config::new(host, port).with_security(security);
    config.insecure = insecure;
    let env = format!("BMA_{}_PASSWORD", side.to_uppercase());
    let password = match file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the {side} password file {}", f.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        None => std::env::var(&env).with_context(|| format!("no {side} password: --{side}-password-file or {env}"))?,
    };
    let auth = match admin {
        Some(a) => Auth::Plain { authzid: Some(user.to_owned()), authcid: a.clone(), password: Secret::new(password) },
        None => Auth::Login { user: user.to_owned(), password: Secret::new(password) },
    };
    Ok(Endpoint { config, auth })
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn add_total(&self, _messages: u64, bytes: u64) {
        self.0.inc_length(bytes);
    }
    fn advance(&self, messages: u64, bytes: u64) {
        self.0.inc(bytes);
        let n = self.0.message().parse::<u64>().unwrap_or(0) + messages;
        self.0.set_message(n.to_string());
    }
}

/// Runs one copy; the exit code says how it ended.
pub async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let source = endpoint(
        "source",
        &args.source,
        &args.source_user,
        args.source_admin.as_ref(),
        args.source_password_file.as_ref(),
        args.source_tls.or(args.tls),
        args.insecure,
    );
    let target = endpoint(
        "target",
        &args.target,
        &args.target_user,
        args.target_admin.as_ref(),
        args.target_password_file.as_ref(),
        args.target_tls.or(args.tls),
        args.insecure,
    );
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
    let options = Options {
        mapping: MappingOptions { include: args.include.clone(), exclude: args.exclude.clone(), folder_map },
        max_connections: args.max_connections.max(1),
        dry_run: args.dry_run,
        delete: args.delete,
        progress: bar.as_ref().map(|b| Arc::new(Bar(b.clone())) as Arc<dyn Progress>),
        ..Options::default()
    };
    let result = bma_sync::run(&source, &target, store.clone(), &options).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    store.close().await;
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).context("cannot print the summary")?);
    } else {
        print_summary(&summary);
    }
    Ok(match summary.outcome {
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::Partial => ExitCode::from(EXIT_PARTIAL),
        Outcome::Failed => ExitCode::from(EXIT_FAILED),
    })
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
            f.source_bytes,
            f.target_messages,
            f.target_bytes,
            if s.dry_run { f.planned } else { f.copied },
            f.skipped.len()
        );
        for k in &f.skipped {
            println!("    skipped UID {}: {}", k.uid, k.reason);
        }
        for e in &f.errors {
            println!("    error: {e}");
        }
    }
    println!(
        "{:?}: {} copied ({} bytes), {} skipped, {} errors in {} ms{}",
        s.outcome,
        s.copied,
        s.copied_bytes,
        s.skipped,
        s.errors,
        s.elapsed_ms,
        if s.dry_run { " (dry run: nothing changed)" } else { "" }
    );
}
