//! Times the wave planner on generated registries (used by `cargo xtask bench plan`).
//!
//! Prints one JSON line per size: `{"mailboxes": N, "median_ms": …, "waves": …}`.

use std::time::Instant;

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
        let mut waves = 0;
        for _ in 0..repeats {
            let started = Instant::now();
            let plan = plan_waves(&rules, date!(2024 - 04 - 01), &candidates).expect("fits");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            waves = plan.waves.len();
        }
        times.sort_by(f64::total_cmp);
        println!("{{\"mailboxes\": {n}, \"median_ms\": {:.2}, \"waves\": {waves}}}", times[times.len() / 2]);
    }
}
