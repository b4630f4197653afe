//! The errors of a run: [`Error`] stops a run (it could not start), naming
//! the [`Side`] an IMAP failure happened on; per-folder and per-message
//! failures are not errors but lines of the [`crate::Summary`].

use serde::Serialize;

use crate::mapping;
use crate::state::StateError;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The server copied from.
    Source,
    /// The server copied to.
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

impl Side {
    /// What to do about an account missing on this side.
    fn no_account_hint(self) -> &'static str {
        match self {
            Side::Source => "check the source user's name",
            Side::Target => "create the account on the target first",
        }
    }
}

/// An error that stops a run (per-folder errors are in the [`Summary`](crate::Summary)).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// IMAP failed on one side (connection, login, LIST, ...).
    #[error("{side}: {source}")]
    Imap {
        /// Which side.
        side: Side,
        /// The cause.
        source: bma_imap::Error,
    },
    /// The sync state failed.
    #[error("sync state: {0}")]
    State(#[from] StateError),
    /// The folder mapping asks for something unsupported.
    #[error(transparent)]
    Mapping(#[from] mapping::MergeError),
    /// A master user cannot log in on behalf of the mailbox: the server
    /// does not offer AUTHENTICATE PLAIN (the only way to give an
    /// authorization identity), in this session at least.
    #[error(
        "{side}: logging in as a master user on behalf of the mailbox needs AUTHENTICATE PLAIN \
         (with an authorization identity): {source}"
    )]
    MasterLogin {
        /// Which side.
        side: Side,
        /// What the server said it offers.
        source: bma_imap::Error,
    },
    /// Logged in, but the account has no INBOX there: it does not exist
    /// (a master user may act for any name on Cyrus).
    #[error("{side}: the account {user} has no INBOX there: {hint}", hint = side.no_account_hint())]
    NoAccount {
        /// Which side.
        side: Side,
        /// The account.
        user: String,
    },
}

impl Error {
    /// The side an IMAP error happened on.
    pub fn side(&self) -> Option<Side> {
        match self {
            Error::Imap { side, .. } => Some(*side),
            Error::NoAccount { side, .. } | Error::MasterLogin { side, .. } => Some(*side),
            Error::State(_) | Error::Mapping(_) => None,
        }
    }

    /// Whether reconnecting later may help: a lost connection, a server
    /// that refuses or does not answer new connections (restarting), or a
    /// temporary refusal (`[UNAVAILABLE]`, `[THROTTLED]`, also at login).
    pub(crate) fn is_connection_lost(&self) -> bool {
        let Error::Imap { source, .. } = self else { return false };
        source.is_connection_lost()
            || source.is_transient()
            || matches!(
                source,
                bma_imap::Error::Connect { .. }
                    | bma_imap::Error::Timeout(_)
                    | bma_imap::Error::AuthFailed {
                        code: Some(bma_imap::ResponseCode::Unavailable | bma_imap::ResponseCode::Throttled),
                        ..
                    }
            )
    }
}

/// Maps an IMAP error of `side` into an [`Error`].
pub(crate) fn on(side: Side) -> impl Fn(bma_imap::Error) -> Error {
    move |source| Error::Imap { side, source }
}
