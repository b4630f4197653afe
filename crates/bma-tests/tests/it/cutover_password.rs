//! A manager who said they do not know the BMA's password, on both store
//! backends: at the cutover the new platform gets a new password, and
//! mail 2 carries a link that shows it once; the link is followed as the
//! manager gets it (mail 2 read from the backup address's mailbox, the
//! page over HTTP from the portal), the password logs into the new
//! platform and the old one does not, the link does not open twice. Then
//! the helpdesk's `reset-password`: a newer password, the older one dead,
//! recorded with who and why; and mail 2 sent again (lost), to both
//! addresses, without any password.

use std::time::Duration;

use bma_engine::{Engine, EngineSettings, SwitchOutcome};
use bma_mail::Templates;
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp};
use bma_tests::switch::{enrolled_without_password, fresh_address, lab_switch_settings, legacy_mailbox, login};
use bma_tests::web::{Harness, T0};
use bma_tests::{TestBackend, addr, lab_adduser, lab_inbox, on_both_backends};

const OLD: &str = "mot-de-passe-oublie";

/// The path of the newest new-password link in `user`'s legacy INBOX,
/// read as a mail client shows the text part.
async fn password_link(user: &str, seen: usize) -> String {
    for _ in 0..100 {
        let links: Vec<String> = lab_inbox("legacy", user)
            .await
            .iter()
            .filter_map(|raw| bma_mail::inspect::part(raw, "text/plain"))
            .filter_map(|text| {
                let at = text.find("/mot-de-passe/")?;
                let token: String =
                    text[at + 14..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect();
                Some(format!("/mot-de-passe/{token}"))
            })
            .collect();
        if links.len() > seen {
            return links.last().cloned().expect("a link");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no new password link reached {user}");
}

/// The password the page shows.
fn shown(page: &str) -> String {
    bma_visitor::password_on(page).expect("the password on the page")
}

async fn a_lost_password_is_replaced_by_one_a_link_shows_once(backend: TestBackend) {
    let h = Harness::start(backend, |_| {}).await;
    let address = fresh_address();
    legacy_mailbox(&address, OLD).await;
    let backup = format!("secours-{}@ecole.test", &address[..8]);
    lab_adduser("legacy", &backup, "secret-secours");
    let (id, _) = h.invited(&address).await;
    enrolled_without_password(&h.store, &address, id, &backup, T0).await;
    let settings = EngineSettings {
        portal_base_url: h.base.clone(),
        new: Some(lab_platform("new")),
        switch: Some(lab_switch_settings()),
        ..lab_engine_settings("bounces@bma.test")
    };
    let engine = Engine::new(h.store.clone(), Templates::load(None).expect("templates"), settings, lab_smtp(), "pw");

    let outcome = engine.cut_over(&address, T0).await.expect("cut over");
    assert!(matches!(outcome, SwitchOutcome::Migrated(_)), "{outcome:?}");
    // Sent a minute later (the cutover's steps took their time on the campaign clock).
    engine.send_due(T0 + time::Duration::minutes(1)).await.expect("outbox");
    // Mail 2 as the manager reads it on the backup address.
    let link = password_link(&backup, 0).await;
    // The same link in the BMA's copy of mail 2, on the new platform.
    let bma_copy: Vec<String> = lab_inbox("new", &address)
        .await
        .iter()
        .filter_map(|raw| bma_mail::inspect::part(raw, "text/plain"))
        .filter(|t| t.contains(&link))
        .collect();
    assert_eq!(bma_copy.len(), 1, "mail 2 with its link in the new INBOX, once");

    // A GET shows a button, not the password (mail scanners fetch links).
    let page = h.get(&link).await;
    assert_eq!(page.status(), 200);
    let body = page.text().await.expect("page");
    assert!(body.contains("Afficher le mot de passe") && !body.contains("id=\"mot-de-passe\""), "{body}");
    let opened = h.post(&link, &[]).await;
    assert_eq!(opened.status(), 200);
    let password = shown(&opened.text().await.expect("page"));
    assert!(password.len() >= 15, "{password}");
    login("new", &address, &password).await.expect("the new password logs into the new platform");
    login("new", &address, OLD).await.expect_err("the old password does not");
    let again = h.post(&link, &[]).await;
    assert_eq!(again.status(), 410, "the link opens once");

    // The store holds neither the password nor the link.
    let m = h.store.mailbox(&addr(&address)).await.expect("mailbox");
    let dump = format!(
        "{:?}{:?}",
        h.store.timeline(m.id).await.expect("timeline"),
        h.store.emails_of(m.id).await.expect("outbox")
    );
    assert!(!dump.contains(&password) && !dump.contains(&link[14..]), "a secret in the store");

    // The helpdesk gives another one: the link goes to both addresses, the older password is dead.
    let operator = bma_core::Actor::Operator("agent.martin".into());
    let reset =
        engine.reset_password(&address, "appel du 4 juin : mot de passe perdu", &operator, T0).await.expect("reset");
    assert_eq!((reset.platform, reset.recipients.len()), ("new", 2), "{reset:?}");
    engine.send_due(T0 + time::Duration::minutes(2)).await.expect("outbox");
    let second = password_link(&backup, 1).await;
    assert_ne!(second, link);
    let newer = shown(&h.post(&second, &[]).await.text().await.expect("page"));
    login("new", &address, &newer).await.expect("the newer password works");
    login("new", &address, &password).await.expect_err("the older one does not");
    let events = h.store.timeline(m.id).await.expect("timeline");
    let e = events.iter().find(|e| e.kind == "password_reset").expect("a password_reset event");
    assert_eq!(
        (e.actor.as_str(), e.reason.as_str()),
        ("operator:agent.martin", "appel du 4 juin : mot de passe perdu")
    );

    // Mail 2 lost: an agent sends it again, to both addresses, without any
    // password; read from the backup mailbox and from the new INBOX.
    let op = bma_engine::operations::Operation {
        actor: operator.clone(),
        reason: bma_engine::operations::Reason::new("appel du 5 juin : mail 2 supprimé").expect("a reason"),
        at: T0,
    };
    let again = bma_engine::operations::resend_mail2(&engine, &addr(&address), &op).await.expect("resend mail 2");
    assert_eq!(again.recipients, [address.clone(), backup.clone()]);
    engine.send_due(T0 + time::Duration::minutes(3)).await.expect("outbox");
    let copy = |raw: &Vec<u8>| {
        let text = bma_mail::inspect::part(raw, "text/plain")?;
        text.contains("nouvelle copie du message envoyé à la migration").then_some(text)
    };
    for (platform, user) in [("legacy", backup.as_str()), ("new", address.as_str())] {
        let mut copies = Vec::new();
        for _ in 0..100 {
            copies = lab_inbox(platform, user).await.iter().filter_map(copy).collect();
            if !copies.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(copies.len(), 1, "one copy of mail 2 for {user} on {platform}");
        let text = &copies[0];
        assert!(text.contains("jamais repris dans une copie") && !text.contains("/mot-de-passe/"), "{text}");
    }
    let events = h.store.timeline(m.id).await.expect("timeline");
    let e = events.iter().find(|e| e.kind == "mail2_resent").expect("a mail2_resent event");
    assert_eq!((e.actor.as_str(), e.reason.as_str()), ("operator:agent.martin", "appel du 5 juin : mail 2 supprimé"));
    h.stop().await;
}

on_both_backends!(a_lost_password_is_replaced_by_one_a_link_shows_once);
