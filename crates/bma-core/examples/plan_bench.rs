//! Times the wave planner and the cutover slot planner on generated
//! registries (used by `cargo xtask bench plan`).
//!
//! Prints one JSON line per planner and size:
//! `{"planner": "waves"|"cutovers", "mailboxes": N, "median_ms": …, "placed": …}`.

use std::time::Instant;

use bma_core::cutover::{CutoverCandidate, CutoverRules, plan_cutovers};
use bma_core::planner::{Candidate, WaveRules, plan_waves};
use time::Weekday;
use time::macros::date;

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect::<Vec<_>>();
    let sizes = if sizes.is_empty() { vec![3_500, 1_000_000] } else { sizes };
    for n in sizes {
        let candidates: Vec<Candidate> = (0..n)
            .map(|i| Candidate {
                address: format!("ec{:07}@adm.cfwb.be", i + 1),
                invited_in: None,
                invited: false,
                pinned: None,
                excluded: i % 97 == 0,
                priority: (i % 3) as i64,
            })
            .collect();
        let rules = WaveRules {
            start: date!(2024 - 04 - 22),
            deadline: date!(2024 - 05 - 24),
            weekday: Weekday::Monday,
            capacity: None,
        };
        let repeats = if n > 100_000 { 3 } else { 21 };
        let mut times = Vec::new();
        let mut placed = 0;
        let mut plan = None;
        for _ in 0..repeats {
            let started = Instant::now();
            let p = plan_waves(&rules, date!(2024 - 04 - 01), &candidates).expect("fits");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            placed = p.waves.iter().map(|w| w.planned.len()).sum::<usize>();
            plan = Some(p);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{{\"planner\": \"waves\", \"mailboxes\": {n}, \"median_ms\": {:.2}, \"placed\": {placed}}}",
            times[times.len() / 2]
        );

        // Every invited mailbox enrolled, sizes up to 200 MB, a weekly capacity
        // that holds them (an eighth of the registry) and 100 GB a week per 1,000.
        let cutover: Vec<CutoverCandidate> = plan
            .expect("planned")
            .waves
            .iter()
            .flat_map(|w| w.planned.iter().map(move |a| (a, w.starts)))
            .enumerate()
            .map(|(i, (a, starts))| CutoverCandidate {
                address: a.clone(),
                invited_on: starts,
                bytes: (i as u64 * 7_919) % 200_000_000,
                not_before: None,
                slot: None,
            })
            .collect();
        let rules = CutoverRules {
            weekday: Weekday::Tuesday,
            min_weeks: 3,
            max_weeks: 12,
            capacity: Some(n.div_ceil(8)),
            capacity_bytes: Some(n as u64 * 100_000_000),
        };
        let mut times = Vec::new();
        for _ in 0..repeats {
            let started = Instant::now();
            let p = plan_cutovers(&rules, date!(2024 - 04 - 22), &cutover);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            placed = p.slots.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{{\"planner\": \"cutovers\", \"mailboxes\": {n}, \"median_ms\": {:.2}, \"placed\": {placed}}}",
            times[times.len() / 2]
        );
    }
}
