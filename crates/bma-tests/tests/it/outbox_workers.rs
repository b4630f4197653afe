//! The outbox with several workers, on PostgreSQL, against the lab's
//! Postfix and legacy Dovecot: every email exactly once and on time.
//!
//! - Three `bma worker` processes on an accelerated clock (an hour of
//!   campaign a second) over a campaign of lab mailboxes, mail 1 and two
//!   reminders each; once without a kill, once with workers SIGKILLed at
//!   random moments and replaced (six at most). Every mail 1 and reminder
//!   is in its legacy INBOX exactly once, in order, each accepted by the
//!   relay within a simulated hour of its due time in the outbox (plus two
//!   leases, in real time, when workers are killed) and queued within two
//!   such bounds of its day's wave hour; no email or job stuck; the
//!   deadline list names none of them; the team gets one daily report a
//!   day.
//! - An uncertain email (its sender stopped after the relay accepted it)
//!   that the relay holds for longer than the old evidence check waited:
//!   found in the relay's queue, neither sent again nor recorded sent until
//!   it is in the mailbox; exactly one copy delivered.
//! - An uncertain email whose delivery cannot be checked goes to a human.
//!
//! Needs `cargo xtask lab up`, `cargo build -p bma` and `cargo build -p xtask`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use bma_engine::{Engine, OutboxOptions};
use bma_mail::{Envelope, OutgoingEmail, Templates};
use bma_store::{Lease, NewEmail, Store};
use bma_tests::engine::{lab_engine_settings, lab_smtp};
use bma_tests::{
    TestBackend, TestDb, addr, bma_lab_command, lab_addusers, lab_file, lab_inbox, output_ok, postgres_skipped,
    workspace_root,
};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// Campaign seconds per real second.
const SPEED: i64 = 3600;
/// Real seconds of a lease.
const LEASE_SECONDS: i64 = 1;
/// The campaign clock of the workers starts here…
const CLOCK_START: OffsetDateTime = datetime!(2024-04-22 07:58 UTC);
/// … and they stop here, after reminder 2 (2024-04-24 08:00).
const CLOCK_END: OffsetDateTime = datetime!(2024-04-24 10:30 UTC);

fn postqueue_command() -> String {
    let lab = lab_file("lab.json");
    format!("postqueue -c {} -j", lab["smtp"]["config_dir"].as_str().expect("smtp.config_dir"))
}

/// `xtask lab hold`: this worktree's xtask (the command is new), else the lab's.
fn lab_hold(address: &str, held: bool) {
    let own = workspace_root().join("target/debug/xtask");
    let exe = if own.exists() {
        own
    } else {
        std::path::PathBuf::from(lab_file("lab.json")["xtask"].as_str().expect("lab.json names the xtask binary"))
    };
    let mut cmd = Command::new(&exe);
    cmd.args(["lab", "hold", address]);
    if !held {
        cmd.arg("--release");
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(out.status.success(), "lab hold: {}", String::from_utf8_lossy(&out.stderr));
}

fn bma(dir: &std::path::Path, url: &str, tag: &str, args: &[&str]) -> Command {
    let mut cmd = bma_lab_command(dir, url, args);
    cmd.env("BMA_MAIL_BOUNCE_ADDRESS", format!("bounces-{tag}@bma.test"))
        .env("BMA_MAIL_TEAM_ADDRESS", format!("team-{tag}@bma.test"))
        .env("BMA_MAIL_MAX_PER_MINUTE", "0")
        .env("BMA_MAIL_RELAY_QUEUE_COMMAND", postqueue_command())
        .env("BMA_WORKER_LEASE_SECONDS", LEASE_SECONDS.to_string())
        .env("BMA_CAMPAIGN_REMINDER_DAYS", "1,2");
    cmd
}

/// A worker whose campaign clock reads what the first one's reads now.
fn spawn_worker(dir: &std::path::Path, url: &str, tag: &str, started: Instant, n: usize) -> Child {
    let at = CLOCK_START + Duration::seconds_f64(started.elapsed().as_secs_f64() * SPEED as f64);
    let at = at.format(&Rfc3339).unwrap();
    let until = CLOCK_END.format(&Rfc3339).unwrap();
    let speed = SPEED.to_string();
    let log = std::fs::File::create(dir.join(format!("worker-{n}.log"))).unwrap();
    bma(dir, url, tag, &["worker", "--clock-start", &at, "--speed", &speed, "--interval", "100ms", "--until", &until])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// A small deterministic generator for the kill times (seed printed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

async fn three_workers(tag: &str, prefix: u32, kills: usize) {
    if postgres_skipped() {
        return;
    }
    let addresses: Vec<String> = (1..=12).map(|i| format!("ec{prefix}{i:03}@adm.cfwb.be")).collect();
    let db = TestDb::new(TestBackend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let (d, url) = (dir.path(), db.url.as_str());
    lab_addusers("legacy", &addresses, "secret-workers-test");
    lab_addusers("legacy", &[format!("bounces-{tag}@bma.test"), format!("team-{tag}@bma.test")], "secret-workers");
    // The team's mailbox outlives a run on a lab kept up: only what this run sends counts.
    let team_before = lab_inbox("legacy", &format!("team-{tag}@bma.test")).await.len();
    let before: Vec<usize> = {
        let mut v = Vec::new();
        for a in &addresses {
            v.push(lab_inbox("legacy", a).await.len());
        }
        v
    };
    std::fs::write(d.join("admin.password"), "adminpass\n").unwrap();
    let mut csv = String::from("address,name\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},École {i}\n"));
    }
    std::fs::write(d.join("registre.csv"), csv).unwrap();
    output_ok(bma(d, url, tag, &["import", "mailboxes", "registre.csv"]));
    output_ok(bma(d, url, tag, &["plan", "--apply", "--today", "2024-04-01", "--as", "test"]));
    output_ok(bma(d, url, tag, &["campaign", "start", "--as", "test", "--at", "2024-04-01T09:00:00Z"]));

    let started = Instant::now();
    let mut workers: Vec<Child> = (0..3).map(|n| spawn_worker(d, url, tag, started, n)).collect();
    let seed = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_007).unwrap_or(7);
    eprintln!("{tag}: kill seed {seed}");
    let mut rng = Lcg(seed);
    let real_span = StdDuration::from_secs_f64((CLOCK_END - CLOCK_START).as_seconds_f64() / SPEED as f64);
    // Kill times: random moments around each day's wave hour, when the
    // workers invite, remind and send (two per day), sorted.
    let mut times: Vec<StdDuration> = (0..kills)
        .map(|i| {
            let day = i64::try_from(i % 3).unwrap();
            let busy =
                (datetime!(2024-04-22 08:00 UTC) + Duration::days(day) - CLOCK_START).as_seconds_f64() / SPEED as f64;
            StdDuration::from_secs_f64(busy) + StdDuration::from_millis(rng.next(900))
        })
        .collect();
    times.sort();
    for (spawned, at) in (3..).zip(times) {
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let victim = usize::try_from(rng.next(3)).unwrap();
        workers[victim].kill().unwrap();
        workers[victim].wait().unwrap();
        workers[victim] = spawn_worker(d, url, tag, started, spawned);
        eprintln!("{tag}: killed worker {victim} at {:.2?}", started.elapsed());
    }
    // Generous: a loaded machine stretches the last steps; what is checked is that they stop.
    let deadline = started + real_span + StdDuration::from_secs(90);
    for w in &mut workers {
        loop {
            if w.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "{tag}: a worker did not stop at --until");
            tokio::time::sleep(StdDuration::from_millis(200)).await;
        }
    }
    eprintln!("{tag}: workers done in {:.1?}", started.elapsed());

    // Nothing stuck.
    let status: serde_json::Value =
        serde_json::from_str(&output_ok(bma(d, url, tag, &["campaign", "status", "--json"]))).unwrap();
    let health = &status["outbox_health"];
    for key in ["due", "past_lease", "being_checked", "unconfirmed", "dead"] {
        assert_eq!(health[key].as_u64(), Some(0), "{tag}: outbox {key}: {status}");
    }
    assert_eq!(status["stale_jobs"].as_array().map(Vec::len), Some(0), "{tag}: {status}");
    for j in status["jobs"].as_array().unwrap() {
        assert!(["done", "queued"].contains(&j["state"].as_str().unwrap()), "{tag}: job {j}");
    }
    assert_eq!(
        status["outbox"]["sent"].as_u64(),
        Some(12 * 3 + 1 + 3),
        "{tag}: mail 1, 2 reminders, the list, 3 daily reports: {status}"
    );

    // Every email once in its INBOX, in order, on time.
    let store: Store = db.store().await;
    let wave = datetime!(2024-04-22 08:00 UTC);
    let killed_bound = Duration::hours(1) + Duration::seconds(LEASE_SECONDS * SPEED) * 2;
    let bound = if kills == 0 { Duration::hours(1) } else { killed_bound };
    let mut worst = Duration::ZERO;
    let mut latest_queued = Duration::ZERO;
    let (mut uncertain, mut resent) = (0, 0);
    for (a, n) in addresses.iter().zip(before) {
        let m = store.mailbox(&addr(a)).await.unwrap();
        let emails = store.emails_of(m.id).await.unwrap();
        let kinds: Vec<&str> = emails.iter().map(|e| e.kind.as_str()).collect();
        uncertain += emails.iter().filter(|e| e.uncertain).count();
        resent += emails.iter().filter(|e| e.attempts > 1).count();
        assert_eq!(kinds, ["invitation", "reminder", "reminder"], "{tag}: {a}");
        let wait = Instant::now() + StdDuration::from_secs(20);
        let inbox = loop {
            let inbox: Vec<String> = lab_inbox("legacy", a)
                .await
                .into_iter()
                .skip(n)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect();
            if inbox.len() >= 3 || Instant::now() > wait {
                break inbox;
            }
            tokio::time::sleep(StdDuration::from_millis(300)).await;
        };
        assert_eq!(inbox.len(), 3, "{tag}: {a}: exactly three emails");
        let mut previous_sent = None;
        for (k, (e, body)) in emails.iter().zip(&inbox).enumerate() {
            assert!(body.contains(&format!("Message-ID: <{}>", e.message_id)), "{tag}: {a}: email {k} out of order");
            let sent = e.sent_at.unwrap_or_else(|| panic!("{tag}: {a}: email {k} not sent"));
            // Its due time in the outbox (when the step that decided it queued it)…
            assert!(sent >= e.run_at, "{tag}: {a}: email {k} sent before its time");
            worst = worst.max(sent - e.run_at);
            assert!(sent - e.run_at <= bound, "{tag}: {a}: email {k} sent {} after its due time", sent - e.run_at);
            // … and the campaign's: the wave's hour, then a day and two days later.
            let nominal = wave + Duration::days(i64::try_from(k).unwrap());
            assert!(e.run_at >= nominal, "{tag}: {a}: email {k} queued before its day");
            latest_queued = latest_queued.max(e.run_at - nominal);
            assert!(e.run_at - nominal <= bound * 2, "{tag}: {a}: email {k} queued {} late", e.run_at - nominal);
            assert!(previous_sent.is_none_or(|p| p <= sent), "{tag}: {a}: email {k} sent before the one before it");
            previous_sent = Some(sent);
        }
    }
    eprintln!(
        "{tag}: the latest email left {worst} after its due time, queued at most {latest_queued} after its day's hour; \
         {uncertain} emails taken over from a killed worker, {resent} of them sent again"
    );

    // The daily report (from 07:00 each day), once a day whatever the
    // workers did: the 22nd (of the 21st), the 23rd and the 24th.
    let reports_of = |team: &[Vec<u8>]| -> Vec<String> {
        team.iter()
            .skip(team_before)
            .filter(|b| String::from_utf8_lossy(b).contains("Message-ID: <daily_report."))
            .filter_map(|b| bma_mail::inspect::part(b, "text/plain"))
            .collect()
    };
    let wait = Instant::now() + StdDuration::from_secs(30);
    let team = loop {
        let team = lab_inbox("legacy", &format!("team-{tag}@bma.test")).await;
        if reports_of(&team).len() >= 3 || Instant::now() > wait {
            break team;
        }
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    };
    let reports = reports_of(&team);
    let days: Vec<&str> = ["21 avril 2024", "22 avril 2024", "23 avril 2024"]
        .into_iter()
        .filter(|d| reports.iter().filter(|r| r.contains(&format!("la journée du {d},"))).count() == 1)
        .collect();
    assert_eq!((reports.len(), days.len()), (3, 3), "{tag}: one daily report a day: {reports:#?}");

    // The deadline list (mail 1 all delivered before it) names none of them.
    let list = team
        .iter()
        .skip(team_before)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .find(|m| m.contains("Message-ID: <deadline_watch."))
        .unwrap_or_default();
    assert!(!list.is_empty(), "{tag}: the deadline list reached the team");
    for a in &addresses {
        assert!(!list.contains(a.as_str()), "{tag}: the deadline list names {a}, whose mail 1 was delivered");
    }
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn three_workers_send_every_email_once_and_on_time() {
    three_workers("workers-calm", 916, 0).await;
}

#[tokio::test]
async fn three_workers_killed_and_replaced_send_every_email_once_and_on_time() {
    three_workers("workers-killed", 917, 6).await;
}

fn engine(store: Store, options: OutboxOptions) -> Engine {
    let settings = lab_engine_settings("bounces-held@bma.test");
    Engine::new(store, Templates::load(None).unwrap(), settings, lab_smtp(), "test-survivor")
        .with_outbox_options(options)
}

/// A mailbox and an email to it, queued at `now`.
async fn one_email(store: &Store, address: &str, now: OffsetDateTime) -> (i64, NewEmail) {
    let csv = format!("address,name\n{address},École\n");
    let rows = bma_core::registry::parse(csv.as_bytes(), &bma_core::AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "t.csv", &bma_core::lifecycle::Actor::System("import".into()), now).await.unwrap();
    let m = store.mailbox(&addr(address)).await.unwrap();
    // Unique across runs: the lab's mailboxes keep what earlier runs delivered.
    let message_id = format!("invitation.{}.{}@bma.test", m.id, OffsetDateTime::now_utc().unix_timestamp_nanos());
    let from = format!("bounces+{}@bma.test", address.replace('@', "="));
    let raw = format!(
        "From: Campagne <migrationbma@bma.test>\r\nTo: {address}\r\nSubject: Mail 1\r\nMessage-ID: <{message_id}>\r\n\r\nBonjour.\r\n"
    );
    let email = NewEmail {
        mailbox_id: Some(m.id),
        kind: "invitation".into(),
        key: format!("invitation:{address}"),
        recipient: address.to_owned(),
        envelope_from: from,
        message_id,
        subject: "Mail 1".into(),
        raw,
        run_at: now,
        max_attempts: 8,
    };
    let (id, _) = store.queue_email(&email, now).await.unwrap();
    (id, email)
}

fn count(inbox: &[Vec<u8>], message_id: &str) -> usize {
    inbox.iter().filter(|b| String::from_utf8_lossy(b).contains(&format!("Message-ID: <{message_id}>"))).count()
}

/// A sender accepted by the relay, then stopped before recording it; the
/// relay holds the message longer than the evidence check used to wait.
#[tokio::test]
async fn an_uncertain_email_held_by_the_relay_is_neither_sent_again_nor_lost() {
    if postgres_skipped() {
        return;
    }
    let address = "ec918001@adm.cfwb.be";
    lab_addusers("legacy", &[address.to_owned()], "secret-workers-test");
    let db = TestDb::new(TestBackend::Postgres).await;
    let store = db.store().await;
    let now = datetime!(2024-04-22 08:00 UTC);
    let (id, email) = one_email(&store, address, now).await;
    lab_hold(address, true);
    let released = scopeguard(address);
    // Postfix's reload is asynchronous: let its daemons read the new route.
    tokio::time::sleep(StdDuration::from_secs(2)).await;

    // The first sender: claims it, the relay accepts it, the sender dies.
    let lease = Lease { now: OffsetDateTime::now_utc(), length: Duration::milliseconds(500) };
    assert_eq!(store.claim_emails_leased("stopped", now, lease, 1).await.unwrap().len(), 1);
    let outgoing = OutgoingEmail {
        envelope: Envelope { from: email.envelope_from.clone(), to: vec![address.to_owned()] },
        raw: email.raw.clone().into_bytes(),
        message_id: email.message_id.clone(),
    };
    lab_smtp().send(&outgoing).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(600)).await;

    // The survivor finds it in the relay's queue, for longer than the old 3 s.
    let options = OutboxOptions {
        lease: StdDuration::from_secs(2),
        relay_queue_command: postqueue_command().split_whitespace().map(str::to_owned).collect(),
        recheck: StdDuration::from_millis(500),
        max_checks: 100,
    };
    let survivor = engine(store.clone(), options);
    let held_until = Instant::now() + StdDuration::from_secs(5);
    let mut looks = 0;
    while Instant::now() < held_until {
        let r = survivor.send_due(now + Duration::minutes(5)).await.unwrap();
        assert_eq!((r.sent, r.found_delivered), (0, 0), "held: neither sent again nor recorded sent");
        looks += r.checking;
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
    assert!(looks >= 2, "looked for in the relay's queue again and again ({looks})");
    assert_eq!(count(&lab_inbox("legacy", address).await, &email.message_id), 0, "still held");
    let stored = &store.emails_of(email.mailbox_id.unwrap()).await.unwrap()[0];
    assert_eq!((stored.state.as_str(), stored.attempts), ("sending", 1), "one SMTP transaction so far");

    // Released: delivered once, then recorded sent without sending again.
    drop(released);
    let give_up = Instant::now() + StdDuration::from_secs(40);
    loop {
        let r = survivor.send_due(now + Duration::minutes(10)).await.unwrap();
        assert_eq!(r.sent, 0, "never sent again");
        if r.found_delivered == 1 {
            break;
        }
        assert!(Instant::now() < give_up, "the released email was never found delivered");
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
    let stored = &store.emails_of(email.mailbox_id.unwrap()).await.unwrap()[0];
    assert_eq!((stored.id, stored.state.as_str(), stored.attempts), (id, "sent", 1));
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    assert_eq!(count(&lab_inbox("legacy", address).await, &email.message_id), 1, "exactly one copy delivered");
    store.close().await;
    db.drop_db().await;
}

/// Releases the hold on `address` when dropped (a failed test included).
fn scopeguard(address: &str) -> impl Drop {
    struct Release(String);
    impl Drop for Release {
        fn drop(&mut self) {
            lab_hold(&self.0, false);
        }
    }
    Release(address.to_owned())
}

/// An uncertain email whose delivery cannot be checked (the relay's queue
/// unreadable) is looked for a few times, then left to a human: the email
/// `unconfirmed`, its mailbox flagged, shown by `bma campaign status`.
#[tokio::test]
async fn an_uncertain_email_that_cannot_be_checked_goes_to_a_human() {
    if postgres_skipped() {
        return;
    }
    let address = "ec918002@adm.cfwb.be";
    let db = TestDb::new(TestBackend::Postgres).await;
    let store = db.store().await;
    let now = datetime!(2024-04-22 08:00 UTC);
    let (_, email) = one_email(&store, address, now).await;
    let lease = Lease { now: OffsetDateTime::now_utc(), length: Duration::milliseconds(100) };
    assert_eq!(store.claim_emails_leased("stopped", now, lease, 1).await.unwrap().len(), 1);
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let options = OutboxOptions {
        lease: StdDuration::from_secs(2),
        relay_queue_command: vec!["false".to_owned()],
        recheck: StdDuration::from_millis(100),
        max_checks: 3,
    };
    let survivor = engine(store.clone(), options);
    let mut checking = 0;
    let mut human = 0;
    let give_up = Instant::now() + StdDuration::from_secs(20);
    while human == 0 {
        let r = survivor.send_due(now).await.unwrap();
        assert_eq!((r.sent, r.found_delivered), (0, 0));
        checking += r.checking;
        human += r.unconfirmed;
        assert!(Instant::now() < give_up, "never left to a human");
        tokio::time::sleep(StdDuration::from_millis(150)).await;
    }
    assert_eq!((checking, human), (2, 1), "three looks, then a human");
    let stored = &store.emails_of(email.mailbox_id.unwrap()).await.unwrap()[0];
    assert_eq!((stored.state.as_str(), stored.attempts, stored.checks), ("unconfirmed", 1, 3));
    let attention = store.attention_list().await.unwrap();
    assert!(attention.iter().any(|a| a.address == address && a.reason == "email_unconfirmed"), "{attention:?}");
    // Nothing more happens to it.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(survivor.send_due(now + Duration::hours(1)).await.unwrap(), bma_engine::SendReport::default());
    let health = store.outbox_health(now, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((health.unconfirmed, health.due, health.being_checked), (1, 0, 0));
    store.close().await;
    db.drop_db().await;
}

/// A mailbox's emails leave in order: its reminder is not claimed while
/// its mail 1 is pending (even retried later), being sent or checked; an
/// email of another mailbox is never held up by them.
async fn a_mailbox_s_emails_leave_in_order(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let t0 = datetime!(2024-04-22 08:00 UTC);
    let (mail1, first) = one_email(&store, "ec000001@adm.cfwb.be", t0).await;
    let reminder = NewEmail {
        kind: "reminder".into(),
        key: "reminder:1:ec000001@adm.cfwb.be".into(),
        message_id: format!("reminder.{}", first.message_id),
        run_at: t0 + Duration::days(1),
        ..first.clone()
    };
    let (reminder, _) = store.queue_email(&reminder, t0).await.unwrap();
    let (other, _) = one_email(&store, "ec000002@adm.cfwb.be", t0 + Duration::days(1)).await;
    let lease = |length| Lease { now: t0, length };
    let t1 = t0 + Duration::days(1);
    let ids = |v: Vec<bma_store::OutboxEmail>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();

    // Mail 1 is being sent: the reminder waits, the other mailbox does not.
    assert_eq!(ids(store.claim_emails_leased("a", t0, lease(Duration::minutes(1)), 10).await.unwrap()), [mail1]);
    assert_eq!(ids(store.claim_emails_leased("b", t1, lease(Duration::minutes(1)), 10).await.unwrap()), [other]);
    // Mail 1 failed, retried later than the reminder's time: the reminder still waits.
    store.mark_email_failed(mail1, "a", "451 later", false, t1 + Duration::hours(1)).await.unwrap();
    assert!(
        store
            .claim_emails_leased("b", t1 + Duration::hours(1), lease(Duration::minutes(1)), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let at = t1 + Duration::hours(2);
    assert_eq!(ids(store.claim_emails_leased("b", at, lease(Duration::minutes(1)), 10).await.unwrap()), [mail1]);
    store.mark_sent(mail1, "b", at).await.unwrap();
    // Sent: the reminder goes.
    assert_eq!(ids(store.claim_emails_leased("b", at, lease(Duration::minutes(1)), 10).await.unwrap()), [reminder]);
    store.close().await;
    db.drop_db().await;
}

bma_tests::on_both_backends!(a_mailbox_s_emails_leave_in_order);
