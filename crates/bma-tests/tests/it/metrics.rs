//! `/metrics` of `bma serve` over real HTTP, on both backends: a campaign
//! seeded through the store's own operations (mailboxes in several states,
//! jobs done, dead and queued, emails pending and sent, presync copies, a
//! cutover that switched and one holding mail), scraped, the exposition
//! parsed and every figure checked exactly; no address or name anywhere in
//! it; and who is refused: an address not allowed without the token, with
//! a wrong one, through a proxy whose last `X-Forwarded-For` entry is not
//! allowed.

use std::collections::BTreeMap;

use bma_core::PresyncDetails;
use bma_core::job::JobKind;
use bma_core::lifecycle::{Actor, State};
use bma_core::switch::Step;
use bma_store::{NewJob, StepDone, Store};
use bma_tests::web::{Harness, T0, invited_mailbox};
use bma_tests::{TestBackend, addr, on_both_backends};
use reqwest::StatusCode;
use time::Duration;

const TOKEN: &str = "scrape-token-0123456789";

/// The sample lines of an exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {l:?}"));
            (key.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("a number: {l:?}")))
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| panic!("{key} missing from {samples:#?}"))
}

async fn scrape(h: &Harness, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = h.client.get(h.url("/metrics"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// What the test puts in the store: every figure of the scrape follows from it.
async fn seed(store: &Store) {
    let system = Actor::System("test".into());
    // Invited (its invitation email pending, then sent), with a presync update.
    invited_mailbox(store, "ec000001@adm.cfwb.be").await;
    // Cut over: the first full copy, a slot, the steps, held 90 s.
    invited_mailbox(store, "ec000002@adm.cfwb.be").await;
    // Cutting over now, its mail held.
    invited_mailbox(store, "ec000003@adm.cfwb.be").await;
    // Imported only, under a name the scrape must never show.
    let csv = "address,name\npo000004@adm.cfwb.be,Institut Sainte-Gudule Métriques\n";
    let rows = bma_core::registry::parse(csv.as_bytes(), &bma_core::AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "test.csv", &system, T0 - Duration::days(7)).await.unwrap();

    let copy = |copied, copied_bytes| PresyncDetails { copied, copied_bytes, elapsed_ms: 10, folders: 2 };
    store.record_presync(&addr("ec000001@adm.cfwb.be"), &copy(5, 12_345), &system, T0).await.unwrap();

    let b = addr("ec000002@adm.cfwb.be");
    let to = |state| store.transition(&b, state, &system, "test", serde_json::json!({}), T0);
    to(State::Enrolled).await.unwrap();
    store.record_presync(&b, &copy(10, 1_000), &system, T0).await.unwrap();
    store.transition(&b, State::CutoverScheduled, &system, "test", serde_json::json!({}), T0).await.unwrap();
    let at = T0 + Duration::hours(1);
    assert!(store.start_switch(&b, serde_json::json!({}), &system, at).await.unwrap());
    let step = |step, details: serde_json::Value, at| {
        let store = store.clone();
        let b = b.clone();
        let system = system.clone();
        async move {
            let done = StepDone { step, details: &details, emails: &[], sent: &[], link: None };
            assert!(store.record_step(&b, done, &system, at).await.unwrap());
        }
    };
    step(Step::Provision, serde_json::json!({}), at + Duration::seconds(5)).await;
    step(Step::Hold, serde_json::json!({}), at + Duration::seconds(10)).await;
    step(Step::FinalCopy, serde_json::json!({ "copied": 4, "copied_bytes": 4_000 }), at + Duration::seconds(40)).await;
    step(Step::Verify, serde_json::json!({}), at + Duration::seconds(60)).await;
    step(Step::Mail2, serde_json::json!({}), at + Duration::seconds(70)).await;
    step(Step::Route, serde_json::json!({}), at + Duration::seconds(100)).await;
    let last = serde_json::json!({ "copied": 1, "copied_bytes": 100 });
    let finished = store.finish_switch(&b, last, serde_json::json!({}), &system, at + Duration::seconds(120));
    assert!(finished.await.unwrap());

    let c = addr("ec000003@adm.cfwb.be");
    for state in [State::Enrolled, State::CutoverScheduled] {
        store.transition(&c, state, &system, "test", serde_json::json!({}), T0).await.unwrap();
    }
    let at = T0 + Duration::hours(2);
    assert!(store.start_switch(&c, serde_json::json!({}), &system, at).await.unwrap());
    let held = StepDone { step: Step::Hold, details: &serde_json::json!({}), emails: &[], sent: &[], link: None };
    assert!(store.record_step(&c, held, &system, at).await.unwrap());

    // One of the three invitations sent.
    let claimed = store.claim_emails("w1", T0, Duration::minutes(5), 1).await.unwrap();
    store.mark_sent(claimed[0].id, "w1", T0).await.unwrap();

    // Jobs: a presync that ran 90 s, an invitation run of 0.5 s, a bounce
    // check dead, a cutover queued.
    let job = |kind, key: &str| NewJob {
        kind,
        key: key.to_owned(),
        payload: serde_json::json!({}),
        run_at: T0,
        max_attempts: 3,
    };
    for (kind, key, ran_ms) in [(JobKind::Presync, "p", 90_000), (JobKind::Invitations, "i", 500)] {
        store.enqueue(&job(kind, key), T0).await.unwrap();
        let claimed = store.claim("w1", &[kind], T0, Duration::minutes(5), 1).await.unwrap();
        store.complete(claimed[0].id, "w1", T0 + Duration::milliseconds(ran_ms)).await.unwrap();
    }
    store.enqueue(&job(JobKind::Bounces, "b"), T0).await.unwrap();
    let claimed = store.claim("w1", &[JobKind::Bounces], T0, Duration::minutes(5), 1).await.unwrap();
    store.fail(claimed[0].id, "w1", "the relay refused", true, T0 + Duration::seconds(1)).await.unwrap();
    store.enqueue(&job(JobKind::Cutover, "c"), T0 + Duration::days(1)).await.unwrap();
}

async fn figures_to_the_token_and_allowed_addresses_only(backend: TestBackend) {
    let h = Harness::start(backend, |s| {
        s.metrics.allow = vec!["10.0.0.0/8".parse().unwrap()];
        s.metrics.token = Some(TOKEN.to_owned());
        s.trust_forwarded_for = true;
    })
    .await;
    seed(&h.store).await;

    // Refused: loopback is not allowed here, a wrong token, a token not as
    // a bearer, a proxied client not allowed (the last entry counts: the
    // one our proxy wrote, not what the client claimed before it).
    for headers in [
        vec![],
        vec![("authorization", "Bearer scrape-token-0123456788")],
        vec![("authorization", "Bearer ")],
        vec![("authorization", TOKEN)],
        vec![("x-forwarded-for", "203.0.113.9")],
        vec![("x-forwarded-for", "10.1.2.3, 203.0.113.9")],
    ] {
        let res = scrape(&h, &headers).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("bma_") && !body.contains("10.0.0.0"), "{headers:?}: {body}");
    }

    // Allowed: the token from anywhere, an allowed client through the proxy.
    let bearer = format!("Bearer {TOKEN}");
    for headers in [vec![("authorization", bearer.as_str())], vec![("x-forwarded-for", "203.0.113.9, 10.1.2.3")]] {
        let res = scrape(&h, &headers).await;
        assert_eq!(res.status(), StatusCode::OK, "{headers:?}");
        let ty = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert_eq!(ty, "text/plain; version=0.0.4; charset=utf-8");
    }

    let start = std::time::Instant::now();
    let text = scrape(&h, &[("authorization", bearer.as_str())]).await.text().await.unwrap();
    let elapsed = start.elapsed();
    let s = samples(&text);

    // Nothing personal: no address, no name, not even a FASE number.
    for personal in ["@", "ec0000", "po0000", "Sainte-Gudule", "Institut", "École", "communale", "Test"] {
        assert!(!text.contains(personal), "{personal:?} in the scrape:\n{text}");
    }

    for state in State::ALL {
        let expected = match state {
            State::Invited | State::Migrated | State::Migrating | State::Imported => 1.0,
            _ => 0.0,
        };
        assert_eq!(value(&s, &format!("bma_mailboxes{{state=\"{state}\"}}")), expected, "{state}");
    }

    for kind in JobKind::ALL {
        for state in ["queued", "running", "done", "dead"] {
            let expected = match (kind, state) {
                (JobKind::Presync | JobKind::Invitations, "done") => 1.0,
                (JobKind::Bounces, "dead") | (JobKind::Cutover, "queued") => 1.0,
                _ => 0.0,
            };
            let key = format!("bma_jobs{{kind=\"{kind}\",state=\"{state}\"}}");
            assert_eq!(value(&s, &key), expected, "{key}");
        }
    }
    let bucket =
        |kind: &str, le: &str| value(&s, &format!("bma_job_duration_seconds_bucket{{kind=\"{kind}\",le=\"{le}\"}}"));
    assert_eq!((bucket("presync", "60"), bucket("presync", "300"), bucket("presync", "+Inf")), (0.0, 1.0, 1.0));
    assert_eq!(value(&s, "bma_job_duration_seconds_sum{kind=\"presync\"}"), 90.0);
    assert_eq!(value(&s, "bma_job_duration_seconds_count{kind=\"presync\"}"), 1.0);
    assert_eq!((bucket("invitations", "0.1"), bucket("invitations", "0.5")), (0.0, 1.0));
    assert_eq!(value(&s, "bma_job_duration_seconds_sum{kind=\"invitations\"}"), 0.5);
    // A dead job is not a run time; every kind is written, none run or not.
    assert_eq!(value(&s, "bma_job_duration_seconds_count{kind=\"bounces\"}"), 0.0);
    assert_eq!(value(&s, "bma_job_duration_seconds_count{kind=\"reminders\"}"), 0.0);

    for (status, n) in [("pending", 2.0), ("sending", 0.0), ("sent", 1.0), ("unconfirmed", 0.0), ("dead", 0.0)] {
        assert_eq!(value(&s, &format!("bma_outbox_emails{{status=\"{status}\"}}")), n, "{status}");
    }

    for (phase, messages, bytes) in
        [("presync", 15.0, 13_345.0), ("final_copy", 4.0, 4_000.0), ("post_copy", 1.0, 100.0)]
    {
        assert_eq!(value(&s, &format!("bma_copied_messages_total{{phase=\"{phase}\"}}")), messages, "{phase}");
        assert_eq!(value(&s, &format!("bma_copied_bytes_total{{phase=\"{phase}\"}}")), bytes, "{phase}");
    }

    assert_eq!(value(&s, "bma_cutover_hold_seconds_count"), 1.0);
    assert_eq!(value(&s, "bma_cutover_hold_seconds_sum"), 90.0);
    assert_eq!(value(&s, "bma_cutover_hold_seconds_bucket{le=\"60\"}"), 0.0);
    assert_eq!(value(&s, "bma_cutover_hold_seconds_bucket{le=\"120\"}"), 1.0);
    assert_eq!(value(&s, "bma_cutovers_holding"), 1.0);
    assert!(value(&s, "bma_metrics_read_seconds") >= 0.0);
    for line in ["# TYPE bma_mailboxes gauge", "# TYPE bma_copied_bytes_total counter"] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    assert!(text.contains("# TYPE bma_job_duration_seconds histogram"), "{text}");
    eprintln!("metrics: a scrape of the seeded campaign on {backend:?} in {elapsed:?}");
    h.stop().await;
}

/// Without configuration, loopback reads (a Prometheus on the same host).
async fn loopback_reads_by_default(backend: TestBackend) {
    let h = Harness::start(backend, |_| {}).await;
    let res = scrape(&h, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let s = samples(&res.text().await.unwrap());
    assert_eq!(value(&s, "bma_mailboxes{state=\"imported\"}"), 0.0);
    assert_eq!(value(&s, "bma_cutovers_holding"), 0.0);
    h.stop().await;
}

on_both_backends!(figures_to_the_token_and_allowed_addresses_only, loopback_reads_by_default);
