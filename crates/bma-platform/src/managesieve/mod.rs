//! A ManageSieve client (RFC 5804): the Sieve scripts of a mailbox read
//! and written on its server, for the forwarding audit (every script
//! fetched from the legacy platform) and later the cutover (a stripped
//! script uploaded to the new one).
//!
//! - [`response`]: the response grammar as pure functions (lines of atoms,
//!   quoted strings and `{n}`/`{n+}` literals; `OK`/`NO`/`BYE` with their
//!   codes; capabilities; script list entries), tested at every read
//!   boundary;
//! - [`client`]: the connection (STARTTLS verified, or plaintext on
//!   loopback only when asked), SASL PLAIN with an authorization identity,
//!   `LISTSCRIPTS`, `GETSCRIPT`, `PUTSCRIPT`, `CHECKSCRIPT`, `SETACTIVE`,
//!   `DELETESCRIPT`, `LOGOUT`;
//! - [`error`]: [`SieveError`], typed.
//!
//! Rules: one connection per mailbox; every wait bounded; the password a
//! [`bma_imap::Secret`]; nothing here knows campaigns or Sieve's own
//! grammar (that is `bma-sieve`).

pub mod client;
pub mod error;
pub mod response;

pub use client::{Client, Config, DEFAULT_PORT, Login, Security};
pub use error::{SieveError, Step};
pub use response::{Capabilities, Limits, ResponseCode, ScriptEntry, Status};
