//! The campaign's figures, read from the store for the console's
//! dashboard and the daily report: what happened each day (emails sent,
//! bounced, uncertain; forms received; presync volume; cutovers; the
//! mailboxes entering each state) and where the mailboxes stand per wave.
//!
//! Rules:
//! - read only, from the records that already exist (the event log, the
//!   outbox, the form versions, the mailboxes); no figure is kept twice, so
//!   none can drift from what it counts;
//! - days are UTC days, the campaign's own (the scheduler's `now.date()`,
//!   the wave hour in UTC): a day is `[00:00, 24:00)` UTC;
//! - one statement per source, each a single grouped scan (the dashboard
//!   of a 3,500-mailbox campaign is a few small result sets, not a row per
//!   event); the only dialect difference, reading a number out of an
//!   event's JSON details, is [`Store::json_number`];
//! - a day in the range with nothing is still a row, with zeros: a chart
//!   or a report reads the range as it is.
//!
//! What counts as what:
//! - *sent*: emails recorded `sent` (the relay accepted them), by the
//!   day they were;
//! - *bounced*: delivery failure reports that named an email of ours (a
//!   mailbox moved to `invitation_bounced`, or a `bounce` event); a report
//!   that proves nothing (`bounce_unverified`) is not counted;
//! - *uncertain*: emails whose delivery could not be confirmed after their
//!   looks for evidence (the `email_unconfirmed` flag raised), left for a
//!   human;
//! - *forms*: first versions of the form (a mailbox's answer), beside the
//!   corrections (later versions);
//! - *presync*: messages and bytes the copies brought (the `presync`
//!   events and a first full copy's move to `presynced`);
//! - *cutovers*: mailboxes that entered `migrated`; *rollbacks* their undoing;
//! - *entered*: every mailbox that entered a state that day (transitions,
//!   and creation by a registry import for `imported`).

use std::collections::BTreeMap;

use bma_core::lifecycle::State;
use serde::Serialize;
use sqlx::Row;
use time::{Date, Duration, OffsetDateTime};

use crate::mailbox::{parse_date, parse_state};
use crate::{Store, StoreError};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Julian day of 1970-01-01.
const EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// What happened on one day (UTC) of the campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// The day.
    pub day: Date,
    /// Emails the relay accepted.
    pub emails_sent: u64,
    /// Delivery failure reports that named an email of ours.
    pub emails_bounced: u64,
    /// Emails whose delivery could not be confirmed, left for a human.
    pub emails_uncertain: u64,
    /// Forms received (first versions).
    pub forms_received: u64,
    /// Forms corrected (later versions).
    pub forms_corrected: u64,
    /// Messages the presync copied.
    pub presync_messages: u64,
    /// Bytes the presync copied.
    pub presync_bytes: u64,
    /// Mailboxes that entered `migrated`.
    pub cutovers: u64,
    /// Cutovers rolled back.
    pub rollbacks: u64,
    /// Mailboxes that entered each state (states none entered are absent).
    pub entered: BTreeMap<State, u64>,
}

impl DayCount {
    /// A day where nothing happened.
    pub fn empty(day: Date) -> DayCount {
        DayCount {
            day,
            emails_sent: 0,
            emails_bounced: 0,
            emails_uncertain: 0,
            forms_received: 0,
            forms_corrected: 0,
            presync_messages: 0,
            presync_bytes: 0,
            cutovers: 0,
            rollbacks: 0,
            entered: BTreeMap::new(),
        }
    }
}

/// How many mailboxes of one wave are in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaveStateCount {
    /// The wave (its day), or `None` for mailboxes in no wave yet.
    pub wave: Option<Date>,
    /// The state.
    pub state: State,
    /// How many.
    pub count: u64,
}

/// Cutovers placed on one day, not done yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCutovers {
    /// The cutover day.
    pub day: Date,
    /// Mailboxes scheduled (or being cut over) that day.
    pub count: u64,
    /// Their usage on the legacy platform, bytes (unknown counts as 0).
    pub bytes: u64,
}

/// The UTC day of Unix milliseconds counted in days (`at / 86_400_000`).
fn day_of_index(index: i64) -> Option<Date> {
    i32::try_from(EPOCH_JULIAN_DAY + index).ok().and_then(|j| Date::from_julian_day(j).ok())
}

/// Unix milliseconds of `day` at 00:00 UTC.
fn millis_of(day: Date) -> i64 {
    (i64::from(day.to_julian_day()) - EPOCH_JULIAN_DAY) * DAY_MS
}

/// A count read back (never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// One row per day of `[from, to]`, zeros.
fn empty_days(from: Date, to: Date) -> Vec<DayCount> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        out.push(DayCount::empty(d));
        match d.next_day() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

/// The row of `index` (days since 1970) in `days`, which start at `from`.
fn slot(days: &mut [DayCount], from: Date, index: i64) -> Option<&mut DayCount> {
    let offset = index - (i64::from(from.to_julian_day()) - EPOCH_JULIAN_DAY);
    usize::try_from(offset).ok().and_then(|i| days.get_mut(i))
}

/// One grouped row of the event log: the events of one kind (and state
/// entered) on one day.
#[derive(Debug, Clone, Copy)]
struct Grouped<'a> {
    kind: &'a str,
    to_state: Option<State>,
    /// How many events.
    n: u64,
    /// Of which flags of an email left unconfirmed.
    unconfirmed: u64,
    /// Messages copied, from presync details.
    messages: u64,
    /// Bytes copied, from presync details.
    bytes: u64,
}

/// What one grouped row of the event log adds to its day.
fn add_event(day: &mut DayCount, g: Grouped<'_>) {
    match (g.kind, g.to_state) {
        ("transition" | "imported", Some(state)) => {
            *day.entered.entry(state).or_default() += g.n;
            match state {
                State::InvitationBounced => day.emails_bounced += g.n,
                State::Migrated => day.cutovers += g.n,
                State::Presynced => {
                    day.presync_messages += g.messages;
                    day.presync_bytes += g.bytes;
                }
                _ => {}
            }
        }
        ("bounce", _) => day.emails_bounced += g.n,
        ("presync", _) => {
            day.presync_messages += g.messages;
            day.presync_bytes += g.bytes;
        }
        ("cutover_rollback", _) => day.rollbacks += g.n,
        ("attention", _) => day.emails_uncertain += g.unconfirmed,
        _ => {}
    }
}

impl Store {
    /// What happened each day from `from` to `to`, both included (UTC
    /// days): one row per day, in order, days with nothing included. An
    /// empty list when `to` is before `from`.
    pub async fn day_counts(&self, from: Date, to: Date) -> Result<Vec<DayCount>, StoreError> {
        let mut days = empty_days(from, to);
        if days.is_empty() {
            return Ok(days);
        }
        let (start, end) = (millis_of(from), millis_of(to) + DAY_MS);
        let (messages, bytes) = (
            crate::telemetry::json_number(self.backend(), "copied"),
            crate::telemetry::json_number(self.backend(), "copied_bytes"),
        );
        let presync = "(kind = 'presync' OR (kind = 'transition' AND to_state = 'presynced'))";
        // `email_unconfirmed` is the one attention reason an email raises;
        // the details of a flag always carry its reason under `attention`.
        let events = format!(
            "SELECT at / {DAY_MS} AS day, kind, to_state, COUNT(*) AS n, \
             SUM(CASE WHEN kind = 'attention' AND details LIKE '%\"attention\":\"email_unconfirmed\"%' \
             THEN 1 ELSE 0 END) AS unconfirmed, \
             CAST(SUM(CASE WHEN {presync} THEN {messages} ELSE 0 END) AS BIGINT) AS messages, \
             CAST(SUM(CASE WHEN {presync} THEN {bytes} ELSE 0 END) AS BIGINT) AS bytes \
             FROM events WHERE at >= $1 AND at < $2 \
             AND kind IN ('transition', 'imported', 'bounce', 'presync', 'cutover_rollback', 'attention') \
             GROUP BY at / {DAY_MS}, kind, to_state"
        );
        let sent = format!(
            "SELECT sent_at / {DAY_MS} AS day, COUNT(*) AS n FROM outbox \
             WHERE state = 'sent' AND sent_at >= $1 AND sent_at < $2 GROUP BY sent_at / {DAY_MS}"
        );
        let forms = format!(
            "SELECT submitted_at / {DAY_MS} AS day, SUM(CASE WHEN version = 1 THEN 1 ELSE 0 END) AS first, \
             SUM(CASE WHEN version > 1 THEN 1 ELSE 0 END) AS later FROM enrollments \
             WHERE submitted_at >= $1 AND submitted_at < $2 GROUP BY submitted_at / {DAY_MS}"
        );
        let query = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql)).bind(start).bind(end).fetch_all(self.pool());
        let events = query(events).await?;
        let sent = query(sent).await?;
        let forms = query(forms).await?;
        for r in &events {
            let to_state = r.try_get::<Option<String>, _>("to_state")?.as_deref().map(parse_state).transpose()?;
            let kind: String = r.try_get("kind")?;
            if let Some(day) = slot(&mut days, from, r.try_get("day")?) {
                let grouped = Grouped {
                    kind: &kind,
                    to_state,
                    n: count(r.try_get("n")?),
                    unconfirmed: count(r.try_get("unconfirmed")?),
                    messages: count(r.try_get("messages")?),
                    bytes: count(r.try_get("bytes")?),
                };
                add_event(day, grouped);
            }
        }
        for r in &sent {
            if let Some(day) = slot(&mut days, from, r.try_get("day")?) {
                day.emails_sent += count(r.try_get("n")?);
            }
        }
        for r in &forms {
            if let Some(day) = slot(&mut days, from, r.try_get("day")?) {
                day.forms_received += count(r.try_get("first")?);
                day.forms_corrected += count(r.try_get("later")?);
            }
        }
        Ok(days)
    }

    /// The events written after event id `after`: the last one's id and
    /// the earliest instant among them (`None` when there are none), read
    /// over the primary key only. Every change [`Store::day_counts`]
    /// counts writes an event (an email sent, a form, a transition, a
    /// copy), so the days from that instant on are the only ones it can
    /// have changed.
    pub async fn events_after(&self, after: i64) -> Result<Option<(i64, OffsetDateTime)>, StoreError> {
        let row = sqlx::query("SELECT MAX(id) AS last, MIN(at) AS first FROM events WHERE id > $1")
            .bind(after)
            .fetch_one(self.pool())
            .await?;
        let last: Option<i64> = row.try_get("last")?;
        let first: Option<i64> = row.try_get("first")?;
        Ok(last.zip(first).map(|(last, first)| (last, crate::from_millis(first))))
    }

    /// The first and last UTC days anything counted by
    /// [`Store::day_counts`] happened, if anything did: the range a chart
    /// of the whole campaign needs.
    pub async fn activity_span(&self) -> Result<Option<(Date, Date)>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(a) AS first, MAX(b) AS last FROM ( \
             SELECT MIN(at) AS a, MAX(at) AS b FROM events \
             WHERE kind IN ('transition', 'imported', 'bounce', 'presync', 'cutover_rollback', 'attention') \
             UNION ALL SELECT MIN(sent_at), MAX(sent_at) FROM outbox WHERE state = 'sent' \
             UNION ALL SELECT MIN(submitted_at), MAX(submitted_at) FROM enrollments) AS spans",
        )
        .fetch_one(self.pool())
        .await?;
        let first: Option<i64> = row.try_get("first")?;
        let last: Option<i64> = row.try_get("last")?;
        Ok(match (first, last) {
            (Some(a), Some(b)) => day_of_index(a.div_euclid(DAY_MS)).zip(day_of_index(b.div_euclid(DAY_MS))),
            _ => None,
        })
    }

    /// How many mailboxes of each wave are in each state: waves in order
    /// (mailboxes in no wave first, as `None`), states in lifecycle order;
    /// pairs with none are absent.
    pub async fn wave_state_counts(&self) -> Result<Vec<WaveStateCount>, StoreError> {
        let rows = sqlx::query("SELECT wave, state, COUNT(*) AS n FROM mailboxes GROUP BY wave, state")
            .fetch_all(self.pool())
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(WaveStateCount {
                    wave: parse_date(r.try_get("wave")?)?,
                    state: parse_state(&r.try_get::<String, _>("state")?)?,
                    count: count(r.try_get("n")?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|c| (c.wave, c.state));
        Ok(out)
    }

    /// Cutovers placed and not done yet (mailboxes `cutover_scheduled` or
    /// `migrating`), per cutover day, in order.
    pub async fn planned_cutovers(&self) -> Result<Vec<PlannedCutovers>, StoreError> {
        let rows = sqlx::query(
            "SELECT cutover_on, COUNT(*) AS n, CAST(COALESCE(SUM(usage_bytes), 0) AS BIGINT) AS bytes \
             FROM mailboxes WHERE state IN ('cutover_scheduled', 'migrating') AND cutover_on IS NOT NULL \
             GROUP BY cutover_on ORDER BY cutover_on",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(day) = parse_date(r.try_get("cutover_on")?)? {
                out.push(PlannedCutovers { day, count: count(r.try_get("n")?), bytes: count(r.try_get("bytes")?) });
            }
        }
        Ok(out)
    }
}

/// The instant `day` starts (00:00 UTC).
pub fn day_start(day: Date) -> OffsetDateTime {
    day.midnight().assume_utc()
}

/// The days of `[from, to]`, both included, at most `limit` of them (the
/// last ones kept when there are more).
pub fn clamp_days(from: Date, to: Date, limit: u32) -> (Date, Date) {
    if to < from || limit == 0 {
        return (from, to);
    }
    let earliest = to - Duration::days(i64::from(limit) - 1);
    (from.max(earliest), to)
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn days_and_millis() {
        let cases = [
            (date!(1970 - 01 - 01), 0),
            (date!(2024 - 04 - 22), crate::to_millis(datetime!(2024-04-22 00:00 UTC))),
            (date!(2024 - 05 - 31), crate::to_millis(datetime!(2024-05-31 00:00 UTC))),
        ];
        for (day, ms) in cases {
            assert_eq!(millis_of(day), ms, "{day}");
            assert_eq!(day_of_index(ms / DAY_MS), Some(day), "{day}");
            // The last millisecond of the day is still that day.
            assert_eq!(day_of_index((ms + DAY_MS - 1) / DAY_MS), Some(day), "{day}");
        }
        assert_eq!(day_start(date!(2024 - 04 - 22)), datetime!(2024-04-22 00:00 UTC));
    }

    #[test]
    fn ranges() {
        let d = date!(2024 - 04 - 22);
        assert_eq!(empty_days(d, d).len(), 1);
        assert_eq!(empty_days(d, d + Duration::days(9)).len(), 10);
        assert!(empty_days(d, d - Duration::days(1)).is_empty());
        let cases = [
            ((d, d + Duration::days(9), 30), (d, d + Duration::days(9))),
            ((d, d + Duration::days(99), 30), (d + Duration::days(70), d + Duration::days(99))),
            ((d, d + Duration::days(29), 30), (d, d + Duration::days(29))),
            ((d, d - Duration::days(1), 30), (d, d - Duration::days(1))),
        ];
        for ((from, to, limit), expected) in cases {
            assert_eq!(clamp_days(from, to, limit), expected, "{from}..{to} limit {limit}");
        }
    }

    #[test]
    fn slots() {
        let from = date!(2024 - 04 - 22);
        let mut days = empty_days(from, from + Duration::days(2));
        let index = millis_of(from) / DAY_MS;
        assert_eq!(slot(&mut days, from, index - 1), None);
        assert_eq!(slot(&mut days, from, index).map(|d| d.day), Some(from));
        assert_eq!(slot(&mut days, from, index + 2).map(|d| d.day), Some(from + Duration::days(2)));
        assert_eq!(slot(&mut days, from, index + 3), None);
    }

    #[test]
    fn what_each_event_counts_for() {
        use State as S;
        let zero = || DayCount::empty(date!(2024 - 04 - 22));
        let g = |kind, to_state, n, unconfirmed, messages, bytes| Grouped {
            kind,
            to_state,
            n,
            unconfirmed,
            messages,
            bytes,
        };
        let table = [
            (
                g("transition", Some(S::InvitationBounced), 2, 0, 0, 0),
                DayCount { emails_bounced: 2, entered: [(S::InvitationBounced, 2)].into(), ..zero() },
            ),
            (g("bounce", None, 3, 0, 0, 0), DayCount { emails_bounced: 3, ..zero() }),
            (
                g("transition", Some(S::Migrated), 4, 0, 0, 0),
                DayCount { cutovers: 4, entered: [(S::Migrated, 4)].into(), ..zero() },
            ),
            (
                g("transition", Some(S::Presynced), 1, 0, 10, 2048),
                DayCount { presync_messages: 10, presync_bytes: 2048, entered: [(S::Presynced, 1)].into(), ..zero() },
            ),
            (g("presync", None, 5, 0, 7, 700), DayCount { presync_messages: 7, presync_bytes: 700, ..zero() }),
            (g("attention", None, 6, 2, 0, 0), DayCount { emails_uncertain: 2, ..zero() }),
            (g("cutover_rollback", None, 1, 0, 0, 0), DayCount { rollbacks: 1, ..zero() }),
            (g("email_sent", None, 9, 0, 0, 0), zero()),
            (
                g("imported", Some(S::Imported), 3500, 0, 0, 0),
                DayCount { entered: [(S::Imported, 3500)].into(), ..zero() },
            ),
        ];
        for (grouped, expected) in table {
            let mut day = zero();
            add_event(&mut day, grouped);
            assert_eq!(day, expected, "{grouped:?}");
        }
    }
}
