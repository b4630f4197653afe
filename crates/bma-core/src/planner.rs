//! The planner of invitation waves.
//!
//! Waves are weekly, on a configured weekday, from the campaign's start to
//! the invitation deadline. Mailboxes already invited stay in the wave they
//! were invited in; mailboxes pinned to a wave go there; excluded and
//! blocked ones are left out; the others are spread over the waves that are
//! still open (from today), highest priority first, so that the waves are as
//! balanced as possible and, when a capacity is set, none exceeds it. What
//! cannot fit is refused with the reason in words and a way out; nothing is
//! half-planned.

use std::collections::BTreeMap;

use serde::Serialize;
use time::{Date, Duration, Weekday};

/// The rules of the invitation waves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveRules {
    /// First possible day (the campaign's start).
    pub start: Date,
    /// Last possible day (the invitation deadline).
    pub deadline: Date,
    /// Day of the week of the waves.
    pub weekday: Weekday,
    /// At most this many mailboxes per wave (`None`: balanced, no limit).
    pub capacity: Option<usize>,
}

impl WaveRules {
    /// The dates of every wave: each `weekday` from `start` to `deadline`.
    pub fn wave_dates(&self) -> Vec<Date> {
        let mut d = self.start;
        while d.weekday() != self.weekday {
            d += Duration::days(1);
        }
        let mut out = Vec::new();
        while d <= self.deadline {
            out.push(d);
            d += Duration::weeks(1);
        }
        out
    }
}

/// What the planner needs to know of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Address (for stable ordering and messages).
    pub address: String,
    /// Already invited in this wave: it stays there.
    pub invited_in: Option<Date>,
    /// Whether it was invited at all (invited without a recorded wave: left alone).
    pub invited: bool,
    /// Pinned by an operator to this wave.
    pub pinned: Option<Date>,
    /// Left out of the plan (excluded by an operator, or blocked).
    pub excluded: bool,
    /// Higher goes first.
    pub priority: i64,
}

/// One wave of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedWave {
    /// The day mail 1 leaves.
    pub starts: Date,
    /// Mailboxes already invited in it (they stay).
    pub invited: usize,
    /// Addresses newly planned in it (pinned ones included), in order.
    pub planned: Vec<String>,
}

impl PlannedWave {
    /// All mailboxes of the wave.
    pub fn size(&self) -> usize {
        self.invited + self.planned.len()
    }
}

/// A complete plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WavePlan {
    /// Every wave, past ones included (with their invited mailboxes).
    pub waves: Vec<PlannedWave>,
    /// Mailboxes left out (excluded or blocked).
    pub excluded: usize,
    /// Invited without a recorded wave (left alone).
    pub invited_elsewhere: usize,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Every problem, in words.
    pub problems: Vec<String>,
    /// How many mailboxes could not be placed.
    pub unplanned: usize,
}

fn fr(d: Date) -> String {
    d.to_string()
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Plans the waves on `today` (waves before it are closed).
pub fn plan_waves(rules: &WaveRules, today: Date, candidates: &[Candidate]) -> Result<WavePlan, Refusal> {
    let dates = rules.wave_dates();
    let mut problems = Vec::new();
    if dates.is_empty() {
        return Err(Refusal {
            problems: vec![format!(
                "no {:?} between {} and {}: there is no wave at all",
                rules.weekday,
                fr(rules.start),
                fr(rules.deadline)
            )],
            unplanned: candidates.iter().filter(|c| !c.excluded && !c.invited).count(),
        });
    }
    let mut waves: BTreeMap<Date, PlannedWave> =
        dates.iter().map(|d| (*d, PlannedWave { starts: *d, invited: 0, planned: Vec::new() })).collect();
    let open: Vec<Date> = dates.iter().copied().filter(|d| *d >= today).collect();

    let mut excluded = 0;
    let mut invited_elsewhere = 0;
    let mut free: Vec<&Candidate> = Vec::new();
    for c in candidates {
        if c.invited {
            match c.invited_in.and_then(|d| waves.get_mut(&d)) {
                Some(w) => w.invited += 1,
                None => invited_elsewhere += 1,
            }
        } else if c.excluded {
            excluded += 1;
        } else if let Some(p) = c.pinned {
            match waves.get_mut(&p) {
                Some(w) if p >= today => w.planned.push(c.address.clone()),
                Some(_) => problems.push(format!("{} is pinned to the wave of {}, which has passed", c.address, fr(p))),
                None => problems.push(format!(
                    "{} is pinned to {}, which is not a wave day (waves: {})",
                    c.address,
                    fr(p),
                    dates.iter().map(|d| fr(*d)).collect::<Vec<_>>().join(", ")
                )),
            }
        } else {
            free.push(c);
        }
    }
    if let Some(cap) = rules.capacity {
        for w in waves.values().filter(|w| w.starts >= today) {
            if w.size() > cap {
                problems.push(format!(
                    "the wave of {} already holds {} mailboxes (invited or pinned), more than the capacity of {cap}",
                    fr(w.starts),
                    w.size()
                ));
            }
        }
    }
    if open.is_empty() && !free.is_empty() {
        problems.push(format!(
            "{} mailboxes are not invited and the last wave ({}) has passed: move the deadline",
            thousands(free.len()),
            fr(*dates.last().expect("dates not empty"))
        ));
    }
    if !problems.is_empty() {
        return Err(Refusal { problems, unplanned: free.len() });
    }

    // Water-filling: raise a level until the open waves can take every free
    // mailbox; the level is capped by the capacity.
    let load: Vec<usize> = open.iter().map(|d| waves[d].size()).collect();
    let n = free.len();
    let room = |level: usize| -> usize { load.iter().map(|l| level.saturating_sub(*l)).sum() };
    let max_level = rules.capacity.unwrap_or(usize::MAX);
    let fits = room(max_level.min(n + load.iter().copied().max().unwrap_or(0))) >= n;
    if !fits {
        let cap = rules.capacity.expect("only a capacity can make it not fit");
        let total: usize = n + load.iter().sum::<usize>();
        let needed_waves = total.div_ceil(cap);
        let needed_capacity = total.div_ceil(open.len());
        let placed = room(cap);
        return Err(Refusal {
            problems: vec![format!(
                "{} mailboxes need {needed_waves} waves of {}, only {} fit before {}: raise the capacity to {} or move the deadline",
                thousands(total),
                thousands(cap),
                open.len(),
                fr(rules.deadline),
                thousands(needed_capacity),
            )],
            unplanned: n - placed,
        });
    }
    // Smallest level that takes everyone.
    let (mut lo, mut hi) = (0usize, max_level.min(n + load.iter().copied().max().unwrap_or(0)));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if room(mid) >= n { hi = mid } else { lo = mid + 1 }
    }
    let level = lo;
    // Quotas at level-1 everywhere, then the remainder one by one to the
    // earliest waves that can still take one at `level`.
    let mut quota: Vec<usize> = load.iter().map(|l| level.saturating_sub(1).saturating_sub(*l)).collect();
    let mut remaining = n - quota.iter().sum::<usize>();
    for (i, l) in load.iter().enumerate() {
        if remaining == 0 {
            break;
        }
        if l + quota[i] < level {
            quota[i] += 1;
            remaining -= 1;
        }
    }
    free.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.address.cmp(&b.address)));
    let mut next = free.into_iter();
    for (i, d) in open.iter().enumerate() {
        let w = waves.get_mut(d).expect("open wave");
        w.planned.extend(next.by_ref().take(quota[i]).map(|c| c.address.clone()));
    }
    debug_assert!(next.next().is_none(), "every free mailbox has a wave");
    Ok(WavePlan { waves: waves.into_values().collect(), excluded, invited_elsewhere })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn rules(capacity: Option<usize>) -> WaveRules {
        WaveRules { start: date!(2024 - 04 - 22), deadline: date!(2024 - 05 - 24), weekday: Weekday::Monday, capacity }
    }

    fn registry(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                address: format!("ec{:06}@adm.cfwb.be", i + 1),
                invited_in: None,
                invited: false,
                pinned: None,
                excluded: false,
                priority: 0,
            })
            .collect()
    }

    fn sizes(p: &WavePlan) -> Vec<(String, usize)> {
        p.waves.iter().map(|w| (w.starts.to_string(), w.size())).collect()
    }

    #[test]
    fn the_faq_campaign_has_five_monday_waves() {
        let dates: Vec<String> = rules(None).wave_dates().iter().map(ToString::to_string).collect();
        assert_eq!(dates, vec!["2024-04-22", "2024-04-29", "2024-05-06", "2024-05-13", "2024-05-20"]);
    }

    #[test]
    fn balanced_without_capacity() {
        let p = plan_waves(&rules(None), date!(2024 - 04 - 01), &registry(3502)).unwrap();
        let s: Vec<usize> = sizes(&p).iter().map(|x| x.1).collect();
        assert_eq!(s, vec![701, 701, 700, 700, 700]);
    }

    #[test]
    fn refused_with_the_reason_when_capacity_is_too_small() {
        let r = plan_waves(&rules(Some(500)), date!(2024 - 04 - 01), &registry(3500)).unwrap_err();
        assert_eq!(
            r.problems,
            vec![
                "3,500 mailboxes need 7 waves of 500, only 5 fit before 2024-05-24: raise the capacity to 700 or move the deadline"
            ]
        );
        assert_eq!(r.unplanned, 1000);
    }

    #[test]
    fn capacity_is_never_exceeded() {
        let p = plan_waves(&rules(Some(800)), date!(2024 - 04 - 01), &registry(3500)).unwrap();
        assert!(p.waves.iter().all(|w| w.size() <= 800));
        assert_eq!(p.waves.iter().map(PlannedWave::size).sum::<usize>(), 3500);
    }

    #[test]
    fn invited_stay_pinned_go_excluded_are_left_out_priority_first() {
        let mut reg = registry(10);
        reg[0].invited = true;
        reg[0].invited_in = Some(date!(2024 - 04 - 22));
        reg[1].pinned = Some(date!(2024 - 05 - 20));
        reg[2].excluded = true;
        reg[9].priority = 5;
        // Replanning on 2024-04-25: the first wave is closed.
        let p = plan_waves(&rules(None), date!(2024 - 04 - 25), &reg).unwrap();
        assert_eq!(p.excluded, 1);
        assert_eq!(p.waves[0].invited, 1);
        assert!(p.waves[0].planned.is_empty(), "a passed wave gets no one new");
        assert!(p.waves[4].planned.contains(&"ec000002@adm.cfwb.be".to_owned()));
        assert_eq!(p.waves[1].planned[0], "ec000010@adm.cfwb.be", "priority first");
        let s: Vec<usize> = sizes(&p).iter().map(|x| x.1).collect();
        assert_eq!(s, vec![1, 2, 2, 2, 2]);
    }

    #[test]
    fn bad_pins_are_explained() {
        let mut reg = registry(2);
        reg[0].pinned = Some(date!(2024 - 04 - 23));
        reg[1].pinned = Some(date!(2024 - 04 - 22));
        let r = plan_waves(&rules(None), date!(2024 - 05 - 01), &reg).unwrap_err();
        assert_eq!(
            r.problems,
            vec![
                "ec000001@adm.cfwb.be is pinned to 2024-04-23, which is not a wave day (waves: 2024-04-22, 2024-04-29, 2024-05-06, 2024-05-13, 2024-05-20)",
                "ec000002@adm.cfwb.be is pinned to the wave of 2024-04-22, which has passed",
            ]
        );
    }

    #[test]
    fn after_the_last_wave_nothing_fits() {
        let r = plan_waves(&rules(None), date!(2024 - 05 - 21), &registry(3)).unwrap_err();
        assert_eq!(
            r.problems,
            vec!["3 mailboxes are not invited and the last wave (2024-05-20) has passed: move the deadline"]
        );
    }

    /// Properties on generated registries: everyone planned once, within
    /// capacity, inside the campaign, balanced to within one.
    #[test]
    fn properties_on_generated_registries() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..300 {
            let n = rnd(5000) as usize;
            let cap = if rnd(2) == 0 { None } else { Some(1 + rnd(2000) as usize) };
            let mut reg = registry(n);
            for c in &mut reg {
                c.priority = rnd(3) as i64;
                c.excluded = rnd(50) == 0;
            }
            let r = rules(cap);
            match plan_waves(&r, date!(2024 - 04 - 01), &reg) {
                Ok(p) => {
                    let planned: usize = p.waves.iter().map(|w| w.planned.len()).sum();
                    assert_eq!(planned + p.excluded, n);
                    let s: Vec<usize> = p.waves.iter().map(PlannedWave::size).collect();
                    let (min, max) = (s.iter().min().unwrap(), s.iter().max().unwrap());
                    assert!(max - min <= 1, "balanced: {s:?}");
                    if let Some(c) = cap {
                        assert!(*max <= c);
                    }
                    assert!(p.waves.iter().all(|w| w.starts >= r.start && w.starts <= r.deadline));
                }
                Err(refusal) => {
                    let c = cap.expect("without capacity everything fits");
                    assert!(n - p_excluded(&reg) > c * 5, "refused only when it cannot fit");
                    assert!(refusal.unplanned > 0);
                }
            }
        }
    }

    fn p_excluded(reg: &[Candidate]) -> usize {
        reg.iter().filter(|c| c.excluded).count()
    }
}
