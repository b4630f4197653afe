//! Mail 2 sent again on request: the manager of a migrated mailbox lost
//! the email that told them where the new interface is and how to set up
//! their mail clients, and called the helpdesk.
//!
//! Rules:
//! - only for a mailbox `migrated` (mail 2 is sent by the cutover, never
//!   before): any other state is refused with what to do instead;
//! - the copy carries no password and no password link, ever: a password
//!   given at the cutover was shown once; one lost is replaced by a new
//!   password (`reset_password`, an operator's action), which this copy
//!   says; so an agent's resend never changes who can log in;
//! - it goes to the BMA (delivered by the relay to where the mailbox
//!   lives now, the new platform) and to the verified backup address of
//!   the latest form, through the outbox (each email once, keyed by the
//!   instant of the request), with one `mail2_resent` event naming who
//!   asked and why, in the same transaction;
//! - it says again what the cutover's `sieve` step took out (read from
//!   that step's event) and links the mail clients' guides, as mail 2 did.

use bma_core::settings::date_fr;
use bma_core::switch::Step;
use bma_core::{Actor, EventKind, State};
use bma_mail::{TemplateKind, To};
use time::OffsetDateTime;

use crate::{Engine, EngineError};

/// What sending mail 2 again did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail2Again {
    /// Where it goes: the BMA, and the verified backup address if any.
    pub recipients: Vec<String>,
    /// The outbox ids (the emails leave at the next send).
    pub outbox: Vec<i64>,
}

impl Engine {
    /// Queues mail 2 again for the migrated mailbox `address`, without any
    /// password (see the module doc), recorded as `actor`'s with `reason`.
    pub async fn resend_mail2(
        &self,
        address: &str,
        actor: &Actor,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Mail2Again, EngineError> {
        let switch = self.settings.switch.as_ref().ok_or_else(|| {
            EngineError::Incomplete("mail 2 needs [cutover] (the new webmail and client settings) configured".into())
        })?;
        let address = self.address(address)?;
        let mailbox = self.store.mailbox(&address).await?;
        if mailbox.state != State::Migrated {
            return Err(EngineError::Refused(format!(
                "{address} is {} ({}): mail 2 is sent by the cutover; resend mail 1 instead, or cut over first",
                mailbox.state,
                mailbox.state.label_fr()
            )));
        }
        let progress = self.store.switch_steps(&address).await?;
        let migrated_on = progress.steps.iter().rev().find(|s| s.step == Step::Mail2).map_or(now, |s| s.at);
        let form = self.store.latest_enrollment(mailbox.id).await?;
        let password_unknown = form.as_ref().is_some_and(|f| !f.form.knows_password);
        let mut recipients = vec![address.as_str().to_owned()];
        recipients.extend(self.verified_backup(mailbox.id, form.as_ref()).await?);
        let s = &self.settings.settings;
        let c = &switch.clients;
        let mut context = self.with_trust(serde_json::json!({
            "name": mailbox.name, "address": address.as_str(),
            "migrated_on": date_fr(migrated_on.date()),
            "resent": true,
            "webmail_url": switch.webmail_url,
            "password_unknown": password_unknown,
            "password_link": null, "new_password": null,
            "quota_multiplier": s.campaign.quota_multiplier,
            "imap_host": c.imap_host, "imap_port": c.imap_port, "imap_security": c.imap_security,
            "smtp_host": c.smtp_host, "smtp_port": c.smtp_port, "smtp_security": c.smtp_security,
            "contact": &s.contacts.after, "sender_name": s.sender.name,
        }));
        // What the cutover's `sieve` step took out, said again.
        crate::switch::sieve::add_to_mail2(&mut context, progress.details(Step::Sieve), &self.settings.portal_base_url);
        let stamp = now.unix_timestamp_nanos() / 1_000_000;
        let mut emails = Vec::new();
        for to in &recipients {
            let key = format!("mail2:{address}:again:{to}:{stamp}");
            let target = To { address: to, mailbox_id: Some(mailbox.id) };
            emails.push(self.compose(TemplateKind::Migrated, target, key, &context, now)?);
        }
        let outbox = self.store.queue_noted(&address, &emails, EventKind::Mail2Resent, actor, reason, now).await?;
        tracing::info!(address = %address, recipients = recipients.len(), "mail 2 queued again");
        Ok(Mail2Again { recipients, outbox })
    }
}
