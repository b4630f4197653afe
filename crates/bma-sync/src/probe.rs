//! The probe: before copying, three small messages that targets are known
//! to rewrite (8-bit header bytes, a message with headers only, a bare CR)
//! are appended into a scratch folder of the target, read back and
//! compared; the folder is then deleted. A target that rewrote one gets a
//! [`Warning::TargetAlters`] naming the setting to change (Cyrus'
//! `munge8bit: no`), before any real message is copied.
//!
//! Rules: the scratch folder is named `bma-probe-…` under the target's
//! personal prefix, never subscribed, and deleted whatever happens; one left
//! by a killed run is deleted by the next probe. A refusal of a probe
//! message is not a rewrite (the copy reports refusals itself). The result
//! is kept per target server in [`ProbeCache`], so a batch of mailboxes on
//! one server probes once. A probe that fails (no right to create a folder,
//! say) only costs its warning: the copy goes on, verified message by
//! message anyway.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bma_imap::{AppendMessage, Client, InternalDate, MailboxInfo, MailboxName, UidSet};

use crate::report::Warning;
use crate::shape::{self, Change, Shape};

/// The probe's results per target server (`host:port`), shared by the
/// runs of a batch (cloned [`Options`](crate::Options) share it).
#[derive(Debug, Clone, Default)]
pub struct ProbeCache(Arc<tokio::sync::Mutex<HashMap<String, Vec<Change>>>>);

/// The probe messages: what each one tests.
const PROBES: [&[u8]; 3] = [
    "From: Secrétariat <secretariat@bma.invalid>\r\nSubject: bma probe: 8-bit header bytes (é)\r\n\
     Message-ID: <probe-8bit@bma.invalid>\r\n\r\nProbe.\r\n"
        .as_bytes(),
    // Headers only, and no line ending after the last one.
    b"From: probe@bma.invalid\r\nSubject: bma probe: headers only\r\nMessage-ID: <probe-headers@bma.invalid>",
    b"From: probe@bma.invalid\r\nSubject: bma probe: bare CR\r\nMessage-ID: <probe-cr@bma.invalid>\r\n\r\n\
      one\rtwo\r\n",
];

impl ProbeCache {
    /// The warning for the target of `key` (`host:port`), probing it with
    /// `tgt` unless already done.
    pub(crate) async fn warning(
        &self,
        key: &str,
        tgt: &mut Client,
        prefix: &str,
        list: &[MailboxInfo],
    ) -> Option<Warning> {
        let mut cache = self.0.lock().await;
        let changes = match cache.get(key) {
            Some(c) => c.clone(),
            None => {
                let c = match probe(tgt, prefix, list).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::info!("the target could not be probed for rewrites ({e}); verifying per message only");
                        Vec::new()
                    }
                };
                cache.insert(key.to_owned(), c.clone());
                c
            }
        };
        (!changes.is_empty()).then_some(Warning::TargetAlters { changes })
    }
}

/// Appends the probes into a scratch folder, reads them back, deletes the
/// folder; returns every change found (each kind once).
async fn probe(tgt: &mut Client, prefix: &str, list: &[MailboxInfo]) -> bma_imap::Result<Vec<Change>> {
    for old in list.iter().filter(|m| m.name.name().starts_with(&format!("{prefix}bma-probe-"))) {
        let _ = tgt.delete(&old.name).await;
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let folder = MailboxName::new(&format!("{prefix}bma-probe-{:x}", nanos & 0xffff_ffff_ffff));
    tgt.create(&folder).await?;
    let result = read_back(tgt, &folder).await;
    // Out of the folder before deleting it: UNSELECT, or CLOSE (the folder
    // was examined, so CLOSE expunges nothing). Never EXAMINE another folder
    // instead: Courier then refuses APPENDs into it ("selected READ-ONLY").
    if tgt.unselect().await.is_err() {
        let _ = tgt.close().await;
    }
    if let Err(e) = tgt.delete(&folder).await {
        tracing::warn!(folder = %folder.name(), "the probe's scratch folder could not be deleted: {e}");
    }
    result
}

async fn read_back(tgt: &mut Client, folder: &MailboxName) -> bma_imap::Result<Vec<Change>> {
    let date = InternalDate::parse("01-Jan-2020 00:00:00 +0000");
    let mut uids: HashMap<u32, usize> = HashMap::new();
    {
        let mut pipe = tgt.append_pipeline(folder);
        for (i, body) in PROBES.iter().enumerate() {
            pipe.push(i as u64, AppendMessage { body, flags: &[], internal_date: date }).await?;
        }
        for d in pipe.finish().await? {
            if let Ok(Some(au)) = d.result {
                uids.insert(au.uid, d.id as usize);
            }
        }
    }
    let mut changes: Vec<Change> = Vec::new();
    if uids.is_empty() {
        return Ok(changes);
    }
    tgt.examine(folder).await?;
    let set: UidSet = uids.keys().copied().collect();
    let mut s = tgt.fetch_bodies(&set).await?;
    while let Some(m) = s.next().await? {
        let Some(&i) = uids.get(&m.uid) else { continue };
        for c in shape::changes(&Shape::of(PROBES[i], true), &Shape::of(&m.body, true)) {
            if !changes.iter().any(|k| std::mem::discriminant(k) == std::mem::discriminant(&c)) {
                changes.push(c);
            }
        }
    }
    Ok(changes)
}
