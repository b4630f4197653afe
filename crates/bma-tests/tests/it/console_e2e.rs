//! The helpdesk console in a real browser (headless Chromium over
//! WebDriver), as an agent goes through calls: log in at the lab's
//! provider with the console's own client; find Marie Dupont by
//! "dupont marie" typed without accents (her name comes from her form)
//! and see her mailbox; find a school that never got mail 1 by its FASE
//! digits, resend mail 1 with a reason, see it in the timeline and find
//! the new email in the legacy mailbox; an operator's action is refused to
//! the agent; every page axe-clean (WCAG 2.0/2.1 A and AA).
//!
//! Needs `cargo xtask lab up` and `cargo build -p bma`.

use std::time::Duration;

use bma_tests::browser::{Browser, free_port, free_portal_port, portal_env, start_chromedriver, start_portal};
use bma_tests::{bma_with, lab_adduser, lab_file};
use serde_json::json;

use super::portal_e2e::{axe_source, axe_violations};

/// The bodies of `user`'s legacy INBOX messages containing `needle`.
async fn mails_with(user: &str, needle: &str) -> usize {
    bma_tests::lab_inbox("legacy", user)
        .await
        .into_iter()
        .filter(|b| String::from_utf8_lossy(b).replace("=\r\n", "").contains(needle))
        .count()
}

async fn wait_mails(user: &str, needle: &str, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while mails_with(user, needle).await < count {
        assert!(std::time::Instant::now() < deadline, "no new mail with {needle:?} for {user}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn clean(b: &Browser, axe: &str, what: &str) {
    let problems = axe_violations(b, axe, what).await;
    assert!(problems.is_empty(), "{what}: {problems:#?}");
}

/// What each mail 1 in a mailbox holds: its link.
const INVITATIONS: &str = "/formulaire/";

/// The portal's environment with the console's client of the lab's
/// provider, the campaign open until 2099 (its links stay valid today).
fn console_env(dir: &std::path::Path, base: &str) -> Vec<(String, String)> {
    let mut env = portal_env(dir, base);
    env.push(("BMA_CAMPAIGN_END".to_owned(), "2099-12-31".to_owned()));
    let console = &lab_file("lab.json")["oidc"]["console"];
    for (k, v) in [("CLIENT_ID", "client_id"), ("CLIENT_SECRET", "client_secret"), ("SCOPES", "scope")] {
        env.push((format!("BMA_CONSOLE_{k}"), console[v].as_str().unwrap().to_owned()));
    }
    env
}

/// `boxes` (address, name) imported, pinned to the first wave and sent
/// their mail 1 for real; returns once each is in its legacy mailbox.
async fn invite(dir: &std::path::Path, env: &[(String, String)], boxes: &[(&str, &str)]) {
    let mut before = Vec::new();
    for (a, _) in boxes {
        before.push(mails_with(a, INVITATIONS).await);
    }
    let rows: String = boxes.iter().map(|(a, name)| format!("{a};{name}\n")).collect();
    std::fs::write(dir.join("registre.csv"), format!("adresse;nom\n{rows}")).unwrap();
    bma_with(dir, env, &["import", "mailboxes", "registre.csv"]);
    for (a, _) in boxes {
        bma_with(dir, env, &["mailbox", "pin", a, "2024-04-22"]);
    }
    bma_with(dir, env, &["plan", "--apply", "--as", "e2e"]);
    bma_with(dir, env, &["campaign", "start", "--at", "2024-04-22T07:00:00Z", "--as", "e2e"]);
    bma_with(dir, env, &["campaign", "tick", "--at", "2024-04-22T08:00:00Z"]);
    for ((a, _), n) in boxes.iter().zip(before) {
        wait_mails(a, INVITATIONS, n + 1).await;
    }
}

/// Marie Dupont sends the form from the link of `address`'s mail 1, read from its legacy mailbox.
async fn enrol_from_mail_1(address: &str, base: &str) {
    let mail = bma_tests::lab_inbox("legacy", address).await;
    let text = String::from_utf8_lossy(mail.last().unwrap()).replace("=\r\n", "").replace("=3D", "=");
    let link = bma_visitor::link_in(&text, &format!("{base}/formulaire/")).expect("the link in mail 1");
    let answers = bma_tests::web::marie_dupont();
    bma_visitor::Visitor::new().unwrap().enrol(&link, "directrice.dupont", "password", &answers).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_a_call_in_a_real_browser() {
    let port = free_portal_port(7);
    let driver_port = free_port(19500..=19599, 7);
    let base = format!("http://127.0.0.1:{port}");
    let fase = 870_000 + std::process::id() % 10_000;
    let address = format!("ec{fase:06}@adm.cfwb.be");
    let other = format!("ec{:06}@adm.cfwb.be", fase + 10_000);
    lab_adduser("legacy", &address, "secret-e2e");
    lab_adduser("legacy", &other, "secret-e2e");

    let dir = tempfile::tempdir().unwrap();
    let env = console_env(dir.path(), &base);

    // Mail 1 for real, and Marie Dupont's form from its link.
    invite(dir.path(), &env, &[(&address, "École Sainte-Marie"), (&other, "École communale de Wavre")]).await;
    let mut serve = start_portal(dir.path(), &env, port).await;
    enrol_from_mail_1(&address, &base).await;

    let (mut driver, driver_url) = start_chromedriver(driver_port).await;
    let b = Browser::start(&driver_url).await;
    let axe = axe_source();

    // Logged out: the console's login page, then the provider.
    b.goto(&format!("{base}/console")).await;
    assert_eq!(b.count("#connexion").await, 1);
    clean(&b, &axe, "the console's login page").await;
    b.click("#connexion").await;
    b.provider_login("the provider's login page", "agent.helpdesk").await;
    b.wait_url("back at the console", |u| u.ends_with("/console")).await;
    assert_eq!(b.text("#role").await, "agent du helpdesk");

    // The caller, as heard on the phone.
    b.fill("#q", "dupont marie").await;
    b.click("form[role=search] button").await;
    b.wait_source(&address).await;
    clean(&b, &axe, "the search's results").await;
    b.click(&format!("a[href='/console/boites/{address}']")).await;
    b.wait_url("the mailbox's page", |u| u.contains("/console/boites/")).await;
    assert_eq!(b.text("#adresse").await, address);
    assert!(b.source().await.contains("Marie Dupont"), "her form on the page");
    clean(&b, &axe, "the mailbox's page").await;

    // Another caller never got mail 1: found by the FASE digits they read out.
    b.goto(&format!("{base}/console")).await;
    b.fill("#q", &(fase + 10_000).to_string()).await;
    b.click("form[role=search] button").await;
    b.wait_source(&other).await;
    b.click(&format!("a[href='/console/boites/{other}']")).await;
    b.wait_url("the other mailbox's page", |u| u.ends_with(&other)).await;
    let address = other;

    // Mail 1 again, with the reason given on the phone.
    let sent_before = mails_with(&address, INVITATIONS).await;
    b.fill("#motif-resend_invitation", "Appel : n'a jamais reçu le mail 1").await;
    b.click("#action-resend_invitation button").await;
    b.wait_source("id=\"fait\"").await;
    let page = b.source().await;
    assert!(page.contains("mail 1 renvoyé") && page.contains("jamais reçu le mail 1"), "the timeline says it");
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    bma_with(dir.path(), &env, &["campaign", "tick", "--at", &now]);
    wait_mails(&address, INVITATIONS, sent_before + 1).await;
    b.goto(&format!("{base}/console/boites/{address}")).await;
    assert!(b.source().await.contains("envoyé le"), "the email's delivery shown");

    // An operator's action posted by the agent (the page offers none): refused.
    assert_eq!(b.count("#action-exclude").await, 0, "no operator action offered to an agent");
    let csrf = b.attribute("input[name=csrf]", "value").await.unwrap();
    b.exec(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
         for (const [k, v] of [['csrf', arguments[1]], ['motif', 'essai'], ['confirme', 'oui']]) {
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
         }
         document.body.appendChild(f); f.submit(); return true;",
        json!([format!("/console/boites/{address}/actions/exclude"), csrf]),
    )
    .await;
    b.wait_source("Action non autorisée").await;
    assert!(b.source().await.contains("réservé au rôle opérateur de migration"));
    clean(&b, &axe, "the refusal").await;

    b.quit().await;
    let _ = driver.start_kill();
    let _ = serve.start_kill();
    let _ = driver.wait().await;
    let _ = serve.wait().await;
}

/// The dashboard in a real browser: an agent opens it from the console's
/// navigation after mail 1 left and a form came back; its seven charts are
/// drawn (each SVG and what it holds have a box on screen), and the page is
/// axe-clean with the charts' tables closed and open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_its_charts_in_a_real_browser() {
    let port = free_portal_port(9);
    let driver_port = free_port(19500..=19599, 9);
    let base = format!("http://127.0.0.1:{port}");
    let fase = 880_000 + std::process::id() % 10_000;
    let address = format!("ec{fase:06}@adm.cfwb.be");
    lab_adduser("legacy", &address, "secret-e2e");

    let dir = tempfile::tempdir().unwrap();
    let env = console_env(dir.path(), &base);
    invite(dir.path(), &env, &[(&address, "École des Graphiques")]).await;
    let mut serve = start_portal(dir.path(), &env, port).await;
    enrol_from_mail_1(&address, &base).await;

    let (mut driver, driver_url) = start_chromedriver(driver_port).await;
    let b = Browser::start(&driver_url).await;
    let axe = axe_source();
    b.goto(&format!("{base}/console")).await;
    b.click("#connexion").await;
    b.provider_login("the provider's login page", "agent.helpdesk").await;
    b.wait_url("back at the console", |u| u.ends_with("/console")).await;
    b.click("a[href='/console/tableau-de-bord']").await;
    b.wait_url("the dashboard", |u| u.ends_with("/console/tableau-de-bord")).await;
    assert_eq!(b.text("#chiffre-boites").await, "1");
    assert_eq!(b.text("#chiffre-formulaires").await, "1");

    let boxes = b
        .exec(
            "return [...document.querySelectorAll('svg.chart')].map(s => {
               const r = s.getBoundingClientRect(), inner = s.getBBox();
               return { id: s.getAttribute('aria-labelledby'), width: r.width, height: r.height,
                        drawn: inner.width * inner.height, title: s.querySelector('title').textContent };
             });",
            json!([]),
        )
        .await;
    let boxes = boxes.as_array().expect("the charts");
    assert_eq!(boxes.len(), 7, "{boxes:#?}");
    for chart in boxes {
        assert!(chart["width"].as_f64().unwrap() > 100.0, "{chart}");
        assert!(chart["height"].as_f64().unwrap() > 100.0, "{chart}");
        assert!(chart["drawn"].as_f64().unwrap() > 0.0, "{chart}");
        assert!(!chart["title"].as_str().unwrap().is_empty(), "{chart}");
    }
    clean(&b, &axe, "the dashboard").await;
    b.exec("document.querySelectorAll('details').forEach(d => d.open = true); return true;", json!([])).await;
    clean(&b, &axe, "the dashboard with its tables open").await;

    b.quit().await;
    let _ = driver.start_kill();
    let _ = serve.start_kill();
    let _ = driver.wait().await;
    let _ = serve.wait().await;
}
