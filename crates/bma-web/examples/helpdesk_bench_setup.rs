//! Prepares a store for `cargo xtask bench helpdesk`: `n` mailboxes (the
//! FAQ's scale) with full histories, written through the store's own
//! operations (the ones the engine and the CLI call), on a campaign clock
//! that starts 80 days ago:
//!
//! - the registry imported, the waves planned (`apply_wave_plan`), every
//!   mailbox invited on its wave's day, mail 1 sent (claimed and marked
//!   sent as the outbox's sender does); one in a hundred bounced;
//! - a reminder to two in three, sent;
//! - a form from four in five, by one of 20 × 20 managers (so "dupont
//!   marie" finds a few), its backup address verified for most, and a
//!   second version of the form from one in two of those;
//! - presync records (two for some) for the enrolled;
//! - one in five cut over (scheduled, every step, mail 2, receipt,
//!   migrated);
//! - a call note on one in three.
//!
//! Then a logged-in staff session (role agent) as the console's login
//! leaves it. Prints one JSON line: the session cookie's value, its CSRF
//! token, the address of a mailbox with the fullest history (the mailbox
//! page) and a search query that finds several managers.
//!
//! Usage: `helpdesk_bench_setup DATABASE_URL N`.

use bma_core::lifecycle::Actor;
use bma_core::planner::{WaveRules, plan_waves};
use bma_core::staff::Role;
use bma_core::switch::Step;
use bma_core::{Address, AddressRule, PresyncDetails, TokenHash, registry};
use bma_store::{
    BackupVerificationRequest, EnrollmentForm, InviteOutcome, ManagerIdentity, NewEmail, StaffIdentity, StaffLogin,
    StepDone, Store,
};
use time::{Duration, OffsetDateTime};

const FAMILY: [&str; 20] = [
    "Dupont", "Martin", "Lambert", "Dubois", "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes",
    "Goossens", "Wouters", "De Smet", "Laurent", "Leroy", "Simon", "Renard", "Lejeune", "Hermans",
];
const GIVEN: [&str; 20] = [
    "Marie",
    "Anne",
    "Sophie",
    "Nathalie",
    "Isabelle",
    "Véronique",
    "Catherine",
    "Christine",
    "Françoise",
    "Hélène",
    "Jean",
    "Pierre",
    "Michel",
    "Philippe",
    "Luc",
    "Marc",
    "André",
    "Éric",
    "Benoît",
    "Thierry",
];
const SCHOOLS: [&str; 6] = [
    "École fondamentale communale",
    "Athénée royal",
    "Institut Saint-Joseph",
    "École primaire libre Sainte-Marie",
    "Lycée provincial",
    "Centre psycho-médico-social",
];
const TOWNS: [&str; 8] = ["Namur", "Liège", "Mons", "Charleroi", "Bruxelles", "Arlon", "Wavre", "Tournai"];

fn email(mailbox_id: i64, kind: &str, key: &str, to: &str, run_at: OffsetDateTime) -> NewEmail {
    NewEmail {
        mailbox_id: Some(mailbox_id),
        kind: kind.to_owned(),
        key: key.to_owned(),
        recipient: to.to_owned(),
        envelope_from: "bounces@bma.test".to_owned(),
        message_id: format!("{}@bma.test", key.replace([':', '@'], ".")),
        subject: format!("BMA : {kind}"),
        raw: format!("Subject: {kind}\r\nMessage-ID: <{key}>\r\n\r\nbench\r\n"),
        run_at,
        max_attempts: 5,
    }
}

/// Sends what the outbox has due by `now`, as the sender does after the
/// relay accepted each email.
async fn send_due(store: &Store, now: OffsetDateTime) -> Result<usize, bma_store::StoreError> {
    let mut sent = 0;
    loop {
        let claimed = store.claim_emails("bench", now, Duration::minutes(5), 500).await?;
        if claimed.is_empty() {
            return Ok(sent);
        }
        for e in claimed {
            store.mark_sent(e.id, "bench", now).await?;
            sent += 1;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, n) = match args.as_slice() {
        [_, url, n] => (url.clone(), n.parse::<usize>()?),
        _ => return Err("usage: helpdesk_bench_setup DATABASE_URL N".into()),
    };
    let store = Store::open(&url).await?;
    let real_now = OffsetDateTime::now_utc();
    let t0 = real_now - Duration::days(80);
    let system = Actor::System("bench".into());
    let operator = Actor::Operator("console:operateur.sgne@cfwb.test".into());

    // The registry.
    let mut csv = String::from("address,name\n");
    for i in 0..n {
        let school = SCHOOLS[i % SCHOOLS.len()];
        let town = TOWNS[(i / SCHOOLS.len()) % TOWNS.len()];
        let kind = if i % 7 == 0 { "po" } else { "ec" };
        csv.push_str(&format!("{kind}{:06}@adm.cfwb.be,{school} de {town} n° {i}\n", 300_000 + i));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default())?.rows;
    store.apply_import(&rows, "registre.csv", &operator, t0).await?;

    // The waves, as `bma plan --apply` plans them.
    let start = (t0 + Duration::days(1)).date();
    let rules = WaveRules { start, deadline: start + Duration::days(32), weekday: start.weekday(), capacity: None };
    let plan =
        plan_waves(&rules, start, &store.planning_candidates().await?).map_err(|r| format!("{:?}", r.problems))?;
    store.apply_wave_plan(&plan, &operator, t0).await?;

    // Mail 1 on each wave's day, sent.
    let index: std::collections::HashMap<String, usize> =
        rows.iter().enumerate().map(|(i, r)| (r.address.to_string(), i)).collect();
    let mut mailboxes: Vec<(usize, Address, i64, OffsetDateTime)> = Vec::with_capacity(n);
    for wave in &plan.waves {
        let day = wave.starts.with_hms(8, 0, 0)?.assume_utc();
        for a in &wave.planned {
            let address = Address::parse(a, &AddressRule::default())?;
            let id = store.mailbox(&address).await?.id;
            let token = bma_web::session::random_token();
            let mail1 = email(id, "invitation", &format!("invitation:{a}"), a, day);
            if let InviteOutcome::Invited(_) =
                store.invite(&address, &TokenHash::of(&token), &mail1, &system, day).await?
            {
                mailboxes.push((index[a.as_str()], address, id, day));
            }
        }
        send_due(&store, day + Duration::minutes(5)).await?;
    }
    mailboxes.sort_by_key(|m| m.0);

    for (i, address, id, invited) in &mailboxes {
        let (i, id, invited) = (*i, *id, *invited);
        let a = address.as_str();
        if i % 100 == 99 {
            let details = serde_json::json!({ "message_id": format!("invitation.{}@bma.test", a.replace('@', ".")), "status": "5.2.2" });
            store.record_bounce(address, details, "mailbox full", &system, invited + Duration::hours(1)).await?;
            continue;
        }
        // A reminder a week later for two in three.
        let reminded = invited + Duration::days(7);
        if i % 3 != 0 {
            let token = bma_web::session::random_token();
            let reminder = email(id, "reminder", &format!("reminder:1:{a}"), a, reminded);
            store.remind(address, 1, &TokenHash::of(&token), &reminder, &system, reminded).await?;
            send_due(&store, reminded + Duration::minutes(5)).await?;
        }
        if i % 5 == 4 {
            continue;
        }
        // The form, by one of 400 managers.
        let (family, given) = (FAMILY[i % FAMILY.len()], GIVEN[(i / FAMILY.len()) % GIVEN.len()]);
        let login = format!("{}.{}", given.to_lowercase(), family.to_lowercase().replace(' ', ""));
        let identity = ManagerIdentity {
            subject: format!("cerbere-{i:05}"),
            name: format!("{given} {family}"),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            email: format!("{login}@ecole.test"),
        };
        let backup = format!("{login}.{i}@perso.test");
        let mut form = EnrollmentForm {
            family_name: family.to_owned(),
            given_name: given.to_owned(),
            phone: format!("+32 2 413 {:04}", i % 10_000),
            role: if i % 2 == 0 { "direction" } else { "secretariat" }.to_owned(),
            backup_email: backup.clone(),
            knows_password: i % 11 != 0,
        };
        let submitted = reminded + Duration::days(1 + (i % 5) as i64);
        let code = bma_web::session::random_token();
        let verification = BackupVerificationRequest {
            code_hash: TokenHash::of(&code),
            email: email(id, "backup_verification", &format!("verify:{a}:1"), &backup, submitted),
            expires_at: submitted + Duration::days(7),
        };
        let confirmation = email(id, "confirmation", &format!("confirmation:{a}:1"), a, submitted);
        store.submit_enrollment(id, &form, &identity, &confirmation, Some(&verification), submitted).await?;
        send_due(&store, submitted + Duration::minutes(5)).await?;
        if i % 6 != 0 {
            store.verify_backup(&TokenHash::of(&code), submitted + Duration::hours(2)).await?;
        }
        // The first copy, then a second for some.
        let copied = submitted + Duration::days(2);
        let figures = |k: u64| PresyncDetails {
            copied: 1_000 + (i as u64 % 900) * k,
            copied_bytes: 50_000_000 + (i as u64 % 1_000) * 97_000 * k,
            elapsed_ms: 40_000 + (i as u64 % 100) * 300,
            folders: 6 + i % 9,
        };
        store.record_presync(address, &figures(1), &system, copied).await?;
        if i % 2 == 0 {
            // A correction of the form (same backup address).
            form.phone = format!("+32 4 {:03} {:04}", i % 1_000, (i * 7) % 10_000);
            let corrected = copied + Duration::days(1);
            let confirmation = email(id, "confirmation", &format!("confirmation:{a}:2"), a, corrected);
            store.submit_enrollment(id, &form, &identity, &confirmation, None, corrected).await?;
            send_due(&store, corrected + Duration::minutes(5)).await?;
            store.record_presync(address, &figures(2), &system, corrected + Duration::days(1)).await?;
        }
        if i % 3 == 1 {
            let at = copied + Duration::days(3);
            store.note_call(address, &operator, "le gestionnaire demande quand la bascule aura lieu", at).await?;
        }
        // One in five cut over, every step.
        if i % 5 == 1 {
            let day = (copied + Duration::days(10)).date();
            let at = day.with_hms(6, 0, 0)?.assume_utc();
            store.schedule_cutover(address, day, &operator, at - Duration::days(7)).await?;
            store.start_switch(address, serde_json::json!({ "legacy": "ok", "new": "ok" }), &system, at).await?;
            let none: &[NewEmail] = &[];
            for (k, step) in [Step::Provision, Step::Hold, Step::FinalCopy].into_iter().enumerate() {
                let details = serde_json::json!({ "step": step.as_str(), "ms": 1_200 + k * 300 });
                let done = StepDone { step, details: &details, emails: none, sent: none, link: None };
                store.record_step(address, done, &system, at + Duration::minutes(k as i64)).await?;
            }
            let receipt = serde_json::json!({
                "messages": 2_000 + i % 900, "bytes": 100_000_000 + i * 97_000,
                "folders": ["INBOX", "Sent", "Drafts", "Trash", "Archives"], "missing": 0,
            });
            let details = serde_json::json!({ "step": "verify", "receipt": receipt });
            let done = StepDone { step: Step::Verify, details: &details, emails: none, sent: none, link: None };
            store.record_step(address, done, &system, at + Duration::minutes(4)).await?;
            let mail2 = [
                email(id, "migrated", &format!("migrated:{a}"), a, at + Duration::minutes(5)),
                email(id, "migrated", &format!("migrated:{a}:backup"), &backup, at + Duration::minutes(5)),
            ];
            let details = serde_json::json!({ "step": "mail2" });
            let done = StepDone { step: Step::Mail2, details: &details, emails: &mail2, sent: none, link: None };
            store.record_step(address, done, &system, at + Duration::minutes(5)).await?;
            send_due(&store, at + Duration::minutes(6)).await?;
            let details = serde_json::json!({ "step": "route" });
            let done = StepDone { step: Step::Route, details: &details, emails: none, sent: none, link: None };
            store.record_step(address, done, &system, at + Duration::minutes(7)).await?;
            let last = serde_json::json!({ "step": "post_copy", "copied": 3 });
            store.finish_switch(address, last, receipt, &system, at + Duration::minutes(8)).await?;
        }
    }

    // The page measured: a mailbox with every part of the story (i % 30 ==
    // 16: reminded, two versions of the form, backup verified, two copies,
    // a call note, cut over).
    let fullest = mailboxes.iter().find(|m| m.0 % 30 == 16).ok_or("no mailbox with a full history")?;

    // An agent logged in, as the console's login leaves it.
    let (pending, session, csrf) =
        (bma_web::session::random_token(), bma_web::session::random_token(), bma_web::session::random_token());
    let expires = real_now + Duration::hours(10);
    store.create_staff_session(&TokenHash::of(&pending), "login-csrf", "pending", expires, real_now).await?;
    let who = StaffIdentity {
        subject: "agent-0001".into(),
        name: "Hugo Petit".into(),
        email: "agent.helpdesk@cfwb.test".into(),
        role: Role::Agent,
    };
    let login = StaffLogin {
        old_id_hash: &TokenHash::of(&pending),
        new_id_hash: &TokenHash::of(&session),
        csrf: &csrf,
        staff: &who,
        id_token: None,
        expires_at: expires,
    };
    store.login_staff_session(&login, real_now).await?;
    let events = store.latest_event_id().await?;
    println!(
        "{}",
        serde_json::json!({
            "session": session, "csrf": csrf, "address": fullest.1.as_str(),
            "query": "dupont marie", "mailboxes": n, "events": events,
        })
    );
    store.close().await;
    Ok(())
}
