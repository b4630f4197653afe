//! The campaign through the `bma` binary, its configuration from the
//! environment. A worker killed (SIGKILL) while it sends mail 1 of a wave
//! neither loses nor duplicates an email: the next worker takes the job
//! and the emails over once their leases (real time) expire, looks for each uncertain
//! email in its recipient's legacy mailbox before sending it again, and
//! every mailbox ends with exactly one invitation (SQLite and PostgreSQL).
//! `bma worker` runs the campaign on an accelerated clock.
//!
//! Needs `cargo xtask lab up` and `cargo build -p bma`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bma_tests::{TestBackend, TestDb, bma_lab_command, lab_addusers, lab_inbox, on_both_backends, output_ok};

fn bma(dir: &std::path::Path, url: &str, args: &[&str]) -> Command {
    let mut cmd = bma_lab_command(dir, url, args);
    // Its own bounce mailbox: a campaign marks what it reads there as read.
    cmd.env("BMA_MAIL_BOUNCE_ADDRESS", "bounces-cli@bma.test")
        .env("BMA_MAIL_TEAM_ADDRESS", "migrationbma@bma.test")
        // Slow enough to be killed in the middle: 5 emails a second.
        .env("BMA_MAIL_MAX_PER_MINUTE", "300")
        // Leases (real time) of a stopped worker expire within 2 s.
        .env("BMA_WORKER_LEASE_SECONDS", "2");
    cmd
}

async fn invitations(address: &str) -> usize {
    lab_inbox("legacy", address)
        .await
        .iter()
        .filter(|b| String::from_utf8_lossy(b).contains("Message-ID: <invitation."))
        .count()
}

/// Legacy users for `addresses`, a registry of them imported in `dir`,
/// one wave planned, the campaign started; returns how many invitations
/// each legacy inbox held before.
async fn started_campaign(dir: &std::path::Path, url: &str, addresses: &[String]) -> Vec<usize> {
    lab_addusers("legacy", addresses, "secret-campaign-test");
    lab_addusers("legacy", &["bounces-cli@bma.test".to_owned()], "secret-bounces");
    let mut before = Vec::new();
    for a in addresses {
        before.push(invitations(a).await);
    }
    std::fs::write(dir.join("admin.password"), "adminpass\n").unwrap();
    let mut csv = String::from("address,name\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},École {i}\n"));
    }
    std::fs::write(dir.join("registre.csv"), csv).unwrap();
    output_ok(bma(dir, url, &["import", "mailboxes", "registre.csv"]));
    output_ok(bma(dir, url, &["plan", "--apply", "--today", "2024-04-01", "--as", "test"]));
    output_ok(bma(dir, url, &["campaign", "start", "--as", "test", "--at", "2024-04-01T09:00:00Z"]));
    before
}

async fn a_killed_sender_neither_loses_nor_duplicates(backend: TestBackend) {
    let prefix = if backend == TestBackend::Sqlite { 895 } else { 896 };
    let addresses: Vec<String> = (1..=30).map(|i| format!("ec{prefix}{i:03}@adm.cfwb.be")).collect();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.as_str();
    let d = dir.path();
    let before = started_campaign(d, url, &addresses).await;

    // The first worker sends for a while, then is killed mid-wave.
    let mut first = bma(d, url, &["campaign", "tick", "--at", "2024-04-22T08:00:00Z"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let killed_after = Duration::from_millis(2500);
    while started.elapsed() < killed_after {
        if first.try_wait().unwrap().is_some() {
            panic!("the first worker finished before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let status = output_ok(bma(d, url, &["campaign", "status", "--json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let sent_before = status["outbox"]["sent"].as_u64().unwrap_or(0);
    assert!(sent_before > 0 && sent_before < 30, "killed in the middle: {sent_before} sent");

    // A second worker, once the leases have expired (2 s of real time; an
    // hour later on the campaign clock).
    std::thread::sleep(Duration::from_millis(2500));
    let out = output_ok(bma(d, url, &["campaign", "tick", "--at", "2024-04-22T09:00:00Z"]));
    assert!(out.contains("sent"), "{out}");
    let status: serde_json::Value =
        serde_json::from_str(&output_ok(bma(d, url, &["campaign", "status", "--json"]))).unwrap();
    // 30 invitations, the deadline list (the deadline is that day) and the daily report.
    assert_eq!(status["outbox"]["sent"].as_u64(), Some(32), "{status}");
    assert_eq!(status["mailboxes"]["invited"].as_u64(), Some(30), "{status}");

    // Exactly one invitation in every legacy mailbox.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (a, n) in addresses.iter().zip(before.iter().copied()) {
        let got = loop {
            let got = invitations(a).await;
            if got > n || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert_eq!(got, n + 1, "{a}: exactly one invitation");
    }
    // A little later, still exactly one: no second copy was in flight.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (a, n) in addresses.iter().zip(before) {
        assert_eq!(invitations(a).await, n + 1, "{a}: still exactly one invitation");
    }
    db.drop_db().await;
}

on_both_backends!(a_killed_sender_neither_loses_nor_duplicates);

/// `bma worker` on an accelerated campaign clock: a minute of campaign a
/// second, from just before the first wave's hour; it invites the wave at
/// 08:00 and stops by itself at `--until`.
#[tokio::test]
async fn a_worker_runs_the_campaign_on_an_accelerated_clock() {
    let addresses: Vec<String> = (1..=3).map(|i| format!("ec897{i:03}@adm.cfwb.be")).collect();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = "sqlite://worker.db";
    let before = started_campaign(d, url, &addresses).await;
    let started = Instant::now();
    let out = output_ok(bma(
        d,
        url,
        &[
            "worker",
            "--clock-start",
            "2024-04-22T07:58:00Z",
            "--speed",
            "60",
            "--interval",
            "1s",
            "--until",
            "2024-04-22T08:04:00Z",
        ],
    ));
    assert!(started.elapsed() < Duration::from_secs(30), "the worker stops at --until");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.first().is_some_and(|l| l.starts_with("2024-04-22T07:5") && l.contains("invited 0")), "{out}");
    // Mail 1 of the three, and the deadline list (the deadline is that day in these tests).
    assert!(lines.iter().any(|l| l.contains("08:00") && l.contains("invited 3") && l.contains("sent 4")), "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    for (a, n) in addresses.iter().zip(before) {
        while invitations(a).await == n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(invitations(a).await, n + 1, "{a}");
    }
}
