//! What the wrk benchmarks of `bma serve` share (`bench portal`, `bench
//! helpdesk`): the server started and stopped with the bench, one checked
//! GET, wrk's figures for a page (2 threads, 256 connections; a run with
//! any non-2xx answer or socket error is an error, not a result), and
//! their medians over several runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::pipeline::{root, run};

/// wrk's connections.
pub const CONNECTIONS: u32 = 256;
/// Seconds of each measured run.
pub const SECONDS: u32 = 10;
/// Measured runs per page (after a warm-up of [`WARM_UP`] s).
pub const RUNS: usize = 3;
/// Seconds of the warm-up run, not counted.
pub const WARM_UP: u32 = 3;

/// `bma serve` (release), killed when dropped.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The store of a bench, prepared: builds `bma` and `bma-web`'s example
/// `example` in release, runs it on a fresh SQLite store in
/// `target/<dir>` for `mailboxes` mailboxes; returns the directory, the
/// store's URL and the JSON line the example printed.
pub fn prepare(example: &str, dir: &str, mailboxes: usize) -> anyhow::Result<(PathBuf, String, serde_json::Value)> {
    run("cargo build --release -p bma", Command::new("cargo").args(["build", "--release", "-p", "bma"]))?;
    run(
        &format!("cargo build --release -p bma-web --example {example}"),
        Command::new("cargo").args(["build", "--release", "-p", "bma-web", "--example", example]),
    )?;
    let dir = root().join("target").join(dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = format!("sqlite://{}", dir.join("bma.db").display());
    let out = Command::new(root().join("target/release/examples").join(example))
        .args([db.as_str(), &mailboxes.to_string()])
        .output()
        .with_context(|| example.to_owned())?;
    if !out.status.success() {
        bail!("{example}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let setup = serde_json::from_slice(&out.stdout).with_context(|| format!("{example} output"))?;
    Ok((dir, db, setup))
}

/// A free port of the lab provider's test range (18190-18199).
pub fn free_port() -> anyhow::Result<u16> {
    (18190..=18199)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .context("no free port in 18190-18199")
}

/// Starts `target/release/bma serve` on `port` in `dir` on the store `db`
/// (no `BMA_CONFIG`, warnings only): the portal at that port, the lab
/// provider's portal client (discovered at the first login only: it need
/// not run), rate limits out of the way, the campaign open until 2099;
/// `env` adds to that. Waits until `/healthz` answers.
pub fn serve(dir: &Path, port: u16, db: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Server> {
    let mut cmd = Command::new(root().join("target/release/bma"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .current_dir(dir)
        .env_remove("BMA_CONFIG")
        .env("BMA_LOG", "warn")
        .env("BMA_DATABASE_URL", db)
        .env("BMA_PORTAL_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("BMA_OIDC_ISSUER", "http://127.0.0.1:9090")
        .env("BMA_OIDC_CLIENT_ID", "bma-portal")
        .env("BMA_OIDC_CLIENT_SECRET", "bma-portal-secret")
        .env("BMA_PORTAL_RATE_LIMIT_PER_IP", "1000000000")
        .env("BMA_PORTAL_RATE_LIMIT_PER_LINK", "1000000000")
        .env("BMA_CAMPAIGN_END", "2099-12-31")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server(cmd.spawn().context("cannot start bma serve")?);
    let started = Instant::now();
    while get(&format!("http://127.0.0.1:{port}/healthz"), None).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("bma serve did not answer");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

/// wrk's figures for one page.
#[derive(Clone, Copy, Debug)]
pub struct Figures {
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// The median of each figure over several runs, and the range of p99.
pub fn medians(runs: &[Figures]) -> (Figures, f64, f64) {
    let median = |f: fn(&Figures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let p99 = |f: &Figures| f.p99_ms;
    let lo = runs.iter().map(p99).fold(f64::INFINITY, f64::min);
    let hi = runs.iter().map(p99).fold(0.0, f64::max);
    (Figures { rps: median(|f| f.rps), p50_ms: median(|f| f.p50_ms), p99_ms: median(p99) }, lo, hi)
}

/// A wrk latency (`812.00us`, `12.5ms`, `1.20s`) in milliseconds.
fn millis(s: &str) -> Option<f64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// One wrk run of `seconds` against `url`, with a `Cookie` header if any.
pub fn wrk(url: &str, cookie: Option<&str>, seconds: u32) -> anyhow::Result<Figures> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s"), "--latency", "--timeout", "5s"]);
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("Cookie: {c}")]);
    }
    let out = cmd.arg(url).output().context("cannot run wrk (cargo xtask lab install)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if text.contains("Non-2xx or 3xx responses") || text.contains("Socket errors") {
        bail!("wrk saw errors, the run is not a result:\n{text}");
    }
    let field = |prefix: &str| -> Option<String> {
        text.lines().map(str::trim).find(|l| l.starts_with(prefix)).map(|l| l[prefix.len()..].trim().to_owned())
    };
    let rps: f64 = field("Requests/sec:").and_then(|v| v.parse().ok()).context("wrk: no Requests/sec")?;
    let p50 = field("50%").and_then(|v| millis(&v)).context("wrk: no p50")?;
    let p99 = field("99%").and_then(|v| millis(&v)).context("wrk: no p99")?;
    println!("{text}");
    Ok(Figures { rps, p50_ms: p50, p99_ms: p99 })
}

/// A warm-up run, then [`RUNS`] measured ones; their medians and p99 range.
pub fn measure(url: &str, cookie: Option<&str>) -> anyhow::Result<(Figures, f64, f64)> {
    wrk(url, cookie, WARM_UP)?;
    let runs = (0..RUNS).map(|_| wrk(url, cookie, SECONDS)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(medians(&runs))
}

/// The body of a GET that answered 2xx.
pub fn get(url: &str, cookie: Option<&str>) -> anyhow::Result<String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-f"]);
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("Cookie: {c}")]);
    }
    let out = cmd.arg(url).output().context("cannot run curl")?;
    if !out.status.success() {
        bail!("GET {url} failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_units() {
        assert_eq!(millis("812.00us"), Some(0.812));
        assert_eq!(millis("12.5ms"), Some(12.5));
        assert_eq!(millis("1.20s"), Some(1200.0));
        assert_eq!(millis("x"), None);
    }

    #[test]
    fn medians_and_the_p99_range() {
        let f = |rps, p99_ms| Figures { rps, p50_ms: p99_ms / 4.0, p99_ms };
        let (m, lo, hi) = medians(&[f(3000.0, 40.0), f(1000.0, 20.0), f(2000.0, 60.0)]);
        assert_eq!((m.rps, m.p99_ms, m.p50_ms, lo, hi), (2000.0, 40.0, 10.0, 20.0, 60.0));
    }
}
