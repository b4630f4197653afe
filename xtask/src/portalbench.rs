//! `cargo xtask bench portal`: the enrolment portal under wrk.
//!
//! Builds `bma` and the store preparation (`portal_bench_setup`, an example
//! of `bma-web`) in release, prepares a SQLite store of 3,500 invited
//! mailboxes (one enrolled, with a logged-in session), starts `bma serve`
//! and runs wrk (2 threads, 256 connections, 3 runs of 10 s after a 3 s
//! warm-up, medians reported) against the link page (before login) and the
//! status page (the same link after login: session, mailbox, last form
//! version and backup address in one joined query). Targets from issue 5: at least 5,000 requests/s and p99 under 50 ms.
//!
//! The rate limiter stays on the path: its limits are raised through the
//! configuration (`portal.rate_limit_per_ip`, `portal.rate_limit_per_link`)
//! so that every request is counted but none refused; a run with any
//! non-2xx answer is an error, not a result.

use anyhow::{Context, bail};
use std::fmt::Write as _;

use crate::bench::write_section;
use crate::wrkbench::{CONNECTIONS, RUNS, SECONDS, get, measure};

const MAILBOXES: usize = 3500;

/// Runs the benchmark and writes its section of docs/benchmarks.md.
pub fn run_bench() -> anyhow::Result<()> {
    let (dir, db, setup) = crate::wrkbench::prepare("portal_bench_setup", "bench-portal", MAILBOXES)?;
    let field = |k: &str| setup[k].as_str().map(str::to_owned).with_context(|| format!("setup: no {k}"));
    let (link_token, status_token, session) = (field("link_token")?, field("status_token")?, field("session")?);

    // A port of the lab provider's test range; login itself is not measured.
    let port = crate::wrkbench::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let server = crate::wrkbench::serve(&dir, port, &db, &[], &[])?;
    let cookie = format!("bma_session={session}");
    let link = format!("{base}/formulaire/{link_token}");
    let status = format!("{base}/formulaire/{status_token}");
    // Check that each URL is the page it should be before measuring it.
    if !get(&link, None)?.contains("Se connecter avec Cerbère EDU") {
        bail!("the link page is not the login page");
    }
    if !get(&status, Some(&cookie))?.contains("Où en est la migration") {
        bail!("the status page is not served to the session");
    }

    let mut rows = Vec::new();
    for (name, url, cookie) in
        [("link page (before login)", &link, None), ("status page (logged in)", &status, Some(cookie.as_str()))]
    {
        rows.push((name, measure(url, cookie)?));
    }
    drop(server);

    let mut section = format!(
        "## Enrolment portal (wrk, SQLite)\n\n`cargo xtask bench portal`: `bma serve` (release) on a SQLite store of \
         {MAILBOXES} invited mailboxes, wrk with 2 threads and {CONNECTIONS} connections, {RUNS} runs of {SECONDS} s after a \
         3 s warm-up (medians; the p99 range over the runs), on the same 2-core machine as the server (and whatever else runs on it). The link page is what \
         the link of mail 1 shows before login; the status page is the same link after login (session, \
         mailbox, last form version and backup verification, read in one joined query). Rate limiting stays on \
         with limits raised by configuration. Targets (issue 5): at least 5,000 requests/s, p99 under 50 ms. Ratios: throughput ÷ target (above 1 is \
         better), p99 ÷ target (below 1 is better).\n\n\
         | page | requests/s | ratio to 5,000 | p50 | p99 | ratio to 50 ms | p99 range |\n|---|---|---|---|---|---|---|\n"
    );
    for (name, (f, lo, hi)) in &rows {
        let _ = writeln!(
            section,
            "| {name} | {:.0} | {:.2} | {:.2} ms | {:.2} ms | {:.2} | {lo:.1}–{hi:.1} ms |",
            f.rps,
            f.rps / 5000.0,
            f.p50_ms,
            f.p99_ms,
            f.p99_ms / 50.0
        );
    }
    println!("{section}");
    write_section("Enrolment portal (wrk, SQLite)", &section)
}
