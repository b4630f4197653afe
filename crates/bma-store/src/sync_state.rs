//! The copy engine's sync state: per folder pair, the UIDVALIDITY of both
//! sides, the last source UID copied, the source's UIDNEXT and
//! HIGHESTMODSEQ at the end of the last complete run, and the map of each
//! copied message (source UID to target UID, flags, size, and what the
//! target altered, if it did).
//!
//! A folder pair is named by `pair` (the two mailboxes, chosen by the
//! engine) and the source folder's name. The store implements `bma-sync`'s
//! [`SyncState`] trait with its rows as they are (no conversion), so the
//! copy engine's state is a small SQLite file of its own (`bma sync`) or
//! the campaign store (the presync): both are a [`Store`].

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use bma_sync::{Alteration, StateError, SyncState};

use crate::{Store, StoreError, to_millis};

// The rows are the copy engine's own types: the store keeps them as they are.
pub use bma_sync::{SyncFolder, SyncMessage};

/// Rows per multi-row statement (five parameters each: far below the
/// parameter limits of SQLite, 32,766, and PostgreSQL, 65,535).
const ROWS_PER_STATEMENT: usize = 500;

fn folder_of(row: &AnyRow) -> Result<SyncFolder, StoreError> {
    let uid_next: Option<i64> = row.try_get("uid_next")?;
    let modseq: Option<i64> = row.try_get("highest_modseq")?;
    Ok(SyncFolder {
        pair: row.try_get("pair")?,
        source_folder: row.try_get("source_folder")?,
        target_folder: row.try_get("target_folder")?,
        source_uidvalidity: u32_of(row, "source_uidvalidity")?,
        target_uidvalidity: u32_of(row, "target_uidvalidity")?,
        last_uid: u32_of(row, "last_uid")?,
        uid_next: uid_next.and_then(|v| u32::try_from(v).ok()),
        highest_modseq: modseq.map(|v| v as u64),
    })
}

fn u32_of(row: &AnyRow, col: &str) -> Result<u32, StoreError> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

impl Store {
    /// The state of a folder pair, if any.
    pub async fn sync_folder(&self, pair: &str, source_folder: &str) -> Result<Option<SyncFolder>, StoreError> {
        let row = sqlx::query(
            "SELECT pair, source_folder, target_folder, source_uidvalidity, target_uidvalidity, last_uid, \
             uid_next, highest_modseq FROM sync_folders WHERE pair = $1 AND source_folder = $2",
        )
        .bind(pair)
        .bind(source_folder)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(folder_of).transpose()
    }

    /// The state of every folder of `pair`, by source folder name.
    pub async fn sync_folders(&self, pair: &str) -> Result<Vec<SyncFolder>, StoreError> {
        let rows = sqlx::query(
            "SELECT pair, source_folder, target_folder, source_uidvalidity, target_uidvalidity, last_uid, \
             uid_next, highest_modseq FROM sync_folders WHERE pair = $1 ORDER BY source_folder",
        )
        .bind(pair)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(folder_of).collect()
    }

    /// Forgets a folder pair and its messages (the source folder is gone).
    pub async fn remove_sync_folder(&self, pair: &str, source_folder: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM sync_messages WHERE folder_id = \
             (SELECT id FROM sync_folders WHERE pair = $1 AND source_folder = $2)",
        )
        .bind(pair)
        .bind(source_folder)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sync_folders WHERE pair = $1 AND source_folder = $2")
            .bind(pair)
            .bind(source_folder)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates or updates the state of a folder pair (its messages stay).
    pub async fn save_sync_folder(&self, folder: &SyncFolder) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_folders (pair, source_folder, target_folder, source_uidvalidity, target_uidvalidity, \
             last_uid, uid_next, highest_modseq, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (pair, source_folder) DO UPDATE SET target_folder = excluded.target_folder, \
             source_uidvalidity = excluded.source_uidvalidity, target_uidvalidity = excluded.target_uidvalidity, \
             last_uid = excluded.last_uid, uid_next = excluded.uid_next, highest_modseq = excluded.highest_modseq, \
             updated_at = excluded.updated_at",
        )
        .bind(&folder.pair)
        .bind(&folder.source_folder)
        .bind(&folder.target_folder)
        .bind(i64::from(folder.source_uidvalidity))
        .bind(i64::from(folder.target_uidvalidity))
        .bind(i64::from(folder.last_uid))
        .bind(folder.uid_next.map(i64::from))
        .bind(folder.highest_modseq.map(|v| v as i64))
        .bind(to_millis(OffsetDateTime::now_utc()))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets every message of a folder pair (its UIDVALIDITY changed).
    pub async fn clear_sync_messages(&self, pair: &str, source_folder: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM sync_messages WHERE folder_id = \
             (SELECT id FROM sync_folders WHERE pair = $1 AND source_folder = $2)",
        )
        .bind(pair)
        .bind(source_folder)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every copied message of a folder pair, by source UID.
    pub async fn sync_messages(&self, pair: &str, source_folder: &str) -> Result<Vec<SyncMessage>, StoreError> {
        self.sync_messages_where(pair, source_folder, false).await
    }

    /// The copied messages of a folder pair that the target altered, by source UID.
    pub async fn altered_sync_messages(&self, pair: &str, source_folder: &str) -> Result<Vec<SyncMessage>, StoreError> {
        self.sync_messages_where(pair, source_folder, true).await
    }

    async fn sync_messages_where(
        &self,
        pair: &str,
        source_folder: &str,
        altered_only: bool,
    ) -> Result<Vec<SyncMessage>, StoreError> {
        let only = if altered_only { " AND m.altered IS NOT NULL" } else { "" };
        let sql = format!(
            "SELECT m.source_uid, m.target_uid, m.flags, m.size, m.altered FROM sync_messages m \
             JOIN sync_folders f ON f.id = m.folder_id WHERE f.pair = $1 AND f.source_folder = $2{only} \
             ORDER BY m.source_uid"
        );
        // A fixed text, one of two; every value is bound.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(pair).bind(source_folder).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let size: i64 = r.try_get("size")?;
                let altered: Option<String> = r.try_get("altered")?;
                Ok(SyncMessage {
                    source_uid: u32_of(r, "source_uid")?,
                    target_uid: u32_of(r, "target_uid")?,
                    flags: r.try_get("flags")?,
                    size: size.max(0) as u64,
                    altered: altered
                        .map(|a| Alteration::parse(&a))
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    /// Records (or updates) copied messages of a folder pair, in one
    /// transaction; the folder pair must have been saved first.
    pub async fn record_sync_messages(
        &self,
        pair: &str,
        source_folder: &str,
        messages: &[SyncMessage],
    ) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        // Read before the transaction: on SQLite (WAL) a transaction that
        // reads then writes fails with SQLITE_BUSY_SNAPSHOT when another
        // writer committed in between; one that starts by writing waits.
        let id: i64 = sqlx::query_scalar("SELECT id FROM sync_folders WHERE pair = $1 AND source_folder = $2")
            .bind(pair)
            .bind(source_folder)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("sync folder {source_folder}")))?;
        // One multi-row statement per chunk: a row per statement would be a
        // round trip to the database each (to SQLite's thread, or over the
        // network to PostgreSQL), per copied message.
        let mut tx = self.pool().begin().await?;
        for chunk in messages.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO sync_messages (folder_id, source_uid, target_uid, flags, size, altered) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 5 + 2;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("($1, ${b}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
            }
            sql.push_str(
                " ON CONFLICT (folder_id, source_uid) DO UPDATE SET target_uid = excluded.target_uid, \
                 flags = excluded.flags, size = excluded.size, altered = excluded.altered",
            );
            // Only placeholders are generated; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id);
            for m in chunk {
                q = q
                    .bind(i64::from(m.source_uid))
                    .bind(i64::from(m.target_uid))
                    .bind(&m.flags)
                    .bind(m.size as i64)
                    .bind(m.altered.as_ref().map(Alteration::encode));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets copied messages of a folder pair (removed on both sides).
    pub async fn forget_sync_messages(
        &self,
        pair: &str,
        source_folder: &str,
        source_uids: &[u32],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for chunk in source_uids.chunks(ROWS_PER_STATEMENT * 4) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "DELETE FROM sync_messages WHERE source_uid IN ({}) AND folder_id = \
                 (SELECT id FROM sync_folders WHERE pair = $1 AND source_folder = $2)",
                list.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(pair).bind(source_folder);
            for uid in chunk {
                q = q.bind(i64::from(*uid));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The copy engine's state in the store: each method one call of the
/// store's own, its error boxed for the engine.
impl SyncState for Store {
    async fn folder(&self, pair: &str, source_folder: &str) -> Result<Option<SyncFolder>, StateError> {
        self.sync_folder(pair, source_folder).await.map_err(StateError::new)
    }

    async fn folders(&self, pair: &str) -> Result<Vec<SyncFolder>, StateError> {
        self.sync_folders(pair).await.map_err(StateError::new)
    }

    async fn remove_folder(&self, pair: &str, source_folder: &str) -> Result<(), StateError> {
        self.remove_sync_folder(pair, source_folder).await.map_err(StateError::new)
    }

    async fn save_folder(&self, folder: &SyncFolder) -> Result<(), StateError> {
        self.save_sync_folder(folder).await.map_err(StateError::new)
    }

    async fn clear(&self, pair: &str, source_folder: &str) -> Result<(), StateError> {
        self.clear_sync_messages(pair, source_folder).await.map_err(StateError::new)
    }

    async fn messages(&self, pair: &str, source_folder: &str) -> Result<Vec<SyncMessage>, StateError> {
        self.sync_messages(pair, source_folder).await.map_err(StateError::new)
    }

    async fn record(&self, pair: &str, source_folder: &str, messages: &[SyncMessage]) -> Result<(), StateError> {
        self.record_sync_messages(pair, source_folder, messages).await.map_err(StateError::new)
    }

    async fn altered(&self, pair: &str, source_folder: &str) -> Result<Vec<SyncMessage>, StateError> {
        self.altered_sync_messages(pair, source_folder).await.map_err(StateError::new)
    }

    async fn forget(&self, pair: &str, source_folder: &str, source_uids: &[u32]) -> Result<(), StateError> {
        self.forget_sync_messages(pair, source_folder, source_uids).await.map_err(StateError::new)
    }
}
