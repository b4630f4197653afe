//! The emails the campaign decides to send: mail 1 of the waves due,
//! reminders to those who have not answered, and the deadline list to the
//! migration team. Each is rendered from its French template and queued
//! in the outbox in the same transaction as what it records (the mailbox
//! invited, the reminder's token and event, the campaign event); the
//! outbox key makes queuing it twice impossible.

use bma_core::settings::{date_fr, iso_date};
use bma_core::{EventKind, TokenHash};
use bma_mail::{Outgoing, TemplateKind, To};
use bma_store::{Announced, InviteOutcome, NewEmail, OlderLinks, ResentLink};
use time::{Duration, OffsetDateTime, Time};

use crate::{Engine, EngineError, new_token};

/// One mailbox's mail 1, as its template is given it.
struct MailOne<'a> {
    name: &'a str,
    address: &'a str,
    /// The token of its personal link.
    token: &'a str,
    /// Its wave's day.
    wave: time::Date,
    /// When its first mail 1 left (the reply-by date counts from it).
    invited_at: OffsetDateTime,
    /// What it forwards outside.
    forwarding: &'a Announced,
}

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

    /// The email of `kind` to `recipient` rendered with `context` by the
    /// one composer, as an outbox row due at `run_at`.
    pub(crate) fn compose(
        &self,
        kind: TemplateKind,
        to: To<'_>,
        key: String,
        context: &serde_json::Value,
        run_at: OffsetDateTime,
    ) -> Result<NewEmail, EngineError> {
        Ok(outbox_row(self.composer.compose(kind, to, context)?, to.mailbox_id, key, run_at))
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
    pub(crate) fn with_trust(&self, mut context: serde_json::Value) -> serde_json::Value {
        if let (Some(c), serde_json::Value::Object(t)) = (context.as_object_mut(), self.trust_context()) {
            c.extend(t);
        }
        context
    }

    /// What mail 1 says to one mailbox, with its personal link.
    fn invitation_context(&self, m: &MailOne<'_>, now: OffsetDateTime) -> serde_json::Value {
        let s = &self.settings.settings;
        self.with_trust(serde_json::json!({
            "forwarding": m.forwarding,
            "name": m.name, "address": m.address,
            "form_link": self.form_link(m.token),
            "reply_by": self.reply_by(m.invited_at, now),
            "wave": date_fr(m.wave),
            "quota_multiplier": s.campaign.quota_multiplier,
            "cutover_min_weeks": s.campaign.cutover_min_weeks, "cutover_max_weeks": s.campaign.cutover_max_weeks,
            "contact": &s.contacts.during, "sender_name": s.sender.name,
        }))
    }

    /// Invites every scheduled mailbox whose wave has started by `now`:
    /// token, mail 1 and `invited` in one transaction each. Returns how
    /// many were invited now.
    pub async fn invite_due(&self, now: OffsetDateTime) -> Result<usize, EngineError> {
        let day = self.campaign_day(now);
        let due = self.store.due_invitations(&day.to_string()).await?;
        if self.settings.audit_before_mail1 && !due.is_empty() {
            let addresses: Vec<bma_core::Address> =
                due.iter().map(|d| self.address(&d.address)).collect::<Result<_, _>>()?;
            self.audit_before_mail1(&addresses, now).await?;
        }
        let mut invited = 0;
        for d in due {
            let token = new_token();
            let wave = iso_date::parse(&d.wave).unwrap_or(now.date());
            let forwarding = self.announced(d.mailbox_id).await?;
            let one = MailOne {
                name: &d.name,
                address: &d.address,
                token: &token,
                wave,
                invited_at: now,
                forwarding: &forwarding,
            };
            let context = self.invitation_context(&one, now);
            let key = format!("invitation:{}", d.address);
            let to = To { address: &d.address, mailbox_id: Some(d.mailbox_id) };
            let email = self.compose(TemplateKind::Invitation, to, key, &context, now)?;
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
        let forwarding = self.announced(m.id).await?;
        let one =
            MailOne { name: &m.name, address: &m.address, token: &token, wave, invited_at, forwarding: &forwarding };
        let context = self.invitation_context(&one, now);
        let key = format!("invitation:{}:resent:{}", m.address, now.unix_timestamp_nanos());
        let to = To { address: &m.address, mailbox_id: Some(m.id) };
        let email = self.compose(TemplateKind::Invitation, to, key, &context, now)?;
        let hash = TokenHash::of(&token);
        let link = ResentLink { token_hash: &hash, older };
        Ok(self.store.resend_invitation(&address, &link, &email, actor, reason, now).await?)
    }

    /// What mail 1 and the reminders say of `address`'s forwarding: its
    /// last audit's announcement (nothing when it was never audited).
    async fn announced(&self, mailbox_id: i64) -> Result<Announced, EngineError> {
        Ok(self.store.forwarding_audit_of(mailbox_id).await?.map(|a| a.announced()).unwrap_or_default())
    }

    /// The forwarding audit of a wave's boxes before their mail 1, when
    /// the legacy platform has a ManageSieve: each box's findings
    /// recorded. A box that cannot be audited still gets its mail 1
    /// (without the mention); a server that cannot be reached is tried
    /// with the first box only, not with every box of the wave.
    async fn audit_before_mail1(&self, due: &[bma_core::Address], now: OffsetDateTime) -> Result<(), EngineError> {
        if self.settings.legacy.as_ref().is_none_or(|l| l.sieve.is_none()) {
            return Ok(());
        }
        let actor = self.actor();
        let first = self.audit_forwarding(&due[..1], &actor, now, |_| {}).await?;
        if first.iter().any(|o| o.unreachable) {
            tracing::warn!(
                mailboxes = due.len(),
                "forwarding audit before mail 1 skipped: the legacy ManageSieve cannot be reached"
            );
            return Ok(());
        }
        let rest = self.audit_forwarding(&due[1..], &actor, now, |_| {}).await?;
        let outside = first.iter().chain(&rest).filter(|o| o.audit.forwards_outside()).count();
        tracing::info!(mailboxes = due.len(), forwarding_outside = outside, "forwarding audited before mail 1");
        Ok(())
    }

    /// Queues the reminders due by `now` (campaign.reminder_days after
    /// mail 1, to mailboxes still `invited`), each with a fresh link.
    pub async fn remind_due(&self, now: OffsetDateTime) -> Result<usize, EngineError> {
        let s = &self.settings.settings;
        let due = self.store.due_reminders(now, &s.campaign.reminder_days).await?;
        let mut queued = 0;
        for d in due {
            let token = new_token();
            let forwarding = self.announced(d.mailbox_id).await?;
            let context = self.with_trust(serde_json::json!({
                "forwarding": forwarding,
                "name": d.name, "address": d.address,
                "form_link": self.form_link(&token),
                "invited_on": date_fr(d.invited_at.date()),
                "reply_by": self.reply_by(d.invited_at, now),
                "contact": &s.contacts.during, "sender_name": s.sender.name,
            }));
            let key = format!("reminder:{}:{}", d.rank, d.address);
            let to = To { address: &d.address, mailbox_id: Some(d.mailbox_id) };
            let email = self.compose(TemplateKind::Reminder, to, key, &context, now)?;
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
        let team = self.settings.team_address.clone();
        let to = To { address: &team, mailbox_id: None };
        let email =
            self.compose(TemplateKind::DeadlineWatch, to, format!("deadline_watch:{deadline}"), &context, now)?;
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

/// An email composed by [`bma_mail::Composer`] as a row of the outbox: the
/// one seam between the composer and the store, for the engine and the web
/// crate alike (8 attempts before an email is given up).
pub fn outbox_row(out: Outgoing, mailbox_id: Option<i64>, key: String, run_at: OffsetDateTime) -> NewEmail {
    NewEmail {
        mailbox_id,
        kind: out.kind.name().to_owned(),
        key,
        raw: out.raw_text(),
        recipient: out.recipient,
        envelope_from: out.return_path,
        message_id: out.message_id,
        subject: out.subject,
        run_at,
        max_attempts: 8,
    }
}
