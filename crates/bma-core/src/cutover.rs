//! Cutover slots: when each enrolled mailbox moves to the new platform.
//!
//! A mailbox invited on day `I` must be cut over within its window, between
//! `I + min_weeks` and `I + max_weeks` (the FAQ's "3 to 12 weeks between
//! the two emails"), on the campaign's cutover weekday, under a weekly
//! capacity in mailboxes and in bytes (the load on both platforms).
//!
//! The planner is earliest-deadline-first, week by week: among the
//! mailboxes whose window has opened, those whose window closes first are
//! placed first. For unit-size jobs with release dates and deadlines this
//! places every mailbox whenever any placement could; the byte capacity
//! only defers a mailbox to a later week of its window. Slots already
//! given are kept and count against their week's capacity.
//!
//! Invariants: no placed mailbox is outside its window or before `today`;
//! no week exceeds either capacity, except a mailbox larger than the whole
//! byte capacity, which gets a week on its own rather than none; every
//! candidate is either placed or listed as unplaced with the reason.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::Serialize;
use time::{Date, Duration, Weekday};

/// The rules of cutover planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutoverRules {
    /// Day of the week of the cutovers.
    pub weekday: Weekday,
    /// Minimum weeks after mail 1.
    pub min_weeks: u32,
    /// Maximum weeks after mail 1.
    pub max_weeks: u32,
    /// Mailboxes per week, `None` for no limit.
    pub capacity: Option<usize>,
    /// Bytes per week, `None` for no limit.
    pub capacity_bytes: Option<u64>,
}

/// A mailbox to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutoverCandidate {
    /// Its address.
    pub address: String,
    /// When mail 1 left.
    pub invited_on: Date,
    /// Its size (usage), for the byte capacity.
    pub bytes: u64,
    /// Not before this day (the form arrived late in the window), if any.
    pub not_before: Option<Date>,
    /// A slot it already has (kept, counted against its week).
    pub slot: Option<Date>,
}

/// One cutover day and its load (slots kept and new).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CutoverWeek {
    /// The cutover day.
    pub day: Date,
    /// Mailboxes cut over that day.
    pub mailboxes: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// A mailbox that could not be placed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unplaced {
    /// Its address.
    pub address: String,
    /// The last day of its window.
    pub window_closes: Date,
    /// Why, in words.
    pub reason: String,
}

/// The outcome of [`plan_cutovers`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CutoverPlan {
    /// New slots: address and cutover day, in day then address order.
    pub slots: Vec<(String, Date)>,
    /// Every cutover day with a load, kept slots included, in order.
    pub weeks: Vec<CutoverWeek>,
    /// What could not be placed.
    pub unplaced: Vec<Unplaced>,
}

impl CutoverRules {
    /// The first and last cutover days of a mailbox invited on `invited_on`,
    /// not before `today`; `None` when no cutover day is left in the window.
    pub fn window(&self, invited_on: Date, today: Date) -> Option<(Date, Date)> {
        let opens = invited_on + Duration::weeks(i64::from(self.min_weeks));
        let closes = invited_on + Duration::weeks(i64::from(self.max_weeks));
        let first = next_weekday(opens.max(today), self.weekday);
        let last = previous_weekday(closes, self.weekday);
        (first <= last).then_some((first, last))
    }

    /// The last day of the window of a mailbox invited on `invited_on`.
    pub fn closes(&self, invited_on: Date) -> Date {
        invited_on + Duration::weeks(i64::from(self.max_weeks))
    }
}

/// The first `weekday` on or after `d`.
pub fn next_weekday(d: Date, weekday: Weekday) -> Date {
    let ahead =
        (i64::from(weekday.number_days_from_monday()) - i64::from(d.weekday().number_days_from_monday())).rem_euclid(7);
    d + Duration::days(ahead)
}

/// The last `weekday` on or before `d`.
pub fn previous_weekday(d: Date, weekday: Weekday) -> Date {
    let back =
        (i64::from(d.weekday().number_days_from_monday()) - i64::from(weekday.number_days_from_monday())).rem_euclid(7);
    d - Duration::days(back)
}

/// Places every candidate without a slot on a cutover day of its window,
/// from `today` on, earliest deadline first, under the weekly capacities.
pub fn plan_cutovers(rules: &CutoverRules, today: Date, candidates: &[CutoverCandidate]) -> CutoverPlan {
    let mut load: BTreeMap<Date, (usize, u64)> = BTreeMap::new();
    for c in candidates {
        if let Some(day) = c.slot {
            let entry = load.entry(day).or_default();
            entry.0 += 1;
            entry.1 += c.bytes;
        }
    }
    let mut plan = CutoverPlan::default();
    // (first day, last day, index) of every mailbox to place.
    let mut pending: Vec<(Date, Date, usize)> = Vec::new();
    for (i, c) in candidates.iter().enumerate().filter(|(_, c)| c.slot.is_none()) {
        match rules.window(c.invited_on, c.not_before.map_or(today, |d| d.max(today))) {
            Some((first, last)) => pending.push((first, last, i)),
            None => plan.unplaced.push(Unplaced {
                address: c.address.clone(),
                window_closes: rules.closes(c.invited_on),
                reason: format!(
                    "its window ({} to {} weeks after mail 1 of {}) has no cutover day left after {today}",
                    rules.min_weeks, rules.max_weeks, c.invited_on
                ),
            }),
        }
    }
    pending.sort_by(|a, b| (a.0, a.1, &candidates[a.2].address).cmp(&(b.0, b.1, &candidates[b.2].address)));
    let mut next = 0;
    // Released mailboxes, earliest window end first.
    let mut ready: BinaryHeap<Reverse<(Date, &str, usize)>> = BinaryHeap::new();
    let mut day = match pending.first() {
        Some(p) => p.0,
        None => return finish(plan, load),
    };
    while next < pending.len() || !ready.is_empty() {
        while next < pending.len() && pending[next].0 <= day {
            let (_, last, i) = pending[next];
            ready.push(Reverse((last, candidates[i].address.as_str(), i)));
            next += 1;
        }
        let (mut count, mut bytes) = load.get(&day).copied().unwrap_or_default();
        let mut deferred = Vec::new();
        while let Some(Reverse((last, address, i))) = ready.pop() {
            if last < day {
                plan.unplaced.push(Unplaced {
                    address: address.to_owned(),
                    window_closes: rules.closes(candidates[i].invited_on),
                    reason: format!(
                        "no cutover day left in its window (last possible {last}): raise campaign.cutover_capacity \
                         or campaign.cutover_capacity_gb"
                    ),
                });
                continue;
            }
            if rules.capacity.is_some_and(|cap| count >= cap) {
                ready.push(Reverse((last, address, i)));
                break;
            }
            let size = candidates[i].bytes;
            let fits = match rules.capacity_bytes {
                None => true,
                Some(cap) => bytes + size <= cap || count == 0,
            };
            if !fits {
                deferred.push(Reverse((last, address, i)));
                continue;
            }
            count += 1;
            bytes += size;
            plan.slots.push((address.to_owned(), day));
        }
        ready.extend(deferred);
        if count > 0 {
            load.insert(day, (count, bytes));
        }
        day += Duration::weeks(1);
        if ready.is_empty() && next < pending.len() && pending[next].0 > day {
            day = pending[next].0;
        }
    }
    plan.slots.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    finish(plan, load)
}

fn finish(mut plan: CutoverPlan, load: BTreeMap<Date, (usize, u64)>) -> CutoverPlan {
    plan.weeks =
        load.into_iter().map(|(day, (mailboxes, bytes))| CutoverWeek { day, mailboxes, bytes }).collect::<Vec<_>>();
    plan.unplaced.sort_by(|a, b| (a.window_closes, &a.address).cmp(&(b.window_closes, &b.address)));
    plan
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn rules(capacity: Option<usize>, capacity_bytes: Option<u64>) -> CutoverRules {
        CutoverRules { weekday: Weekday::Tuesday, min_weeks: 3, max_weeks: 12, capacity, capacity_bytes }
    }

    fn candidate(address: &str, invited_on: Date, bytes: u64) -> CutoverCandidate {
        CutoverCandidate { address: address.to_owned(), invited_on, bytes, not_before: None, slot: None }
    }

    #[test]
    fn weekdays() {
        for (d, next, prev) in [
            (date!(2024 - 04 - 22), date!(2024 - 04 - 23), date!(2024 - 04 - 16)),
            (date!(2024 - 04 - 23), date!(2024 - 04 - 23), date!(2024 - 04 - 23)),
            (date!(2024 - 04 - 28), date!(2024 - 04 - 30), date!(2024 - 04 - 23)),
        ] {
            assert_eq!(next_weekday(d, Weekday::Tuesday), next, "{d}");
            assert_eq!(previous_weekday(d, Weekday::Tuesday), prev, "{d}");
        }
    }

    #[test]
    fn windows() {
        let r = rules(None, None);
        let monday = date!(2024 - 04 - 22);
        assert_eq!(r.window(monday, monday), Some((date!(2024 - 05 - 14), date!(2024 - 07 - 09))));
        // Late in the window: only the days left.
        assert_eq!(r.window(monday, date!(2024 - 07 - 01)), Some((date!(2024 - 07 - 02), date!(2024 - 07 - 09))));
        assert_eq!(r.window(monday, date!(2024 - 07 - 10)), None);
    }

    #[test]
    fn earliest_deadline_first_under_capacity() {
        // Two waves, capacity 2 a week: the first wave's mailboxes go first.
        let w1 = date!(2024 - 04 - 22);
        let w2 = date!(2024 - 04 - 29);
        let cands = vec![
            candidate("b1", w2, 1),
            candidate("a1", w1, 1),
            candidate("a2", w1, 1),
            candidate("a3", w1, 1),
            candidate("b2", w2, 1),
        ];
        let plan = plan_cutovers(&rules(Some(2), None), w1, &cands);
        assert!(plan.unplaced.is_empty());
        assert_eq!(
            plan.slots,
            vec![
                ("a1".to_owned(), date!(2024 - 05 - 14)),
                ("a2".to_owned(), date!(2024 - 05 - 14)),
                ("a3".to_owned(), date!(2024 - 05 - 21)),
                ("b1".to_owned(), date!(2024 - 05 - 21)),
                ("b2".to_owned(), date!(2024 - 05 - 28)),
            ]
        );
    }

    #[test]
    fn bytes_defer_and_big_ones_get_a_week_alone() {
        let w = date!(2024 - 04 - 22);
        let cands =
            vec![candidate("a", w, 60), candidate("b", w, 60), candidate("huge", w, 500), candidate("c", w, 30)];
        let plan = plan_cutovers(&rules(None, Some(100)), w, &cands);
        assert!(plan.unplaced.is_empty());
        for week in &plan.weeks {
            assert!(week.bytes <= 100 || week.mailboxes == 1, "{week:?}");
        }
        assert_eq!(plan.slots.len(), 4);
    }

    #[test]
    fn kept_slots_count_and_overflow_is_reported() {
        let w = date!(2024 - 04 - 22);
        // Capacity 1 a week, a window of 10 Tuesdays: 11 mailboxes cannot all fit.
        let mut cands: Vec<CutoverCandidate> = (0..10).map(|i| candidate(&format!("m{i:02}"), w, 1)).collect();
        cands.push(CutoverCandidate { slot: Some(date!(2024 - 05 - 14)), ..candidate("kept", w, 1) });
        let plan = plan_cutovers(&rules(Some(1), None), w, &cands);
        assert_eq!(plan.slots.len(), 8, "{plan:?}");
        assert!(plan.slots.iter().all(|(_, d)| *d != date!(2024 - 05 - 14)));
        assert_eq!(plan.unplaced.len(), 2);
        assert!(plan.unplaced[0].reason.contains("raise campaign.cutover_capacity"), "{}", plan.unplaced[0].reason);
        assert!(plan.weeks.iter().all(|wk| wk.mailboxes == 1));
    }

    #[test]
    fn a_closed_window_is_reported() {
        let plan =
            plan_cutovers(&rules(None, None), date!(2024 - 08 - 01), &[candidate("late", date!(2024 - 04 - 22), 1)]);
        assert!(plan.slots.is_empty());
        assert_eq!(plan.unplaced[0].window_closes, date!(2024 - 07 - 15));
        assert!(plan.unplaced[0].reason.contains("no cutover day left"), "{}", plan.unplaced[0].reason);
    }

    /// Properties on generated registries: every placement inside its
    /// window and after today, capacities held, everything accounted for,
    /// and nothing refused while a later week of its window had room.
    #[test]
    fn properties_on_generated_registries() {
        let mut seed = 0x5eed_u64;
        let mut next = move || {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let start = date!(2024 - 04 - 22);
        for round in 0..200 {
            let n = (next() % 300) as usize;
            let capacity = (next() % 3 > 0).then(|| 1 + (next() % 60) as usize);
            let capacity_bytes = (next() % 2 == 0).then(|| 1_000 + next() % 10_000);
            let r = CutoverRules { capacity, capacity_bytes, ..rules(None, None) };
            let today = start + Duration::days((next() % 30) as i64);
            let cands: Vec<CutoverCandidate> = (0..n)
                .map(|i| candidate(&format!("m{i:04}"), start + Duration::weeks((next() % 6) as i64), next() % 2_000))
                .collect();
            let plan = plan_cutovers(&r, today, &cands);
            assert_eq!(plan.slots.len() + plan.unplaced.len(), n, "round {round}");
            let by_address: BTreeMap<&str, &CutoverCandidate> = cands.iter().map(|c| (c.address.as_str(), c)).collect();
            for (address, day) in &plan.slots {
                let (first, last) = r.window(by_address[address.as_str()].invited_on, today).expect("window");
                assert!(first <= *day && *day <= last && day.weekday() == Weekday::Tuesday, "round {round}");
            }
            for week in &plan.weeks {
                assert!(capacity.is_none_or(|c| week.mailboxes <= c), "round {round}: {week:?}");
                assert!(capacity_bytes.is_none_or(|c| week.bytes <= c || week.mailboxes == 1), "round {round}");
            }
            if capacity_bytes.is_none() {
                // Without the byte capacity, a refusal means every day of
                // its window was full.
                for u in &plan.unplaced {
                    if let Some((first, last)) = r.window(by_address[u.address.as_str()].invited_on, today) {
                        let mut d = first;
                        while d <= last {
                            let full = plan.weeks.iter().find(|w| w.day == d).map_or(0, |w| w.mailboxes);
                            assert_eq!(Some(full), capacity, "round {round}: {} refused with room on {d}", u.address);
                            d += Duration::weeks(1);
                        }
                    }
                }
            }
        }
    }
}
