//! The integration tests of bma, one binary with a module per subject
//! (one link instead of twenty, and one place to look).
//!
//! Most need the lab: `cargo xtask lab up && cargo xtask lab seed` (or
//! `cargo xtask test`, which does both). Store and CLI tests run on SQLite
//! and on PostgreSQL; the shared harness (test databases, the `bma`
//! binary, the lab's mailboxes, the WebDriver client, the portal's
//! harness) is the `bma-tests` library in `crates/bma-tests/src`.
//!
//! Run one subject with `cargo nextest run -p bma-tests -E 'test(/^portal::/)'`.

mod autoconfig;
mod campaign;
mod campaign_crash;
mod cli;
mod console;
mod console_e2e;
mod cutover;
mod cutover_crash;
mod cutover_inline;
mod cutover_limits;
mod cutover_password;
mod cutover_probe;
mod cutover_refusal;
mod cutover_sieve;
mod dashboard;
mod doctor_autoconfig;
mod figures;
mod forwarding;
mod forwarding_mail1;
mod imap;
mod jobs;
mod lab;
mod links;
mod logs;
mod mail;
mod metrics;
mod outbox;
mod outbox_workers;
mod portal;
mod portal_e2e;
mod presync_altered;
mod presync_unknown;
mod privacy;
mod qresync;
mod scheduler_lock;
mod sieve_policy;
mod store;
mod sync;
mod sync_limits;
mod sync_matrix;
mod sync_oauth;
mod tidy;
mod trust;
