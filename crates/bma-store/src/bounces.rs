//! Delivery failure reports: a bounced mail 1 moves its mailbox to
//! `invitation_bounced` (flagged for the helpdesk); a report that quotes
//! no email we sent proves nothing and is kept for a human.
//!
//! Invariants: a report changes a mailbox only when it names an email of
//! ours; each is one transaction with its event.

use bma_core::lifecycle::{Actor, State};
use bma_core::{Address, AttentionReason, EventKind};
use sqlx::Row;
use time::OffsetDateTime;

use crate::events::{lock_mailbox, note};
use crate::transition::{self, Also, Flag, Transition};
use crate::{Store, StoreError, to_millis};

/// One of our emails, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    /// Its RCPT TO.
    pub recipient: String,
    /// `invitation`, `reminder`, `confirmation`, …
    pub kind: String,
    /// The mailbox it concerns, if any.
    pub mailbox: Option<String>,
}

/// What [`Store::record_bounce`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BounceOutcome {
    /// The mailbox moved to `invitation_bounced`.
    Bounced(String),
    /// Recorded on a mailbox not (or no longer) invited: an event only.
    Recorded(String),
    /// No mailbox has that address.
    Unknown,
}

impl Store {
    /// Records a delivery failure report for `address`: an invited mailbox
    /// becomes `invitation_bounced` (flagged for the helpdesk) with the
    /// status code; any other gets a `bounce` event only.
    pub async fn record_bounce(
        &self,
        address: &Address,
        details: serde_json::Value,
        reason: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<BounceOutcome, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = match lock_mailbox(&mut tx, address).await {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => return Ok(BounceOutcome::Unknown),
            Err(e) => return Err(e),
        };
        let ms = to_millis(now);
        let outcome = if state == State::Invited {
            let change = Transition {
                mailbox_id: id,
                address: address.as_str(),
                from: state,
                blocked_from: None,
                to: State::InvitationBounced,
                reason,
                details,
            };
            let also = Also { attention: Some(Flag::Raise(AttentionReason::InvitationBounced)), ..Also::default() };
            transition::apply(&mut tx, ms, &actor.to_text(), change, also).await?;
            BounceOutcome::Bounced(address.to_string())
        } else {
            note(&mut tx, Some(id), now, actor, EventKind::Bounce, reason, details).await?;
            BounceOutcome::Recorded(address.to_string())
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// The mailbox (address) an email of ours with this Message-ID went to.
    pub async fn recipient_of(&self, message_id: &str) -> Result<Option<String>, StoreError> {
        let id = message_id.trim().trim_start_matches('<').trim_end_matches('>').to_owned();
        Ok(sqlx::query_scalar(
            "SELECT m.address FROM outbox o JOIN mailboxes m ON m.id = o.mailbox_id WHERE o.message_id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The email of ours with this Message-ID, if it was sent: its
    /// recipient and the mailbox it concerns. A delivery report that quotes
    /// it is about that email; one that quotes nothing we sent proves
    /// nothing.
    pub async fn sent_email(&self, message_id: &str) -> Result<Option<SentEmail>, StoreError> {
        let id = message_id.trim().trim_start_matches('<').trim_end_matches('>').to_owned();
        let row = sqlx::query(
            "SELECT o.recipient, o.kind, m.address FROM outbox o LEFT JOIN mailboxes m ON m.id = o.mailbox_id \
             WHERE o.message_id = $1 AND o.state = 'sent'",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SentEmail {
                recipient: r.try_get("recipient")?,
                kind: r.try_get("kind")?,
                mailbox: r.try_get("address")?,
            })
        })
        .transpose()
    }

    /// Keeps a delivery report that proves nothing (it quotes no email we
    /// sent to its recipient) for a human: a campaign event
    /// `bounce_unverified`, no mailbox changed. Listed by
    /// [`Store::unverified_bounces`] and `bma campaign status`.
    pub async fn record_unverified_bounce(
        &self,
        details: serde_json::Value,
        reason: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        note(&mut conn, None, now, actor, EventKind::BounceUnverified, reason, details).await
    }

    /// The delivery reports kept for a human, newest first.
    pub async fn unverified_bounces(&self, limit: i64) -> Result<Vec<crate::EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE mailbox_id IS NULL AND kind = 'bounce_unverified' ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(crate::mailbox::event_from_row).collect()
    }
}
