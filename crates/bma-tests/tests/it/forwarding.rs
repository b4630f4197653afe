//! `bma audit forwarding` against the lab's legacy Dovecot (ManageSieve
//! with the master user), on both backends, through the built binary:
//! realistic scripts put in lab mailboxes over ManageSieve (Roundcube's
//! "renvoi" rule with `:copy` to Gmail, an inactive old redirect, a
//! vacation with a redirect to another BMA, an active script including
//! the one that forwards, a script the server holds but nobody can read,
//! a box without scripts), the findings stored per mailbox, the JSON and
//! CSV output, `bma show`, and a second audit replacing the first.
//!
//! Addresses `ec0997NN@adm.cfwb.be` (SQLite 01–05, PostgreSQL 11–15) are
//! used by no other test. Needs `cargo xtask lab up`.

use std::path::Path;
use std::process::Command;

use bma_core::lifecycle::Actor;
use bma_core::{AddressRule, registry};
use bma_store::{FindingKind, ForwardingReach};
use bma_tests::sieve::lab_put_scripts;
use bma_tests::{TestBackend, TestDb, addr, bma_lab_command, lab_addusers, lab_file, on_both_backends, output_ok};
use time::macros::datetime;

const ROUNDCUBE: &[u8] = b"require [\"copy\"];\r\n# rule:[renvoi vers la direction]\r\nif true\r\n{\r\n\tredirect :copy \"direction.ecole@gmail.com\";\r\n}\r\n";
const OLD: &[u8] = b"redirect \"ancien.directeur@hotmail.com\";\r\n";
const VACATION: &[u8] = b"require [\"vacation\"];\r\n# rule:[absence]\r\nif true\r\n{\r\n\tvacation :days 7 :subject \"Absence\" \"Le secr\xc3\xa9tariat est ferm\xc3\xa9 jusqu'au 2 septembre.\";\r\n}\r\nredirect \"ec000001@adm.cfwb.be\";\r\n";
const MAIN: &[u8] = b"require [\"include\", \"fileinto\"];\r\ninclude :personal \"renvoi\";\r\nif header :contains \"subject\" \"facture\" { fileinto \"Factures\"; }\r\n";
const RENVOI: &[u8] = b"redirect \"secretariat.ecole@skynet.be\";\r\n";
const BROKEN: &[u8] = b"require \"fileinto\";\r\nif header :contains \"subject\" \"x\" {\r\n  redirect \"a@b.be\"\r\n";

/// A finding as compared: script, active, kind, reach, target, line, copy, conditional.
type Row<'a> = (&'a str, bool, FindingKind, Option<ForwardingReach>, &'a str, u32, bool, bool);

fn boxes(backend: TestBackend) -> Vec<String> {
    let base = if backend == TestBackend::Sqlite { 0 } else { 10 };
    (1..=5).map(|i| format!("ec0997{:02}@adm.cfwb.be", base + i)).collect()
}

/// Writes a script straight into the lab mailbox's Sieve directory (the
/// server refuses to store a script it cannot compile; a legacy server
/// may hold one anyway), owned like the scripts the server wrote.
fn plant_unreadable(address: &str, name: &str, source: &[u8]) {
    use std::os::unix::fs::MetadataExt as _;
    let lab = lab_file("lab.json");
    let (local, domain) = address.split_once('@').unwrap();
    let dir = Path::new(lab["legacy"]["home_root"].as_str().unwrap()).join(domain).join(local).join("sieve");
    let owner = std::fs::metadata(&dir).expect("the Sieve directory exists (a script was put)");
    let path = dir.join(format!("{name}.sieve"));
    std::fs::write(&path, source).unwrap();
    std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
}

async fn setup(b: &[String]) {
    lab_addusers("legacy", b, "unused-password");
    lab_put_scripts("legacy", &b[0], &[("roundcube", ROUNDCUBE), ("ancien", OLD)], Some("roundcube")).await;
    lab_put_scripts("legacy", &b[1], &[("roundcube", VACATION)], Some("roundcube")).await;
    lab_put_scripts("legacy", &b[2], &[("main", MAIN), ("renvoi", RENVOI)], Some("main")).await;
    lab_put_scripts("legacy", &b[3], &[("ok", b"keep;\r\n")], Some("ok")).await;
    plant_unreadable(&b[3], "casse", BROKEN);
    lab_put_scripts("legacy", &b[4], &[], None).await;
}

fn audit(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut cmd = bma_lab_command(dir, url, args);
    let lab = lab_file("lab.json");
    let port = lab["legacy"]["managesieve_port"].as_u64().unwrap();
    cmd.env("BMA_LEGACY_MANAGESIEVE", format!("127.0.0.1:{port}"));
    cmd
}

async fn the_audit_finds_stores_and_prints_every_forwarding(backend: TestBackend) {
    let b = boxes(backend);
    setup(&b).await;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let mut csv = String::from("address,name\n");
    for a in &b {
        csv.push_str(&format!("{a},École {a}\n"));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    let t0 = datetime!(2024-04-01 08:00 UTC);
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), t0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.password"), lab_file("lab.json")["master_password"].as_str().unwrap())
        .unwrap();

    let started = std::time::Instant::now();
    let json: serde_json::Value =
        serde_json::from_str(&output_ok(audit(dir.path(), &db.url, &["audit", "forwarding", "--json"]))).unwrap();
    eprintln!("audit of {} mailboxes in {:.2} s", b.len(), started.elapsed().as_secs_f64());
    let summary = &json["summary"];
    assert_eq!(summary["mailboxes"], 5, "{json:#}");
    assert_eq!(summary["forwarding_outside"], 2, "{json:#}");
    assert_eq!(summary["with_scripts"], 4);
    assert_eq!(summary["with_unreadable"], 1);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["domains"], serde_json::json!({ "gmail.com": 1, "skynet.be": 1 }));
    // A legacy platform without ManageSieve: said so, nothing audited.
    let mut none = audit(dir.path(), &db.url, &["audit", "forwarding"]);
    none.env("BMA_LEGACY_MANAGESIEVE", "none");
    let out = none.output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("the legacy platform has no ManageSieve ([legacy] managesieve)"), "{said}");
    // The campaign-wide figures, from what was stored.
    let status: serde_json::Value =
        serde_json::from_str(&output_ok(audit(dir.path(), &db.url, &["campaign", "status", "--json"]))).unwrap();
    assert_eq!(
        status["forwarding"],
        serde_json::json!({ "audited": 5, "forwarding_outside": 2, "with_unreadable": 1,
                            "domains": { "gmail.com": 1, "skynet.be": 1 } }),
        "{status:#}"
    );

    // The Roundcube rule: active, :copy, conditional; the old script inactive.
    let a0 = store.forwarding_audit(&addr(&b[0])).await.unwrap().expect("audited");
    assert_eq!((a0.scripts, a0.active_script.as_deref()), (2, Some("roundcube")));
    let seen: Vec<Row<'_>> = a0
        .findings
        .iter()
        .map(|f| (f.script.as_str(), f.active, f.kind, f.reach, f.target.as_str(), f.line, f.copy, f.conditional))
        .collect();
    let mut want = vec![
        (
            "roundcube",
            true,
            FindingKind::Redirect,
            Some(ForwardingReach::External),
            "direction.ecole@gmail.com",
            5,
            true,
            true,
        ),
        (
            "ancien",
            false,
            FindingKind::Redirect,
            Some(ForwardingReach::External),
            "ancien.directeur@hotmail.com",
            1,
            false,
            false,
        ),
    ];
    want.sort();
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    assert_eq!(seen_sorted, want);
    assert!(a0.forwards_outside());

    // Vacation answers the sender; a redirect to another BMA is internal.
    let a1 = store.forwarding_audit(&addr(&b[1])).await.unwrap().expect("audited");
    let kinds: Vec<(FindingKind, Option<ForwardingReach>)> = a1.findings.iter().map(|f| (f.kind, f.reach)).collect();
    assert_eq!(
        kinds,
        [
            (FindingKind::Vacation, Some(ForwardingReach::Sender)),
            (FindingKind::Redirect, Some(ForwardingReach::Internal))
        ]
    );
    assert!(!a1.forwards_outside());

    // The included script runs: its redirect counts as active.
    let a2 = store.forwarding_audit(&addr(&b[2])).await.unwrap().expect("audited");
    let renvoi = a2.findings.iter().find(|f| f.script == "renvoi").expect("the included script's finding");
    assert!(renvoi.active && renvoi.kind == FindingKind::Redirect, "{renvoi:?}");
    assert!(a2.findings.iter().any(|f| f.kind == FindingKind::Include && f.target == "renvoi"));
    assert!(a2.forwards_outside());

    // The script nobody can read is a finding with its error, not skipped.
    let a3 = store.forwarding_audit(&addr(&b[3])).await.unwrap().expect("audited");
    assert_eq!(a3.scripts, 2);
    let casse = a3.findings.iter().find(|f| f.script == "casse").expect("unreadable finding");
    assert_eq!((casse.kind, casse.active, casse.reach), (FindingKind::Unreadable, false, None));
    assert!(casse.detail.contains("line"), "{}", casse.detail);

    let a4 = store.forwarding_audit(&addr(&b[4])).await.unwrap().expect("audited");
    assert_eq!((a4.scripts, a4.findings.len()), (0, 0));

    // One event per audited mailbox.
    let events = store.timeline(store.mailbox(&addr(&b[0])).await.unwrap().id).await.unwrap();
    let audited = events.iter().filter(|e| e.kind == bma_core::EventKind::ForwardingAudited).count();
    assert_eq!(audited, 1);

    // CSV of some boxes: one row per finding, one for a box without any.
    let out = output_ok(audit(dir.path(), &db.url, &["audit", "forwarding", "--csv", &b[0], &b[4]]));
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows.iter().any(|r| &r[0] == b[0].as_str() && &r[7] == "direction.ecole@gmail.com" && &r[9] == "true"));
    assert!(rows.iter().any(|r| &r[0] == b[4].as_str() && r[5].is_empty()));

    // The second audit replaced the first: same findings, two events.
    let again = store.forwarding_audit(&addr(&b[0])).await.unwrap().expect("audited");
    assert_eq!(again.findings.len(), 2);
    let events = store.timeline(store.mailbox(&addr(&b[0])).await.unwrap().id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == bma_core::EventKind::ForwardingAudited).count(), 2);

    // bma show: the section, in text and JSON.
    let shown = output_ok(audit(dir.path(), &db.url, &["show", &b[2]]));
    assert!(shown.contains("forwards outside") && shown.contains("secretariat.ecole@skynet.be"), "{shown}");
    let shown: serde_json::Value =
        serde_json::from_str(&output_ok(audit(dir.path(), &db.url, &["show", &b[2], "--json"]))).unwrap();
    assert_eq!(shown["forwarding"]["forwards_outside"], true, "{shown:#}");
    assert_eq!(shown["forwarding"]["active_script"], "main");

    // The table names the targets whole and sums up.
    let table = output_ok(audit(dir.path(), &db.url, &["audit", "forwarding"]));
    assert!(table.contains("direction.ecole@gmail.com") && table.contains("5 mailboxes audited"), "{table}");
    db.drop_db().await;
}

on_both_backends!(the_audit_finds_stores_and_prints_every_forwarding);

/// The ManageSieve client against the lab's legacy Dovecot: every
/// command, scripts with CRLF and non-ASCII bytes byte for byte, names
/// that need quoting, refusals as typed errors with their codes, both
/// master-user syntaxes, STARTTLS refused where it is not offered, and
/// plaintext refused off loopback.
#[tokio::test]
async fn managesieve_client_forwarding_commands_on_the_lab() {
    use bma_platform::managesieve::{Client, Login, ResponseCode, Security, SieveError};
    use bma_tests::sieve::{lab_sieve_config, lab_sieve_master};

    let user = "ec099721@adm.cfwb.be";
    lab_addusers("legacy", &[user.to_owned()], "pw-721");
    lab_put_scripts("legacy", user, &[], None).await;
    let config = lab_sieve_config("legacy");
    let mut c = Client::login(&config, &lab_sieve_master(user)).await.expect("master login (authzid)");
    assert!(c.capabilities().has_sasl("PLAIN") && !c.is_tls());
    assert!(c.capabilities().sieve.iter().any(|e| e == "include"), "{:?}", c.capabilities());

    let script = "require [\"vacation\"];\r\n# « été »\r\nvacation \"Fermé\";\r\n".as_bytes();
    let name = "règle \"a\" \\ b";
    assert_eq!(c.check_script(script).await.expect("CHECKSCRIPT"), None);
    c.put_script(name, script).await.expect("PUTSCRIPT");
    c.set_active(name).await.expect("SETACTIVE");
    let list = c.list_scripts().await.expect("LISTSCRIPTS");
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].name.as_str(), list[0].active), (name, true));
    assert_eq!(c.get_script(name).await.expect("GETSCRIPT"), script);

    // Refusals: the server's code and words, typed.
    let e = c.get_script("absent").await.expect_err("no such script");
    assert!(e.is_nonexistent(), "{e}");
    let e = c.delete_script(name).await.expect_err("the active script cannot be deleted");
    assert!(matches!(e, SieveError::Refused { command: "DELETESCRIPT", code: Some(ResponseCode::Active), .. }), "{e}");
    let e = c.check_script(b"redirect \"x@y.be\"\r\n").await.expect_err("a missing semicolon");
    assert!(matches!(e, SieveError::Refused { command: "CHECKSCRIPT", .. }), "{e}");
    c.set_active("").await.expect("deactivate");
    c.delete_script(name).await.expect("DELETESCRIPT");
    assert!(c.list_scripts().await.unwrap().is_empty());
    c.logout().await.expect("LOGOUT");

    // Dovecot's `mailbox*master` as the authentication identity.
    let lab = lab_file("lab.json");
    let star = format!("{user}*{}", lab["master_user"].as_str().unwrap());
    let login = Login::user(&star, bma_imap::Secret::new(lab["master_password"].as_str().unwrap()));
    Client::login(&config, &login).await.expect("user*master").logout().await.unwrap();
    // The mailbox's own password.
    Client::login(&config, &Login::user(user, bma_imap::Secret::new("pw-721"))).await.expect("own login");
    let e = Client::login(&config, &Login::user(user, bma_imap::Secret::new("wrong"))).await.err().expect("refused");
    assert!(matches!(e, SieveError::AuthFailed { .. }), "{e}");

    // TLS required where the server offers none; plaintext only on loopback.
    let mut tls = config.clone();
    tls.security = Security::StartTls;
    let e = Client::connect(&tls).await.err().expect("no STARTTLS in the lab");
    assert!(matches!(e, SieveError::StartTlsUnavailable), "{e}");
    let mut far = config.clone();
    far.host = "192.0.2.1".into();
    let e = Client::connect(&far).await.err().expect("plaintext off loopback");
    assert!(matches!(e, SieveError::PlaintextRefused(_)), "{e}");
}
