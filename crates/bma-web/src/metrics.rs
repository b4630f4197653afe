//! `/metrics`: the campaign's figures in the Prometheus text format, for
//! the operations team's monitoring (mailboxes per state, jobs by kind and
//! outcome, how long jobs run, the outbox, what the copies brought, the
//! cutovers' hold windows).
//!
//! Why read from the store at each scrape: `bma serve` and the workers
//! (`bma worker`, several processes on PostgreSQL) are separate processes;
//! a counter kept in this process's memory would miss the workers' work
//! and fall to zero at every restart. Each figure is read from the records
//! when Prometheus asks (a gauge set from the database is right whichever
//! process did the work), through the store's own reads
//! (`counts_by_state`, `job_counts`, `outbox_counts`, and `bma_store`'s
//! `telemetry`).
//!
//! Why `metrics` + `metrics-exporter-prometheus`: the exposition format
//! (names, label escaping, histogram buckets, `HELP`/`TYPE` lines) is the
//! exporter's, kept and tested by others, not ours to get subtly wrong.
//! Only its recorder and `render()` are used, without default features:
//! no listener of its own, no push gateway. A recorder is built for each
//! scrape and used through `metrics::with_local_recorder`: nothing global,
//! so two portals (or two tests) never share figures, and a series whose
//! count went to nothing is still written with 0 rather than its old value.
//!
//! Rules:
//! - **no address, name or subject ever in a label**: a label's value is a
//!   `&'static str` of a closed set (a mailbox state, a job kind and state,
//!   an outbox status, a copy phase), never text read from the store; an
//!   outbox status this build does not know is written `other`;
//! - every value of a closed set is written, with 0 when nothing is in it,
//!   so a series never vanishes;
//! - **who may read**: a client whose address is in the allowed networks
//!   (`[metrics] allow`, loopback only by default), or one that sends the
//!   configured token (`Authorization: Bearer …`, compared in time
//!   independent of where it differs; never logged: the request log names
//!   the route, and nothing here logs a header). The address is the one
//!   the rate limits use ([`security::client_ip`]): the peer, or behind a
//!   reverse proxy (`portal.trust_forwarded_for`) the last
//!   `X-Forwarded-For` entry, so that a public request relayed by a proxy
//!   on loopback is not taken for a local one. There, the port must be
//!   reachable only through the proxy, or a direct client could claim any
//!   address; the token is the safer choice.
//! - a refusal is a 403 with one short line: a 404 would hide little (the
//!   path is Prometheus' convention and bma's source is public) and would
//!   send an operator whose allow list or token is wrong hunting a routing
//!   problem; the line says what lets one in, never what is configured.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bma_core::job::JobKind;
use bma_core::lifecycle::State as MailboxState;
use bma_store::{Copied, CopyPhase, DurationBucket, HoldWindows, JobState, Store, StoreError};
use ipnet::IpNet;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::Portal;
use crate::security;
use crate::session::constant_time_eq;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the job duration buckets, seconds: from a quick job
/// (the scheduler's lists) to a presync of a large mailbox.
const JOB_BUCKETS: [f64; 11] = [0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14_400.0];

/// Upper bounds of the hold window buckets, seconds: the FAQ promises
/// almost no downtime, so the minutes matter.
const HOLD_BUCKETS: [f64; 9] = [10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0];

/// The outbox's statuses, as the store writes them.
const OUTBOX_STATUSES: [&str; 5] = ["pending", "sending", "sent", "unconfirmed", "dead"];

/// Who may read `/metrics`. `Debug` masks the token.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Networks whose clients may read (an address is a network of one).
    pub allow: Vec<IpNet>,
    /// A token that lets any client read (`Authorization: Bearer …`); `None`: none.
    pub token: Option<String>,
}

impl Default for MetricsSettings {
    /// Loopback only, no token.
    fn default() -> MetricsSettings {
        MetricsSettings {
            allow: ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect(),
            token: None,
        }
    }
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("allow", &self.allow)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl MetricsSettings {
    /// Whether `ip` is in an allowed network. An IPv4 client of a dual-stack
    /// listener (`::ffff:10.1.2.3`) is its IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow.iter().any(|n| n.contains(&ip))
    }

    /// Whether `headers` carry the configured token.
    pub fn token_matches(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = self.token.as_deref().filter(|t| !t.is_empty()) else { return false };
        let Some(sent) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
        match sent.trim().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                constant_time_eq(token.trim().as_bytes(), expected.as_bytes())
            }
            _ => false,
        }
    }
}

/// A network of `[metrics] allow`: `10.0.0.0/8`, `2001:db8::/32`, or one
/// address (`192.0.2.7`, `::1`). The address need not be the network's
/// first (`10.1.2.3/8` is `10.0.0.0/8`).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if t.contains('/') {
        t.parse::<IpNet>()
            .map(|n| n.trunc())
            .map_err(|_| format!("'{text}' is not an address or a network (10.0.0.0/8)"))
    } else {
        t.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("'{text}' is not an address or a network (10.0.0.0/8)"))
    }
}

/// The route.
pub(crate) fn routes() -> Router<Portal> {
    Router::new().route("/metrics", get(scrape))
}

/// `GET /metrics`: the figures to an allowed client, 403 to others.
async fn scrape(State(portal): State<Portal>, req: Request) -> Response {
    let settings = &portal.settings().metrics;
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>();
    let client = security::client_ip(req.headers(), peer, portal.settings().trust_forwarded_for);
    let by_address = client.parse::<IpAddr>().is_ok_and(|ip| settings.allows(ip));
    if !by_address && !settings.token_matches(req.headers()) {
        tracing::info!("/metrics refused: neither an allowed address nor the token");
        return (StatusCode::FORBIDDEN, "403 forbidden: /metrics answers allowed addresses or the bearer token\n")
            .into_response();
    }
    match read(portal.store()).await {
        Ok(figures) => {
            let mut res = render(&figures).into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            res
        }
        Err(e) => {
            tracing::warn!(error = %e, "/metrics: the store could not be read");
            (StatusCode::SERVICE_UNAVAILABLE, "503 the store could not be read\n").into_response()
        }
    }
}

/// What a scrape reads from the store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    /// Mailboxes per state.
    pub mailboxes: BTreeMap<MailboxState, u64>,
    /// Jobs per kind and state.
    pub jobs: Vec<(JobKind, JobState, u64)>,
    /// Emails per outbox status (the store's names).
    pub outbox: BTreeMap<String, u64>,
    /// Done jobs' run times, in the buckets of [`JOB_BUCKETS`].
    pub durations: Vec<DurationBucket>,
    /// What the copies brought, per phase.
    pub copied: Vec<(CopyPhase, Copied)>,
    /// The cutovers' hold windows.
    pub holds: HoldWindows,
    /// How long reading them took, seconds.
    pub read_seconds: f64,
}

/// Reads the figures, the queries side by side.
pub async fn read(store: &Store) -> Result<Figures, StoreError> {
    let start = Instant::now();
    let bounds: Vec<u64> = JOB_BUCKETS.iter().map(|s| millis(*s)).collect();
    let (mailboxes, jobs, outbox, durations, copied, holds) = tokio::try_join!(
        store.counts_by_state(),
        store.job_counts(),
        store.outbox_counts(),
        store.job_duration_buckets(&bounds),
        store.copied_by_phase(),
        store.hold_windows(),
    )?;
    Ok(Figures { mailboxes, jobs, outbox, durations, copied, holds, read_seconds: start.elapsed().as_secs_f64() })
}

fn millis(seconds: f64) -> u64 {
    // The bounds are ours, positive and small: the cast is exact.
    (seconds * 1000.0).round() as u64
}

/// The figures in the Prometheus text format.
pub fn render(f: &Figures) -> String {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("bma_job_duration_seconds".into()), &bucket_bounds(&JOB_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full("bma_cutover_hold_seconds".into()), &HOLD_BUCKETS));
    let recorder = match builder {
        Ok(b) => b.build_recorder(),
        // Only an empty list of buckets fails, and ours are constants.
        Err(_) => PrometheusBuilder::new().build_recorder(),
    };
    metrics::with_local_recorder(&recorder, || record(f));
    recorder.handle().render()
}

/// The bounds the exporter compares with, computed as the durations are
/// (milliseconds / 1000), so a job of exactly a bound falls in its bucket.
fn bucket_bounds(seconds: &[f64]) -> Vec<f64> {
    seconds.iter().map(|s| millis(*s) as f64 / 1000.0).collect()
}

/// Every figure, through the local recorder.
fn record(f: &Figures) {
    describe_gauge!("bma_mailboxes", "Mailboxes per lifecycle state.");
    for state in MailboxState::ALL {
        let n = f.mailboxes.get(&state).copied().unwrap_or(0);
        gauge!("bma_mailboxes", "state" => state.as_str()).set(n as f64);
    }

    describe_gauge!("bma_jobs", "Jobs of the durable queue per kind and state (done and dead: their outcome).");
    for kind in JobKind::ALL {
        for state in [JobState::Queued, JobState::Running, JobState::Done, JobState::Dead] {
            let n: u64 = f.jobs.iter().filter(|(k, s, _)| *k == kind && *s == state).map(|(_, _, n)| n).sum();
            gauge!("bma_jobs", "kind" => kind.as_str(), "state" => state.as_str()).set(n as f64);
        }
    }

    describe_histogram!(
        "bma_job_duration_seconds",
        metrics::Unit::Seconds,
        "Run time of done jobs (their last attempt, from its claim to its end, on the campaign clock)."
    );
    for kind in JobKind::ALL {
        let h = histogram!("bma_job_duration_seconds", "kind" => kind.as_str());
        for b in f.durations.iter().filter(|b| b.kind == kind && b.jobs > 0) {
            // The store counts each bucket and adds its run times up: each
            // job is recorded at its bucket's mean, which lies in the same
            // bucket, so the buckets, the count and the sum are exact.
            let mean = b.total_ms as f64 / b.jobs as f64 / 1000.0;
            h.record_many(mean, usize::try_from(b.jobs).unwrap_or(usize::MAX));
        }
    }

    describe_gauge!("bma_outbox_emails", "Emails of the outbox per status (pending and sending: not yet sent).");
    let mut outbox: BTreeMap<&'static str, u64> = OUTBOX_STATUSES.iter().map(|s| (*s, 0)).collect();
    for (status, n) in &f.outbox {
        let label = OUTBOX_STATUSES.iter().find(|s| **s == status.as_str()).copied().unwrap_or("other");
        *outbox.entry(label).or_insert(0) += n;
    }
    for (status, n) in outbox {
        gauge!("bma_outbox_emails", "status" => status).set(n as f64);
    }

    describe_counter!("bma_copied_messages_total", "Messages the copies brought, per phase, since the campaign began.");
    describe_counter!(
        "bma_copied_bytes_total",
        metrics::Unit::Bytes,
        "Bytes the copies brought, per phase, since the campaign began."
    );
    for phase in CopyPhase::ALL {
        let c = f.copied.iter().find(|(p, _)| *p == phase).map(|(_, c)| *c).unwrap_or_default();
        counter!("bma_copied_messages_total", "phase" => phase.as_str()).absolute(c.messages);
        counter!("bma_copied_bytes_total", "phase" => phase.as_str()).absolute(c.bytes);
    }

    describe_histogram!(
        "bma_cutover_hold_seconds",
        metrics::Unit::Seconds,
        "Hold window of each cutover that switched: mail held and the legacy login refused, until routed."
    );
    let hold = histogram!("bma_cutover_hold_seconds");
    for ms in &f.holds.done_ms {
        hold.record(*ms as f64 / 1000.0);
    }
    describe_gauge!("bma_cutovers_holding", "Mailboxes whose mail is held now (past the hold step, not yet routed).");
    gauge!("bma_cutovers_holding").set(f.holds.holding as f64);

    describe_gauge!("bma_metrics_read_seconds", "How long this scrape took to read the store.");
    gauge!("bma_metrics_read_seconds").set(f.read_seconds);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_addresses_match_as_written() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["127.0.0.0/8", "::1"], "127.0.0.1", true),
            (&["127.0.0.0/8", "::1"], "127.255.0.9", true),
            (&["127.0.0.0/8", "::1"], "::1", true),
            (&["127.0.0.0/8", "::1"], "10.0.0.1", false),
            (&["10.0.0.0/8"], "10.200.3.4", true),
            (&["10.0.0.0/8"], "11.0.0.1", false),
            (&["10.1.2.3/8"], "10.9.9.9", true),
            (&["192.0.2.7"], "192.0.2.7", true),
            (&["192.0.2.7"], "192.0.2.8", false),
            (&["192.168.1.0/24"], "192.168.1.255", true),
            (&["192.168.1.0/24"], "192.168.2.0", false),
            (&["10.0.0.0/8"], "::ffff:10.1.2.3", true),
            (&["2001:db8::/32"], "2001:db8:ffff::1", true),
            (&["2001:db8::/32"], "2001:db9::1", false),
            (&["0.0.0.0/0"], "203.0.113.9", true),
            (&["0.0.0.0/0"], "2001:db8::1", false),
            (&[], "127.0.0.1", false),
        ];
        for (allow, ip, expected) in cases {
            let s = MetricsSettings { allow: allow.iter().map(|n| parse_network(n).unwrap()).collect(), token: None };
            assert_eq!(s.allows(ip.parse().unwrap()), *expected, "{ip} in {allow:?}");
        }
        assert!(MetricsSettings::default().allows("127.0.0.1".parse().unwrap()));
        assert!(MetricsSettings::default().allows("::1".parse().unwrap()));
        assert!(!MetricsSettings::default().allows("192.0.2.1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "localhost", "10.0.0", "::1/129", "10.0.0.0/8/8"] {
            assert!(parse_network(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_token_only_as_a_bearer_and_whole() {
        let s = MetricsSettings { allow: Vec::new(), token: Some("s3cr3t-scrape".into()) };
        for (sent, ok) in [
            (Some("Bearer s3cr3t-scrape"), true),
            (Some("bearer  s3cr3t-scrape "), true),
            (Some("Bearer s3cr3t-scrapf"), false),
            (Some("Bearer s3cr3t"), false),
            (Some("Basic s3cr3t-scrape"), false),
            (Some("s3cr3t-scrape"), false),
            (None, false),
        ] {
            let mut h = HeaderMap::new();
            if let Some(v) = sent {
                h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(s.token_matches(&h), ok, "{sent:?}");
        }
        let none = MetricsSettings { allow: Vec::new(), token: Some(String::new()) };
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(!none.token_matches(&h), "an empty token lets nobody in");
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn every_closed_set_is_written_and_nothing_else() {
        let mut f = Figures::default();
        f.mailboxes.insert(MailboxState::Invited, 3);
        f.outbox.insert("pending".into(), 2);
        f.outbox.insert("someone@example.org".into(), 1);
        f.durations.push(DurationBucket { kind: JobKind::Presync, bucket: 3, jobs: 2, total_ms: 5000 });
        f.holds.done_ms = vec![45_000];
        let text = render(&f);
        assert!(text.contains("bma_mailboxes{state=\"invited\"} 3\n"), "{text}");
        assert!(text.contains("bma_mailboxes{state=\"migrated\"} 0\n"), "{text}");
        assert!(text.contains("bma_outbox_emails{status=\"other\"} 1\n"), "{text}");
        assert!(!text.contains('@'), "no address in a label: {text}");
        assert!(text.contains("bma_job_duration_seconds_bucket{kind=\"presync\",le=\"5\"} 2\n"), "{text}");
        assert!(text.contains("bma_job_duration_seconds_bucket{kind=\"presync\",le=\"1\"} 0\n"), "{text}");
        assert!(text.contains("bma_job_duration_seconds_sum{kind=\"presync\"} 5\n"), "{text}");
        assert!(text.contains("bma_cutover_hold_seconds_bucket{le=\"60\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE bma_copied_bytes_total counter\n"), "{text}");
    }
}
