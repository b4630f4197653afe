//! The emails the campaign decides to send: mail 1 of the waves due,
//! reminders to those who have not answered, and the deadline list to the
//! migration team. Each is rendered from its French template and queued
//! in the outbox in the same transaction as what it records (the mailbox
//! invited, the reminder's token and event, the campaign event); the
//! outbox key makes queuing it twice impossible.

use bma_core::settings::{date_fr, iso_date};
use bma_core::{EventKind, TokenHash};
use bma_mail::message::build;
use bma_mail::{Rendered, TemplateKind, verp};
use bma_store::{InviteOutcome, NewEmail, OlderLinks, ResentLink};
use time::{Duration, OffsetDateTime, Time};

use crate::{Engine, EngineError, new_token};

impl Engine {
    /// The instant of day `d`'s wave hour.
    pub(crate) fn wave_instant(&self, day: time::Date) -> OffsetDateTime {
        let hour = Time::from_hms(self.settings.settings.campaign.wave_hour.min(23), 0, 0).unwrap_or(Time::MIDNIGHT);
        day.with_time(hour).assume_utc()
    }

    /// The last day whose wave hour has passed by `now`.
    pub(crate) fn campaign_day(&self, now: OffsetDateTime) -> time::Date {
        if now >= self.wave_instant(now.date()) { now.date() } else { now.date() - Duration::days(1) }
    }

    fn compose(
        &self,
        kind: &str,
        mailbox_id: Option<i64>,
        key: String,
        recipient: &str,
        rendered: &Rendered,
        run_at: OffsetDateTime,
    ) -> Result<NewEmail, EngineError> {
        let s = &self.settings.settings;
        let message_id = self.message_id(kind, mailbox_id.unwrap_or(0));
        let return_path = verp(&self.settings.bounce_address, recipient);
        let email = build(&s.sender.name, &s.sender.address, recipient, rendered, &message_id, &return_path)?;
        Ok(NewEmail {
            mailbox_id,
            kind: kind.to_owned(),
            key,
            recipient: recipient.to_owned(),
            envelope_from: return_path,
            message_id,
            subject: rendered.subject.clone(),
            raw: String::from_utf8_lossy(&email.raw).into_owned(),
            run_at,
            max_attempts: 8,
        })
    }

    /// The one reply-by date of a mailbox, the same in mail 1, every
    /// reminder and every resend: `reply_days` after its mail 1 (never in
    /// the past, for a mail 1 sent again after that date).
    fn reply_by(&self, invited_at: OffsetDateTime, now: OffsetDateTime) -> String {
        date_fr((invited_at.date() + Duration::days(self.settings.reply_days)).max(now.date()))
    }

    /// What every email to a manager says besides its own content: where
    /// the form and the login are, and the official FAQ.
    fn trust_context(&self) -> serde_json::Value {
        serde_json::json!({
            "faq_url": self.settings.settings.campaign.faq_url,
            "login_domain": self.settings.login_domain,
        })
    }

    /// `context` with the variables of [`Engine::trust_context`] added.
    fn with_trust(&self, mut context: serde_json::Value) -> serde_json::Value {
        if let (Some(c), serde_json::Value::Object(t)) = (context.as_object_mut(), self.trust_context()) {
            c.extend(t);
        }
        context
    }

    /// Mail 1 for one mailbox, with its personal link.
    fn render_invitation(
        &self,
        name: &str,
        address: &str,
        token: &str,
        wave: time::Date,
        invited_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Rendered, EngineError> {
        let s = &self.settings.settings;
        let context = self.with_trust(serde_json::json!({
            "name": name, "address": address,
            "form_link": self.form_link(token),
            "reply_by": self.reply_by(invited_at, now),
            "wave": date_fr(wave),
            "quota_multiplier": s.campaign.quota_multiplier,
            "cutover_min_weeks": s.campaign.cutover_min_weeks, "cutover_max_weeks": s.campaign.cutover_max_weeks,
            "contact": &s.contacts.during, "sender_name": s.sender.name,
        }));
        Ok(self.templates.render(TemplateKind::Invitation, &context)?)
    }

    /// Invites every scheduled mailbox whose wave has started by `now`:
    /// token, mail 1 and `invited` in one transaction each. Returns how
    /// many were invited now.
    pub async fn invite_due(&self, now: OffsetDateTime) -> Result<usize, EngineError> {
        let day = self.campaign_day(now);
        let due = self.store.due_invitations(&day.to_string()).await?;
        let mut invited = 0;
        for d in due {
            let token = new_token();
            let wave = iso_date::parse(&d.wave).unwrap_or(now.date());
            let rendered = self.render_invitation(&d.name, &d.address, &token, wave, now, now)?;
            let key = format!("invitation:{}", d.address);
            let email = self.compose("invitation", Some(d.mailbox_id), key, &d.address, &rendered, now)?;
            let (address, hash) = (self.address(&d.address)?, TokenHash::of(&token));
            if let InviteOutcome::Invited(_) = self.store.invite(&address, &hash, &email, &self.actor(), now).await? {
                invited += 1;
            }
        }
        Ok(invited)
    }

    /// Sends mail 1 again to one mailbox (the helpdesk's action after a
    /// bounce, a lost email or a link that may have leaked), with a fresh
    /// link; the earlier links are revoked unless `older` keeps them.
    /// Returns the outbox id.
    pub async fn resend_invitation(
        &self,
        address: &str,
        older: OlderLinks,
        actor: &bma_core::Actor,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<i64, EngineError> {
        // An address that cannot be a mailbox is one the registry does not have.
        let address = bma_core::Address::parse(address, &self.settings.settings.addresses)
            .map_err(|_| bma_store::StoreError::NotFound(address.trim().to_lowercase()))?;
        let m = self.store.mailbox(&address).await?;
        let token = new_token();
        let invited_at = self.store.invited_at(&address).await?.unwrap_or(now);
        let wave = m.wave.unwrap_or(now.date());
        let rendered = self.render_invitation(&m.name, &m.address, &token, wave, invited_at, now)?;
        let key = format!("invitation:{}:resent:{}", m.address, now.unix_timestamp_nanos());
        let email = self.compose("invitation", Some(m.id), key, &m.address, &rendered, now)?;
        let hash = TokenHash::of(&token);
        let link = ResentLink { token_hash: &hash, older };
        Ok(self.store.resend_invitation(&address, &link, &email, actor, reason, now).await?)
    }

    /// Queues the reminders due by `now` (campaign.reminder_days after
    /// mail 1, to mailboxes still `invited`), each with a fresh link.
    pub async fn remind_due(&self, now: OffsetDateTime) -> Result<usize, EngineError> {
        let s = &self.settings.settings;
        let due = self.store.due_reminders(now, &s.campaign.reminder_days).await?;
        let mut queued = 0;
        for d in due {
            let token = new_token();
            let context = self.with_trust(serde_json::json!({
                "name": d.name, "address": d.address,
                "form_link": self.form_link(&token),
                "invited_on": date_fr(d.invited_at.date()),
                "reply_by": self.reply_by(d.invited_at, now),
                "contact": &s.contacts.during, "sender_name": s.sender.name,
            }));
            let rendered = self.templates.render(TemplateKind::Reminder, &context)?;
            let key = format!("reminder:{}:{}", d.rank, d.address);
            let email = self.compose("reminder", Some(d.mailbox_id), key, &d.address, &rendered, now)?;
            let (address, hash) = (self.address(&d.address)?, TokenHash::of(&token));
            if self.store.remind(&address, d.rank, &hash, &email, &self.actor(), now).await? {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// At the invitation deadline: every mailbox without a delivered mail 1
    /// is listed in an email to the migration team (once). Returns the
    /// number listed, or `None` if the list was sent before.
    pub async fn deadline_watch(&self, now: OffsetDateTime) -> Result<Option<usize>, EngineError> {
        let s = &self.settings.settings;
        let deadline = s.campaign.invitation_deadline;
        let list = self.store.undelivered_invitations().await?;
        let context = serde_json::json!({
            "deadline": date_fr(deadline), "count": list.len(), "mailboxes": list,
            "sender_name": s.sender.name,
        });
        let rendered = self.templates.render(TemplateKind::DeadlineWatch, &context)?;
        let team = self.settings.team_address.clone();
        let email =
            self.compose("deadline_watch", None, format!("deadline_watch:{deadline}"), &team, &rendered, now)?;
        let details = serde_json::json!({
            "deadline": deadline.to_string(), "to": team, "message_id": email.message_id,
            "mailboxes": list.iter().map(|u| &u.address).collect::<Vec<_>>(),
        });
        let reason = format!("{} mailboxes without a delivered mail 1 on {deadline}", list.len());
        let queued = self
            .store
            .queue_campaign_email(&email, EventKind::DeadlineWatch, &reason, details, &self.actor(), now)
            .await?;
        Ok(queued.then_some(list.len()))
    }
}
