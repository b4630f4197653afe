//! The migration team's daily report: what the day before brought (emails
//! sent, bounced, left unconfirmed; forms received and corrected; presync
//! volume; cutovers and rollbacks; mailboxes entering each state), where
//! the campaign's mailboxes stand now, and what needs a human, oldest
//! first; with the link to the console's dashboard.
//!
//! Rules: one report per day, to `team_address`, queued by the
//! `daily_report` job from `mail.daily_report_hour` of the campaign clock;
//! the job's key and the email's outbox key are the day, so several
//! workers stepping at once queue it once and the outbox sends it once
//! (the same guarantee as every email); the queuing and its
//! `daily_report` event are one transaction. The report names mailboxes
//! (addresses, what needs doing), never a manager's personal data.

use bma_core::EventKind;
use bma_core::settings::date_fr;
use bma_mail::{TemplateKind, To};
use serde::Serialize;
use time::{Date, OffsetDateTime};

use crate::{Engine, EngineError};

/// At most this many lines of "needs a human" in the email; the rest is in the console.
const ATTENTION_LINES: usize = 40;

/// A state and how many mailboxes are in it, for the template.
#[derive(Debug, Serialize)]
struct StateLine {
    label: &'static str,
    count: u64,
}

/// A mailbox that needs a human, for the template.
#[derive(Debug, Serialize)]
struct AttentionLine {
    address: String,
    why: &'static str,
    since: String,
}

/// `1,5 Go`, `340 Mo`, `12 ko`: a size in French units (powers of 1000).
pub fn size_fr(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "Go"), (1_000_000, "Mo"), (1_000, "ko")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            let tenths = (bytes * 10 + unit / 2) / unit;
            return if tenths.is_multiple_of(10) {
                format!("{} {name}", tenths / 10)
            } else {
                format!("{},{} {name}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} octets")
}

impl Engine {
    /// Queues the report sent on `day` (the figures of the day before, the
    /// state at `now`) for the migration team. False when it was queued
    /// before (by this worker or another).
    pub async fn daily_report(&self, day: Date, now: OffsetDateTime) -> Result<bool, EngineError> {
        let reported = day.previous_day().unwrap_or(day);
        let figures = self.store.day_counts(reported, reported).await?;
        let d = figures.into_iter().next().unwrap_or_else(|| bma_store::DayCount::empty(reported));
        let by_state = self.store.counts_by_state().await?;
        let total: u64 = by_state.values().sum();
        let migrated = by_state.get(&bma_core::State::Migrated).copied().unwrap_or(0);
        let states: Vec<StateLine> = by_state
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| StateLine { label: s.label_fr(), count: *n })
            .collect();
        let entered: Vec<StateLine> =
            d.entered.iter().map(|(s, n)| StateLine { label: s.label_fr(), count: *n }).collect();
        let mut attention = self.store.attention_list().await?;
        attention.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.address.cmp(&b.address)));
        let attention_count = attention.len();
        let lines: Vec<AttentionLine> = attention
            .into_iter()
            .take(ATTENTION_LINES)
            .map(|a| AttentionLine { address: a.address, why: a.reason.label_fr(), since: date_fr(a.since.date()) })
            .collect();
        let s = &self.settings.settings;
        let context = serde_json::json!({
            "day": date_fr(reported), "sent_on": date_fr(day),
            "d": &d, "presync_size": size_fr(d.presync_bytes),
            "entered": entered, "states": states, "total": total, "migrated": migrated,
            "attention": lines, "attention_count": attention_count,
            "attention_more": attention_count.saturating_sub(ATTENTION_LINES),
            "dashboard_url": format!("{}/console/tableau-de-bord", self.settings.portal_base_url.trim_end_matches('/')),
            "sender_name": s.sender.name,
        });
        let team = self.settings.team_address.clone();
        let to = To { address: &team, mailbox_id: None };
        let email = self.compose(TemplateKind::DailyReport, to, format!("daily_report:{day}"), &context, now)?;
        let details = serde_json::json!({
            "day": reported.to_string(), "to": team, "message_id": email.message_id,
            "attention": attention_count, "migrated": migrated, "total": total,
        });
        let reason = format!("daily report of {reported}: {migrated}/{total} migrated, {attention_count} need a human");
        Ok(self
            .store
            .queue_campaign_email(&email, EventKind::DailyReport, &reason, details, &self.actor(), now)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::size_fr;

    #[test]
    fn sizes_in_french_units() {
        for (bytes, text) in [
            (0, "0 octets"),
            (999, "999 octets"),
            (1_000, "1 ko"),
            (1_540, "1,5 ko"),
            (12_000_000, "12 Mo"),
            (340_449_999, "340,4 Mo"),
            (1_500_000_000, "1,5 Go"),
            (2_960_000_000_000, "2960 Go"),
        ] {
            assert_eq!(size_fr(bytes), text, "{bytes}");
        }
    }
}
