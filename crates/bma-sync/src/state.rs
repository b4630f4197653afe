//! [`SyncState`]: where the engine keeps what it copied, behind a trait so
//! that it can be a small SQLite file of its own (standalone `bma sync`) or
//! the campaign store. This crate owns the trait and its rows
//! ([`SyncFolder`], [`SyncMessage`]); it knows no database. `bma-store`
//! implements it (its `sync_state` module keeps these rows as they are).
//!
//! Rules: every method is durable when it returns (a run killed right after
//! loses nothing it recorded); a folder pair is named by `pair` (the two
//! mailboxes, chosen by [`crate::run`]) and the source folder's name.

use std::future::Future;

use crate::shape::Alteration;

/// The state of one folder pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFolder {
    /// The two mailboxes (source and target), as the engine names them.
    pub pair: String,
    /// Source folder (UTF-8 name with the source's separator).
    pub source_folder: String,
    /// Target folder (UTF-8 name with the target's separator).
    pub target_folder: String,
    /// UIDVALIDITY of the source folder the map refers to.
    pub source_uidvalidity: u32,
    /// UIDVALIDITY of the target folder the map refers to.
    pub target_uidvalidity: u32,
    /// Highest source UID copied.
    pub last_uid: u32,
    /// Source UIDNEXT at the end of the last complete run (none while a run is under way).
    pub uid_next: Option<u32>,
    /// Source HIGHESTMODSEQ at the end of the last complete run.
    pub highest_modseq: Option<u64>,
}

/// One copied message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMessage {
    /// UID in the source folder.
    pub source_uid: u32,
    /// UID in the target folder.
    pub target_uid: u32,
    /// Flags as last carried to the target (canonical: sorted, space-separated).
    pub flags: String,
    /// Size in bytes (the source's).
    pub size: u64,
    /// The target stored it differently: its size there and what changed.
    pub altered: Option<Alteration>,
}

/// A failure of the state, whatever keeps it (its cause is kept as the source).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StateError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl StateError {
    /// A failure of the implementation, `cause`.
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> StateError {
        StateError(Box::new(cause))
    }
}

/// The sync state of folder pairs (`pair` names the two mailboxes).
pub trait SyncState: Send + Sync {
    /// The state of a folder pair.
    fn folder(
        &self,
        pair: &str,
        source_folder: &str,
    ) -> impl Future<Output = Result<Option<SyncFolder>, StateError>> + Send;
    /// The state of every folder of `pair`.
    fn folders(&self, pair: &str) -> impl Future<Output = Result<Vec<SyncFolder>, StateError>> + Send;
    /// Forgets a folder pair and its messages.
    fn remove_folder(&self, pair: &str, source_folder: &str) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Creates or updates the state of a folder pair.
    fn save_folder(&self, folder: &SyncFolder) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Forgets the messages of a folder pair.
    fn clear(&self, pair: &str, source_folder: &str) -> impl Future<Output = Result<(), StateError>> + Send;
    /// The copied messages of a folder pair.
    fn messages(
        &self,
        pair: &str,
        source_folder: &str,
    ) -> impl Future<Output = Result<Vec<SyncMessage>, StateError>> + Send;
    /// Records copied messages (durably, before returning).
    fn record(
        &self,
        pair: &str,
        source_folder: &str,
        messages: &[SyncMessage],
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// The copied messages of a folder pair that the target altered.
    fn altered(
        &self,
        pair: &str,
        source_folder: &str,
    ) -> impl Future<Output = Result<Vec<SyncMessage>, StateError>> + Send {
        async move {
            let all = self.messages(pair, source_folder).await?;
            Ok(all.into_iter().filter(|m| m.altered.is_some()).collect())
        }
    }
    /// Forgets some messages of a folder pair.
    fn forget(
        &self,
        pair: &str,
        source_folder: &str,
        source_uids: &[u32],
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}
