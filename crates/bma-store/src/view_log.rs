//! The staff's view log written by group commit: every view of a mailbox's
//! page is one `staff_views` row, and the views asked for at the same time
//! are written by one statement.
//!
//! Why: the console's mailbox page is opened all day by every agent, and
//! each opening writes. On SQLite, writers take the database's one write
//! lock in turn; several connections writing at once wait on it in the
//! busy handler's sleeps (1 ms, 2 ms, 5 ms… up to 100 ms), holding their
//! connection meanwhile, and a page that writes became one that waits.
//! One writer at a time, taking everything queued, keeps the lock
//! uncontended and the statements few.
//!
//! Rules:
//! - [`ViewLog::record`] returns once the view's row is committed (or the
//!   commit failed): a page is never shown before its view is recorded;
//! - at most one batch is written at a time; a batch holds every view
//!   queued when it starts, at most [`MAX_BATCH`];
//! - the writing runs in a task of its own, so a request dropped while
//!   waiting (the browser gone) never leaves the queue without a writer;
//!   if that task is dropped itself (its runtime shutting down), the
//!   queue is released and a waiter whose batch was lost queues again;
//! - a failed batch fails every view in it, with the database's message.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::{Store, StoreError};

/// The most views one statement writes (4 parameters each).
pub(crate) const MAX_BATCH: usize = 500;

/// One view to write: `staff_views` columns.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// Milliseconds since the epoch.
    pub(crate) at: i64,
    pub(crate) subject: String,
    pub(crate) name: String,
    pub(crate) mailbox_id: i64,
}

/// The queue of views waiting for their batch.
#[derive(Debug, Default)]
pub(crate) struct ViewLog {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    /// A writer task is running and will take what is queued.
    writing: bool,
    waiting: Vec<(View, oneshot::Sender<Result<(), String>>)>,
}

impl ViewLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `view` with whatever else is queued; returns once committed.
    pub(crate) async fn record(store: &Store, view: View) -> Result<(), StoreError> {
        loop {
            let (tx, rx) = oneshot::channel();
            {
                let mut q = store.views.lock();
                q.waiting.push((view.clone(), tx));
                if !q.writing {
                    q.writing = true;
                    tokio::spawn(write_queued(store.clone()));
                }
            }
            match rx.await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(message)) => return Err(StoreError::ViewLog(message)),
                // The writer was dropped with this view's batch: queue it again.
                Err(_) => {}
            }
        }
    }
}

/// Releases the queue if the writer task is dropped before it empties it
/// (disarmed when it returns, having released the queue itself: by then
/// another writer may hold it).
struct Writing {
    log: Arc<ViewLog>,
    armed: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if self.armed {
            self.log.lock().writing = false;
        }
    }
}

/// The writer task: batches until the queue is empty.
async fn write_queued(store: Store) {
    let mut writing = Writing { log: store.views.clone(), armed: true };
    loop {
        let batch: Vec<_> = {
            let mut q = store.views.lock();
            if q.waiting.is_empty() {
                q.writing = false;
                writing.armed = false;
                return;
            }
            let n = q.waiting.len().min(MAX_BATCH);
            q.waiting.drain(..n).collect()
        };
        let outcome = insert(&store, batch.iter().map(|(v, _)| v)).await.map_err(|e| e.to_string());
        for (_, tx) in batch {
            // A waiter gone (its request dropped) needs no answer.
            let _ = tx.send(outcome.clone());
        }
    }
}

/// One `INSERT` of every view of the batch.
async fn insert<'a>(store: &Store, views: impl ExactSizeIterator<Item = &'a View>) -> Result<(), StoreError> {
    let n = views.len();
    let mut sql = String::from("INSERT INTO staff_views (at, subject, name, mailbox_id) VALUES ");
    for i in 0..n {
        let p = i * 4;
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4);
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in views {
        query = query.bind(v.at).bind(v.subject.clone()).bind(v.name.clone()).bind(v.mailbox_id);
    }
    query.execute(store.pool()).await?;
    Ok(())
}
