//! Every link ever sent works, in a real browser (issue 10, "Links" and
//! "Emails a school can trust"): `bma campaign tick` sends mail 1 and a
//! reminder through the lab's Postfix into the legacy mailbox; the test
//! reads the reminder over IMAP (its raw header and both parts), follows
//! its link in headless Chromium, logs in at the lab's OpenID Connect
//! provider and reaches the form. Then `bma mailbox resend`: the resent
//! link works and the older ones are refused; with `--keep-old-links` they
//! are kept. And migration 12 on a store made before it (both backends):
//! mail 1's link, moved to `form_tokens`, keeps working.
//!
//! Needs `cargo xtask lab up` (chromium and chromium-driver from `cargo
//! xtask lab install`) and `cargo build -p bma`.

use std::time::{Duration, Instant};

use bma_mail::inspect;
use bma_tests::browser::{Browser, free_port, free_portal_port, portal_env, start_chromedriver, start_portal};
use bma_tests::{addr, bma_with, lab_adduser, lab_inbox};
use serde_json::json;

/// The raw messages of `user`'s legacy INBOX whose Message-ID starts with `kind.`.
async fn ours(user: &str, kind: &str) -> Vec<Vec<u8>> {
    lab_inbox("legacy", user)
        .await
        .into_iter()
        .filter(|m| inspect::header_value(m, "Message-ID").is_some_and(|id| id.starts_with(&format!("<{kind}."))))
        .collect()
}

/// Waits until `user` holds more than `before` emails of `kind`; the newest.
async fn wait_mail(user: &str, kind: &str, before: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mails = ours(user, kind).await;
        if mails.len() > before {
            return mails.last().unwrap().clone();
        }
        assert!(Instant::now() < deadline, "no new {kind} for {user}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The first `<base>/formulaire/<token>` link in `text`.
fn link_in(text: &str, base: &str) -> String {
    let at = text.find(&format!("{base}/formulaire/")).unwrap_or_else(|| panic!("no link in {text}"));
    text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || ":/._-".contains(*c)).collect()
}

/// The status of GET `url`, redirects not followed.
async fn status_of(url: &str) -> u16 {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_link_and_a_resent_link_open_the_form_in_a_browser() {
    // A port registered at the provider (shared with portal_e2e by picking
    // a free one); the driver's, anywhere else.
    let port = free_portal_port(7);
    let driver_port = free_port(19600..=19699, 7);
    let address = format!("ec87{:04}@adm.cfwb.be", std::process::id() % 10_000);
    lab_adduser("legacy", &address, "secret-links");
    let base = format!("http://127.0.0.1:{port}");

    let dir = tempfile::tempdir().unwrap();
    let mut env = portal_env(dir.path(), &base);
    // The emails are sent on the campaign's clock (2024); the portal
    // runs on the wall clock: keep the links valid today.
    env.push(("BMA_CAMPAIGN_END".to_owned(), "2099-12-31".to_owned()));

    // Mail 1 on the wave's day, the first reminder a week later, for real.
    let (mail1_before, reminders_before) =
        (ours(&address, "invitation").await.len(), ours(&address, "reminder").await.len());
    std::fs::write(dir.path().join("registre.csv"), format!("adresse;nom\n{address};École fondamentale du Parc\n"))
        .unwrap();
    bma_with(dir.path(), &env, &["import", "mailboxes", "registre.csv"]);
    bma_with(dir.path(), &env, &["plan", "--apply", "--as", "links"]);
    bma_with(dir.path(), &env, &["campaign", "start", "--at", "2024-04-22T07:00:00Z", "--as", "links"]);
    bma_with(dir.path(), &env, &["campaign", "tick", "--at", "2024-04-22T08:00:00Z"]);
    let mail1 = wait_mail(&address, "invitation", mail1_before).await;
    bma_with(dir.path(), &env, &["campaign", "tick", "--at", "2024-04-29T08:00:00Z"]);
    let reminder = wait_mail(&address, "reminder", reminders_before).await;

    // The reminder as the school receives it: our display name (the default one, with its
    // parentheses, used to be dropped), both parts, the same deadline as mail 1.
    let from = inspect::header_value(&reminder, "From").unwrap();
    assert_eq!(
        from.replace('"', ""),
        "Service général du Numérique éducatif (SGNE) <migrationbma@cfwb.be>",
        "the display name is kept"
    );
    assert_ne!(inspect::header_raw(&reminder, "From").unwrap(), "migrationbma@cfwb.be");
    let subject = inspect::header_value(&reminder, "Subject").unwrap();
    assert!(subject.contains(&address) && subject.contains("avant le 6 mai 2024"), "{subject}");
    let text = inspect::part(&reminder, "text/plain").expect("a text part");
    let html = inspect::part(&reminder, "text/html").expect("an HTML part: reminders are multipart like mail 1");
    let html_shown = html.replace("&#x2f;", "/").replace("&#x27;", "'");
    let link = link_in(&text, &base);
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for part in [words(&text), words(&html_shown)] {
        for needle in [
            link.as_str(),
            "127.0.0.1",
            "nous ne vous demanderons jamais le mot de passe de votre BMA",
            "https://www.enseignement.be/bma",
            "de l'établissement École fondamentale du Parc",
            "avant le 6 mai 2024",
        ] {
            assert!(part.contains(needle), "no {needle:?} in {part}");
        }
    }
    let mail1_text = inspect::part(&mail1, "text/plain").unwrap();
    assert!(words(&mail1_text).contains("avant le 6 mai 2024"), "one deadline throughout: {mail1_text}");
    let mail1_link = link_in(&mail1_text, &base);
    assert_ne!(mail1_link, link, "each reminder carries a link of its own");

    // The portal and the browser.
    let mut serve = start_portal(dir.path(), &env, port).await;
    let (mut driver, driver_url) = start_chromedriver(driver_port).await;
    let b = Browser::start(&driver_url).await;

    // The reminder's link, Cerbère EDU, back to the form.
    b.goto(&link).await;
    assert_eq!(b.count("#bma").await, 1, "the reminder's link opens its page: {}", b.source().await);
    assert_eq!(b.text("#bma").await, address);
    b.click("#connexion").await;
    b.provider_login("the provider's login page", "directeur.lejeune").await;
    b.wait_url("back on the reminder's link after login", |u| u == link).await;
    assert_eq!(b.count("#nom").await, 1, "the form: {}", b.source().await);
    assert_eq!(status_of(&mail1_link).await, 200, "mail 1's link still works");

    // Resent because the link may have leaked: the new link works, the older ones no longer do.
    let mut env_now = env.clone();
    env_now.push(("BMA_NOW".to_owned(), "2024-04-30T09:00:00Z".to_owned()));
    let before = ours(&address, "invitation").await.len();
    let out = bma_with(dir.path(), &env_now, &["mailbox", "resend", &address, "--reason", "lien transféré par erreur"]);
    assert!(out.contains("no longer work"), "{out}");
    bma_with(dir.path(), &env, &["campaign", "tick", "--at", "2024-04-30T09:00:00Z"]);
    let resent = wait_mail(&address, "invitation", before).await;
    let resent_link = link_in(&inspect::part(&resent, "text/plain").unwrap(), &base);
    b.goto(&resent_link).await;
    // (Still logged in: straight to the form.)
    assert_eq!(b.count("#nom").await, 1, "the form through the resent link: {}", b.source().await);
    assert!(b.source().await.contains(&address));
    for old in [&mail1_link, &link] {
        assert_eq!(status_of(old).await, 404, "{old} is revoked");
    }
    b.goto(&link).await;
    assert!(b.source().await.contains("Ce lien n'est pas valide"), "the browser is refused on the old link");

    // Resent again, keeping the older links (the manager only lost the email).
    env_now.push(("BMA_NOW".to_owned(), "2024-04-30T10:00:00Z".to_owned()));
    let before = ours(&address, "invitation").await.len();
    let out = bma_with(
        dir.path(),
        &env_now,
        &["mailbox", "resend", &address, "--reason", "email supprimé", "--keep-old-links"],
    );
    assert!(out.contains("still work"), "{out}");
    bma_with(dir.path(), &env, &["campaign", "tick", "--at", "2024-04-30T10:00:00Z"]);
    let again = wait_mail(&address, "invitation", before).await;
    let again_link = link_in(&inspect::part(&again, "text/plain").unwrap(), &base);
    assert_eq!(status_of(&again_link).await, 200);
    assert_eq!(status_of(&resent_link).await, 200, "kept with --keep-old-links");
    assert_eq!(status_of(&mail1_link).await, 404, "revoked before stays revoked");

    // Both resends are in the timeline with what they did to the older links.
    let show = bma_with(dir.path(), &env, &["show", &address, "--json"]);
    assert!(show.contains("\"older_links\":\"revoked\"") && show.contains("\"older_links\":\"kept\""), "{show}");

    b.quit().await;
    let _ = driver.start_kill();
    let _ = serve.start_kill();
    let _ = driver.wait().await;
    let _ = serve.wait().await;
}

/// Migration 12 on a store made before it: mail 1's token hash moves from
/// `mailboxes.form_token_hash` to `form_tokens`, beside the reminders'; both
/// keep working, and a resend revokes them.
async fn links_of_a_store_made_before_migration_12_keep_working(backend: bma_tests::TestBackend) {
    use bma_core::lifecycle::{Actor, State};
    use bma_store::{NewEmail, OlderLinks, ResentLink};
    use sqlx::Connection;

    let db = bma_tests::TestDb::new(backend).await;
    let store = db.store().await;
    let address = "ec879001@adm.cfwb.be";
    let rows = bma_core::registry::parse(
        format!("address,name\n{address},École du Lac\n").as_bytes(),
        &bma_core::AddressRule::default(),
    )
    .unwrap()
    .rows;
    let actor = Actor::System("test".into());
    let t0 = time::macros::datetime!(2024-04-22 08:00 UTC);
    store.apply_import(&rows, "test.csv", &actor, t0).await.unwrap();
    store.transition(&addr(address), State::Scheduled, &actor, "test", json!({}), t0).await.unwrap();
    let id = store.mailbox(&addr(address)).await.unwrap().id;
    let email = |key: &str| NewEmail {
        mailbox_id: Some(id),
        kind: "invitation".into(),
        key: key.to_owned(),
        recipient: address.to_owned(),
        envelope_from: "bounces@bma.test".into(),
        message_id: format!("{key}@bma.test"),
        subject: "Invitation".into(),
        raw: "Subject: Invitation\r\n\r\nlien\r\n".into(),
        run_at: t0,
        max_attempts: 1,
    };
    let (mail1, reminder) = (bma_engine::new_token(), bma_engine::new_token());
    let hash = bma_core::TokenHash::of;
    store.invite(&addr(address), &hash(&mail1), &email("mail1"), &actor, t0).await.unwrap();
    store.close().await;

    // The store as version 11 left it: mail 1's hash on the mailbox, a reminder's in form_tokens.
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for sql in [
        "DELETE FROM form_tokens".to_owned(),
        "ALTER TABLE form_tokens DROP COLUMN revoked_at".to_owned(),
        "ALTER TABLE mailboxes ADD COLUMN form_token_hash TEXT".to_owned(),
        "CREATE UNIQUE INDEX mailboxes_form_token ON mailboxes (form_token_hash)".to_owned(),
        format!("UPDATE mailboxes SET form_token_hash = '{}'", hash(&mail1).as_str()),
        format!(
            "INSERT INTO form_tokens (token_hash, mailbox_id, kind, created_at) \
             SELECT '{}', id, 'reminder', 0 FROM mailboxes",
            hash(&reminder).as_str()
        ),
        "DELETE FROM bma_schema WHERE version = 12".to_owned(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = db.store().await;
    for t in [&mail1, &reminder] {
        assert_eq!(store.mailbox_by_token(t).await.unwrap().as_deref(), Some(address));
        assert_eq!(store.portal_mailbox_by_token(t).await.unwrap().map(|m| m.address).as_deref(), Some(address));
    }
    let fresh = bma_engine::new_token();
    let link = ResentLink { token_hash: &hash(&fresh), older: OlderLinks::Revoke };
    store.resend_invitation(&addr(address), &link, &email("resent"), &actor, "fuite", t0).await.unwrap();
    for t in [&mail1, &reminder] {
        assert_eq!(store.mailbox_by_token(t).await.unwrap(), None, "revoked");
        assert_eq!(store.portal_mailbox_by_token(t).await.unwrap(), None, "revoked");
    }
    assert_eq!(store.mailbox_by_token(&fresh).await.unwrap().as_deref(), Some(address));
    let timeline = store.timeline(store.mailbox(&addr(address)).await.unwrap().id).await.unwrap();
    let resent = timeline.iter().find(|e| e.kind == "invitation_resent").expect("the resend's event");
    assert_eq!(
        (resent.details["older_links"].as_str(), resent.details["links_revoked"].as_u64()),
        (Some("revoked"), Some(2))
    );
    store.close().await;
    db.drop_db().await;
}

bma_tests::on_both_backends!(links_of_a_store_made_before_migration_12_keep_working);
