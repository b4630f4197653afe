//! [`Client`]: one IMAP connection, its commands, and the streaming and
//! pipelined operations of bulk copy ([`MetaStream`], [`BodyStream`],
//! [`AppendPipeline`], [`MultiAppendPipeline`]).
//!
//! One task drives a connection: every method takes `&mut self`, so nothing
//! interleaves but what the client itself pipelines. A stream or pipeline
//! dropped before its end leaves its tags to the client, which reads their
//! completions away before the next command.
//!
//! # Modules, one per kind of command
//!
//! - `connection`: [`Config`], [`Security`], connecting, and the command
//!   machinery the others use (tags, writes, responses, literals, completion).
//! - `auth`: [`Auth`], LOGIN / AUTHENTICATE, ENABLE.
//! - `mailbox`: LIST, NAMESPACE, SELECT/EXAMINE, STATUS, CREATE, SUBSCRIBE,
//!   ... ([`MailboxCommand`]), UID STORE ([`StoreMode`]), EXPUNGE.
//! - `fetch`: the streamed UID FETCHes.
//! - `append`: APPEND and MULTIAPPEND, one in-flight type for both pipelines.
//! - [`qresync`]: QRESYNC (RFC 7162).
//!
//! Rules: the command machinery is `pub(super)`, for these modules only;
//! the crate's API is what this module re-exports.

mod append;
mod auth;
mod connection;
mod fetch;
mod mailbox;
pub mod qresync;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use crate::codec::{Reader, Status, Value};
use crate::error::{Error, Result};
use crate::transport::Transport;
use crate::types::{Capabilities, Flag, ResponseCode, UidSet};

pub use append::{AppendDone, AppendMessage, AppendPipeline, BatchDone, MultiAppendPipeline, Pipeline};
pub use auth::Auth;
pub use connection::{Config, Security};
pub use fetch::{BodyStream, MetaStream};
pub use mailbox::{MailboxCommand, StoreMode};

/// The completion of a command.
#[derive(Debug)]
struct Completion {
    status: Status,
    code: Option<ResponseCode>,
    text: String,
}

impl Completion {
    fn into_result(self, command: &'static str) -> Result<Completion> {
        match self.status {
            Status::Ok => Ok(self),
            Status::No => Err(Error::from_no(command, self.code, self.text)),
            _ => Err(Error::Bad { command, code: self.code, text: self.text }),
        }
    }
}

/// A piece of a command: text, or a string sent as a literal.
enum Part<'a> {
    Text(Vec<u8>),
    Literal(&'a [u8]),
}

/// One IMAP connection.
pub struct Client {
    stream: Transport,
    reader: Reader,
    config: Config,
    caps: Capabilities,
    enabled: BTreeSet<String>,
    next_tag: u64,
    /// Tags of commands sent and not completed whose results nobody waits for.
    abandoned: Vec<String>,
    /// A command was left half-written: the connection cannot be used.
    broken: bool,
    /// The text of a BYE, once received.
    bye: Option<String>,
    /// Incremented whenever the server tells its capabilities.
    caps_seen: u64,
    /// Untagged EXISTS seen last.
    exists: Option<u32>,
    wbuf: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("tls", &self.stream.is_tls())
            .field("next_tag", &self.next_tag)
            .finish_non_exhaustive()
    }
}

pub(super) fn non_empty(uids: &UidSet) -> Result<()> {
    if uids.is_empty() { Err(Error::InvalidArgument("empty UID set".into())) } else { Ok(()) }
}

pub(super) fn flag_list(flags: &[Flag]) -> String {
    flags.iter().filter(|f| f.settable()).map(Flag::as_str).collect::<Vec<_>>().join(" ")
}

pub(super) fn flags_of(v: Option<&Value>) -> Vec<Flag> {
    v.and_then(Value::as_list).unwrap_or(&[]).iter().filter_map(Value::as_str).map(Flag::parse).collect()
}
