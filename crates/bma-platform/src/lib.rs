//! `bma-platform`: what `bma` changes on the mail platforms themselves, as
//! opposed to what it copies between their mailboxes (`bma-sync`).
//!
//! A cutover needs three things of the platforms beyond IMAP: the legacy
//! account as it is (does it exist, which password hash in which scheme),
//! the same account created on the new platform (the hash carried byte for
//! byte, so that "le mot de passe ne change pas", a larger quota, logins
//! allowed or refused with a French reason), and where the relay sends mail
//! for one recipient (the legacy platform, the new one, or held in the
//! relay's queue while the last messages are copied). Those are two small
//! traits, [`Accounts`] and [`Routing`], so that a platform we cannot run
//! here (Microsoft 365 through Graph) is one more
//! implementation and the engine does not change.
//!
//! - [`hash`]: password hashes and their schemes (which ones the new
//!   platform should accept, which ones are too weak to carry);
//! - [`password`]: new passwords (words of a French list drawn by the
//!   operating system's CSPRNG) and their hashes;
//! - [`route`]: where a recipient's mail goes;
//! - [`relay`]: the Postfix that routes mail, and its own lookup of a route;
//! - [`files`]: the implementation on files, as Dovecot's `passwd-file`
//!   and Postfix's `transport_maps` read them;
//! - [`ldap`]: the implementation in an LDAP directory, as Dovecot's `ldap`
//!   passdb and userdb and Postfix's `ldap:` tables read it;
//! - [`managesieve`]: a ManageSieve client (RFC 5804), a mailbox's Sieve
//!   scripts read and written on its server.
//!
//! Rules: this crate knows nothing of campaigns, mailboxes' states or the
//! store (the same rule as `bma-imap`); a change is written whole or not at
//! all (a new file renamed over the old one, under a lock shared by every
//! process that writes it); a write is confirmed by reading back what the
//! platform will read (the relay's own lookup of its table) before it is
//! reported done; clear passwords are [`bma_imap::Secret`]s, never logged,
//! and only their hashes are written.

pub mod accounts;
pub mod error;
pub mod files;
pub mod hash;
pub mod ldap;
pub mod managesieve;
pub mod password;
pub mod relay;
pub mod route;
pub mod routing;
mod words;

pub use accounts::{Account, Accounts, Login, NewAccount};
pub use error::PlatformError;
pub use hash::{PasswordHash, Scheme};
pub use relay::{Relay, Transports};
pub use route::Route;
pub use routing::Routing;
