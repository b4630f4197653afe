//! Personal data (GDPR) on both backends: an export finds everything held
//! about one person (form, verification, session, emails, events, the
//! campaign's too), an erasure leaves no trace of them in any text column
//! of any table while the mailbox's history stays, a purge dry-run lists
//! and writes nothing, a purge removes after the retention and not before;
//! and `bma privacy export/erase/purge` through the built binary.

use std::process::Output;

use bma_core::TokenHash;
use bma_core::lifecycle::{Actor, State};
use bma_store::{BackupVerificationRequest, EnrollmentForm, ManagerIdentity, NewEmail, Person, Retention, Store};
use bma_tests::web::{T0, invited_mailbox};
use bma_tests::{TestBackend, TestDb, addr, bma_command, on_both_backends};
use sqlx::{Column, Connection, Row};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

/// A manager, with what the test later looks for.
struct Manager {
    subject: &'static str,
    given: &'static str,
    family: &'static str,
    phone: &'static str,
    backup: &'static str,
    id_email: &'static str,
}

const ZEBULON: Manager = Manager {
    subject: "cerbere-zq-77",
    given: "Zébulon",
    family: "Quasimodo-Tartempion",
    phone: "+3281765432",
    backup: "zebulon.perso@exemple.test",
    id_email: "z.quasimodo@ecole.test",
};

const HORTENSE: Manager = Manager {
    subject: "cerbere-hv-12",
    given: "Hortense",
    family: "Vandermeulen",
    phone: "+3265554433",
    backup: "hortense.v@exemple.test",
    id_email: "h.vandermeulen@ecole.test",
};

impl Manager {
    fn full_name(&self) -> String {
        format!("{} {}", self.given, self.family)
    }

    /// What must not remain once they are erased (lower case).
    fn traces(&self) -> Vec<String> {
        [self.subject, self.given, self.family, self.phone, &self.phone[1..], self.backup, self.id_email]
            .iter()
            .map(|t| t.to_lowercase())
            .collect()
    }
}

fn email(mailbox_id: i64, kind: &str, key: &str, to: &str, raw: &str, at: OffsetDateTime) -> NewEmail {
    NewEmail {
        mailbox_id: Some(mailbox_id),
        kind: kind.into(),
        key: key.into(),
        recipient: to.into(),
        envelope_from: format!("bounces+{}@bma.test", to.replacen('@', "=", 1)),
        message_id: format!("{key}.{mailbox_id}@bma.test"),
        subject: format!("{kind} de test"),
        raw: raw.into(),
        run_at: at,
        max_attempts: 3,
    }
}

/// Sends (marks sent) every email due at `at`, mailbox order kept.
async fn send_all(store: &Store, at: OffsetDateTime) {
    loop {
        let claimed = store.claim_emails("test", at, Duration::minutes(5), 20).await.unwrap();
        if claimed.is_empty() {
            return;
        }
        for e in claimed {
            store.mark_sent(e.id, "test", at).await.unwrap();
        }
    }
}

/// `address` invited, its form filled by `m` at T0 (confirmation to the
/// BMA, verification link to the backup address, both sent), `m` logged in
/// at the portal, the mailbox presynced with a note naming `m`, a bounce
/// kept for a human that names `m`'s backup address, and a pending email to
/// the BMA whose body names `m`. Returns the mailbox id.
async fn seed(store: &Store, address: &str, m: &Manager) -> i64 {
    let (id, _token) = invited_mailbox(store, address).await;
    let form = EnrollmentForm {
        family_name: m.family.into(),
        given_name: m.given.into(),
        phone: m.phone.into(),
        role: "direction".into(),
        backup_email: m.backup.into(),
        knows_password: true,
    };
    let identity = ManagerIdentity {
        subject: m.subject.into(),
        name: m.full_name(),
        given_name: m.given.into(),
        family_name: m.family.into(),
        email: m.id_email.into(),
    };
    let body = |what: &str| format!("Subject: {what}\r\nTo: x\r\n\r\nBonjour {}, {}\r\n", m.full_name(), m.phone);
    let confirmation = email(id, "confirmation", &format!("confirmation:{address}"), address, &body("Formulaire"), T0);
    let verification = BackupVerificationRequest {
        code_hash: TokenHash::of(&bma_engine::new_token()),
        email: email(id, "backup_verification", &format!("verification:{address}"), m.backup, &body("Lien"), T0),
        expires_at: T0 + Duration::days(14),
    };
    store.submit_enrollment(id, &form, &identity, &confirmation, Some(&verification), T0).await.unwrap();
    send_all(store, T0 + Duration::minutes(1)).await;

    let session = TokenHash::of(&bma_engine::new_token());
    store.create_session(&session, "csrf", T0 + Duration::hours(1), T0).await.unwrap();
    let logged = TokenHash::of(&bma_engine::new_token());
    store.login_session(Some(&session), &logged, "csrf2", &identity, T0 + Duration::hours(1), T0).await.unwrap();

    let operator = Actor::Operator("helpdesk".into());
    let note = serde_json::json!({ "contact": m.backup.to_uppercase(), "called": m.full_name() });
    let reason = format!("presync done; {} called from {}", m.full_name(), m.phone);
    store
        .transition(&addr(address), State::Presynced, &operator, &reason, note, T0 + Duration::hours(2))
        .await
        .unwrap();
    let bounce = serde_json::json!({
        "recipient": m.backup, "return_path": format!("bounces+{}@bma.test", m.backup.replacen('@', "=", 1)),
    });
    store.record_unverified_bounce(bounce, "a report naming no email of ours", &operator, T0).await.unwrap();
    let later = email(id, "notice", &format!("notice:{address}"), address, &body("Rappel"), T0 + Duration::days(300));
    store.queue_email(&later, T0 + Duration::hours(3)).await.unwrap();
    id
}

/// Every text value of every table, lower case, with where it is.
async fn dump(url: &str, backend: TestBackend) -> Vec<(String, String)> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let tables_sql = match backend {
        TestBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        TestBackend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables WHERE table_schema = 'public'"
        }
    };
    let tables: Vec<String> = sqlx::query_scalar(tables_sql).fetch_all(&mut conn).await.unwrap();
    assert!(tables.len() > 10, "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {t}"))).fetch_all(&mut conn).await.unwrap();
        for r in &rows {
            for (i, c) in r.columns().iter().enumerate() {
                if let Ok(Some(v)) = r.try_get::<Option<String>, _>(i) {
                    out.push((format!("{t}.{}", c.name()), v.to_lowercase()));
                }
            }
        }
    }
    conn.close().await.unwrap();
    out
}

/// Where the dump still has any of `traces`.
fn found(dump: &[(String, String)], traces: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (at, v) in dump {
        for t in traces {
            if v.contains(t.as_str()) {
                out.push(format!("{at} has {t:?}: {v}"));
            }
        }
    }
    out
}

async fn export_finds_everything(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = seed(&store, "ec820001@adm.cfwb.be", &ZEBULON).await;
    seed(&store, "ec820002@adm.cfwb.be", &HORTENSE).await;

    for person in [Person::Subject(ZEBULON.subject.into()), Person::Address("ZEBULON.Perso@exemple.test".into())] {
        let data = store.export_person(&person).await.unwrap();
        let json = serde_json::to_string(&data).unwrap().to_lowercase();
        assert!(!json.contains("hortense"), "{person}: another person exported: {json}");
        assert_eq!(data.forms.len(), 1, "{person}");
        assert_eq!(data.forms[0].mailbox, "ec820001@adm.cfwb.be");
        assert_eq!(data.forms[0].enrollment.form.phone, ZEBULON.phone);
        assert_eq!(data.backup_verifications.len(), 1, "{person}");
        assert_eq!(data.sessions.len(), 1, "{person}");
        assert_eq!(data.sessions[0].identity.as_ref().unwrap().subject, ZEBULON.subject);
        let kinds: Vec<&str> = data.emails.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["confirmation", "backup_verification", "notice"], "{person}");
        let events: Vec<(Option<i64>, String)> =
            data.events.iter().map(|e| (e.event.mailbox_id, e.event.kind.as_str().to_owned())).collect();
        for expected in [
            (Some(id), "transition".to_owned()), // enrolled, by the manager; presynced, naming them
            (Some(id), "email_sent".to_owned()), // the verification link to their address
            (None, "bounce_unverified".to_owned()), // the campaign's, naming their address
            (Some(id), "backup_verification_requested".to_owned()),
        ] {
            assert!(events.contains(&expected), "{person}: no {expected:?} in {events:?}");
        }
        assert!(data.events.iter().any(|e| e.event.reason.contains(ZEBULON.family)), "the note naming them");
    }
    let nobody = store.export_person(&Person::Address("personne@exemple.test".into())).await.unwrap();
    assert!(nobody.is_empty(), "{nobody:?}");
    store.close().await;
    db.drop_db().await;
}

async fn erasure_leaves_no_trace_and_keeps_the_history(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = seed(&store, "ec820011@adm.cfwb.be", &ZEBULON).await;
    let other = seed(&store, "ec820012@adm.cfwb.be", &HORTENSE).await;
    let before = dump(&db.url, backend).await;
    assert!(found(&before, &ZEBULON.traces()).len() > 10, "the seed names them");
    let timeline = store.timeline(id).await.unwrap();
    let other_timeline = store.timeline(other).await.unwrap();

    let dpo = Actor::Operator("dpo".into());
    let reason = format!("request of {} received by post", ZEBULON.full_name());
    let at = T0 + Duration::days(1);
    let done = store.erase_person(&Person::Address(ZEBULON.backup.into()), &dpo, &reason, at).await.unwrap();
    assert_eq!(done.mailboxes, ["ec820011@adm.cfwb.be"]);
    assert_eq!((done.scrubbed.forms, done.scrubbed.sessions, done.scrubbed.verifications), (1, 1, 1), "{done:?}");
    assert_eq!(done.scrubbed.emails_cancelled, 1, "the pending email naming them: {done:?}");

    let after = dump(&db.url, backend).await;
    let left = found(&after, &ZEBULON.traces());
    assert!(left.is_empty(), "traces left:\n{}", left.join("\n"));
    assert!(found(&after, &HORTENSE.traces()).len() > 10, "the other manager is untouched");

    // The history stays: every event, in order, the person replaced; one more for the erasure.
    let now = store.timeline(id).await.unwrap();
    assert_eq!(now.len(), timeline.len() + 1);
    for (a, b) in timeline.iter().zip(&now) {
        assert_eq!((a.id, a.kind, a.at, a.from_state, a.to_state), (b.id, b.kind, b.at, b.from_state, b.to_state));
    }
    let last = now.last().unwrap();
    assert_eq!(last.kind, bma_core::EventKind::PersonalDataErased);
    assert_eq!(last.actor, "operator:dpo");
    assert_eq!(last.reason, "personal data erased on request: request of [effacé] received by post");
    assert!(now.iter().any(|e| e.actor == "manager:[effacé]"), "the form's event keeps its actor, replaced");
    assert_eq!(store.timeline(other).await.unwrap(), other_timeline, "the other mailbox's history untouched");
    let form = store.latest_enrollment(id).await.unwrap().unwrap();
    assert_eq!((form.form.family_name.as_str(), form.form.backup_email.as_str()), ("[effacé]", "efface@bma.invalid"));
    assert_eq!(form.form.role, "direction", "the role is the mailbox's, kept");
    let emails = store.emails_of(id).await.unwrap();
    let notice = emails.iter().find(|e| e.kind == "notice").unwrap();
    assert_eq!(notice.state, "cancelled", "nothing more is sent about them");
    let claimed = store.claim_emails("test", T0 + Duration::days(400), Duration::minutes(5), 20).await.unwrap();
    let claimed: Vec<(Option<i64>, &str)> = claimed.iter().map(|e| (e.mailbox_id, e.kind.as_str())).collect();
    assert_eq!(claimed, [(Some(other), "notice")], "only the other manager's email still leaves");

    // Again: nothing left, nothing written.
    let again = store.erase_person(&Person::Subject(ZEBULON.subject.into()), &dpo, "again", at).await.unwrap();
    assert!(again.scrubbed.is_empty(), "{again:?}");
    assert_eq!(store.timeline(id).await.unwrap().len(), now.len());
    store.close().await;
    db.drop_db().await;
}

async fn purge_after_retention_and_not_before(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let migrated = seed(&store, "ec820021@adm.cfwb.be", &ZEBULON).await;
    let enrolled = seed(&store, "ec820022@adm.cfwb.be", &HORTENSE).await;
    let operator = Actor::Operator("test".into());
    let cutover = datetime!(2024-05-10 10:00 UTC);
    for state in [State::CutoverScheduled, State::Migrating, State::Migrated] {
        let a = addr("ec820021@adm.cfwb.be");
        store.transition(&a, state, &operator, "test", serde_json::json!({}), cutover).await.unwrap();
    }
    let retention = Retention { days: 30, campaign_end: date!(2024 - 05 - 31) };
    let purger = Actor::System("purge".into());

    // Before: nothing due.
    let early = store.purge_personal_data(&retention, cutover + Duration::days(29), true, &purger).await.unwrap();
    assert!(early.is_empty(), "{early:?}");

    // Due for the migrated one only; the dry run lists it and writes nothing.
    let before = dump(&db.url, backend).await;
    let at = cutover + Duration::days(31);
    let dry = store.purge_personal_data(&retention, at, true, &purger).await.unwrap();
    assert_eq!(dry.iter().map(|i| i.mailbox.as_str()).collect::<Vec<_>>(), ["ec820021@adm.cfwb.be"]);
    assert_eq!(dry[0].due_at, cutover + Duration::days(30));
    assert_eq!(dry[0].scrubbed.forms, 1);
    assert_eq!(dump(&db.url, backend).await, before, "a dry run writes nothing");

    let done = store.purge_personal_data(&retention, at, false, &purger).await.unwrap();
    assert_eq!(done, dry, "the purge does what its dry run said");
    let after = dump(&db.url, backend).await;
    let left = found(&after, &ZEBULON.traces());
    assert!(left.is_empty(), "traces left:\n{}", left.join("\n"));
    assert!(found(&after, &HORTENSE.traces()).len() > 10, "the one not migrated is kept until the campaign's end");
    let last = store.timeline(migrated).await.unwrap().pop().unwrap();
    assert_eq!((last.kind, last.actor.as_str()), (bma_core::EventKind::PersonalDataPurged, "system:purge"));
    assert!(last.reason.contains("30 days after its migration on 2024-05-10"), "{}", last.reason);
    let again = store.purge_personal_data(&retention, at, false, &purger).await.unwrap();
    assert!(again.is_empty(), "run again: nothing left: {again:?}");

    // After the campaign's end and its retention: the rest.
    let late = store.purge_personal_data(&retention, datetime!(2024-07-02 0:00 UTC), false, &purger).await.unwrap();
    assert_eq!(late.iter().map(|i| i.mailbox.as_str()).collect::<Vec<_>>(), ["ec820022@adm.cfwb.be"]);
    assert_eq!(late[0].reason, bma_store::PurgeReason::CampaignEnd);
    let left = found(&dump(&db.url, backend).await, &HORTENSE.traces());
    assert!(left.is_empty(), "traces left:\n{}", left.join("\n"));
    assert!(store.timeline(enrolled).await.unwrap().len() > 3, "the history stays");
    store.close().await;
    db.drop_db().await;
}

fn run(db: &TestDb, dir: &std::path::Path, args: &[&str], now: &str) -> Output {
    bma_command(dir, &db.url, args).env("BMA_NOW", now).env("USER", "dpo").output().expect("run bma")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn cli_round_trip(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = seed(&store, "ec820031@adm.cfwb.be", &ZEBULON).await;
    seed(&store, "ec820032@adm.cfwb.be", &HORTENSE).await;
    store.close().await;
    let dir = tempfile::tempdir().unwrap();
    let now = "2024-04-23T10:00:00Z";

    let out = run(&db, dir.path(), &["privacy", "export", "--subject", ZEBULON.subject], now);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["person"]["subject"], ZEBULON.subject);
    assert_eq!(json["forms"][0]["form"]["backup_email"], ZEBULON.backup);
    assert_eq!(json["forms"][0]["mailbox"], "ec820031@adm.cfwb.be");
    assert_eq!(json["sessions"].as_array().unwrap().len(), 1);

    let out = run(&db, dir.path(), &["privacy", "export", "--subject", "x", "--address", "a@b.c"], now);
    assert_eq!(out.status.code(), Some(2), "one of the two: {}", text(&out.stderr));

    // Without --yes: what would go, nothing written.
    let before = dump(&db.url, backend).await;
    let erase = ["privacy", "erase", "--address", ZEBULON.backup, "--reason", "request by post"];
    let out = run(&db, dir.path(), &erase, now);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 form version(s)"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("add --yes"), "{}", text(&out.stderr));
    assert_eq!(dump(&db.url, backend).await, before);

    let out = run(&db, dir.path(), &[&erase[..], &["--yes"]].concat(), now);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("recorded in the timeline of: ec820031@adm.cfwb.be"), "{}", text(&out.stdout));
    assert!(found(&dump(&db.url, backend).await, &ZEBULON.traces()).is_empty());
    let store = db.store().await;
    let last = store.timeline(id).await.unwrap().pop().unwrap();
    assert_eq!((last.kind, last.actor.as_str()), (bma_core::EventKind::PersonalDataErased, "operator:dpo"));
    store.close().await;
    let out = run(&db, dir.path(), &["privacy", "export", "--subject", ZEBULON.subject], now);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["forms"], serde_json::json!([]), "{json}");

    // Purge: the defaults keep 12 months after the campaign's end (2024-05-31): 365 days.
    let out = run(&db, dir.path(), &["privacy", "purge", "--dry-run"], "2025-05-31T12:00:00Z");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("0 mailbox(es) to purge"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("12 months (365 days)"), "{}", text(&out.stdout));
    let later = "2025-06-02T00:00:00Z";
    let before = dump(&db.url, backend).await;
    let out = run(&db, dir.path(), &["privacy", "purge", "--dry-run", "--json"], later);
    let items: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = items.as_array().unwrap().iter().map(|i| i["mailbox"].as_str().unwrap()).collect();
    assert_eq!(names, ["ec820031@adm.cfwb.be", "ec820032@adm.cfwb.be"], "{items}");
    assert_eq!(dump(&db.url, backend).await, before, "a dry run writes nothing");
    let out = run(&db, dir.path(), &["privacy", "purge"], later);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 mailbox(es) purged"), "{}", text(&out.stdout));
    assert!(found(&dump(&db.url, backend).await, &HORTENSE.traces()).is_empty());
    let out = run(&db, dir.path(), &["privacy", "purge", "--json"], later);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), serde_json::json!([]));
    db.drop_db().await;
}

/// The console's rows: a staff member's sessions and the views they made
/// are theirs to read; a manager reads who viewed their mailbox; erasing
/// the staff member deletes their sessions and keeps the view log (the
/// accountability of access); the mailbox's purge takes its view log.
async fn console_rows_in_the_rights(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = seed(&store, "ec820031@adm.cfwb.be", &ZEBULON).await;
    let agent = bma_store::StaffIdentity {
        subject: "agent-sub-4242".into(),
        name: "Agnès Agentdutest".into(),
        email: "agnes.agentdutest@cfwb.test".into(),
        role: bma_core::staff::Role::Agent,
    };
    let (pending, logged) = (TokenHash::of(&bma_engine::new_token()), TokenHash::of(&bma_engine::new_token()));
    store.create_staff_session(&pending, "csrf", "pending", T0 + Duration::hours(8), T0).await.unwrap();
    let login = bma_store::StaffLogin {
        old_id_hash: &pending,
        new_id_hash: &logged,
        csrf: "csrf2",
        staff: &agent,
        id_token: Some("eyJ.id-token.of-agnes"),
        expires_at: T0 + Duration::hours(8),
    };
    store.login_staff_session(&login, T0).await.unwrap();
    store.record_staff_view(&agent, id, T0 + Duration::minutes(5)).await.unwrap();

    // The staff member, by subject or address: their session (no credential) and their view.
    for person in [Person::Subject(agent.subject.clone()), Person::Address("AGNES.agentdutest@cfwb.test".into())] {
        let data = store.export_person(&person).await.unwrap();
        assert_eq!(data.staff_sessions.len(), 1, "{person}: {data:?}");
        assert_eq!(data.staff_sessions[0].role.as_deref(), Some("agent"));
        let json = serde_json::to_string(&data).unwrap();
        assert!(!json.contains("id-token") && !json.contains("csrf2"), "no credential exported: {json}");
        let views: Vec<(&str, bool)> = data.staff_views.iter().map(|v| (v.mailbox.as_str(), v.by_them)).collect();
        assert_eq!(views, [("ec820031@adm.cfwb.be", true)], "{person}");
    }
    // The manager: who viewed their mailbox.
    let data = store.export_person(&Person::Subject(ZEBULON.subject.into())).await.unwrap();
    let views: Vec<(&str, bool)> = data.staff_views.iter().map(|v| (v.viewer_name.as_str(), v.by_them)).collect();
    assert_eq!(views, [("Agnès Agentdutest", false)]);
    assert!(data.staff_sessions.is_empty());

    // Erasing the staff member: their session goes, the view log stays.
    let dpo = Actor::Operator("dpo".into());
    let done =
        store.erase_person(&Person::Subject(agent.subject.clone()), &dpo, "left the helpdesk", T0).await.unwrap();
    assert_eq!(done.scrubbed.staff_sessions, 1, "{done:?}");
    assert!(store.staff_session(&logged, T0).await.unwrap().is_none(), "the session is gone");
    let after = dump(&db.url, backend).await;
    let sessions: Vec<&(String, String)> = after.iter().filter(|(at, _)| at.starts_with("staff_sessions.")).collect();
    assert!(sessions.is_empty(), "{sessions:?}");
    assert_eq!(store.staff_views(id, 10).await.unwrap().len(), 1, "the view log is kept");

    // The mailbox's purge takes its view log with its data.
    let retention = Retention { days: 1, campaign_end: date!(2024 - 05 - 31) };
    let purged = store
        .purge_personal_data(&retention, datetime!(2024-07-01 0:00 UTC), false, &Actor::System("purge".into()))
        .await
        .unwrap();
    assert_eq!(purged.iter().map(|p| p.scrubbed.staff_views).collect::<Vec<_>>(), [1]);
    assert!(store.staff_views(id, 10).await.unwrap().is_empty());
    store.close().await;
    db.drop_db().await;
}

/// `bma serve` with `privacy.purge_automatically` removes what is past its
/// retention by itself (the campaign clock given by `BMA_NOW`); without it,
/// nothing.
async fn bma_serve_purges_when_asked(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = seed(&store, "ec820041@adm.cfwb.be", &ZEBULON).await;
    let dir = tempfile::tempdir().unwrap();
    let serve = |purge: bool| {
        let (listener, port) = std::net::TcpListener::bind("127.0.0.1:0")
            .map(|l| {
                let port = l.local_addr().unwrap().port();
                (l, port)
            })
            .unwrap();
        drop(listener);
        bma_command(dir.path(), &db.url, &["serve", "--listen", &format!("127.0.0.1:{port}")])
            // The campaign ended on 2024-05-31; its retention (12 months) is over.
            .env("BMA_NOW", "2025-07-01T00:00:00Z")
            .env("BMA_PRIVACY_PURGE_AUTOMATICALLY", purge.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let erased = || async {
        store.latest_enrollment(id).await.unwrap().is_some_and(|e| e.form.family_name == bma_store::ERASED)
    };

    let mut off = serve(false);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    off.kill().unwrap();
    off.wait().unwrap();
    assert!(!erased().await, "nothing purged unless asked");

    let mut on = serve(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !erased().await {
        assert!(std::time::Instant::now() < deadline, "bma serve did not purge within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    on.kill().unwrap();
    on.wait().unwrap();
    let last = store.timeline(id).await.unwrap().pop().unwrap();
    assert_eq!((last.kind, last.actor.as_str()), (bma_core::EventKind::PersonalDataPurged, "system:purge"));
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(
    bma_serve_purges_when_asked,
    console_rows_in_the_rights,
    export_finds_everything,
    erasure_leaves_no_trace_and_keeps_the_history,
    purge_after_retention_and_not_before,
    cli_round_trip
);
