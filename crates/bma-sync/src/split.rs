//! A large first copy shared by the run's idle workers: the folder's new
//! messages are cut into MULTIAPPEND batches up front, claimed in order by
//! the worker that copies the folder (its owner) and by any worker of the
//! run whose queue is empty (a helper, with its own connection pair), so
//! that the biggest folder (INBOX, often half the mailbox) does not copy
//! alone on one connection while the other connections are idle.
//!
//! Rules:
//!
//! - Only a first copy into an empty target folder (nothing to reconcile),
//!   with MULTIAPPEND, UIDPLUS and LITERAL+ on the target (so that a batch
//!   is one command and a refusal comes only at its end), more than one
//!   worker in the run, and at least two batches.
//! - **Order kept.** Batches are uploaded in parallel, but a batch's
//!   command is ended (its final CRLF, which commits it and gives its UIDs)
//!   only once every earlier batch is resolved: the target's UIDs follow the
//!   source's order, as on one connection.
//! - Each batch's APPENDUIDs are recorded in the state as soon as they come,
//!   before the next batch may commit (crash safety as for any copy).
//! - A batch the target refuses goes back to the owner, which appends its
//!   messages one by one afterwards (they then land after the others).
//! - Any other failure (a connection lost on either side, the state)
//!   aborts the whole split: batches not yet ended are dropped with their
//!   connection (never committed), and the owner returns the first error,
//!   so that the folder is retried like any folder whose connection was
//!   lost (finding what was committed by reconciliation).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bma_imap::{Client, MessageMeta, UidSet};
use tokio::sync::{Notify, watch};

use crate::append::{CopyCtx, InFlight, multiappend, unsendable};
use crate::error::{Error, Side, on};
use crate::folder::{FolderSync, Sessions};
use crate::mapping::FolderPlan;
use crate::options::{Options, Progress};
use crate::report::{FolderReport, Skipped};
use crate::state::{SyncMessage, SyncState};
use crate::verify::Appended;

/// The splits of a run open to helpers, and how many folders are being
/// copied (each may still open one).
#[derive(Default)]
pub(crate) struct Board {
    jobs: Mutex<Vec<Arc<Split>>>,
    busy: AtomicUsize,
    changed: Notify,
}

impl Board {
    fn publish(&self, job: Arc<Split>) {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).push(job);
        self.changed.notify_waiters();
    }

    /// A worker starts copying a folder.
    pub(crate) fn started(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
    }

    /// A worker is done with a folder.
    pub(crate) fn finished(&self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// For a worker with nothing left to start: the next split to help
    /// with, waiting while folders are still being copied (any of them may
    /// open one); `None` once none is.
    pub(crate) async fn next(&self) -> Option<Arc<Split>> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(job) = self.open() {
                return Some(job);
            }
            if self.busy.load(Ordering::SeqCst) == 0 {
                return None;
            }
            changed.await;
        }
    }

    fn retire(&self, job: &Arc<Split>) {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).retain(|j| !Arc::ptr_eq(j, job));
    }

    /// A split with batches left to claim now.
    pub(crate) fn open(&self) -> Option<Arc<Split>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|j| j.unclaimed()).cloned()
    }
}

/// The gate's value once a split is aborted: every waiter goes on (and
/// finds it aborted).
const ABORTED: usize = usize::MAX;

/// One folder's first copy, shared.
pub(crate) struct Split {
    plan: FolderPlan,
    /// The source folder's UIDVALIDITY, checked by each helper's EXAMINE.
    uid_validity: u32,
    /// The batches, in source order.
    batches: Vec<UidSet>,
    /// The next batch to claim.
    next: AtomicUsize,
    /// How many batches are resolved, in order ([`ABORTED`] once aborted).
    gate: watch::Sender<usize>,
    out: Mutex<Shares>,
}

/// What the batches brought, for the owner to merge.
#[derive(Default)]
pub(crate) struct Shares {
    /// Mappings, already recorded in the state.
    pub(crate) mapped: Vec<SyncMessage>,
    /// Messages appended, to check against what the target stored.
    pub(crate) appended: Vec<Appended>,
    /// Messages that cannot be sent.
    pub(crate) skipped: Vec<Skipped>,
    /// Messages of refused batches, to append one by one.
    pub(crate) again: Vec<u32>,
    /// Messages and bytes copied.
    pub(crate) copied: (u64, u64),
    /// Batches refused.
    pub(crate) refused: u64,
    /// Other connections that copied batches.
    pub(crate) helpers: u64,
    /// The error that aborted the split.
    pub(crate) failed: Option<Error>,
}

/// A first copy to share: the run's board and the folder's batches.
pub(crate) struct Shared<'a> {
    /// Where helpers find it.
    pub(crate) board: &'a Board,
    /// The source folder's UIDVALIDITY.
    pub(crate) uid_validity: u32,
    /// The batches ([`cut`]).
    pub(crate) batches: Vec<UidSet>,
}

/// The first copy of `new` messages (into a folder of UIDVALIDITY
/// `uid_validity` on the source) to share on `board`, if it is worth it:
/// see the rules of the module doc.
pub(crate) fn plan<'b>(
    board: Option<&'b Board>,
    tgt: &Client,
    empty_target: bool,
    new: &[&MessageMeta],
    uid_validity: u32,
    options: &Options,
) -> Option<Shared<'b>> {
    let board = board?;
    if !empty_target || !multiappend(tgt, options) || !tgt.capabilities().literal_plus() {
        return None;
    }
    let batches = cut(new, options.batch_messages, options.batch_bytes);
    (batches.len() >= 2).then_some(Shared { board, uid_validity, batches })
}

/// Cuts `new` (in source order) into batches of at most `messages`
/// messages and `bytes` bytes (a message alone may be larger).
pub(crate) fn cut(new: &[&MessageMeta], messages: usize, bytes: u64) -> Vec<UidSet> {
    let mut batches = Vec::new();
    let (mut uids, mut size) = (Vec::new(), 0u64);
    for m in new {
        let s = m.size.unwrap_or(0);
        if !uids.is_empty() && (uids.len() >= messages || size + s > bytes) {
            batches.push(std::mem::take(&mut uids).into_iter().collect());
            size = 0;
        }
        uids.push(m.uid);
        size += s;
    }
    if !uids.is_empty() {
        batches.push(uids.into_iter().collect());
    }
    batches
}

impl Split {
    /// A split of `plan`'s first copy into `batches`.
    pub(crate) fn new(plan: FolderPlan, uid_validity: u32, batches: Vec<UidSet>) -> Split {
        Split {
            plan,
            uid_validity,
            batches,
            next: AtomicUsize::new(0),
            gate: watch::Sender::new(0),
            out: Mutex::new(Shares::default()),
        }
    }

    fn unclaimed(&self) -> bool {
        self.next.load(Ordering::Relaxed) < self.batches.len()
    }

    fn claim(&self) -> Option<usize> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        (k < self.batches.len()).then_some(k)
    }

    /// Copies batches until none is left to claim; `false` when the split
    /// was aborted (the caller's connections may be unusable), and how many
    /// batches this caller copied.
    async fn claim_all<S: SyncState>(&self, hands: &mut Sessions<'_, S>) -> (bool, usize) {
        let mut copied = 0;
        if let Err(e) = self.copy_batches(hands, &mut copied).await {
            self.abort(e);
            return (false, copied);
        }
        (*self.gate.borrow() != ABORTED, copied)
    }

    /// The owner's part: publishes the split on `board`, copies batches
    /// with its own sessions, waits for the helpers' batches, and returns
    /// what they all brought (or the error that aborted the split).
    pub(crate) async fn run<S: SyncState>(self: &Arc<Split>, board: &Board, hands: &mut Sessions<'_, S>) -> Shares {
        board.publish(self.clone());
        let _ = self.claim_all(hands).await;
        board.retire(self);
        // Batches claimed by helpers: resolved, or the split aborted.
        let n = self.batches.len();
        let _ = self.gate.subscribe().wait_for(|g| *g >= n).await;
        std::mem::take(&mut *self.lock())
    }

    /// A helper's part: EXAMINE the folder on its own source session, then
    /// claim batches; `false` when its connections are unusable after.
    pub(crate) async fn help<S: SyncState>(&self, hands: &mut Sessions<'_, S>) -> bool {
        match hands.src.examine(&self.plan.source).await {
            Ok(sel) if sel.uid_validity == self.uid_validity => {
                let (usable, copied) = self.claim_all(hands).await;
                if copied > 0 {
                    self.lock().helpers += 1;
                }
                usable
            }
            // The folder was recreated meanwhile: the owner finds out.
            Ok(_) => true,
            Err(e) => !e.is_connection_lost(),
        }
    }

    fn abort(&self, e: Error) {
        tracing::debug!(folder = %self.plan.source_name, "shared copy aborted: {e}");
        self.next.store(self.batches.len(), Ordering::Relaxed);
        self.lock().failed.get_or_insert(e);
        self.gate.send_replace(ABORTED);
    }

    /// Copies the batches this worker claims, one MULTIAPPEND each, on one
    /// pipeline: a batch's command is ended when the batch before it was
    /// ended on this same connection (the server takes them in order) or,
    /// else, once every earlier batch is resolved. Each result is recorded
    /// and opens the gate for the next batch.
    async fn copy_batches<S: SyncState>(&self, hands: &mut Sessions<'_, S>, copied: &mut usize) -> Result<(), Error> {
        let Sessions { src, tgt, state, pair, options } = hands;
        let progress = options.progress.as_ref();
        let mut flight = InFlight::new(options.verify, tgt.capabilities().digest_sha1());
        let mut pipe = tgt.multiappend_pipeline(&self.plan.target).map_err(on(Side::Target))?;
        // Batches ended on this connection and not resolved, oldest first.
        let mut ended: VecDeque<usize> = VecDeque::new();
        let mut last: Option<usize> = None;
        while let Some(k) = self.claim() {
            *copied += 1;
            if !ended.is_empty() && last.is_some_and(|l| l + 1 != k) {
                // The batches between this connection's last one and this
                // one are others', waiting for it to resolve: its result
                // first, not after this batch's upload.
                while let Some(d) = pipe.next_done().await.map_err(on(Side::Target))? {
                    self.resolve(ended.pop_front(), d, &mut flight, *state, pair, progress).await?;
                }
            }
            let mut skipped = Vec::new();
            let mut stream = src.fetch_bodies(&self.batches[k]).await.map_err(on(Side::Source))?;
            while let Some(m) = stream.next().await.map_err(on(Side::Source))? {
                if let Some(s) = unsendable(&m) {
                    skipped.push(s);
                    continue;
                }
                let size = flight.send(&mut pipe, &m).await?;
                drop(m);
                if let Some(r) = &options.rate {
                    r.take(size).await;
                }
            }
            drop(stream);
            self.lock().skipped.append(&mut skipped);
            let empty = pipe.open_len() == 0;
            if empty || last.is_none_or(|l| l + 1 != k) {
                // Not right after this connection's last batch: every batch
                // before it resolved first (this connection's own included).
                while let Some(d) = pipe.next_done().await.map_err(on(Side::Target))? {
                    self.resolve(ended.pop_front(), d, &mut flight, *state, pair, progress).await?;
                }
                let turn = self.gate.subscribe().wait_for(|g| *g >= k).await.map(|g| *g);
                if !matches!(turn, Ok(g) if g != ABORTED) {
                    // Never ended: the command dies with its connection.
                    return Err(Error::Imap { side: Side::Target, source: bma_imap::Error::ConnectionClosed });
                }
            }
            if empty {
                // Every message of it skipped: nothing to commit.
                self.gate.send_replace(k + 1);
                continue;
            }
            pipe.end_batch().await.map_err(on(Side::Target))?;
            ended.push_back(k);
            last = Some(k);
            while let Some(d) = pipe.try_done() {
                self.resolve(ended.pop_front(), d, &mut flight, *state, pair, progress).await?;
            }
        }
        for d in pipe.finish().await.map_err(on(Side::Target))? {
            self.resolve(ended.pop_front(), d, &mut flight, *state, pair, progress).await?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shares> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the result of batch `k`: its mappings recorded and shared, a
    /// refused batch's messages given back to the owner; then the gate
    /// opens for the batch after it.
    async fn resolve<S: SyncState>(
        &self,
        k: Option<usize>,
        d: bma_imap::BatchDone,
        flight: &mut InFlight,
        state: &S,
        pair: &str,
        progress: Option<&Arc<dyn Progress>>,
    ) -> Result<(), Error> {
        let k = k.ok_or_else(|| Error::Imap {
            side: Side::Target,
            source: bma_imap::Error::Protocol("a MULTIAPPEND answered that was never ended".into()),
        })?;
        let mut mapped = Vec::new();
        let mut report = FolderReport::default();
        let refused = u64::from(d.result.is_err());
        flight.batch_done(d, &mut mapped, &mut report, progress);
        state.record(pair, &self.plan.source_name, &mapped).await?;
        {
            let mut out = self.lock();
            out.mapped.append(&mut mapped);
            out.appended.append(&mut flight.appended);
            out.skipped.append(&mut report.skipped);
            out.again.append(&mut flight.again);
            out.copied.0 += report.copied;
            out.copied.1 += report.copied_bytes;
            out.refused += refused;
        }
        self.gate.send_replace(k + 1);
        Ok(())
    }
}

impl<S: SyncState> FolderSync<'_, S> {
    /// The owner's side of a shared first copy: runs the split with this
    /// folder's sessions, then merges what every batch brought into `ctx`
    /// and the report; returns the messages of refused batches.
    pub(crate) async fn copy_split(&mut self, shared: Shared<'_>, ctx: &mut CopyCtx<'_>) -> Result<Vec<u32>, Error> {
        let job = Arc::new(Split::new(self.plan.clone(), shared.uid_validity, shared.batches));
        let shares = job.run(shared.board, &mut self.io).await;
        if let Some(e) = shares.failed {
            return Err(e);
        }
        for m in shares.mapped {
            ctx.map.insert(m.source_uid, m);
        }
        ctx.appended.extend(shares.appended);
        self.report.copied += shares.copied.0;
        self.report.copied_bytes += shares.copied.1;
        self.report.skipped.extend(shares.skipped);
        self.report.batches_retried += shares.refused;
        self.report.helpers += shares.helpers;
        Ok(shares.again)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn meta(uid: u32, size: u64) -> MessageMeta {
        MessageMeta { seq: uid, uid, flags: vec![], internal_date: None, size: Some(size), modseq: None }
    }

    /// The batch of each UID.
    fn batch_of(batches: &[UidSet]) -> HashMap<u32, usize> {
        let mut m = HashMap::new();
        for (k, b) in batches.iter().enumerate() {
            for u in 1..=100u32 {
                if b.contains(u) {
                    assert!(m.insert(u, k).is_none(), "UID {u} in two batches");
                }
            }
        }
        m
    }

    #[test]
    fn batches_keep_source_order_within_both_limits() {
        // (sizes, messages per batch, bytes per batch) -> batch of each UID (1-based UIDs).
        let cases: &[(&[u64], usize, u64, &[usize])] = &[
            (&[10, 10, 10, 10, 10], 2, 1000, &[0, 0, 1, 1, 2]),
            (&[10, 10, 10, 10, 10], 100, 25, &[0, 0, 1, 1, 2]),
            // A message larger than the byte limit travels alone.
            (&[5, 50, 5], 100, 20, &[0, 1, 2]),
            (&[1], 100, 10, &[0]),
            (&[], 100, 10, &[]),
        ];
        for (sizes, messages, bytes, want) in cases {
            let metas: Vec<MessageMeta> = sizes.iter().enumerate().map(|(i, s)| meta(i as u32 + 1, *s)).collect();
            let refs: Vec<&MessageMeta> = metas.iter().collect();
            let batches = cut(&refs, *messages, *bytes);
            let of = batch_of(&batches);
            let got: Vec<usize> = (1..=sizes.len() as u32).map(|u| of[&u]).collect();
            assert_eq!(&got, want, "{sizes:?} {messages} {bytes}");
        }
    }
}
