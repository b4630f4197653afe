//! [`Accounts`]: a platform's accounts, as a cutover reads and writes them.
//!
//! Contract of an implementation: [`Accounts::read`] answers what the
//! platform would check at the next login (no cache of ours);
//! [`Accounts::upsert`] creates the account or changes it to exactly what
//! is given, and changing it to what it already is writes nothing, so a
//! step resumed after a crash can call it again; [`Accounts::set_login`]
//! keeps everything else of the account, and a refusal carries a reason
//! the platform shows to whoever tries to log in (French, for the schools).

use crate::{PasswordHash, PlatformError};

/// An account as a platform holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its address (lower case).
    pub address: String,
    /// Its password hash.
    pub hash: PasswordHash,
    /// Its own storage quota in bytes, if it has one (else the platform's default).
    pub quota_bytes: Option<u64>,
    /// Whether it may log in.
    pub login: Login,
}

/// Whether an account's owner may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Logins allowed.
    Allowed,
    /// Logins refused with this reason, shown to the person (French).
    Refused(String),
}

impl Login {
    /// The reason of a refusal, trimmed (`None`: logins allowed); a reason
    /// no platform can store (a line break, a control character) refused.
    pub fn reason(&self) -> Result<Option<&str>, PlatformError> {
        match self {
            Login::Allowed => Ok(None),
            Login::Refused(reason) if reason.chars().any(char::is_control) => {
                Err(PlatformError::Invalid { what: "reason", message: "a line break or control character".to_owned() })
            }
            Login::Refused(reason) => Ok(Some(reason.trim())),
        }
    }
}

/// An account to create or change on a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Its address.
    pub address: String,
    /// Its password hash.
    pub hash: PasswordHash,
    /// Its storage quota in bytes.
    pub quota_bytes: u64,
}

/// A platform's accounts.
pub trait Accounts: Send + Sync + std::fmt::Debug {
    /// The account of `address`, if the platform has one.
    fn read(&self, address: &str) -> Result<Option<Account>, PlatformError>;

    /// Creates the account, or sets it to `account` (logins allowed).
    fn upsert(&self, account: &NewAccount) -> Result<(), PlatformError>;

    /// Allows or refuses the logins of an existing account.
    fn set_login(&self, address: &str, login: &Login) -> Result<(), PlatformError>;

    /// Gives an existing account a new password hash, nothing else changed.
    fn set_hash(&self, address: &str, hash: &PasswordHash) -> Result<(), PlatformError>;
}
