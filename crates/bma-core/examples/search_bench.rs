//! Times the caller search's ranking ([`bma_core::search::rank`], what the
//! console runs in memory for each search) on generated entries (used by
//! `cargo xtask bench helpdesk`).
//!
//! Each entry is a mailbox as the console indexes it: its address, FASE
//! number, establishment name and, for four in five, the names of the
//! manager of its form (one of 20 × 20). The queries are what an agent
//! types: a manager's names as heard, an establishment's words, FASE
//! digits, a whole address, a partial word. Prints one JSON line per size:
//! `{"entries": N, "queries": Q, "median_ms": …, "p99_ms": …}` over every
//! query's repeats.

use std::hint::black_box;
use std::time::Instant;

use bma_core::search::{Entry, rank};

const FAMILY: [&str; 20] = [
    "Dupont", "Martin", "Lambert", "Dubois", "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes",
    "Goossens", "Wouters", "De Smet", "Laurent", "Leroy", "Simon", "Renard", "Lejeune", "Hermans",
];
const GIVEN: [&str; 20] = [
    "Marie",
    "Anne",
    "Sophie",
    "Nathalie",
    "Isabelle",
    "Véronique",
    "Catherine",
    "Christine",
    "Françoise",
    "Hélène",
    "Jean",
    "Pierre",
    "Michel",
    "Philippe",
    "Luc",
    "Marc",
    "André",
    "Éric",
    "Benoît",
    "Thierry",
];
const SCHOOLS: [&str; 6] = [
    "École fondamentale communale",
    "Athénée royal",
    "Institut Saint-Joseph",
    "École primaire libre Sainte-Marie",
    "Lycée provincial",
    "Centre psycho-médico-social",
];
const TOWNS: [&str; 8] = ["Namur", "Liège", "Mons", "Charleroi", "Bruxelles", "Arlon", "Wavre", "Tournai"];
const QUERIES: [&str; 6] = ["dupont marie", "DUPONT  Marié", "athenee liege", "300016", "ec300016@adm.cfwb.be", "goos"];

fn entries(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let address = format!("{}{:06}@adm.cfwb.be", if i % 7 == 0 { "po" } else { "ec" }, 300_000 + i);
            let school =
                format!("{} de {} n° {i}", SCHOOLS[i % SCHOOLS.len()], TOWNS[(i / SCHOOLS.len()) % TOWNS.len()]);
            let person = format!("{} {}", GIVEN[(i / FAMILY.len()) % GIVEN.len()], FAMILY[i % FAMILY.len()]);
            let names: Vec<&str> = if i % 5 == 4 { vec![&school] } else { vec![&school, &person, &person] };
            Entry::new(&address, u32::try_from(300_000 + i).unwrap_or(0), names)
        })
        .collect()
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![3_500, 100_000] } else { sizes };
    for n in sizes {
        let all = entries(n);
        let repeats = if n > 10_000 { 30 } else { 300 };
        let mut times = Vec::with_capacity(repeats * QUERIES.len());
        for _ in 0..repeats {
            for q in QUERIES {
                let started = Instant::now();
                black_box(rank(black_box(&all), q, 50));
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "{{\"entries\": {n}, \"queries\": {}, \"median_ms\": {:.3}, \"p99_ms\": {:.3}}}",
            times.len(),
            at(0.5),
            at(0.99)
        );
    }
}
