//! One folder pair, copied by a [`FolderSync`]: the steps 1 to 7 of the
//! crate doc in order (open both sides, the map, the source's changes,
//! reconciliation, copy, flags, deletions, verification). The steps that
//! have their own module: [`crate::reconcile`], [`crate::append`],
//! [`crate::verify`].
//!
//! Rules: the source is only EXAMINEd; the state is written before the
//! target is changed by anything it must remember (the folder row before
//! the first APPEND, each APPENDUID in batches of
//! [`Options::commit_every`]).

use std::collections::{BTreeMap, HashSet};

use bma_imap::{Client, Flag, MessageMeta, SelectInfo, StoreMode, UidSet};

use crate::append::CopyCtx;
use crate::error::{Error, Side, on};
use crate::mapping::FolderPlan;
use crate::options::Options;
use crate::reconcile::{self, Orphans, size_date, target_metas};
use crate::report::FolderReport;
use crate::split::{self, Board};
use crate::state::{SyncFolder, SyncMessage, SyncState};
use crate::verify::{Appended, Known, Opened, altered_of};

/// What every copy works with: the two sessions, the state and the run's
/// options (a folder's copy, and a batch of a shared first copy,
/// [`crate::split`]).
pub(crate) struct Sessions<'a, S> {
    /// The source's session (only EXAMINEd).
    pub(crate) src: &'a mut Client,
    /// The target's session.
    pub(crate) tgt: &'a mut Client,
    /// The sync state.
    pub(crate) state: &'a S,
    /// The two mailboxes, as the state names them.
    pub(crate) pair: &'a str,
    /// How the run goes (its rate limiter, progress bar, batches).
    pub(crate) options: &'a Options,
}

/// The copy of one folder pair: the sessions, the folder's plan and its
/// report.
pub(crate) struct FolderSync<'a, S> {
    /// The sessions, the state, the options.
    pub(crate) io: Sessions<'a, S>,
    /// The folder pair.
    pub(crate) plan: &'a FolderPlan,
    /// The folder's size is already in the progress bar's total.
    pub(crate) counted: bool,
    /// What happened, kept across attempts.
    pub(crate) report: &'a mut FolderReport,
    /// Where a large first copy is shared with the run's idle workers
    /// (`None` with one worker).
    pub(crate) board: Option<&'a Board>,
}

/// Flags as carried: settable ones, sorted, space-separated.
pub(crate) fn canonical(flags: &[Flag]) -> String {
    let mut v: Vec<&str> = flags.iter().filter(|f| f.settable()).map(Flag::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v.join(" ")
}

/// The target folder as the verification finds it.
fn opened(exists: bool, selected: bool) -> Opened {
    match (exists, selected) {
        (false, _) => Opened::Absent,
        (true, false) => Opened::Closed,
        (true, true) => Opened::Selected,
    }
}

fn flags_of(canon: &str) -> Vec<Flag> {
    canon.split_whitespace().map(Flag::parse).collect()
}

impl<S: SyncState> FolderSync<'_, S> {
    /// Copies the folder (see the crate doc).
    pub(crate) async fn run(mut self) -> Result<(), Error> {
        let (state, pair, plan, options) = (self.io.state, self.io.pair, self.plan, self.io.options);
        if !plan.selectable {
            return Ok(());
        }
        let sname = plan.source_name.as_str();
        let prev = state.folder(pair, sname).await?;
        // EXAMINE the source and open the target at once. A first copy into an
        // empty target folder needs no SELECT (APPEND names its folder, STATUS
        // tells its UIDVALIDITY), so the target's session does not follow every
        // message appended; it is selected later only if a STORE needs it.
        let (sel, tsel) = {
            let (src, tgt) = (&mut *self.io.src, &mut *self.io.tgt);
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
            tokio::try_join!(async { src.examine(&plan.source).await.map_err(on(Side::Source)) }, target)?
        };
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
            f.source_uidvalidity == sel.uid_validity
                && (f.target_uidvalidity == t_validity || f.target_uidvalidity == 0)
        });
        if let Some(f) = prev.as_ref().filter(|_| same)
            && f.uid_next.is_some()
            && f.uid_next == sel.uid_next
            && f.highest_modseq.is_some()
            && f.highest_modseq == sel.highest_modseq
            && tsel.as_ref().is_some_and(|t| t.exists >= sel.exists)
        {
            self.report.unchanged = true;
            self.report.mapped = u64::from(sel.exists);
            self.report.altered = state.altered(pair, sname).await?.iter().filter_map(altered_of).collect();
            return self.verify(opened(tsel.is_some(), selected), Known::default()).await.map(|_| ());
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
            let present: HashSet<u32> = target_metas(self.io.tgt).await?.iter().map(|m| m.uid).collect();
            let gone: Vec<u32> =
                map.values().filter(|m| !present.contains(&m.target_uid)).map(|m| m.source_uid).collect();
            if !gone.is_empty() {
                tracing::warn!(folder = %plan.target_name, n = gone.len(), "messages copied earlier are gone from the target: copying them again");
                state.forget(pair, sname, &gone).await?;
                for u in &gone {
                    map.remove(u);
                }
                self.report.lost_on_target = gone.len() as u64;
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
            .filter(|m| self.io.src.capabilities().condstore() && sel.highest_modseq.is_some_and(|h| h >= *m));
        let qresync = options.delete && prev_modseq.is_some() && self.io.src.qresync_enabled();
        let since = prev_modseq.filter(|_| !options.delete || qresync);
        self.report.changedsince = since.is_some();
        self.report.qresync = qresync;
        let mut metas: Vec<MessageMeta> = Vec::new();
        let mut vanished: Option<UidSet> = None;
        if let (true, Some(m)) = (qresync, since) {
            // Even in an empty folder: the server lists what vanished.
            let ch = self.io.src.fetch_changes(&UidSet::all(), m).await.map_err(on(Side::Source))?;
            metas = ch.changed;
            vanished = Some(ch.vanished);
        } else if sel.exists > 0 {
            let mut s = self.io.src.fetch_meta(&UidSet::all(), since).await.map_err(on(Side::Source))?;
            while let Some(m) = s.next().await.map_err(on(Side::Source))? {
                metas.push(m);
            }
        }
        let new: Vec<&MessageMeta> = metas.iter().filter(|m| !map.contains_key(&m.uid)).collect();
        self.report.planned = new.len() as u64;
        // The target folder is open unless this is a dry run.
        let mut tsel = match tsel {
            Some(t) if !options.dry_run => t,
            dry => {
                self.report.mapped = map.len() as u64;
                self.report_altered(&map);
                return self.verify(opened(dry.is_some(), selected), Known::default()).await.map(|_| ());
            }
        };
        if prev.as_ref().is_some_and(|f| f.uid_next.is_none()) && !new.is_empty() {
            // The last run of this folder did not finish (killed, or messages
            // refused): an APPEND it had sent may still be committing in its
            // server session. Wait until the folder stops growing (≤ 10 s), so
            // that those messages are found below instead of appended again.
            reconcile::settle(self.io.tgt, &mut tsel.exists).await?;
        }

        // Known contents, so that the counts need no STATUS SIZE: the
        // source's full list; a target folder empty before this copy.
        let target_was_empty = tsel.exists == 0;
        let mut known = Known {
            source: (since.is_none() && vanished.is_none() && metas.iter().all(|m| m.size.is_some()))
                .then(|| (metas.len() as u64, metas.iter().filter_map(|m| m.size).sum())),
            target: None,
        };

        // Reconciliation candidates: target messages that no state maps (a
        // killed run's APPENDs, including those the server completed after a
        // later run had looked, or mail there before any state) and that could
        // be one of the new messages (same size and INTERNALDATE): keyed by
        // (size, INTERNALDATE, SHA-256) of their bytes.
        let mut orphans = Orphans::default();
        if !new.is_empty() && tsel.exists > 0 {
            let dates: HashSet<i64> = new.iter().map(|m| size_date(m).1).collect();
            orphans = reconcile::orphans(self.io.tgt, &map, &dates).await?;
        }

        // Copy.
        let total_bytes: u64 = new.iter().filter_map(|m| m.size).sum();
        if let Some(p) = options.progress.as_ref().filter(|_| !self.counted) {
            p.add_total(new.len() as u64, total_bytes);
        }
        let mut batch: Vec<SyncMessage> = Vec::new();
        let mut appended: Vec<Appended> = Vec::new();
        let copy_result = if new.is_empty() {
            Ok(())
        } else {
            let set: UidSet = new.iter().map(|m| m.uid).collect();
            let empty = target_was_empty && orphans.is_empty();
            let shared = split::plan(self.board, self.io.tgt, empty, &new, sel.uid_validity, options);
            let mut ctx = CopyCtx { orphans: &mut orphans, batch: &mut batch, map: &mut map, appended: &mut appended };
            self.copy_all(set, shared, &mut ctx).await
        };
        let recorded = state.record(pair, sname, &batch).await;
        for m in batch.drain(..) {
            map.insert(m.source_uid, m);
        }
        copy_result?;
        recorded?;
        // What the target stored, message by message (needs the folder selected).
        if !appended.is_empty() {
            if !selected {
                tsel = self.io.tgt.select(&plan.target).await.map_err(on(Side::Target))?;
                selected = true;
                if folder.target_uidvalidity == 0 {
                    folder.target_uidvalidity = tsel.uid_validity;
                }
            } else {
                // Selected before the APPENDs: some servers (Courier) show
                // the new messages to this session only after a NOOP.
                self.io.tgt.noop().await.map_err(on(Side::Target))?;
            }
            let found = self.verify_appended(&appended, &mut map).await?;
            known.target = target_was_empty.then_some(found);
        } else if target_was_empty {
            known.target = Some((0, 0));
        }
        let interrupted = prev.as_ref().is_some_and(|f| f.uid_next.is_none());
        if interrupted && selected {
            // The killed run's last APPENDs may have been committed after
            // this run looked for them, and copied again since: wait until
            // the folder is quiet, then remove such second copies.
            let mut exists = self.io.tgt.exists().unwrap_or(0);
            reconcile::settle(self.io.tgt, &mut exists).await?;
            if exists as usize > map.len() {
                reconcile::remove_copies_of_mapped(self.io.tgt, &map, self.report).await?;
            }
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
            self.io.tgt.select(&plan.target).await.map_err(on(Side::Target))?;
            selected = true;
        }
        for (canon, uids) in by_flags {
            let targets: UidSet = uids.iter().filter_map(|u| map.get(u)).map(|m| m.target_uid).collect();
            self.io.tgt.uid_store(&targets, StoreMode::Replace, &flags_of(&canon)).await.map_err(on(Side::Target))?;
            let mut changed = Vec::new();
            for u in &uids {
                if let Some(m) = map.get_mut(u) {
                    m.flags.clone_from(&canon);
                    changed.push(m.clone());
                }
            }
            state.record(pair, sname, &changed).await?;
            self.report.flags_updated += changed.len() as u64;
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
                    self.io.tgt.select(&plan.target).await.map_err(on(Side::Target))?;
                }
                let targets: UidSet = gone.iter().filter_map(|u| map.get(u)).map(|m| m.target_uid).collect();
                self.io.tgt.uid_store(&targets, StoreMode::Add, &[Flag::Deleted]).await.map_err(on(Side::Target))?;
                self.io.tgt.uid_expunge(&targets).await.map_err(on(Side::Target))?;
                state.forget(pair, sname, &gone).await?;
                for u in &gone {
                    map.remove(u);
                }
                self.report.deleted = gone.len() as u64;
            }
        }

        let unmapped = metas.iter().filter(|m| !map.contains_key(&m.uid)).count() as u64;
        self.report.mapped = if since.is_some() {
            u64::from(sel.exists).saturating_sub(unmapped)
        } else {
            metas.len() as u64 - unmapped
        };
        folder.last_uid = map.keys().next_back().copied().unwrap_or(0);
        if self.report.skipped.is_empty() && unmapped == 0 {
            folder.uid_next = sel.uid_next;
            folder.highest_modseq = sel.highest_modseq;
        }
        self.report_altered(&map);
        let target = opened(true, selected);
        if folder.target_uidvalidity == 0 {
            let t = self.verify(target, known).await?;
            folder.target_uidvalidity = t.unwrap_or(0);
            state.save_folder(&folder).await?;
            return Ok(());
        }
        state.save_folder(&folder).await?;
        self.verify(target, known).await.map(|_| ())
    }
}
