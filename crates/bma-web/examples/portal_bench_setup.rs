//! Prepares a store for `cargo xtask bench portal`: `n` invited mailboxes
//! (the FAQ's scale), one of them enrolled with a logged-in session, as the
//! portal would leave them. Prints one JSON line: the link token of an
//! invited mailbox (the link page), the token of the enrolled one and the
//! session cookie's value (its status page).
//!
//! Usage: `portal_bench_setup DATABASE_URL N`.

use bma_core::lifecycle::{Actor, State};
use bma_core::{AddressRule, registry};
use bma_store::{EnrollmentForm, ManagerIdentity, NewEmail, Store};
use time::{Duration, OffsetDateTime};

fn email(mailbox_id: i64, kind: &str, to: &str, now: OffsetDateTime) -> NewEmail {
    NewEmail {
        mailbox_id: Some(mailbox_id),
        kind: kind.to_owned(),
        key: format!("{kind}:{to}"),
        recipient: to.to_owned(),
        envelope_from: "bounces@bma.test".to_owned(),
        message_id: format!("{kind}.{mailbox_id}@bma.test"),
        subject: kind.to_owned(),
        raw: format!("Subject: {kind}\r\n\r\nbench\r\n"),
        run_at: now,
        max_attempts: 1,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, n) = match args.as_slice() {
        [_, url, n] => (url.clone(), n.parse::<usize>()?),
        _ => return Err("usage: portal_bench_setup DATABASE_URL N".into()),
    };
    let store = Store::open(&url).await?;
    let now = OffsetDateTime::now_utc();
    let mut csv = String::from("address,name\n");
    for i in 0..n {
        csv.push_str(&format!("ec{:06}@adm.cfwb.be,École {i}\n", 300_000 + i));
    }
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default())?.rows;
    let actor = Actor::System("bench".into());
    store.apply_import(&rows, "bench.csv", &actor, now).await?;
    let mut tokens = Vec::with_capacity(n);
    for row in &rows {
        let address = row.address.to_string();
        store.transition(&row.address, State::Scheduled, &actor, "bench", serde_json::json!({}), now).await?;
        let token = bma_web::session::random_token();
        let id = store.mailbox(&row.address).await?.id;
        let mail1 = email(id, "invitation", &address, now);
        store.invite(&row.address, &bma_core::TokenHash::of(&token), &mail1, &actor, now).await?;
        tokens.push((id, address, token));
    }
    let (id, address, enrolled) = tokens[n / 2].clone();
    let identity = ManagerIdentity {
        subject: "cerbere-0001".into(),
        name: "Marie Dupont".into(),
        given_name: "Marie".into(),
        family_name: "Dupont".into(),
        email: "marie.dupont@ecole.test".into(),
    };
    let form = EnrollmentForm {
        family_name: "Dupont".into(),
        given_name: "Marie".into(),
        phone: "+3224133090".into(),
        role: "direction".into(),
        backup_email: "marie.perso@ecole.test".into(),
        knows_password: true,
    };
    store.submit_enrollment(id, &form, &identity, &email(id, "confirmation", &address, now), None, now).await?;
    let session = bma_web::session::random_token();
    store
        .login_session(
            None,
            &bma_core::TokenHash::of(&session),
            &bma_web::session::random_token(),
            &identity,
            now + Duration::hours(2),
            now,
        )
        .await?;
    println!("{}", serde_json::json!({ "link_token": tokens[0].2, "status_token": enrolled, "session": session }));
    store.close().await;
    Ok(())
}
