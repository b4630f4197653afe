//! The copy (step 5 of the crate doc): new source messages streamed (one
//! UID FETCH, one message held at a time) into MULTIAPPEND commands when
//! the target has MULTIAPPEND and UIDPLUS, pipelined single APPENDs
//! otherwise, each APPENDUID recorded in the state in batches of
//! [`Options::commit_every`](crate::Options::commit_every). Each message's
//! [`Shape`] is read as it goes out (hashed when it is to be compared by
//! content, [`Verify`]), for the check of what the target stored
//! ([`crate::verify`]).
//!
//! Rules: a batch the target refuses is appended again message by message,
//! so only the refused message is skipped; refusals that may go away by
//! waiting (`[THROTTLED]`, `[UNAVAILABLE]`, `[OVERQUOTA]`) are tried again
//! after a pause, doubling, [`Options::pauses`](crate::Options::pauses)
//! times; bytes go through the shared rate limiter as they are sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bma_imap::{AppendMessage, Client, Flag, UidSet};

use crate::error::{Error, Side, on};
use crate::folder::{FolderSync, canonical};
use crate::options::{Options, Progress, Verify};
use crate::reconcile::Orphans;
use crate::report::{FolderReport, Skipped};
use crate::shape::{self, Alteration, Shape};
use crate::split::Shared;
use crate::state::{SyncMessage, SyncState};
use crate::verify::Appended;

/// What the copy reads and fills: the target messages waiting to be
/// matched, the mappings not yet recorded, the folder's map, and the
/// messages appended (to be checked against what the target stored).
pub(crate) struct CopyCtx<'a> {
    /// Unmapped target messages (see [`crate::reconcile`]).
    pub(crate) orphans: &'a mut Orphans,
    /// Mappings to record.
    pub(crate) batch: &'a mut Vec<SyncMessage>,
    /// Mappings recorded.
    pub(crate) map: &'a mut BTreeMap<u32, SyncMessage>,
    /// Messages appended by this run, with their shapes.
    pub(crate) appended: &'a mut Vec<Appended>,
}

impl CopyCtx<'_> {
    /// Records the batch once it holds `every` mappings.
    async fn flush<S: SyncState>(&mut self, state: &S, pair: &str, folder: &str, every: usize) -> Result<(), Error> {
        if self.batch.len() >= every {
            state.record(pair, folder, self.batch).await?;
            for r in self.batch.drain(..) {
                self.map.insert(r.source_uid, r);
            }
        }
        Ok(())
    }
}

/// The messages sent and not answered yet (flags as carried, shape and
/// SHA-1, by source UID), those to send again, and those appended.
pub(crate) struct InFlight {
    verify: Verify,
    /// The target offers `DIGEST=SHA1`: messages to compare by content also
    /// get their SHA-1, to compare without reading them back.
    digest: bool,
    sent: HashMap<u64, Sent>,
    pub(crate) again: Vec<u32>,
    pub(crate) appended: Vec<Appended>,
}

/// A message sent: its flags as carried, its shape, its SHA-1 when to be
/// compared with the target's digest.
type Sent = (String, Shape, Option<[u8; 20]>);

impl InFlight {
    pub(crate) fn new(verify: Verify, digest: bool) -> InFlight {
        InFlight { verify, digest, sent: HashMap::new(), again: Vec::new(), appended: Vec::new() }
    }
}

impl<S: SyncState> FolderSync<'_, S> {
    /// Copies `set`: MULTIAPPEND when the target has it (a refused batch is
    /// then appended message by message, so that only the refused messages are
    /// skipped), pipelined APPENDs otherwise; messages refused with
    /// `[THROTTLED]`, `[UNAVAILABLE]` or `[OVERQUOTA]` are tried again after a
    /// pause, [`Options::pauses`](crate::Options::pauses) times at most, then reported.
    /// With `split`, the MULTIAPPEND batches are shared with the run's idle
    /// workers ([`crate::split`]).
    pub(crate) async fn copy_all(
        &mut self,
        set: UidSet,
        split: Option<Shared<'_>>,
        ctx: &mut CopyCtx<'_>,
    ) -> Result<(), Error> {
        let options = self.io.options;
        let mut retry = if multiappend(self.io.tgt, options) {
            let refused = match split {
                Some(shared) => self.copy_split(shared, ctx).await?,
                None => self.copy_multi(set, ctx).await?,
            };
            if refused.is_empty() {
                return Ok(());
            }
            let again: UidSet = refused.iter().copied().collect();
            self.copy(again, ctx, options.pauses > 0).await?
        } else {
            self.copy(set, ctx, options.pauses > 0).await?
        };
        let mut pause = options.pause;
        let mut n = 0;
        while !retry.is_empty() {
            n += 1;
            self.report.pauses += 1;
            tracing::warn!(folder = %self.plan.target_name, messages = retry.len(), ?pause, "target asked to wait; pausing");
            tokio::time::sleep(pause).await;
            pause *= 2;
            let again: UidSet = retry.iter().copied().collect();
            retry = self.copy(again, ctx, n < options.pauses).await?;
        }
        Ok(())
    }

    /// Streams `set` from the source into MULTIAPPEND commands of at most
    /// [`Options::batch_messages`](crate::Options::batch_messages) messages and
    /// [`Options::batch_bytes`](crate::Options::batch_bytes) bytes; returns the
    /// UIDs of the batches the target refused.
    async fn copy_multi(&mut self, set: UidSet, ctx: &mut CopyCtx<'_>) -> Result<Vec<u32>, Error> {
        let options = self.io.options;
        let progress = options.progress.as_ref();
        let mut stream = self.io.src.fetch_bodies(&set).await.map_err(on(Side::Source))?;
        let digest = self.io.tgt.capabilities().digest_sha1();
        let mut pipe = self.io.tgt.multiappend_pipeline(&self.plan.target).map_err(on(Side::Target))?;
        let mut flight = InFlight::new(options.verify, digest);
        let mut bytes = 0u64;
        while let Some(m) = stream.next().await.map_err(on(Side::Source))? {
            if !prepare(&m, ctx, self.report, progress) {
                continue;
            }
            let size = flight.send(&mut pipe, &m).await?;
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
                flight.batch_done(d, ctx.batch, self.report, progress);
            }
            ctx.flush(self.io.state, self.io.pair, &self.plan.source_name, options.commit_every).await?;
        }
        drop(stream);
        for d in pipe.finish().await.map_err(on(Side::Target))? {
            flight.batch_done(d, ctx.batch, self.report, progress);
        }
        if !flight.again.is_empty() {
            self.report.batches_retried += 1;
        }
        ctx.appended.append(&mut flight.appended);
        Ok(flight.again)
    }

    /// Pipelined single APPENDs of `set`; returns the UIDs refused for now
    /// (`[THROTTLED]`, `[UNAVAILABLE]`, `[OVERQUOTA]`) when `defer` (else those
    /// are skipped with their reason, like every other refusal).
    async fn copy(&mut self, set: UidSet, ctx: &mut CopyCtx<'_>, defer: bool) -> Result<Vec<u32>, Error> {
        let options = self.io.options;
        let progress = options.progress.as_ref();
        let mut stream = self.io.src.fetch_bodies(&set).await.map_err(on(Side::Source))?;
        let digest = self.io.tgt.capabilities().digest_sha1();
        let mut pipe = self.io.tgt.append_pipeline(&self.plan.target);
        let mut flight = InFlight::new(options.verify, digest);
        let (mut pushed, mut taken) = (0usize, 0usize);
        while let Some(m) = stream.next().await.map_err(on(Side::Source))? {
            if !prepare(&m, ctx, self.report, progress) {
                continue;
            }
            let size = flight.send(&mut pipe, &m).await?;
            pushed += 1;
            drop(m);
            if let Some(r) = &options.rate {
                r.take(size).await;
            }
            while pushed - taken > pipe.in_flight() {
                let Some(d) = pipe.next_done().await.map_err(on(Side::Target))? else { break };
                taken += 1;
                flight.append_done(d, defer, ctx.batch, self.report, progress);
            }
            ctx.flush(self.io.state, self.io.pair, &self.plan.source_name, options.commit_every).await?;
        }
        drop(stream);
        for d in pipe.finish().await.map_err(on(Side::Target))? {
            flight.append_done(d, defer, ctx.batch, self.report, progress);
        }
        ctx.appended.append(&mut flight.appended);
        Ok(flight.again)
    }
}

/// Whether a fetched source message is to be appended: not when it is
/// already on the target (reconciled: mapped to that copy, reported as
/// altered if the target rewrote it) or cannot be sent (skipped with the
/// reason).
fn prepare(
    m: &bma_imap::FetchedMessage,
    ctx: &mut CopyCtx<'_>,
    report: &mut FolderReport,
    progress: Option<&Arc<dyn Progress>>,
) -> bool {
    let size = m.body.len() as u64;
    // Hashing every byte costs CPU: only when target messages are waiting
    // to be matched.
    let matched = if ctx.orphans.is_empty() { None } else { ctx.orphans.take(&m.body, m.internal_date.as_ref()) };
    if let Some((o, source)) = matched {
        // Reported with the map's other alterations at the end of the folder.
        let altered = Some(shape::changes(&source, &o.shape))
            .filter(|c| !c.is_empty())
            .map(|changes| Alteration { target_size: o.shape.size, changes });
        ctx.batch.push(SyncMessage { source_uid: m.uid, target_uid: o.uid, flags: o.flags, size, altered });
        report.reconciled += 1;
        if let Some(p) = progress {
            p.advance(1, size);
        }
        return false;
    }
    if let Some(s) = unsendable(m) {
        report.skipped.push(s);
        return false;
    }
    true
}

/// Whether copies to this target go in MULTIAPPEND batches: the target has
/// MULTIAPPEND and UIDPLUS (a UID for every message of a batch), and
/// batches are not turned off.
pub(crate) fn multiappend(tgt: &Client, options: &Options) -> bool {
    let caps = tgt.capabilities();
    options.batch_messages > 1 && caps.multiappend() && caps.uidplus()
}

/// Why a message cannot be appended, if it cannot.
pub(crate) fn unsendable(m: &bma_imap::FetchedMessage) -> Option<Skipped> {
    m.body.contains(&0).then(|| Skipped {
        uid: m.uid,
        reason: "the message contains a NUL byte, which IMAP APPEND cannot carry".into(),
    })
}

/// A message appended: its mapping to record and its shape to check,
/// counted in the report and the progress bar.
fn copied(
    message: SyncMessage,
    (shape, sha1): (Shape, Option<[u8; 20]>),
    flight: &mut InFlight,
    batch: &mut Vec<SyncMessage>,
    report: &mut FolderReport,
    progress: Option<&Arc<dyn Progress>>,
) {
    let size = message.size;
    flight.appended.push(Appended { source_uid: message.source_uid, target_uid: message.target_uid, shape, sha1 });
    batch.push(message);
    report.copied += 1;
    report.copied_bytes += size;
    if let Some(p) = progress {
        p.advance(1, size);
    }
}

/// Whether a refusal may go away by waiting.
fn wait_and_retry(e: &bma_imap::Error) -> bool {
    matches!(
        e,
        bma_imap::Error::Throttled { .. } | bma_imap::Error::Unavailable { .. } | bma_imap::Error::OverQuota { .. }
    )
}

/// An APPEND pipeline of the target: single APPENDs or MULTIAPPEND batches.
pub(crate) trait Pipe {
    /// Sends one message; `id` comes back with its result.
    async fn push(&mut self, id: u64, message: AppendMessage<'_>) -> bma_imap::Result<()>;
}

impl Pipe for bma_imap::AppendPipeline<'_> {
    async fn push(&mut self, id: u64, message: AppendMessage<'_>) -> bma_imap::Result<()> {
        bma_imap::AppendPipeline::push(self, id, message).await
    }
}

impl Pipe for bma_imap::MultiAppendPipeline<'_> {
    async fn push(&mut self, id: u64, message: AppendMessage<'_>) -> bma_imap::Result<()> {
        bma_imap::MultiAppendPipeline::push(self, id, message).await
    }
}

impl InFlight {
    /// Sends a fetched source message into `pipe` with its flags and
    /// INTERNALDATE (the body from the fetched buffer, not copied) and
    /// remembers it until its answer; returns its size.
    pub(crate) async fn send(&mut self, pipe: &mut impl Pipe, m: &bma_imap::FetchedMessage) -> Result<u64, Error> {
        let flags: Vec<Flag> = m.flags.clone().unwrap_or_default();
        let size = m.body.len() as u64;
        let append = AppendMessage { body: &m.body, flags: &flags, internal_date: m.internal_date };
        pipe.push(u64::from(m.uid), append).await.map_err(on(Side::Target))?;
        // Read while the server takes the message.
        let mut shape = Shape::of(&m.body, false);
        let mut sha1 = None;
        if self.verify == Verify::Full || shape.risky() {
            shape.hash(&m.body);
            if self.digest {
                sha1 = Some(shape::sha1(&m.body));
            }
        }
        self.sent.insert(u64::from(m.uid), (canonical(&flags), shape, sha1));
        Ok(size)
    }

    /// Takes the result of one MULTIAPPEND: every message mapped, or the
    /// batch to append again one by one.
    pub(crate) fn batch_done(
        &mut self,
        d: bma_imap::BatchDone,
        batch: &mut Vec<SyncMessage>,
        report: &mut FolderReport,
        progress: Option<&Arc<dyn Progress>>,
    ) {
        match d.result {
            Ok(uids) if uids.len() == d.ids.len() => {
                for (id, au) in d.ids.iter().zip(uids) {
                    let (flags, shape, sha1) = self.sent.remove(id).unwrap_or_default();
                    let size = shape.size;
                    let m = SyncMessage { source_uid: *id as u32, target_uid: au.uid, flags, size, altered: None };
                    copied(m, (shape, sha1), self, batch, report, progress);
                }
            }
            Ok(uids) => {
                for id in &d.ids {
                    self.sent.remove(id);
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
                    self.sent.remove(id);
                    self.again.push(*id as u32);
                }
            }
        }
    }

    /// Takes the result of one APPEND: mapped, deferred (when `defer`), or
    /// skipped with the target's reason.
    fn append_done(
        &mut self,
        d: bma_imap::AppendDone,
        defer: bool,
        batch: &mut Vec<SyncMessage>,
        report: &mut FolderReport,
        progress: Option<&Arc<dyn Progress>>,
    ) {
        let (flags, shape, sha1) = self.sent.remove(&d.id).unwrap_or_default();
        let uid = d.id as u32;
        match d.result {
            Ok(Some(au)) => {
                let m = SyncMessage { source_uid: uid, target_uid: au.uid, flags, size: shape.size, altered: None };
                copied(m, (shape, sha1), self, batch, report, progress);
            }
            Ok(None) => {
                report
                    .skipped
                    .push(Skipped { uid, reason: "appended, but the target gave no UID (no UIDPLUS)".into() });
            }
            Err(e) if defer && wait_and_retry(&e) => self.again.push(uid),
            Err(e) => report.skipped.push(Skipped { uid, reason: e.to_string() }),
        }
    }
}
