//! Form links: every link sent to a mailbox (mail 1, a reminder, a
//! resend) is the hash of its token in `form_tokens`, valid until revoked
//! or the campaign's end; mail 1 sent again with a fresh link.
//!
//! Invariants: only hashes are stored; a resend is one transaction (the
//! email, the new link, the older ones revoked or kept, an
//! `invitation_bounced` mailbox back to `invited` with its flag cleared,
//! the event saying how many links were revoked).

use bma_core::lifecycle::{Actor, State};
use bma_core::{Address, EventKind, TokenHash};
use time::OffsetDateTime;

use crate::events::{lock_mailbox, note};
use crate::outbox::NewEmail;
use crate::transition::{self, Also, Flag, Transition};
use crate::{Store, StoreError, to_millis};

/// What `bma mailbox resend` does with the links sent before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OlderLinks {
    /// They stop working (the default: a link may have leaked or reached
    /// the wrong person).
    Revoke,
    /// They keep working (the manager only lost the email).
    Keep,
}

impl OlderLinks {
    fn as_str(self) -> &'static str {
        match self {
            OlderLinks::Revoke => "revoked",
            OlderLinks::Keep => "kept",
        }
    }
}

/// The fresh link of a resent mail 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResentLink<'a> {
    /// The hash of its token.
    pub token_hash: &'a TokenHash,
    /// What becomes of the links sent before.
    pub older: OlderLinks,
}

/// Records the hash of a link sent to a mailbox (mail 1, a reminder, a
/// resend): every link of a mailbox is in `form_tokens`, looked up there
/// by one query, valid until revoked or the campaign's end.
pub(crate) async fn insert_form_token(
    conn: &mut sqlx::AnyConnection,
    token_hash: &TokenHash,
    mailbox_id: i64,
    kind: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO form_tokens (token_hash, mailbox_id, kind, created_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash.as_str())
        .bind(mailbox_id)
        .bind(kind.to_owned())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Sends mail 1 again (the helpdesk, after a bounce, a lost email or a
    /// link that may have leaked): a fresh link, the links sent before
    /// revoked unless `older` says to keep them, the email queued, an
    /// `invitation_bounced` mailbox back to `invited` with its flag
    /// cleared, all in one transaction with the event (which says how many
    /// links were revoked). Refused, with the reason, for a mailbox that
    /// was never invited or has answered.
    pub async fn resend_invitation(
        &self,
        address: &Address,
        link: &ResentLink<'_>,
        email: &NewEmail,
        actor: &Actor,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        if !matches!(state, State::Invited | State::InvitationBounced) {
            return Err(StoreError::Illegal {
                address: address.to_string(),
                why: bma_core::lifecycle::IllegalTransition::NotAllowed { from: state, to: State::Invited },
            });
        }
        let (outbox_id, _) = crate::outbox::insert_email(&mut tx, email, now).await?;
        let ms = to_millis(now);
        let older = link.older;
        let revoked = match older {
            OlderLinks::Revoke => {
                sqlx::query("UPDATE form_tokens SET revoked_at = $1 WHERE mailbox_id = $2 AND revoked_at IS NULL")
                    .bind(ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
            OlderLinks::Keep => 0,
        };
        insert_form_token(&mut tx, link.token_hash, id, "resend", ms).await?;
        let details = serde_json::json!({
            "outbox_id": outbox_id, "message_id": email.message_id, "to": email.recipient,
            "older_links": older.as_str(), "links_revoked": revoked,
        });
        let why = match older {
            OlderLinks::Revoke => format!("mail 1 sent again ({revoked} older links revoked): {reason}"),
            OlderLinks::Keep => format!("mail 1 sent again (older links kept): {reason}"),
        };
        if state == State::InvitationBounced {
            let change = Transition {
                mailbox_id: id,
                address: address.as_str(),
                from: state,
                blocked_from: None,
                to: State::Invited,
                reason: &why,
                details,
            };
            let also = Also { attention: Some(Flag::Clear), ..Also::default() };
            transition::apply(&mut tx, ms, &actor.to_text(), change, also).await?;
        } else {
            note(&mut tx, Some(id), now, actor, EventKind::InvitationResent, &why, details).await?;
        }
        tx.commit().await?;
        Ok(outbox_id)
    }
}
