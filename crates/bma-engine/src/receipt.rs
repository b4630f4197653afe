//! The receipt of a cutover: what the legacy mailbox held when its mail
//! was held, folder by folder, and whether the new mailbox holds it all.
//!
//! It is read from the copy engine's report of the pass made after the
//! final copy, while mail is held and the legacy login refused: that pass
//! lists every message of every legacy folder and maps each one, through
//! the copy's state (source UIDVALIDITY and UID → target UID), to its copy
//! on the new side, whose size was compared when it was appended (`bma
//! sync` reports a message whose copy differs as altered, never as
//! copied). A folder's messages on the new side are those mapped; what is
//! not mapped is missing.
//!
//! Rules: `migrated` is refused unless nothing is missing and the pass was
//! complete; the digest is the SHA-256 of the folders' figures in a fixed
//! text form, so that two receipts of the same content have the same
//! digest, and a receipt quoted later (in `bma show`, the helpdesk) can be
//! checked against the one recorded. Pure: no I/O.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One folder of the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderReceipt {
    /// The legacy folder.
    pub folder: String,
    /// Its name on the new side.
    pub target: String,
    /// Messages in the legacy folder.
    pub messages: u64,
    /// Bytes in the legacy folder, when the pass could tell.
    pub bytes: Option<u64>,
    /// Legacy messages whose copy is on the new side.
    pub on_new: u64,
    /// Messages in the new folder (those copied, and any the new side had).
    pub new_messages: u64,
    /// Legacy messages without a copy.
    pub missing: u64,
}

/// The receipt of one mailbox's cutover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Folder by folder.
    pub folders: Vec<FolderReceipt>,
    /// Messages on the legacy side, all folders.
    pub messages: u64,
    /// Bytes on the legacy side, all folders whose size is known.
    pub bytes: u64,
    /// Legacy messages without a copy, all folders.
    pub missing: u64,
    /// Messages the new side stored other than it was given.
    pub altered: u64,
    /// Whether the pass was complete (every folder seen, nothing refused).
    pub complete: bool,
    /// SHA-256 of the figures, hex.
    pub digest: String,
}

impl Receipt {
    /// The receipt a copy pass reports.
    pub fn of(summary: &bma_sync::Summary) -> Receipt {
        let folders: Vec<FolderReceipt> = summary
            .folders
            .iter()
            .map(|f| FolderReceipt {
                folder: f.source.clone(),
                target: f.target.clone(),
                messages: f.source_messages,
                bytes: f.source_bytes,
                on_new: f.mapped.min(f.source_messages),
                new_messages: f.target_messages,
                missing: f.source_messages.saturating_sub(f.mapped),
            })
            .collect();
        let mut text = String::new();
        for f in &folders {
            let bytes = f.bytes.map_or("?".to_owned(), |b| b.to_string());
            text.push_str(&format!(
                "{}\t{}\t{}\t{bytes}\t{}\t{}\n",
                f.folder, f.target, f.messages, f.on_new, f.missing
            ));
        }
        Receipt {
            messages: folders.iter().map(|f| f.messages).sum(),
            bytes: folders.iter().filter_map(|f| f.bytes).sum(),
            missing: folders.iter().map(|f| f.missing).sum(),
            altered: summary.altered,
            complete: summary.outcome == bma_sync::Outcome::Complete,
            digest: hex(&Sha256::digest(text.as_bytes())),
            folders,
        }
    }

    /// What keeps the mailbox from `migrated`, in words; `None` if nothing.
    pub fn shortfall(&self) -> Option<String> {
        if self.missing == 0 && self.complete && self.altered == 0 {
            return None;
        }
        let mut parts: Vec<String> = self
            .folders
            .iter()
            .filter(|f| f.missing > 0)
            .map(|f| format!("{}: {} of {} missing", f.folder, f.missing, f.messages))
            .collect();
        if self.altered > 0 {
            parts.push(format!("{} altered by the new platform", self.altered));
        }
        if !self.complete {
            parts.push("the pass did not complete".to_owned());
        }
        Some(parts.join("; "))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::Receipt;

    fn folder(source: &str, messages: u64, mapped: u64, bytes: Option<u64>) -> bma_sync::FolderReport {
        bma_sync::FolderReport {
            source: source.to_owned(),
            target: source.to_owned(),
            source_messages: messages,
            mapped,
            target_messages: mapped,
            source_bytes: bytes,
            ..bma_sync::FolderReport::default()
        }
    }

    fn summary(folders: Vec<bma_sync::FolderReport>, outcome: bma_sync::Outcome) -> bma_sync::Summary {
        bma_sync::Summary {
            outcome,
            dry_run: false,
            folders,
            copied: 0,
            copied_bytes: 0,
            skipped: 0,
            altered: 0,
            warnings: Vec::new(),
            errors: 0,
            elapsed_ms: 0,
        }
    }

    #[test]
    fn a_receipt_counts_what_is_missing_and_its_digest_follows_the_content() {
        let complete =
            summary(vec![folder("INBOX", 10, 10, Some(1000)), folder("Sent", 3, 3, None)], bma_sync::Outcome::Complete);
        let r = Receipt::of(&complete);
        assert_eq!((r.messages, r.bytes, r.missing, r.shortfall()), (13, 1000, 0, None));
        assert_eq!(r.digest.len(), 64);
        assert_eq!(Receipt::of(&complete).digest, r.digest);

        let short =
            summary(vec![folder("INBOX", 10, 8, Some(1000)), folder("Sent", 3, 3, None)], bma_sync::Outcome::Partial);
        let s = Receipt::of(&short);
        assert_ne!(s.digest, r.digest);
        assert_eq!(s.missing, 2);
        assert_eq!(s.shortfall().as_deref(), Some("INBOX: 2 of 10 missing; the pass did not complete"));
    }
}
