//! Bounces: the delivery status notifications that come back to the
//! bounce mailbox, read over IMAP (as the legacy platform's admin on
//! behalf of the bounce mailbox), matched to their mailbox and recorded.
//!
//! Matching, most reliable first: the VERP address the report was sent to
//! (ours, one per recipient), then the report's recipient fields, then the
//! Message-ID of the returned original. A failed mail 1 moves its mailbox
//! to `invitation_bounced` with the status code, for the helpdesk. Each
//! message read is marked `\Seen` after it is recorded, so it is read once;
//! reading one twice (a crash in between) records nothing new.

use bma_imap::{Flag, MailboxName, StoreMode, UidSet};
use bma_mail::dsn;
use bma_store::BounceOutcome;
use time::OffsetDateTime;

use crate::{Engine, EngineError};

/// What one [`Engine::read_bounces`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BounceReport {
    /// New messages read.
    pub read: usize,
    /// Mailboxes moved to `invitation_bounced`.
    pub bounced: usize,
    /// Reports recorded on mailboxes no longer invited.
    pub recorded: usize,
    /// Messages that are not failure reports, or match no mailbox.
    pub ignored: usize,
}

impl Engine {
    /// Reads the new messages of the bounce mailbox. Does nothing when the
    /// legacy platform is not configured.
    pub async fn read_bounces(&self, now: OffsetDateTime) -> Result<BounceReport, EngineError> {
        let mut report = BounceReport::default();
        let Some(legacy) = &self.settings.legacy else { return Ok(report) };
        let bounce_box = self.settings.bounce_address.clone();
        let mut client = legacy.session(&bounce_box).await?;
        client.select(&MailboxName::new("INBOX")).await?;
        let mut unseen = Vec::new();
        {
            let mut metas = client.fetch_meta(&UidSet::all(), None).await?;
            while let Some(m) = metas.next().await? {
                if !m.flags.contains(&Flag::Seen) {
                    unseen.push(m.uid);
                }
            }
        }
        for uid in unseen {
            let mut messages = Vec::new();
            {
                let mut stream = client.fetch_bodies(&UidSet::range(uid, uid)).await?;
                while let Some(m) = stream.next().await? {
                    messages.push(m.body);
                }
            }
            for body in messages {
                report.read += 1;
                match self.record_report(&body, now).await? {
                    Some(BounceOutcome::Bounced(_)) => report.bounced += 1,
                    Some(BounceOutcome::Recorded(_)) => report.recorded += 1,
                    Some(BounceOutcome::Unknown) | None => report.ignored += 1,
                }
            }
            client.uid_store(&UidSet::range(uid, uid), StoreMode::Add, &[Flag::Seen]).await?;
        }
        let _ = client.logout().await;
        Ok(report)
    }

    /// Records one message of the bounce mailbox; `None` when it is not a
    /// failure report of ours.
    async fn record_report(&self, raw: &[u8], now: OffsetDateTime) -> Result<Option<BounceOutcome>, EngineError> {
        let Some(report) = dsn::parse(raw) else { return Ok(None) };
        let Some(failed) = report.recipients.iter().find(|r| r.failed()) else { return Ok(None) };
        let by_verp = report.to.iter().find_map(|to| bma_mail::parse_verp(&self.settings.bounce_address, to));
        let by_field = failed.original_recipient.clone().or_else(|| failed.final_recipient.clone());
        let by_message = match &report.original_message_id {
            Some(id) => self.store.recipient_of(id).await?,
            None => None,
        };
        let Some(address) = by_verp.or(by_message).or(by_field) else { return Ok(None) };
        let details = serde_json::json!({
            "status": failed.status, "action": failed.action, "diagnostic": failed.diagnostic,
            "message_id": report.original_message_id,
        });
        let reason = format!("mail bounced: {} {}", failed.status, failed.diagnostic.as_deref().unwrap_or(""));
        let outcome = self.store.record_bounce(&address, details, reason.trim(), &self.actor(), now).await?;
        if let BounceOutcome::Bounced(a) = &outcome {
            tracing::info!(mailbox = %a, status = %failed.status, "invitation bounced");
        }
        Ok(Some(outcome))
    }
}
