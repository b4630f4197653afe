//! `bma-imap`: an async IMAP4rev1 client tuned for bulk copy.
//!
//! Invariant: it knows nothing of campaigns. It speaks IMAP to one server
//! per [`Client`]; the copy engine (`bma-sync`) decides what to copy.
//!
//! # What it does
//!
//! - Connect over plain TCP, STARTTLS (required when asked) or implicit TLS
//!   (rustls, certificates verified against the Mozilla roots unless
//!   [`Config::insecure`]); connect and I/O timeouts.
//! - Log in with LOGIN, AUTHENTICATE PLAIN (with an authorization identity:
//!   a master user acting for a user; SASL-IR when offered) or XOAUTH2.
//!   Secrets are [`Secret`]s: never in `Debug` output or logs.
//! - CAPABILITY, ENABLE (CONDSTORE, QRESYNC), NAMESPACE, LIST with
//!   special-use and subscriptions, SELECT/EXAMINE, STATUS, CREATE, DELETE,
//!   (UN)SUBSCRIBE, UID STORE, UID EXPUNGE, NOOP, LOGOUT.
//! - Streamed UID FETCH of metadata ([`MetaStream`]) and of whole messages
//!   ([`BodyStream`]): one command, messages consumed as they arrive.
//! - QRESYNC (RFC 7162): [`Client::examine_qresync`] and
//!   [`Client::fetch_changes`] tell which UIDs vanished and which messages
//!   changed since a known UIDVALIDITY and HIGHESTMODSEQ, without listing
//!   every message.
//! - Server URLs ([`ImapUrl`]: `imap://`, `imaps://`, `[IPv6]:port`, a user)
//!   and password files ([`Secret::read_file`]) read here, once for every caller.
//! - Pipelined APPEND ([`AppendPipeline`]) with LITERAL+, APPENDUID, and
//!   refusals as typed errors ([`Error::OverQuota`], [`Error::TooBig`],
//!   [`Error::Throttled`], [`Error::Unavailable`], [`Error::TryCreate`]).
//!
//! # Why a hand-written codec
//!
//! `imap-codec` (2.0 is still alpha; 1.x has the same model) parses a
//! response only once it is entirely in its buffer, then builds an owned AST:
//! a FETCH of a 40 MB message is buffered whole, then copied into the AST, and
//! `imap-next` adds its own buffering on top. There is no way to hand a
//! literal's bytes to the caller without that. Bulk copy needs the opposite:
//! each literal read once, straight into a buffer of its exact size, and
//! moved (not copied) to the caller. The grammar a copy client needs is
//! small (status responses and codes, CAPABILITY, LIST, STATUS, NAMESPACE,
//! FETCH items), so the `codec` module is ~500 lines with table-driven
//! tests, including literals split at every possible read boundary.
//!
//! # Buffering and pipelining
//!
//! - Reads go through one 64 KiB buffer; a literal remainder of 16 KiB or
//!   more is read directly into the message's own `Vec` (allocated once with
//!   the announced size), so a big message costs its size once.
//! - [`Client::fetch_bodies`] sends one `UID FETCH set BODY.PEEK[]`; the
//!   server streams, TCP flow control bounds what is in flight, and the
//!   caller holds at most the message it is working on.
//! - [`AppendPipeline`] keeps up to [`Config::append_depth`] APPENDs in
//!   flight when the server has LITERAL+ (each APPEND written in one
//!   `write` when small, header then body when big); without LITERAL+ it
//!   waits for each continuation, one at a time.
//! - [`MultiAppendPipeline`] streams messages into MULTIAPPEND commands
//!   (each message written as it comes, never a batch held in memory), up
//!   to two commands in flight.
//! - Tags are `A1`, `A2`, ... unique per connection. A stream or pipeline
//!   dropped early leaves its tags to the client, which reads their
//!   completions away before the next command.
//!
//! # What Dovecot 2.3 does (measured on the lab)
//!
//! - A bare LF in an appended message is served back as CRLF (maildir
//!   stores LF, IMAP output is CRLF); 8-bit bytes and bare CR come back as
//!   sent. RFC822.SIZE and `STATUS SIZE` count CRLF.
//! - An APPEND announced too big for the quota is refused with
//!   `[OVERQUOTA]` before the continuation, hence
//!   [`Config::sync_literal_above`].
//! - One APPEND at a time costs ~15 ms per message on the server: each
//!   APPEND is its own transaction (with `mail_fsync = optimized`: fsync of
//!   the message file, of the maildir and of `dovecot-uidlist`, plus the
//!   index updates under their locks). [`MultiAppendPipeline`] (RFC 3502)
//!   puts many messages in one transaction: one fsync per message, the rest
//!   once per batch.
//!
//! # Modules
//!
//! - [`client`] has [`Client`], one module per kind of command: the
//!   connection ([`Config`]), [`Auth`], mailbox commands, the fetch streams,
//!   APPEND and MULTIAPPEND (one in-flight type for both pipelines), and
//!   [`client::qresync`] ([`QresyncParams`], [`QresyncChanges`]).
//! - `codec` (private) reads and parses responses.
//! - [`mutf7`] has modified UTF-7 and [`MailboxName`].
//! - [`types`] has flags, dates, UID sets, capabilities, response codes, results.
//! - [`error`] has [`Error`].
//! - [`secret`] has [`Secret`] and the reading of a password file.
//! - [`url`] has [`ImapUrl`]: `imap://` and `imaps://` URLs parsed once for every caller.

pub mod client;
mod codec;
pub mod error;
pub mod mutf7;
pub mod secret;
mod transport;
pub mod types;
pub mod url;

pub use client::qresync::{QresyncChanges, QresyncParams};
pub use client::{
    AppendDone, AppendMessage, AppendPipeline, Auth, BatchDone, BodyStream, Client, Config, MailboxCommand, MetaStream,
    MultiAppendPipeline, Security, StoreMode,
};
pub use error::{Error, Result, Step};
pub use mutf7::MailboxName;
pub use secret::{Secret, SecretFileError};
pub use transport::{TlsRoots, tls_connector};
pub use types::{
    AppendUid, Capabilities, FetchedMessage, Flag, InternalDate, MailboxInfo, MessageCheck, MessageMeta, Namespace,
    Namespaces, Quota, ResponseCode, SelectInfo, SpecialUse, StatusInfo, UidSet,
};
pub use url::{ImapUrl, UrlError};
