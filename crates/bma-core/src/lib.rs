//! `bma-core`: the domain of a mailbox migration campaign.
//!
//! Invariant: no I/O, no async, no SQL, no HTTP. Everything here is pure
//! logic over values, so that it is tested with fast unit tests and used
//! alike by the store, the CLI, the web portal and simulations.
//!
//! - [`address`]: validated mailbox addresses (`ecNNNNNN@adm.cfwb.be`), FASE numbers.
//! - [`lifecycle`]: the states of a mailbox and the legal transitions between them.
//! - [`registry`]: parsing of the registry exports (CSV, Excel flavours) and the
//!   diff of an import against what is already known.
//! - [`csv_cell`]: cells of the CSV files we write, neutralised for spreadsheets.
//! - [`form`]: the manager's enrolment form and its rules (names, phone, role, backup address).
//! - [`settings`]: the campaign's settings and their semantic validation.
//! - [`contact`]: whom a manager or the helpdesk should contact, by phase.
//! - [`planner`]: invitation waves; [`cutover`]: cutover slots; [`switch`]: the steps of one mailbox's cutover.
//! - [`job`]: the kinds of the engine's jobs, a closed set.
//! - [`simulate`]: a whole campaign on modelled behaviour, week by week.
//! - [`event`]: the kinds of the event log's entries; [`attention`]: why a mailbox needs a human.
//! - [`clock`]: injected time.
//! - [`staff`]: the console's roles and actions, and who may take which; [`search`]: finding a caller.

pub mod address;
pub mod attention;
pub mod clock;
pub mod contact;
pub mod csv_cell;
pub mod cutover;
pub mod event;
pub mod form;
pub mod job;
pub mod lifecycle;
mod named;
pub mod planner;
pub mod registry;
pub mod search;
pub mod settings;
pub mod simulate;
pub mod staff;
pub mod switch;
pub mod token;

pub use address::{Address, AddressError, AddressRule, Fase, MailboxKind};
pub use attention::AttentionReason;
pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{EventKind, PresyncDetails};
pub use lifecycle::{Actor, IllegalTransition, State};
pub use token::TokenHash;
