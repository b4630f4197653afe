//! The one way a row of the event log is written, inside the caller's
//! transaction, and the one way a mailbox is read for a change.
//!
//! Every state change of the store writes its new state and its event in
//! the same transaction; [`record`] (one event) and [`record_many`] (a
//! batch, as multi-row statements) are the event half and the only
//! `INSERT INTO events` of the crate; [`lock_mailbox`] is the read that
//! starts such a transaction (on SQLite it takes the writer lock first, so
//! the state read cannot be stale by the time it is written). The state
//! half is [`crate::transition`].

use bma_core::lifecycle::State;
use bma_core::{Address, EventKind};
use sqlx::{AnyConnection, Row};

use crate::StoreError;
use crate::mailbox::parse_state;

/// An event to write.
#[derive(Debug)]
pub(crate) struct Event<'a> {
    /// The mailbox, or none for an event of the campaign as a whole.
    pub mailbox_id: Option<i64>,
    /// What happened.
    pub kind: EventKind,
    /// State before, for transitions.
    pub from: Option<State>,
    /// State after, for transitions (and a mailbox's creation).
    pub to: Option<State>,
    /// Why, in words.
    pub reason: &'a str,
    /// Structured details.
    pub details: serde_json::Value,
}

impl<'a> Event<'a> {
    /// A transition of a mailbox from one state to another (written by
    /// [`crate::transition::apply`], never alone).
    pub(crate) fn transition(
        id: i64,
        from: State,
        to: State,
        reason: &'a str,
        details: serde_json::Value,
    ) -> Event<'a> {
        Event { mailbox_id: Some(id), kind: EventKind::Transition, from: Some(from), to: Some(to), reason, details }
    }

    /// Anything else that happened (to a mailbox, or to the campaign when `None`).
    pub fn note(mailbox_id: Option<i64>, kind: EventKind, reason: &'a str, details: serde_json::Value) -> Event<'a> {
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
    record_many(conn, at_ms, actor, std::slice::from_ref(&event)).await
}

/// Writes `events`, all at `at_ms` by `actor`, with one multi-row
/// statement per [`crate::CHUNK`] events (an import of thousands of
/// mailboxes is not thousands of round trips).
pub(crate) async fn record_many(
    conn: &mut AnyConnection,
    at_ms: i64,
    actor: &str,
    events: &[Event<'_>],
) -> Result<(), StoreError> {
    for chunk in events.chunks(crate::CHUNK) {
        let sql = format!(
            "INSERT INTO events (mailbox_id, at, actor, kind, from_state, to_state, reason, details) VALUES {}",
            crate::values_placeholders(chunk.len(), 8)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in chunk {
            q = q
                .bind(event.mailbox_id)
                .bind(at_ms)
                .bind(actor.to_owned())
                .bind(event.kind.as_str())
                .bind(event.from.map(State::as_str))
                .bind(event.to.map(State::as_str))
                .bind(event.reason.to_owned())
                .bind(event.details.to_string());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The id and state of the mailbox `address`, read at the start of a
/// change; `NotFound` when there is none.
pub(crate) async fn lock_mailbox(conn: &mut AnyConnection, address: &Address) -> Result<(i64, State), StoreError> {
    sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *conn).await?;
    let row = sqlx::query("SELECT id, state FROM mailboxes WHERE address = $1")
        .bind(address.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(address.to_string()))?;
    Ok((row.try_get("id")?, parse_state(&row.try_get::<String, _>("state")?)?))
}

/// Writes a note (an event that is not a transition) at `at` by `actor`.
pub(crate) async fn note(
    conn: &mut AnyConnection,
    mailbox_id: Option<i64>,
    at: time::OffsetDateTime,
    actor: &bma_core::Actor,
    kind: EventKind,
    reason: &str,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    record(conn, crate::to_millis(at), &actor.to_text(), Event::note(mailbox_id, kind, reason, details)).await
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreError};

    /// A kind this build does not know, read back: a typed error, not a string passed on.
    #[tokio::test]
    async fn an_unknown_kind_read_back_is_a_typed_error() {
        let store = Store::open("sqlite::memory:").await.expect("a store");
        sqlx::query(
            "INSERT INTO events (mailbox_id, at, actor, kind, from_state, to_state, reason, details) \
             VALUES (NULL, 0, 'system:test', 'teleported', NULL, NULL, '', '{}')",
        )
        .execute(store.pool())
        .await
        .expect("an event");
        let err = store.campaign_events(10).await.expect_err("an unknown kind");
        assert!(matches!(&err, StoreError::UnknownEventKind(k) if k.0 == "teleported"), "{err:?}");
    }
}
