//! The manager's whole path in a real browser (issue 5): headless Debian
//! Chromium driven over WebDriver (chromedriver) from Rust.
//!
//! `bma campaign tick` sends mail 1 through the lab's Postfix into the
//! legacy mailbox; the test reads it over IMAP, follows its link in the
//! browser, logs in at the lab's OpenID Connect provider, fills the form
//! with mistakes, sees them, corrects them, sees the confirmation; another
//! tick sends the outbox, and the confirmation email arrives in the BMA,
//! the verification link in the backup mailbox, which the browser opens
//! and confirms with its button.
//!
//! Issue 10: a session that expires while the form is open loses nothing
//! (the answers come back after the new login); logout ends the Cerbère
//! EDU session too (checked with `prompt=none` at the provider), and the
//! next login asks for the password.
//!
//! Needs `cargo xtask lab up` (chromium and chromium-driver are installed by
//! `cargo xtask lab install`) and `cargo build -p bma`.

use std::path::Path;
use std::time::{Duration, Instant};

use bma_tests::browser::{Browser, free_port, free_portal_port, portal_env, start_chromedriver, start_portal};
use bma_tests::{bma_with, lab_adduser, lab_file, lab_inbox};
use serde_json::{Value, json};

/// The bodies of `user`'s INBOX messages containing `needle`, QP soft breaks undone.
async fn mails_with(platform: &str, user: &str, needle: &str) -> Vec<String> {
    lab_inbox(platform, user)
        .await
        .into_iter()
        .map(|b| String::from_utf8_lossy(&b).replace("=\r\n", "").replace("=3D", "="))
        .filter(|b| b.contains(needle))
        .collect()
}

async fn wait_mail(platform: &str, user: &str, needle: &str, before: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mails = mails_with(platform, user, needle).await;
        if mails.len() > before {
            return mails.last().unwrap().clone();
        }
        assert!(Instant::now() < deadline, "no new mail with {needle:?} for {user}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Mail 1 for real: `registre.csv` of `address` (school `school`) imported
/// in `dir`, one wave planned, the campaign started and ticked on
/// 2024-04-22; its link to the portal on `port`, read from the legacy mailbox.
async fn mail1_link(dir: &Path, env: &[(String, String)], address: &str, school: &str, port: u16) -> String {
    let before = mails_with("legacy", address, "/formulaire/").await.len();
    std::fs::write(dir.join("registre.csv"), format!("adresse;nom\n{address};{school}\n")).unwrap();
    bma_with(dir, env, &["import", "mailboxes", "registre.csv"]);
    bma_with(dir, env, &["plan", "--apply", "--as", "e2e"]);
    bma_with(dir, env, &["campaign", "start", "--at", "2024-04-22T07:00:00Z", "--as", "e2e"]);
    bma_with(dir, env, &["campaign", "tick", "--at", "2024-04-22T08:00:00Z"]);
    let mail = wait_mail("legacy", address, "/formulaire/", before).await;
    let link_at = mail.find(&format!("http://127.0.0.1:{port}/formulaire/")).expect("the link in mail 1");
    mail[link_at..].chars().take_while(|c| c.is_ascii_alphanumeric() || ":/._-".contains(*c)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_enrols_in_a_real_browser() {
    let first = lab_file("lab.json")["oidc"]["test_redirect_ports"][0].as_u64().unwrap() as u16;
    // The portal's port, registered at the provider; the driver's, anywhere else.
    let port = free_portal_port(0);
    let driver_port = free_port(19500..=19599, 0);
    assert!(port >= first);
    let address = format!("ec86{:04}@adm.cfwb.be", std::process::id() % 10_000);
    let backup = "marie.dupont@ecole.test";
    lab_adduser("legacy", &address, "secret-e2e");

    let dir = tempfile::tempdir().unwrap();
    let mut env = portal_env(dir.path(), &format!("http://127.0.0.1:{port}"));
    // The invitation is sent on the campaign's clock (2024); the portal
    // runs on the wall clock: keep the link valid today.
    env.push(("BMA_CAMPAIGN_END".to_owned(), "2099-12-31".to_owned()));

    // Mail 1, for real: import, plan, tick; read it from the legacy mailbox.
    let link = mail1_link(dir.path(), &env, &address, "École fondamentale du Parc", port).await;

    // The portal and the browser.
    // The scheduler is `bma campaign tick`'s, below: one per SQLite store.
    let mut serve = start_portal(dir.path(), &env, port).await;
    let (mut driver, driver_url) = start_chromedriver(driver_port).await;
    let b = Browser::start(&driver_url).await;

    // The link, then Cerbère EDU (the lab's provider), then back to the form.
    b.goto(&link).await;
    assert_eq!(b.text("#bma").await, address);
    b.click("#connexion").await;
    b.provider_login("the provider's login page", "directrice.dupont").await;
    b.wait_url("back on the link after login", |u| u == link).await;
    assert_eq!(b.text("#identite").await, "Marie Dupont");
    assert_eq!(b.attribute("#nom", "value").await.as_deref(), Some("Dupont"), "prefilled from the identity");

    // The keyboard reaches every control in reading order, and the focus shows.
    let mut order = Vec::new();
    for _ in 0..11 {
        let (id, outline) = b.tab().await;
        assert_eq!(outline, "solid", "visible focus on {id:?}");
        order.push(id);
    }
    assert_eq!(
        order[2..],
        [
            "nom",
            "prenom",
            "telephone",
            "email_secours",
            "email_secours_confirmation",
            "role",
            "mdp-oui",
            "lien-notice",
            "envoyer"
        ],
        "{order:?}"
    );

    // Mistakes first: a bad phone, the BMA as backup, a confirmation that differs.
    b.fill("#telephone", "02 413").await;
    b.fill("#email_secours", &address).await;
    b.fill("#email_secours_confirmation", "autre@ecole.test").await;
    b.click("#role option[value=direction]").await;
    b.click("#mdp-non").await;
    b.click("#envoyer").await;
    b.wait_source("Le formulaire contient 2 erreurs").await;
    assert!(b.text("#telephone-erreur").await.starts_with("Numéro de téléphone invalide"));
    assert!(b.text("#email_secours-erreur").await.contains("différente de la BMA"));
    assert_eq!(b.attribute("#telephone", "value").await.as_deref(), Some("02 413"), "values kept");
    assert_eq!(b.attribute("#nom", "value").await.as_deref(), Some("Dupont"));
    assert_eq!(b.count("[aria-invalid=true]").await, 2);
    // The summary's links lead to the fields.
    b.click(".summary a[href='#telephone']").await;
    b.wait_url("the phone field", |u| u.ends_with("#telephone")).await;

    // Then right, but the session expired meanwhile (the browser drops the
    // cookie at its Max-Age): the answers are kept for after a new login.
    b.fill("#telephone", "0470 12 34 56").await;
    b.fill("#email_secours", backup).await;
    b.fill("#email_secours_confirmation", backup).await;
    b.delete_cookie("bma_session").await;
    b.click("#envoyer").await;
    b.wait_source("Votre session a expiré").await;
    b.click("a.button").await;
    b.provider_login("the provider's login page again", "directrice.dupont").await;
    b.wait_url("back on the link after the new login", |u| u == link).await;
    assert!(b.text("#reponses-conservees").await.contains("ont été conservées"));
    assert_eq!(b.attribute("#telephone", "value").await.as_deref(), Some("0470 12 34 56"), "answers kept");
    assert_eq!(b.attribute("#email_secours", "value").await.as_deref(), Some(backup));
    b.click("#envoyer").await;
    b.wait_url("the confirmation page", |u| u.ends_with("/confirmation")).await;
    assert!(b.text("#confirmation h1").await.contains("Merci, votre formulaire a bien été reçu"));
    assert_eq!(b.text("#etat-libelle").await, "formulaire reçu");
    let status = b.source().await;
    assert!(status.contains("0470 12 34 56") && status.contains("non vérifiée"), "{status}");
    assert!(b.text("#recu-le").await.starts_with("envoyées par Marie Dupont le "), "who answered");

    // The outbox leaves: the confirmation into the BMA, the verification link into the backup mailbox.
    let confirmations_before = mails_with("legacy", &address, "formulaire de migration de la bo").await.len();
    let verifications_before = mails_with("legacy", backup, &address).await.len();
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    bma_with(dir.path(), &env, &["campaign", "tick", "--at", &now]);
    let confirmation = wait_mail("legacy", &address, "formulaire de migration de la bo", confirmations_before).await;
    assert!(confirmation.contains("Marie Dupont") && confirmation.contains(&link), "{confirmation}");
    let verification = wait_mail("legacy", backup, &address, verifications_before).await;
    let at = verification.find(&format!("http://127.0.0.1:{port}/verification/")).expect("a verification link");
    let vlink: String =
        verification[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || ":/._-".contains(*c)).collect();
    // Opening the link (as a mail scanner would) verifies nothing: a button does.
    b.goto(&vlink).await;
    b.wait_source("Confirmer cette adresse de secours").await;
    b.goto(&link).await;
    assert!(b.text("#secours-etat").await.starts_with("non vérifiée"), "a GET verified nothing");
    b.goto(&vlink).await;
    b.click("#confirmer").await;
    b.wait_source("Adresse de secours vérifiée").await;
    b.goto(&link).await;
    assert!(b.text("#secours-etat").await.starts_with("vérifiée le"));

    // A new backup address: the previous one and the BMA are told, by email.
    let new_backup = format!("secours{:04}@ecole.test", std::process::id() % 10_000);
    lab_adduser("legacy", &new_backup, "secret-e2e");
    let notices_before = mails_with("legacy", backup, "backup_changed.").await.len();
    let bma_notices_before = mails_with("legacy", &address, "backup_changed.").await.len();
    b.click("#corriger").await;
    b.wait_url("the correction form", |u| u.ends_with("/modifier")).await;
    b.fill("#email_secours", &new_backup).await;
    b.fill("#email_secours_confirmation", &new_backup).await;
    if b.count("#notice").await > 0 {
        b.click("#notice").await;
    }
    b.click("#envoyer").await;
    b.wait_url("the confirmation page", |u| u.ends_with("/confirmation")).await;
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    bma_with(dir.path(), &env, &["campaign", "tick", "--at", &now]);
    let notice = wait_mail("legacy", backup, "backup_changed.", notices_before).await;
    assert!(notice.contains(&address) && !notice.contains(&new_backup), "{notice}");
    let notice = wait_mail("legacy", &address, "backup_changed.", bma_notices_before).await;
    assert!(notice.contains(backup), "the BMA is told which address was replaced: {notice}");
    b.goto(&link).await;

    // Before logout the provider's session is alive: `prompt=none` gets a code.
    let silent = format!(
        "http://127.0.0.1:9090/auth?client_id=bma-portal&response_type=code&scope=openid&prompt=none\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fauth%2Fcallback&state=probe-state-0123456789\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    b.goto(&silent).await;
    let probe = b.wait_url("back from the provider", |u| u.contains("/auth/callback")).await;
    assert!(probe.contains("code="), "the provider's session is alive: {probe}");
    b.goto(&link).await;

    // Logout ends the Cerbère EDU session too (RP-initiated logout).
    b.click(".who button").await;
    b.wait_url("the provider's end of session", |u| u.starts_with("http://127.0.0.1:9090/session/end")).await;
    b.click("button[name=logout][value=yes]").await;
    b.wait_url("logged out at the provider", |u| !u.ends_with("/session/end/confirm") && !u.contains("id_token_hint"))
        .await;
    b.goto(&silent).await;
    let probe = b.wait_url("back from the provider", |u| u.contains("/auth/callback")).await;
    assert!(probe.contains("error=login_required"), "the provider's session is over: {probe}");

    // On a shared PC, the next person following the link is asked for credentials.
    b.goto(&link).await;
    assert_eq!(b.count("#connexion").await, 1, "logged out: the login link again");
    b.click("#connexion").await;
    b.wait_url("the provider asks again", |u| u.starts_with("http://127.0.0.1:9090/interaction/")).await;
    assert_eq!(b.count("#password").await, 1, "credentials asked");

    b.quit().await;
    let _ = driver.start_kill();
    let _ = serve.start_kill();
    let _ = driver.wait().await;
    let _ = serve.wait().await;
}

/// axe-core, installed by `cargo xtask lab install` (`lab/axe`).
pub(crate) fn axe_source() -> String {
    let path = bma_tests::workspace_root().join("lab/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask lab install` (it installs axe-core)", path.display()))
}

/// axe-core's violations of WCAG 2.0/2.1 A and AA on the page on screen.
pub(crate) async fn axe_violations(b: &Browser, axe: &str, what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let injected = b.exec(&format!("{axe}\nreturn typeof axe.run;"), json!([])).await;
    assert_eq!(injected, "function", "{what}: axe-core injected despite the page's CSP");
    let violations = b
        .exec_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
               .then(r => done({ passes: r.passes.length, violations: r.violations.map(v =>
                   v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', ')) }))
               .catch(e => done({ error: String(e) }));",
        )
        .await;
    assert!(violations.get("error").is_none(), "{what}: axe failed: {violations}");
    assert!(violations["passes"].as_u64().unwrap_or(0) > 0, "{what}: axe checked nothing: {violations}");
    for v in violations["violations"].as_array().unwrap() {
        problems.push(format!("axe: {}", v.as_str().unwrap()));
    }
    problems
}

/// What is wrong with the page on screen: axe-core's violations of WCAG
/// 2.0/2.1 A and AA; elements wider than a 320 px viewport (WCAG 1.4.10);
/// an ordinary space before `?`, `:`, `;` or `!` in its text.
async fn audit(b: &Browser, axe: &str, what: &str) -> Vec<String> {
    let mut problems = axe_violations(b, axe, what).await;

    b.cdp(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 320, "height": 640, "deviceScaleFactor": 1, "mobile": true }),
    )
    .await;
    let reflow = b
        .exec(
            "const w = document.documentElement.clientWidth;
             const wide = [...document.querySelectorAll('body *')].filter(e => {
               const r = e.getBoundingClientRect();
               return r.width > 0 && r.height > 0 && r.right > w + 0.5;
             }).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '')
                    + ' to ' + Math.round(e.getBoundingClientRect().right) + ' px');
             return { width: w, scroll: document.documentElement.scrollWidth, wide: wide };",
            json!([]),
        )
        .await;
    b.cdp("Emulation.clearDeviceMetricsOverride", json!({})).await;
    assert_eq!(reflow["width"], 320, "{what}: the viewport at 320 px");
    if reflow["scroll"].as_u64() > Some(320) {
        problems.push(format!("320 px: the page scrolls sideways ({} px)", reflow["scroll"]));
    }
    for e in reflow["wide"].as_array().unwrap() {
        problems.push(format!("320 px: {} sticks out", e.as_str().unwrap()));
    }

    let text = b.exec("return document.title + '\\n' + document.body.innerText;", json!([])).await;
    let text = text.as_str().unwrap().replace('\n', " ");
    for mark in ["?", ":", ";", "!"] {
        for (at, _) in text.match_indices(&format!(" {mark}")) {
            let from = text.floor_char_boundary(at.saturating_sub(30));
            problems.push(format!("typography: an ordinary space before {mark:?}: …{}", &text[from..at + 2]));
        }
    }
    problems.into_iter().map(|p| format!("{what}: {p}")).collect()
}

/// Every page state of the manager's path, in Chromium: 0 axe-core
/// violations (WCAG 2.0 and 2.1, A and AA), reflow at 320 px, French
/// typography; errors announced in the title with the focus on their
/// summary (no script); the portal served on the campaign's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_state_is_axe_clean_and_reflows_at_320_px() {
    let axe = axe_source();
    let port = free_portal_port(0);
    let driver_port = free_port(19500..=19599, 0);
    let address = format!("ec87{:04}@adm.cfwb.be", std::process::id() % 10_000);
    lab_adduser("legacy", &address, "secret-e2e");

    let dir = tempfile::tempdir().unwrap();
    let env = portal_env(dir.path(), &format!("http://127.0.0.1:{port}"));

    // Mail 1 for real, read from the legacy mailbox.
    let link = mail1_link(dir.path(), &env, &address, "Institut Sainte-Marie de Huy", port).await;

    // The portal on the campaign's clock (no BMA_CAMPAIGN_END moved to keep the link alive),
    // and a second one on the same store after the campaign's end.
    let at = |now: &str| {
        let mut env = env.clone();
        env.push(("BMA_NOW".to_owned(), now.to_owned()));
        env
    };
    let mut portal = start_portal(dir.path(), &at("2024-04-22T09:00:00Z"), port).await;
    let late_port = free_portal_port(0);
    let mut late = start_portal(dir.path(), &at("2024-06-03T09:00:00Z"), late_port).await;
    let (mut driver, driver_url) = start_chromedriver(driver_port).await;
    let b = Browser::start(&driver_url).await;
    let base = format!("http://127.0.0.1:{port}");
    let mut problems = Vec::new();

    // Pages anyone can open.
    for (path, what) in [
        ("/", "home"),
        ("/confidentialite", "privacy notice"),
        ("/accessibilite", "accessibility statement"),
        ("/nulle-part", "404 page"),
    ] {
        b.goto(&format!("{base}{path}")).await;
        problems.extend(audit(&b, &axe, what).await);
    }
    assert!(b.title().await.starts_with("Erreur\u{a0}: "), "404: {}", b.title().await);
    b.goto(&format!("{base}/formulaire/{}", bma_engine::new_token())).await;
    assert!(b.title().await.starts_with("Erreur\u{a0}: Ce lien n'est pas valide"), "{}", b.title().await);
    problems.extend(audit(&b, &axe, "unknown link (404)").await);
    b.goto(&link.replace(&base, &format!("http://127.0.0.1:{late_port}"))).await;
    assert!(b.title().await.starts_with("Erreur\u{a0}: Ce lien a expiré"), "{}", b.title().await);
    problems.extend(audit(&b, &axe, "link after the campaign (410)").await);

    // The link, the login, the form empty, with errors, sent; the status page.
    b.goto(&link).await;
    assert_eq!(b.text("#bma").await, address, "the link opens on the campaign's clock");
    problems.extend(audit(&b, &axe, "link page").await);
    b.click("#connexion").await;
    b.provider_login("the provider's login page", "directrice.dupont").await;
    b.wait_url("back on the link after login", |u| u == link).await;
    problems.extend(audit(&b, &axe, "form (empty)").await);
    assert_eq!(b.count("input[type=checkbox]").await, 0, "no box to tick: the notice is a page");

    b.fill("#telephone", "02 413").await;
    b.click("#envoyer").await;
    b.wait_source("Le formulaire contient").await;
    assert_eq!(b.title().await, "Erreur\u{a0}: Formulaire — Migration des BMA");
    assert_eq!(b.active_id().await, "resume", "the focus is on the error summary, without a script");
    assert_eq!(b.count("script").await, 0);
    problems.extend(audit(&b, &axe, "form with errors").await);

    b.fill("#telephone", "0470 12 34 56").await;
    b.fill("#email_secours", "marie.dupont@ecole.test").await;
    b.fill("#email_secours_confirmation", "marie.dupont@ecole.test").await;
    b.click("#role option[value=direction]").await;
    b.click("#mdp-oui").await;
    b.click("#envoyer").await;
    b.wait_url("the confirmation page", |u| u.ends_with("/confirmation")).await;
    assert_eq!(b.text("#telephone").await, "0470 12 34 56");
    assert_eq!(b.text("#fenetre").await, "entre le 13 mai 2024 et le 31 mai 2024");
    // Waiting for the person is not an error: not in the error red (#a4000f).
    let e = b.find("#secours-etat").await;
    let colour = b.cmd(reqwest::Method::GET, &format!("/element/{e}/css/color"), Value::Null).await;
    assert_eq!(colour, "rgba(27, 27, 27, 1)", "\"non vérifiée\" in ink");
    problems.extend(audit(&b, &axe, "confirmation").await);
    b.goto(&link).await;
    b.wait_source("Où en est la migration").await;
    problems.extend(audit(&b, &axe, "status page").await);
    b.click("#lien-confidentialite").await;
    b.wait_url("the privacy notice from the footer", |u| u.ends_with("/confidentialite")).await;

    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    b.quit().await;
    for child in [&mut driver, &mut portal, &mut late] {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}
