//! Robustness without cargo-fuzz: the corpus of `scripts/*.sieve`
//! mutated by a seeded generator (byte flips, truncations, splices of two
//! scripts, deletions, duplications and Sieve-looking tokens inserted),
//! tens of thousands of inputs on every `cargo test`.
//!
//! Rules checked for each input: reading never panics; it either parses
//! or fails with a position inside the input (at most its end); a script
//! that parses can be searched and stripped, and the stripped text parses
//! again. The generator is our own few lines (SplitMix64), so that a
//! failure is reproduced by its seed and round, printed with the input.

use std::fs;
use std::path::Path;
use std::time::Instant;

use bma_sieve::{Domains, ErrorKind, parse, parse_bytes, read, strip_external};

/// How many mutated inputs each script of the corpus yields.
const ROUNDS: usize = 1500;

/// SplitMix64: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// Pieces of Sieve a mutation inserts, to reach deeper than random bytes.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    ",",
    ";",
    "#",
    "/*",
    "*/",
    "\\",
    "\r\n",
    "\n",
    ".\n",
    "..",
    ":",
    ":copy",
    " text:\n",
    "text:\r\n.\r\n",
    "redirect \"x@gmail.com\";",
    "redirect :copy \"a@adm.cfwb.be\";",
    "notify \"mailto:x@y.be\";",
    "notify :method \"mailto\" :options [\"z@q.be\"];",
    "if true",
    "if not",
    "elsif",
    "else",
    "allof(",
    "anyof (true,",
    "not ",
    "size :over 1M",
    "header :is \"a\" \"b\"",
    "require \"variables\";",
    "require [\"encoded-character\"];",
    "${",
    "${hex:40}",
    "${hex:ff}",
    "${unicode:D800}",
    "${unicode:1F600}",
    "${x}",
    "${1}",
    "set \"x\" \"y@z.be\";",
    "99999999999999999999",
    "1K",
    "é",
    "\u{0}",
    "keep;",
    "stop;",
    "vacation :days 1 \"r\";",
    "include :global \"g\";",
    "pipe \"p\";",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        let len = out.len();
        let at = rng.below(len + 1);
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] = u8::try_from(rng.below(256)).unwrap_or(0);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            2 => out.truncate(at),
            3 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            4 => {
                let end = (at + rng.below(16)).min(len);
                out.drain(at..end);
            }
            5 => {
                let end = (at + rng.below(40)).min(len);
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, token.iter().copied());
            }
        }
    }
    out
}

fn check(domains: &Domains, input: &[u8]) -> bool {
    match parse_bytes("fuzz", input) {
        Err(e) => {
            assert!(e.position.offset <= input.len(), "error past the end: {e:?}");
            if e.kind != ErrorKind::NotUtf8 {
                let text = std::str::from_utf8(input).expect("only NotUtf8 for bad bytes");
                assert!(text.is_char_boundary(e.position.offset), "error inside a character: {e:?}");
            }
            false
        }
        Ok(_) => {
            let text = std::str::from_utf8(input).expect("parsed, so UTF-8");
            read("fuzz", text, domains).expect("parsed once, reads");
            let stripped = strip_external("fuzz", text, domains).expect("a script that parses strips");
            parse("fuzz", &stripped.text).expect("the stripped text parses");
            true
        }
    }
}

#[test]
fn mutated_corpus_never_panics_and_errors_in_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let mut corpus: Vec<Vec<u8>> = fs::read_dir(&dir)
        .expect("tests/scripts")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sieve"))
        .map(|e| fs::read(e.path()).expect("script"))
        .collect();
    corpus.sort();
    let domains = Domains::new(["adm.cfwb.be"]);
    let started = Instant::now();
    let (mut total, mut parsed) = (0usize, 0usize);
    for (index, script) in corpus.iter().enumerate() {
        let seed = 0x5EED_0000 + u64::try_from(index).unwrap_or(0);
        let mut rng = Rng(seed);
        for round in 0..ROUNDS {
            let input = mutate(&mut rng, &corpus, script);
            let outcome = std::panic::catch_unwind(|| check(&domains, &input));
            match outcome {
                Ok(ok) => parsed += usize::from(ok),
                Err(_) => panic!("seed {seed:#x} round {round}: failed on {:?}", String::from_utf8_lossy(&input)),
            }
            total += 1;
        }
    }
    let elapsed = started.elapsed();
    println!("{total} inputs, {parsed} parsed, in {elapsed:?}");
    assert!(total >= 20_000 && parsed > total / 20, "{total} inputs, {parsed} parsed: the mutations are too harsh");
}
