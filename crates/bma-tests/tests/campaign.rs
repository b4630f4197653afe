//! The campaign engine against the lab, on both backends: planned waves
//! invite their mailboxes at the wave's hour and not before; mail 1 goes
//! through the outbox and the lab's Postfix into each legacy mailbox,
//! exactly once even when the engine runs twice for the same instant; the
//! link in each email opens its own mailbox; the timeline says what was
//! sent when.
//!
//! Needs `cargo xtask lab up`.

use std::time::{Duration as StdDuration, Instant};

use bma_core::lifecycle::{Actor, State};
use bma_core::planner::{WaveRules, plan_waves};
use bma_core::settings::Settings;
use bma_core::{AddressRule, registry};
use bma_engine::{Engine, EngineSettings};
use bma_mail::{SmtpConfig, SmtpSender, SmtpTls, Templates};
use bma_tests::{TestBackend, TestDb, lab_adduser, lab_file, lab_inbox, on_both_backends};
use time::macros::datetime;

fn engine(store: bma_store::Store) -> Engine {
    let lab = lab_file("lab.json");
    let sender = SmtpSender::new(&SmtpConfig {
        host: lab["smtp"]["host"].as_str().unwrap().to_owned(),
        port: lab["smtp"]["port"].as_u64().unwrap() as u16,
        tls: SmtpTls::None,
        timeout: StdDuration::from_secs(10),
    })
    .unwrap();
    let settings = EngineSettings {
        settings: Settings::default(),
        portal_base_url: "http://127.0.0.1:8080".into(),
        bounce_address: "bounces@bma.test".into(),
        message_id_domain: "bma.test".into(),
        wave_hour: 8,
        reply_days: 14,
    };
    Engine::new(store, Templates::load(None).unwrap(), settings, sender, "test-engine")
}

/// The invitations in a legacy INBOX (bodies mentioning the form link).
async fn invitations_in(address: &str) -> Vec<String> {
    lab_inbox("legacy", address)
        .await
        .into_iter()
        // Undo quoted-printable soft line breaks: the link may be wrapped.
        .map(|b| String::from_utf8_lossy(&b).replace("=\r\n", ""))
        .filter(|b| b.contains("/formulaire/"))
        .collect()
}

async fn waves_invite_their_mailboxes_exactly_once(backend: TestBackend) {
    let prefix = if backend == TestBackend::Sqlite { 891 } else { 892 };
    let addresses: Vec<String> = (1..=6).map(|i| format!("ec{prefix}{i:03}@adm.cfwb.be")).collect();
    for a in &addresses {
        lab_adduser("legacy", a, "secret-campaign-test");
    }
    let before: Vec<usize> = {
        let mut v = Vec::new();
        for a in &addresses {
            v.push(invitations_in(a).await.len());
        }
        v
    };

    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let mut csv = String::from("address,name\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},École de test {i}\n"));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    let t0 = datetime!(2024-04-01 09:00 UTC);
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), t0).await.unwrap();
    let c = Settings::default().campaign;
    let rules =
        WaveRules { start: c.start, deadline: c.invitation_deadline, weekday: c.weekday().unwrap(), capacity: None };
    let plan = plan_waves(&rules, c.start, &store.planning_candidates().await.unwrap()).unwrap();
    store.apply_wave_plan(&plan, &Actor::Operator("test".into()), t0).await.unwrap();
    let first_wave: Vec<String> = plan.waves[0].planned.clone();
    assert_eq!(first_wave.len(), 2);

    let engine = engine(store.clone());
    let (invited, sent) = engine.tick(datetime!(2024-04-22 07:59 UTC)).await.unwrap();
    assert_eq!((invited, sent.sent), (0, 0), "not before the wave's hour");
    let (invited, sent) = engine.tick(datetime!(2024-04-22 08:00 UTC)).await.unwrap();
    assert_eq!((invited, sent.sent), (2, 2), "the first wave");
    let (invited, sent) = engine.tick(datetime!(2024-04-22 08:00 UTC)).await.unwrap();
    assert_eq!((invited, sent.sent), (0, 0), "running twice for one instant does nothing more");
    let (invited, sent) = engine.tick(datetime!(2024-05-20 08:30 UTC)).await.unwrap();
    assert_eq!((invited, sent.sent), (4, 4), "the other waves");
    let counts = store.counts_by_state().await.unwrap();
    assert_eq!(counts.get(&State::Invited), Some(&6));

    // Each legacy mailbox receives exactly one new invitation; its link opens that mailbox.
    for (a, n_before) in addresses.iter().zip(before) {
        let deadline = Instant::now() + StdDuration::from_secs(20);
        let mails = loop {
            let mails = invitations_in(a).await;
            if mails.len() > n_before || Instant::now() > deadline {
                break mails;
            }
            tokio::time::sleep(StdDuration::from_millis(300)).await;
        };
        assert_eq!(mails.len(), n_before + 1, "{a}: exactly one invitation");
        let body = mails.last().unwrap();
        let token: String = body
            .split("/formulaire/")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert_eq!(store.mailbox_by_token(&token).await.unwrap().as_deref(), Some(a.as_str()), "{a}");
        assert!(body.contains(&format!("Return-Path: <bounces+{}@bma.test>", a.replace('@', "="))));
        let m = store.mailbox(a).await.unwrap();
        let events = store.timeline(m.id).await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, vec!["imported", "transition", "transition", "email_sent"], "{a}");
        let emails = store.emails_of(m.id).await.unwrap();
        assert_eq!((emails.len(), emails[0].state.as_str()), (1, "sent"));
    }
    assert_eq!(store.mailbox_by_token("not-a-token").await.unwrap(), None);
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(waves_invite_their_mailboxes_exactly_once);
