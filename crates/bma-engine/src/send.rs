//! The outbox sender: claims due emails one at a time (a fresh instant of
//! the campaign clock for each claim, a lease on the real clock extended
//! while the email is handled), sends them to the relay at the configured
//! pace, records each as sent (with the mailbox's event) or failed
//! (retried with backoff, then dead). A lease lost meanwhile skips that
//! email, never the rest of the outbox.
//!
//! The one unsafe moment of SMTP is between the relay's acceptance and our
//! record of it. An email whose sender died then is claimed again flagged
//! uncertain; before sending it again, the sender looks for it, first in
//! the relay's queue (a message from its VERP return path to its recipient,
//! listed by `relay_queue_command`, Postfix's `postqueue -j`), then for its
//! Message-ID in the recipient's legacy mailbox (the campaign has admin
//! access there, and mail for a BMA lands there until its cutover). The
//! order matters: Postfix removes a message from its queue only after the
//! mailbox took it. Found delivered: recorded as sent without sending.
//! Still queued, or the evidence unreadable: neither sent nor recorded,
//! looked for again later (backoff on the real clock); after
//! `max_checks` such looks, `unconfirmed` and its mailbox flagged for a
//! human. Found nowhere: sent again.

use std::time::{Duration as StdDuration, Instant};

use bma_core::Clock;
use bma_imap::{MailboxName, UidSet};
use bma_store::{CheckOutcome, FailOutcome, Lease, NewEmail, OutboxEmail, StoreError};
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
    /// Uncertain, still in the relay's queue or not checkable: looked for again later.
    pub checking: usize,
    /// Uncertain for too long: left to a human.
    pub unconfirmed: usize,
    /// Skipped: another worker took the email over.
    pub lease_lost: usize,
}

/// How many times the relay's queue is listed before a message is taken as gone from it.
const QUEUE_LISTINGS: usize = 3;

/// How many recent messages of the recipient's inbox are searched.
const EVIDENCE_WINDOW: u32 = 200;

/// What a look for an uncertain email found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Evidence {
    /// In the recipient's mailbox.
    Delivered,
    /// Still in the relay's queue.
    Queued,
    /// Neither: it never reached the relay.
    Absent,
    /// The queue or the mailbox could not be read.
    Unknown(String),
}

/// The message the relay gets for an email of the outbox.
fn outgoing(envelope_from: &str, recipient: &str, raw: &str, message_id: &str) -> bma_mail::OutgoingEmail {
    bma_mail::OutgoingEmail {
        envelope: bma_mail::Envelope { from: envelope_from.to_owned(), to: vec![recipient.to_owned()] },
        raw: raw.as_bytes().to_vec(),
        message_id: message_id.to_owned(),
    }
}

impl Engine {
    /// Sends one email at once, outside the outbox's queue, at the outbox's
    /// pace: only for an email that must not wait in the store (mail 2
    /// with a new password written out); the caller records it sent in the
    /// transaction of what it did (`bma_store::StepDone::sent`).
    pub(crate) async fn send_now(&self, email: &NewEmail) -> Result<(), EngineError> {
        self.pace().await;
        self.sender.send(&outgoing(&email.envelope_from, &email.recipient, &email.raw, &email.message_id)).await?;
        Ok(())
    }
}

/// The delay before the next look for an uncertain email after `checks`
/// inconclusive ones: `base`, doubled each time, at most five minutes.
pub(crate) fn recheck_delay(base: StdDuration, checks: u32) -> StdDuration {
    let doubled = base.saturating_mul(1u32 << checks.saturating_sub(1).min(16));
    doubled.min(StdDuration::from_secs(300)).max(base.min(StdDuration::from_secs(300)))
}

impl Engine {
    /// Sends what is due in the outbox at `now` (a fixed instant).
    pub async fn send_due(&self, now: OffsetDateTime) -> Result<SendReport, EngineError> {
        self.send_due_on(&bma_core::ManualClock::new(now)).await
    }

    /// Sends what is due in the outbox, on `clock`: one email per claim,
    /// each claim at the clock's current instant, until none is due.
    pub async fn send_due_on(&self, clock: &dyn Clock) -> Result<SendReport, EngineError> {
        let mut report = SendReport::default();
        loop {
            let lease = Lease::real(self.lease_length());
            let Some(e) = self.store.claim_emails_leased(&self.worker, clock.now(), lease, 1).await?.pop() else {
                return Ok(report);
            };
            match self.holding(crate::Leased::Email(e.id), self.send_one(&e, clock, &mut report)).await {
                Ok(()) => {}
                Err(EngineError::Store(StoreError::LeaseLost { .. })) => {
                    tracing::warn!(outbox = e.id, "another worker took this email over: skipped");
                    report.lease_lost += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn send_one(&self, e: &OutboxEmail, clock: &dyn Clock, report: &mut SendReport) -> Result<(), EngineError> {
        if e.uncertain {
            match self.evidence(e).await {
                Evidence::Delivered => {
                    tracing::info!(outbox = e.id, "an uncertain email was found delivered: not sent again");
                    self.store.mark_sent(e.id, &self.worker, clock.now()).await?;
                    report.found_delivered += 1;
                    return Ok(());
                }
                Evidence::Absent => {
                    tracing::warn!(outbox = e.id, "resending an email whose sender stopped while sending it");
                    self.store.resending(e.id, &self.worker).await?;
                }
                inconclusive @ (Evidence::Queued | Evidence::Unknown(_)) => {
                    let why = match inconclusive {
                        Evidence::Unknown(why) => why,
                        _ => "still in the relay's queue".to_owned(),
                    };
                    let delay = recheck_delay(self.outbox.recheck, e.checks);
                    let again = OffsetDateTime::now_utc() + Duration::try_from(delay).unwrap_or(Duration::MINUTE);
                    let outcome = self
                        .store
                        .check_again(e.id, &self.worker, &why, again, self.outbox.max_checks, clock.now())
                        .await?;
                    match outcome {
                        CheckOutcome::Later => {
                            tracing::info!(outbox = e.id, why, "an uncertain email is looked for again later");
                            report.checking += 1;
                        }
                        CheckOutcome::Human => {
                            tracing::warn!(outbox = e.id, why, "an uncertain email is left to a human");
                            report.unconfirmed += 1;
                        }
                    }
                    return Ok(());
                }
            }
        }
        self.pace().await;
        match self.sender.send(&outgoing(&e.envelope_from, &e.recipient, &e.raw, &e.message_id)).await {
            Ok(()) => {
                self.store.mark_sent(e.id, &self.worker, clock.now()).await?;
                report.sent += 1;
            }
            Err(err) => {
                tracing::warn!(outbox = e.id, error = %err, "sending failed");
                match self.store.mark_email_failed(e.id, &self.worker, &err.message, err.permanent, clock.now()).await?
                {
                    FailOutcome::Retry(_) => report.retried += 1,
                    FailOutcome::Dead => report.dead += 1,
                }
            }
        }
        Ok(())
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

    /// Looks for an uncertain email: the relay's queue first, then the
    /// recipient's legacy mailbox. Without a queue command, a message not
    /// in the mailbox is taken as never sent (the lease expiry, on the real
    /// clock, gave the relay that long to deliver it); without the legacy
    /// platform, as well.
    async fn evidence(&self, e: &OutboxEmail) -> Evidence {
        // A listing of Postfix's queue can miss a message moving between
        // its queues (deferred to active, for a retry) while it is read:
        // it is read a few times before the message is taken as gone.
        for _ in 0..QUEUE_LISTINGS {
            if self.outbox.relay_queue_command.is_empty() {
                break;
            }
            match relay_queue_holds(&self.outbox.relay_queue_command, &e.envelope_from, &e.recipient).await {
                Ok(true) => return Evidence::Queued,
                Ok(false) => tokio::time::sleep(StdDuration::from_millis(150)).await,
                Err(why) => return Evidence::Unknown(why),
            }
        }
        let Some(legacy) = &self.settings.legacy else { return Evidence::Absent };
        match in_inbox(legacy, &e.recipient, &e.message_id).await {
            Ok(true) => Evidence::Delivered,
            Ok(false) => Evidence::Absent,
            Err(err) => Evidence::Unknown(format!("cannot read the recipient's legacy mailbox: {err}")),
        }
    }
}

/// Whether the relay's queue, as listed by `command` (JSON lines of
/// Postfix's `postqueue -j`: `sender`, `recipients[].address`), holds a
/// message from `sender` to `recipient`.
async fn relay_queue_holds(command: &[String], sender: &str, recipient: &str) -> Result<bool, String> {
    let Some((program, args)) = command.split_first() else { return Ok(false) };
    let run = tokio::process::Command::new(program).args(args).kill_on_drop(true).output();
    let out = tokio::time::timeout(StdDuration::from_secs(20), run)
        .await
        .map_err(|_| format!("the relay's queue command ({program}) did not answer within 20 s"))?
        .map_err(|e| format!("cannot run the relay's queue command ({program}): {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("the relay's queue command ({program}) failed: {}", stderr.trim()));
    }
    queue_listing_holds(&String::from_utf8_lossy(&out.stdout), sender, recipient)
}

/// Whether a `postqueue -j` listing holds a message from `sender` to `recipient`.
fn queue_listing_holds(listing: &str, sender: &str, recipient: &str) -> Result<bool, String> {
    for line in listing.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let entry: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("the relay's queue listing is not JSON lines: {e}"))?;
        let from = entry["sender"].as_str().unwrap_or_default();
        let to_us = entry["recipients"].as_array().is_some_and(|rs| {
            rs.iter().any(|r| r["address"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(recipient)))
        });
        if to_us && from.eq_ignore_ascii_case(sender) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `user`'s legacy INBOX holds our email `message_id` among its latest messages.
async fn in_inbox(legacy: &crate::PlatformAccess, user: &str, message_id: &str) -> Result<bool, bma_imap::Error> {
    Ok(!inbox_uids(legacy, user, message_id).await?.is_empty())
}

/// The UIDs of our email `message_id` among the latest messages of
/// `user`'s legacy INBOX.
pub(crate) async fn inbox_uids(
    legacy: &crate::PlatformAccess,
    user: &str,
    message_id: &str,
) -> Result<Vec<u32>, bma_imap::Error> {
    let needle = format!("<{message_id}>");
    inbox_uids_where(legacy, user, |id| id == needle).await
}

/// The UIDs of the latest messages of `user`'s INBOX on `platform` whose
/// Message-ID (with its angle brackets) `matches`.
pub(crate) async fn inbox_uids_where(
    platform: &crate::PlatformAccess,
    user: &str,
    matches: impl Fn(&str) -> bool,
) -> Result<Vec<u32>, bma_imap::Error> {
    let mut client = platform.session(user).await?;
    let info = client.examine(&MailboxName::new("INBOX")).await?;
    let next = info.uid_next.unwrap_or(u32::MAX);
    let from = next.saturating_sub(EVIDENCE_WINDOW).max(1);
    let mut found = Vec::new();
    if info.exists > 0 {
        let mut stream = client.fetch_bodies(&UidSet::from_uid(from)).await?;
        while let Some(m) = stream.next().await? {
            if message_id_of(&m.body).is_some_and(|id| matches(&id)) {
                found.push(m.uid);
            }
        }
    }
    let _ = client.logout().await;
    Ok(found)
}

/// Removes the messages `uids` from `user`'s INBOX on `platform`.
pub(crate) async fn expunge_from_inbox(
    platform: &crate::PlatformAccess,
    user: &str,
    uids: &[u32],
) -> Result<(), bma_imap::Error> {
    if uids.is_empty() {
        return Ok(());
    }
    let mut session = platform.session(user).await?;
    session.select(&MailboxName::new("INBOX")).await?;
    let set: UidSet = uids.iter().copied().collect();
    session.uid_store(&set, bma_imap::StoreMode::Add, &[bma_imap::Flag::Deleted]).await?;
    session.uid_expunge(&set).await?;
    let _ = session.logout().await;
    Ok(())
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
    use std::time::Duration;

    #[test]
    fn queue_listings() {
        let held = r#"{"queue_name": "deferred", "queue_id": "4F1", "sender": "bounces+ec1=adm.cfwb.be@bma.test", "recipients": [{"address": "EC1@adm.cfwb.be", "delay_reason": "held"}]}"#;
        let other = r#"{"queue_name": "active", "queue_id": "4F2", "sender": "someone@x.test", "recipients": [{"address": "ec1@adm.cfwb.be"}]}"#;
        let sender = "bounces+ec1=adm.cfwb.be@bma.test";
        for (listing, recipient, expected) in [
            ("", "ec1@adm.cfwb.be", Ok(false)),
            (held, "ec1@adm.cfwb.be", Ok(true)),
            (other, "ec1@adm.cfwb.be", Ok(false)),
            (held, "ec2@adm.cfwb.be", Ok(false)),
            (&format!("{other}\n{held}\n"), "ec1@adm.cfwb.be", Ok(true)),
        ] {
            assert_eq!(super::queue_listing_holds(listing, sender, recipient), expected, "{listing}");
        }
        assert!(super::queue_listing_holds("mail queue is empty", sender, "ec1@adm.cfwb.be").is_err());
    }

    #[test]
    fn recheck_delays_double_then_cap() {
        let base = Duration::from_secs(5);
        let secs: Vec<u64> = (0..=9).map(|c| super::recheck_delay(base, c).as_secs()).collect();
        assert_eq!(secs, vec![5, 5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

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
