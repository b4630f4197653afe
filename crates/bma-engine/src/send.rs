//! The outbox sender: claims due emails with a lease, sends them to the
//! relay at the configured pace, records each as sent (with the mailbox's
//! event) or failed (retried with backoff, then dead).
//!
//! The one unsafe moment of SMTP is between the relay's acceptance and our
//! record of it. An email whose sender died then is claimed again flagged
//! uncertain; before sending it again, the sender looks for its Message-ID
//! in the recipient's legacy mailbox (the campaign has admin access there,
//! and mail for a BMA lands there until its cutover). Found: it is recorded
//! as sent without sending. Not found after a short wait for the relay's
//! queue (one short wait per batch): it is sent again.

use std::time::{Duration as StdDuration, Instant};

use bma_imap::{MailboxName, UidSet};
use bma_store::FailOutcome;
use time::{Duration, OffsetDateTime};

use crate::{Engine, EngineError};

/// What one [`Engine::send_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Accepted by the relay.
    pub sent: usize,
    /// Uncertain, found delivered: recorded without sending again.
    pub found_delivered: usize,
    /// Failed, to be retried.
    pub retried: usize,
    /// Failed for good.
    pub dead: usize,
}

/// How many recent messages of the recipient's inbox are searched.
const EVIDENCE_WINDOW: u32 = 200;

impl Engine {
    /// Sends what is due in the outbox.
    pub async fn send_due(&self, now: OffsetDateTime) -> Result<SendReport, EngineError> {
        let mut report = SendReport::default();
        loop {
            let batch = self.store.claim_emails(&self.worker, now, Duration::minutes(5), 20).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            if batch.iter().any(|e| e.uncertain) && self.settings.legacy.is_some() {
                // Give the relay's queue a moment to deliver what it accepted.
                tokio::time::sleep(StdDuration::from_secs(3)).await;
            }
            for e in batch {
                if e.uncertain && self.delivered(&e.recipient, &e.message_id).await {
                    tracing::info!(outbox = e.id, "an uncertain email was found delivered: not sent again");
                    self.store.mark_sent(e.id, &self.worker, now).await?;
                    report.found_delivered += 1;
                    continue;
                }
                if e.uncertain {
                    tracing::warn!(outbox = e.id, "resending an email whose sender stopped while sending it");
                }
                self.pace().await;
                let outgoing = bma_mail::OutgoingEmail {
                    envelope: bma_mail::Envelope { from: e.envelope_from.clone(), to: vec![e.recipient.clone()] },
                    raw: e.raw.clone().into_bytes(),
                    message_id: e.message_id.clone(),
                };
                match self.sender.send(&outgoing).await {
                    Ok(()) => {
                        self.store.mark_sent(e.id, &self.worker, now).await?;
                        report.sent += 1;
                    }
                    Err(err) => {
                        tracing::warn!(outbox = e.id, error = %err, "sending failed");
                        match self.store.mark_email_failed(e.id, &self.worker, &err.message, err.permanent, now).await?
                        {
                            FailOutcome::Retry(_) => report.retried += 1,
                            FailOutcome::Dead => report.dead += 1,
                        }
                    }
                }
            }
        }
    }

    /// Waits so that emails leave at most `max_per_minute` a minute.
    async fn pace(&self) {
        let per_minute = self.settings.max_per_minute;
        if per_minute == 0 {
            return;
        }
        let interval = StdDuration::from_secs(60) / per_minute;
        let mut last = self.pace.lock().await;
        if let Some(previous) = *last {
            let next = previous + interval;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// Whether our Message-ID is in the recipient's legacy inbox. False
    /// when the legacy platform is not configured or cannot be read: then
    /// the email is sent again, the safer side for a campaign email.
    async fn delivered(&self, recipient: &str, message_id: &str) -> bool {
        let Some(legacy) = &self.settings.legacy else { return false };
        match in_inbox(legacy, recipient, message_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for an uncertain email in its recipient's mailbox");
                false
            }
        }
    }
}

async fn in_inbox(legacy: &crate::PlatformAccess, user: &str, message_id: &str) -> Result<bool, bma_imap::Error> {
    let mut client = legacy.session(user).await?;
    let info = client.examine(&MailboxName::new("INBOX")).await?;
    let next = info.uid_next.unwrap_or(u32::MAX);
    let from = next.saturating_sub(EVIDENCE_WINDOW).max(1);
    let needle = format!("<{message_id}>");
    let mut found = false;
    if info.exists > 0 {
        let mut stream = client.fetch_bodies(&UidSet::from_uid(from)).await?;
        while let Some(m) = stream.next().await? {
            found |= message_id_of(&m.body).is_some_and(|id| id == needle);
        }
    }
    let _ = client.logout().await;
    Ok(found)
}

/// The Message-ID header value of a raw message (trimmed), if any.
fn message_id_of(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("message-id") {
            let mut value = value.trim().to_owned();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_ids() {
        for (raw, id) in [
            ("From: a\r\nMessage-ID: <x.1@cfwb.be>\r\n\r\nbody Message-ID: <no>", Some("<x.1@cfwb.be>")),
            ("message-id:\r\n  <folded@cfwb.be>\r\nSubject: s\r\n\r\n", Some("<folded@cfwb.be>")),
            ("Subject: none\r\n\r\nMessage-ID: <body@x>", None),
        ] {
            assert_eq!(super::message_id_of(raw.as_bytes()).as_deref(), id, "{raw}");
        }
    }
}
