//! Reconciliation (step 4 of the crate doc): target messages that no state
//! maps, found again by (size, INTERNALDATE, SHA-256 of the bytes), so that
//! a run killed at any point loses nothing and duplicates nothing, and
//! bodies are never altered (no marker header).
//!
//! Rules: bodies are fetched only for messages whose size and INTERNALDATE
//! ([`SizeDate`]) could match; identity stays the source's (UIDVALIDITY,
//! UID), the key only finds a copy already made.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use bma_imap::{Client, Flag, MessageMeta, StoreMode, UidSet};
use sha2::{Digest, Sha256};

use crate::error::{Error, Side, on};
use crate::folder::canonical;
use crate::report::FolderReport;
use crate::state::SyncMessage;

/// (size, INTERNALDATE as Unix time, SHA-256 of the bytes): what makes two messages the same.
pub(crate) type Key = (usize, String, [u8; 32]);

/// The key of a message's bytes and INTERNALDATE.
pub(crate) fn key_of(body: &[u8], date: Option<&bma_imap::InternalDate>) -> Key {
    let hash: [u8; 32] = Sha256::digest(body).into();
    (body.len(), date.map(|d| d.0.unix_timestamp().to_string()).unwrap_or_default(), hash)
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

/// Waits until the selected target folder's message count is the same
/// after 300 ms (NOOP), at most ten times.
pub(crate) async fn settle(tgt: &mut Client, exists: &mut u32) -> Result<(), Error> {
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

/// The target messages of the selected folder that `map` does not name and
/// whose size and INTERNALDATE are `wanted`, by key: their UID and flags
/// (canonical), in UID order.
pub(crate) async fn orphans(
    tgt: &mut Client,
    map: &BTreeMap<u32, SyncMessage>,
    wanted: &HashSet<SizeDate>,
) -> Result<HashMap<Key, VecDeque<(u32, String)>>, Error> {
    let mut orphans: HashMap<Key, VecDeque<(u32, String)>> = HashMap::new();
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
    Ok(orphans)
}

/// When the target folder holds more messages than the map: unmapped
/// target messages byte-identical (same key) to a mapped one are copies
/// appended by a killed run that the server completed after the next run
/// had looked (they sit below the highest mapped UID): removed, so that
/// each source message is on the target once.
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
        tracing::warn!(folder = %report.target, n, "removing copies of mapped messages appended by an interrupted run");
        tgt.uid_store(&dups, StoreMode::Add, &[Flag::Deleted]).await.map_err(on(Side::Target))?;
        tgt.uid_expunge(&dups).await.map_err(on(Side::Target))?;
        report.duplicates_removed += n;
    }
    Ok(())
}
