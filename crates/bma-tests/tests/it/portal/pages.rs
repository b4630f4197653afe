//! The pages themselves: French typography, footer links, the privacy notice
//! and accessibility statement, the home page after the deadline, errors
//! announced, the campaign clock, answers kept across an expired session and
//! masked for another person.

use super::*;

// The pages themselves (issue 10).

/// The text of a page (tags and the `<head>` left out): no ordinary space
/// before `?`, `:`, `;` or `!`, so that no mark starts a line in French.
fn assert_french_typography(html: &str, what: &str) {
    let body = html.split("<body>").nth(1).unwrap_or(html);
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.replace('\n', " ");
    for mark in ["?", ":", ";", "!"] {
        if let Some(at) = text.find(&format!(" {mark}")) {
            let from = text.floor_char_boundary(at.saturating_sub(40));
            panic!("{what}: an ordinary space before {mark:?}: …{}…", &text[from..at + 2]);
        }
    }
    // And the title, which announces an error first.
    let title = html.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or("");
    assert!(!title.contains(" :") && !title.contains(" ?"), "{what}: title {title:?}");
}

/// The footer of every page links to the privacy notice and the
/// accessibility statement, and names the icon.
fn assert_footer_links(html: &str, what: &str) {
    assert!(html.contains("<a href=\"/confidentialite\" id=\"lien-confidentialite\">"), "{what}: {html}");
    assert!(html.contains("<a href=\"/accessibilite\" id=\"lien-accessibilite\">"), "{what}: {html}");
    assert!(html.contains("<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_notice_accessibility_statement_and_icon_on_every_page() {
    let h = Harness::start(TestBackend::Sqlite, |s| {
        s.privacy.retention_months = 18;
        s.privacy.dpo_email = "protection.donnees@exemple.be".into();
    })
    .await;
    let (_, token) = h.invited("ec810031@adm.cfwb.be").await;

    let res = h.get("/confidentialite").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_security_headers(res.headers(), "/confidentialite");
    let page = res.text().await.unwrap();
    for needle in [
        // The controller, the legal basis, the DPO (configured), the purposes, the recipients.
        "Service général du Numérique éducatif (SGNE), Boulevard Léopold II 44, 1080 Bruxelles",
        "article 6.1.e du RGPD",
        "<a href=\"mailto:protection.donnees@exemple.be\" id=\"dpo\">",
        "migrer la BMA",
        "vous contacter si un problème survient pendant la migration",
        "l&#39;ETNIC (Entreprise publique des Technologies numériques",
        // The retention in months after the campaign's end (configured).
        "qui se termine le 31 mai 2024), puis\n18 mois",
        // Every right, and the complaint to the Belgian authority.
        "<strong>accès</strong>",
        "<strong>rectification</strong>",
        "<strong>effacement</strong>",
        "<strong>limitation</strong>",
        "<strong>portabilité</strong>",
        "<strong>opposer</strong>",
        "<strong>décision automatisée</strong>",
        "<strong>Autorité de protection des données</strong> (APD), rue de la Presse 35, 1000 Bruxelles",
        "contact@apd-gba.be",
    ] {
        assert!(page.contains(needle), "privacy page without {needle:?}:\n{page}");
    }
    assert_french_typography(&page, "/confidentialite");
    assert_footer_links(&page, "/confidentialite");

    let page = h.get("/accessibilite").await.text().await.unwrap();
    for needle in [
        "Déclaration d'accessibilité",
        "niveau <strong>AA des règles WCAG 2.1</strong>",
        "<h2 id=\"signaler\">Signaler un problème</h2>",
        "<a href=\"mailto:migrationbma@cfwb.be\" id=\"signaler-email\">",
        "Médiateur de la Wallonie et de\nla Fédération Wallonie-Bruxelles",
    ] {
        assert!(page.contains(needle), "accessibility statement without {needle:?}:\n{page}");
    }
    assert_french_typography(&page, "/accessibilite");

    // The footer of every page, whatever its status.
    for (path, status) in [
        ("/".to_owned(), StatusCode::OK),
        ("/accessibilite".to_owned(), StatusCode::OK),
        (format!("/formulaire/{token}"), StatusCode::OK),
        (format!("/formulaire/{}", bma_engine::new_token()), StatusCode::NOT_FOUND),
        ("/nulle-part".to_owned(), StatusCode::NOT_FOUND),
    ] {
        let res = h.get(&path).await;
        assert_eq!(res.status(), status, "{path}");
        let page = res.text().await.unwrap();
        assert_footer_links(&page, &path);
        assert_french_typography(&page, &path);
    }

    // The icon: ours, served, cacheable; /favicon.ico leads to it.
    let res = h.get("/static/favicon.svg").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert_eq!(res.headers()["cache-control"], "public, max-age=86400");
    assert!(res.text().await.unwrap().starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let res = h.get("/favicon.ico").await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()[LOCATION], "/static/favicon.svg");
    h.stop().await;
}

/// "Si vous n'avez pas reçu le premier mail à la date du 24 mai 2024,
/// prenez contact avec l'équipe migration du SGNE … +32 (0)2 413.3090."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_page_sends_those_without_mail_1_to_the_team_after_the_deadline() {
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let no_mail = |page: &str| -> String {
        let at = page.find("<div id=\"aucun-mail\">").unwrap_or_else(|| panic!("{page}"));
        page[at..].split("</div>").next().unwrap().to_owned()
    };
    // Before: Enseignement.be, with what to say.
    h.clock.set(datetime!(2024-05-23 16:00 UTC));
    let page = h.get("/").await.text().await.unwrap();
    let part = no_mail(&page);
    assert!(part.contains("<a href=\"mailto:BMA@enseignement.be\">BMA@enseignement.be</a>"), "{part}");
    assert!(part.contains("jusqu'au 24 mai 2024") && part.contains("Précisez vos nom, prénom"), "{part}");
    assert!(!part.contains("migrationbma@cfwb.be"), "{part}");
    assert_french_typography(&page, "/ before the deadline");
    // From the deadline on: the SGNE migration team, with its phone.
    h.clock.set(datetime!(2024-05-24 08:00 UTC));
    let page = h.get("/").await.text().await.unwrap();
    let part = no_mail(&page);
    assert!(part.contains("<a href=\"mailto:migrationbma@cfwb.be\">migrationbma@cfwb.be</a>"), "{part}");
    assert!(part.contains("+32 (0)2 413.3090"), "with its phone: {part}");
    assert!(part.contains("pas reçu le premier email à la date du 24 mai 2024"), "{part}");
    assert!(!part.contains("enseignement.be"), "{part}");
    assert!(page.contains("Équipe migration du SGNE"), "the footer too: {page}");
    assert_french_typography(&page, "/ after the deadline");
    h.stop().await;
}

/// A form returned with errors says so in its title and puts the focus on
/// the summary without a script (`autofocus`); error pages say so in their
/// title; the window never starts in the past.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_announced_and_the_window_starts_today_at_the_earliest() {
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let (_, token) = h.invited("ec810032@adm.cfwb.be").await;
    let (_, page) = h.login(&token, "directrice.dupont").await;
    assert_eq!(title_of(&page), "Formulaire — Migration des BMA");
    assert_french_typography(&page, "the form");
    let form = with(&valid_form(&csrf_of(&page)), &[("telephone", Some("02 413"))]);
    let res = post_form(&h, &format!("/formulaire/{token}"), &form).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert_eq!(title_of(&page), "Erreur\u{a0}: Formulaire — Migration des BMA");
    assert!(
        page.contains(
            "<div class=\"summary\" id=\"resume\" role=\"alert\" aria-labelledby=\"resume-erreurs\" tabindex=\"-1\" autofocus>"
        ),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    assert_french_typography(&page, "the form with errors");
    let page = h.get("/nulle-part").await.text().await.unwrap();
    assert_eq!(title_of(&page), "Erreur\u{a0}: Page introuvable — Migration des BMA");

    // Sent, then seen a month later: the window starts today, ends with the campaign.
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    let res = post_form(&h, &format!("/formulaire/{token}"), &valid_form(&csrf_of(&page))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    h.clock.set(datetime!(2024-05-20 09:00 UTC));
    let (_, page) = h.login(&token, "directrice.dupont").await;
    assert!(page.contains("<dd id=\"fenetre\">entre le 20 mai 2024 et le 31 mai 2024</dd>"), "{page}");
    assert!(page.contains("normalement entre le 20 mai 2024 et le 31 mai 2024"), "{page}");
    assert_eq!(title_of(&page), "État de la migration — Migration des BMA");
    assert_french_typography(&page, "the status page");
    h.stop().await;
}

/// `bma serve` reads the campaign clock: with `BMA_NOW` in the campaign, a
/// link of a store made on simulated time opens; after its end, 410.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bma_serve_honours_the_campaign_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("bma.db").display())).await.unwrap();
    let (_, token) = invited_mailbox(&store, "ec810033@adm.cfwb.be").await;
    store.close().await;
    for (now, expected) in [
        (Some("2024-04-22T10:00:00Z"), StatusCode::SERVICE_UNAVAILABLE),
        (Some("2024-06-01T10:00:00Z"), StatusCode::GONE),
        (None, StatusCode::GONE),
    ] {
        let (l, port) = listener().await;
        drop(l);
        let mut cmd = tokio::process::Command::new(bma_bin());
        cmd.args(["serve", "--no-scheduler", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .env_remove("BMA_CONFIG")
            .env_remove("BMA_NOW")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(now) = now {
            cmd.env("BMA_NOW", now);
        }
        let mut child = cmd.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = client();
        let mut up = false;
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
                up = true;
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        assert!(up, "bma serve answers /healthz");
        // No identity provider here: the link page says login is unavailable (503), unless gone (410).
        let res = http.get(format!("{base}/formulaire/{token}")).send().await.unwrap();
        assert_eq!(res.status(), expected, "BMA_NOW={now:?}");
        child.start_kill().unwrap();
        let out = child.wait_with_output().await.unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        if let Some(now) = now {
            assert!(log.contains(&format!("campaign clock: {now}")), "{log}");
        }
    }
}
// Issue 10: never lose the user's work or identity; server and inputs.

/// The `href` of the page's button link, HTML-unescaped.
fn button_href(html: &str) -> String {
    let at = html.find("<a class=\"button\" href=\"").expect("a button link") + "<a class=\"button\" href=\"".len();
    html[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
}

/// A form posted after its session expired is kept server-side (no
/// cookie holds it), shown again after the new login, and stored only
/// when the person sends it; a form posted with a session replaced in
/// another tab goes back to the form with its answers.
async fn answers_posted_after_the_session_expired_are_kept(backend: TestBackend) {
    let h = Harness::start(backend, |_| {}).await;
    let (id, token) = h.invited("ec810040@adm.cfwb.be").await;
    let (_, page) = h.login(&token, "directrice.dupont").await;
    let form = with(
        &valid_form(&csrf_of(&page)),
        &[
            ("telephone", Some("0470 12 34 56")),
            ("email_secours", Some("garde.dupont@ecole.test")),
            ("email_secours_confirmation", Some("garde.dupont@ecole.test")),
        ],
    );
    // The session expires while the form is open.
    h.clock.advance(Duration::minutes(PortalSettings::new(&h.base).session_minutes + 1));
    let res = post_form(&h, &format!("/formulaire/{token}"), &form).await;
    assert_eq!(res.status(), StatusCode::OK, "not a 403");
    for c in res.headers().get_all(SET_COOKIE) {
        let c = c.to_str().unwrap();
        assert!(!c.contains("0470") && !c.contains("garde"), "no answer in a cookie: {c}");
    }
    let page = res.text().await.unwrap();
    assert!(page.contains("Vos réponses n&#39;ont pas encore été enregistrées"), "{page}");
    assert!(h.store.enrollments(id).await.unwrap().is_empty());
    // The new login lands on the form with the answers, to be checked and sent.
    let (status, url, page) = login_with(&h.client, &button_href(&page), "directrice.dupont").await;
    assert_eq!(status, StatusCode::OK, "{url}: {page}");
    assert!(url.ends_with(&format!("/formulaire/{token}")), "{url}");
    assert!(page.contains("id=\"reponses-conservees\""), "{page}");
    assert!(page.contains("value=\"0470 12 34 56\"") && page.contains("value=\"garde.dupont@ecole.test\""), "{page}");
    assert!(h.store.enrollments(id).await.unwrap().is_empty(), "nothing stored before the person sends it");
    let csrf = csrf_of(&page);
    let res = post_form(&h, &format!("/formulaire/{token}"), &with(&form, &[("csrf", Some(&csrf))])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let stored = h.store.enrollments(id).await.unwrap();
    assert_eq!(
        (stored.len(), stored[0].form.phone.as_str(), stored[0].form.backup_email.as_str()),
        (1, "+32470123456", "garde.dupont@ecole.test")
    );
    // Sent: the kept answers are gone.
    let page = h.get(&format!("/formulaire/{token}/modifier")).await.text().await.unwrap();
    assert!(!page.contains("reponses-conservees"), "{page}");

    // A new login in another tab replaced the session: the form posted
    // from the old tab comes back with its answers.
    let old_csrf = csrf_of(&page);
    let (_, _) = h.login(&token, "directrice.dupont").await;
    let correction = with(&form, &[("csrf", Some(&old_csrf)), ("telephone", Some("02 413 30 90"))]);
    let res = post_form(&h, &format!("/formulaire/{token}"), &correction).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION].to_str().unwrap(), format!("/formulaire/{token}/modifier"));
    let page = h.get(&format!("/formulaire/{token}/modifier")).await.text().await.unwrap();
    assert!(page.contains("id=\"reponses-conservees\"") && page.contains("value=\"02 413 30 90\""), "{page}");
    assert_eq!(h.store.enrollments(id).await.unwrap().len(), 1, "nothing stored without the session's token");
    h.stop().await;
}

/// Answers say who gave them; another person with the same link sees
/// them masked and starts from an empty form; a new backup address tells
/// the previous one and the BMA, through the outbox, with the submission.
async fn answers_are_labelled_masked_for_another_person_and_a_new_backup_address_is_notified(backend: TestBackend) {
    let h = Harness::start(backend, |_| {}).await;
    let address = "ec810041@adm.cfwb.be";
    let (id, token) = h.invited(address).await;
    let (_, page) = h.login(&token, "directrice.dupont").await;
    let res = post_form(&h, &format!("/formulaire/{token}"), &valid_form(&csrf_of(&page))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(page.contains("envoyées par Marie Dupont le 22 avril 2024"), "{page}");
    assert!(page.contains("marie.perso@ecole.test") && page.contains("02 413 30 90"), "her own details: {page}");

    let luc = client();
    let (status, _, page) =
        login_with(&luc, &h.url(&format!("/formulaire/{token}/connexion")), "secretaire.martin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("envoyées par Marie Dupont le 22 avril 2024"), "{page}");
    assert!(!page.contains("marie.perso") && !page.contains("3224133090"), "masked for another person: {page}");
    assert!(page.contains("m•••@e•••.test") && page.contains("•••• 90"), "{page}");
    let page = luc.get(h.url(&format!("/formulaire/{token}/modifier"))).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("marie.perso") && !page.contains("3224133090"), "the form starts empty for him: {page}");
    assert!(page.contains("value=\"Martin\""), "{page}");

    let form = with(
        &valid_form(&csrf_of(&page)),
        &[
            ("nom", Some("Martin")),
            ("prenom", Some("Luc")),
            ("email_secours", Some("luc.perso@ecole.test")),
            ("email_secours_confirmation", Some("luc.perso@ecole.test")),
        ],
    );
    let res = luc.post(h.url(&format!("/formulaire/{token}"))).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let emails = h.store.emails_of(id).await.unwrap();
    let notices: Vec<_> = emails.iter().filter(|e| e.kind == "backup_changed").collect();
    let mut to: Vec<&str> = notices.iter().map(|e| e.recipient.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, [address, "marie.perso@ecole.test"], "the previous backup address and the BMA");
    for n in &notices {
        assert_eq!(n.subject, format!("L'adresse de secours de la BMA {address} a été modifiée"));
        assert!(!n.raw.contains("luc.perso"), "the new address is not given in full: {}", n.raw);
    }
    let event = h.store.timeline(id).await.unwrap().into_iter().find(|e| e.kind == "backup_changed").unwrap();
    let ids: Vec<i64> = serde_json::from_value(event.details["outbox_ids"].clone()).unwrap();
    assert_eq!(ids.len(), 2, "{:?}", event.details);
    assert!(ids.iter().all(|i| notices.iter().any(|n| n.id == *i)));
    // Now Marie sees his answers masked.
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(page.contains("envoyées par Luc Martin le 22 avril 2024") && !page.contains("luc.perso"), "{page}");
    // The same address again: no notice.
    let page = luc.get(h.url(&format!("/formulaire/{token}/modifier"))).send().await.unwrap().text().await.unwrap();
    let form = with(&form, &[("csrf", Some(&csrf_of(&page))), ("telephone", Some("02 413 30 91"))]);
    let res = luc.post(h.url(&format!("/formulaire/{token}"))).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let count = h.store.emails_of(id).await.unwrap().iter().filter(|e| e.kind == "backup_changed").count();
    assert_eq!(count, 2);
    h.stop().await;
}

on_both_backends!(
    answers_posted_after_the_session_expired_are_kept,
    answers_are_labelled_masked_for_another_person_and_a_new_backup_address_is_notified
);
