//! Writing a [`Plan`] in the caller's transaction.

use sqlx::AnyConnection;

use super::scrub::Plan;
use super::{ERASED, ERASED_ADDRESS};
use crate::StoreError;

/// Writes `plan` in the caller's transaction; a row that moved since it
/// was read (an email claimed by a sender) is a conflict.
pub(super) async fn apply(conn: &mut AnyConnection, plan: &Plan, what: &str) -> Result<(), StoreError> {
    for f in plan.forms.iter().filter(|f| !f.erased()) {
        sqlx::query(
            "UPDATE enrollments SET family_name = $1, given_name = $1, phone = $1, backup_email = $2, \
             id_subject = $1, id_name = $1, id_given_name = $1, id_family_name = $1, id_email = $2 WHERE id = $3",
        )
        .bind(ERASED)
        .bind(ERASED_ADDRESS)
        .bind(f.id)
        .execute(&mut *conn)
        .await?;
    }
    for v in &plan.verifications {
        sqlx::query("DELETE FROM backup_verifications WHERE id = $1").bind(v.id).execute(&mut *conn).await?;
    }
    for s in &plan.sessions {
        sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
            .bind(s.id_hash.clone())
            .execute(&mut *conn)
            .await?;
    }
    for (row, change) in &plan.emails {
        if row.state == "sending" {
            return Err(StoreError::Conflict(format!("{what}: email {} is being sent", row.id)));
        }
        let Some(c) = change else { continue };
        let done = sqlx::query(
            "UPDATE outbox SET state = $1, key = $2, recipient = $3, envelope_from = $4, subject = $5, raw = $6, \
             last_error = $7, lease_owner = NULL, lease_until = NULL WHERE id = $8 AND state = $9",
        )
        .bind(c.state.clone())
        .bind(c.key.clone())
        .bind(c.recipient.clone())
        .bind(c.envelope_from.clone())
        .bind(c.subject.clone())
        .bind(c.raw.clone())
        .bind(c.last_error.clone())
        .bind(c.id)
        .bind(c.was.clone())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("{what}: email {} changed meanwhile", c.id)));
        }
    }
    for (_, c) in &plan.events {
        sqlx::query("UPDATE events SET actor = $1, reason = $2, details = $3 WHERE id = $4")
            .bind(c.actor.clone())
            .bind(c.reason.clone())
            .bind(c.details.clone())
            .bind(c.id)
            .execute(&mut *conn)
            .await?;
    }
    super::staff::delete(conn, &plan.staff_sessions, plan.staff_views_of.map(|(id, _)| id)).await?;
    Ok(())
}

/// Takes SQLite's write lock at the start of a transaction (a no-op
/// statement on PostgreSQL), so what is read is not stale when written.
pub(super) async fn write_lock(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *conn).await?;
    Ok(())
}
