//! [`run`]: one source mailbox copied to one target mailbox. The start
//! (connections, both trees, the plan, the target's tree) is retried like a
//! folder; folders unchanged since their last complete run are found by one
//! pipelined STATUS per side and only verified; the others are queued for
//! up to [`Options::max_connections`] workers, each with one connection per
//! side, which copy one folder at a time ([`crate::folder`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bma_imap::{Client, MailboxName, StatusInfo};

use crate::error::{Error, Side, on};
use crate::folder::{FolderSync, Sessions};
use crate::mapping::{self, FolderPlan};
use crate::options::{Endpoint, Options};
use crate::report::{FolderReport, Outcome, Summary, report_of, unchanged_report};
use crate::split::Board;
use crate::state::{SyncFolder, SyncState};
use crate::tree;
use crate::verify::altered_of;

/// Connects to one side and logs in (CONDSTORE enabled on the source).
pub(crate) async fn connect(side: Side, endpoint: &Endpoint) -> Result<Client, Error> {
    let mut c = Client::connect(&endpoint.config).await.map_err(on(side))?;
    c.login(&endpoint.auth).await.map_err(|e| match (&endpoint.auth, e) {
        (bma_imap::Auth::Plain { authzid: Some(_), .. }, source @ bma_imap::Error::AuthUnsupported { .. }) => {
            Error::MasterLogin { side, source }
        }
        (_, e) => on(side)(e),
    })?;
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

/// A folder waiting for a worker: its place in the plan, its plan, and
/// whether its size is already in the progress bar's total.
struct Queued {
    index: usize,
    plan: FolderPlan,
    counted: bool,
}

/// What the workers of one run share.
struct Shared<S> {
    source: Endpoint,
    target: Endpoint,
    state: S,
    pair: String,
    options: Options,
    queue: Mutex<VecDeque<Queued>>,
    /// First copies shared with idle workers (with more than one worker).
    board: Option<Board>,
}

/// Copies every selected folder of `source` to `target`, recording progress in `state`.
///
/// Returns `Err` only when the run cannot start (connection, login, LIST on
/// either side); folder and message failures are in the [`Summary`].
pub async fn run<S>(source: &Endpoint, target: &Endpoint, state: S, options: &Options) -> Result<Summary, Error>
where
    S: SyncState + 'static,
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
    let Start { mut src, mut tgt, plans, early, gone, tgt_prefix, tgt_list } = loop {
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
    // The size of the first copies, at once (one pipelined STATUS): a
    // progress bar gets it, so that its ETA means something from the start,
    // and the largest folders are queued first, so that the biggest one
    // (INBOX, often half the mailbox) does not start last and copy alone
    // while the other workers are idle.
    let mut counted: HashSet<usize> = HashSet::new();
    let mut weight: HashMap<usize, (u64, u64)> = HashMap::new();
    let several = todo.len() > 1 && options.max_connections > 1;
    if !fresh.is_empty() && !options.dry_run && (options.progress.is_some() || several) {
        let names: Vec<&MailboxName> = fresh.iter().map(|&i| &plans[i].source).collect();
        if let Ok(statuses) = src.status_many(&names).await {
            let (mut n, mut bytes) = (0, 0);
            for (&i, st) in fresh.iter().zip(statuses) {
                if let Ok(st) = st {
                    let (m, b) = (u64::from(st.messages.unwrap_or(0)), st.size.unwrap_or(0));
                    n += m;
                    bytes += b;
                    counted.insert(i);
                    weight.insert(i, (m, b));
                }
            }
            if let Some(progress) = options.progress.as_ref() {
                progress.add_total(n, bytes);
            } else {
                counted.clear();
            }
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
                            let mut r = unchanged_report(&plans[i], &s, &t);
                            r.altered =
                                state.altered(&pair, &f.source_folder).await?.iter().filter_map(altered_of).collect();
                            reports.push((i, r));
                        }
                        (Ok(s), _) => {
                            weight.insert(i, (u64::from(s.messages.unwrap_or(0)), s.size.unwrap_or(0)));
                            todo.push_back((i, plans[i].clone()));
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
    }
    // Largest first (messages, then bytes), else in the tree's order.
    todo.make_contiguous().sort_by_key(|(i, _)| (std::cmp::Reverse(weight.get(i).copied().unwrap_or_default()), *i));
    // Before copying: does the target rewrite what it is given?
    let mut warnings = Vec::new();
    if !options.dry_run && !todo.is_empty() {
        let key = format!("{}:{}", target.config.host, target.config.port);
        warnings.extend(options.probe.warning(&key, &mut tgt, &tgt_prefix, &tgt_list).await);
    }
    // Returned in the summary, for the caller to show (the CLI prints them,
    // the campaign engine logs them), and given to the progress display at
    // once, before any folder is copied.
    for w in &warnings {
        tracing::info!("{w}");
        if let Some(p) = options.progress.as_ref() {
            p.warn(w);
        }
    }
    // The planning connections become the first worker's.
    let mut first = Some((src, tgt, first_permit));
    let workers = options.max_connections.max(1).min(todo.len());
    let queue: VecDeque<Queued> =
        todo.into_iter().map(|(index, plan)| Queued { index, plan, counted: counted.contains(&index) }).collect();
    let shared = Arc::new(Shared {
        source: source.clone(),
        target: target.clone(),
        state,
        pair,
        options: options.clone(),
        queue: Mutex::new(queue),
        board: (workers > 1).then(Board::default),
    });
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let shared = shared.clone();
        let (conns, permit) = match first.take() {
            Some((s, t, p)) => (Some((s, t)), p),
            None => (None, None),
        };
        set.spawn(async move { worker(&shared, conns, permit).await });
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
    let altered: u64 = folders.iter().map(|f| f.altered.len() as u64).sum();
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
        altered,
        warnings,
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
    tgt_prefix: String,
    tgt_list: Vec<bma_imap::MailboxInfo>,
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
    // An account that does not exist (a master user may act for any name):
    // said once, not as a STATUS error and a CREATE refusal per folder.
    for (side, list, endpoint) in [(Side::Source, &src_list, source), (Side::Target, &tgt_list, target)] {
        if !list.iter().any(|m| m.name.is_inbox()) {
            return Err(Error::NoAccount { side, user: endpoint.user().to_owned() });
        }
    }
    let src_prefix = personal_prefix(&mut src, Side::Source).await?;
    let tgt_prefix = personal_prefix(&mut tgt, Side::Target).await?;
    let tree = mapping::TargetTree {
        list: &tgt_list,
        prefix: &tgt_prefix,
        new_special_use: mapping::NewSpecialUse::of(tgt.capabilities()),
    };
    let mut plans = mapping::plan(&src_list, &src_prefix, &tree, &options.mapping)?;
    let early =
        if options.dry_run { HashMap::new() } else { tree::prepare_tree(&mut tgt, &mut plans, &tgt_list).await? };
    let gone = if options.delete && !options.dry_run {
        tree::remove_vanished_folders(&mut tgt, state, pair, &src_list).await?
    } else {
        Vec::new()
    };
    Ok(Start { src, tgt, plans, early, gone, tgt_prefix, tgt_list })
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

/// One worker: takes folders from the queue one at a time and copies each
/// with its own connection pair (`conns`, or new ones), reconnecting with
/// backoff after a lost connection ([`Options::retries`]).
async fn worker<S: SyncState>(
    shared: &Shared<S>,
    mut conns: Option<(Client, Client)>,
    mut permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Vec<(usize, FolderReport)> {
    let Shared { source, target, state, pair, options, queue, board } = shared;
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
        let next = {
            let mut q = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let next = q.pop_front();
            // Counted as busy before the queue is seen empty by another worker.
            if let (Some(_), Some(b)) = (&next, board) {
                b.started();
            }
            next
        };
        let Some(Queued { index, plan, counted }) = next else {
            // Nothing left to start: help copy a large folder still going.
            let Some(board) = board.as_ref() else { break };
            // Under a shared connection cap, a worker does not hold its slot
            // waiting for a folder to open a split: the next mailbox may use it.
            let job = if options.connection_slots.is_some() { board.open() } else { board.next().await };
            let Some(job) = job else { break };
            let usable = match connected(&mut conns, source, target).await {
                Ok((src, tgt)) => job.help(&mut Sessions { src, tgt, state, pair, options }).await,
                Err(e) => {
                    tracing::debug!("no connection to help with a shared copy: {e}");
                    break;
                }
            };
            if !usable {
                conns = None;
            }
            continue;
        };
        let mut attempt = 0;
        // One report across attempts: what an interrupted attempt copied
        // stays counted; what it refused is tried again, so forgotten.
        let mut report = report_of(&plan, vec![]);
        let began = Instant::now();
        let report = loop {
            report.skipped.clear();
            let result = async {
                let (src, tgt) = connected(&mut conns, source, target).await?;
                let board = board.as_ref();
                let io = Sessions { src, tgt, state, pair, options };
                FolderSync { io, plan: &plan, counted, report: &mut report, board }.run().await
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
        if let Some(b) = board {
            b.finished();
        }
        tracing::debug!(
            folder = %plan.source_name,
            copied = report.copied,
            ms = began.elapsed().as_millis() as u64,
            "folder done"
        );
        out.push((index, report));
    }
    if let Some((s, t)) = conns {
        let _ = tokio::join!(s.logout(), t.logout());
    }
    drop(permit);
    out
}

/// A worker's connection pair: the one it has, or new ones.
async fn connected<'c>(
    conns: &'c mut Option<(Client, Client)>,
    source: &Endpoint,
    target: &Endpoint,
) -> Result<(&'c mut Client, &'c mut Client), Error> {
    let (s, t) = match conns {
        Some(both) => both,
        None => conns.insert(tokio::try_join!(connect(Side::Source, source), connect(Side::Target, target))?),
    };
    Ok((s, t))
}
