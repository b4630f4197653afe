//! The one way a row of the event log is written, inside the caller's
//! transaction, and the one way a mailbox is read for a change.
//!
//! Every state change of the store writes its new state and its event in
//! the same transaction; [`record`] is the event half, [`lock_mailbox`] the
//! read that starts such a transaction (on SQLite it takes the writer lock
//! first, so the state read cannot be stale by the time it is written).

use bma_core::lifecycle::State;
use sqlx::{AnyConnection, Row};

use crate::StoreError;
use crate::mailbox::parse_state;

/// An event to write.
#[derive(Debug)]
pub(crate) struct Event<'a> {
    /// The mailbox, or none for an event of the campaign as a whole.
    pub mailbox_id: Option<i64>,
    /// `transition`, `email_sent`, `reminder_queued`, `campaign_start`, …
    pub kind: &'a str,
    /// State before, for transitions.
    pub from: Option<State>,
    /// State after, for transitions.
    pub to: Option<State>,
    /// Why, in words.
    pub reason: &'a str,
    /// Structured details.
    pub details: serde_json::Value,
}

impl<'a> Event<'a> {
    /// A transition of a mailbox from one state to another.
    pub fn transition(id: i64, from: State, to: State, reason: &'a str, details: serde_json::Value) -> Event<'a> {
        Event { mailbox_id: Some(id), kind: "transition", from: Some(from), to: Some(to), reason, details }
    }

    /// Anything else that happened (to a mailbox, or to the campaign when `None`).
    pub fn note(mailbox_id: Option<i64>, kind: &'a str, reason: &'a str, details: serde_json::Value) -> Event<'a> {
        Event { mailbox_id, kind, from: None, to: None, reason, details }
    }
}

/// Writes `event` at `at_ms` (Unix milliseconds) by `actor` (its text form).
pub(crate) async fn record(
    conn: &mut AnyConnection,
    at_ms: i64,
    actor: &str,
    event: Event<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (mailbox_id, at, actor, kind, from_state, to_state, reason, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event.mailbox_id)
    .bind(at_ms)
    .bind(actor.to_owned())
    .bind(event.kind.to_owned())
    .bind(event.from.map(State::as_str))
    .bind(event.to.map(State::as_str))
    .bind(event.reason.to_owned())
    .bind(event.details.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// The id and state of the mailbox `address` (lower-cased), read at the
/// start of a change; `NotFound` when there is none.
pub(crate) async fn lock_mailbox(conn: &mut AnyConnection, address: &str) -> Result<(i64, State), StoreError> {
    sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *conn).await?;
    let row = sqlx::query("SELECT id, state FROM mailboxes WHERE address = $1")
        .bind(address.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(address.to_owned()))?;
    Ok((row.try_get("id")?, parse_state(&row.try_get::<String, _>("state")?)?))
}
