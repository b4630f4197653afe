//! What a copy of the store or a forged email can do (issue 10): nothing.
//!
//! - A campaign on the lab (mail 1, reminders, a resend, a form answered
//!   through the portal with its backup address to verify), every email
//!   read back from the lab's mailboxes: every link and code they carry is
//!   looked for in every column of every table of the store, on both
//!   backends, and found nowhere.
//! - A delivery report forged to the bounce address (through the lab's
//!   Postfix), quoting no email we sent, changes no mailbox and is listed
//!   by `bma campaign status` for a human.
//!
//! Needs `cargo xtask lab up && cargo xtask lab seed` and `cargo build -p bma`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use bma_core::lifecycle::{Actor, State};
use bma_core::{AddressRule, ManualClock, registry};
use bma_engine::{Engine, EngineSettings};
use bma_mail::{Envelope, OutgoingEmail, Templates, inspect};
use bma_store::{CampaignAction, OlderLinks, Store};
use bma_tests::engine::{lab_engine_settings, lab_smtp, plan_default_waves};
use bma_tests::provider::login_with;
use bma_tests::web::{csrf_of, listener};
use bma_tests::{TestBackend, TestDb, addr, bma_bin, lab_addusers, lab_file, lab_inbox, on_both_backends};
use bma_web::{OidcSettings, Portal, PortalSettings};
use reqwest::StatusCode;
use sqlx::{Connection, Row};
use time::OffsetDateTime;
use time::macros::datetime;

/// An engine on the lab, its portal at `base`, its bounce mailbox `bounces`.
fn engine(store: Store, base: &str, bounces: &str) -> Engine {
    let settings = EngineSettings { portal_base_url: base.to_owned(), ..lab_engine_settings(bounces) };
    Engine::new(store, Templates::load(None).unwrap(), settings, lab_smtp(), "test-trust")
}

async fn import_and_plan(store: &Store, addresses: &[String], t0: OffsetDateTime) {
    let mut csv = String::from("address,name\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},École de test {i}\n"));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), t0).await.unwrap();
    plan_default_waves(store, t0).await;
    store.change_campaign(CampaignAction::Start, &Actor::Operator("test".into()), "", t0).await.unwrap();
}

/// Every token of a link to `path` (`/formulaire/`, `/verification/`) in a message, as a reader sees it.
fn tokens(raw: &[u8], path: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in inspect::parts(raw) {
        let shown = p.body.replace("&#x2f;", "/");
        for piece in shown.split(path).skip(1) {
            let t: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            if bma_core::token::well_formed(&t) {
                out.insert(t);
            }
        }
    }
    out
}

/// The message with this Message-ID in `user`'s legacy INBOX, once it arrived (20 s at most).
async fn received(user: &str, message_id: &str) -> Vec<u8> {
    let want = format!("<{message_id}>");
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let found = lab_inbox("legacy", user)
            .await
            .into_iter()
            .find(|m| inspect::header_value(m, "Message-ID").as_deref() == Some(want.as_str()));
        if let Some(m) = found {
            return m;
        }
        assert!(Instant::now() < deadline, "{message_id} never reached {user}");
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
}

/// Every `table.column` of the store holding one of `secrets`, as it is or
/// decoded as an email would be (quoted-printable, base64 parts).
pub(crate) async fn scan(url: &str, backend: TestBackend, secrets: &BTreeSet<String>) -> (usize, Vec<String>) {
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let tables: Vec<String> = match backend {
        TestBackend::Sqlite => sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'"),
        TestBackend::Postgres => sqlx::query_scalar(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public'",
        ),
    }
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut cells = 0;
    let mut found = Vec::new();
    for t in &tables {
        let columns: Vec<String> = match backend {
            TestBackend::Sqlite => sqlx::query_scalar("SELECT name FROM pragma_table_info($1)"),
            TestBackend::Postgres => sqlx::query_scalar(
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1",
            ),
        }
        .bind(t.clone())
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(!columns.is_empty(), "{t} has columns");
        for c in &columns {
            let sql = format!("SELECT CAST(\"{c}\" AS TEXT) AS v FROM \"{t}\"");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap();
            for r in &rows {
                let Some(v) = r.try_get::<Option<String>, _>("v").unwrap() else { continue };
                cells += 1;
                let mut views = vec![v.clone(), v.replace("=\r\n", "").replace("=3D", "=")];
                views.extend(inspect::parts(v.as_bytes()).into_iter().map(|p| p.body.replace("&#x2f;", "/")));
                for s in secrets {
                    if views.iter().any(|view| view.contains(s.as_str())) {
                        found.push(format!("{t}.{c}: {s}"));
                    }
                }
            }
        }
    }
    (cells, found)
}

/// A campaign with every kind of link, then the whole store searched for them.
async fn no_working_link_is_kept_in_the_store(backend: TestBackend) {
    let prefix = if backend == TestBackend::Sqlite { 871 } else { 872 };
    let addresses: Vec<String> = (1..=3).map(|i| format!("ec{prefix}{i:03}@adm.cfwb.be")).collect();
    let backup = format!("secours{prefix}@ecole.test");
    let bounces = format!("bounces-{prefix}@bma.test");
    let mut users = addresses.clone();
    users.extend([backup.clone(), bounces.clone()]);
    lab_addusers("legacy", &users, "secret-trust");

    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (l, port) = listener().await;
    let base = format!("http://127.0.0.1:{port}");
    let runner = engine(store.clone(), &base, &bounces);
    import_and_plan(&store, &addresses, datetime!(2024-04-01 09:00 UTC)).await;

    // Mail 1 by waves, reminders to all (nobody answers in time).
    let mut now = datetime!(2024-04-22 08:00 UTC);
    while now <= datetime!(2024-05-20 08:00 UTC) {
        let r = runner.step(now).await.unwrap();
        assert_eq!(r.send.dead + r.failed_jobs, 0, "{now}: {r:?}");
        now += time::Duration::days(1);
    }

    // The portal: the first manager answers through the link of their last email.
    let mut settings = PortalSettings::new(&base);
    let lab = lab_file("lab.json");
    settings.oidc = Some(OidcSettings {
        issuer: lab["oidc"]["issuer"].as_str().unwrap().to_owned(),
        client_id: lab["oidc"]["client_id"].as_str().unwrap().to_owned(),
        client_secret: lab["oidc"]["client_secret"].as_str().unwrap().to_owned(),
        extra_scopes: Vec::new(),
        roles_claim: None,
    });
    settings.bounce_address = bounces.clone();
    settings.message_id_domain = "bma.test".into();
    let answered_at = datetime!(2024-05-21 09:00 UTC);
    let clock = Arc::new(ManualClock::new(answered_at));
    let portal = Portal::new(store.clone(), settings, Templates::load(None).unwrap(), clock.clone()).unwrap();
    let server = tokio::spawn(async move {
        bma_web::serve(l, portal, std::future::pending()).await.unwrap();
    });
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(StdDuration::from_secs(20))
        .build()
        .unwrap();
    let first = store.mailbox(&addr(&addresses[0])).await.unwrap();
    let last_email = store.emails_of(first.id).await.unwrap().into_iter().last().unwrap();
    let raw = received(&addresses[0], &last_email.message_id).await;
    let token = tokens(&raw, "/formulaire/").into_iter().next().expect("a link in the last email");
    let (status, _, page) =
        login_with(&client, &format!("{base}/formulaire/{token}/connexion"), "directrice.dupont").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let form = [
        ("csrf", csrf_of(&page)),
        ("nom", "Dupont".into()),
        ("prenom", "Marie".into()),
        ("telephone", "0470 12 34 56".into()),
        ("role", "direction".into()),
        ("email_secours", backup.clone()),
        ("email_secours_confirmation", backup.clone()),
        ("mot_de_passe_connu", "non".into()),
        ("notice", "lu".into()),
    ];
    let res = client.post(format!("{base}/formulaire/{token}")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", res.text().await.unwrap());
    assert_eq!(store.mailbox(&addr(&addresses[0])).await.unwrap().state, State::Enrolled);

    // The second gets mail 1 again (its older links revoked).
    let resent_at = datetime!(2024-05-21 10:00 UTC);
    runner
        .resend_invitation(&addresses[1], OlderLinks::Revoke, &Actor::Operator("helpdesk".into()), "fuite", resent_at)
        .await
        .unwrap();
    let r = runner.send_due(resent_at).await.unwrap();
    assert_eq!(r.dead, 0, "{r:?}");
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["sent"], "every email sent: {counts:?}");

    // Every link and code the emails carry, as received.
    let mut secrets = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for a in &addresses {
        let m = store.mailbox(&addr(a)).await.unwrap();
        for e in store.emails_of(m.id).await.unwrap() {
            let raw = received(&e.recipient, &e.message_id).await;
            let path = if e.kind == "backup_verification" { "/verification/" } else { "/formulaire/" };
            let found = tokens(&raw, path);
            assert!(!found.is_empty(), "{} ({}) carries a link", e.message_id, e.kind);
            secrets.extend(found);
            kinds.insert(e.kind.clone());
        }
    }
    assert_eq!(
        kinds.iter().map(String::as_str).collect::<Vec<_>>(),
        ["backup_verification", "confirmation", "invitation", "reminder"]
    );
    // They are live: the resent link opens its page, the verification code its page.
    let resent = store.emails_of(store.mailbox(&addr(&addresses[1])).await.unwrap().id).await.unwrap();
    let resent_raw = received(&addresses[1], &resent.last().unwrap().message_id).await;
    let resent_token = tokens(&resent_raw, "/formulaire/").into_iter().next().unwrap();
    let res = reqwest::get(format!("{base}/formulaire/{resent_token}")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the resent link works");

    let (cells, found) = scan(&db.url, backend, &secrets).await;
    eprintln!("{backend:?}: {} links and codes looked for in {cells} values of the store", secrets.len());
    assert!(cells > 100, "the scan read the store ({cells} values)");
    assert!(found.is_empty(), "{} links or codes in clear in the store: {found:#?}", secrets.len());

    server.abort();
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(no_working_link_is_kept_in_the_store);

/// A failure report for `recipient` sent to its VERP address, quoting `message_id` (or nothing).
fn forged_dsn(bounces: &str, recipient: &str, message_id: Option<&str>, marker: &str) -> OutgoingEmail {
    let verp = bma_mail::verp(bounces, recipient);
    let original = match message_id {
        Some(id) => format!("Message-ID: <{id}>\r\nSubject: Migration\r\n"),
        None => "Subject: Migration\r\n".to_owned(),
    };
    let raw = format!(
        "From: Mail Delivery System <MAILER-DAEMON@forged.test>\r\nTo: {verp}\r\n\
         Subject: Undelivered Mail Returned to Sender {marker}\r\nMessage-ID: <{marker}@forged.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"F\"\r\n\r\n\
         --F\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --F\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; forged.test\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822; {recipient}\r\nAction: failed\r\n\
         Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
         --F\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}\r\n--F--\r\n"
    );
    OutgoingEmail {
        envelope: Envelope { from: "mailer-daemon@forged.test".into(), to: vec![verp] },
        raw: raw.into_bytes(),
        message_id: format!("{marker}@forged.test"),
    }
}

async fn a_forged_delivery_report_changes_nothing_and_is_listed(backend: TestBackend) {
    let prefix = if backend == TestBackend::Sqlite { 873 } else { 874 };
    let address = format!("ec{prefix}001@adm.cfwb.be");
    let bounces = format!("bounces-{prefix}@bma.test");
    lab_addusers("legacy", &[address.clone(), bounces.clone()], "secret-trust");
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let runner = engine(store.clone(), "http://127.0.0.1:8080", &bounces);
    import_and_plan(&store, std::slice::from_ref(&address), datetime!(2024-04-01 09:00 UTC)).await;
    let now = datetime!(2024-04-22 08:00 UTC);
    let r = runner.step(now).await.unwrap();
    assert_eq!((r.invited, r.send.sent), (1, 1));
    // Whatever an earlier run left unread in the bounce mailbox is read now.
    runner.read_bounces(now).await.unwrap();
    let mail1 = store.emails_of(store.mailbox(&addr(&address)).await.unwrap().id).await.unwrap();
    received(&address, &mail1[0].message_id).await;

    // Two forged reports to the mailbox's VERP address: one quoting a Message-ID we never sent, one quoting none.
    let marker = format!("forged-{}-{}", std::process::id(), prefix);
    let sender = lab_smtp();
    for (i, id) in [Some("invitation.1.AAAAAAAAAAAAAAAA@bma.test"), None].into_iter().enumerate() {
        sender.send(&forged_dsn(&bounces, &address, id, &format!("{marker}-{i}"))).await.unwrap();
    }
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while lab_inbox("legacy", &bounces).await.iter().filter(|m| String::from_utf8_lossy(m).contains(&marker)).count()
        < 2
    {
        assert!(Instant::now() < deadline, "the forged reports reached the bounce mailbox");
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }

    let report = runner.read_bounces(now + time::Duration::hours(1)).await.unwrap();
    assert_eq!((report.bounced, report.unverified), (0, 2), "{report:?}");
    let m = store.mailbox(&addr(&address)).await.unwrap();
    assert_eq!(m.state, State::Invited, "the form stays open");
    assert!(store.attention_list().await.unwrap().is_empty());
    let kept = store.unverified_bounces(10).await.unwrap();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|e| e.details["claimed_recipient"] == address.as_str()), "{kept:?}");

    // `bma campaign status` lists them for a human.
    let out = std::process::Command::new(bma_bin())
        .args(["campaign", "status"])
        .env_remove("BMA_CONFIG")
        .env("BMA_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("unverified delivery reports (nothing changed, to check by hand): 2"), "{text}");
    assert_eq!(text.matches(&format!("for \"{address}\"")).count(), 2, "{text}");
    assert!(text.contains("invitation.1.AAAAAAAAAAAAAAAA@bma.test"), "{text}");

    store.close().await;
    db.drop_db().await;
}

on_both_backends!(a_forged_delivery_report_changes_nothing_and_is_listed);

/// An email keeps its body while it may be sent (pending, retried), and
/// only its header once sent or dead.
async fn an_email_keeps_only_its_header_once_sent_or_dead(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let t0 = datetime!(2024-04-22 08:00 UTC);
    let email = |key: &str| bma_store::NewEmail {
        mailbox_id: None,
        kind: "deadline_watch".into(),
        key: key.to_owned(),
        recipient: "migrationbma@bma.test".into(),
        envelope_from: "bounces@bma.test".into(),
        message_id: format!("{key}@bma.test"),
        subject: "Liste".into(),
        raw: format!(
            "Subject: Liste\r\nMessage-ID: <{key}@bma.test>\r\n\r\nhttps://bma.example/formulaire/SECRET-{key}\r\n"
        ),
        run_at: t0,
        max_attempts: 2,
    };
    for key in ["sent", "dead", "retried"] {
        store.queue_email(&email(key), t0).await.unwrap();
    }
    let claimed = store.claim_emails("w", t0, time::Duration::minutes(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let id = |key: &str| claimed.iter().find(|e| e.message_id == format!("{key}@bma.test")).unwrap().id;
    store.mark_sent(id("sent"), "w", t0).await.unwrap();
    store.mark_email_failed(id("dead"), "w", "550 refused", true, t0).await.unwrap();
    store.mark_email_failed(id("retried"), "w", "421 later", false, t0).await.unwrap();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let rows = sqlx::query("SELECT message_id, state, raw FROM outbox ORDER BY id").fetch_all(&mut conn).await.unwrap();
    let got: Vec<(String, String, String)> =
        rows.iter().map(|r| (r.get("message_id"), r.get("state"), r.get("raw"))).collect();
    for (key, state, body_kept) in [("sent", "sent", false), ("dead", "dead", false), ("retried", "pending", true)] {
        let (_, s, raw) = got.iter().find(|(m, _, _)| *m == format!("{key}@bma.test")).unwrap();
        assert_eq!(s, state);
        assert!(raw.starts_with("Subject: Liste\r\nMessage-ID: "), "{key}: the header stays: {raw:?}");
        assert_eq!(raw.contains("SECRET"), body_kept, "{key}: {raw:?}");
    }
    conn.close().await.unwrap();
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(an_email_keeps_only_its_header_once_sent_or_dead);
