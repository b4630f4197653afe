//! One scheduler per SQLite store: the lock `bma worker` and `bma serve`
//! (with its scheduler) take for their whole life, and `bma campaign
//! tick`/`run` for theirs.
//!
//! Several workers are safe on PostgreSQL (jobs and emails are claimed with
//! `FOR UPDATE SKIP LOCKED`). On SQLite they are not supported: the second
//! one is refused, never silently run. The lock is an exclusive `flock` on
//! `<database file>.scheduler.lock`, beside the database: the kernel
//! releases it when the process ends, even by SIGKILL, so a crashed worker
//! never blocks its successor. The file holds the pid of its holder, for
//! the refusal's message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

/// The SQLite database file of a store URL; `None` for PostgreSQL and for
/// an in-memory SQLite store (no other process can share it).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.trim().strip_prefix("sqlite:")?;
    if rest.starts_with(":memory:") {
        return None;
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// Why a scheduler may not start.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "another scheduler already runs on the SQLite store {database}{holder} (lock {lock}): several workers \
         need PostgreSQL (database.url = \"postgres://…\"); on SQLite run a single `bma worker`, or `bma serve` \
         alone, with `bma serve --no-scheduler` beside a worker"
    )]
    Held {
        /// The database file.
        database: String,
        /// ", held by process N" when known.
        holder: String,
        /// The lock file.
        lock: String,
    },
    /// The lock file cannot be opened or locked.
    #[error("cannot lock {lock}: {source}")]
    Io {
        /// The lock file.
        lock: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// The lock, held until dropped (keep it for the life of the process).
#[derive(Debug)]
pub struct SchedulerLock {
    _file: File,
}

/// Takes the scheduler lock of the store at `url`: `Ok(None)` where none is
/// needed (PostgreSQL, in-memory SQLite), `Ok(Some(lock))` when taken.
pub fn acquire(url: &str) -> Result<Option<SchedulerLock>, LockError> {
    let Some(database) = sqlite_file(url) else {
        return Ok(None);
    };
    let mut name = database.clone().into_os_string();
    name.push(".scheduler.lock");
    let lock = PathBuf::from(name);
    let shown = lock.display().to_string();
    let io = |source| LockError::Io { lock: shown.clone(), source };
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(LockError::Held {
                database: database.display().to_string(),
                holder: if pid.is_empty() { String::new() } else { format!(", held by process {pid}") },
                lock: shown,
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(Some(SchedulerLock { _file: file }))
}

/// [`acquire`] for a command: the lock, or the exit code (2) after saying
/// why on stderr.
pub fn acquire_for_command(url: &str) -> Result<Option<SchedulerLock>, std::process::ExitCode> {
    acquire(url).map_err(|e| {
        eprintln!("error: {e}");
        std::process::ExitCode::from(crate::commands::EXIT_USAGE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_of_urls() {
        for (url, file) in [
            ("sqlite://bma.db", Some("bma.db")),
            ("sqlite:///var/lib/bma/bma.db", Some("/var/lib/bma/bma.db")),
            ("sqlite:bma.db", Some("bma.db")),
            ("sqlite://bma.db?mode=rwc", Some("bma.db")),
            ("sqlite::memory:", None),
            ("postgres://bma@db/bma", None),
            ("postgresql://bma@db/bma", None),
        ] {
            assert_eq!(sqlite_file(url), file.map(PathBuf::from), "{url}");
        }
    }

    #[test]
    fn a_second_lock_on_the_same_store_is_refused_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bma.db").display());
        let first = acquire(&url).unwrap();
        assert!(first.is_some());
        let refused = acquire(&url).unwrap_err().to_string();
        assert!(refused.contains(&format!("held by process {}", std::process::id())), "{refused}");
        assert!(refused.contains("several workers need PostgreSQL"), "{refused}");
        drop(first);
        assert!(acquire(&url).unwrap().is_some());
        assert!(acquire("postgres://bma@db/bma").unwrap().is_none());
    }
}
