//! `bma-mail`: the campaign's emails.
//!
//! - [`templates`]: the French templates (mail 1, reminders, confirmation),
//!   built in and overridable by editable files, rendered strictly (a
//!   variable missing from the context is an error, never an empty hole);
//! - [`message`]: RFC 5322 messages (text and HTML alternatives, our own
//!   Message-ID) and VERP return paths, so that a bounce names its mailbox;
//! - [`compose`]: one call from a template kind, a recipient and a context
//!   to a message ready for the outbox (Message-ID, VERP return path);
//! - [`smtp`]: sending to the configured relay;
//! - [`dsn`]: delivery status notifications from the bounce mailbox;
//! - [`inspect`]: a message read back as a person's mail client shows it
//!   (header fields decoded, text and HTML parts decoded).
//!
//! Invariant: emails leave only through the campaign's outbox; this crate
//! renders and transmits, the store decides what is sent and records it.

pub mod compose;
pub mod dsn;
pub mod inspect;
pub mod message;
pub mod smtp;
pub mod templates;

pub use compose::{ComposeError, Composer, Outgoing, Sender, To};
pub use message::{BuildError, Envelope, OutgoingEmail, parse_verp, verp};
pub use smtp::{SendError, SmtpConfig, SmtpSender, SmtpTls};
pub use templates::{Rendered, TemplateError, TemplateKind, Templates};
