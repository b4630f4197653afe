//! The dashboard (`/console/tableau-de-bord`): the campaign at a glance
//! for the helpdesk and the migration team: mailboxes per state and per
//! wave, progress over time, emails, forms, presync volume, cutovers per
//! week against the capacity, and what needs a human, oldest first.
//!
//! Rules:
//! - any staff role sees it: it holds figures, and of the mailboxes only
//!   what an agent sees anyway (address, state, why it needs a human,
//!   since when), no person's data;
//! - every figure comes from the store's reads (`bma_store`'s `figures`,
//!   `counts_by_state`, `attention_list`, `outbox_counts`), read at each
//!   view; the one exception, [`DayCache`], keeps the days' counts and
//!   reads again only the days from the earliest event written since
//!   (every change they count writes one), so a view costs what changed,
//!   not the whole event log;
//! - the charts are SVG drawn on the server ([`super::charts`]), each with
//!   its table: the page needs neither JavaScript nor the pictures;
//! - the days are the campaign's (UTC), from its start (or the first thing
//!   that happened, if earlier) to today, or to its end once over (or the
//!   last thing that happened, if later), at most [`MAX_DAYS`] of them.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use bma_store::clamp_days;
use time::Date;

use super::auth::Staff;
use super::charts::{self, Chart, number};
use super::mailbox::when;
use super::pages::{ConsoleLayout, render};
use crate::Portal;
use crate::error::Answer;

/// The most days the day charts cover (the last ones).
pub(crate) const MAX_DAYS: u32 = 180;

/// The most mailboxes the list of what needs a human shows (the oldest);
/// the whole list is an export.
pub(crate) const MAX_ATTENTION: usize = 200;

/// A figure at a glance.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    id: &'static str,
    label: &'static str,
    value: String,
}

/// A mailbox that needs a human, as listed.
#[derive(Debug, Clone)]
pub(crate) struct AttentionRow {
    address: String,
    state: &'static str,
    state_code: &'static str,
    reason: &'static str,
    since: String,
}

/// The page.
#[derive(Template)]
#[template(path = "console/dashboard.html")]
pub(crate) struct DashboardPage {
    layout: ConsoleLayout,
    period: String,
    figures: Vec<Figure>,
    charts: Vec<Chart>,
    attention: Vec<AttentionRow>,
    attention_total: usize,
    /// What the forwarding audits found (automatic forwarding outside ends at the cutover).
    forwarding: bma_store::ForwardingSummary,
}

/// The days the charts cover: from the campaign's `start` (or the first
/// activity, if earlier) to `today`, or to the campaign's `end` once past
/// it, or to the last activity if later; at most [`MAX_DAYS`], the last.
pub(crate) fn period(start: Date, end: Date, today: Date, activity: Option<(Date, Date)>) -> (Date, Date) {
    let from = activity.map_or(start, |(first, _)| first.min(start));
    let last = activity.map_or(from, |(_, last)| last);
    let to = today.min(end).max(last).max(from);
    clamp_days(from, to, MAX_DAYS)
}

/// The days' counts of the last view, with the last event they had seen.
#[derive(Debug, Default)]
pub(crate) struct DayCache(tokio::sync::Mutex<Option<CachedDays>>);

#[derive(Debug)]
struct CachedDays {
    from: Date,
    to: Date,
    seen: i64,
    days: Vec<bma_store::DayCount>,
}

impl DayCache {
    /// The counts of the days `from..=to`: the kept ones, the days from
    /// the earliest event written since read again.
    async fn days(
        &self,
        store: &bma_store::Store,
        from: Date,
        to: Date,
    ) -> Result<Vec<bma_store::DayCount>, crate::error::WebError> {
        let mut kept = self.0.lock().await;
        let fresh = match kept.as_mut().filter(|c| c.from == from && c.to == to) {
            Some(c) => {
                if let Some((last, first)) = store.events_after(c.seen).await? {
                    let since = first.date().max(from);
                    if since <= to {
                        let again = store.day_counts(since, to).await?;
                        c.days.retain(|d| d.day < since);
                        c.days.extend(again);
                    }
                    c.seen = last;
                }
                return Ok(c.days.clone());
            }
            None => {
                // The last event id first: an event written meanwhile is read again next time.
                let seen = store.latest_event_id().await?;
                CachedDays { from, to, seen, days: store.day_counts(from, to).await? }
            }
        };
        let days = fresh.days.clone();
        *kept = Some(fresh);
        Ok(days)
    }
}

/// `GET /console/tableau-de-bord`.
pub(crate) async fn page(State(p): State<Portal>, staff: Staff) -> Answer {
    let store = p.store();
    let today = p.now().date();
    let campaign = &p.settings().campaign.campaign;
    let states = store.counts_by_state().await?;
    let waves = store.wave_state_counts().await?;
    let (from, to) = period(campaign.start, campaign.end, today, store.activity_span().await?);
    let days = match p.console() {
        Some(console) => console.days.days(store, from, to).await?,
        None => store.day_counts(from, to).await?,
    };
    let planned = store.planned_cutovers().await?;
    let attention = store.attention_list().await?;
    let outbox = store.outbox_counts().await?;
    let forwarding = store.forwarding_summary().await?;

    let shown = days.iter().filter(|d| d.day <= today).count();
    let total = |f: fn(&bma_store::DayCount) -> u64| days.iter().filter(|d| d.day <= today).map(f).sum::<u64>();
    let capacity = (campaign.cutover_capacity > 0).then_some(campaign.cutover_capacity);
    let mut cutovers = charts::cutover_weeks(&days, &planned, capacity);
    if campaign.cutover_capacity_gb > 0 {
        cutovers.summary.push_str(&format!(
            " Capacité en volume : {} Go par semaine.",
            number(u64::from(campaign.cutover_capacity_gb))
        ));
    }
    let outbox_in = |state: &str| outbox.get(state).copied().unwrap_or(0);
    let figures = vec![
        Figure { id: "chiffre-boites", label: "Boîtes", value: number(states.values().sum()) },
        Figure {
            id: "chiffre-migrees",
            label: "Migrées",
            value: number(states.get(&bma_core::State::Migrated).copied().unwrap_or(0)),
        },
        Figure { id: "chiffre-formulaires", label: "Formulaires reçus", value: number(total(|d| d.forms_received)) },
        Figure { id: "chiffre-envoyes", label: "Emails envoyés", value: number(outbox_in("sent")) },
        Figure { id: "chiffre-erreurs", label: "Emails revenus en erreur", value: number(total(|d| d.emails_bounced)) },
        Figure {
            id: "chiffre-incertains",
            label: "Emails à la distribution non confirmée",
            value: number(outbox_in("unconfirmed")),
        },
        Figure { id: "chiffre-attente", label: "Emails en attente d'envoi", value: number(outbox_in("pending")) },
        Figure {
            id: "chiffre-presync",
            label: "Volume présynchronisé",
            value: charts::megabytes(total(|d| d.presync_bytes)),
        },
        Figure { id: "chiffre-attention", label: "Boîtes à traiter", value: number(attention.len() as u64) },
    ];
    let charts = vec![
        charts::by_state(&states),
        charts::by_wave(&waves),
        charts::progress(&days, today),
        charts::emails(&days, today),
        charts::forms(&days, today),
        charts::presync(&days, today),
        cutovers,
    ];
    let period = if shown == 0 {
        "La campagne n'a pas encore commencé.".to_owned()
    } else {
        let last = to.min(today);
        format!(
            "Du {} au {} ({} jours, en temps universel).",
            bma_core::settings::date_fr(from),
            bma_core::settings::date_fr(last),
            shown
        )
    };
    let attention_total = attention.len();
    let page = DashboardPage {
        layout: ConsoleLayout::of("Tableau de bord", Some(&staff)),
        period,
        figures,
        charts,
        attention: attention
            .into_iter()
            .take(MAX_ATTENTION)
            .map(|a| AttentionRow {
                state: a.state.label_fr(),
                state_code: a.state.as_str(),
                reason: a.reason.label_fr(),
                since: when(a.since),
                address: a.address,
            })
            .collect(),
        attention_total,
        forwarding,
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::date;

    use super::*;

    #[test]
    fn the_period_shown() {
        let (start, end) = (date!(2024 - 04 - 22), date!(2024 - 05 - 31));
        let cases = [
            // Before the campaign, nothing yet: its first day.
            (date!(2024 - 04 - 01), None, (start, start)),
            // Under way: from its start to today.
            (date!(2024 - 05 - 02), None, (start, date!(2024 - 05 - 02))),
            // An import a week before the start: from that day.
            (
                date!(2024 - 05 - 02),
                Some((date!(2024 - 04 - 15), date!(2024 - 05 - 02))),
                (date!(2024 - 04 - 15), date!(2024 - 05 - 02)),
            ),
            // Over: to its end.
            (date!(2024 - 09 - 01), Some((date!(2024 - 04 - 15), date!(2024 - 05 - 20))), (date!(2024 - 04 - 15), end)),
            // A late cutover after the end: to that day.
            (date!(2024 - 09 - 01), Some((start, date!(2024 - 06 - 11))), (start, date!(2024 - 06 - 11))),
            // A year of activity: the last 180 days.
            (
                date!(2025 - 04 - 22),
                Some((start, date!(2025 - 04 - 22))),
                (date!(2025 - 04 - 22) - Duration::days(179), date!(2025 - 04 - 22)),
            ),
        ];
        for (today, activity, expected) in cases {
            assert_eq!(period(start, end, today, activity), expected, "{today} {activity:?}");
        }
    }
}
