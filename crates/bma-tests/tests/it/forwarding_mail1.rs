//! The forwarding audit run by the scheduler before a wave's mail 1, and
//! what the manager is told, read where the manager reads it: mail 1 and
//! the reminder in the legacy mailbox (the real Dovecot, over IMAP). On
//! both backends, against the lab's legacy ManageSieve:
//!
//! - a box whose active script forwards outside gets a mail 1 naming the
//!   target masked (`d***@gmail.com`), and so does its reminder; a box with
//!   only a vacation, and a box without scripts, get the general warning;
//! - each box's audit is stored before its mail 1, by the scheduler;
//! - the manager who follows mail 1's link, logs in at the lab's OpenID
//!   Connect provider and sends the form reads it on the status page;
//! - a legacy ManageSieve that cannot be reached delays no mail 1: the
//!   wave leaves without the mention, after one try.
//!
//! Addresses `ec0996NN@adm.cfwb.be` (SQLite 01–04, PostgreSQL 11–14) are
//! used by no other test. Needs `cargo xtask lab up`.

use std::time::{Duration as StdDuration, Instant};

use bma_core::lifecycle::Actor;
use bma_core::{AddressRule, registry};
use bma_engine::{Engine, EngineSettings};
use bma_mail::Templates;
use bma_store::{CampaignAction, Store};
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp, plan_default_waves};
use bma_tests::sieve::lab_put_scripts;
use bma_tests::{TestBackend, TestDb, addr, lab_addusers, on_both_backends};
use time::OffsetDateTime;
use time::macros::datetime;

const ROUNDCUBE: &[u8] = b"require [\"copy\"];\r\n# rule:[renvoi vers la direction]\r\nif true\r\n{\r\n\tredirect :copy \"direction.ecole@gmail.com\";\r\n}\r\n";
const VACATION: &[u8] = b"require [\"vacation\"];\r\nvacation :days 7 \"Le secr\xc3\xa9tariat est ferm\xc3\xa9.\";\r\n";

fn boxes(backend: TestBackend) -> Vec<String> {
    let base = if backend == TestBackend::Sqlite { 0 } else { 10 };
    (1..=4).map(|i| format!("ec0996{:02}@adm.cfwb.be", base + i)).collect()
}

async fn ours(address: &str, kind: &str) -> Vec<String> {
    bma_tests::lab_mails_of(address, kind).await
}

/// Polls until `address` holds more than `before` emails of `kind` (20 s at most); returns the newest.
async fn next(address: &str, kind: &str, before: usize) -> String {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let got = ours(address, kind).await;
        if got.len() > before {
            return got.last().unwrap().clone();
        }
        assert!(Instant::now() < deadline, "no new {kind} reached {address} within 20 s");
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
}

/// The text part of a quoted-printable email, decoded enough to read French.
fn text(body: &str) -> String {
    let plain = body.split("Content-Type: text/html").next().unwrap_or(body);
    plain.replace("=C3=A9", "é").replace("=C3=AE", "î").replace("=C3=A0", "à").replace("=3D", "=").replace("=\r\n", "")
}

fn engine(store: Store, settings: EngineSettings) -> Engine {
    Engine::new(store, Templates::load(None).unwrap(), settings, lab_smtp(), "test-forwarding-mail1")
}

/// Imports `addresses`, plans the default waves, starts the campaign;
/// returns each wave's day with its addresses.
async fn campaign(store: &Store, addresses: &[String]) -> Vec<(time::Date, Vec<String>)> {
    let mut csv = String::from("address,name\n");
    for a in addresses {
        csv.push_str(&format!("{a},École {a}\n"));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    let t0 = datetime!(2024-04-01 08:00 UTC);
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), t0).await.unwrap();
    let plan = plan_default_waves(store, t0).await;
    store.change_campaign(CampaignAction::Start, &Actor::Operator("test".into()), "go", t0).await.unwrap();
    plan.waves.into_iter().filter(|w| !w.planned.is_empty()).map(|w| (w.starts, w.planned)).collect()
}

/// The portal of `bma serve` on `store`, its clock on `day`.
fn portal(store: &Store, base: &str, day: time::Date) -> bma_web::Portal {
    let mut settings = bma_web::PortalSettings::new(base);
    settings.oidc = Some(bma_tests::web::lab_oidc());
    settings.bounce_address = "bounces@bma.test".into();
    settings.message_id_domain = "bma.test".into();
    let clock = std::sync::Arc::new(bma_core::ManualClock::new(at_wave_hour(day)));
    bma_web::Portal::new(store.clone(), settings, Templates::load(None).unwrap(), clock).unwrap()
}

fn at_wave_hour(day: time::Date) -> OffsetDateTime {
    day.with_hms(8, 0, 0).unwrap().assume_utc()
}

async fn mail_1_names_the_forwarding_the_audit_found(backend: TestBackend) {
    let b = &boxes(backend)[..3];
    lab_addusers("legacy", b, "unused-password");
    lab_put_scripts("legacy", &b[0], &[("roundcube", ROUNDCUBE)], Some("roundcube")).await;
    lab_put_scripts("legacy", &b[1], &[("absence", VACATION)], Some("absence")).await;
    lab_put_scripts("legacy", &b[2], &[], None).await;
    let mut links = Vec::new();
    let mut before = Vec::new();
    for a in b {
        before.push(ours(a, "invitation").await.len());
    }
    let reminders_before = ours(&b[0], "reminder").await.len();
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let waves = campaign(&store, b).await;
    let bounces = format!("bounces-0996-{}@bma.test", b[0].split('@').next().unwrap());
    lab_addusers("legacy", std::slice::from_ref(&bounces), "secret-bounces");
    // The portal the links point at, on the same store.
    let (listener, port) = bma_tests::web::listener().await;
    let base = format!("http://127.0.0.1:{port}");
    let settings =
        EngineSettings { audit_before_mail1: true, portal_base_url: base.clone(), ..lab_engine_settings(&bounces) };
    let engine = engine(store.clone(), settings);
    let portal = portal(&store, &base, waves[0].0);
    let server = tokio::spawn(async move { bma_web::serve(listener, portal, std::future::pending()).await.unwrap() });

    for (day, planned) in &waves {
        for a in planned {
            assert!(store.forwarding_audit(&addr(a)).await.unwrap().is_none(), "{a}: not audited before its wave");
        }
        let r = engine.step(at_wave_hour(*day)).await.unwrap();
        assert_eq!(r.invited, planned.len(), "the wave of {day}");
    }
    for (i, a) in b.iter().enumerate() {
        let audit = store.forwarding_audit(&addr(a)).await.unwrap().unwrap_or_else(|| panic!("{a}: audited"));
        assert_eq!(audit.forwards_outside(), i == 0, "{a}: {audit:?}");
        let wave = waves.iter().find(|(_, p)| p.contains(a)).unwrap().0;
        assert_eq!(audit.audited_at, at_wave_hour(wave), "{a}: audited on the campaign's clock, at its mail 1");
        let mail1 = text(&next(a, "invitation", before[i]).await);
        links.push(bma_visitor::link_in(&mail1, &format!("{base}/formulaire/")).expect("the link in mail 1"));
        let named = mail1.contains("redirige aujourd'hui automatiquement des messages vers\r\nd***@gmail.com.");
        assert_eq!(named, i == 0, "{a}: mail 1 names the forwarding only when there is one:\n{mail1}");
        assert!(!mail1.contains("direction.ecole"), "the target is masked:\n{mail1}");
        if i > 0 {
            assert!(
                mail1.contains("les redirections automatiques vers une autre\r\nboîte mail ne seront plus"),
                "{mail1}"
            );
        }
    }
    // The audit is the scheduler's, with its event.
    let m = store.mailbox(&addr(&b[0])).await.unwrap();
    let timeline = store.timeline(m.id).await.unwrap();
    let audited = timeline.iter().position(|e| e.kind == bma_core::EventKind::ForwardingAudited).expect("event");
    let invited = timeline.iter().position(|e| e.to_state == Some(bma_core::State::Invited)).expect("invited");
    assert!(audited < invited, "audited before mail 1");
    assert_eq!(timeline[audited].actor, "system:test-forwarding-mail1");

    // The first reminder names it too.
    let first_wave = waves.iter().find(|(_, p)| p.contains(&b[0])).unwrap().0;
    let reminder_day = first_wave + time::Duration::days(7);
    engine.step(at_wave_hour(reminder_day)).await.unwrap();
    let reminder = text(&next(&b[0], "reminder", reminders_before).await);
    assert!(reminder.contains("des messages vers\r\nd***@gmail.com."), "{reminder}");

    // Each manager sends the form from the link; the status page says it too.
    for (i, a) in b.iter().enumerate() {
        let status = bma_visitor::Visitor::new()
            .unwrap()
            .enrol(&links[i], "directrice.dupont", "password", &bma_tests::web::marie_dupont())
            .await
            .unwrap_or_else(|e| panic!("{a}: {e}"));
        let said = "redirige aujourd'hui automatiquement des messages vers d***@gmail.com";
        assert_eq!(status.body.contains(said), i == 0, "{a}: the status page:\n{}", status.body);
        assert!(!status.body.contains("direction.ecole"));
    }
    server.abort();
}

on_both_backends!(mail_1_names_the_forwarding_the_audit_found);

/// A legacy ManageSieve that cannot be reached: one try, then the wave
/// leaves without the mention (nothing stored, no delay per box).
#[tokio::test]
async fn an_unreachable_managesieve_delays_no_mail_1() {
    let a = boxes(TestBackend::Sqlite)[3].clone();
    lab_addusers("legacy", std::slice::from_ref(&a), "unused-password");
    let before = ours(&a, "invitation").await.len();
    let db = TestDb::new(TestBackend::Sqlite).await;
    let store = db.store().await;
    let waves = campaign(&store, std::slice::from_ref(&a)).await;
    let mut legacy = lab_platform("legacy");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    legacy.sieve.as_mut().unwrap().port = closed;
    let bounces = "bounces-0996-closed@bma.test".to_owned();
    lab_addusers("legacy", std::slice::from_ref(&bounces), "secret-bounces");
    let settings = EngineSettings { audit_before_mail1: true, legacy: Some(legacy), ..lab_engine_settings(&bounces) };
    let engine = engine(store.clone(), settings);
    let started = Instant::now();
    let r = engine.step(at_wave_hour(waves[0].0)).await.unwrap();
    assert_eq!(r.invited, 1);
    assert!(started.elapsed() < StdDuration::from_secs(15), "took {:?}", started.elapsed());
    let mail1 = text(&next(&a, "invitation", before).await);
    assert!(!mail1.contains("redirige aujourd'hui"), "{mail1}");
    // The one try is recorded as such: the box could not be audited.
    let audit = store.forwarding_audit(&addr(&a)).await.unwrap().expect("the failed try is stored");
    assert!(audit.findings[0].detail.contains("cannot list the scripts"), "{audit:?}");
}
