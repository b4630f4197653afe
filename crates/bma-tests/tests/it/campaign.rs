//! The campaign engine against the lab (Postfix, both Dovecots), on both
//! backends, over simulated weeks:
//!
//! - planned waves invite their mailboxes at the wave's hour and not
//!   before, exactly once even when a step runs twice for one instant, and
//!   only while the campaign is running (not before `start`, not paused);
//! - each invitation arrives in its legacy mailbox (read over IMAP) and its
//!   link opens that mailbox; reminders reach only those who have not
//!   answered, with links that work too;
//! - an invitation to an address the legacy platform refuses comes back as
//!   a DSN to its VERP address and the mailbox becomes `invitation_bounced`;
//! - at the deadline the migration team receives the right list;
//! - enrolled mailboxes get cutover slots within their window;
//! - presync copies reach the new platform.
//!
//! Needs `cargo xtask lab up && cargo xtask lab seed`.

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use bma_core::lifecycle::{Actor, State};
use bma_core::planner::plan_waves;
use bma_core::settings::Settings;
use bma_core::{AddressRule, registry};
use bma_engine::{Engine, EngineSettings, PresyncSettings};
use bma_mail::Templates;
use bma_store::{CampaignAction, CampaignState, OlderLinks, Store};
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp, plan_default_waves, presync_always};
use bma_tests::{TestBackend, TestDb, addr, lab_addusers, lab_addusers_with, lab_file, lab_inbox, on_both_backends};

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// An engine on the lab. `bounces` is the bounce mailbox: one per test, since
/// each campaign marks what it reads there as read.
fn engine(store: Store, presync: bool, bounces: &str) -> Engine {
    let settings = EngineSettings {
        new: Some(lab_platform("new")),
        presync: PresyncSettings { enabled: presync, max_bytes_per_second: 50_000_000, ..presync_always(2, 4) },
        ..lab_engine_settings(bounces)
    };
    Engine::new(store, Templates::load(None).unwrap(), settings, lab_smtp(), "test-engine")
}

/// The bodies of our emails of `kind` in a legacy INBOX.
async fn ours(address: &str, kind: &str) -> Vec<String> {
    bma_tests::lab_mails_of(address, kind).await
}

/// Polls until `address` holds `n` emails of `kind` (20 s at most); returns them.
async fn wait_for(address: &str, kind: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let got = ours(address, kind).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
}

fn token_in(body: &str) -> String {
    body.split("/formulaire/")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn import_and_plan(store: &Store, addresses: &[String], t0: OffsetDateTime) -> Vec<Vec<String>> {
    let mut csv = String::from("address,name,usage\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},École de test {i},{}\n", 1_000_000 + i * 1000));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), t0).await.unwrap();
    let plan = plan_default_waves(store, t0).await;
    plan.waves.iter().map(|w| w.planned.clone()).collect()
}

/// A small campaign, step by step: the hour of the wave, idempotence, the
/// campaign's state.
async fn waves_invite_their_mailboxes_exactly_once(backend: TestBackend) {
    let prefix = if backend == TestBackend::Sqlite { 891 } else { 892 };
    let bounces = format!("bounces-{prefix}@bma.test");
    lab_addusers("legacy", std::slice::from_ref(&bounces), "secret-bounces");
    let addresses: Vec<String> = (1..=6).map(|i| format!("ec{prefix}{i:03}@adm.cfwb.be")).collect();
    lab_addusers("legacy", &addresses, "secret-campaign-test");
    let mut before = Vec::new();
    for a in &addresses {
        before.push(ours(a, "invitation").await.len());
    }
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let t0 = datetime!(2024-04-01 09:00 UTC);
    let waves = import_and_plan(&store, &addresses, t0).await;
    assert_eq!(waves[0].len(), 2);
    let engine = engine(store.clone(), false, &bounces);
    let operator = Actor::Operator("test".into());

    let r = engine.step(datetime!(2024-04-22 08:00 UTC)).await.unwrap();
    assert_eq!((r.state, r.invited), (CampaignState::NotStarted, 0), "nothing before the campaign starts");
    store.change_campaign(CampaignAction::Start, &operator, "go", t0).await.unwrap();
    let e = store.change_campaign(CampaignAction::Start, &operator, "again", t0).await.unwrap_err();
    assert!(e.to_string().contains("cannot start the campaign: it is running"), "{e}");

    let r = engine.step(datetime!(2024-04-22 07:59 UTC)).await.unwrap();
    assert_eq!((r.invited, r.send.sent), (0, 0), "not before the wave's hour");
    let r = engine.step(datetime!(2024-04-22 08:00 UTC)).await.unwrap();
    assert_eq!((r.invited, r.send.sent), (2, 2), "the first wave");
    let r = engine.step(datetime!(2024-04-22 08:00 UTC)).await.unwrap();
    assert_eq!((r.enqueued, r.invited, r.send.sent), (0, 0, 0), "the same instant twice does nothing more");

    store.change_campaign(CampaignAction::Pause, &operator, "helpdesk flooded", t0).await.unwrap();
    let r = engine.step(datetime!(2024-04-29 08:00 UTC)).await.unwrap();
    assert_eq!((r.state, r.invited), (CampaignState::Paused, 0), "a paused campaign does nothing");
    store.change_campaign(CampaignAction::Resume, &operator, "", t0).await.unwrap();
    let r = engine.step(datetime!(2024-05-20 08:30 UTC)).await.unwrap();
    assert_eq!(r.invited, 4, "the other waves");
    assert_eq!(store.counts_by_state().await.unwrap().get(&State::Invited), Some(&6));

    // Each legacy mailbox receives exactly one new invitation; its link opens that mailbox.
    for (a, n_before) in addresses.iter().zip(before) {
        let mails = wait_for(a, "invitation", n_before + 1).await;
        assert_eq!(mails.len(), n_before + 1, "{a}: exactly one invitation");
        let body = mails.last().unwrap();
        assert_eq!(store.mailbox_by_token(&token_in(body)).await.unwrap().as_deref(), Some(a.as_str()), "{a}");
        assert!(body.contains(&format!("Return-Path: <bounces-{prefix}+{}@bma.test>", a.replace('@', "="))));
        let m = store.mailbox(&addr(a)).await.unwrap();
        let kinds: Vec<String> = store.timeline(m.id).await.unwrap().into_iter().map(|e| e.kind.to_string()).collect();
        assert_eq!(kinds[..4], ["imported", "transition", "transition", "email_sent"], "{a}");
    }
    assert_eq!(store.mailbox_by_token("not-a-token").await.unwrap(), None);

    // Mail 1 sent again to one of them: a second email with its own link; the first link is revoked.
    let a = &addresses[0];
    let earlier = ours(a, "invitation").await;
    let first = earlier.last().unwrap().clone();
    let now = datetime!(2024-05-21 10:00 UTC);
    engine.resend_invitation(a, OlderLinks::Revoke, &operator, "le lien a pu fuiter", now).await.unwrap();
    engine.send_due(now).await.unwrap();
    let mails = wait_for(a, "invitation", earlier.len() + 1).await;
    assert_eq!(mails.len(), earlier.len() + 1);
    let again = mails.last().unwrap();
    assert_ne!(token_in(again), token_in(&first));
    assert_eq!(store.mailbox_by_token(&token_in(again)).await.unwrap().as_deref(), Some(a.as_str()));
    assert_eq!(store.mailbox_by_token(&token_in(&first)).await.unwrap(), None, "the older link is revoked");
    let m = store.mailbox(&addr(a)).await.unwrap();
    let kinds: Vec<String> = store.timeline(m.id).await.unwrap().into_iter().map(|e| e.kind.to_string()).collect();
    assert!(kinds.contains(&"invitation_resent".to_owned()), "{kinds:?}");
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(waves_invite_their_mailboxes_exactly_once);

/// A whole campaign of `n` mailboxes over simulated weeks.
async fn a_whole_campaign(backend: TestBackend) {
    let (prefix, n) = if backend == TestBackend::Sqlite { (893, 200) } else { (894, 50) };
    let bounces = format!("bounces-{prefix}@bma.test");
    lab_addusers("legacy", std::slice::from_ref(&bounces), "secret-bounces");
    let mut addresses: Vec<String> = (1..=n).map(|i| format!("ec{prefix}{i:03}@adm.cfwb.be")).collect();
    lab_addusers("legacy", &addresses, "secret-campaign-test");
    // The last one's account on the new platform is broken (a system uid Dovecot refuses
    // mail access to): its presync fails.
    let no_target = addresses[n - 1].clone();
    lab_addusers("new", &addresses[..n - 1], "secret-campaign-test");
    lab_addusers_with("new", &addresses[n - 1..], "secret-campaign-test", &["uid=1"]);
    // A mailbox the legacy platform does not know: its mail 1 bounces.
    let bouncing = format!("ec{prefix}999@adm.cfwb.be");
    addresses.push(bouncing.clone());
    // A seeded mailbox with real content, for presync.
    let seed = lab_file("seed.json");
    let seeded = seed["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "regular")
        .map(|m| m["address"].as_str().unwrap().to_owned())
        // From the end (other tests read the first ones as seeded); one per
        // backend, since the two variants run at once.
        .rev()
        .nth(if backend == TestBackend::Sqlite { 0 } else { 1 })
        .unwrap();
    lab_addusers("new", std::slice::from_ref(&seeded), "secret-campaign-test");
    addresses.push(seeded.clone());

    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let t0 = datetime!(2024-04-01 09:00 UTC);
    let operator = Actor::Operator("test".into());
    // One mailbox is left out of the waves: it must be on the deadline list.
    let excluded = addresses[0].clone();
    let mut csv = String::from("address,name,usage\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},École de test {i},{}\n", 1_000_000 + i * 1000));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "test.csv", &Actor::System("import".into()), t0).await.unwrap();
    store
        .change_planning(&addr(&excluded), &bma_store::PlanningChange::Exclude(true), &operator, "test", t0)
        .await
        .unwrap();
    // The bouncing and the seeded mailboxes go first.
    for a in [&bouncing, &seeded] {
        store.change_planning(&addr(a), &bma_store::PlanningChange::Priority(10), &operator, "test", t0).await.unwrap();
    }
    let c = Settings::default().campaign;
    let rules = c.wave_rules().unwrap();
    let plan = plan_waves(&rules, c.start, &store.planning_candidates().await.unwrap()).unwrap();
    store.apply_wave_plan(&plan, &operator, t0).await.unwrap();
    store.change_campaign(CampaignAction::Start, &operator, "", t0).await.unwrap();
    let runner = engine(store.clone(), false, &bounces);

    // Managers answer: the first half of each wave three days after its mail 1.
    let mut answers: BTreeMap<time::Date, Vec<String>> = BTreeMap::new();
    for w in &plan.waves {
        let keep: Vec<String> =
            w.planned.iter().filter(|a| **a != bouncing).take(w.planned.len() / 2).cloned().collect();
        answers.insert(w.starts + Duration::days(3), keep);
    }
    let answered: Vec<String> = answers.values().flatten().cloned().collect();
    assert!(answered.contains(&seeded));

    let mut now = datetime!(2024-04-22 08:00 UTC);
    let mut bounce_seen = false;
    while now <= datetime!(2024-05-24 08:00 UTC) {
        if let Some(list) = answers.get(&now.date()) {
            for a in list {
                store
                    .transition(
                        &addr(a),
                        State::Enrolled,
                        &Actor::Manager("form".into()),
                        "form",
                        serde_json::json!({}),
                        now,
                    )
                    .await
                    .unwrap();
            }
        }
        let r = runner.step(now).await.unwrap();
        assert_eq!(r.send.dead + r.failed_jobs, 0, "{now}: {r:?}");
        if !bounce_seen {
            // The DSN of the first wave comes back through Postfix: let it arrive before the next step.
            let deadline = Instant::now() + StdDuration::from_secs(20);
            while Instant::now() < deadline {
                if lab_inbox("legacy", &bounces).await.iter().any(|b| {
                    String::from_utf8_lossy(b)
                        .contains(&format!("bounces-{prefix}+{}@bma.test", bouncing.replace('@', "=")))
                }) {
                    bounce_seen = true;
                    break;
                }
                tokio::time::sleep(StdDuration::from_millis(300)).await;
            }
            assert!(bounce_seen, "the DSN of {bouncing} reached the bounce mailbox");
        }
        now += Duration::days(1);
    }

    // The bounce was matched.
    let m = store.mailbox(&addr(&bouncing)).await.unwrap();
    assert_eq!(m.state, State::InvitationBounced);
    let bounce_event = store.timeline(m.id).await.unwrap().into_iter().last().unwrap();
    assert_eq!(bounce_event.to_state, Some(State::InvitationBounced));
    assert!(bounce_event.details["status"].as_str().unwrap().starts_with("5."), "{:?}", bounce_event.details);
    let attention = store.attention_list().await.unwrap();
    assert!(attention.iter().any(|a| a.address == bouncing && a.reason == "invitation_bounced"));

    // Every invitation arrived once; reminders only to those who did not
    // answer, one for each reminder day passed by the end (7 and 14 days).
    let end = datetime!(2024-05-24 08:00 UTC);
    let wave_of: BTreeMap<&str, time::Date> =
        plan.waves.iter().flat_map(|w| w.planned.iter().map(move |a| (a.as_str(), w.starts))).collect();
    // (Counted by this run's Message-IDs, each exactly once: a copy sent
    // twice would be there twice; earlier runs' emails do not count.)
    let settle = Instant::now() + StdDuration::from_secs(20);
    for a in addresses.iter().filter(|a| **a != bouncing && **a != excluded) {
        let reminder_days = [7, 14].iter().filter(|d| wave_of[a.as_str()] + Duration::days(**d) <= end.date()).count();
        let expected = if answered.contains(a) { 0 } else { reminder_days };
        let m = store.mailbox(&addr(a)).await.unwrap();
        let emails = store.emails_of(m.id).await.unwrap();
        let ids = |kind: &str| -> Vec<String> {
            emails.iter().filter(|e| e.kind == kind).map(|e| format!("Message-ID: <{}>", e.message_id)).collect()
        };
        let (invitation_ids, reminder_ids) = (ids("invitation"), ids("reminder"));
        assert_eq!((invitation_ids.len(), reminder_ids.len()), (1, expected), "{a}: emails queued");
        let (invitations, reminders) = loop {
            let bodies: Vec<String> = lab_inbox("legacy", a)
                .await
                .into_iter()
                .map(|b| String::from_utf8_lossy(&b).replace("=\r\n", ""))
                .collect();
            let of = |ids: &[String]| -> Vec<String> {
                bodies.iter().filter(|b| ids.iter().any(|id| b.contains(id.as_str()))).cloned().collect()
            };
            let (i, r) = (of(&invitation_ids), of(&reminder_ids));
            if (!i.is_empty() && r.len() >= expected) || Instant::now() > settle {
                break (i, r);
            }
            tokio::time::sleep(StdDuration::from_millis(300)).await;
        };
        assert_eq!(invitations.len(), 1, "{a}: exactly one invitation");
        assert_eq!(reminders.len(), expected, "{a}: reminders");
        for r in reminders.iter().chain(&invitations) {
            // Each reminder's own link opens the mailbox, and mail 1's still does.
            assert_eq!(store.mailbox_by_token(&token_in(r)).await.unwrap().as_deref(), Some(a.as_str()));
        }
    }

    // The deadline list: the excluded and the bounced mailboxes, sent once to the team.
    let list: Vec<String> = store.undelivered_invitations().await.unwrap().into_iter().map(|u| u.address).collect();
    let mut expected = vec![excluded.clone(), bouncing.clone()];
    expected.sort();
    assert_eq!(list, expected);
    // (The team mailbox is shared with other runs: ours is found by its Message-ID.)
    let events = store.campaign_events(1000).await.unwrap();
    let watch = events.iter().find(|e| e.kind == "deadline_watch").expect("a deadline_watch event");
    let id = format!("Message-ID: <{}>", watch.details["message_id"].as_str().unwrap());
    let deadline_mail = Instant::now() + StdDuration::from_secs(20);
    let ours_to_team = loop {
        let found: Vec<String> = lab_inbox("legacy", "migrationbma@bma.test")
            .await
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .filter(|b| b.contains(&id))
            .collect();
        if !found.is_empty() || Instant::now() > deadline_mail {
            break found;
        }
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    };
    assert_eq!(ours_to_team.len(), 1, "one deadline list");
    assert!(ours_to_team[0].contains(&excluded) && ours_to_team[0].contains(&bouncing), "{}", ours_to_team[0]);
    assert_eq!(store.outbox_counts().await.unwrap().get("dead"), None);

    // Cutover slots: every answered mailbox has one, in its window (3 to 12 weeks after mail 1).
    let rows = store.cutover_rows().await.unwrap();
    assert_eq!(rows.len(), answered.len());
    for r in &rows {
        assert_eq!(r.state, State::CutoverScheduled, "{}", r.address);
        let day = r.cutover_on.unwrap();
        let weeks = (day - r.invited_at.date()).whole_days();
        assert!((21..=84).contains(&weeks), "{}: cutover {day}, invited {}", r.address, r.invited_at);
        assert_eq!(day.weekday(), time::Weekday::Tuesday);
    }

    // Presync: one step with copies on; the seeded mailbox's mail reaches the new platform.
    let presync = engine(store.clone(), true, &bounces);
    let r = presync.step(now).await.unwrap();
    assert_eq!(r.failed_jobs, 1, "only the mailbox without a target account fails: {r:?}");
    assert!(r.presynced >= answered.len() - 1, "{r:?}");
    let legacy_inbox = lab_inbox("legacy", &seeded).await;
    let new_inbox = lab_inbox("new", &seeded).await;
    // Every legacy message is on the new platform, byte for byte (earlier runs may have left more there).
    let copied: std::collections::HashSet<&Vec<u8>> = new_inbox.iter().collect();
    let missing = legacy_inbox.iter().filter(|b| !copied.contains(b)).count();
    assert!(
        !legacy_inbox.is_empty() && missing == 0,
        "{seeded}: {missing} of {} INBOX messages not copied",
        legacy_inbox.len()
    );
    let m = store.mailbox(&addr(&seeded)).await.unwrap();
    let kinds: Vec<String> = store.timeline(m.id).await.unwrap().into_iter().map(|e| e.kind.to_string()).collect();
    assert!(kinds.contains(&"presync".to_owned()), "{kinds:?}");

    // The copy without a target account is retried at the next steps, then flagged for the operators.
    let mut flagged = false;
    for hour in 1..=3 {
        let r = engine(store.clone(), true, &bounces).step(now + Duration::hours(hour)).await.unwrap();
        flagged |= r.flagged > 0;
    }
    assert!(flagged, "the failed presync was flagged");
    let attention = store.attention_list().await.unwrap();
    assert!(attention.iter().any(|a| a.address == no_target && a.reason == "presync_failed"), "{attention:?}");

    // Twelve weeks after the first wave, its managers who never answered are flagged for the helpdesk.
    let first_wave: Vec<&String> = plan.waves[0].planned.iter().filter(|a| !answered.contains(a)).collect();
    let later = engine(store.clone(), false, &bounces).step(datetime!(2024-07-16 08:00 UTC)).await.unwrap();
    assert!(later.flagged >= first_wave.len() - 1, "{later:?}");
    let attention = store.attention_list().await.unwrap();
    for a in first_wave.iter().filter(|a| ***a != bouncing) {
        assert!(attention.iter().any(|x| x.address == **a && x.reason == "window_closed"), "{a}");
    }

    // The helpdesk sends mail 1 again: the bounced mailbox is invited again, its flag cleared;
    // a mailbox that answered is refused with the reason.
    let helpdesk = Actor::Operator("helpdesk".into());
    presync.resend_invitation(&bouncing, OlderLinks::Revoke, &helpdesk, "adresse corrigée", now).await.unwrap();
    assert_eq!(store.mailbox(&addr(&bouncing)).await.unwrap().state, State::Invited);
    assert!(!store.attention_list().await.unwrap().iter().any(|a| a.address == bouncing));
    let e = presync.resend_invitation(&seeded, OlderLinks::Revoke, &helpdesk, "oops", now).await.unwrap_err();
    assert!(e.to_string().contains(&seeded), "{e}");

    store.close().await;
    db.drop_db().await;
}

on_both_backends!(a_whole_campaign);
