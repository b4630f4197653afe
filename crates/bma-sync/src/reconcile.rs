//! Reconciliation (step 4 of the crate doc): target messages that no state
//! maps, found again by (size, INTERNALDATE, SHA-256 of the bytes), so that
//! a run killed at any point loses nothing and duplicates nothing, and
//! bodies are never altered (no marker header). A target that rewrites
//! messages on APPEND (Cyrus' `munge8bit`, Courier's line endings) stores
//! other bytes, sometimes of another size: such a copy is found again by
//! (INTERNALDATE, Message-ID), and mapped as altered by the target (what
//! changed said), instead of being appended again and again.
//!
//! Rules: bodies are fetched only for messages whose INTERNALDATE could
//! match; an exact key is preferred to a Message-ID; each target message is
//! taken once; identity stays the source's (UIDVALIDITY, UID), the keys only
//! find a copy already made.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use bma_imap::{Client, Flag, MessageMeta, StoreMode, UidSet};
use sha2::{Digest, Sha256};

use crate::error::{Error, Side, on};
use crate::folder::canonical;
use crate::report::FolderReport;
use crate::shape::Shape;
use crate::state::SyncMessage;

/// (size, INTERNALDATE as Unix time, SHA-256 of the bytes): what makes two messages the same.
pub(crate) type Key = (usize, String, [u8; 32]);

/// The key of a message's bytes and INTERNALDATE.
pub(crate) fn key_of(body: &[u8], date: Option<&bma_imap::InternalDate>) -> Key {
    (body.len(), date_text(date), Sha256::digest(body).into())
}

/// The key of a message read into a hashed [`Shape`] (no second pass over
/// its bytes).
fn key_of_shape(shape: &Shape, date: Option<&bma_imap::InternalDate>) -> Key {
    (shape.size as usize, date_text(date), shape.sha256.unwrap_or_default())
}

fn date_text(date: Option<&bma_imap::InternalDate>) -> String {
    date.map(|d| d.0.unix_timestamp().to_string()).unwrap_or_default()
}

/// (RFC822.SIZE, INTERNALDATE as Unix time): a cheap prefilter before hashing bodies.
pub(crate) type SizeDate = (u64, i64);

/// The [`SizeDate`] of a message.
pub(crate) fn size_date(m: &MessageMeta) -> SizeDate {
    (m.size.unwrap_or(0), m.internal_date.as_ref().map_or(0, |d| d.0.unix_timestamp()))
}

/// The metadata of every message of the selected target folder.
pub(crate) async fn target_metas(tgt: &mut Client) -> Result<Vec<MessageMeta>, Error> {
    let mut out = Vec::new();
    let mut s = tgt.fetch_meta(&UidSet::all(), None).await.map_err(on(Side::Target))?;
    while let Some(m) = s.next().await.map_err(on(Side::Target))? {
        out.push(m);
    }
    Ok(out)
}

/// Waits until the selected target folder's message count has stayed the
/// same for [`QUIET_LOOKS`] looks in a row, [`LOOK_EVERY`] apart (NOOP), at
/// most [`MAX_LOOKS`] looks: the APPENDs a killed run had already sent may
/// still be committing in the server's session of the dead client (Cyrus
/// reads what its socket holds before it sees the end), and on a loaded
/// machine one quiet look is not enough to tell.
pub(crate) async fn settle(tgt: &mut Client, exists: &mut u32) -> Result<(), Error> {
    let mut quiet = 0;
    for _ in 0..MAX_LOOKS {
        tokio::time::sleep(LOOK_EVERY).await;
        tgt.noop().await.map_err(on(Side::Target))?;
        let now = tgt.exists().unwrap_or(*exists);
        if now == *exists {
            quiet += 1;
            if quiet == QUIET_LOOKS {
                return Ok(());
            }
        } else {
            tracing::info!(before = *exists, now, "the target folder is still growing (an interrupted run's APPEND)");
            *exists = now;
            quiet = 0;
        }
    }
    Ok(())
}

/// Time between two looks of [`settle`].
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// Looks in a row without change for [`settle`] to end (2 s: on a loaded
/// machine, 0.75 s of quiet was once not enough, and a loaded Cyrus
/// committed 14 late copies of a killed session after it; the wait costs
/// only a run after an interrupted one).
const QUIET_LOOKS: u32 = 8;
/// At most this many looks (10 s).
const MAX_LOOKS: u32 = 40;

/// An unmapped target message that may be the copy of a new source message.
#[derive(Debug, Clone)]
pub(crate) struct Orphan {
    /// Its UID.
    pub(crate) uid: u32,
    /// Its flags (canonical).
    pub(crate) flags: String,
    /// Its bytes' shape, hashed.
    pub(crate) shape: Shape,
}

/// The unmapped target messages of a folder, by exact key and by
/// (INTERNALDATE, Message-ID), each to be taken once.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    by_key: HashMap<Key, VecDeque<Orphan>>,
    by_id: HashMap<(i64, Vec<u8>), VecDeque<Orphan>>,
    taken: HashSet<u32>,
}

impl Orphans {
    /// No target message is waiting to be matched.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The copy of the source message `body` (of INTERNALDATE `date`) on the
    /// target: byte for byte (same key), else by INTERNALDATE and Message-ID
    /// (a copy the target rewrote); with the source's shape (hashed), to
    /// compare with the copy's.
    pub(crate) fn take(&mut self, body: &[u8], date: Option<&bma_imap::InternalDate>) -> Option<(Orphan, Shape)> {
        let shape = Shape::of(body, true);
        let key = key_of_shape(&shape, date);
        let taken = &mut self.taken;
        let mut pop = |q: Option<&mut VecDeque<Orphan>>| {
            let q = q?;
            while let Some(o) = q.pop_front() {
                if taken.insert(o.uid) {
                    return Some(o);
                }
            }
            None
        };
        if let Some(o) = pop(self.by_key.get_mut(&key)) {
            return Some((o, shape));
        }
        let id = crate::shape::message_id(body)?;
        let unix = date.map_or(0, |d| d.0.unix_timestamp());
        pop(self.by_id.get_mut(&(unix, id.to_vec()))).map(|o| (o, shape))
    }
}

/// The target messages of the selected folder that `map` does not name and
/// whose INTERNALDATE is one of `dates` (those of the new messages), by key
/// and by Message-ID, in UID order.
pub(crate) async fn orphans(
    tgt: &mut Client,
    map: &BTreeMap<u32, SyncMessage>,
    dates: &HashSet<i64>,
) -> Result<Orphans, Error> {
    let mut orphans = Orphans::default();
    let mapped: HashSet<u32> = map.values().map(|m| m.target_uid).collect();
    let cands: UidSet = target_metas(tgt)
        .await?
        .iter()
        .filter(|m| !mapped.contains(&m.uid) && dates.contains(&size_date(m).1))
        .map(|m| m.uid)
        .collect();
    if !cands.is_empty() {
        let mut s = tgt.fetch_bodies(&cands).await.map_err(on(Side::Target))?;
        while let Some(m) = s.next().await.map_err(on(Side::Target))? {
            let flags = canonical(m.flags.as_deref().unwrap_or(&[]));
            let shape = Shape::of(&m.body, true);
            let o = Orphan { uid: m.uid, flags, shape };
            if let Some(id) = crate::shape::message_id(&m.body) {
                let unix = m.internal_date.as_ref().map_or(0, |d| d.0.unix_timestamp());
                orphans.by_id.entry((unix, id.to_vec())).or_default().push_back(o.clone());
            }
            orphans.by_key.entry(key_of_shape(&o.shape, m.internal_date.as_ref())).or_default().push_back(o);
        }
    }
    Ok(orphans)
}

/// After a run of this folder that did not finish, when the target folder
/// holds more messages than the map: unmapped target messages
/// byte-identical (same key) to a mapped one are copies appended by the
/// interrupted run that the server completed after this run had looked
/// for them: removed, so that each source message is on the target once.
pub(crate) async fn remove_copies_of_mapped(
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
        tracing::warn!(
            folder = %report.target,
            n,
            "removing second copies of messages already mapped (APPENDs of the interrupted run completed late)"
        );
        tgt.uid_store(&dups, StoreMode::Add, &[Flag::Deleted]).await.map_err(on(Side::Target))?;
        tgt.uid_expunge(&dups).await.map_err(on(Side::Target))?;
        report.duplicates_removed += n;
    }
    Ok(())
}
