//! The copy engine's state in the campaign store: [`StoreSyncState`]
//! implements `bma-sync`'s [`SyncState`] over `bma-store`'s `sync_state`
//! module (`sync_folders`, `sync_messages`).
//!
//! Rules: an adapter only, no SQL and no decision here: each method is one
//! call of the store, its rows converted field by field (the store keeps
//! its plain row types, `bma-sync` its own; neither crate knows the other).

use bma_store::Store;
use bma_sync::{StateError, SyncFolder, SyncMessage, SyncState};

/// The campaign store as the copy engine's state (cheap to clone: the
/// store is a pool handle).
#[derive(Debug, Clone)]
pub struct StoreSyncState(Store);

impl StoreSyncState {
    /// The state kept in `store`.
    pub fn new(store: Store) -> StoreSyncState {
        StoreSyncState(store)
    }

    /// The store the state is kept in.
    pub fn store(&self) -> &Store {
        &self.0
    }
}

impl From<Store> for StoreSyncState {
    fn from(store: Store) -> StoreSyncState {
        StoreSyncState(store)
    }
}

fn folder_of(f: bma_store::SyncFolder) -> SyncFolder {
    SyncFolder {
        pair: f.pair,
        source_folder: f.source_folder,
        target_folder: f.target_folder,
        source_uidvalidity: f.source_uidvalidity,
        target_uidvalidity: f.target_uidvalidity,
        last_uid: f.last_uid,
        uid_next: f.uid_next,
        highest_modseq: f.highest_modseq,
    }
}

fn row_of_folder(f: &SyncFolder) -> bma_store::SyncFolder {
    bma_store::SyncFolder {
        pair: f.pair.clone(),
        source_folder: f.source_folder.clone(),
        target_folder: f.target_folder.clone(),
        source_uidvalidity: f.source_uidvalidity,
        target_uidvalidity: f.target_uidvalidity,
        last_uid: f.last_uid,
        uid_next: f.uid_next,
        highest_modseq: f.highest_modseq,
    }
}

fn message_of(m: bma_store::SyncMessage) -> SyncMessage {
    SyncMessage { source_uid: m.source_uid, target_uid: m.target_uid, flags: m.flags, size: m.size }
}

fn row_of_message(m: &SyncMessage) -> bma_store::SyncMessage {
    bma_store::SyncMessage { source_uid: m.source_uid, target_uid: m.target_uid, flags: m.flags.clone(), size: m.size }
}

impl SyncState for StoreSyncState {
    async fn folder(&self, pair: &str, source_folder: &str) -> Result<Option<SyncFolder>, StateError> {
        Ok(self.0.sync_folder(pair, source_folder).await.map_err(StateError::new)?.map(folder_of))
    }

    async fn folders(&self, pair: &str) -> Result<Vec<SyncFolder>, StateError> {
        Ok(self.0.sync_folders(pair).await.map_err(StateError::new)?.into_iter().map(folder_of).collect())
    }

    async fn remove_folder(&self, pair: &str, source_folder: &str) -> Result<(), StateError> {
        self.0.remove_sync_folder(pair, source_folder).await.map_err(StateError::new)
    }

    async fn save_folder(&self, folder: &SyncFolder) -> Result<(), StateError> {
        self.0.save_sync_folder(&row_of_folder(folder)).await.map_err(StateError::new)
    }

    async fn clear(&self, pair: &str, source_folder: &str) -> Result<(), StateError> {
        self.0.clear_sync_messages(pair, source_folder).await.map_err(StateError::new)
    }

    async fn messages(&self, pair: &str, source_folder: &str) -> Result<Vec<SyncMessage>, StateError> {
        let rows = self.0.sync_messages(pair, source_folder).await.map_err(StateError::new)?;
        Ok(rows.into_iter().map(message_of).collect())
    }

    async fn record(&self, pair: &str, source_folder: &str, messages: &[SyncMessage]) -> Result<(), StateError> {
        if messages.is_empty() {
            return Ok(());
        }
        let rows: Vec<bma_store::SyncMessage> = messages.iter().map(row_of_message).collect();
        self.0.record_sync_messages(pair, source_folder, &rows).await.map_err(StateError::new)
    }

    async fn forget(&self, pair: &str, source_folder: &str, source_uids: &[u32]) -> Result<(), StateError> {
        self.0.forget_sync_messages(pair, source_folder, source_uids).await.map_err(StateError::new)
    }
}
