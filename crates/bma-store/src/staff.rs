//! The helpdesk console's side of the store: staff sessions, the log of
//! who looked at whose mailbox, call notes, and the rows the caller search
//! is built from.
//!
//! Invariants:
//! - staff sessions are their own table (`staff_sessions`), never a
//!   manager's: a manager's session cookie opens nothing in the console
//!   and the reverse; like the portal's, a session is stored under the
//!   SHA-256 of its id, carries its CSRF token, and a login in progress
//!   is taken once;
//! - the role is stored as the closed set [`Role`], decided at login;
//! - every time a member of staff opens a mailbox's personal data, one
//!   `staff_views` row says who, whose and when (GDPR: who looked at whom);
//! - a call note is one event ([`EventKind::CallNote`]) and changes nothing else;
//! - the search rows are read whole or, after an event id, only for the
//!   mailboxes that have had an event since: every change of a name the
//!   search knows (import, form) writes an event, so the console's index
//!   stays current by reading only what changed.

use bma_core::staff::Role;
use bma_core::{Actor, Address, EventKind, TokenHash};
use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::events::{lock_mailbox, note};
use crate::mailbox::{parse_date, parse_state};
use crate::{Store, StoreError, from_millis, to_millis};

/// A member of staff, as their login said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffIdentity {
    /// The identity provider's subject.
    pub subject: String,
    /// Full name.
    pub name: String,
    /// Email.
    pub email: String,
    /// The role decided at login.
    pub role: Role,
}

/// A console session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSession {
    /// The CSRF token of its forms.
    pub csrf: String,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// The login in progress (provider-specific, opaque here).
    pub login_pending: Option<String>,
    /// Who is logged in.
    pub staff: Option<StaffIdentity>,
}

/// A login that succeeded: the session it replaces and the new one.
#[derive(Debug, Clone, Copy)]
pub struct StaffLogin<'a> {
    /// The hash of the session the login started in (deleted).
    pub old_id_hash: &'a TokenHash,
    /// The hash of the new session's id.
    pub new_id_hash: &'a TokenHash,
    /// The new session's CSRF token.
    pub csrf: &'a str,
    /// Who, with their role.
    pub staff: &'a StaffIdentity,
    /// The ID token, the hint of the logout.
    pub id_token: Option<&'a str>,
    /// When the new session stops working.
    pub expires_at: OffsetDateTime,
}

/// One look at a mailbox's personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffView {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who (subject).
    pub subject: String,
    /// Who (name).
    pub name: String,
}

/// A mailbox as the caller search sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRow {
    /// Store id.
    pub id: i64,
    /// Address.
    pub address: String,
    /// FASE number.
    pub fase: u32,
    /// Establishment name.
    pub name: String,
    /// Lifecycle state.
    pub state: bma_core::State,
    /// The invitation wave.
    pub wave: Option<time::Date>,
    /// The names of the people of its latest form (manager, identity), if any.
    pub people: Vec<String>,
}

/// A view as [`Store::staff_views`] reads it (`at`, `subject`, `name`).
pub(crate) fn view_from_row(r: &impl crate::cols::Cols) -> Result<StaffView, StoreError> {
    Ok(StaffView { at: from_millis(r.int("at")?), subject: r.text("subject")?, name: r.text("name")? })
}

impl Store {
    /// Records a new console session, with a login in progress.
    pub async fn create_staff_session(
        &self,
        id_hash: &TokenHash,
        csrf: &str,
        login_pending: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO staff_sessions (id_hash, csrf, created_at, expires_at, login_pending) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash.as_str())
        .bind(csrf.to_owned())
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .bind(login_pending.to_owned())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The console session with this id hash, unless it has expired.
    pub async fn staff_session(
        &self,
        id_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<StaffSession>, StoreError> {
        let row = sqlx::query(
            "SELECT csrf, expires_at, login_pending, subject, name, email, role FROM staff_sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash.as_str())
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let subject: Option<String> = r.try_get("subject")?;
        let staff = match subject {
            Some(subject) => {
                let role: String = r.try_get::<Option<String>, _>("role")?.unwrap_or_default();
                Some(StaffIdentity {
                    subject,
                    name: r.try_get::<Option<String>, _>("name")?.unwrap_or_default(),
                    email: r.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
                    role: Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            }
            None => None,
        };
        Ok(Some(StaffSession {
            csrf: r.try_get("csrf")?,
            expires_at: from_millis(r.try_get("expires_at")?),
            login_pending: r.try_get("login_pending")?,
            staff,
        }))
    }

    /// Takes the login in progress of a console session (it can be used once).
    pub async fn take_staff_login_pending(&self, id_hash: &TokenHash) -> Result<Option<String>, StoreError> {
        crate::portal_session::take_pending(self, crate::portal_session::SessionTable::Staff, id_hash).await
    }

    /// Replaces a console session by a logged-in one under a new id (no
    /// fixation), with the ID token (the hint of its logout).
    pub async fn login_staff_session(&self, login: &StaffLogin<'_>, now: OffsetDateTime) -> Result<(), StoreError> {
        let StaffLogin { old_id_hash, new_id_hash, csrf, staff, id_token, expires_at } = *login;
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM staff_sessions WHERE id_hash = $1")
            .bind(old_id_hash.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO staff_sessions (id_hash, csrf, created_at, expires_at, subject, name, email, role, id_token) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id_hash.as_str())
        .bind(csrf.to_owned())
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .bind(staff.subject.clone())
        .bind(staff.name.clone())
        .bind(staff.email.clone())
        .bind(staff.role.as_str())
        .bind(id_token.map(str::to_owned))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a console session; returns its ID token, if it had one.
    pub async fn end_staff_session(&self, id_hash: &TokenHash) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let token: Option<Option<String>> =
            sqlx::query_scalar("SELECT id_token FROM staff_sessions WHERE id_hash = $1")
                .bind(id_hash.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM staff_sessions WHERE id_hash = $1").bind(id_hash.as_str()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(token.flatten())
    }

    /// Deletes expired console sessions; returns how many.
    pub async fn purge_staff_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1")
            .bind(to_millis(now))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Records that `staff` opened the personal data of mailbox `mailbox_id`;
    /// returns once the row is committed (views at the same time share one
    /// statement: [`crate::view_log`]).
    pub async fn record_staff_view(
        &self,
        staff: &StaffIdentity,
        mailbox_id: i64,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let view = crate::view_log::View {
            at: to_millis(now),
            subject: staff.subject.clone(),
            name: staff.name.clone(),
            mailbox_id,
        };
        crate::view_log::ViewLog::record(self, view).await
    }

    /// Who opened mailbox `mailbox_id`'s personal data, latest first.
    pub async fn staff_views(&self, mailbox_id: i64, limit: i64) -> Result<Vec<StaffView>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, subject, name FROM staff_views WHERE mailbox_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(mailbox_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(view_from_row).collect()
    }

    /// Records a call about a mailbox: one event, nothing else changes.
    pub async fn note_call(
        &self,
        address: &Address,
        actor: &Actor,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, _) = lock_mailbox(&mut tx, address).await?;
        note(&mut tx, Some(id), at, actor, EventKind::CallNote, reason, serde_json::json!({ "via": "console" }))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues `job` for mailbox `address` at the request of staff, with a
    /// `kind` event saying who asked and why, in one transaction. Returns
    /// the job's id and whether it was queued now.
    pub async fn request_job(
        &self,
        job: &crate::NewJob,
        address: &Address,
        kind: EventKind,
        actor: &Actor,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<(i64, bool), StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, _) = lock_mailbox(&mut tx, address).await?;
        let queued = crate::jobs::enqueue_on(&mut tx, job, at).await?;
        let details = serde_json::json!({ "via": "console", "job": queued.0, "kind": job.kind.as_str() });
        note(&mut tx, Some(id), at, actor, kind, reason, details).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// The id of the latest event (0 when none): what a search index
    /// built now has seen.
    pub async fn latest_event_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events").fetch_one(self.pool()).await?;
        Ok(id.unwrap_or(0))
    }

    /// The search rows of every mailbox (`after` = `None`), or only of the
    /// mailboxes with an event after event id `after`; by address.
    pub async fn search_rows(&self, after: Option<i64>) -> Result<Vec<SearchRow>, StoreError> {
        let filter = if after.is_some() {
            "WHERE m.id IN (SELECT DISTINCT mailbox_id FROM events WHERE id > $1 AND mailbox_id IS NOT NULL)"
        } else {
            "WHERE $1 = $1"
        };
        let sql = format!(
            "SELECT m.id, m.address, m.fase, m.name, m.state, m.wave, e.given_name, e.family_name, e.id_name \
             FROM mailboxes m LEFT JOIN enrollments e ON e.mailbox_id = m.id \
             AND e.version = (SELECT MAX(version) FROM enrollments x WHERE x.mailbox_id = m.id) \
             {filter} ORDER BY m.address"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after.unwrap_or(0)).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let mut people = Vec::new();
                let given: Option<String> = r.try_get("given_name")?;
                let family: Option<String> = r.try_get("family_name")?;
                if let (Some(g), Some(f)) = (given, family) {
                    people.push(format!("{g} {f}"));
                }
                if let Some(n) = r.try_get::<Option<String>, _>("id_name")?.filter(|n| !n.is_empty()) {
                    people.push(n);
                }
                Ok(SearchRow {
                    id: r.try_get("id")?,
                    address: r.try_get("address")?,
                    fase: u32::try_from(r.try_get::<i64, _>("fase")?).unwrap_or(0),
                    name: r.try_get("name")?,
                    state: parse_state(&r.try_get::<String, _>("state")?)?,
                    wave: parse_date(r.try_get("wave")?)?,
                    people,
                })
            })
            .collect()
    }
}
