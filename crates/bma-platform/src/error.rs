//! [`PlatformError`]: what can go wrong when reading or changing a platform.

use std::path::PathBuf;

/// A platform could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A file of the platform could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of a platform's file that is not what it should be.
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Its line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A command of the platform (`postmap`, `postfix reload`, …) failed.
    #[error("`{command}` failed: {message}")]
    Command {
        /// The command line.
        command: String,
        /// Its error output, or why it could not run.
        message: String,
    },
    /// A value this platform cannot store (an address with a `:`, a
    /// reason with a line break…).
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was given.
        what: &'static str,
        /// Why it cannot be stored.
        message: String,
    },
    /// A change that reading back shows the platform did not take.
    #[error("not confirmed: {0}")]
    NotConfirmed(String),
    /// The account does not exist.
    #[error("{0}: no such account")]
    NoAccount(String),
}

impl PlatformError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PlatformError {
        let path = path.into();
        move |source| PlatformError::Io { path, source }
    }
}
