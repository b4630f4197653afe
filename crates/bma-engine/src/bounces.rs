//! Bounces: the delivery status notifications that come back to the
//! bounce mailbox, read over IMAP (as the legacy platform's admin on
//! behalf of the bounce mailbox), matched to their mailbox and recorded.
//!
//! Anyone can send a message that looks like a delivery report to the
//! bounce address (its VERP variants are no secret), so a report changes
//! a mailbox's state only when it proves it is about an email of ours: it
//! quotes the Message-ID of an email we sent (the returned original's
//! header, which every real report of our relay carries), and the VERP
//! address it came back to, if any, is that email's recipient. A failed
//! mail 1 (or reminder) then moves its mailbox to `invitation_bounced` with
//! the status code, for the helpdesk. Any other failure report changes
//! nothing: it is kept for a human (a `bounce_unverified` campaign event,
//! listed by `bma campaign status`; the message stays in the bounce
//! mailbox). Each message read is marked `\Seen` after it is recorded, so
//! it is read once; reading one twice (a crash in between) records nothing
//! new.

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
    /// Failure reports that quote no email we sent to their recipient:
    /// kept for a human, nothing changed.
    pub unverified: usize,
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
                    Recorded::Outcome(BounceOutcome::Bounced(_)) => report.bounced += 1,
                    Recorded::Outcome(BounceOutcome::Recorded(_)) => report.recorded += 1,
                    Recorded::Unverified => report.unverified += 1,
                    Recorded::Outcome(BounceOutcome::Unknown) | Recorded::NotAReport => report.ignored += 1,
                }
            }
            client.uid_store(&UidSet::range(uid, uid), StoreMode::Add, &[Flag::Seen]).await?;
        }
        let _ = client.logout().await;
        Ok(report)
    }

    /// Records one message of the bounce mailbox.
    async fn record_report(&self, raw: &[u8], now: OffsetDateTime) -> Result<Recorded, EngineError> {
        let Some(report) = dsn::parse(raw) else { return Ok(Recorded::NotAReport) };
        let Some(failed) = report.recipients.iter().find(|r| r.failed()) else { return Ok(Recorded::NotAReport) };
        let by_verp = report.to.iter().find_map(|to| bma_mail::parse_verp(&self.settings.bounce_address, to));
        let by_field = failed.original_recipient.clone().or_else(|| failed.final_recipient.clone());
        let sent = match &report.original_message_id {
            Some(id) => self.store.sent_email(id).await?,
            None => None,
        };
        // Proven: it quotes an email we sent, and came back to that email's VERP address (if to one).
        let proven = sent.filter(|e| by_verp.as_deref().is_none_or(|v| v.eq_ignore_ascii_case(&e.recipient)));
        let Some(email) = proven else {
            let claimed = by_verp.or(by_field);
            let why = match &report.original_message_id {
                None => "it quotes no Message-ID".to_owned(),
                Some(id) => format!("it quotes <{id}>, which is not an email we sent to that recipient"),
            };
            let details = serde_json::json!({
                "claimed_recipient": claimed, "status": failed.status, "action": failed.action,
                "diagnostic": failed.diagnostic, "message_id": report.original_message_id,
                "from": bma_mail::inspect::header_value(raw, "From"),
                "subject": bma_mail::inspect::header_value(raw, "Subject"),
                "date": bma_mail::inspect::header_value(raw, "Date"),
                "bounce_mailbox": self.settings.bounce_address,
            });
            let reason = format!(
                "delivery report for {} not trusted ({why}): nothing changed, kept for a human",
                claimed.as_deref().unwrap_or("an unknown recipient")
            );
            // (What the report claims is not logged: it is anyone's text.)
            tracing::warn!("an unverified delivery report was kept for a human (bma campaign status)");
            self.store.record_unverified_bounce(details, &reason, &self.actor(), now).await?;
            return Ok(Recorded::Unverified);
        };
        // The mailbox the email concerns (its own address for mail 1 and reminders).
        let address = email.mailbox.clone().unwrap_or_else(|| email.recipient.clone());
        if !address.eq_ignore_ascii_case(&email.recipient) {
            // A report on an email to another address (a backup address):
            // the mailbox itself did not bounce.
            return Ok(Recorded::Outcome(BounceOutcome::Unknown));
        }
        let details = serde_json::json!({
            "status": failed.status, "action": failed.action, "diagnostic": failed.diagnostic,
            "message_id": report.original_message_id, "kind": email.kind,
        });
        let reason = format!("mail bounced: {} {}", failed.status, failed.diagnostic.as_deref().unwrap_or(""));
        // (An address that cannot be a mailbox is one no mailbox has.)
        let Ok(address) = self.address(&address) else {
            return Ok(Recorded::Outcome(BounceOutcome::Unknown));
        };
        let outcome = self.store.record_bounce(&address, details, reason.trim(), &self.actor(), now).await?;
        if let BounceOutcome::Bounced(a) = &outcome {
            tracing::info!(mailbox = %a, status = %failed.status, "invitation bounced");
        }
        Ok(Recorded::Outcome(outcome))
    }
}

/// What one message of the bounce mailbox led to.
enum Recorded {
    /// Not a failure report.
    NotAReport,
    /// A failure report that proves nothing: kept for a human.
    Unverified,
    /// A proven report, recorded.
    Outcome(BounceOutcome),
}
