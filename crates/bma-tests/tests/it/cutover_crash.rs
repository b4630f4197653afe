//! A worker killed at every point of a cutover, on both store backends and
//! both platform backends (passwd-files, directory):
//! `bma cutover run` aborted (the test hook `BMA_CUTOVER_CRASH_AFTER`, as
//! a SIGKILL would stop it: no destructor, no flush) once each step's side
//! effects are done but before they are recorded, and again right after
//! they are recorded, step after step, then run once more to the end. The
//! run resumes where it stopped (the checks are recorded once: it never
//! starts over), no step is recorded twice, mail 2 is in each box once,
//! and nothing is lost or duplicated on the new side, the mailbox's Sieve
//! script there once, stripped of its forwarding; `bma show` tells
//! each step's time, the receipt and the contact after migration.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;

use bma_core::State;
use bma_core::switch::Step;
use bma_platform::managesieve::Client;
use bma_tests::sieve::{lab_put_scripts, lab_sieve_config, lab_sieve_master};
use bma_tests::switch::{Platforms, cutover_env_on, fresh_address, legacy_mailbox_on, login, scheduled};
use bma_tests::{TestBackend, TestDb, addr, bma_lab_command, lab_inbox, on_every_platform_backend};
use time::macros::datetime;

const PASSWORD: &str = "mot-de-passe-de-la-bma";
const FORWARD: &str =
    "require [\"copy\"];\r\nif true\r\n{\r\n\tredirect :copy \"x@gmail.com\";\r\n\tredirect \"y@gmail.com\";\r\n}\r\n";

async fn a_cutover_killed_at_every_step_resumes_without_loss_or_duplicate(backend: TestBackend, on: Platforms) {
    let address = fresh_address();
    legacy_mailbox_on(on, &address, PASSWORD).await;
    // A Roundcube rule forwarding outside: the `sieve` step, killed too, carries it stripped.
    lab_put_scripts("legacy", &address, &[("roundcube", FORWARD.as_bytes())], Some("roundcube")).await;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    scheduled(&store, &address, datetime!(2024-06-04 06:00 UTC)).await;
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(dir.path().join("admin.password"), "adminpass\n").expect("password file");
    let env = cutover_env_on(dir.path(), on);
    let run = |crash: Option<String>| {
        let mut cmd = bma_lab_command(dir.path(), &db.url, &["cutover", "run", &address]);
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(c) = &crash {
            cmd.env("BMA_CUTOVER_CRASH_AFTER", c);
        }
        cmd.output().expect("bma cutover run")
    };

    for step in Step::ALL {
        for crash in [format!("before:{step}"), step.to_string()] {
            let out = run(Some(crash.clone()));
            assert_eq!(
                out.status.signal(),
                Some(6),
                "{crash}: the run must stop there: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let progress = store.switch_steps(&addr(&address)).await.expect("steps");
            let m = store.mailbox(&addr(&address)).await.expect("mailbox");
            let timeline = store.timeline(m.id).await.expect("timeline");
            assert_eq!(
                bma_store::SwitchProgress::from_timeline(m.state, &timeline).expect("progress"),
                progress,
                "{crash}: the console's reading of the steps is the store's"
            );
            let mut counts: BTreeMap<Step, usize> = BTreeMap::new();
            for s in &progress.steps {
                *counts.entry(s.step).or_default() += 1;
            }
            assert!(counts.values().all(|n| *n == 1), "{crash}: a step recorded twice: {counts:?}");
            let expected =
                Step::ALL.iter().position(|s| s == step).expect("a step") + usize::from(crash == step.to_string());
            assert_eq!(progress.steps.len(), expected, "{crash}: resumed where it stopped: {counts:?}");
        }
    }
    // The last abort was right after post_copy was recorded: migrated already.
    assert_eq!(store.mailbox(&addr(&address)).await.expect("mailbox").state, State::Migrated);
    let out = run(None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already migrated"));

    // Mail 2 once in each box; the five messages once on the new side.
    let subjects = |bodies: Vec<Vec<u8>>| -> Vec<String> {
        bodies
            .iter()
            .map(|b| {
                let text = String::from_utf8_lossy(b).into_owned();
                text.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("").to_owned()
            })
            .collect()
    };
    let mail2 = format!("Votre BMA {address} est ");
    for platform in ["legacy", "new"] {
        let inbox = subjects(lab_inbox(platform, &address).await);
        assert_eq!(inbox.iter().filter(|s| s.starts_with(&mail2)).count(), 1, "{platform}: {inbox:?}");
        if platform == "new" {
            for n in 0..3 {
                let s = format!("Message {n}");
                assert_eq!(inbox.iter().filter(|x| **x == s).count(), 1, "{s}: {inbox:?}");
            }
        }
    }
    login("new", &address, PASSWORD).await.expect("the old password logs into the new platform");
    // The script on the new platform, active, without its forwarding.
    let mut sieve = Client::login(&lab_sieve_config("new"), &lab_sieve_master(&address)).await.expect("ManageSieve");
    let listed = sieve.list_scripts().await.expect("LISTSCRIPTS");
    assert_eq!(listed.iter().map(|s| (s.name.as_str(), s.active)).collect::<Vec<_>>(), [("roundcube", true)]);
    let script = sieve.get_script("roundcube").await.expect("GETSCRIPT");
    assert_eq!(String::from_utf8_lossy(&script), "require [\"copy\"];\r\nif true\r\n{\r\n\tkeep;\r\n}\r\n");
    sieve.logout().await.expect("logout");

    // `bma show`: each step with its time, the receipt, and ETNIC's Service Desk as the contact now.
    let mut show = bma_lab_command(dir.path(), &db.url, &["show", &address]);
    show.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let shown = bma_tests::output_ok(show);
    assert!(shown.contains("receipt: 5 messages") && shown.contains("0 missing"), "{shown}");
    assert!(shown.contains("post_copy") && shown.contains("Service Desk de l'ETNIC"), "{shown}");
    store.close().await;
    db.drop_db().await;
}

on_every_platform_backend!(a_cutover_killed_at_every_step_resumes_without_loss_or_duplicate);
