//! The campaign's emails through the lab's real Postfix: mail 1 rendered
//! from the French template, sent with a VERP return path, found in the
//! legacy mailbox over IMAP; a message to an unknown BMA bounces back to
//! the VERP address and names its mailbox.
//!
//! Needs `cargo xtask lab up && cargo xtask lab seed`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bma_imap::{Auth, Client, Config, MailboxName, Secret, Security, UidSet};
use bma_mail::message::{build, parse_verp};
use bma_mail::{TemplateKind, Templates, verp};
use bma_tests::engine::lab_smtp;
use serde_json::Value;

fn lab() -> Value {
    bma_tests::lab_file("lab.json")
}

/// A legacy BMA of the test's own (seeded mailboxes stay as the manifest says).
fn own_bma(local: &str) -> String {
    let address = format!("{local}@adm.cfwb.be");
    bma_tests::lab_adduser("legacy", &address, "secret-mail-test");
    address
}

fn unique() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("{nanos:x}.{}", std::process::id())
}

/// Waits (bounded) for a message containing `needle` in `user`'s INBOX, via the master user.
async fn wait_for(lab: &Value, user: &str, needle: &str) -> Vec<u8> {
    let config = Config::new(
        lab["legacy"]["host"].as_str().expect("host"),
        lab["legacy"]["imap_port"].as_u64().expect("port") as u16,
    )
    .with_security(Security::None);
    let auth = Auth::Plain {
        authzid: Some(user.to_owned()),
        authcid: lab["master_user"].as_str().expect("master").to_owned(),
        password: Secret::new(lab["master_password"].as_str().expect("password")),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = Client::connect(&config).await.expect("connect");
        c.login(&auth).await.expect("login");
        c.select(&MailboxName::new("INBOX")).await.expect("select");
        let mut found = None;
        {
            let mut bodies = c.fetch_bodies(&UidSet::all()).await.expect("fetch");
            while let Some(m) = bodies.next().await.expect("message") {
                if m.body.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found = Some(m.body);
                }
            }
        }
        let _ = c.logout().await;
        if let Some(body) = found {
            return body;
        }
        assert!(Instant::now() < deadline, "no message with {needle} reached {user} within 20 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn context(address: &str) -> Value {
    serde_json::json!({
        "name": "École fondamentale de Namur", "address": address,
        "form_link": format!("http://127.0.0.1:8080/formulaire/{}", unique()), "reply_by": "13 mai 2024",
        "quota_multiplier": 25, "cutover_min_weeks": 3, "cutover_max_weeks": 12,
        "contact": { "name": "Équipe migration du SGNE", "email": "migrationbma@cfwb.be", "phone": "+32 (0)2 413.3090" },
        "sender_name": "Service général du Numérique éducatif (SGNE)",
        "faq_url": "https://www.enseignement.be/bma", "login_domain": "127.0.0.1",
        "forwarding": { "targets": [], "computed": false },
    })
}

#[tokio::test]
async fn mail_1_reaches_the_legacy_mailbox_with_its_verp_return_path() {
    let lab = lab();
    let to = own_bma("ec899001");
    let ctx = context(&to);
    let rendered = Templates::load(None).unwrap().render(TemplateKind::Invitation, &ctx).unwrap();
    let id = format!("invitation.{}@bma.test", unique());
    let return_path = verp("bounces@bma.test", &to);
    let email = build("SGNE", "migrationbma@bma.test", &to, &rendered, &id, &return_path).unwrap();
    lab_smtp().send(&email).await.expect("relay accepts");
    let body = String::from_utf8_lossy(&wait_for(&lab, &to, &id).await).into_owned();
    assert!(body.contains(&format!("Return-Path: <{return_path}>")), "{body}");
    assert!(body.contains("multipart/alternative"));
    // The subject is encoded (accents); the link is in the text part as is.
    let token = ctx["form_link"].as_str().unwrap().rsplit('/').next().unwrap();
    assert!(body.contains(token), "{body}");
}

#[tokio::test]
async fn an_unknown_bma_bounces_to_its_verp_address() {
    let lab = lab();
    let to = "ec999998@adm.cfwb.be";
    let rendered = Templates::load(None).unwrap().render(TemplateKind::Invitation, &context(to)).unwrap();
    let id = format!("bounce.{}@bma.test", unique());
    let return_path = verp("bounces@bma.test", to);
    let email = build("SGNE", "migrationbma@bma.test", to, &rendered, &id, &return_path).unwrap();
    lab_smtp().send(&email).await.expect("relay accepts, then bounces");
    let dsn = String::from_utf8_lossy(&wait_for(&lab, "bounces@bma.test", &id).await).into_owned();
    assert!(dsn.contains("multipart/report"), "a delivery status notification:\n{dsn}");
    assert!(dsn.contains(&format!("Delivered-To: {return_path}")) || dsn.contains(&return_path), "{dsn}");
    assert_eq!(parse_verp("bounces@bma.test", &return_path).as_deref(), Some(to));
    assert!(dsn.contains("Status: 5."), "a permanent failure:\n{dsn}");
}
