//! A whole campaign on simulated time, with modelled behaviour, to choose
//! capacities before starting: nothing is sent, nothing is copied.
//!
//! The invitation waves come from the real wave planner and the cutovers
//! from the real cutover planner; between them, each manager behaves by
//! chance drawn from [`Behaviour`] (a seeded generator, so the same inputs
//! give the same report): the invitation bounces, or the form comes back
//! after a delay (reminders go out on their days to those who have not
//! answered yet), or never. The report counts, week by week, what the
//! servers and the helpdesk will see.
//!
//! Invariant: pure and deterministic; every mailbox is accounted for once
//! (bounced, answered, or silent).

use std::collections::BTreeMap;

use serde::Serialize;
use time::{Date, Duration, Weekday};

use crate::cutover::{CutoverCandidate, CutoverRules, plan_cutovers, previous_weekday};
use crate::planner::{Candidate, Refusal, WaveRules, plan_waves};

/// How managers and mail systems behave, as shares and delays.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Behaviour {
    /// Share of invitations that bounce (0 to 1).
    pub bounce_share: f64,
    /// Share of managers (of delivered invitations) who answer the form at all.
    pub answer_share: f64,
    /// Mean days between mail 1 and the form, for those who answer.
    pub answer_mean_days: f64,
    /// Share of those who answer who say they lost the password.
    pub lost_password_share: f64,
    /// Share of lost passwords that still end in a helpdesk call after cutover.
    pub lost_password_call_share: f64,
    /// Helpdesk calls per invitation delivered (questions about the form).
    pub calls_per_invitation: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            bounce_share: 0.01,
            answer_share: 0.9,
            answer_mean_days: 5.0,
            lost_password_share: 0.2,
            lost_password_call_share: 0.3,
            calls_per_invitation: 0.05,
        }
    }
}

impl Behaviour {
    /// Every share outside 0..=1 or negative delay, in words with its name.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [
            ("bounce share", self.bounce_share),
            ("answer share", self.answer_share),
            ("lost-password share", self.lost_password_share),
            ("lost-password call share", self.lost_password_call_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                out.push(format!("the {name} must be between 0 and 1, not {v}"));
            }
        }
        if self.answer_mean_days.is_nan() || self.answer_mean_days < 0.0 {
            out.push(format!("the mean answer delay must be 0 days or more, not {}", self.answer_mean_days));
        }
        if self.calls_per_invitation.is_nan() || self.calls_per_invitation < 0.0 {
            out.push(format!("calls per invitation must be 0 or more, not {}", self.calls_per_invitation));
        }
        out
    }
}

/// A mailbox of the simulated registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMailbox {
    /// Its address.
    pub address: String,
    /// Its size, for presync and cutover volumes.
    pub bytes: u64,
}

/// What the simulation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationInput {
    /// The invitation waves.
    pub waves: WaveRules,
    /// The cutover slots.
    pub cutovers: CutoverRules,
    /// Days after mail 1 of the reminders.
    pub reminder_days: Vec<u32>,
    /// The invitation deadline (the helpdesk hears from the bounced then).
    pub deadline: Date,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// Seed of the generator.
    pub seed: u64,
}

/// The load of one week (Monday to Sunday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekLoad {
    /// The Monday.
    pub week: Date,
    /// Mail 1 sent.
    pub invitations: u64,
    /// Reminders sent.
    pub reminders: u64,
    /// Invitations bounced.
    pub bounces: u64,
    /// Forms received.
    pub forms: u64,
    /// Bytes of first full copies (presync) started.
    pub presync_bytes: u64,
    /// Cutovers.
    pub cutovers: u64,
    /// Bytes cut over.
    pub cutover_bytes: u64,
    /// Expected helpdesk calls.
    pub helpdesk_calls: u64,
}

/// The outcome of [`simulate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulationReport {
    /// Week by week.
    pub weeks: Vec<WeekLoad>,
    /// Mailboxes simulated.
    pub mailboxes: u64,
    /// Invitations that bounced.
    pub bounced: u64,
    /// Managers who never answered.
    pub silent: u64,
    /// Forms received.
    pub answered: u64,
    /// Answered but no cutover slot within the window.
    pub unplaced_cutovers: u64,
    /// The busiest week for the helpdesk.
    pub peak_helpdesk_calls: u64,
}

/// SplitMix64: small, seedable, good enough for modelling.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponentially distributed days with this mean, rounded down.
    fn days(&mut self, mean: f64) -> i64 {
        (-(1.0 - self.unit()).ln() * mean).floor() as i64
    }

    /// A count with this expectation: the whole part, plus one by chance.
    fn count(&mut self, expected: f64) -> u64 {
        let whole = expected.floor();
        whole as u64 + u64::from(self.chance(expected - whole))
    }
}

/// Runs the campaign on `mailboxes` from the first wave to the last cutover.
pub fn simulate(input: &SimulationInput, mailboxes: &[SimMailbox]) -> Result<SimulationReport, Refusal> {
    let candidates: Vec<Candidate> = mailboxes
        .iter()
        .map(|m| Candidate {
            address: m.address.clone(),
            invited_in: None,
            invited: false,
            pinned: None,
            excluded: false,
            priority: 0,
        })
        .collect();
    let plan = plan_waves(&input.waves, input.waves.start, &candidates)?;
    let bytes: BTreeMap<&str, u64> = mailboxes.iter().map(|m| (m.address.as_str(), m.bytes)).collect();
    let mut rng = Rng(input.seed);
    let b = &input.behaviour;
    let mut weeks: BTreeMap<Date, WeekLoad> = BTreeMap::new();
    let mut report = SimulationReport {
        weeks: Vec::new(),
        mailboxes: mailboxes.len() as u64,
        bounced: 0,
        silent: 0,
        answered: 0,
        unplaced_cutovers: 0,
        peak_helpdesk_calls: 0,
    };
    let mut enrolled: Vec<CutoverCandidate> = Vec::new();
    let mut lost_password: Vec<String> = Vec::new();
    for wave in &plan.waves {
        for address in &wave.planned {
            let day = wave.starts;
            let size = bytes.get(address.as_str()).copied().unwrap_or(0);
            at(&mut weeks, day).invitations += 1;
            if rng.chance(b.bounce_share) {
                report.bounced += 1;
                at(&mut weeks, day).bounces += 1;
                // Nobody reads mail 1: the call comes at the deadline, or
                // earlier if the deadline watch reaches them first.
                at(&mut weeks, input.deadline).helpdesk_calls += 1;
                continue;
            }
            at(&mut weeks, day).presync_bytes += size;
            let answers = rng.chance(b.answer_share);
            let delay = rng.days(b.answer_mean_days);
            let window_days = i64::from(input.cutovers.max_weeks) * 7;
            let answered_on = (answers && delay < window_days).then(|| day + Duration::days(delay));
            for r in &input.reminder_days {
                let reminder = day + Duration::days(i64::from(*r));
                if answered_on.is_none_or(|a| a > reminder) {
                    at(&mut weeks, reminder).reminders += 1;
                }
            }
            let calls = rng.count(b.calls_per_invitation);
            at(&mut weeks, day).helpdesk_calls += calls;
            match answered_on {
                Some(on) => {
                    report.answered += 1;
                    at(&mut weeks, on).forms += 1;
                    if rng.chance(b.lost_password_share) && rng.chance(b.lost_password_call_share) {
                        lost_password.push(address.clone());
                    }
                    enrolled.push(CutoverCandidate {
                        address: address.clone(),
                        invited_on: day,
                        bytes: size,
                        not_before: Some(on),
                        slot: None,
                    });
                }
                None => report.silent += 1,
            }
        }
    }
    let cutovers = plan_cutovers(&input.cutovers, input.waves.start, &enrolled);
    report.unplaced_cutovers = cutovers.unplaced.len() as u64;
    let slot_of: BTreeMap<&str, Date> = cutovers.slots.iter().map(|(a, d)| (a.as_str(), *d)).collect();
    for (address, day) in &cutovers.slots {
        let w = at(&mut weeks, *day);
        w.cutovers += 1;
        w.cutover_bytes += bytes.get(address.as_str()).copied().unwrap_or(0);
    }
    for address in &lost_password {
        if let Some(day) = slot_of.get(address.as_str()) {
            at(&mut weeks, *day).helpdesk_calls += 1;
        }
    }
    report.weeks = fill_gaps(&weeks);
    report.peak_helpdesk_calls = report.weeks.iter().map(|w| w.helpdesk_calls).max().unwrap_or(0);
    Ok(report)
}

impl WeekLoad {
    fn quiet(week: Date) -> WeekLoad {
        WeekLoad {
            week,
            invitations: 0,
            reminders: 0,
            bounces: 0,
            forms: 0,
            presync_bytes: 0,
            cutovers: 0,
            cutover_bytes: 0,
            helpdesk_calls: 0,
        }
    }
}

/// The load of the week holding `d`.
fn at(weeks: &mut BTreeMap<Date, WeekLoad>, d: Date) -> &mut WeekLoad {
    let week = previous_weekday(d, Weekday::Monday);
    weeks.entry(week).or_insert_with(|| WeekLoad::quiet(week))
}

/// Every week from the first to the last, quiet ones included.
fn fill_gaps(weeks: &BTreeMap<Date, WeekLoad>) -> Vec<WeekLoad> {
    let (Some(first), Some(last)) = (weeks.keys().next().copied(), weeks.keys().next_back().copied()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut week = first;
    while week <= last {
        out.push(weeks.get(&week).cloned().unwrap_or_else(|| WeekLoad::quiet(week)));
        week += Duration::weeks(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn input(behaviour: Behaviour) -> SimulationInput {
        SimulationInput {
            waves: WaveRules {
                start: date!(2024 - 04 - 22),
                deadline: date!(2024 - 05 - 24),
                weekday: Weekday::Monday,
                capacity: None,
            },
            cutovers: CutoverRules {
                weekday: Weekday::Tuesday,
                min_weeks: 3,
                max_weeks: 12,
                capacity: Some(500),
                capacity_bytes: None,
            },
            reminder_days: vec![7, 14],
            deadline: date!(2024 - 05 - 24),
            behaviour,
            seed: 42,
        }
    }

    fn registry(n: usize) -> Vec<SimMailbox> {
        (0..n).map(|i| SimMailbox { address: format!("ec{:06}@adm.cfwb.be", 100_000 + i), bytes: 50_000_000 }).collect()
    }

    #[test]
    fn every_mailbox_is_accounted_for_and_totals_add_up() {
        let report = simulate(&input(Behaviour::default()), &registry(3500)).unwrap();
        assert_eq!(report.bounced + report.silent + report.answered, 3500);
        let sum = |f: fn(&WeekLoad) -> u64| report.weeks.iter().map(f).sum::<u64>();
        assert_eq!(sum(|w| w.invitations), 3500);
        assert_eq!(sum(|w| w.bounces), report.bounced);
        assert_eq!(sum(|w| w.forms), report.answered);
        assert_eq!(sum(|w| w.cutovers) + report.unplaced_cutovers, report.answered);
        // Five balanced waves of 700.
        let invitations: Vec<u64> = report.weeks.iter().map(|w| w.invitations).filter(|n| *n > 0).collect();
        assert_eq!(invitations, vec![700; 5]);
        assert!(report.weeks.iter().all(|w| w.cutovers <= 500));
        // Consecutive weeks, Mondays.
        assert!(report.weeks.windows(2).all(|p| p[1].week - p[0].week == Duration::weeks(1)));
        assert!(report.weeks.iter().all(|w| w.week.weekday() == Weekday::Monday));
    }

    #[test]
    fn deterministic_and_shaped_by_behaviour() {
        let a = simulate(&input(Behaviour::default()), &registry(500)).unwrap();
        assert_eq!(a, simulate(&input(Behaviour::default()), &registry(500)).unwrap());
        let nobody = Behaviour { answer_share: 0.0, bounce_share: 0.0, ..Behaviour::default() };
        let r = simulate(&input(nobody), &registry(500)).unwrap();
        assert_eq!((r.answered, r.silent), (0, 500));
        // Every silent manager gets every reminder.
        assert_eq!(r.weeks.iter().map(|w| w.reminders).sum::<u64>(), 1000);
        assert_eq!(r.weeks.iter().map(|w| w.cutovers).sum::<u64>(), 0);
        let all_bounce = Behaviour { bounce_share: 1.0, ..Behaviour::default() };
        let r = simulate(&input(all_bounce), &registry(100)).unwrap();
        assert_eq!(r.bounced, 100);
        // They all call at the deadline.
        let deadline_week = r.weeks.iter().find(|w| w.week == date!(2024 - 05 - 20)).unwrap();
        assert!(deadline_week.helpdesk_calls >= 100);
    }

    #[test]
    fn a_capacity_that_cannot_hold_is_refused() {
        let mut i = input(Behaviour::default());
        i.waves.capacity = Some(500);
        let refusal = simulate(&i, &registry(3500)).unwrap_err();
        assert!(refusal.problems[0].contains("raise the capacity to 700"), "{:?}", refusal.problems);
    }

    #[test]
    fn behaviour_problems() {
        let b = Behaviour { answer_share: 1.5, answer_mean_days: -1.0, ..Behaviour::default() };
        assert_eq!(b.problems().len(), 2);
        assert!(Behaviour::default().problems().is_empty());
    }
}
