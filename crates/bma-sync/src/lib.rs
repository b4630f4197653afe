//! `bma-sync`: the copy engine, IMAP to IMAP, lossless, incremental and
//! crash-safe, usable without a campaign.
//!
//! [`run`] copies every folder of one source mailbox to one target mailbox:
//! the tree is planned by [`mapping`], then up to
//! [`Options::max_connections`] workers (each with one connection per
//! side) take folders one at a time. Missing target folders are created
//! and subscriptions carried first, in one pipelined round trip; folders
//! whose STATUS (pipelined, one round trip per side) shows no change since
//! the last complete run are only verified. Per folder:
//!
//! 1. EXAMINE the source (never changed: no STORE, no EXPUNGE there), SELECT
//!    the target; if the source's UIDNEXT and HIGHESTMODSEQ are those of the
//!    last complete run, nothing changed: only the verification runs.
//! 2. A UIDVALIDITY change on either side forgets the folder's map: every
//!    target message becomes a candidate for reconciliation (below).
//! 3. UID FETCH of the metadata of the source messages: after a complete
//!    run, with CONDSTORE, only those changed since its HIGHESTMODSEQ
//!    (`CHANGEDSINCE`, and with [`Options::delete`] QRESYNC's `VANISHED`:
//!    the UIDs expunged since); otherwise every message (UIDs and flags).
//!    Those not in the map are new.
//! 4. Reconciliation: target messages that the map does not name
//!    (appended by a run that was killed before recording them, or present
//!    before any state) and that have the size and INTERNALDATE of a new
//!    message are fetched and keyed by (size, INTERNALDATE, SHA-256 of the
//!    bytes); a new source message with the same key is mapped to one of
//!    them instead of being appended. After an interrupted run, the target
//!    folder is first given time to stop growing (an APPEND sent by the
//!    killed run may still be committing). After the copy, unmapped copies
//!    of mapped messages are removed. So a kill -9 at any point loses
//!    nothing and duplicates nothing, and bodies are never altered (no
//!    marker header).
//! 5. New messages are streamed (one UID FETCH, one message held at a time)
//!    with their flags (keywords and `\Deleted` included) and INTERNALDATE
//!    into MULTIAPPEND commands of up to [`Options::batch_messages`]
//!    messages when the target has MULTIAPPEND and UIDPLUS (one server
//!    transaction per batch instead of per message), pipelined single
//!    APPENDs otherwise. A batch the target refuses is appended again
//!    message by message, so only the refused message is skipped; messages
//!    refused with `[THROTTLED]`, `[UNAVAILABLE]` or `[OVERQUOTA]` are tried
//!    again after a pause ([`Options::pause`], doubling, [`Options::pauses`]
//!    times). Each APPENDUID is recorded in the state, in batches of
//!    [`Options::commit_every`]. Identity is the source (UIDVALIDITY, UID),
//!    never Message-ID: duplicates and messages without Message-ID are all
//!    copied.
//! 6. Flags that differ from what was carried are replaced on the target;
//!    with [`Options::delete`], messages copied earlier and gone from the
//!    source (vanished, or missing from the full list) are expunged from
//!    the target, and so are those copied from a source folder that is gone
//!    (deleted or renamed; the target folder stays).
//! 7. Verification: STATUS (MESSAGES, SIZE) on both sides.
//!
//! A message the target refuses is reported (folder, UID, reason) and the
//! run goes on; a lost connection is retried (reconnect with backoff) and
//! the folder resumed from the state. [`Options::rate`] (bytes per second)
//! and [`Options::connection_slots`] (connection pairs open at once) can be
//! shared by several runs, as `bma sync --batch` does.
//!
//! # API
//!
//! [`run`] with two [`Endpoint`]s, a [`SyncState`] (the campaign
//! [`bma_store::Store`], or any implementation) and [`Options`] (start from
//! `Options::default()`); it returns a [`Summary`] whose [`Outcome`] says
//! whether the target holds everything.

pub mod mapping;
mod state;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bma_imap::{
    AppendMessage, Auth, Client, Config, Flag, MailboxCommand, MailboxName, MessageMeta, SelectInfo, StatusInfo,
    StoreMode, UidSet,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use mapping::{FolderPlan, MappingOptions};
pub use state::{StateError, SyncFolder, SyncMessage, SyncState};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The server copied from.
    Source,
    /// The server copied to.
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// An error that stops a run (per-folder errors are in the [`Summary`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// IMAP failed on one side (connection, login, LIST, ...).
    #[error("{side}: {source}")]
    Imap {
        /// Which side.
        side: Side,
        /// The cause.
        source: bma_imap::Error,
    },
    /// The sync state failed.
    #[error("sync state: {0}")]
    State(#[from] StateError),
    /// The folder mapping asks for something unsupported.
    #[error(transparent)]
    Mapping(#[from] mapping::MergeError),
}

impl Error {
    /// The side an IMAP error happened on.
    pub fn side(&self) -> Option<Side> {
        match self {
            Error::Imap { side, .. } => Some(*side),
            Error::State(_) | Error::Mapping(_) => None,
        }
    }

    /// Whether reconnecting later may help: a lost connection, a server
    /// that refuses or does not answer new connections (restarting), or a
    /// temporary refusal (`[UNAVAILABLE]`, `[THROTTLED]`, also at login).
    fn is_connection_lost(&self) -> bool {
        let Error::Imap { source, .. } = self else { return false };
        source.is_connection_lost()
            || source.is_transient()
            || matches!(
                source,
                bma_imap::Error::Connect { .. }
                    | bma_imap::Error::Timeout(_)
                    | bma_imap::Error::AuthFailed {
                        code: Some(bma_imap::ResponseCode::Unavailable | bma_imap::ResponseCode::Throttled),
                        ..
                    }
            )
    }
}

fn on(side: Side) -> impl Fn(bma_imap::Error) -> Error {
    move |source| Error::Imap { side, source }
}

/// One side of a copy: where and how to log in.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Server.
    pub config: Config,
    /// Login.
    pub auth: Auth,
}

impl Endpoint {
    /// The user whose mailbox this is.
    pub fn user(&self) -> &str {
        match &self.auth {
            Auth::Login { user, .. } | Auth::XOAuth2 { user, .. } | Auth::XOAuth2File { user, .. } => user,
            Auth::Plain { authzid: Some(u), .. } => u,
            Auth::Plain { authcid, .. } => authcid,
        }
    }

    fn key(&self) -> String {
        format!("{}@{}:{}", self.user(), self.config.host, self.config.port)
    }
}

/// Told of progress (a progress bar).
pub trait Progress: Send + Sync {
    /// More to copy: `messages` of `bytes` in all.
    fn add_total(&self, messages: u64, bytes: u64);
    /// Copied: `messages` of `bytes`.
    fn advance(&self, messages: u64, bytes: u64);
}

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// Folder selection and mapping.
    pub mapping: MappingOptions,
    /// Connections per server (and folders copied at once).
    pub max_connections: usize,
    /// Plan and report, change nothing.
    pub dry_run: bool,
    /// Expunge from the target what was expunged from the source (among messages copied).
    pub delete: bool,
    /// Mappings recorded per state transaction.
    pub commit_every: usize,
    /// Retries of a folder after a lost connection (backoff 1 s, 2 s, 4 s, ...).
    pub retries: u32,
    /// Progress reporting.
    pub progress: Option<Arc<dyn Progress>>,
    /// Messages per MULTIAPPEND command when the target has MULTIAPPEND
    /// (RFC 3502); 1 or 0 turns MULTIAPPEND off (pipelined single APPENDs).
    pub batch_messages: usize,
    /// Bytes per MULTIAPPEND command (a command ends at whichever limit
    /// comes first). Messages are streamed, never held as a batch.
    pub batch_bytes: u64,
    /// Shared cap on bytes copied per second (across folders, and across
    /// mailboxes when the same limiter is given to several runs).
    pub rate: Option<Arc<RateLimiter>>,
    /// Shared cap on connection pairs (one to each server) open at once,
    /// across runs that share it; `max_connections` still caps each run.
    pub connection_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Pauses before retrying messages the target refused with
    /// `[THROTTLED]`, `[UNAVAILABLE]` or `[OVERQUOTA]` (each twice as long).
    pub pause: Duration,
    /// How many such pauses a folder may take before the refusals are final.
    pub pauses: u32,
}

/// A cap on bytes per second, shared by whatever copies through it.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_second: u64,
    sent: Mutex<(Instant, u64)>,
}

impl RateLimiter {
    /// A limiter of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> RateLimiter {
        RateLimiter { bytes_per_second: bytes_per_second.max(1), sent: Mutex::new((Instant::now(), 0)) }
    }

    /// Accounts for `bytes` and waits until they fit in the rate.
    pub async fn take(&self, bytes: u64) {
        let due = {
            let mut g = self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            // Idle time is not banked beyond one second's worth.
            let floor = now.checked_sub(Duration::from_secs(1)).unwrap_or(g.0);
            if g.0 + Duration::from_secs_f64(g.1 as f64 / self.bytes_per_second as f64) < floor {
                *g = (floor, 0);
            }
            g.1 += bytes;
            g.0 + Duration::from_secs_f64(g.1 as f64 / self.bytes_per_second as f64)
        };
        tokio::time::sleep_until(due.into()).await;
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mapping", &self.mapping)
            .field("max_connections", &self.max_connections)
            .field("dry_run", &self.dry_run)
            .field("delete", &self.delete)
            .field("batch_messages", &self.batch_messages)
            .field("batch_bytes", &self.batch_bytes)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// These options for `parallel` runs at once (a batch of mailboxes)
    /// sharing [`Options::max_connections`] connection pairs: each run gets
    /// its fair share (at least one pair) and all of them one shared cap.
    /// A run's extra pairs are worth their logins on a big mailbox only:
    /// without a share, the extra workers of the runs under way would take
    /// every pair freed by a finished mailbox, and the next mailbox would
    /// wait for its first connection while they log in again.
    #[must_use]
    pub fn shared_by(mut self, parallel: usize) -> Options {
        let total = self.max_connections.max(1);
        self.connection_slots = Some(Arc::new(tokio::sync::Semaphore::new(total)));
        self.max_connections = share(total, parallel);
        self
    }
}

/// Each of `parallel` runs' share of `total` connection pairs: at least one.
pub fn share(total: usize, parallel: usize) -> usize {
    (total / parallel.max(1)).max(1)
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mapping: MappingOptions::default(),
            max_connections: 4,
            dry_run: false,
            delete: false,
            commit_every: 64,
            retries: 5,
            progress: None,
            batch_messages: 100,
            batch_bytes: 16 << 20,
            rate: None,
            connection_slots: None,
            pause: Duration::from_secs(2),
            pauses: 3,
        }
    }
}

/// A message not copied, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Source UID.
    pub uid: u32,
    /// Why (the target's refusal).
    pub reason: String,
}

/// What happened to one folder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderReport {
    /// Source folder (UTF-8).
    pub source: String,
    /// Target folder (UTF-8).
    pub target: String,
    /// Naming note (special use, `--folder-map`, characters replaced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Messages in the source folder (verification).
    pub source_messages: u64,
    /// Bytes in the source folder (verification).
    pub source_bytes: u64,
    /// Messages in the target folder (verification).
    pub target_messages: u64,
    /// Bytes in the target folder (verification).
    pub target_bytes: u64,
    /// Source messages known to be on the target after the run.
    pub mapped: u64,
    /// New messages found (copied, or to copy with `--dry-run`).
    pub planned: u64,
    /// Messages appended.
    pub copied: u64,
    /// Bytes appended.
    pub copied_bytes: u64,
    /// Messages found already on the target (after a crash or without state) and mapped.
    pub reconciled: u64,
    /// Messages whose flags were carried again.
    pub flags_updated: u64,
    /// Messages expunged from the target (`--delete`).
    pub deleted: u64,
    /// Messages copied by an earlier run and gone from the target since
    /// (removed there by someone): copied again.
    pub lost_on_target: u64,
    /// Surplus copies removed from the target: APPENDs of a killed run
    /// that the server completed after this run had looked for them.
    pub duplicates_removed: u64,
    /// Nothing changed since the last complete run.
    pub unchanged: bool,
    /// MULTIAPPEND commands refused as a whole, whose messages were then
    /// appended one by one (so that only the refused ones are skipped).
    pub batches_retried: u64,
    /// Pauses taken because the target said `[THROTTLED]`, `[UNAVAILABLE]` or `[OVERQUOTA]`.
    pub pauses: u64,
    /// Reconnections after a lost connection.
    pub reconnects: u64,
    /// Whether the source's changes were read with CONDSTORE `CHANGEDSINCE`
    /// (else every message's flags were read).
    pub changedsince: bool,
    /// Whether the source's expunges were read with QRESYNC (`VANISHED`),
    /// on a `--delete` run (else every UID was read to find them).
    pub qresync: bool,
    /// Messages refused by the target.
    pub skipped: Vec<Skipped>,
    /// Errors that stopped this folder.
    pub errors: Vec<String>,
}

impl FolderReport {
    /// Everything is there: nothing refused, every source message mapped,
    /// and the target folder holding at least as many messages as the
    /// source's (the verification).
    fn complete(&self) -> bool {
        self.skipped.is_empty()
            && self.errors.is_empty()
            && self.mapped >= self.source_messages
            && self.target_messages >= self.source_messages
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The target holds everything.
    Complete,
    /// Some messages or folders were not copied (see the report).
    Partial,
    /// Nothing could be done.
    Failed,
}

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How it ended.
    pub outcome: Outcome,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// Per folder.
    pub folders: Vec<FolderReport>,
    /// Messages appended.
    pub copied: u64,
    /// Bytes appended.
    pub copied_bytes: u64,
    /// Messages refused by the target.
    pub skipped: u64,
    /// Folder errors.
    pub errors: u64,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
}

async fn connect(side: Side, endpoint: &Endpoint) -> Result<Client, Error> {
    let mut c = Client::connect(&endpoint.config).await.map_err(on(side))?;
    c.login(&endpoint.auth).await.map_err(on(side))?;
    if side == Side::Source {
        c.enable_modseq().await.map_err(on(side))?;
    }
    Ok(c)
}

async fn personal_prefix(c: &mut Client, side: Side) -> Result<String, Error> {
    if !c.capabilities().namespace() {
        return Ok(String::new());
    }
    let ns = c.namespace().await.map_err(on(side))?;
    Ok(ns.personal.first().map(|n| n.prefix.name().into_owned()).unwrap_or_default())
}

/// Copies every selected folder of `source` to `target`, recording progress in `state`.
///
/// Returns `Err` only when the run cannot start (connection, login, LIST on
/// either side); folder and message failures are in the [`Summary`].
pub async fn run<S>(source: &Endpoint, target: &Endpoint, state: S, options: &Options) -> Result<Summary, Error>
where
    S: SyncState + Clone + 'static,
{
    let started = Instant::now();
    let pair = format!("{} -> {}", source.key(), target.key());
    let first_permit = match &options.connection_slots {
        Some(slots) => slots.clone().acquire_owned().await.ok(),
        None => None,
    };
    // The start (connections, both trees, the target's folders) is retried
    // like a folder is: a server restarting, or answering [UNAVAILABLE] at
    // login, is waited for with backoff.
    let mut attempt = 0;
    let Start { mut src, mut tgt, plans, early, gone } = loop {
        match start(source, target, &state, &pair, options).await {
            Ok(s) => break s,
            // At most 3 times (7 s): a mistyped address should not keep the user waiting.
            Err(e) if e.is_connection_lost() && attempt < options.retries.min(3) => {
                attempt += 1;
                tracing::warn!(attempt, "retrying the start after: {e}");
                tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    };
    // Folders unchanged since their last complete run (STATUS: same
    // UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ) are only verified, here, with
    // one pipelined STATUS per side for them all, so that an unchanged rerun
    // costs one connection per side and a few round trips.
    let mut reports: Vec<(usize, FolderReport)> = Vec::new();
    reports.extend(gone.into_iter().enumerate().map(|(k, r)| (plans.len() + k, r)));
    let mut todo = VecDeque::new();
    let mut known: Vec<(usize, SyncFolder)> = Vec::new();
    let mut fresh: Vec<usize> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        if early.contains_key(&p.source_name) {
            continue;
        }
        if !p.selectable {
            reports.push((i, report_of(p, vec![])));
            continue;
        }
        match state.folder(&pair, &p.source_name).await? {
            Some(f) if f.uid_next.is_some() && f.highest_modseq.is_some() => known.push((i, f)),
            Some(_) => todo.push_back((i, p.clone())),
            None => {
                fresh.push(i);
                todo.push_back((i, p.clone()));
            }
        }
    }
    // A progress bar gets the size of the first copies at once (one
    // pipelined STATUS), so that its ETA means something from the start.
    let mut counted: HashSet<usize> = HashSet::new();
    if let Some(progress) = options.progress.as_ref().filter(|_| !fresh.is_empty() && !options.dry_run) {
        let names: Vec<&MailboxName> = fresh.iter().map(|&i| &plans[i].source).collect();
        if let Ok(statuses) = src.status_many(&names).await {
            let (mut n, mut bytes) = (0, 0);
            for (&i, st) in fresh.iter().zip(statuses) {
                if let Ok(st) = st {
                    n += u64::from(st.messages.unwrap_or(0));
                    bytes += st.size.unwrap_or(0);
                    counted.insert(i);
                }
            }
            progress.add_total(n, bytes);
        }
    }
    if !known.is_empty() {
        let sources: Vec<&MailboxName> = known.iter().map(|(i, _)| &plans[*i].source).collect();
        let targets: Vec<&MailboxName> = known.iter().map(|(i, _)| &plans[*i].target).collect();
        let statuses = tokio::try_join!(async { src.status_many(&sources).await.map_err(on(Side::Source)) }, async {
            tgt.status_many(&targets).await.map_err(on(Side::Target))
        });
        match statuses {
            Ok((ss, ts)) => {
                for (((i, f), s), t) in known.into_iter().zip(ss).zip(ts) {
                    match (s, t) {
                        (Ok(s), Ok(t)) if unchanged(&f, &s, &t) => {
                            reports.push((i, unchanged_report(&plans[i], &s, &t)));
                        }
                        _ => todo.push_back((i, plans[i].clone())),
                    }
                }
            }
            Err(e) => {
                tracing::debug!("pre-check failed, the workers will see: {e}");
                todo.extend(known.into_iter().map(|(i, _)| (i, plans[i].clone())));
            }
        }
        todo.make_contiguous().sort_by_key(|(i, _)| *i);
    }
    // The planning connections become the first worker's.
    let mut first = Some((src, tgt, first_permit));
    let workers = options.max_connections.max(1).min(todo.len());
    let todo: VecDeque<(usize, FolderPlan, bool)> =
        todo.into_iter().map(|(i, p)| (i, p, counted.contains(&i))).collect();
    let queue: Arc<Mutex<VecDeque<(usize, FolderPlan, bool)>>> = Arc::new(Mutex::new(todo));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (queue, state, pair) = (queue.clone(), state.clone(), pair.clone());
        let (source, target, options) = (source.clone(), target.clone(), options.clone());
        let (conns, permit) = match first.take() {
            Some((s, t, p)) => (Some((s, t)), p),
            None => (None, None),
        };
        set.spawn(async move { worker(&source, &target, &state, &pair, &queue, &options, conns, permit).await });
    }
    if let Some((s, t, _)) = first {
        let _ = tokio::join!(s.logout(), t.logout());
    }
    while let Some(r) = set.join_next().await {
        match r {
            Ok(v) => reports.extend(v),
            Err(e) => tracing::error!("a copy worker died: {e}"),
        }
    }
    for (i, p) in plans.iter().enumerate() {
        if let Some(e) = early.get(&p.source_name) {
            reports.push((i, report_of(p, vec![e.clone()])));
        }
    }
    reports.sort_by_key(|(i, _)| *i);
    let folders: Vec<FolderReport> = reports.into_iter().map(|(_, r)| r).collect();
    let errors: u64 = folders.iter().map(|f| f.errors.len() as u64).sum();
    let skipped: u64 = folders.iter().map(|f| f.skipped.len() as u64).sum();
    let outcome = if folders.iter().all(|f| options.dry_run && f.errors.is_empty() || f.complete()) {
        Outcome::Complete
    } else if !folders.is_empty() && folders.iter().all(|f| !f.errors.is_empty()) {
        Outcome::Failed
    } else {
        Outcome::Partial
    };
    Ok(Summary {
        outcome,
        dry_run: options.dry_run,
        copied: folders.iter().map(|f| f.copied).sum(),
        copied_bytes: folders.iter().map(|f| f.copied_bytes).sum(),
        skipped,
        errors,
        folders,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// What the start of a run leaves: the planning connections, the folder
/// plans, the folders whose target could not be created, and the reports
/// of folders gone from the source (with `--delete`).
struct Start {
    src: Client,
    tgt: Client,
    plans: Vec<FolderPlan>,
    early: HashMap<String, String>,
    gone: Vec<FolderReport>,
}

/// Connects to both sides, lists both trees, plans the folders, prepares
/// the target's tree and, with `--delete`, empties what came from folders
/// gone from the source. Each step can be done again after a failure.
async fn start<S: SyncState>(
    source: &Endpoint,
    target: &Endpoint,
    state: &S,
    pair: &str,
    options: &Options,
) -> Result<Start, Error> {
    let (mut src, mut tgt) = tokio::try_join!(connect(Side::Source, source), connect(Side::Target, target))?;
    if !options.dry_run && !tgt.capabilities().uidplus() {
        // Without APPENDUID there is no knowing where a message landed: no
        // crash safety, no incremental run. Said once, not per message.
        return Err(Error::Imap { side: Side::Target, source: bma_imap::Error::Unsupported("UIDPLUS (RFC 4315)") });
    }
    let src_list = src.list().await.map_err(on(Side::Source))?;
    let tgt_list = tgt.list().await.map_err(on(Side::Target))?;
    let src_prefix = personal_prefix(&mut src, Side::Source).await?;
    let tgt_prefix = personal_prefix(&mut tgt, Side::Target).await?;
    let mut plans = mapping::plan(&src_list, &src_prefix, &tgt_list, &tgt_prefix, &options.mapping)?;
    let early = if options.dry_run { HashMap::new() } else { prepare_tree(&mut tgt, &mut plans, &tgt_list).await? };
    let gone = if options.delete && !options.dry_run {
        remove_vanished_folders(&mut tgt, state, pair, &src_list).await?
    } else {
        Vec::new()
    };
    Ok(Start { src, tgt, plans, early, gone })
}

/// With [`Options::delete`]: the folders of the state whose source folder
/// is gone (deleted or renamed on the source; a folder only left out by
/// `--exclude` is still listed, so untouched). The messages copied from it
/// are expunged from its target folder (if that is still the folder they
/// were copied to: same UIDVALIDITY), and the state forgets it. The target
/// folder itself stays.
async fn remove_vanished_folders<S: SyncState>(
    tgt: &mut Client,
    state: &S,
    pair: &str,
    src_list: &[bma_imap::MailboxInfo],
) -> Result<Vec<FolderReport>, Error> {
    let mut out = Vec::new();
    for f in state.folders(pair).await? {
        if src_list.iter().any(|m| m.name.name() == f.source_folder) {
            continue;
        }
        let mut r = FolderReport {
            source: f.source_folder.clone(),
            target: f.target_folder.clone(),
            ..FolderReport::default()
        };
        match tgt.select(&MailboxName::new(&f.target_folder)).await {
            Ok(sel) if sel.uid_validity == f.target_uidvalidity => {
                let uids: UidSet = state.messages(pair, &f.source_folder).await?.iter().map(|m| m.target_uid).collect();
                if !uids.is_empty() {
                    tgt.uid_store(&uids, StoreMode::Add, &[Flag::Deleted]).await.map_err(on(Side::Target))?;
                    tgt.uid_expunge(&uids).await.map_err(on(Side::Target))?;
                }
                r.deleted = uids.count();
                let st = tgt.status(&MailboxName::new(&f.target_folder)).await.map_err(on(Side::Target))?;
                r.target_messages = u64::from(st.messages.unwrap_or(0));
                r.target_bytes = st.size.unwrap_or(0);
            }
            // Another folder by that name now, or none: nothing of ours there.
            Ok(_) => {}
            Err(e) if e.is_connection_lost() => return Err(on(Side::Target)(e)),
            Err(_) => {}
        }
        tracing::info!(folder = %f.source_folder, removed = r.deleted, "folder gone from the source");
        r.note =
            Some(format!("gone from the source: the {} messages copied from it removed from the target", r.deleted));
        state.remove_folder(pair, &f.source_folder).await?;
        out.push(r);
    }
    Ok(out)
}

/// Creates the target folders that are missing and subscribes those the
/// source has subscribed, in one pipelined round trip. A name the target
/// refuses is tried once more cleaned ([`mapping::cleaned_name`]), and the
/// plan follows the new name, with a note. Returns the folders whose target
/// could not be created, with the reason.
async fn prepare_tree(
    tgt: &mut Client,
    plans: &mut [FolderPlan],
    tgt_list: &[bma_imap::MailboxInfo],
) -> Result<HashMap<String, String>, Error> {
    let delim = tgt_list.iter().find_map(|m| m.delimiter).unwrap_or('/');
    let mut commands: Vec<(MailboxCommand, MailboxName)> = Vec::new();
    let mut created: Vec<usize> = Vec::new();
    for (i, p) in plans.iter().enumerate().filter(|(_, p)| !p.target.is_inbox()) {
        let on_target = tgt_list.iter().find(|t| t.name.name() == p.target_name);
        if !p.target_exists && on_target.is_none() {
            commands.push((MailboxCommand::Create, p.target.clone()));
            created.push(i);
        }
        if p.subscribed && !on_target.is_some_and(|t| t.subscribed) {
            commands.push((MailboxCommand::Subscribe, p.target.clone()));
        }
    }
    let (made, refused) = run_tree_commands(tgt, &commands, &created).await?;
    for i in made {
        plans[i].created = true;
    }
    // Names refused: once more, cleaned.
    let mut early = HashMap::new();
    let mut retry: Vec<(MailboxCommand, MailboxName)> = Vec::new();
    let mut renamed: Vec<(usize, String, String)> = Vec::new();
    for (i, reason) in refused {
        let p = &plans[i];
        let base = mapping::cleaned_name(&p.target_name, delim);
        if base == p.target_name {
            early.insert(p.source_name.clone(), format!("cannot create {}: {reason}", p.target_name));
            continue;
        }
        // Never onto another source folder's target.
        let mut clean = base.clone();
        let mut n = 2;
        while plans.iter().any(|q| q.target_name == clean) || renamed.iter().any(|(_, c, _)| *c == clean) {
            clean = format!("{base} ({n})");
            n += 1;
        }
        retry.push((MailboxCommand::Create, MailboxName::new(&clean)));
        if p.subscribed {
            retry.push((MailboxCommand::Subscribe, MailboxName::new(&clean)));
        }
        renamed.push((i, clean, reason));
    }
    let again: Vec<usize> = renamed.iter().map(|(i, _, _)| *i).collect();
    let (made, still) = run_tree_commands(tgt, &retry, &again).await?;
    for (i, clean, reason) in renamed {
        let p = &mut plans[i];
        if let Some((_, e)) = still.iter().find(|(j, _)| *j == i) {
            early.insert(p.source_name.clone(), format!("cannot create {} ({reason}) nor {clean}: {e}", p.target_name));
            continue;
        }
        tracing::warn!(folder = %p.target_name, to = %clean, "the target refused the name: {reason}");
        p.note = Some(format!("the target refused the name {} ({reason}): copied to {clean}", p.target_name));
        p.target = MailboxName::new(&clean);
        p.target_name = clean;
        p.target_exists = true;
        p.created = made.contains(&i);
    }
    Ok(early)
}

/// Runs pipelined CREATE/SUBSCRIBE commands; `created[k]` is the plan of
/// the k-th CREATE. Returns the plans whose folder was created, and those
/// whose CREATE was refused (an existing folder is neither), with the
/// server's reason; a refused SUBSCRIBE is only logged.
async fn run_tree_commands(
    tgt: &mut Client,
    commands: &[(MailboxCommand, MailboxName)],
    created: &[usize],
) -> Result<(Vec<usize>, Vec<(usize, String)>), Error> {
    let borrowed: Vec<(MailboxCommand, &MailboxName)> = commands.iter().map(|(c, m)| (*c, m)).collect();
    let results = tgt.mailbox_commands(&borrowed).await.map_err(on(Side::Target))?;
    let (mut made, mut refused) = (Vec::new(), Vec::new());
    let mut plans = created.iter();
    for ((command, name), r) in commands.iter().zip(results) {
        match (command, r) {
            (MailboxCommand::Create, r) => {
                let i = *plans.next().expect("one plan per CREATE");
                match r {
                    Ok(()) => made.push(i),
                    Err(e) if e.code() == Some(bma_imap::ResponseCode::AlreadyExists) => {}
                    Err(e) => refused.push((i, e.to_string())),
                }
            }
            (_, Err(e)) => tracing::warn!(folder = %name.name(), "cannot subscribe: {e}"),
            (_, Ok(())) => {}
        }
    }
    Ok((made, refused))
}

/// Whether a folder is as its last complete run left it: same UIDVALIDITY
/// on both sides, same UIDNEXT and HIGHESTMODSEQ on the source, and at
/// least as many messages on the target as on the source.
fn unchanged(f: &SyncFolder, s: &StatusInfo, t: &StatusInfo) -> bool {
    s.uid_validity == Some(f.source_uidvalidity)
        && s.uid_next == f.uid_next
        && s.highest_modseq == f.highest_modseq
        && t.uid_validity == Some(f.target_uidvalidity)
        && t.messages >= s.messages
}

/// The report of a folder found unchanged (its STATUS on both sides is the verification).
fn unchanged_report(plan: &FolderPlan, s: &StatusInfo, t: &StatusInfo) -> FolderReport {
    let mut r = report_of(plan, vec![]);
    r.unchanged = true;
    r.source_messages = u64::from(s.messages.unwrap_or(0));
    r.source_bytes = s.size.unwrap_or(0);
    r.target_messages = u64::from(t.messages.unwrap_or(0));
    r.target_bytes = t.size.unwrap_or(0);
    r.mapped = r.source_messages;
    r
}

fn report_of(p: &FolderPlan, errors: Vec<String>) -> FolderReport {
    FolderReport {
        source: p.source_name.clone(),
        target: p.target_name.clone(),
        note: p.note.clone(),
        errors,
        ..FolderReport::default()
    }
}

#[allow(clippy::too_many_arguments)]
async fn worker<S: SyncState>(
    source: &Endpoint,
    target: &Endpoint,
    state: &S,
    pair: &str,
    queue: &Mutex<VecDeque<(usize, FolderPlan, bool)>>,
    options: &Options,
    mut conns: Option<(Client, Client)>,
    mut permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Vec<(usize, FolderReport)> {
    let mut out = Vec::new();
    loop {
        // A slot first, then a folder: a worker waiting for a slot holds no
        // folder that another worker of this run could copy meanwhile.
        if permit.is_none()
            && let Some(slots) = &options.connection_slots
        {
            if queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty() {
                break;
            }
            permit = slots.clone().acquire_owned().await.ok();
        }
        let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front();
        let Some((i, plan, counted)) = next else { break };
        let mut attempt = 0;
        // One report across attempts: what an interrupted attempt copied
        // stays counted; what it refused is tried again, so forgotten.
        let mut report = report_of(&plan, vec![]);
        let report = loop {
            report.skipped.clear();
            let result = async {
                if conns.is_none() {
                    let both = tokio::try_join!(connect(Side::Source, source), connect(Side::Target, target))?;
                    conns = Some(both);
                }
                let (src, tgt) = conns.as_mut().expect("connected above");
                sync_folder(src, tgt, state, pair, &plan, options, counted, &mut report).await
            }
            .await;
            report.reconnects = u64::from(attempt);
            match result {
                Ok(()) => break report,
                Err(e) if e.is_connection_lost() && attempt < options.retries => {
                    attempt += 1;
                    conns = None;
                    tracing::warn!(folder = %plan.source_name, attempt, "retrying after: {e}");
                    tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
                }
                Err(e) => {
                    if e.is_connection_lost() {
                        conns = None;
                    }
                    report.errors.push(e.to_string());
                    break report;
                }
            }
        };
        out.push((i, report));
    }
    if let Some((s, t)) = conns {
        let _ = tokio::join!(s.logout(), t.logout());
    }
    drop(permit);
    out
}

/// Flags as carried: settable ones, sorted, space-separated.
fn canonical(flags: &[Flag]) -> String {
    let mut v: Vec<&str> = flags.iter().filter(|f| f.settable()).map(Flag::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v.join(" ")
}

fn flags_of(canon: &str) -> Vec<Flag> {
    canon.split_whitespace().map(Flag::parse).collect()
}

type Key = (usize, String, [u8; 32]);

fn key_of(body: &[u8], date: Option<&bma_imap::InternalDate>) -> Key {
    let hash: [u8; 32] = Sha256::digest(body).into();
    (body.len(), date.map(|d| d.0.unix_timestamp().to_string()).unwrap_or_default(), hash)
}

/// Copies one folder (see the crate doc); `counted`: its size is already
/// in the progress bar's total.
#[allow(clippy::too_many_arguments)]
async fn sync_folder<S: SyncState>(
    src: &mut Client,
    tgt: &mut Client,
    state: &S,
    pair: &str,
    plan: &FolderPlan,
    options: &Options,
    counted: bool,
    report: &mut FolderReport,
) -> Result<(), Error> {
    if !plan.selectable {
        return Ok(());
    }
    let sname = plan.source_name.as_str();
    let prev = state.folder(pair, sname).await?;
    // EXAMINE the source and open the target at once. A first copy into an
    // empty target folder needs no SELECT (APPEND names its folder, STATUS
    // tells its UIDVALIDITY), so the target's session does not follow every
    // message appended; it is selected later only if a STORE needs it.
    let target = async {
        if options.dry_run {
            return match tgt.examine(&plan.target).await {
                Ok(t) => Ok(Some((t, true))),
                Err(e) if e.is_connection_lost() => Err(on(Side::Target)(e)),
                Err(_) => Ok(None),
            };
        }
        if prev.is_none() && plan.created {
            // Created by this run, so empty: its UIDVALIDITY is learnt at the end.
            return Ok(Some((SelectInfo::default(), false)));
        }
        if prev.is_none() {
            let st = tgt.status(&plan.target).await.map_err(on(Side::Target))?;
            if let (Some(0), Some(uid_validity)) = (st.messages, st.uid_validity) {
                let info = SelectInfo { uid_validity, uid_next: st.uid_next, ..SelectInfo::default() };
                return Ok(Some((info, false)));
            }
        }
        tgt.select(&plan.target).await.map(|t| Some((t, true))).map_err(on(Side::Target))
    };
    let (sel, tsel) = tokio::try_join!(async { src.examine(&plan.source).await.map_err(on(Side::Source)) }, target)?;
    let (tsel, mut selected) = match tsel {
        Some((t, selected)) => (Some(t), selected),
        None => (None, false),
    };
    let t_validity = tsel.as_ref().map_or(0, |t| t.uid_validity);
    // A target UIDVALIDITY of 0 in the state: a first copy into a folder
    // this tool created was interrupted before it learnt it; the map is for
    // that folder (were it recreated since, its messages would be missing
    // and copied again, below).
    let same = prev.as_ref().is_some_and(|f| {
        f.source_uidvalidity == sel.uid_validity && (f.target_uidvalidity == t_validity || f.target_uidvalidity == 0)
    });
    if let Some(f) = prev.as_ref().filter(|_| same)
        && f.uid_next.is_some()
        && f.uid_next == sel.uid_next
        && f.highest_modseq.is_some()
        && f.highest_modseq == sel.highest_modseq
        && tsel.as_ref().is_some_and(|t| t.exists >= sel.exists)
    {
        report.unchanged = true;
        report.mapped = u64::from(sel.exists);
        return verify(src, tgt, plan, tsel.is_some(), report).await.map(|_| ());
    }
    if prev.is_some() && !same && !options.dry_run {
        state.clear(pair, sname).await?;
    }
    let mut map: BTreeMap<u32, SyncMessage> = if same {
        state.messages(pair, sname).await?.into_iter().map(|m| (m.source_uid, m)).collect()
    } else {
        BTreeMap::new()
    };
    // Fewer messages on the target than were copied there: some were
    // removed on the target since. They are forgotten, so that they are
    // copied again (the source is the reference), and every source message
    // is listed (a CHANGEDSINCE list would not name them).
    let mut lost = false;
    if selected && !options.dry_run && tsel.as_ref().is_some_and(|t| (t.exists as usize) < map.len()) {
        let present: HashSet<u32> = target_metas(tgt).await?.iter().map(|m| m.uid).collect();
        let gone: Vec<u32> = map.values().filter(|m| !present.contains(&m.target_uid)).map(|m| m.source_uid).collect();
        if !gone.is_empty() {
            tracing::warn!(folder = %plan.target_name, n = gone.len(), "messages copied earlier are gone from the target: copying them again");
            state.forget(pair, sname, &gone).await?;
            for u in &gone {
                map.remove(u);
            }
            report.lost_on_target = gone.len() as u64;
            lost = true;
        }
    }
    let mut folder = SyncFolder {
        pair: pair.to_owned(),
        source_folder: sname.to_owned(),
        target_folder: plan.target_name.clone(),
        source_uidvalidity: sel.uid_validity,
        target_uidvalidity: t_validity,
        last_uid: map.keys().next_back().copied().unwrap_or(0),
        uid_next: None,
        highest_modseq: None,
    };
    if !options.dry_run {
        state.save_folder(&folder).await?;
    }

    // Source metadata: with CONDSTORE and a complete previous run, only
    // what changed since (new messages and flag changes: CHANGEDSINCE);
    // else every message (UIDs, flags). Deletions need every UID, or
    // QRESYNC's list of the UIDs expunged since (VANISHED).
    let prev_modseq = prev
        .as_ref()
        .filter(|_| same && !options.dry_run && !lost)
        .and_then(|f| f.highest_modseq)
        .filter(|m| src.capabilities().condstore() && sel.highest_modseq.is_some_and(|h| h >= *m));
    let qresync = options.delete && prev_modseq.is_some() && src.qresync_enabled();
    let since = prev_modseq.filter(|_| !options.delete || qresync);
    report.changedsince = since.is_some();
    report.qresync = qresync;
    let mut metas: Vec<MessageMeta> = Vec::new();
    let mut vanished: Option<UidSet> = None;
    if let (true, Some(m)) = (qresync, since) {
        // Even in an empty folder: the server lists what vanished.
        let ch = src.fetch_changes(&UidSet::all(), m).await.map_err(on(Side::Source))?;
        metas = ch.changed;
        vanished = Some(ch.vanished);
    } else if sel.exists > 0 {
        let mut s = src.fetch_meta(&UidSet::all(), since).await.map_err(on(Side::Source))?;
        while let Some(m) = s.next().await.map_err(on(Side::Source))? {
            metas.push(m);
        }
    }
    let new: Vec<&MessageMeta> = metas.iter().filter(|m| !map.contains_key(&m.uid)).collect();
    report.planned = new.len() as u64;
    if options.dry_run {
        report.mapped = map.len() as u64;
        return verify(src, tgt, plan, tsel.is_some(), report).await.map(|_| ());
    }
    let mut tsel = tsel.expect("selected when not a dry run");
    if prev.as_ref().is_some_and(|f| f.uid_next.is_none()) && !new.is_empty() {
        // The last run of this folder did not finish (killed, or messages
        // refused): an APPEND it had sent may still be committing in its
        // server session. Wait until the folder stops growing (≤ 3 s), so
        // that those messages are found below instead of appended again.
        settle(tgt, &mut tsel.exists).await?;
    }

    // Reconciliation candidates: target messages that no state maps (a
    // killed run's APPENDs, including those the server completed after a
    // later run had looked, or mail there before any state) and that could
    // be one of the new messages (same size and INTERNALDATE): keyed by
    // (size, INTERNALDATE, SHA-256) of their bytes.
    let mut orphans: HashMap<Key, VecDeque<(u32, String)>> = HashMap::new();
    if !new.is_empty() && tsel.exists > 0 {
        let wanted: HashSet<SizeDate> = new.iter().map(|m| size_date(m)).collect();
        let mapped: HashSet<u32> = map.values().map(|m| m.target_uid).collect();
        let cands: UidSet = target_metas(tgt)
            .await?
            .iter()
            .filter(|m| !mapped.contains(&m.uid) && wanted.contains(&size_date(m)))
            .map(|m| m.uid)
            .collect();
        if !cands.is_empty() {
            let mut s = tgt.fetch_bodies(&cands).await.map_err(on(Side::Target))?;
            while let Some(m) = s.next().await.map_err(on(Side::Target))? {
                let canon = canonical(m.flags.as_deref().unwrap_or(&[]));
                orphans.entry(key_of(&m.body, m.internal_date.as_ref())).or_default().push_back((m.uid, canon));
            }
        }
    }

    // Copy.
    let total_bytes: u64 = new.iter().filter_map(|m| m.size).sum();
    if let Some(p) = options.progress.as_ref().filter(|_| !counted) {
        p.add_total(new.len() as u64, total_bytes);
    }
    let mut batch: Vec<SyncMessage> = Vec::new();
    let copy_result = if new.is_empty() {
        Ok(())
    } else {
        let set: UidSet = new.iter().map(|m| m.uid).collect();
        let mut ctx = CopyCtx { orphans: &mut orphans, batch: &mut batch, map: &mut map };
        copy_all(src, tgt, state, pair, plan, options, set, &mut ctx, report).await
    };
    let recorded = state.record(pair, sname, &batch).await;
    for m in batch.drain(..) {
        map.insert(m.source_uid, m);
    }
    copy_result?;
    recorded?;
    if selected && tgt.exists().is_some_and(|n| n as usize > map.len()) {
        remove_copies_of_mapped(tgt, &map, report).await?;
    }

    // Flags.
    let mut by_flags: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for m in &metas {
        if let Some(known) = map.get(&m.uid) {
            let canon = canonical(&m.flags);
            if canon != known.flags {
                by_flags.entry(canon).or_default().push(m.uid);
            }
        }
    }
    if !selected && !by_flags.is_empty() {
        // A flag changed between the two reads of a first copy.
        tgt.select(&plan.target).await.map_err(on(Side::Target))?;
        selected = true;
    }
    for (canon, uids) in by_flags {
        let targets: UidSet = uids.iter().filter_map(|u| map.get(u)).map(|m| m.target_uid).collect();
        tgt.uid_store(&targets, StoreMode::Replace, &flags_of(&canon)).await.map_err(on(Side::Target))?;
        let mut changed = Vec::new();
        for u in &uids {
            if let Some(m) = map.get_mut(u) {
                m.flags.clone_from(&canon);
                changed.push(m.clone());
            }
        }
        state.record(pair, sname, &changed).await?;
        report.flags_updated += changed.len() as u64;
    }

    // Deletions.
    if options.delete {
        let gone: Vec<u32> = match &vanished {
            Some(v) => map.keys().copied().filter(|u| v.contains(*u)).collect(),
            None => {
                let present: HashSet<u32> = metas.iter().map(|m| m.uid).collect();
                map.keys().copied().filter(|u| !present.contains(u)).collect()
            }
        };
        if !gone.is_empty() {
            if !selected {
                tgt.select(&plan.target).await.map_err(on(Side::Target))?;
            }
            let targets: UidSet = gone.iter().filter_map(|u| map.get(u)).map(|m| m.target_uid).collect();
            tgt.uid_store(&targets, StoreMode::Add, &[Flag::Deleted]).await.map_err(on(Side::Target))?;
            tgt.uid_expunge(&targets).await.map_err(on(Side::Target))?;
            state.forget(pair, sname, &gone).await?;
            for u in &gone {
                map.remove(u);
            }
            report.deleted = gone.len() as u64;
        }
    }

    let unmapped = metas.iter().filter(|m| !map.contains_key(&m.uid)).count() as u64;
    report.mapped =
        if since.is_some() { u64::from(sel.exists).saturating_sub(unmapped) } else { metas.len() as u64 - unmapped };
    folder.last_uid = map.keys().next_back().copied().unwrap_or(0);
    if report.skipped.is_empty() && unmapped == 0 {
        folder.uid_next = sel.uid_next;
        folder.highest_modseq = sel.highest_modseq;
    }
    if folder.target_uidvalidity == 0 {
        let t = verify(src, tgt, plan, true, report).await?;
        folder.target_uidvalidity = t.unwrap_or(0);
        state.save_folder(&folder).await?;
        return Ok(());
    }
    state.save_folder(&folder).await?;
    verify(src, tgt, plan, true, report).await.map(|_| ())
}

/// Waits until the selected target folder's message count is the same
/// after 300 ms (NOOP), at most ten times.
async fn settle(tgt: &mut Client, exists: &mut u32) -> Result<(), Error> {
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tgt.noop().await.map_err(on(Side::Target))?;
        let now = tgt.exists().unwrap_or(*exists);
        if now == *exists {
            return Ok(());
        }
        tracing::info!(before = *exists, now, "the target folder is still growing (an interrupted run's APPEND)");
        *exists = now;
    }
    Ok(())
}

/// (RFC822.SIZE, INTERNALDATE as Unix time): a cheap prefilter before hashing bodies.
type SizeDate = (u64, i64);

fn size_date(m: &MessageMeta) -> SizeDate {
    (m.size.unwrap_or(0), m.internal_date.as_ref().map_or(0, |d| d.0.unix_timestamp()))
}

/// The metadata of every message of the selected target folder.
async fn target_metas(tgt: &mut Client) -> Result<Vec<MessageMeta>, Error> {
    let mut out = Vec::new();
    let mut s = tgt.fetch_meta(&UidSet::all(), None).await.map_err(on(Side::Target))?;
    while let Some(m) = s.next().await.map_err(on(Side::Target))? {
        out.push(m);
    }
    Ok(out)
}

/// When the target folder holds more messages than the map: unmapped
/// target messages byte-identical (same key) to a mapped one are copies
/// appended by a killed run that the server completed after the next run
/// had looked (they sit below the highest mapped UID): removed, so that
/// each source message is on the target once.
async fn remove_copies_of_mapped(
    tgt: &mut Client,
    map: &BTreeMap<u32, SyncMessage>,
    report: &mut FolderReport,
) -> Result<(), Error> {
    let metas = target_metas(tgt).await?;
    let mapped: HashSet<u32> = map.values().map(|m| m.target_uid).collect();
    let unmapped_sd: HashSet<SizeDate> = metas.iter().filter(|m| !mapped.contains(&m.uid)).map(size_date).collect();
    if unmapped_sd.is_empty() {
        return Ok(());
    }
    let twins: Vec<&MessageMeta> =
        metas.iter().filter(|m| mapped.contains(&m.uid) && unmapped_sd.contains(&size_date(m))).collect();
    if twins.is_empty() {
        return Ok(());
    }
    let twin_sd: HashSet<SizeDate> = twins.iter().map(|m| size_date(m)).collect();
    let mut keys: HashSet<Key> = HashSet::new();
    {
        let set: UidSet = twins.iter().map(|m| m.uid).collect();
        let mut s = tgt.fetch_bodies(&set).await.map_err(on(Side::Target))?;
        while let Some(m) = s.next().await.map_err(on(Side::Target))? {
            keys.insert(key_of(&m.body, m.internal_date.as_ref()));
        }
    }
    let suspects: UidSet =
        metas.iter().filter(|m| !mapped.contains(&m.uid) && twin_sd.contains(&size_date(m))).map(|m| m.uid).collect();
    let mut dups = UidSet::default();
    let mut n = 0;
    {
        let mut s = tgt.fetch_bodies(&suspects).await.map_err(on(Side::Target))?;
        while let Some(m) = s.next().await.map_err(on(Side::Target))? {
            if keys.contains(&key_of(&m.body, m.internal_date.as_ref())) {
                dups.insert(m.uid);
                n += 1;
            }
        }
    }
    if n > 0 {
        tracing::warn!(folder = %report.target, n, "removing copies of mapped messages appended by an interrupted run");
        tgt.uid_store(&dups, StoreMode::Add, &[Flag::Deleted]).await.map_err(on(Side::Target))?;
        tgt.uid_expunge(&dups).await.map_err(on(Side::Target))?;
        report.duplicates_removed += n;
    }
    Ok(())
}

/// What [`copy`] reads and fills.
struct CopyCtx<'a> {
    orphans: &'a mut HashMap<Key, VecDeque<(u32, String)>>,
    batch: &'a mut Vec<SyncMessage>,
    map: &'a mut BTreeMap<u32, SyncMessage>,
}

/// Copies `set`: MULTIAPPEND when the target has it (a refused batch is
/// then appended message by message, so that only the refused messages are
/// skipped), pipelined APPENDs otherwise; messages refused with
/// `[THROTTLED]`, `[UNAVAILABLE]` or `[OVERQUOTA]` are tried again after a
/// pause, [`Options::pauses`] times at most, then reported.
#[allow(clippy::too_many_arguments)]
async fn copy_all<S: SyncState>(
    src: &mut Client,
    tgt: &mut Client,
    state: &S,
    pair: &str,
    plan: &FolderPlan,
    options: &Options,
    set: UidSet,
    ctx: &mut CopyCtx<'_>,
    report: &mut FolderReport,
) -> Result<(), Error> {
    let caps = tgt.capabilities();
    let multi = options.batch_messages > 1 && caps.multiappend() && caps.uidplus();
    let mut retry = if multi {
        let refused = copy_multi(src, tgt, state, pair, plan, options, set, ctx, report).await?;
        if refused.is_empty() {
            return Ok(());
        }
        let again: UidSet = refused.iter().copied().collect();
        copy(src, tgt, state, pair, plan, options, again, ctx, report, options.pauses > 0).await?
    } else {
        copy(src, tgt, state, pair, plan, options, set, ctx, report, options.pauses > 0).await?
    };
    let mut pause = options.pause;
    let mut n = 0;
    while !retry.is_empty() {
        n += 1;
        report.pauses += 1;
        tracing::warn!(folder = %plan.target_name, messages = retry.len(), ?pause, "target asked to wait; pausing");
        tokio::time::sleep(pause).await;
        pause *= 2;
        let again: UidSet = retry.iter().copied().collect();
        retry = copy(src, tgt, state, pair, plan, options, again, ctx, report, n < options.pauses).await?;
    }
    Ok(())
}

/// What to do with a fetched source message before appending it: `None`
/// when it is already on the target (reconciled) or cannot be sent.
fn prepare(m: &bma_imap::FetchedMessage, ctx: &mut CopyCtx<'_>, report: &mut FolderReport, options: &Options) -> bool {
    let size = m.body.len() as u64;
    // Hashing every byte costs CPU (SHA-256 of the whole mailbox): only
    // when target messages are waiting to be matched.
    let matched = if ctx.orphans.is_empty() {
        None
    } else {
        let key = key_of(&m.body, m.internal_date.as_ref());
        ctx.orphans.get_mut(&key).and_then(VecDeque::pop_front)
    };
    if let Some((tuid, tflags)) = matched {
        ctx.batch.push(SyncMessage { source_uid: m.uid, target_uid: tuid, flags: tflags, size });
        report.reconciled += 1;
        if let Some(p) = &options.progress {
            p.advance(1, size);
        }
        return false;
    }
    if m.body.contains(&0) {
        report.skipped.push(Skipped {
            uid: m.uid,
            reason: "the message contains a NUL byte, which IMAP APPEND cannot carry".into(),
        });
        return false;
    }
    true
}

async fn flush<S: SyncState>(
    state: &S,
    pair: &str,
    plan: &FolderPlan,
    options: &Options,
    ctx: &mut CopyCtx<'_>,
) -> Result<(), Error> {
    if ctx.batch.len() >= options.commit_every {
        state.record(pair, &plan.source_name, ctx.batch).await?;
        for r in ctx.batch.drain(..) {
            ctx.map.insert(r.source_uid, r);
        }
    }
    Ok(())
}

/// Streams `set` from the source into MULTIAPPEND commands of at most
/// [`Options::batch_messages`] messages and [`Options::batch_bytes`] bytes;
/// returns the UIDs of the batches the target refused.
#[allow(clippy::too_many_arguments)]
async fn copy_multi<S: SyncState>(
    src: &mut Client,
    tgt: &mut Client,
    state: &S,
    pair: &str,
    plan: &FolderPlan,
    options: &Options,
    set: UidSet,
    ctx: &mut CopyCtx<'_>,
    report: &mut FolderReport,
) -> Result<Vec<u32>, Error> {
    let mut stream = src.fetch_bodies(&set).await.map_err(on(Side::Source))?;
    let mut pipe = tgt.multiappend_pipeline(&plan.target).map_err(on(Side::Target))?;
    let mut pending: HashMap<u64, (String, u64)> = HashMap::new();
    let mut refused = Vec::new();
    let mut bytes = 0u64;
    while let Some(m) = stream.next().await.map_err(on(Side::Source))? {
        if !prepare(&m, ctx, report, options) {
            continue;
        }
        let flags: Vec<Flag> = m.flags.clone().unwrap_or_default();
        let size = m.body.len() as u64;
        let append = AppendMessage { body: &m.body, flags: &flags, internal_date: m.internal_date };
        pipe.push(u64::from(m.uid), append).await.map_err(on(Side::Target))?;
        pending.insert(u64::from(m.uid), (canonical(&flags), size));
        drop(m);
        bytes += size;
        if let Some(r) = &options.rate {
            r.take(size).await;
        }
        if pipe.open_len() >= options.batch_messages || bytes >= options.batch_bytes {
            pipe.end_batch().await.map_err(on(Side::Target))?;
            bytes = 0;
        }
        while let Some(d) = pipe.try_done() {
            handle_batch(d, &mut pending, &mut refused, ctx, report, options);
        }
        flush(state, pair, plan, options, ctx).await?;
    }
    drop(stream);
    for d in pipe.finish().await.map_err(on(Side::Target))? {
        handle_batch(d, &mut pending, &mut refused, ctx, report, options);
    }
    if !refused.is_empty() {
        report.batches_retried += 1;
    }
    Ok(refused)
}

fn handle_batch(
    d: bma_imap::BatchDone,
    pending: &mut HashMap<u64, (String, u64)>,
    refused: &mut Vec<u32>,
    ctx: &mut CopyCtx<'_>,
    report: &mut FolderReport,
    options: &Options,
) {
    match d.result {
        Ok(uids) if uids.len() == d.ids.len() => {
            for (id, au) in d.ids.iter().zip(uids) {
                let (flags, size) = pending.remove(id).unwrap_or_default();
                copied(*id as u32, au.uid, flags, size, ctx.batch, report, options);
            }
        }
        Ok(uids) => {
            for id in &d.ids {
                pending.remove(id);
                report.skipped.push(Skipped {
                    uid: *id as u32,
                    reason: format!(
                        "appended in a batch of {}, but the target gave {} UIDs; found again on the next run",
                        d.ids.len(),
                        uids.len()
                    ),
                });
            }
        }
        Err(e) => {
            tracing::info!(messages = d.ids.len(), "MULTIAPPEND refused ({e}); appending one by one");
            for id in &d.ids {
                pending.remove(id);
                refused.push(*id as u32);
            }
        }
    }
}

fn copied(
    uid: u32,
    target_uid: u32,
    flags: String,
    size: u64,
    batch: &mut Vec<SyncMessage>,
    report: &mut FolderReport,
    options: &Options,
) {
    batch.push(SyncMessage { source_uid: uid, target_uid, flags, size });
    report.copied += 1;
    report.copied_bytes += size;
    if let Some(p) = &options.progress {
        p.advance(1, size);
    }
}

/// Pipelined single APPENDs of `set`; returns the UIDs refused for now
/// (`[THROTTLED]`, `[UNAVAILABLE]`, `[OVERQUOTA]`) when `defer` (else those
/// are skipped with their reason, like every other refusal).
#[allow(clippy::too_many_arguments)]
async fn copy<S: SyncState>(
    src: &mut Client,
    tgt: &mut Client,
    state: &S,
    pair: &str,
    plan: &FolderPlan,
    options: &Options,
    set: UidSet,
    ctx: &mut CopyCtx<'_>,
    report: &mut FolderReport,
    defer: bool,
) -> Result<Vec<u32>, Error> {
    let mut stream = src.fetch_bodies(&set).await.map_err(on(Side::Source))?;
    let mut pipe = tgt.append_pipeline(&plan.target);
    let mut pending: HashMap<u64, (String, u64)> = HashMap::new();
    let mut later = Vec::new();
    let (mut pushed, mut taken) = (0usize, 0usize);
    while let Some(m) = stream.next().await.map_err(on(Side::Source))? {
        if !prepare(&m, ctx, report, options) {
            continue;
        }
        let flags: Vec<Flag> = m.flags.clone().unwrap_or_default();
        let size = m.body.len() as u64;
        let append = AppendMessage { body: &m.body, flags: &flags, internal_date: m.internal_date };
        pipe.push(u64::from(m.uid), append).await.map_err(on(Side::Target))?;
        pending.insert(u64::from(m.uid), (canonical(&flags), size));
        pushed += 1;
        drop(m);
        if let Some(r) = &options.rate {
            r.take(size).await;
        }
        while pushed - taken > pipe.in_flight() {
            let Some(d) = pipe.next_done().await.map_err(on(Side::Target))? else { break };
            taken += 1;
            handle(d, &mut pending, &mut later, defer, ctx.batch, report, options);
        }
        flush(state, pair, plan, options, ctx).await?;
    }
    drop(stream);
    for d in pipe.finish().await.map_err(on(Side::Target))? {
        handle(d, &mut pending, &mut later, defer, ctx.batch, report, options);
    }
    Ok(later)
}

/// Whether a refusal may go away by waiting.
fn wait_and_retry(e: &bma_imap::Error) -> bool {
    matches!(
        e,
        bma_imap::Error::Throttled { .. } | bma_imap::Error::Unavailable { .. } | bma_imap::Error::OverQuota { .. }
    )
}

/// Takes the result of one APPEND: mapped, deferred, or skipped with the target's reason.
fn handle(
    d: bma_imap::AppendDone,
    pending: &mut HashMap<u64, (String, u64)>,
    later: &mut Vec<u32>,
    defer: bool,
    batch: &mut Vec<SyncMessage>,
    report: &mut FolderReport,
    options: &Options,
) {
    let (flags, size) = pending.remove(&d.id).unwrap_or_default();
    let uid = d.id as u32;
    match d.result {
        Ok(Some(au)) => copied(uid, au.uid, flags, size, batch, report, options),
        Ok(None) => {
            report.skipped.push(Skipped { uid, reason: "appended, but the target gave no UID (no UIDPLUS)".into() });
        }
        Err(e) if defer && wait_and_retry(&e) => later.push(uid),
        Err(e) => report.skipped.push(Skipped { uid, reason: e.to_string() }),
    }
}

async fn verify(
    src: &mut Client,
    tgt: &mut Client,
    plan: &FolderPlan,
    target_exists: bool,
    report: &mut FolderReport,
) -> Result<Option<u32>, Error> {
    // Both sides at once: one round trip instead of two.
    let target = async {
        if target_exists { tgt.status(&plan.target).await.map(Some).map_err(on(Side::Target)) } else { Ok(None) }
    };
    let (s, t) = tokio::try_join!(async { src.status(&plan.source).await.map_err(on(Side::Source)) }, target)?;
    report.source_messages = u64::from(s.messages.unwrap_or(0));
    report.source_bytes = s.size.unwrap_or(0);
    Ok(t.and_then(|t| {
        report.target_messages = u64::from(t.messages.unwrap_or(0));
        report.target_bytes = t.size.unwrap_or(0);
        t.uid_validity
    }))
}

/// Exposed for tests: the flags as the engine carries them.
pub fn canonical_flags(flags: &[Flag]) -> String {
    canonical(flags)
}

/// Exposed for tests: a folder name as the target would see it.
pub fn mailbox(name: &str) -> MailboxName {
    MailboxName::new(name)
}
