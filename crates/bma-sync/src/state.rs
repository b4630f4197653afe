//! [`SyncState`]: where the engine keeps what it copied, behind a trait so
//! that it can be a small SQLite file of its own (standalone `bma sync`) or
//! the campaign store. The implementation for [`bma_store::Store`] is here;
//! the SQL is in `bma-store`.

use std::future::Future;

pub use bma_store::{SyncFolder, SyncMessage};

/// A failure of the state.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StateError(#[from] pub bma_store::StoreError);

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
    /// Forgets some messages of a folder pair.
    fn forget(
        &self,
        pair: &str,
        source_folder: &str,
        source_uids: &[u32],
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

impl SyncState for bma_store::Store {
    async fn folder(&self, pair: &str, source_folder: &str) -> Result<Option<SyncFolder>, StateError> {
        Ok(self.sync_folder(pair, source_folder).await?)
    }
    async fn folders(&self, pair: &str) -> Result<Vec<SyncFolder>, StateError> {
        Ok(self.sync_folders(pair).await?)
    }
    async fn remove_folder(&self, pair: &str, source_folder: &str) -> Result<(), StateError> {
        Ok(self.remove_sync_folder(pair, source_folder).await?)
    }
    async fn save_folder(&self, folder: &SyncFolder) -> Result<(), StateError> {
        Ok(self.save_sync_folder(folder).await?)
    }
    async fn clear(&self, pair: &str, source_folder: &str) -> Result<(), StateError> {
        Ok(self.clear_sync_messages(pair, source_folder).await?)
    }
    async fn messages(&self, pair: &str, source_folder: &str) -> Result<Vec<SyncMessage>, StateError> {
        Ok(self.sync_messages(pair, source_folder).await?)
    }
    async fn record(&self, pair: &str, source_folder: &str, messages: &[SyncMessage]) -> Result<(), StateError> {
        Ok(self.record_sync_messages(pair, source_folder, messages).await?)
    }
    async fn forget(&self, pair: &str, source_folder: &str, source_uids: &[u32]) -> Result<(), StateError> {
        Ok(self.forget_sync_messages(pair, source_folder, source_uids).await?)
    }
}
