//! The one way `mailboxes.state` changes: [`apply`] checks the lifecycle's
//! rule (`bma_core::lifecycle::check_transition`), writes the new state
//! with a conditional UPDATE (`… WHERE id = $ AND state = $from`, so a
//! concurrent change is a [`StoreError::Conflict`], never overwritten) and
//! records its event through [`crate::events::record`], in the caller's
//! transaction.
//!
//! Rules: this module holds the crate's only `UPDATE mailboxes SET state`;
//! a refused transition writes nothing; what else a change writes on the
//! row (its wave, its cutover day, when it was invited, its helpdesk flag)
//! is said by [`Also`], a closed set of columns, never SQL from the caller.

use bma_core::AttentionReason;
use bma_core::lifecycle::{self, State};
use sqlx::AnyConnection;
use time::Date;

use crate::StoreError;
use crate::events::{Event, record};

/// A change of state to write.
#[derive(Debug)]
pub(crate) struct Transition<'a> {
    /// The mailbox.
    pub mailbox_id: i64,
    /// Its address, for errors.
    pub address: &'a str,
    /// The state it is in (read at the start of the transaction).
    pub from: State,
    /// When `from` is `blocked`: the state it was blocked in.
    pub blocked_from: Option<State>,
    /// The state it moves to.
    pub to: State,
    /// Why, in words (the event's reason).
    pub reason: &'a str,
    /// The event's details.
    pub details: serde_json::Value,
}

/// What else the change writes on the mailbox's row.
impl<'a> Transition<'a> {
    /// A move of a mailbox that is not blocked, with `details`.
    pub(crate) fn of(
        mailbox_id: i64,
        address: &'a str,
        (from, to): (State, State),
        reason: &'a str,
        details: serde_json::Value,
    ) -> Transition<'a> {
        Transition { mailbox_id, address, from, blocked_from: None, to, reason, details }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Also {
    /// Its invitation wave.
    pub wave: Option<Date>,
    /// Its cutover day.
    pub cutover_on: Option<Date>,
    /// Mail 1 left now (`invited_at`).
    pub invited: bool,
    /// Its helpdesk flag.
    pub attention: Option<Flag>,
}

/// A change of the helpdesk flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flag {
    /// Flagged now for this reason.
    Raise(AttentionReason),
    /// No longer flagged.
    Clear,
}

/// Moves the mailbox (see the module doc) at `at_ms` by `actor`. Beside
/// the state: `blocked_from` is the state left when blocking and cleared
/// otherwise, the wave is cleared when it goes back to `imported`.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    at_ms: i64,
    actor: &str,
    change: Transition<'_>,
    also: Also,
) -> Result<(), StoreError> {
    let Transition { mailbox_id, address, from, blocked_from, to, reason, details } = change;
    lifecycle::check_transition(from, to, blocked_from)
        .map_err(|why| StoreError::Illegal { address: address.to_owned(), why })?;
    let (flag_set, flag, flag_at) = match also.attention {
        None => (0_i64, None, None),
        Some(Flag::Raise(reason)) => (1, Some(reason.as_str()), Some(at_ms)),
        Some(Flag::Clear) => (1, None, None),
    };
    let done = sqlx::query(
        "UPDATE mailboxes SET state = $1, blocked_from = $2, updated_at = $3, \
         wave = CASE WHEN $1 = 'imported' THEN NULL ELSE COALESCE($4, wave) END, \
         cutover_on = COALESCE($5, cutover_on), \
         invited_at = CASE WHEN $6 = 1 THEN $3 ELSE invited_at END, \
         attention = CASE WHEN $7 = 1 THEN $8 ELSE attention END, \
         attention_at = CASE WHEN $7 = 1 THEN $9 ELSE attention_at END \
         WHERE id = $10 AND state = $11",
    )
    .bind(to.as_str())
    .bind((to == State::Blocked).then(|| from.as_str()))
    .bind(at_ms)
    .bind(also.wave.map(|d| d.to_string()))
    .bind(also.cutover_on.map(|d| d.to_string()))
    .bind(i64::from(also.invited))
    .bind(flag_set)
    .bind(flag)
    .bind(flag_at)
    .bind(mailbox_id)
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict(address.to_owned()));
    }
    record(conn, at_ms, actor, Event::transition(mailbox_id, from, to, reason, details)).await
}
