//! The campaign as a whole and what its scheduler asks of the store:
//! the campaign's state (started, paused), reminders, bounces, the
//! deadline watch, cutover slots, presync results and the mailboxes that
//! need a human.
//!
//! Invariants: each change is one transaction with its event (campaign
//! events have no mailbox); a reminder is queued at most once per mailbox
//! and rank (its outbox key), with a fresh form token whose hash is kept
//! beside the first one, so every link a manager received keeps working;
//! a mailbox is flagged for the helpdesk at most once per reason.

use bma_core::lifecycle::{Actor, State};
use serde::Serialize;
use sqlx::Row;
use time::{Date, OffsetDateTime};

use crate::events::{Event, lock_mailbox, record};
use crate::mailbox::{parse_date, parse_state};
use crate::outbox::NewEmail;
use crate::{Store, StoreError, from_millis, to_millis};

/// Where the campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Not started: nothing is invited or sent.
    NotStarted,
    /// Running.
    Running,
    /// Paused by an operator: nothing new is invited, sent or copied.
    Paused,
}

impl CampaignState {
    /// The name used in the store and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::NotStarted => "not_started",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
        }
    }
}

/// What an operator can do to the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    /// not started → running.
    Start,
    /// running → paused.
    Pause,
    /// paused → running.
    Resume,
}

/// A reminder due for a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    /// Mailbox id.
    pub mailbox_id: i64,
    /// Address.
    pub address: String,
    /// Establishment name.
    pub name: String,
    /// When mail 1 left.
    pub invited_at: OffsetDateTime,
    /// Rank of the reminder (1 for the first).
    pub rank: usize,
}

/// A mailbox without a delivered mail 1, for the deadline watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undelivered {
    /// Address.
    pub address: String,
    /// Establishment name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Why it has no delivered mail 1, in words.
    pub why: String,
}

/// A mailbox to place on a cutover day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutoverRow {
    /// Address.
    pub address: String,
    /// Its state.
    pub state: State,
    /// When mail 1 left.
    pub invited_at: OffsetDateTime,
    /// When the form came (last time it became enrolled).
    pub enrolled_at: Option<OffsetDateTime>,
    /// Usage on the legacy platform.
    pub usage_bytes: Option<u64>,
    /// Its slot, if it has one.
    pub cutover_on: Option<Date>,
}

/// A mailbox that needs a human, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attention {
    /// Address.
    pub address: String,
    /// Its state.
    pub state: State,
    /// `invitation_bounced`, `window_closed`, `presync_failed`, `no_cutover_slot`,
    /// `email_unconfirmed`.
    pub reason: String,
    /// Since when.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

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
    /// The campaign's state.
    pub async fn campaign_state(&self) -> Result<CampaignState, StoreError> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM campaign WHERE id = 1").fetch_optional(self.pool()).await?;
        match state.as_deref() {
            None | Some("not_started") => Ok(CampaignState::NotStarted),
            Some("running") => Ok(CampaignState::Running),
            Some("paused") => Ok(CampaignState::Paused),
            Some(other) => Err(StoreError::Corrupt(format!("campaign state '{other}'"))),
        }
    }

    /// Starts, pauses or resumes the campaign, with its event; refuses an
    /// action that does not fit the current state, saying why.
    pub async fn change_campaign(
        &self,
        action: CampaignAction,
        actor: &Actor,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<CampaignState, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM campaign WHERE id = 1").fetch_optional(&mut *tx).await?;
        let current = current.unwrap_or_else(|| "not_started".to_owned());
        let (from, to, verb) = match action {
            CampaignAction::Start => ("not_started", CampaignState::Running, "start"),
            CampaignAction::Pause => ("running", CampaignState::Paused, "pause"),
            CampaignAction::Resume => ("paused", CampaignState::Running, "resume"),
        };
        if current != from {
            return Err(StoreError::CampaignState(format!(
                "cannot {verb} the campaign: it is {} (only a campaign {} can be {verb}d)",
                current.replace('_', " "),
                from.replace('_', " ")
            )));
        }
        let ms = to_millis(now);
        // When it started, paused or resumed is in the campaign's events.
        sqlx::query(
            "INSERT INTO campaign (id, state, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(to.as_str())
        .bind(ms)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, None, now, actor, &format!("campaign_{verb}"), reason, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(to)
    }

    /// Invited mailboxes (no form yet) owed a reminder by `now`, given the
    /// reminder days (counted in days from mail 1's day); each gets only the latest one due (a worker that was
    /// stopped for a while does not send two at once), and none if that one
    /// or a later one was already queued. Reminder keys are
    /// `reminder:<rank>:<address>`.
    pub async fn due_reminders(&self, now: OffsetDateTime, days: &[u32]) -> Result<Vec<DueReminder>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, address, name, invited_at FROM mailboxes WHERE state = 'invited' AND invited_at IS NOT NULL \
             ORDER BY address",
        )
        .fetch_all(self.pool())
        .await?;
        // The highest rank queued per mailbox, from the keys `reminder:<rank>:<address>`.
        let keys = sqlx::query(
            "SELECT o.mailbox_id, o.key FROM outbox o JOIN mailboxes m ON m.id = o.mailbox_id \
             WHERE o.kind = 'reminder' AND m.state = 'invited'",
        )
        .fetch_all(self.pool())
        .await?;
        let mut queued: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        for k in &keys {
            let key: String = k.try_get("key")?;
            let rank = key.split(':').nth(1).and_then(|r| r.parse::<usize>().ok()).unwrap_or(0);
            let entry = queued.entry(k.try_get("mailbox_id")?).or_default();
            *entry = (*entry).max(rank);
        }
        let mut due = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let invited_at = from_millis(r.try_get("invited_at")?);
            // By day: the daily job runs at the wave hour, perhaps a little
            // earlier in the day than mail 1 left.
            let reached =
                days.iter().filter(|d| invited_at.date() + time::Duration::days(i64::from(**d)) <= now.date()).count();
            if reached > queued.get(&id).copied().unwrap_or(0) {
                due.push(DueReminder {
                    mailbox_id: id,
                    address: r.try_get("address")?,
                    name: r.try_get("name")?,
                    invited_at,
                    rank: reached,
                });
            }
        }
        Ok(due)
    }

    /// Queues reminder `rank` of an invited mailbox with a fresh form token
    /// (its hash kept beside the others), with its event, in one
    /// transaction. Returns false when the mailbox is no longer invited or
    /// that reminder is already queued.
    pub async fn remind(
        &self,
        address: &str,
        rank: usize,
        token_hash: &str,
        email: &NewEmail,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        if state != State::Invited {
            return Ok(false);
        }
        let (outbox_id, queued) = crate::outbox::insert_email(&mut tx, email, now).await?;
        if !queued {
            return Ok(false);
        }
        insert_form_token(&mut tx, token_hash, id, "reminder", to_millis(now)).await?;
        let details = serde_json::json!({ "outbox_id": outbox_id, "message_id": email.message_id, "rank": rank });
        insert_event(&mut tx, Some(id), now, actor, "reminder_queued", &format!("reminder {rank} queued"), details)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a delivery failure report for `address`: an invited mailbox
    /// becomes `invitation_bounced` (flagged for the helpdesk) with the
    /// status code; any other gets a `bounce` event only.
    pub async fn record_bounce(
        &self,
        address: &str,
        details: serde_json::Value,
        reason: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<BounceOutcome, StoreError> {
        let address = address.trim().to_lowercase();
        let mut tx = self.pool().begin().await?;
        let (id, state) = match lock_mailbox(&mut tx, &address).await {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => return Ok(BounceOutcome::Unknown),
            Err(e) => return Err(e),
        };
        let ms = to_millis(now);
        let outcome = if state == State::Invited {
            sqlx::query(
                "UPDATE mailboxes SET state = 'invitation_bounced', attention = 'invitation_bounced', \
                 attention_at = $1, updated_at = $1 WHERE id = $2 AND state = 'invited'",
            )
            .bind(ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let event = Event::transition(id, State::Invited, State::InvitationBounced, reason, details);
            record(&mut tx, ms, &actor.to_text(), event).await?;
            BounceOutcome::Bounced(address)
        } else {
            insert_event(&mut tx, Some(id), now, actor, "bounce", reason, details).await?;
            BounceOutcome::Recorded(address)
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
        insert_event(&mut conn, None, now, actor, "bounce_unverified", reason, details).await
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

    /// Every mailbox without a delivered mail 1: not invited yet, excluded,
    /// bounced, or invited but its email not accepted by the relay.
    pub async fn undelivered_invitations(&self) -> Result<Vec<Undelivered>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.address, m.name, m.state, m.blocked_from, m.excluded, m.wave, \
             (SELECT o.state FROM outbox o WHERE o.mailbox_id = m.id AND o.kind = 'invitation' \
              ORDER BY CASE WHEN o.state = 'sent' THEN 0 ELSE 1 END, o.id DESC LIMIT 1) AS mail1 \
             FROM mailboxes m ORDER BY m.address",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let state = parse_state(&r.try_get::<String, _>("state")?)?;
            let blocked_from: Option<String> = r.try_get("blocked_from")?;
            let effective = match (state, blocked_from) {
                (State::Blocked, Some(b)) => parse_state(&b)?,
                _ => state,
            };
            let mail1: Option<String> = r.try_get("mail1")?;
            let excluded = r.try_get::<i64, _>("excluded")? != 0;
            let wave = parse_date(r.try_get("wave")?)?;
            let why = match effective {
                State::Imported if excluded => "excluded from the waves".to_owned(),
                State::Imported => "in no wave".to_owned(),
                State::Scheduled => {
                    format!("planned for the wave of {}, not sent", wave.map(|d| d.to_string()).unwrap_or_default())
                }
                State::InvitationBounced => "mail 1 bounced".to_owned(),
                State::Invited if mail1.as_deref() != Some("sent") => {
                    format!("mail 1 not accepted by the relay ({})", mail1.as_deref().unwrap_or("not queued"))
                }
                _ => continue,
            };
            let why = if state == State::Blocked { format!("{why}; blocked by an operator") } else { why };
            out.push(Undelivered { address: r.try_get("address")?, name: r.try_get("name")?, state, why });
        }
        Ok(out)
    }

    /// Queues an email of the campaign as a whole (no mailbox) with a
    /// campaign event, in one transaction; false when its key was queued
    /// before.
    pub async fn queue_campaign_email(
        &self,
        email: &NewEmail,
        event: &str,
        reason: &str,
        details: serde_json::Value,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (_, queued) = crate::outbox::insert_email(&mut tx, email, now).await?;
        if queued {
            insert_event(&mut tx, None, now, actor, event, reason, details).await?;
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// Enrolled, presynced and cutover-scheduled mailboxes, for the cutover planner.
    pub async fn cutover_rows(&self) -> Result<Vec<CutoverRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.address, m.state, m.invited_at, m.usage_bytes, m.cutover_on, \
             (SELECT MAX(e.at) FROM events e WHERE e.mailbox_id = m.id AND e.to_state = 'enrolled') AS enrolled_at \
             FROM mailboxes m WHERE m.state IN ('enrolled', 'presynced', 'cutover_scheduled') \
             AND m.invited_at IS NOT NULL ORDER BY m.address",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CutoverRow {
                    address: r.try_get("address")?,
                    state: parse_state(&r.try_get::<String, _>("state")?)?,
                    invited_at: from_millis(r.try_get("invited_at")?),
                    enrolled_at: r.try_get::<Option<i64>, _>("enrolled_at")?.map(from_millis),
                    usage_bytes: r.try_get::<Option<i64>, _>("usage_bytes")?.and_then(|n| u64::try_from(n).ok()),
                    cutover_on: parse_date(r.try_get("cutover_on")?)?,
                })
            })
            .collect()
    }

    /// Gives an enrolled or presynced mailbox its cutover day, moving it to
    /// `cutover_scheduled`, with its event. False if its state changed.
    pub async fn schedule_cutover(
        &self,
        address: &str,
        day: Date,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row =
            sqlx::query("SELECT id, state FROM mailboxes WHERE address = $1 AND state IN ('enrolled', 'presynced')")
                .bind(address.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else { return Ok(false) };
        let id: i64 = row.try_get("id")?;
        let from = parse_state(&row.try_get::<String, _>("state")?)?;
        let ms = to_millis(now);
        let done = sqlx::query(
            "UPDATE mailboxes SET state = 'cutover_scheduled', cutover_on = $1, updated_at = $2 \
             WHERE id = $3 AND state = $4",
        )
        .bind(day.to_string())
        .bind(ms)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let reason = format!("cutover on {day}");
        let details = serde_json::json!({ "cutover_on": day.to_string() });
        record(&mut tx, ms, &actor.to_text(), Event::transition(id, from, State::CutoverScheduled, &reason, details))
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Flags a mailbox for the helpdesk with `reason`, with an event, unless
    /// it is already flagged for that reason, or for a bounced mail 1 (the
    /// flag the helpdesk must act on first, until a resend clears it).
    /// Returns whether it was flagged now.
    pub async fn flag(
        &self,
        address: &str,
        reason: &str,
        why: &str,
        details: serde_json::Value,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let ms = to_millis(now);
        let done = sqlx::query(
            "UPDATE mailboxes SET attention = $1, attention_at = $2 WHERE address = $3 \
             AND (attention IS NULL OR (attention <> $1 AND attention <> 'invitation_bounced'))",
        )
        .bind(reason.to_owned())
        .bind(ms)
        .bind(address.to_owned())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let id: i64 = sqlx::query_scalar("SELECT id FROM mailboxes WHERE address = $1")
            .bind(address.to_owned())
            .fetch_one(&mut *tx)
            .await?;
        let mut details = details;
        if let Some(map) = details.as_object_mut() {
            map.insert("attention".to_owned(), serde_json::Value::String(reason.to_owned()));
        }
        insert_event(&mut tx, Some(id), now, actor, "attention", why, details).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Invited mailboxes (no form) whose cutover window closed before `closed_before`.
    pub async fn invited_before(&self, invited_before: OffsetDateTime) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT address FROM mailboxes WHERE state = 'invited' AND invited_at < $1 \
             AND (attention IS NULL OR attention <> 'window_closed') ORDER BY address",
        )
        .bind(to_millis(invited_before))
        .fetch_all(self.pool())
        .await?)
    }

    /// Every mailbox flagged for the helpdesk, oldest flag first.
    pub async fn attention_list(&self) -> Result<Vec<Attention>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, state, attention, attention_at FROM mailboxes WHERE attention IS NOT NULL \
             ORDER BY attention_at, address",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Attention {
                    address: r.try_get("address")?,
                    state: parse_state(&r.try_get::<String, _>("state")?)?,
                    reason: r.try_get("attention")?,
                    since: from_millis(r.try_get("attention_at")?),
                })
            })
            .collect()
    }

    /// Mailboxes the presync copies: invited, enrolled, presynced or
    /// cutover-scheduled, in address order.
    pub async fn presync_candidates(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT address FROM mailboxes WHERE state IN ('invited', 'enrolled', 'presynced', 'cutover_scheduled') \
             ORDER BY address",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Records a successful presync: the first one of an enrolled mailbox
    /// moves it to `presynced`; later ones are an event with their figures
    /// when they copied something.
    pub async fn record_presync(
        &self,
        address: &str,
        details: serde_json::Value,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, address).await?;
        let ms = to_millis(now);
        sqlx::query(
            "UPDATE mailboxes SET attention = NULL, attention_at = NULL WHERE id = $1 AND attention = 'presync_failed'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if state == State::Enrolled {
            sqlx::query("UPDATE mailboxes SET state = 'presynced', updated_at = $1 WHERE id = $2")
                .bind(ms)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let event = Event::transition(id, State::Enrolled, State::Presynced, "first full copy done", details);
            record(&mut tx, ms, &actor.to_text(), event).await?;
        } else if details["copied"].as_u64().unwrap_or(0) > 0 {
            // A copy that brought nothing new is not worth a line in the timeline.
            insert_event(&mut tx, Some(id), now, actor, "presync", "copy brought up to date", details).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_event(
    conn: &mut sqlx::AnyConnection,
    mailbox_id: Option<i64>,
    at: OffsetDateTime,
    actor: &Actor,
    kind: &str,
    reason: &str,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    record(conn, to_millis(at), &actor.to_text(), Event::note(mailbox_id, kind, reason, details)).await
}

impl Store {
    /// Emails in the outbox per state (`pending`, `sending`, `sent`, `dead`).
    pub async fn outbox_counts(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state").fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("state")?, u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0))))
            .collect()
    }
}

/// What `bma mailbox resend` does with the links sent before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OlderLinks {
    /// They stop working (the default: a link may have leaked or reached
    /// the wrong person).
    Revoke,
    /// They keep working (the manager only lost the email).
    Keep,
}

impl OlderLinks {
    fn as_str(self) -> &'static str {
        match self {
            OlderLinks::Revoke => "revoked",
            OlderLinks::Keep => "kept",
        }
    }
}

/// The fresh link of a resent mail 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResentLink<'a> {
    /// SHA-256 (hex) of its token.
    pub token_hash: &'a str,
    /// What becomes of the links sent before.
    pub older: OlderLinks,
}

/// Records the hash of a link sent to a mailbox (mail 1, a reminder, a
/// resend): every link of a mailbox is in `form_tokens`, looked up there
/// by one query, valid until revoked or the campaign's end.
pub(crate) async fn insert_form_token(
    conn: &mut sqlx::AnyConnection,
    token_hash: &str,
    mailbox_id: i64,
    kind: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO form_tokens (token_hash, mailbox_id, kind, created_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash.to_owned())
        .bind(mailbox_id)
        .bind(kind.to_owned())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Sends mail 1 again (the helpdesk, after a bounce, a lost email or a
    /// link that may have leaked): a fresh link, the links sent before
    /// revoked unless `older` says to keep them, the email queued, an
    /// `invitation_bounced` mailbox back to `invited` with its flag
    /// cleared, all in one transaction with the event (which says how many
    /// links were revoked). Refused, with the reason, for a mailbox that
    /// was never invited or has answered.
    pub async fn resend_invitation(
        &self,
        address: &str,
        link: &ResentLink<'_>,
        email: &NewEmail,
        actor: &Actor,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let address = address.trim().to_lowercase();
        let mut tx = self.pool().begin().await?;
        let (id, state) = lock_mailbox(&mut tx, &address).await?;
        if !matches!(state, State::Invited | State::InvitationBounced) {
            return Err(StoreError::Illegal {
                address,
                why: bma_core::lifecycle::IllegalTransition::NotAllowed { from: state, to: State::Invited },
            });
        }
        let (outbox_id, _) = crate::outbox::insert_email(&mut tx, email, now).await?;
        let ms = to_millis(now);
        let older = link.older;
        let revoked = match older {
            OlderLinks::Revoke => {
                sqlx::query("UPDATE form_tokens SET revoked_at = $1 WHERE mailbox_id = $2 AND revoked_at IS NULL")
                    .bind(ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
            OlderLinks::Keep => 0,
        };
        insert_form_token(&mut tx, link.token_hash, id, "resend", ms).await?;
        let details = serde_json::json!({
            "outbox_id": outbox_id, "message_id": email.message_id, "to": email.recipient,
            "older_links": older.as_str(), "links_revoked": revoked,
        });
        let why = match older {
            OlderLinks::Revoke => format!("mail 1 sent again ({revoked} older links revoked): {reason}"),
            OlderLinks::Keep => format!("mail 1 sent again (older links kept): {reason}"),
        };
        if state == State::InvitationBounced {
            sqlx::query(
                "UPDATE mailboxes SET state = 'invited', attention = NULL, attention_at = NULL, updated_at = $1 \
                 WHERE id = $2 AND state = 'invitation_bounced'",
            )
            .bind(ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let event = Event::transition(id, State::InvitationBounced, State::Invited, &why, details);
            record(&mut tx, ms, &actor.to_text(), event).await?;
        } else {
            insert_event(&mut tx, Some(id), now, actor, "invitation_resent", &why, details).await?;
        }
        tx.commit().await?;
        Ok(outbox_id)
    }
}
