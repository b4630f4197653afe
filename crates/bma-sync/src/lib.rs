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
//!    [`Options::commit_every`]. A large first copy into an empty folder
//!    is shared, batch by batch, with the workers that have no folder left
//!    to start, each batch committed in the source's order (`split`). Identity is the source (UIDVALIDITY, UID),
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
//! [`run`] with two [`Endpoint`]s, a [`SyncState`] (this crate's trait:
//! the campaign store or `bma sync`'s own SQLite file, both a `bma_store::Store`, or any
//! implementation) and [`Options`] (start from `Options::default()`); it
//! returns a [`Summary`] whose [`Outcome`] says whether the target holds
//! everything.
//!
//! # Modules, along the steps
//!
//! - [`options`]: [`Options`], [`Endpoint`], [`Progress`], the shared caps
//!   ([`RateLimiter`], [`share`]).
//! - [`report`]: [`FolderReport`], [`Summary`], [`Outcome`].
//! - [`error`]: [`Error`] and the [`Side`] it happened on.
//! - [`state`]: the [`SyncState`] trait and its rows ([`SyncFolder`], [`SyncMessage`]).
//! - [`mapping`]: the folder tree's plan ([`FolderPlan`]).
//! - `run`: the start, the unchanged folders, the workers.
//! - `tree`: the target's tree prepared; folders gone from the source.
//! - `folder`: one folder pair, step by step (a `FolderSync`).
//! - `reconcile`: copies found again by (size, INTERNALDATE, SHA-256).
//! - `append`: MULTIAPPEND batches and pipelined APPENDs, pauses.
//! - `split`: a large first copy shared by idle workers, in order.
//! - `verify`: STATUS on both sides.

mod append;
pub mod error;
mod folder;
pub mod mapping;
pub mod options;
mod probe;
mod reconcile;
pub mod report;
mod run;
pub mod shape;
mod split;
pub mod state;
mod tree;
mod verify;

use bma_imap::{Flag, MailboxName};

pub use error::{Error, Side};
pub use mapping::{FolderPlan, MappingOptions, NewSpecialUse, TargetTree};
pub use options::{Endpoint, Options, Progress, RateLimiter, Verify, share};
pub use probe::ProbeCache;
pub use report::{Altered, FolderReport, Outcome, Skipped, Summary, Warning};
pub use run::run;
pub use shape::{Alteration, Change, Shape};
pub use state::{StateError, SyncFolder, SyncMessage, SyncState};

/// Exposed for tests: the flags as the engine carries them.
pub fn canonical_flags(flags: &[Flag]) -> String {
    folder::canonical(flags)
}

/// Exposed for tests: a folder name as the target would see it.
pub fn mailbox(name: &str) -> MailboxName {
    MailboxName::new(name)
}
