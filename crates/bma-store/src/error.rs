//! Typed errors of the store.

use bma_core::lifecycle::IllegalTransition;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not usable (password redacted).
    #[error("database URL '{0}': {1}")]
    Url(String, String),
    /// Cannot connect (URL redacted).
    #[error("cannot connect to the database {0}: {1}")]
    Connect(String, #[source] sqlx::Error),
    /// A schema migration failed.
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        /// Version number.
        version: i64,
        /// Its name.
        name: &'static str,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// The database has a newer schema than this build knows.
    #[error("the database schema is at version {found}, newer than this bma ({known}): upgrade bma")]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Latest version known here.
        known: i64,
    },
    /// No mailbox with that address.
    #[error("no mailbox {0} in the registry")]
    NotFound(String),
    /// The transition is not allowed.
    #[error("{address}: {why}")]
    Illegal {
        /// The mailbox.
        address: String,
        /// Why (part of the message, so not a `source`: printed once).
        why: IllegalTransition,
    },
    /// The form of this mailbox can no longer be submitted or corrected
    /// (its cutover is scheduled, or it is not invited yet, or blocked).
    #[error("{address}: the form is closed in state {state}")]
    FormClosed {
        /// The mailbox.
        address: String,
        /// Its state.
        state: bma_core::lifecycle::State,
    },
    /// Someone else changed the mailbox at the same time; retry.
    #[error("{0} was changed concurrently; try again")]
    Conflict(String),
    /// The worker no longer holds the job's lease (it expired and another
    /// worker took the job, or the job is no longer running).
    #[error("job {job}: worker {worker} no longer holds its lease")]
    LeaseLost {
        /// Job id.
        job: i64,
        /// The worker that tried.
        worker: String,
    },
    /// The campaign is not in a state that allows the action.
    #[error("{0}")]
    CampaignState(String),
    /// A value in the database is not what this build expects.
    #[error("corrupt value in the store: {0}")]
    Corrupt(String),
    /// An event of a kind this build does not know.
    #[error("corrupt value in the store: {0}")]
    UnknownEventKind(#[from] bma_core::event::UnknownEventKind),
    /// A helpdesk flag with a reason this build does not know.
    #[error("corrupt value in the store: {0}")]
    UnknownAttentionReason(#[from] bma_core::attention::UnknownAttentionReason),
    /// The batch of staff views this one was in could not be written.
    #[error("the staff view log could not be written: {0}")]
    ViewLog(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}
