//! Invitations: mail 1 queued, the form token recorded (in `form_tokens`,
//! where every link of the mailbox is) and the mailbox moved to `invited`,
//! all in one transaction.
//!
//! Either the mailbox is invited and its email is in the outbox, or
//! neither: a crash between the two cannot leave an invited mailbox
//! without its email, or an email for a mailbox still `scheduled`.

use bma_core::lifecycle::{self, Actor, State};
use bma_core::{Address, TokenHash};
use sqlx::Row;
use time::OffsetDateTime;

use crate::outbox::NewEmail;
use crate::transition::{self, Also, Transition};
use crate::{Store, StoreError, to_millis};

/// What [`Store::invite`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteOutcome {
    /// Invited now; the outbox id of mail 1.
    Invited(i64),
    /// Already invited (or further): nothing done.
    AlreadyInvited,
}

/// The scheduled mailboxes of a wave, due for invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueInvitation {
    /// Mailbox id.
    pub mailbox_id: i64,
    /// Address.
    pub address: String,
    /// Establishment name.
    pub name: String,
    /// Its wave.
    pub wave: String,
}

impl Store {
    /// Scheduled mailboxes whose wave is on or before `day` (`YYYY-MM-DD`).
    pub async fn due_invitations(&self, day: &str) -> Result<Vec<DueInvitation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, address, name, wave FROM mailboxes WHERE state = 'scheduled' AND wave IS NOT NULL \
             AND wave <= $1 ORDER BY wave, address",
        )
        .bind(day.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueInvitation {
                    mailbox_id: r.try_get("id")?,
                    address: r.try_get("address")?,
                    name: r.try_get("name")?,
                    wave: r.try_get("wave")?,
                })
            })
            .collect()
    }

    /// Invites a scheduled mailbox: records the hash of its form token,
    /// queues mail 1 and moves it to `invited`, with its event, in one
    /// transaction. A mailbox already invited is left as it is.
    pub async fn invite(
        &self,
        address: &Address,
        token_hash: &TokenHash,
        email: &NewEmail,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<InviteOutcome, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = crate::events::lock_mailbox(&mut tx, address).await?;
        if state != State::Scheduled {
            if matches!(state, State::Imported) {
                return Err(StoreError::Illegal {
                    address: address.to_string(),
                    why: lifecycle::IllegalTransition::NotAllowed { from: state, to: State::Invited },
                });
            }
            return Ok(InviteOutcome::AlreadyInvited);
        }
        let wave: Option<String> =
            sqlx::query_scalar("SELECT wave FROM mailboxes WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
        let now_ms = to_millis(now);
        crate::form_links::insert_form_token(&mut tx, token_hash, id, "invitation", now_ms).await?;
        let (outbox_id, _) = crate::outbox::insert_email(&mut tx, email, now).await?;
        let reason = format!("mail 1 queued (wave of {})", wave.as_deref().unwrap_or("?"));
        let details = serde_json::json!({ "outbox_id": outbox_id, "message_id": email.message_id, "wave": wave });
        let change = Transition {
            mailbox_id: id,
            address: address.as_str(),
            from: state,
            blocked_from: None,
            to: State::Invited,
            reason: &reason,
            details,
        };
        let also = Also { invited: true, ..Also::default() };
        transition::apply(&mut tx, now_ms, &actor.to_text(), change, also).await?;
        tx.commit().await?;
        Ok(InviteOutcome::Invited(outbox_id))
    }
}

impl Store {
    /// When mail 1 of a mailbox was first queued (`None` before its invitation).
    pub async fn invited_at(&self, address: &Address) -> Result<Option<OffsetDateTime>, StoreError> {
        let at: Option<Option<i64>> = sqlx::query_scalar("SELECT invited_at FROM mailboxes WHERE address = $1")
            .bind(address.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(at.flatten().map(crate::from_millis))
    }

    /// The mailbox a form token belongs to (the token is hashed before the lookup).
    pub async fn mailbox_by_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        if !bma_core::token::well_formed(token) {
            return Ok(None);
        }
        // Every link sent (mail 1, reminders, resends) is in form_tokens.
        let address: Option<String> = sqlx::query_scalar(
            "SELECT m.address FROM form_tokens t JOIN mailboxes m ON m.id = t.mailbox_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(TokenHash::of(token).as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(address)
    }
}
