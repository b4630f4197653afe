//! Portal sessions, stored server-side under the hash of their id.
//!
//! The browser holds a random session id in a cookie; the store keeps only
//! its SHA-256, so a copy of the database opens no session. A session
//! carries its CSRF token, the login in progress (opaque to the store: the
//! identity provider's state, nonce and PKCE verifier) and, once logged in,
//! the person's identity and the ID token (the hint of an RP-initiated
//! logout). A form posted after its session expired is kept in the new
//! session that the login starts (`draft`, with the hash of the link it was
//! posted to), carried over when the login succeeds, and cleared once the
//! form is submitted: the person's work is never thrown away, and it never
//! leaves the server (no cookie holds it).

use bma_core::TokenHash;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::enrollment::ManagerIdentity;
use crate::{Store, StoreError, from_millis, to_millis};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// The CSRF token of its forms.
    pub csrf: String,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// The login in progress (provider-specific, opaque here).
    pub login_pending: Option<String>,
    /// Who is logged in.
    pub identity: Option<ManagerIdentity>,
}

/// A session from a row whose session columns are named `<prefix><column>`.
pub(crate) fn session_from_row(r: &AnyRow, prefix: &str) -> Result<PortalSession, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    let text = |c: &str| -> Result<String, StoreError> {
        Ok(r.try_get::<Option<String>, _>(col(c).as_str())?.unwrap_or_default())
    };
    let subject: Option<String> = r.try_get(col("id_subject").as_str())?;
    let identity = match subject {
        Some(subject) => Some(ManagerIdentity {
            subject,
            name: text("id_name")?,
            given_name: text("id_given_name")?,
            family_name: text("id_family_name")?,
            email: text("id_email")?,
        }),
        None => None,
    };
    Ok(PortalSession {
        csrf: r.try_get(col("csrf").as_str())?,
        expires_at: from_millis(r.try_get(col("expires_at").as_str())?),
        login_pending: r.try_get(col("login_pending").as_str())?,
        identity,
    })
}

impl Store {
    /// Records a new anonymous session.
    pub async fn create_session(
        &self,
        id_hash: &TokenHash,
        csrf: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO portal_sessions (id_hash, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id_hash.as_str())
            .bind(csrf.to_owned())
            .bind(to_millis(now))
            .bind(to_millis(expires_at))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The session with this id hash, unless it has expired.
    pub async fn session(&self, id_hash: &TokenHash, now: OffsetDateTime) -> Result<Option<PortalSession>, StoreError> {
        let row = sqlx::query(
            "SELECT csrf, expires_at, login_pending, id_subject, id_name, id_given_name, id_family_name, id_email \
             FROM portal_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash.as_str())
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(|r| session_from_row(r, "")).transpose()
    }

    /// Records the login in progress.
    pub async fn set_login_pending(&self, id_hash: &TokenHash, pending: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_sessions SET login_pending = $1 WHERE id_hash = $2")
            .bind(pending.to_owned())
            .bind(id_hash.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes the login in progress (it can be used once).
    pub async fn take_login_pending(&self, id_hash: &TokenHash) -> Result<Option<String>, StoreError> {
        take_pending(self, SessionTable::Portal, id_hash).await
    }

    /// Replaces a session by a logged-in one (a new id after login, so an
    /// id planted before login is worth nothing): the old row, if any, is
    /// deleted and its kept form carried over.
    pub async fn login_session(
        &self,
        old_id_hash: Option<&TokenHash>,
        new_id_hash: &TokenHash,
        csrf: &str,
        identity: &ManagerIdentity,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        // A form kept while the person logged in again goes with them.
        let (mut draft, mut draft_token_hash): (Option<String>, Option<String>) = (None, None);
        if let Some(old) = old_id_hash {
            let kept = sqlx::query("SELECT draft, draft_token_hash FROM portal_sessions WHERE id_hash = $1")
                .bind(old.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(r) = kept {
                (draft, draft_token_hash) = (r.try_get("draft")?, r.try_get("draft_token_hash")?);
            }
            sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1").bind(old.as_str()).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO portal_sessions (id_hash, csrf, created_at, expires_at, id_subject, id_name, id_given_name, \
             id_family_name, id_email, draft, draft_token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(new_id_hash.as_str())
        .bind(csrf.to_owned())
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .bind(identity.subject.clone())
        .bind(identity.name.clone())
        .bind(identity.given_name.clone())
        .bind(identity.family_name.clone())
        .bind(identity.email.clone())
        .bind(draft)
        .bind(draft_token_hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the ID token of a logged-in session (the hint of its logout).
    pub async fn set_session_id_token(&self, id_hash: &TokenHash, id_token: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_sessions SET id_token = $1 WHERE id_hash = $2")
            .bind(id_token.to_owned())
            .bind(id_hash.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The ID token of a session, if it has one.
    pub async fn session_id_token(&self, id_hash: &TokenHash) -> Result<Option<String>, StoreError> {
        let token: Option<Option<String>> =
            sqlx::query_scalar("SELECT id_token FROM portal_sessions WHERE id_hash = $1")
                .bind(id_hash.as_str())
                .fetch_optional(self.pool())
                .await?;
        Ok(token.flatten())
    }

    /// Keeps a form posted to the link whose token hash is `token_hash`
    /// (serialised by the portal) in a session.
    pub async fn keep_draft(&self, id_hash: &TokenHash, token_hash: &TokenHash, draft: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_sessions SET draft = $1, draft_token_hash = $2 WHERE id_hash = $3")
            .bind(draft.to_owned())
            .bind(token_hash.as_str())
            .bind(id_hash.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The form kept in a live session for this link, if any.
    pub async fn session_draft(
        &self,
        id_hash: &TokenHash,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        let draft: Option<Option<String>> = sqlx::query_scalar(
            "SELECT draft FROM portal_sessions WHERE id_hash = $1 AND draft_token_hash = $2 AND expires_at > $3",
        )
        .bind(id_hash.as_str())
        .bind(token_hash.as_str())
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        Ok(draft.flatten())
    }

    /// Forgets the form kept in a session (it was submitted).
    pub async fn clear_draft(&self, id_hash: &TokenHash) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_sessions SET draft = NULL, draft_token_hash = NULL WHERE id_hash = $1")
            .bind(id_hash.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &TokenHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
            .bind(id_hash.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
            .bind(to_millis(now))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

/// The tables whose sessions hold a login in progress.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SessionTable {
    /// The managers' portal sessions.
    Portal,
    /// The console's staff sessions.
    Staff,
}

impl SessionTable {
    fn name(self) -> &'static str {
        match self {
            SessionTable::Portal => "portal_sessions",
            SessionTable::Staff => "staff_sessions",
        }
    }
}

/// Takes the login in progress of session `id_hash` of `table`, once: of
/// two callbacks racing for one login, one wins (a conditional UPDATE).
pub(crate) async fn take_pending(
    store: &Store,
    table: SessionTable,
    id_hash: &TokenHash,
) -> Result<Option<String>, StoreError> {
    let table = table.name();
    let mut tx = store.pool().begin().await?;
    let pending: Option<Option<String>> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT login_pending FROM {table} WHERE id_hash = $1")))
            .bind(id_hash.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let Some(pending) = pending.flatten() else {
        return Ok(None);
    };
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET login_pending = NULL WHERE id_hash = $1 AND login_pending = $2"
    )))
    .bind(id_hash.as_str())
    .bind(pending.clone())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((done.rows_affected() == 1).then_some(pending))
}
