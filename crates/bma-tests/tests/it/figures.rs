//! The campaign's figures (`bma-store`'s `figures`) on both backends: a
//! small campaign seeded through the store's own operations (import, wave
//! plan, mail 1, a bounce, forms and a correction, presyncs, an email
//! left unconfirmed, cutovers scheduled and one done), then every figure
//! of every day checked exactly, the waves × states, the planned
//! cutovers and the span of the activity.
//!
//! [`seed`] is shared with the dashboard's HTTP test (`dashboard.rs`),
//! which checks the same figures on the page.

use std::collections::BTreeMap;

use bma_core::lifecycle::{Actor, State};
use bma_core::planner::{PlannedWave, WavePlan};
use bma_core::{AddressRule, PresyncDetails, TokenHash, registry};
use bma_store::{
    CheckOutcome, DayCount, EnrollmentForm, ManagerIdentity, NewEmail, PlannedCutovers, Store, WaveStateCount,
};
use bma_tests::{TestBackend, TestDb, addr, on_both_backends};
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};

/// The mailboxes of the seed: (address, establishment).
pub(crate) const BOXES: [(&str, &str); 6] = [
    ("ec830001@adm.cfwb.be", "École communale des Figures 1"),
    ("ec830002@adm.cfwb.be", "École communale des Figures 2"),
    ("ec830003@adm.cfwb.be", "École communale des Figures 3"),
    ("ec830004@adm.cfwb.be", "École communale des Figures 4"),
    ("ec830005@adm.cfwb.be", "École communale des Figures 5"),
    ("po830006@adm.cfwb.be", "Pouvoir organisateur des Figures"),
];

/// The first wave (a Monday, the campaign's start) and the second.
pub(crate) const WAVE_1: Date = date!(2024 - 04 - 22);
pub(crate) const WAVE_2: Date = date!(2024 - 04 - 29);

fn email(mailbox_id: i64, kind: &str, key: &str, to: &str, at: OffsetDateTime) -> NewEmail {
    NewEmail {
        mailbox_id: Some(mailbox_id),
        kind: kind.into(),
        key: key.into(),
        recipient: to.into(),
        envelope_from: format!("bounces+{}@bma.test", to.replacen('@', "=", 1)),
        message_id: format!("{key}.{mailbox_id}@bma.test"),
        subject: format!("{kind} de test"),
        raw: format!("Subject: {kind}\r\nTo: {to}\r\n\r\ncorps\r\n"),
        run_at: at,
        max_attempts: 3,
    }
}

/// Marks sent every email due at `at`.
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

async fn form(store: &Store, address: &str, version: u32, at: OffsetDateTime) {
    let id = store.mailbox(&addr(address)).await.unwrap().id;
    let form = EnrollmentForm {
        family_name: "Dupont".into(),
        given_name: "Marie".into(),
        phone: "+3224133090".into(),
        role: "direction".into(),
        backup_email: "marie.dupont@example.org".into(),
        knows_password: true,
    };
    let identity = ManagerIdentity {
        subject: format!("sub-{address}"),
        name: "Marie Dupont".into(),
        given_name: "Marie".into(),
        family_name: "Dupont".into(),
        email: "marie.dupont@example.org".into(),
    };
    let key = format!("confirmation:{version}:{address}");
    let confirmation = email(id, "confirmation", &key, address, at);
    store.submit_enrollment(id, &form, &identity, &confirmation, None, at).await.unwrap();
}

pub(crate) async fn presync(store: &Store, address: &str, copied: u64, copied_bytes: u64, at: OffsetDateTime) {
    let figures = PresyncDetails { copied, copied_bytes, elapsed_ms: 10, folders: 2 };
    store.record_presync(&addr(address), &figures, &Actor::System("presync".into()), at).await.unwrap();
}

/// The seed, its days UTC (T0 is 2024-04-22 09:00 UTC):
/// - 04-15: six mailboxes imported;
/// - 04-16: five planned: 1–4 in the wave of 04-22, 5 in that of 04-29
///   (the organising authority in no wave);
/// - 04-22: mail 1 to 1–4, sent;
/// - 04-23: mail 1 of 4 bounced; forms of 1 and 2, their confirmations sent;
/// - 04-24: 2's form corrected (its confirmation sent); first full copies
///   of 1 (120 messages, 5,000,000 bytes) and 2 (10, 1,000);
/// - 04-25: a copy of 1 bringing 3 messages, 4,096 bytes; cutovers placed:
///   1 on 05-14, 2 on 05-21;
/// - 04-26: a reminder to 3 left unconfirmed (flagged for a human);
/// - 05-14: 1 cut over (migrating, then migrated).
pub(crate) async fn seed(store: &Store) {
    let t0 = datetime!(2024-04-22 09:00 UTC);
    let system = Actor::System("test".into());
    let mut csv = String::from("address,name\n");
    for (a, name) in BOXES {
        csv.push_str(&format!("{a},{name}\n"));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    store.apply_import(&rows, "registre.csv", &system, t0 - Duration::days(7)).await.unwrap();
    let plan = WavePlan {
        waves: vec![
            PlannedWave { starts: WAVE_1, invited: 0, planned: BOXES[..4].iter().map(|b| b.0.to_owned()).collect() },
            PlannedWave { starts: WAVE_2, invited: 0, planned: vec![BOXES[4].0.to_owned()] },
        ],
        excluded: 0,
        invited_elsewhere: 0,
    };
    store.apply_wave_plan(&plan, &Actor::Operator("test".into()), t0 - Duration::days(6)).await.unwrap();
    for (a, _) in &BOXES[..4] {
        let id = store.mailbox(&addr(a)).await.unwrap().id;
        let token = TokenHash::of(&bma_engine::new_token());
        let mail1 = email(id, "invitation", &format!("invitation:{a}"), a, t0);
        store.invite(&addr(a), &token, &mail1, &system, t0 - Duration::hours(1)).await.unwrap();
    }
    send_all(store, t0).await;

    let day2 = t0 + Duration::days(1);
    let bounce = serde_json::json!({ "status": "5.1.1", "message_id": "invitation:x" });
    store.record_bounce(&addr(BOXES[3].0), bounce, "mail 1 bounced", &system, day2).await.unwrap();
    form(store, BOXES[0].0, 1, day2).await;
    form(store, BOXES[1].0, 1, day2).await;
    send_all(store, day2 + Duration::minutes(1)).await;

    let day3 = t0 + Duration::days(2);
    form(store, BOXES[1].0, 2, day3 - Duration::hours(1)).await;
    send_all(store, day3 - Duration::minutes(30)).await;
    presync(store, BOXES[0].0, 120, 5_000_000, day3).await;
    presync(store, BOXES[1].0, 10, 1_000, day3).await;

    let day4 = t0 + Duration::days(3);
    presync(store, BOXES[0].0, 3, 4_096, day4).await;
    let planner = Actor::System("cutovers".into());
    assert!(store.schedule_cutover(&addr(BOXES[0].0), date!(2024 - 05 - 14), &planner, day4).await.unwrap());
    assert!(store.schedule_cutover(&addr(BOXES[1].0), date!(2024 - 05 - 21), &planner, day4).await.unwrap());

    let day5 = t0 + Duration::days(4);
    let id3 = store.mailbox(&addr(BOXES[2].0)).await.unwrap().id;
    let reminder = email(id3, "reminder", &format!("reminder:1:{}", BOXES[2].0), BOXES[2].0, day5);
    store.queue_email(&reminder, day5).await.unwrap();
    let claimed = store.claim_emails("test", day5, Duration::minutes(5), 20).await.unwrap();
    assert_eq!(claimed.len(), 1, "the reminder alone is due");
    let outcome = store.check_again(claimed[0].id, "test", "still queued", day5, 0, day5).await.unwrap();
    assert_eq!(outcome, CheckOutcome::Human);

    let cut = datetime!(2024-05-14 08:00 UTC);
    let switch = Actor::System("cutover".into());
    let first = addr(BOXES[0].0);
    store.transition(&first, State::Migrating, &switch, "cutover", serde_json::json!({}), cut).await.unwrap();
    let done = cut + Duration::hours(1);
    store.transition(&first, State::Migrated, &switch, "cutover done", serde_json::json!({}), done).await.unwrap();
}

/// The figures the seed must give for `day` (zeros elsewhere).
pub(crate) fn expected_day(day: Date) -> DayCount {
    let mut d = DayCount::empty(day);
    let entered = |pairs: &[(State, u64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
    match day.to_string().as_str() {
        "2024-04-15" => d.entered = entered(&[(State::Imported, 6)]),
        "2024-04-16" => d.entered = entered(&[(State::Scheduled, 5)]),
        "2024-04-22" => {
            d.emails_sent = 4;
            d.entered = entered(&[(State::Invited, 4)]);
        }
        "2024-04-23" => {
            d.emails_sent = 2;
            d.emails_bounced = 1;
            d.forms_received = 2;
            d.entered = entered(&[(State::InvitationBounced, 1), (State::Enrolled, 2)]);
        }
        "2024-04-24" => {
            d.emails_sent = 1;
            d.forms_corrected = 1;
            d.presync_messages = 130;
            d.presync_bytes = 5_001_000;
            d.entered = entered(&[(State::Presynced, 2)]);
        }
        "2024-04-25" => {
            d.presync_messages = 3;
            d.presync_bytes = 4_096;
            d.entered = entered(&[(State::CutoverScheduled, 2)]);
        }
        "2024-04-26" => d.emails_uncertain = 1,
        "2024-05-14" => {
            d.cutovers = 1;
            d.entered = entered(&[(State::Migrating, 1), (State::Migrated, 1)]);
        }
        _ => {}
    }
    d
}

async fn every_day_counted(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    seed(&store).await;

    let (from, to) = (date!(2024 - 04 - 14), date!(2024 - 05 - 15));
    let days = store.day_counts(from, to).await.unwrap();
    assert_eq!(days.len(), 32, "one row per day, both ends included");
    for d in &days {
        assert_eq!(d, &expected_day(d.day), "{}", d.day);
    }
    // One day alone (the daily report's question), and a range that ends
    // before it starts.
    assert_eq!(
        store.day_counts(date!(2024 - 04 - 23), date!(2024 - 04 - 23)).await.unwrap(),
        vec![expected_day(date!(2024 - 04 - 23))]
    );
    assert!(store.day_counts(to, from).await.unwrap().is_empty());
    assert_eq!(store.activity_span().await.unwrap(), Some((date!(2024 - 04 - 15), date!(2024 - 05 - 14))));

    let waves = store.wave_state_counts().await.unwrap();
    let c = |wave, state, count| WaveStateCount { wave, state, count };
    assert_eq!(
        waves,
        vec![
            c(None, State::Imported, 1),
            c(Some(WAVE_1), State::Invited, 1),
            c(Some(WAVE_1), State::InvitationBounced, 1),
            c(Some(WAVE_1), State::CutoverScheduled, 1),
            c(Some(WAVE_1), State::Migrated, 1),
            c(Some(WAVE_2), State::Scheduled, 1),
        ]
    );
    assert_eq!(
        store.planned_cutovers().await.unwrap(),
        vec![PlannedCutovers { day: date!(2024 - 05 - 21), count: 1, bytes: 0 }]
    );
    db.drop_db().await;
}

async fn an_empty_store(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let days = store.day_counts(date!(2024 - 04 - 22), date!(2024 - 04 - 28)).await.unwrap();
    assert_eq!(days.len(), 7);
    assert!(days.iter().all(|d| *d == DayCount::empty(d.day)));
    assert_eq!(store.activity_span().await.unwrap(), None);
    assert!(store.wave_state_counts().await.unwrap().is_empty());
    assert!(store.planned_cutovers().await.unwrap().is_empty());
    db.drop_db().await;
}

on_both_backends!(every_day_counted, an_empty_store);
