//! `bma-engine`: what turns a planned campaign into emails.
//!
//! - [`Engine::invite_due`]: every scheduled mailbox whose wave has started
//!   gets a personal form token and mail 1, queued in the outbox in the same
//!   transaction as its move to `invited` (so running it twice for the same
//!   instant does nothing more);
//! - [`Engine::send_due`]: the outbox sender: claims due emails, sends them
//!   over SMTP, records each as sent (with the mailbox's event) or failed
//!   (retried with backoff, then dead);
//! - [`Engine::tick`]: both, for one instant of the campaign clock.
//!
//! Invariants: time comes from the caller (`now`), never from the wall
//! clock; tokens are random (32 bytes from the OS) and only their hash is
//! stored; emails leave only through the outbox.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bma_core::lifecycle::Actor;
use bma_core::settings::{Settings, date_fr};
use bma_mail::message::build;
use bma_mail::{SmtpSender, TemplateKind, Templates, verp};
use bma_store::{FailOutcome, InviteOutcome, NewEmail, Store};
use rand::RngCore;
use time::{Duration, OffsetDateTime, Time};

/// What the engine needs beyond the campaign settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// The campaign.
    pub settings: Settings,
    /// Base URL of the portal (`https://bma.example`): links are `<base>/formulaire/<token>`.
    pub portal_base_url: String,
    /// The bounce mailbox; each recipient gets its VERP variant.
    pub bounce_address: String,
    /// Domain of our Message-IDs.
    pub message_id_domain: String,
    /// Hour (UTC) at which a wave's emails leave on its day.
    pub wave_hour: u8,
    /// Days the manager is asked to answer within.
    pub reply_days: i64,
}

/// An engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bma_store::StoreError),
    /// A template failed.
    #[error(transparent)]
    Template(#[from] bma_mail::TemplateError),
    /// A message could not be built.
    #[error(transparent)]
    Build(#[from] bma_mail::message::BuildError),
}

/// What one [`Engine::send_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Accepted by the relay.
    pub sent: usize,
    /// Failed, to be retried.
    pub retried: usize,
    /// Failed for good.
    pub dead: usize,
}

/// The campaign engine.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    templates: Templates,
    settings: EngineSettings,
    sender: SmtpSender,
    worker: String,
}

/// A fresh personal token: 32 random bytes, URL-safe base64 (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Engine {
    /// An engine on `store`, sending through `sender`, as worker `worker`.
    pub fn new(
        store: Store,
        templates: Templates,
        settings: EngineSettings,
        sender: SmtpSender,
        worker: &str,
    ) -> Engine {
        Engine { store, templates, settings, sender, worker: worker.to_owned() }
    }

    /// Invites every scheduled mailbox whose wave has started by `now`.
    /// Returns how many were invited now.
    pub async fn invite_due(&self, now: OffsetDateTime) -> Result<usize, EngineError> {
        let hour = Time::from_hms(self.settings.wave_hour.min(23), 0, 0).unwrap_or(Time::MIDNIGHT);
        // A wave of day D leaves at D + wave_hour: the waves due are those of
        // today (if the hour has passed) and before.
        let day = if now.time() >= hour { now.date() } else { now.date() - Duration::days(1) };
        let due = self.store.due_invitations(&day.to_string()).await?;
        let s = &self.settings.settings;
        let contact = &s.contacts.during;
        let actor = Actor::System(self.worker.clone());
        let mut invited = 0;
        for d in due {
            let token = new_token();
            let wave = bma_core::settings::iso_date::parse(&d.wave).unwrap_or(now.date());
            let context = serde_json::json!({
                "name": d.name, "address": d.address,
                "form_link": format!("{}/formulaire/{token}", self.settings.portal_base_url.trim_end_matches('/')),
                "reply_by": date_fr(now.date() + Duration::days(self.settings.reply_days)),
                "wave": date_fr(wave),
                "quota_multiplier": s.campaign.quota_multiplier,
                "cutover_min_weeks": s.campaign.cutover_min_weeks, "cutover_max_weeks": s.campaign.cutover_max_weeks,
                "contact": contact, "sender_name": s.sender.name,
            });
            let rendered = self.templates.render(TemplateKind::Invitation, &context)?;
            let message_id =
                format!("invitation.{}.{}@{}", d.mailbox_id, &new_token()[..16], self.settings.message_id_domain);
            let return_path = verp(&self.settings.bounce_address, &d.address);
            let email = build(&s.sender.name, &s.sender.address, &d.address, &rendered, &message_id, &return_path)?;
            let new_email = NewEmail {
                mailbox_id: Some(d.mailbox_id),
                kind: "invitation".into(),
                key: format!("invitation:{}", d.address),
                recipient: d.address.clone(),
                envelope_from: return_path,
                message_id,
                subject: rendered.subject.clone(),
                raw: String::from_utf8_lossy(&email.raw).into_owned(),
                run_at: now,
                max_attempts: 8,
            };
            let hash = bma_core::token::hash(&token);
            if let InviteOutcome::Invited(_) = self.store.invite(&d.address, &hash, &new_email, &actor, now).await? {
                invited += 1;
            }
        }
        Ok(invited)
    }

    /// Sends what is due in the outbox. An email whose previous sender died
    /// while sending it is sent again (the relay may have it already: at
    /// most one duplicate, in that crash window only), and the log says so.
    pub async fn send_due(&self, now: OffsetDateTime) -> Result<SendReport, EngineError> {
        let mut report = SendReport::default();
        loop {
            let batch = self.store.claim_emails(&self.worker, now, Duration::minutes(5), 20).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for e in batch {
                if e.uncertain {
                    tracing::warn!(outbox = e.id, "resending an email whose sender stopped while sending it");
                }
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

    /// One instant of the campaign: invitations due, then the outbox.
    pub async fn tick(&self, now: OffsetDateTime) -> Result<(usize, SendReport), EngineError> {
        let invited = self.invite_due(now).await?;
        let report = self.send_due(now).await?;
        Ok((invited, report))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let a = super::new_token();
        let b = super::new_token();
        assert!(bma_core::token::well_formed(&a), "{a}");
        assert_ne!(a, b);
    }
}
