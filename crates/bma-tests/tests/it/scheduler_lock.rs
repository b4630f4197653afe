//! Several schedulers on one store, as separate `bma` processes: refused on
//! SQLite with a message saying what to do (exit 2), allowed on PostgreSQL;
//! `bma campaign tick` and `run` count as schedulers.
//! The lock goes with its process, even killed by SIGKILL.
//!
//! Needs `cargo build -p bma` (no lab server: the campaign is not started,
//! so the workers' steps send nothing).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bma_tests::{TestBackend, TestDb, bma_command, postgres_skipped};

/// A process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits (20 s at most) for a line of its stderr containing `ready`.
fn start(mut cmd: Command, ready: &str) -> Running {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start bma");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let running = Running(child);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains(ready) => return running,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no {ready:?} from bma within 20 s; it said:\n{}", seen.join("\n")),
        }
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn refused(out: &Output) {
    let said = text(out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    for expected in [
        "another scheduler already runs on the SQLite store",
        "several workers need PostgreSQL",
        "bma serve --no-scheduler",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scheduler_on_sqlite_is_refused() {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = db.url.as_str();

    let mut first = start(bma_command(d, url, &["worker", "--interval", "1s"]), "started");
    let pid = first.0.id();

    // A second worker, and a portal with its scheduler: refused.
    let second = bma_command(d, url, &["worker", "--once"]).output().unwrap();
    refused(&second);
    assert!(text(&second).contains(&format!("held by process {pid}")), "{}", text(&second));
    refused(&bma_command(d, url, &["serve", "--listen", "127.0.0.1:0"]).output().unwrap());
    // One step from the command line is a scheduler too.
    refused(&bma_command(d, url, &["campaign", "tick", "--at", "2024-04-22T08:00:00Z"]).output().unwrap());
    let run = ["campaign", "run", "--from", "2024-04-22T08:00:00Z", "--until", "2024-04-23T08:00:00Z", "--step", "1d"];
    refused(&bma_command(d, url, &run).output().unwrap());

    // A portal without its scheduler runs beside the worker.
    let portal = start(bma_command(d, url, &["serve", "--listen", "127.0.0.1:0", "--no-scheduler"]), "listening on");
    drop(portal);

    // The worker killed (SIGKILL): the lock went with it.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let out = bma_command(d, url, &["worker", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = bma_command(d, url, &["campaign", "tick", "--at", "2024-04-22T08:00:00Z"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // And a portal with its scheduler can then run.
    drop(start(bma_command(d, url, &["serve", "--listen", "127.0.0.1:0"]), "listening on"));

    // What several workers need is in the help.
    let help = bma_command(d, url, &["worker", "--help"]).output().unwrap();
    assert!(text(&help).contains("Several workers: run them on PostgreSQL"), "{}", text(&help));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_on_postgres_run() {
    if postgres_skipped() {
        eprintln!("PostgreSQL left out (BMA_TEST_SKIP_POSTGRES=1)");
        return;
    }
    let db = TestDb::new(TestBackend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = db.url.as_str();
    let first = start(bma_command(d, url, &["worker", "--interval", "1s"]), "started");
    let out = bma_command(d, url, &["worker", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    drop(start(bma_command(d, url, &["serve", "--listen", "127.0.0.1:0"]), "listening on"));
    drop(first);
    db.drop_db().await;
}
