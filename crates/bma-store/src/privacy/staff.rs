//! The helpdesk console's rows in a person's rights (`privacy`): the
//! staff's sessions and the log of who viewed which mailbox's personal
//! data (`staff_views`).
//!
//! Rules:
//! - access: a staff member gets their console sessions (without the
//!   session's id, CSRF token or ID token: credentials) and the views they
//!   made; a manager gets the views of the mailboxes whose form they
//!   filled (who saw my data), each with who viewed and when;
//! - erasure of a staff member deletes their sessions; the view log keeps
//!   its rows (it is the accountability of access to the managers' data,
//!   kept like the data it protects, `docs/privacy.md`);
//! - the purge of a mailbox deletes its view log with its data.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::Person;
use crate::{StoreError, from_millis};

/// A console session of theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonStaffSession {
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The staff member's subject at the provider.
    pub subject: Option<String>,
    /// Their name.
    pub name: Option<String>,
    /// Their address.
    pub email: Option<String>,
    /// The role decided at login.
    pub role: Option<String>,
}

/// A view of a mailbox's personal data in the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonStaffView {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who viewed: their subject…
    pub viewer_subject: String,
    /// … and name.
    pub viewer_name: String,
    /// The mailbox viewed.
    pub mailbox: String,
    /// Made by the person asked for (else: a view of their data).
    pub by_them: bool,
}

/// A staff session row found, with its key.
#[derive(Debug)]
pub(crate) struct StaffSessionRow {
    pub id_hash: String,
    pub public: PersonStaffSession,
}

/// The console sessions of `person`: by subject, or by address (any ASCII case).
pub(crate) async fn sessions_of(conn: &mut AnyConnection, person: &Person) -> Result<Vec<StaffSessionRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id_hash, created_at, expires_at, subject, name, email, role FROM staff_sessions \
         WHERE subject IS NOT NULL ORDER BY created_at",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let subject: Option<String> = r.try_get("subject")?;
        let email: Option<String> = r.try_get("email")?;
        let theirs = match person {
            Person::Subject(s) => subject.as_deref() == Some(s.as_str()),
            Person::Address(a) => email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(a)),
        };
        if theirs {
            out.push(StaffSessionRow {
                id_hash: r.try_get("id_hash")?,
                public: PersonStaffSession {
                    created_at: from_millis(r.try_get("created_at")?),
                    expires_at: from_millis(r.try_get("expires_at")?),
                    subject,
                    name: r.try_get("name")?,
                    email,
                    role: r.try_get("role")?,
                },
            });
        }
    }
    Ok(out)
}

/// The views made by one of `viewers` (subjects) or of one of `mailboxes`
/// (ids), oldest first.
pub(crate) async fn views(
    conn: &mut AnyConnection,
    viewers: &BTreeSet<String>,
    mailboxes: &BTreeSet<i64>,
) -> Result<Vec<PersonStaffView>, StoreError> {
    if viewers.is_empty() && mailboxes.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT v.at, v.subject, v.name, v.mailbox_id, m.address FROM staff_views v \
         JOIN mailboxes m ON m.id = v.mailbox_id ORDER BY v.at, v.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let subject: String = r.try_get("subject")?;
        let mailbox_id: i64 = r.try_get("mailbox_id")?;
        let by_them = viewers.contains(&subject);
        if by_them || mailboxes.contains(&mailbox_id) {
            out.push(PersonStaffView {
                at: from_millis(r.try_get("at")?),
                viewer_subject: subject,
                viewer_name: r.try_get("name")?,
                mailbox: r.try_get("address")?,
                by_them,
            });
        }
    }
    Ok(out)
}

/// How many views of `mailbox_id` the log holds.
pub(crate) async fn views_of_mailbox(conn: &mut AnyConnection, mailbox_id: i64) -> Result<usize, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff_views WHERE mailbox_id = $1")
        .bind(mailbox_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Deletes the sessions found and, when `purged` names a mailbox, its view log.
pub(crate) async fn delete(
    conn: &mut AnyConnection,
    sessions: &[StaffSessionRow],
    purged: Option<i64>,
) -> Result<(), StoreError> {
    for s in sessions {
        sqlx::query("DELETE FROM staff_sessions WHERE id_hash = $1")
            .bind(s.id_hash.clone())
            .execute(&mut *conn)
            .await?;
    }
    if let Some(id) = purged {
        sqlx::query("DELETE FROM staff_views WHERE mailbox_id = $1").bind(id).execute(&mut *conn).await?;
    }
    Ok(())
}
