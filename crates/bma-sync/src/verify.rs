//! Verification (step 7 of the crate doc), in two parts:
//!
//! - **What the target stored**, message by message, after APPEND: the
//!   RFC822.SIZE of every appended message (one UID FETCH), and the content
//!   of those to compare by content (the risky ones, or all with
//!   [`Verify::Full`](crate::Verify::Full)): by the target's `DIGEST.SHA1`
//!   in that same FETCH where it offers `DIGEST=SHA1` (Cyrus), else by
//!   reading the bytes back (SHA-256); a digest that differs, and only
//!   then, has the bytes read back to say what changed. A message that differs is **altered by the target**: reported
//!   ([`Altered`]: sizes, what changed) and recorded in the state, so that a
//!   rerun neither appends it again nor forgets it. A message the target
//!   does not show after its APPENDUID is forgotten (copied again next run)
//!   and reported as refused.
//! - **The counts** of the folder on both sides: MESSAGES, and SIZE where
//!   the server has STATUS=SIZE (else the bytes are unverified, `None`,
//!   never 0). A folder selected in the session is counted from the session
//!   (NOOP, then its EXISTS), not by STATUS: a STATUS of the selected
//!   mailbox may answer a stale count (Courier did, after APPENDs in the
//!   same session).
//!
//! `DIGEST=SHA1` is Cyrus' (the `DIGEST=` drafts were never published as
//! RFCs); Dovecot and Courier have no digest FETCH item.

use std::collections::HashMap;

use bma_imap::{Client, MailboxName, UidSet};

use crate::error::{Error, Side, on};
use crate::folder::FolderSync;
use crate::report::{Altered, Skipped};
use crate::shape::{self, Alteration, Shape};
use crate::state::{SyncMessage, SyncState};

/// A message appended by this run, to check against what the target stored.
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    /// Source UID.
    pub(crate) source_uid: u32,
    /// Target UID (APPENDUID).
    pub(crate) target_uid: u32,
    /// The source bytes' shape; hashed when to be compared by content.
    pub(crate) shape: Shape,
    /// The source bytes' SHA-1, when to be compared with the target's
    /// `DIGEST.SHA1`.
    pub(crate) sha1: Option<[u8; 20]>,
}

/// One side's counts: messages, bytes (if told), UIDVALIDITY (if read by STATUS).
struct Counts {
    messages: u64,
    bytes: Option<u64>,
    uid_validity: Option<u32>,
}

/// What this run already knows of a folder's content: (messages, bytes),
/// from the sizes it read of every message (the source's full list; the
/// target folder it created and filled). A selected folder whose count
/// still matches is not asked its SIZE again.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Known {
    pub(crate) source: Option<(u64, u64)>,
    pub(crate) target: Option<(u64, u64)>,
}

/// Counts `name` on `c`; `selected`: it is the session's selected mailbox;
/// `known`: (messages, bytes) already known, trusted if the count matches.
async fn counts(
    c: &mut Client,
    name: &MailboxName,
    selected: bool,
    known: Option<(u64, u64)>,
) -> bma_imap::Result<Counts> {
    if !selected {
        let st = c.status(name).await?;
        return Ok(Counts {
            messages: u64::from(st.messages.unwrap_or(0)),
            bytes: st.size,
            uid_validity: st.uid_validity,
        });
    }
    c.noop().await?;
    let messages = u64::from(c.exists().unwrap_or(0));
    let bytes = match known {
        Some((n, bytes)) if n == messages => Some(bytes),
        _ if c.capabilities().has("STATUS=SIZE") => c.status(name).await?.size,
        _ => None,
    };
    Ok(Counts { messages, bytes, uid_validity: None })
}

impl<S: SyncState> FolderSync<'_, S> {
    /// Checks the appended messages against what the selected target
    /// folder holds (see the module doc); updates `map` and the state for
    /// those altered or missing. Returns (messages, bytes) found on the target.
    pub(crate) async fn verify_appended(
        &mut self,
        appended: &[Appended],
        map: &mut std::collections::BTreeMap<u32, SyncMessage>,
    ) -> Result<(u64, u64), Error> {
        if appended.is_empty() {
            return Ok((0, 0));
        }
        let set: UidSet = appended.iter().map(|a| a.target_uid).collect();
        let digest = appended.iter().any(|a| a.sha1.is_some()) && self.io.tgt.capabilities().digest_sha1();
        let checks: HashMap<u32, bma_imap::MessageCheck> = self
            .io
            .tgt
            .fetch_checks(&set, digest)
            .await
            .map_err(on(Side::Target))?
            .into_iter()
            .map(|c| (c.uid, c))
            .collect();
        let found = (checks.len() as u64, checks.values().map(|c| c.size).sum::<u64>());
        let mut missing = Vec::new();
        let mut suspects: HashMap<u32, &Appended> = HashMap::new();
        for a in appended {
            let Some(check) = checks.get(&a.target_uid) else {
                missing.push(a.source_uid);
                continue;
            };
            let same_digest = a.sha1.is_some() && check.sha1 == a.sha1;
            if same_digest && check.size == a.shape.size {
                self.report.verified_content += 1;
                self.report.verified_digest += 1;
            } else if check.size != a.shape.size || a.shape.sha256.is_some() {
                suspects.insert(a.target_uid, a);
            }
        }
        self.report.verified_size += (appended.len() - missing.len()) as u64;
        let mut altered = Vec::new();
        if !suspects.is_empty() {
            let set: UidSet = suspects.keys().copied().collect();
            let mut s = self.io.tgt.fetch_bodies(&set).await.map_err(on(Side::Target))?;
            while let Some(m) = s.next().await.map_err(on(Side::Target))? {
                let Some(a) = suspects.get(&m.uid) else { continue };
                if a.shape.sha256.is_some() {
                    self.report.verified_content += 1;
                }
                let target = Shape::of(&m.body, a.shape.sha256.is_some());
                let changes = shape::changes(&a.shape, &target);
                if !changes.is_empty() {
                    altered.push((a.source_uid, Alteration { target_size: target.size, changes }));
                }
            }
        }
        let mut changed = Vec::new();
        for (uid, alteration) in altered {
            if let Some(m) = map.get_mut(&uid) {
                tracing::warn!(folder = %self.plan.target_name, uid, "{alteration}");
                m.altered = Some(alteration);
                changed.push(m.clone());
            }
        }
        self.io.state.record(self.io.pair, &self.plan.source_name, &changed).await?;
        if !missing.is_empty() {
            tracing::warn!(folder = %self.plan.target_name, n = missing.len(), "appended, but not on the target");
            self.io.state.forget(self.io.pair, &self.plan.source_name, &missing).await?;
            for uid in missing {
                map.remove(&uid);
                self.report.copied = self.report.copied.saturating_sub(1);
                self.report.skipped.push(Skipped {
                    uid,
                    reason: "the target accepted the APPEND but does not show the message: copied again next run"
                        .into(),
                });
            }
        }
        Ok(found)
    }

    /// Reads both sides' counts into the report (the target's only if
    /// `target.exists`); returns the target folder's UIDVALIDITY when read.
    pub(crate) async fn verify(&mut self, target: Opened, known: Known) -> Result<Option<u32>, Error> {
        let (src, tgt, plan) = (&mut *self.io.src, &mut *self.io.tgt, self.plan);
        // Both sides at once.
        let target_counts = async {
            match target {
                Opened::Absent => Ok(None),
                Opened::Closed => counts(tgt, &plan.target, false, None).await.map(Some).map_err(on(Side::Target)),
                Opened::Selected => {
                    counts(tgt, &plan.target, true, known.target).await.map(Some).map_err(on(Side::Target))
                }
            }
        };
        let (s, t) = tokio::try_join!(
            async { counts(src, &plan.source, true, known.source).await.map_err(on(Side::Source)) },
            target_counts
        )?;
        self.report.source_messages = s.messages;
        self.report.source_bytes = s.bytes;
        Ok(t.and_then(|t| {
            self.report.target_messages = t.messages;
            self.report.target_bytes = t.bytes;
            t.uid_validity
        }))
    }

    /// Reports the messages of the map that the target altered (recorded by
    /// this run or an earlier one): the map is the one place they are
    /// known, by source UID.
    pub(crate) fn report_altered(&mut self, map: &std::collections::BTreeMap<u32, SyncMessage>) {
        self.report.altered = map.values().filter_map(altered_of).collect();
    }
}

/// The report of a mapped message the target altered.
pub(crate) fn altered_of(m: &SyncMessage) -> Option<Altered> {
    m.altered.as_ref().map(|a| Altered {
        uid: m.source_uid,
        target_uid: m.target_uid,
        size: m.size,
        target_size: a.target_size,
        changes: a.changes.clone(),
    })
}

/// The target folder in the session at verification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// It does not exist (dry run of a folder to create).
    Absent,
    /// It exists and is not the session's selected mailbox.
    Closed,
    /// It is the session's selected mailbox.
    Selected,
}
