//! The `bma` command line end to end, on both backends: init, config
//! errors, registry imports (bad rows, Excel export, UTF-8 re-import,
//! --skip-invalid), status, show, transitions.

use std::path::Path;
use std::process::{Command, Output};

use bma_tests::{TestBackend, TestDb, bma_bin, on_both_backends};

fn bma(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    Command::new(bma_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("BMA_CONFIG")
        .env("BMA_DATABASE_URL", &db.url)
        .output()
        .expect("run bma")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An Excel "CSV (séparateur: point-virgule)" export: Windows-1252, CRLF.
fn excel_export(n: usize) -> Vec<u8> {
    let mut out = b"type;fase;nom\r\n".to_vec();
    for i in 1..=n {
        let kind = if i % 10 == 0 { "po" } else { "ec" };
        // "Athénée" with é as 0xE9 in Windows-1252.
        out.extend_from_slice(format!("{kind};{i};Ath").as_bytes());
        out.push(0xE9);
        out.extend_from_slice(b"n");
        out.push(0xE9);
        out.extend_from_slice(format!("e n\u{b0}{i}\r\n").replace('\u{b0}', "o").as_bytes());
    }
    out
}

fn utf8_list(n: usize) -> String {
    let mut out = String::from("\u{feff}address,name,quota_bytes\n");
    for i in 1..=n {
        let kind = if i % 10 == 0 { "po" } else { "ec" };
        out.push_str(&format!("{}{i:06}@ADM.cfwb.be,Athénée no{i},\n", kind.to_uppercase()));
    }
    out
}

async fn bad_rows_import_nothing(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.csv"),
        "address;name;messages\nec000001@adm.cfwb.be;A;1\nec000002@example.org;B;2\nec000003@adm.cfwb.be;;3\nec000004@adm.cfwb.be;D;-1\nec000001@adm.cfwb.be;A bis;1\n",
    )
    .unwrap();
    let out = bma(&db, dir.path(), &["import", "mailboxes", "bad.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for expected in [
        "line 3: 'ec000002@example.org' is not in the domain adm.cfwb.be",
        "line 4: the name is missing",
        "line 5: messages '-1' is not a non-negative whole number",
        "line 6: ec000001@adm.cfwb.be is already on line 2",
        "nothing imported",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let status = bma(&db, dir.path(), &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["mailboxes"], 0, "nothing kept");

    // --skip-invalid imports the good row and writes the others with reasons.
    let out = bma(&db, dir.path(), &["import", "mailboxes", "bad.csv", "--skip-invalid"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rejects = std::fs::read_to_string(dir.path().join("bad.rejects.csv")).unwrap();
    let lines: Vec<&str> = rejects.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "line;address;name;messages;reason");
    assert_eq!(lines[1], "3;ec000002@example.org;B;2;'ec000002@example.org' is not in the domain adm.cfwb.be");
    assert_eq!(lines.len(), 5);
    let json: serde_json::Value = serde_json::from_slice(&bma(&db, dir.path(), &["status", "--json"]).stdout).unwrap();
    assert_eq!(json["mailboxes"], 1);
    db.drop_db().await;
}

async fn excel_then_utf8_is_idempotent(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.csv"), excel_export(40)).unwrap();
    std::fs::write(dir.path().join("list.csv"), utf8_list(40)).unwrap();

    let out = bma(&db, dir.path(), &["import", "mailboxes", "export.csv", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Windows1252, semicolons"), "{}", text(&out.stderr));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["created"], 40);

    let out = bma(&db, dir.path(), &["import", "mailboxes", "list.csv", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&second["created"], &second["updated"], &second["unchanged"]), (&0.into(), &0.into(), &40.into()));

    let status: serde_json::Value =
        serde_json::from_slice(&bma(&db, dir.path(), &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["mailboxes"], 40);
    assert_eq!(status["by_state"]["imported"], 40);
    assert_eq!(status["by_state"]["migrated"], 0);

    let show = bma(&db, dir.path(), &["show", "PO000010@adm.cfwb.be"]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let shown = text(&show.stdout);
    assert!(shown.contains("po000010@adm.cfwb.be  (pouvoir organisateur, FASE 10)"), "{shown}");
    assert!(shown.contains("Athénée no10"), "{shown}");
    assert!(shown.contains("BMA@enseignement.be"), "before the migration: Enseignement.be\n{shown}");
    assert!(shown.contains("registry import from export.csv, line 11"), "{shown}");

    // A legal then an illegal transition through the CLI.
    let ok = bma(
        &db,
        dir.path(),
        &["mailbox", "transition", "ec000001@adm.cfwb.be", "scheduled", "--reason", "wave 1", "--as", "alice"],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let bad = bma(&db, dir.path(), &["mailbox", "transition", "ec000001@adm.cfwb.be", "migrated", "--reason", "hurry"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("cannot go from scheduled to migrated"), "{}", text(&bad.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&bma(&db, dir.path(), &["show", "ec000001@adm.cfwb.be", "--json"]).stdout).unwrap();
    assert_eq!(json["mailbox"]["state"], "scheduled");
    assert_eq!(json["timeline"][1]["actor"], "operator:alice");
    assert_eq!(json["timeline"].as_array().unwrap().len(), 2, "the refused transition left no event");
    db.drop_db().await;
}

on_both_backends!(bad_rows_import_nothing, excel_then_utf8_is_idempotent);

#[tokio::test]
async fn init_writes_the_faq_defaults_and_config_errors_are_all_reported() {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let out = bma(&db, dir.path(), &["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("bma.toml")).unwrap();
    assert!(written.contains("start = 2024-04-22") && written.contains("invitation_deadline = 2024-05-24"));
    assert!(!bma(&db, dir.path(), &["init"]).status.success(), "no silent overwrite");

    let shown = bma(&db, dir.path(), &["--config", "bma.toml", "config"]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(text(&shown.stdout).contains("support@etnic.be"));

    std::fs::write(dir.path().join("bad.toml"), "[campaign]\nend = 2024-01-01\nfoo = 1\n").unwrap();
    let out = Command::new(bma_bin())
        .args(["--config", "bad.toml", "status"])
        .current_dir(dir.path())
        .env("BMA_CAMPAIGN_QUOTA_MULTIPLIER", "many")
        .env("BMA_MAIL_SMTP_TLS", "maybe")
        .env("BMA_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for key in [
        "campaign.foo: unknown key",
        "campaign.quota_multiplier: 'many' is not an integer",
        "campaign.end: 2024-01-01 is before",
    ] {
        assert!(err.contains(key), "missing {key:?} in\n{err}");
    }
}

#[tokio::test]
async fn default_store_is_a_sqlite_file_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.csv"), utf8_list(3)).unwrap();
    let out = Command::new(bma_bin())
        .args(["import", "mailboxes", "list.csv"])
        .current_dir(dir.path())
        .env_remove("BMA_DATABASE_URL")
        .env_remove("BMA_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("bma.db").exists());
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

async fn plan_previews_refuses_applies_and_replans(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.csv"), utf8_list(350)).unwrap();
    assert!(bma(&db, dir.path(), &["import", "mailboxes", "list.csv"]).status.success());

    let preview = json(&bma(&db, dir.path(), &["plan", "--json"]));
    let waves: Vec<(String, u64)> = preview["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["starts"].as_str().unwrap().to_owned(), w["mailboxes"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        waves,
        ["2024-04-22", "2024-04-29", "2024-05-06", "2024-05-13", "2024-05-20"].map(|d| (d.to_owned(), 70)).to_vec()
    );
    assert_eq!(preview["unplanned"], 0);

    let refused = bma(&db, dir.path(), &["plan", "--json", "--wave-capacity", "50"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        json(&refused)["problems"][0],
        "350 mailboxes need 7 waves of 50, only 5 fit before 2024-05-24: raise the capacity to 70 or move the deadline"
    );
    let refused = bma(&db, dir.path(), &["plan", "--apply", "--wave-capacity", "50"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(json(&bma(&db, dir.path(), &["status", "--json"]))["by_state"]["scheduled"], 0, "nothing applied");

    // Pins must be wave days; exclusions are left out.
    assert!(!bma(&db, dir.path(), &["mailbox", "pin", "ec000001@adm.cfwb.be", "2024-05-21"]).status.success());
    assert!(bma(&db, dir.path(), &["mailbox", "pin", "ec000001@adm.cfwb.be", "2024-05-20"]).status.success());
    assert!(
        bma(&db, dir.path(), &["mailbox", "exclude", "ec000002@adm.cfwb.be", "--reason", "fermée"]).status.success()
    );
    let applied = json(&bma(&db, dir.path(), &["plan", "--apply", "--json"]));
    assert_eq!(applied["applied"]["scheduled"], 349);
    assert_eq!(applied["unplanned"], 1);
    let shown = json(&bma(&db, dir.path(), &["show", "ec000001@adm.cfwb.be", "--json"]));
    assert_eq!(shown["mailbox"]["wave"], "2024-05-20");
    assert_eq!(shown["mailbox"]["state"], "scheduled");

    // The first wave is invited; replanning with a capacity keeps it where it is.
    let first_wave: Vec<String> = {
        let s = json(&bma(&db, dir.path(), &["plan", "--json"]));
        assert_eq!(s["applied"], serde_json::Value::Null);
        let mut v = Vec::new();
        for i in 1..=350 {
            let kind = if i % 10 == 0 { "po" } else { "ec" };
            let a = format!("{kind}{i:06}@adm.cfwb.be");
            let m = json(&bma(&db, dir.path(), &["show", &a, "--json"]));
            if m["mailbox"]["wave"] == "2024-04-22" {
                v.push(a);
            }
            if v.len() == 5 {
                break;
            }
        }
        v
    };
    for a in &first_wave {
        let out = bma(&db, dir.path(), &["mailbox", "transition", a, "invited", "--reason", "mail 1 sent"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let replanned =
        json(&bma(&db, dir.path(), &["plan", "--apply", "--json", "--today", "2024-04-23", "--wave-capacity", "90"]));
    assert_eq!(replanned["waves"][0]["invited"], 5, "invited mailboxes stay in their wave");
    assert_eq!(replanned["waves"][0]["planned"], 0, "a passed wave gets no one new");
    for w in replanned["waves"].as_array().unwrap() {
        assert!(w["mailboxes"].as_u64().unwrap() <= 90);
    }
    let planned_total: u64 =
        replanned["waves"].as_array().unwrap().iter().map(|w| w["mailboxes"].as_u64().unwrap()).sum();
    assert_eq!(planned_total, 349);
    for a in &first_wave {
        assert_eq!(json(&bma(&db, dir.path(), &["show", a, "--json"]))["mailbox"]["wave"], "2024-04-22");
    }
    db.drop_db().await;
}

on_both_backends!(plan_previews_refuses_applies_and_replans);

/// The campaign's state through the command line: nothing before `start`,
/// each action refused with the reason when it does not fit.
async fn campaign_start_pause_resume(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let status = |db: &TestDb| {
        let out = bma(db, dir.path(), &["campaign", "status", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(status(&db), "not_started");
    for (args, code, says) in [
        (&["campaign", "pause"][..], 1, "cannot pause the campaign: it is not started"),
        (&["campaign", "resume"], 1, "cannot resume the campaign: it is not started"),
        (&["campaign", "start", "--as", "alice", "--reason", "go"], 0, "campaign running"),
        (&["campaign", "start"], 1, "cannot start the campaign: it is running"),
        (&["campaign", "pause", "--as", "alice"], 0, "campaign paused"),
        (&["campaign", "tick", "--at", "2024-04-22T08:00:00Z"], 0, "campaign paused: nothing done"),
        (&["campaign", "resume", "--as", "alice"], 0, "campaign running"),
    ] {
        let out = bma(&db, dir.path(), args);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{args:?}: {all}");
        assert!(all.contains(says), "{args:?}: {all}");
    }
    assert_eq!(status(&db), "running");
    let store = db.store().await;
    let kinds: Vec<String> = store.campaign_events(20).await.unwrap().into_iter().map(|e| e.kind.to_string()).collect();
    assert_eq!(kinds.iter().filter(|k| k.starts_with("campaign_")).count(), 3, "{kinds:?}");
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(campaign_start_pause_resume);

/// `bma simulate`: week by week, every mailbox accounted for; a capacity
/// that cannot hold is refused with the way out; bad shares are usage errors.
#[test]
fn simulate_the_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(bma_bin())
            .args(args)
            .current_dir(dir.path())
            .env_remove("BMA_CONFIG")
            .env("BMA_DATABASE_URL", "sqlite://sim.db")
            .output()
            .unwrap()
    };
    let out = run(&["simulate", "--json", "--seed", "7"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let weeks = r["weeks"].as_array().unwrap();
    let sum = |k: &str| weeks.iter().map(|w| w[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("invitations"), 3500);
    assert_eq!(r["answered"].as_u64().unwrap() + r["silent"].as_u64().unwrap() + r["bounced"].as_u64().unwrap(), 3500);
    assert_eq!(sum("cutovers") + r["unplaced_cutovers"].as_u64().unwrap(), r["answered"].as_u64().unwrap());
    assert_eq!(weeks[0]["week"], "2024-04-22");
    let table = run(&["simulate", "--seed", "7"]);
    assert!(text(&table.stdout).contains("week of"), "{}", text(&table.stdout));
    let out = run(&["simulate", "--wave-capacity", "500"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("raise the capacity to 700"), "{}", text(&out.stderr));
    let out = run(&["simulate", "--answer-share", "1.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("answer share must be between 0 and 1"), "{}", text(&out.stderr));
}

/// The engine's sections are validated with the rest, each problem with its key.
#[test]
fn engine_settings_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bma_bin())
        .args(["config"])
        .current_dir(dir.path())
        .env_remove("BMA_CONFIG")
        .env("BMA_LEGACY_URL", "ftp://legacy")
        .env("BMA_NEW_URL", "imaps://new.example")
        .env("BMA_NEW_ADMIN", "admin")
        .env("BMA_NEW_PASSWORD_FILE", "/nonexistent/password")
        .env("BMA_PRESYNC_HOURS", "25-3")
        .env("BMA_CAMPAIGN_REMINDER_DAYS", "14,7")
        .env("BMA_CAMPAIGN_CUTOVER_WEEKDAY", "someday")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for key in [
        "legacy.url: 'ftp://legacy': the scheme must be imap:// or imaps://",
        "legacy.admin: must name the admin",
        "legacy.password_file: must name a file",
        "new.password_file: /nonexistent/password",
        "presync.hours: '25-3' is not an hour range",
        "campaign.reminder_days: [14, 7] must be increasing",
        "campaign.cutover_weekday: 'someday' is not a day of the week",
    ] {
        assert!(err.contains(key), "missing {key:?} in\n{err}");
    }
}

/// Plaintext to a host that is not loopback is a configuration error with
/// its key (exit 2) unless its section says `allow_plaintext = true`.
#[test]
fn plaintext_to_a_remote_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("admin.pw");
    std::fs::write(&pw, "pw\n").unwrap();
    let config = |allow: &str| {
        Command::new(bma_bin())
            .args(["config"])
            .current_dir(dir.path())
            .env_remove("BMA_CONFIG")
            .env("BMA_MAIL_SMTP_HOST", "relay.example")
            .env("BMA_MAIL_SMTP_TLS", "none")
            .env("BMA_OIDC_ISSUER", "http://cerbere.example")
            .env("BMA_OIDC_CLIENT_ID", "bma-portal")
            .env("BMA_LEGACY_URL", "imap://legacy.example:143")
            .env("BMA_LEGACY_TLS", "none")
            .env("BMA_LEGACY_ADMIN", "admin")
            .env("BMA_LEGACY_PASSWORD_FILE", &pw)
            .env("BMA_NEW_URL", "imap://new.example:143")
            .env("BMA_NEW_TLS", "none")
            .env("BMA_NEW_ADMIN", "admin")
            .env("BMA_NEW_PASSWORD_FILE", &pw)
            .env("BMA_MAIL_ALLOW_PLAINTEXT", allow)
            .env("BMA_OIDC_ALLOW_PLAINTEXT", allow)
            .env("BMA_LEGACY_ALLOW_PLAINTEXT", allow)
            .env("BMA_NEW_ALLOW_PLAINTEXT", allow)
            .output()
            .unwrap()
    };
    let out = config("false");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for key in [
        "mail.smtp_tls: 'none' is plaintext to relay.example",
        "oidc.issuer: 'http://cerbere.example' is plaintext to cerbere.example",
        "legacy.tls: 'none' is plaintext to legacy.example",
        "new.tls: 'none' is plaintext to new.example",
        "or set new.allow_plaintext = true",
    ] {
        assert!(err.contains(key), "missing {key:?} in\n{err}");
    }
    let out = config("true");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A hostile registry: a UTF-8 file with a line pasted from Windows-1252,
/// formulas, an escape sequence, an overlong name. The bad lines are named
/// (the accents of the good ones intact), no control character reaches the
/// terminal, and the rejects file runs no formula in a spreadsheet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registry_and_its_rejects() {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut input = b"address;name;messages\n".to_vec();
    input.extend_from_slice("ec000001@adm.cfwb.be;Athénée Royal;1\n".as_bytes());
    input.extend_from_slice(b"ec000002@adm.cfwb.be;Lyc\xe9e;2\n");
    input.extend_from_slice("ec000003@adm.cfwb.be;\"=HYPERLINK(\"\"http://x\"\";\"\"École\"\")\";-3\n".as_bytes());
    input.extend_from_slice("ec000004@adm.cfwb.be;\"École\u{1b}[2J\";4\n".as_bytes());
    input.extend_from_slice(format!("ec000005@adm.cfwb.be;{};5\n", "É".repeat(400)).as_bytes());
    input.extend_from_slice("@SUM(1+1)*cmd;Collège;6\n".as_bytes());
    std::fs::write(dir.path().join("hostile.csv"), &input).unwrap();

    let out = bma(&db, dir.path(), &["import", "mailboxes", "hostile.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(!err.contains('\u{1b}'), "an escape sequence reached the terminal:\n{err}");
    for expected in [
        "hostile.csv: 1 valid rows, 5 invalid (Utf8, semicolons)",
        "line 3: not valid UTF-8 (byte 0xE9 at position 25 of the line)",
        "line 4: messages '-3' is not a non-negative whole number",
        "line 5: the name 'École\\u{1b}[2J' contains a control character",
        "line 6: the name is 400 characters long, at most 300 are accepted",
        "line 7: '@sum(1+1)*cmd' is not in the domain adm.cfwb.be",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }

    let out = bma(&db, dir.path(), &["import", "mailboxes", "hostile.csv", "--skip-invalid", "--rejects", "out.csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rejects = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let mut reader =
        csv::ReaderBuilder::new().delimiter(b';').from_reader(rejects.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<Vec<String>> = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    assert_eq!(rows.len(), 5);
    for cell in rows.iter().flatten() {
        assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "a live formula cell {cell:?} in\n{rejects}");
    }
    assert_eq!(rows[1][2], "'=HYPERLINK(\"http://x\";\"École\")");
    assert_eq!(rows[1][3], "'-3");
    assert_eq!(rows[4][1], "'@SUM(1+1)*cmd");

    // The one good row kept its accents.
    let show = bma(&db, dir.path(), &["show", "ec000001@adm.cfwb.be"]);
    assert!(text(&show.stdout).contains("Athénée Royal"), "{}", text(&show.stdout));
    db.drop_db().await;
}
