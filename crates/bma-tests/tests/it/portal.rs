//! The enrolment portal over HTTP (issue 5): the router of `bma serve`
//! on a real socket, logins at the lab's real OpenID Connect provider,
//! the store on SQLite and PostgreSQL where it matters; and `bma serve`
//! itself for what only the binary does (defaults, warning, logs).
//!
//! Every validation rule of the form and every security rule of the issue
//! has a case here: French 404/410 pages, security headers, CSRF on every
//! POST, cookie attributes, hashed sessions, rate limits, body limit, no
//! token in the log.
//!
//! Needs `cargo xtask lab up` (the OIDC provider) and `cargo build -p bma`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use bma_core::ManualClock;
use bma_core::lifecycle::{Actor, State};
use bma_mail::Templates;
use bma_store::{NewEmail, Store};
use bma_tests::provider::login_with;
use bma_tests::web::{
    Harness, T0, assert_security_headers, client, csrf_of, invited_mailbox, lab_oidc, listener, post_form, set_cookie,
    valid_form, with,
};
use bma_tests::{TestBackend, TestDb, addr, bma_bin, lab_file, on_both_backends};
use bma_web::{OidcSettings, Portal, PortalSettings};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use sqlx::Connection;
use time::Duration;
use time::macros::datetime;

// ---------------------------------------------------------------------------
// The link: unknown, expired, before login, without an identity provider.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_unknown_malformed_and_expired_get_french_pages() {
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let (_, token) = h.invited("ec810001@adm.cfwb.be").await;
    let unknown = bma_engine::new_token();
    for path in [format!("/formulaire/{unknown}"), "/formulaire/court".to_owned(), "/formulaire/a%2Fb".to_owned()] {
        let res = h.get(&path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert_security_headers(res.headers(), &path);
        let body = res.text().await.unwrap();
        assert!(body.contains("Ce lien n&#39;est pas valide") && body.contains("migrationbma@cfwb.be"), "{body}");
        assert!(body.contains("lang=\"fr\""));
    }
    let res = h.get(&format!("/formulaire/{token}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains("ec810001@adm.cfwb.be") && body.contains("Se connecter avec Cerbère EDU"), "{body}");

    // After the campaign's end (2024-05-31) the link is gone; an unknown one is still unknown.
    h.clock.set(datetime!(2024-06-01 00:30 UTC));
    let res = h.get(&format!("/formulaire/{token}")).await;
    assert_eq!(res.status(), StatusCode::GONE);
    let body = res.text().await.unwrap();
    assert!(body.contains("Ce lien a expiré") && body.contains("31 mai 2024"), "{body}");
    assert!(body.contains("migrationbma@cfwb.be"), "the contact of the mailbox's phase: {body}");
    assert_eq!(h.get(&format!("/formulaire/{unknown}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.get(&format!("/formulaire/{token}/connexion")).await.status(), StatusCode::GONE);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_identity_provider_pages_say_login_is_unavailable() {
    let h = Harness::start(TestBackend::Sqlite, |s| s.oidc = None).await;
    let (_, token) = h.invited("ec810002@adm.cfwb.be").await;
    for path in [format!("/formulaire/{token}"), format!("/formulaire/{token}/connexion")] {
        let res = h.get(&path).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let body = res.text().await.unwrap();
        assert!(body.contains("La connexion est momentanément indisponible"), "{body}");
        assert!(title_of(&body).starts_with("Erreur\u{a0}: "), "{body}");
        assert!(!body.contains("Se connecter avec"), "{body}");
    }
    let home = h.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("BMA@enseignement.be"), "before the migration: Enseignement.be");
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Login at the lab's provider, the form, the submission.

async fn login_submit_correct(backend: TestBackend) {
    let h = Harness::start(backend, |_| {}).await;
    let address = if backend == TestBackend::Sqlite { "ec810003@adm.cfwb.be" } else { "ec820003@adm.cfwb.be" };
    let (id, token) = h.invited(address).await;

    // Before login: no session cookie is set by merely opening the link.
    let res = h.get(&format!("/formulaire/{token}")).await;
    assert!(res.headers().get(SET_COOKIE).is_none());

    let (status, page) = h.login(&token, "directrice.dupont").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The identity is shown, the names are prefilled, the fields are labelled.
    assert!(page.contains("id=\"identite\">Marie Dupont</strong> (marie.dupont@ecole.test)"), "{page}");
    assert!(page.contains("id=\"nom\" name=\"nom\" type=\"text\" value=\"Dupont\""), "{page}");
    assert!(page.contains("id=\"prenom\" name=\"prenom\" type=\"text\" value=\"Marie\""), "{page}");
    for label in [
        "<label for=\"nom\">",
        "<label for=\"telephone\">",
        "<label for=\"role\">",
        "<label for=\"email_secours\">",
        "<legend>Connaissez-vous le mot de passe actuel de votre BMA\u{a0}?</legend>",
    ] {
        assert!(page.contains(label), "{label}");
    }
    // The privacy notice is a page the form links to, not a box to tick (issue 10).
    assert!(page.contains("<a href=\"/confidentialite\" id=\"lien-notice\">"), "{page}");
    assert!(!page.contains("type=\"checkbox\""), "{page}");
    let csrf = csrf_of(&page);

    // A valid submission: 303 to the confirmation page.
    let res = post_form(&h, &format!("/formulaire/{token}"), &valid_form(&csrf)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], format!("/formulaire/{token}/confirmation").as_str());
    let res = h.get(&format!("/formulaire/{token}/confirmation")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("Merci, votre formulaire a bien été reçu"), "{page}");
    assert!(page.contains("formulaire reçu") && page.contains("marie.perso@ecole.test"));
    // The phone as people write it, not E.164 (issue 10).
    assert!(page.contains("<dd id=\"telephone\">02 413 30 90</dd>") && !page.contains("+3224133090"), "{page}");
    assert!(page.contains("<span class=\"pending\" id=\"secours-etat\">non vérifiée"), "{page}");
    // 3 to 12 weeks after mail 1, but never after the campaign's end (31 May) (issue 10).
    assert!(
        page.contains("<dd id=\"fenetre\">entre le 13 mai 2024 et le 31 mai 2024</dd>"),
        "the cutover window: {page}"
    );
    // Who sent it, without jargon (issue 10: no "version 1").
    assert!(page.contains("<dd id=\"recu-le\">envoyées par Marie Dupont le 22 avril 2024</dd>"), "{page}");
    assert!(page.contains("un nouveau mot de passe vous sera"), "{page}");

    // Stored: the version with who and when, the state, the events, the emails.
    let m = h.store.mailbox(&addr(address)).await.unwrap();
    assert_eq!(m.state, State::Enrolled);
    let versions = h.store.enrollments(id).await.unwrap();
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!((v.version, v.submitted_at), (1, T0));
    assert_eq!(v.form.phone, "+3224133090");
    assert_eq!(v.form.backup_email, "marie.perso@ecole.test");
    assert!(!v.form.knows_password);
    assert_eq!(
        (v.identity.subject.as_str(), v.identity.name.as_str(), v.identity.email.as_str()),
        ("cerbere-0001", "Marie Dupont", "marie.dupont@ecole.test")
    );
    let events = h.store.timeline(id).await.unwrap();
    let last: Vec<(&str, &str)> = events.iter().rev().take(2).map(|e| (e.kind.as_str(), e.actor.as_str())).collect();
    assert_eq!(
        last,
        vec![("backup_verification_requested", "manager:cerbere-0001"), ("transition", "manager:cerbere-0001")]
    );
    let t = events.iter().find(|e| e.to_state == Some(State::Enrolled)).unwrap();
    assert_eq!(t.from_state, Some(State::Invited));
    let emails = h.store.emails_of(id).await.unwrap();
    let kinds: Vec<(&str, &str)> = emails.iter().map(|e| (e.kind.as_str(), e.recipient.as_str())).collect();
    assert_eq!(
        kinds,
        vec![("invitation", address), ("confirmation", address), ("backup_verification", "marie.perso@ecole.test")]
    );
    assert!(emails[1].subject.starts_with("Formulaire de migration reçu"), "{}", emails[1].subject);

    // The same link, later: the status page; then a correction, kept as version 2.
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(page.contains("Où en est la migration") && page.contains("Corriger le formulaire"), "{page}");
    assert!(page.contains("Équipe migration du SGNE"), "during the migration: the SGNE team");
    let page = h.get(&format!("/formulaire/{token}/modifier")).await.text().await.unwrap();
    assert!(page.contains("value=\"02 413 30 90\"") && page.contains("Vous corrigez le formulaire"), "{page}");
    assert!(page.contains("Adresse de secours actuelle\u{a0}: marie.perso@ecole.test, non vérifiée"), "{page}");
    let form = with(
        &valid_form(&csrf_of(&page)),
        &[("telephone", Some("0470 12 34 56")), ("mot_de_passe_connu", Some("oui"))],
    );
    assert_eq!(post_form(&h, &format!("/formulaire/{token}"), &form).await.status(), StatusCode::SEE_OTHER);
    let versions = h.store.enrollments(id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| (v.version, v.form.phone.as_str())).collect::<Vec<_>>(),
        vec![(1, "+3224133090"), (2, "+32470123456")]
    );
    assert_eq!(h.store.mailbox(&addr(address)).await.unwrap().state, State::Enrolled);
    let events = h.store.timeline(id).await.unwrap();
    assert_eq!(events.last().unwrap().kind, "form_corrected");
    let emails = h.store.emails_of(id).await.unwrap();
    assert_eq!(emails.iter().filter(|e| e.kind == "confirmation").count(), 2, "a confirmation per version");
    assert_eq!(emails.iter().filter(|e| e.kind == "backup_verification").count(), 1, "same backup: no new link");

    // Once the cutover is scheduled the form is closed: 409, nothing stored.
    let actor = Actor::System("test".into());
    assert!(h.store.schedule_cutover(&addr(address), datetime!(2024-05-28 0:00 UTC).date(), &actor, T0).await.unwrap());
    assert_eq!(h.store.mailbox(&addr(address)).await.unwrap().state, State::CutoverScheduled);
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(page.contains("migration planifiée") && !page.contains("Corriger le formulaire"), "{page}");
    assert!(page.contains("<dt>Migration prévue</dt><dd id=\"fenetre\">le 28 mai 2024</dd>"), "the day: {page}");
    let res = h.get(&format!("/formulaire/{token}/modifier")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = post_form(&h, &format!("/formulaire/{token}"), &valid_form(&csrf_of(&page))).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("ne peut plus être modifié"));
    assert_eq!(h.store.enrollments(id).await.unwrap().len(), 2);

    // After the migration: ETNIC's Service Desk.
    h.store.transition(&addr(address), State::Migrating, &actor, "test", serde_json::json!({}), T0).await.unwrap();
    h.store.transition(&addr(address), State::Migrated, &actor, "test", serde_json::json!({}), T0).await.unwrap();
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(page.contains("support@etnic.be") && page.contains("Votre boîte a migré"), "{page}");
    h.stop().await;
}

async fn backup_address_verification(backend: TestBackend) {
    let h = Harness::start(backend, |_| {}).await;
    let address = if backend == TestBackend::Sqlite { "ec810004@adm.cfwb.be" } else { "ec820004@adm.cfwb.be" };
    let (id, token) = h.invited(address).await;
    let (_, page) = h.login(&token, "secretaire.martin").await;
    let form = with(
        &valid_form(&csrf_of(&page)),
        &[("email_secours", Some("luc@ecole.test")), ("email_secours_confirmation", Some("luc@ecole.test"))],
    );
    assert_eq!(post_form(&h, &format!("/formulaire/{token}"), &form).await.status(), StatusCode::SEE_OTHER);
    let code_in = |raw: &str| -> String {
        let raw = raw.replace("=\r\n", "");
        raw.split("/verification/").nth(1).unwrap().chars().take(43).collect()
    };
    let first = code_in(&h.store.emails_of(id).await.unwrap().last().unwrap().raw);

    // A new link makes the old one useless; not sooner than 10 minutes
    // after the last one (counted in the store).
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    let res = h.post(&format!("/formulaire/{token}/verification"), &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let text = res.text().await.unwrap();
    assert!(text.contains("Vous pourrez demander un nouveau lien dans 10 minutes"), "{text}");
    h.clock.advance(Duration::minutes(10));
    let res = h.post(&format!("/formulaire/{token}/verification"), &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Un nouveau lien de vérification a été envoyé à luc@ecole.test"));
    let emails = h.store.emails_of(id).await.unwrap();
    assert_eq!(emails.iter().filter(|e| e.kind == "backup_verification").count(), 2);
    let second = code_in(&emails.last().unwrap().raw);
    assert_ne!(first, second);
    let res = h.client.post(h.url(&format!("/verification/{first}"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Following the link (a GET, as mail scanners do) verifies nothing: it
    // shows a button.
    let other = client();
    for _ in 0..3 {
        let res = other.get(h.url(&format!("/verification/{second}"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.text().await.unwrap();
        assert!(text.contains(&format!("<form method=\"post\" action=\"/verification/{second}\">")), "{text}");
    }
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(page.contains("non vérifiée"), "a GET verified nothing: {page}");
    // The button works without a session (the address may be read anywhere), and again.
    for _ in 0..2 {
        let res = other.post(h.url(&format!("/verification/{second}"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.text().await.unwrap().contains("L&#39;adresse luc@ecole.test est confirmée"));
    }
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(page.contains("vérifiée le 22 avril 2024"), "{page}");
    assert!(h.store.timeline(id).await.unwrap().iter().any(|e| e.kind == "backup_verified"));

    // Expired links say so.
    let page = h.get(&format!("/formulaire/{token}/modifier")).await.text().await.unwrap();
    assert!(page.contains("Adresse de secours actuelle\u{a0}: luc@ecole.test, vérifiée le 22 avril 2024."), "{page}");
    let form = with(
        &valid_form(&csrf_of(&page)),
        &[("email_secours", Some("luc2@ecole.test")), ("email_secours_confirmation", Some("luc2@ecole.test"))],
    );
    assert_eq!(post_form(&h, &format!("/formulaire/{token}"), &form).await.status(), StatusCode::SEE_OTHER);
    let emails = h.store.emails_of(id).await.unwrap();
    let third = code_in(&emails.iter().rfind(|e| e.kind == "backup_verification").unwrap().raw);
    // A few links a day at most: the first of luc2 was the third of the
    // day; one more after 10 minutes, then none until a day has passed
    // since the first.
    let resend_path = format!("/formulaire/{token}/verification");
    let resend = |csrf: String| {
        let (h, path) = (&h, &resend_path);
        async move { h.post(path, &[("csrf", &csrf)]).await }
    };
    let csrf = csrf_of(&h.get(&format!("/formulaire/{token}")).await.text().await.unwrap());
    h.clock.advance(Duration::minutes(10));
    assert_eq!(resend(csrf.clone()).await.status(), StatusCode::OK);
    h.clock.advance(Duration::minutes(30));
    let res = resend(csrf.clone()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let text = res.text().await.unwrap();
    assert!(text.contains("Vous pourrez demander un nouveau lien dans 24 heures"), "{text}");
    let fourth = code_in(&h.store.emails_of(id).await.unwrap().last().unwrap().raw);
    assert_ne!(third, fourth);
    h.clock.advance(Duration::days(15));
    assert_eq!(
        h.client.post(h.url(&format!("/verification/{fourth}"))).send().await.unwrap().status(),
        StatusCode::GONE
    );
    h.stop().await;
}

on_both_backends!(login_submit_correct, backup_address_verification);

/// Every rule of the form, one case each: 422, the French error next to
/// its field (tied by aria-describedby), the values kept, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_rule() {
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let (id, token) = h.invited("ec810005@adm.cfwb.be").await;
    let (_, page) = h.login(&token, "directrice.dupont").await;
    let csrf = csrf_of(&page);
    let base = valid_form(&csrf);
    let long = "x".repeat(101);
    type Case<'a> = (&'a [(&'static str, Option<&'a str>)], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (&[("nom", Some("  "))], "nom", "Nom\u{a0}: ce champ est obligatoire."),
        (&[("nom", None)], "nom", "Nom\u{a0}: ce champ est obligatoire."),
        (&[("prenom", Some("Marie<b>"))], "prenom", "Prénom\u{a0}: seuls les lettres"),
        (&[("nom", Some(long.as_str()))], "nom", "100 caractères au plus"),
        (&[("telephone", Some(""))], "telephone", "Le numéro de téléphone est obligatoire."),
        (&[("telephone", Some("12345"))], "telephone", "Numéro de téléphone invalide"),
        (&[("telephone", Some("0410 12 34 56"))], "telephone", "Numéro de téléphone invalide"),
        (&[("telephone", Some("+32 2 413 30 9"))], "telephone", "Numéro de téléphone invalide"),
        (&[("role", Some("chef"))], "role", "Choisissez votre fonction dans la liste."),
        (&[("role", None)], "role", "Choisissez votre fonction dans la liste."),
        (
            &[("email_secours", Some("")), ("email_secours_confirmation", Some(""))],
            "email_secours",
            "L&#39;adresse email de secours est obligatoire.",
        ),
        (
            &[("email_secours", Some("pas-une-adresse")), ("email_secours_confirmation", Some("pas-une-adresse"))],
            "email_secours",
            "Adresse email de secours invalide",
        ),
        (
            &[
                ("email_secours", Some("EC810005@adm.cfwb.be")),
                ("email_secours_confirmation", Some("ec810005@adm.cfwb.be")),
            ],
            "email_secours",
            "différente de la BMA elle-même",
        ),
        (
            &[
                ("email_secours", Some("direction@adm.cfwb.be")),
                ("email_secours_confirmation", Some("direction@adm.cfwb.be")),
            ],
            "email_secours",
            "ne peut pas être une adresse @adm.cfwb.be",
        ),
        (
            &[
                ("email_secours", Some("x@ecoles.adm.cfwb.be")),
                ("email_secours_confirmation", Some("x@ecoles.adm.cfwb.be")),
            ],
            "email_secours",
            "ne peut pas être une adresse @adm.cfwb.be",
        ),
        (
            &[("email_secours_confirmation", Some("marie.perso@ecole.tst"))],
            "email_secours_confirmation",
            "Les deux adresses de secours ne sont pas identiques.",
        ),
        (&[("email_secours_confirmation", None)], "email_secours_confirmation", "Retapez l&#39;adresse de secours"),
        // Issue 10: no URL-like text in a name (it is quoted in emails we send).
        (
            &[("nom", Some("www.evil.example"))],
            "nom",
            "Nom\u{a0}: un point n&#39;est accepté qu&#39;après une initiale",
        ),
        (
            &[("prenom", Some("evil.com"))],
            "prenom",
            "Prénom\u{a0}: un point n&#39;est accepté qu&#39;après une initiale",
        ),
        // Issue 10: a real address parser; a field error, never a 500 nor a dead outbox row.
        (
            &[
                ("email_secours", Some("Marie Dupont <marie@ecole.test>")),
                ("email_secours_confirmation", Some("Marie Dupont <marie@ecole.test>")),
            ],
            "email_secours",
            "sans nom, guillemets ni chevrons",
        ),
        (
            &[
                ("email_secours", Some("<marie@ecole.test>")),
                ("email_secours_confirmation", Some("<marie@ecole.test>")),
            ],
            "email_secours",
            "sans nom, guillemets ni chevrons",
        ),
        (
            &[
                ("email_secours", Some("\"marie\"@ecole.test")),
                ("email_secours_confirmation", Some("\"marie\"@ecole.test")),
            ],
            "email_secours",
            "sans nom, guillemets ni chevrons",
        ),
        (
            &[("email_secours", Some("a@b..c")), ("email_secours_confirmation", Some("a@b..c"))],
            "email_secours",
            "Adresse email de secours invalide",
        ),
        (
            &[("email_secours", Some("a@[127.0.0.1]")), ("email_secours_confirmation", Some("a@[127.0.0.1]"))],
            "email_secours",
            "Adresse email de secours invalide",
        ),
        (&[("mot_de_passe_connu", None)], "mot_de_passe_connu", "Indiquez si vous connaissez le mot de passe actuel"),
        (
            &[("mot_de_passe_connu", Some("peut-être"))],
            "mot_de_passe_connu",
            "Indiquez si vous connaissez le mot de passe actuel",
        ),
    ];
    for (changes, field, message) in cases {
        let form = with(&base, changes);
        let res = post_form(&h, &format!("/formulaire/{token}"), &form).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{changes:?}");
        let body = res.text().await.unwrap();
        let error = format!("<p class=\"error\" id=\"{field}-erreur\">");
        let at = body.find(&error).unwrap_or_else(|| panic!("{changes:?}: no {error} in\n{body}"));
        assert!(body[at..].split("</p>").next().unwrap().contains(message), "{changes:?}: {message}\n{body}");
        assert_eq!(body.matches("class=\"error\"").count(), 1, "{changes:?}: one error only");
        assert!(body.contains(&format!("href=\"#{field}\"")), "{changes:?}: the summary links to the field");
        let tag = &body[body.find(&format!("id=\"{field}\"")).unwrap()..];
        let tag = tag.split('>').next().unwrap();
        let described = tag.split("aria-describedby=\"").nth(1).map(|r| r.split('"').next().unwrap());
        assert!(
            described.is_some_and(|d| d.split(' ').any(|id| id == format!("{field}-erreur"))),
            "{changes:?}: the field is tied to its error: {tag}"
        );
        // The other values are kept.
        if !changes.iter().any(|(k, _)| *k == "telephone") {
            assert!(body.contains("value=\"+32 (0)2 413.3090\""), "{changes:?}: phone kept");
        }
        if !changes.iter().any(|(k, _)| *k == "role") {
            assert!(body.contains("<option value=\"direction\" selected>"), "{changes:?}: role kept");
        }
    }
    // Several errors at once, all reported.
    let form = with(&base, &[("nom", Some("")), ("telephone", Some("abc")), ("role", None)]);
    let body = post_form(&h, &format!("/formulaire/{token}"), &form).await.text().await.unwrap();
    assert!(body.contains("Le formulaire contient 3 erreurs"), "{body}");
    assert!(h.store.enrollments(id).await.unwrap().is_empty(), "nothing stored");
    let kinds: Vec<String> = h.store.emails_of(id).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert!(kinds.iter().all(|k| k == "invitation"), "no outbox row but mail 1: {kinds:?}");
    assert_eq!(h.store.mailbox(&addr("ec810005@adm.cfwb.be")).await.unwrap().state, State::Invited);
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Security.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_needs_the_session_csrf_token() {
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let (id, token) = h.invited("ec810006@adm.cfwb.be").await;
    let (_, page) = h.login(&token, "directrice.dupont").await;
    let csrf = csrf_of(&page);
    // Another person's session and token.
    let other = client();
    let (other_id, other_token) = invited_mailbox(&h.store, "ec810016@adm.cfwb.be").await;
    let (_, _, other_page) =
        login_with(&other, &h.url(&format!("/formulaire/{other_token}/connexion")), "directeur.lejeune").await;
    let other_csrf = csrf_of(&other_page);
    assert_ne!(csrf, other_csrf);
    let anonymous = client();
    let posts =
        [format!("/formulaire/{token}"), format!("/formulaire/{token}/verification"), "/deconnexion".to_owned()];
    for path in &posts {
        for (who, client, sent) in [
            ("no session, no token", &anonymous, None),
            ("no session, a token", &anonymous, Some(csrf.as_str())),
            ("session, no token", &h.client, None),
            ("session, empty token", &h.client, Some("")),
            ("session, wrong token", &h.client, Some("x")),
            ("session, another session's token", &h.client, Some(other_csrf.as_str())),
        ] {
            let mut form = with(&valid_form(""), &[("csrf", None)]);
            if let Some(t) = sent {
                form.push(("csrf", t.to_owned()));
            }
            let res = client.post(h.url(path)).form(&form).send().await.unwrap();
            if path.starts_with("/formulaire/") && !path.ends_with("/verification") {
                // The form itself is not refused: it is kept for after a
                // (new) login, and nothing is stored as an answer.
                let status = res.status();
                let text = res.text().await.unwrap();
                assert!(
                    (status == StatusCode::OK && text.contains("Vos réponses n&#39;ont pas encore été enregistrées"))
                        || status == StatusCode::SEE_OTHER,
                    "{path}: {who}: {status} {text}"
                );
                continue;
            }
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}: {who}");
            assert!(res.text().await.unwrap().contains("Demande refusée"), "{path}: {who}");
        }
    }
    assert!(
        h.store.enrollments(id).await.unwrap().is_empty() && h.store.enrollments(other_id).await.unwrap().is_empty()
    );
    // The right token works (the session is still there).
    assert_eq!(
        post_form(&h, &format!("/formulaire/{token}"), &valid_form(&csrf)).await.status(),
        StatusCode::SEE_OTHER
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_cookies_and_hashed_sessions() {
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let (_, token) = h.invited("ec810007@adm.cfwb.be").await;
    for path in ["/", "/nulle-part", &format!("/formulaire/{token}")] {
        let res = h.get(path).await;
        assert_security_headers(res.headers(), path);
        assert!(res.headers().get("strict-transport-security").is_none(), "plain-HTTP loopback portal");
    }
    let css = h.get("/static/portal.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains(":focus-visible"), "a visible focus");

    // Login start: a session cookie (not Secure on a loopback http portal) and the return cookie.
    let res = h.get(&format!("/formulaire/{token}/connexion")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()[LOCATION].to_str().unwrap().to_owned();
    let auth = url::Url::parse(&to).unwrap();
    let q: Vec<(String, String)> = auth.query_pairs().into_owned().collect();
    let has = |k: &str| q.iter().any(|(n, v)| n == k && !v.is_empty());
    assert!(to.starts_with("http://127.0.0.1:9090/"), "{to}");
    for k in ["state", "nonce", "code_challenge", "client_id", "redirect_uri"] {
        assert!(has(k), "{k} in {to}");
    }
    assert!(
        q.contains(&("code_challenge_method".into(), "S256".into()))
            && q.contains(&("response_type".into(), "code".into()))
    );
    let before = set_cookie(res.headers(), "bma_session").unwrap().to_owned();
    assert!(before.ends_with("; Path=/; HttpOnly; SameSite=Lax") && !before.contains("Secure"), "{before}");
    assert!(set_cookie(res.headers(), "bma_retour").is_some());
    let before_id = before.split(';').next().unwrap().trim_start_matches("bma_session=").to_owned();

    // The callback (the rest of the login) gives a new session id: an id planted before login is worthless.
    let mut url = auth;
    let mut res = h.client.get(url.clone()).send().await.unwrap();
    let mut after = None;
    for _ in 0..15 {
        if let Some(c) = set_cookie(res.headers(), "bma_session") {
            after = Some(c.to_owned());
        }
        if res.status().is_redirection() {
            url = url.join(res.headers()[LOCATION].to_str().unwrap()).unwrap();
            res = h.client.get(url.clone()).send().await.unwrap();
        } else if url.path().starts_with("/interaction/") {
            url = url.join(&format!("{}/login", url.path())).unwrap();
            res = h
                .client
                .post(url.clone())
                .form(&[("login", "directrice.dupont"), ("password", "password")])
                .send()
                .await
                .unwrap();
        } else {
            break;
        }
    }
    let after = after.expect("a new session cookie at the callback");
    let after_id = after.split(';').next().unwrap().trim_start_matches("bma_session=").to_owned();
    assert_ne!(before_id, after_id);
    assert!(after.contains("Max-Age=3600") && after.ends_with("HttpOnly; SameSite=Lax"), "{after}");
    let page = res.text().await.unwrap();
    assert!(page.contains("Marie Dupont"), "logged in: {page}");

    // Server-side, sessions are stored under the hash of their id only.
    let url = h.db.as_ref().unwrap().url.clone();
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&format!("{url}?mode=ro")).await.unwrap();
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id_hash FROM portal_sessions").fetch_all(&mut conn).await.unwrap();
    assert!(ids.contains(&bma_core::TokenHash::of(&after_id).as_str().to_owned()), "{ids:?}");
    assert!(
        !ids.contains(&after_id) && !ids.contains(&bma_core::TokenHash::of(&before_id).as_str().to_owned()),
        "old session deleted"
    );
    conn.close().await.unwrap();

    // A replayed old id is not a session.
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = replay
        .get(h.url(&format!("/formulaire/{token}")))
        .header("cookie", format!("bma_session={before_id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Se connecter avec Cerbère EDU"), "{page}");

    // Logout ends the session, server-side too, and sends the browser to
    // end the provider's session (RP-initiated logout, the ID token as hint).
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    let res = h.post("/deconnexion", &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(res.headers(), "bma_session").unwrap().starts_with("bma_session=; Max-Age=0"));
    let end = res.headers()[LOCATION].to_str().unwrap();
    assert!(end.starts_with(&format!("{}/session/end?id_token_hint=ey", lab_oidc().issuer)), "{end}");
    let page = replay
        .get(h.url(&format!("/formulaire/{token}")))
        .header("cookie", format!("bma_session={after_id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Se connecter avec Cerbère EDU"), "the old cookie no longer works");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_portals_use_secure_host_cookies_and_hsts() {
    let h = Harness::start(TestBackend::Sqlite, |s| s.base_url = "https://portail.bma.test".into()).await;
    let (_, token) = h.invited("ec810008@adm.cfwb.be").await;
    let res = h.get(&format!("/formulaire/{token}/connexion")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let c = set_cookie(res.headers(), "__Host-bma_session").expect("__Host- session cookie");
    assert!(c.ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax") && !c.contains("Domain"), "{c}");
    assert!(set_cookie(res.headers(), "__Host-bma_retour").unwrap().contains("Secure"));
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .contains("redirect_uri=https%3A%2F%2Fportail.bma.test%2Fauth%2Fcallback")
    );
    assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000");
    // Plain http elsewhere than on loopback is refused.
    let store = h.store.clone();
    let refused = Portal::new(
        store,
        PortalSettings::new("http://portail.bma.test"),
        Templates::load(None).unwrap(),
        h.clock.clone(),
    );
    assert!(refused.unwrap_err().to_string().contains("only allowed on a loopback host"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_refused() {
    // A wrong client secret: the provider refuses the code exchange.
    let h = Harness::start(TestBackend::Sqlite, |s| {
        if let Some(o) = s.oidc.as_mut() {
            o.client_secret = "not-the-secret".into();
        }
    })
    .await;
    let (_, token) = h.invited("ec810009@adm.cfwb.be").await;
    let (status, page) = h.login(&token, "directrice.dupont").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("La connexion n&#39;a pas abouti"));
    // A callback whose state does not match the login started; and one without a session.
    let res = h.get(&format!("/formulaire/{token}/connexion")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(h.get("/auth/callback?code=abc&state=forged").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        client().get(h.url("/auth/callback?code=abc&state=x")).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // The provider's own error.
    assert_eq!(h.get("/auth/callback?error=access_denied").await.status(), StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_link_and_per_client_and_body_limit() {
    let h = Harness::start(TestBackend::Sqlite, |s| {
        s.rate_limit_per_link = 3;
        s.rate_limit_per_ip = 12;
    })
    .await;
    let (_, a) = h.invited("ec810010@adm.cfwb.be").await;
    let (_, b) = invited_mailbox(&h.store, "ec810011@adm.cfwb.be").await;
    for _ in 0..3 {
        assert_eq!(h.get(&format!("/formulaire/{a}")).await.status(), StatusCode::OK);
    }
    let res = h.get(&format!("/formulaire/{a}")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    assert!(res.text().await.unwrap().contains("Trop de demandes"));
    assert_eq!(h.get(&format!("/formulaire/{b}")).await.status(), StatusCode::OK, "another link has its own budget");
    // 4 + 1 requests so far from this address; the 13th is refused, health checks are not counted.
    let body = vec![b'x'; 20 * 1024];
    let res = h
        .client
        .post(h.url("/deconnexion"))
        .body(body)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "body over 16 KiB");
    for _ in 0..6 {
        assert_eq!(h.get("/").await.status(), StatusCode::OK);
    }
    assert_eq!(h.get("/").await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h.get("/healthz").await.status(), StatusCode::OK);
    h.stop().await;
}

// ---------------------------------------------------------------------------
// `bma serve` itself.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bma_serve_starts_on_defaults_and_logs_no_token() {
    let dir = tempfile::tempdir().unwrap();
    // A mailbox in the default store (sqlite://bma.db in the working directory).
    let store = Store::open(&format!("sqlite://{}", dir.path().join("bma.db").display())).await.unwrap();
    let (_, token) = invited_mailbox(&store, "ec810012@adm.cfwb.be").await;
    store.close().await;
    let (l, port) = listener().await;
    drop(l);
    let mut child = tokio::process::Command::new(bma_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_remove("BMA_CONFIG")
        .env("BMA_LOG", "debug")
        // The FAQ's campaign ended in 2024: keep its links alive for this run.
        .env("BMA_CAMPAIGN_END", "2099-12-31")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
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
    let res = http.get(format!("{base}/formulaire/{token}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.text().await.unwrap().contains("La connexion est momentanément indisponible"));
    let res = http.get(format!("{base}/formulaire/{}", bma_engine::new_token())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_security_headers(res.headers(), "404");
    let res = http.post(format!("{base}/formulaire/{token}")).form(&[("nom", "x")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(http.post(format!("{base}/verification/{token}")).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("login is unavailable"), "a warning at start: {log}");
    assert!(log.contains("/formulaire/{token}"), "requests are logged by route: {log}");
    assert!(!log.contains(&token), "the token never reaches the log: {log}");
    assert!(!log.contains("ec810012"), "nor the mailbox: {log}");
}

/// The ID token and the flow are checked against the real provider: a
/// login finishes only with its own state, nonce and PKCE verifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_login_needs_its_state_nonce_and_verifier() {
    use bma_web::IdentityProvider;
    let (l, port) = listener().await;
    let redirect = format!("http://127.0.0.1:{port}/auth/callback");
    let oidc = bma_web::Oidc::new(lab_oidc(), &redirect).unwrap();
    let browser = client();
    // Logs in at the provider and returns the callback's query, without calling it.
    let authorize = |start: bma_web::LoginStart| {
        let browser = browser.clone();
        let redirect = redirect.clone();
        async move {
            let mut url = url::Url::parse(&start.redirect_to).unwrap();
            let mut res = browser.get(url.clone()).send().await.unwrap();
            for _ in 0..15 {
                if res.status().is_redirection() {
                    url = url.join(res.headers()[LOCATION].to_str().unwrap()).unwrap();
                    if url.as_str().starts_with(&redirect) {
                        return url.query_pairs().into_owned().collect::<Vec<(String, String)>>();
                    }
                    res = browser.get(url.clone()).send().await.unwrap();
                } else {
                    url = url.join(&format!("{}/login", url.path())).unwrap();
                    res = browser
                        .post(url.clone())
                        .form(&[("login", "directeur.lejeune"), ("password", "password")])
                        .send()
                        .await
                        .unwrap();
                }
            }
            panic!("never redirected to the callback");
        }
    };
    let tamper = |pending: &str, key: &str| {
        let mut v: serde_json::Value = serde_json::from_str(pending).unwrap();
        v[key] = serde_json::Value::String(bma_engine::new_token());
        v.to_string()
    };
    for (what, key, failure) in [
        ("nonce", Some("nonce"), "invalid login response: ID token"),
        ("PKCE verifier", Some("verifier"), "invalid login response: code exchange"),
        ("state", Some("state"), "login refused: state does not match"),
        ("nothing", None, ""),
    ] {
        let start = oidc.start().await.unwrap();
        let pending = match key {
            Some(k) => tamper(&start.pending, k),
            None => start.pending.clone(),
        };
        let query = authorize(start).await;
        let result = oidc.finish(&pending, &query).await;
        match key {
            Some(_) => {
                let e = result.expect_err(what).to_string();
                assert!(e.starts_with(failure), "a wrong {what}: {e}");
            }
            None => {
                let id = result.unwrap().identity;
                assert_eq!(
                    (id.subject.as_str(), id.given_name.as_str(), id.family_name.as_str(), id.email.as_str()),
                    ("cerbere-0003", "Éric", "Lejeune", "eric.lejeune@ecole.test")
                );
            }
        }
    }
    drop(l);
}

/// A submission is one transaction, on both backends: concurrent ones each
/// get their own version (or are refused whole), the mailbox is enrolled
/// once, and a refused one writes nothing.
async fn submissions_are_atomic(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let address = "ec810013@adm.cfwb.be";
    let (id, _) = invited_mailbox(&store, address).await;
    let identity = bma_store::ManagerIdentity {
        subject: "cerbere-0002".into(),
        name: "Luc Martin".into(),
        given_name: "Luc".into(),
        family_name: "Martin".into(),
        email: "luc.martin@ecole.test".into(),
    };
    let form = bma_store::EnrollmentForm {
        family_name: "Martin".into(),
        given_name: "Luc".into(),
        phone: "+3224133090".into(),
        role: "secretariat".into(),
        backup_email: "luc@ecole.test".into(),
        knows_password: true,
    };
    let email = |i: usize| NewEmail {
        mailbox_id: Some(id),
        kind: "confirmation".into(),
        key: format!("confirmation:{address}:{i}"),
        recipient: address.into(),
        envelope_from: "bounces@bma.test".into(),
        message_id: format!("confirmation.{i}.{}@bma.test", std::process::id()),
        subject: "Formulaire reçu".into(),
        raw: "Subject: x\r\n\r\nx\r\n".into(),
        run_at: T0,
        max_attempts: 1,
    };
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (store, identity, form, email) = (store.clone(), identity.clone(), form.clone(), email(i));
        tasks.push(tokio::spawn(async move { store.submit_enrollment(id, &form, &identity, &email, None, T0).await }));
    }
    let mut stored = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => stored += 1,
            Err(bma_store::StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(stored >= 1);
    let versions: Vec<i64> = store.enrollments(id).await.unwrap().iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=stored as i64).collect::<Vec<_>>(), "one version per stored submission, no gap");
    let events = store.timeline(id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.to_state == Some(State::Enrolled)).count(), 1, "enrolled once");
    assert_eq!(events.iter().filter(|e| e.kind == "form_corrected").count(), stored - 1);
    let confirmations = store.emails_of(id).await.unwrap().into_iter().filter(|e| e.kind == "confirmation").count();
    assert_eq!(confirmations, stored, "a confirmation per stored version, none for a refused one");

    // Closed: nothing written at all.
    assert!(
        store
            .schedule_cutover(&addr(address), datetime!(2024-05-28 0:00 UTC).date(), &Actor::System("t".into()), T0)
            .await
            .unwrap()
    );
    let before = (store.timeline(id).await.unwrap().len(), store.emails_of(id).await.unwrap().len());
    let e = store.submit_enrollment(id, &form, &identity, &email(99), None, T0).await.unwrap_err();
    assert!(matches!(e, bma_store::StoreError::FormClosed { state: State::CutoverScheduled, .. }), "{e}");
    assert_eq!((store.timeline(id).await.unwrap().len(), store.emails_of(id).await.unwrap().len()), before);
    assert_eq!(store.enrollments(id).await.unwrap().len(), stored);
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(submissions_are_atomic);

/// `bma serve` refuses a plain-http public address off loopback, and an
/// identity provider whose issuer is not a URL: configuration errors with
/// their keys, exit 2, nothing served.
#[test]
fn bma_serve_refuses_unsafe_configurations() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, key) in [
        ("BMA_PORTAL_BASE_URL", "http://portail.bma.example", "portal.base_url"),
        ("BMA_OIDC_ISSUER", "pas une url", "oidc.issuer"),
        ("BMA_OIDC_ISSUER", "http://127.0.0.1:9090", "oidc.client_id"),
    ] {
        let out = std::process::Command::new(bma_bin())
            .args(["serve", "--listen", "127.0.0.1:1"])
            .current_dir(dir.path())
            .env_remove("BMA_CONFIG")
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(key), "{var}: {err}");
    }
    // The secret never shows in `bma config`.
    let out = std::process::Command::new(bma_bin())
        .arg("config")
        .current_dir(dir.path())
        .env_remove("BMA_CONFIG")
        .env("BMA_OIDC_ISSUER", "http://127.0.0.1:9090")
        .env("BMA_OIDC_CLIENT_ID", "bma-portal")
        .env("BMA_OIDC_CLIENT_SECRET", "tres-secret")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && shown.contains("[oidc]") && shown.contains("client_secret = \"***\""), "{shown}");
    assert!(!shown.contains("tres-secret"));
}

// ---------------------------------------------------------------------------
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

fn title_of(html: &str) -> &str {
    html.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or("")
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

/// Reads what the server sends until it closes the connection (or `max`).
async fn read_until_closed(mut r: tokio::net::tcp::OwnedReadHalf, max: StdDuration) -> (Vec<u8>, Option<StdDuration>) {
    use tokio::io::AsyncReadExt;
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(max.saturating_sub(start.elapsed()), r.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(start.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, None),
        }
    }
}

/// A portal on its own listener with these server limits.
async fn limited_portal(store: &Store, limits: bma_web::ServerLimits) -> (String, tokio::task::JoinHandle<()>) {
    let (l, port) = listener().await;
    let settings = PortalSettings::new(&format!("http://127.0.0.1:{port}"));
    let clock = Arc::new(ManualClock::new(T0));
    let portal = Portal::new(store.clone(), settings, Templates::load(None).unwrap(), clock).unwrap();
    let server = tokio::spawn(async move {
        bma_web::serve_with(l, portal, limits, std::future::pending()).await.unwrap();
    });
    (format!("127.0.0.1:{port}"), server)
}

/// Slow clients hold nothing: a header trickled byte by byte (slowloris)
/// is cut after the header timeout of the defaults `bma serve` uses, an
/// idle keep-alive connection too, a trickled body gets 408, and
/// connections over the cap wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_capped() {
    use tokio::io::AsyncWriteExt;
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let addr = h.base.trim_start_matches("http://").to_owned();
    let defaults = bma_web::ServerLimits::default();
    assert_eq!(defaults.header_read, StdDuration::from_secs(10));

    // Slowloris: one byte every 500 ms; the whole head would take 50 s.
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Slow: {}\r\n\r\n", "a".repeat(60));
    let (r, mut w) = tokio::net::TcpStream::connect(&addr).await.unwrap().into_split();
    let reader = tokio::spawn(read_until_closed(r, StdDuration::from_secs(50)));
    for b in head.bytes() {
        if w.write_all(&[b]).await.is_err() || reader.is_finished() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    }
    let (got, closed) = reader.await.unwrap();
    let closed = closed.expect("the server closes the connection");
    assert!(closed < StdDuration::from_secs(13), "closed after {closed:?}");
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "never served: {}", String::from_utf8_lossy(&got));

    // An idle keep-alive connection is closed after the same time.
    let (r, mut w) = tokio::net::TcpStream::connect(&addr).await.unwrap().into_split();
    w.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let (got, closed) = read_until_closed(r, StdDuration::from_secs(20)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK"));
    let closed = closed.expect("the idle connection is closed");
    assert!(closed < StdDuration::from_secs(13), "closed after {closed:?}");

    // A trickled body: 408 once the request's time is up.
    let limits = bma_web::ServerLimits {
        header_read: StdDuration::from_secs(10),
        request: StdDuration::from_secs(2),
        max_connections: 2,
    };
    let (addr, server) = limited_portal(&h.store, limits).await;
    let (r, mut w) = tokio::net::TcpStream::connect(&addr).await.unwrap().into_split();
    let post = format!(
        "POST /formulaire/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 1000\r\n\r\nnom=",
        bma_engine::new_token()
    );
    w.write_all(post.as_bytes()).await.unwrap();
    let reader = tokio::spawn(read_until_closed(r, StdDuration::from_secs(10)));
    for _ in 0..20 {
        if w.write_all(b"a").await.is_err() || reader.is_finished() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
    let (got, _) = reader.await.unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("content-security-policy: default-src 'none'"), "the 408 has the security headers: {got}");

    // The cap: two idle connections hold the two places; a third waits
    // until one of them goes.
    let first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let (r, mut w) = tokio::net::TcpStream::connect(&addr).await.unwrap().into_split();
    w.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let reader = tokio::spawn(read_until_closed(r, StdDuration::from_secs(10)));
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    assert!(!reader.is_finished(), "the third connection waits");
    drop(first);
    let (got, closed) = reader.await.unwrap();
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK"), "{}", String::from_utf8_lossy(&got));
    assert!(closed.is_some());
    drop(second);
    server.abort();
    h.stop().await;
}

/// The callback checks `state` before anything else, and the provider's
/// `error` never reaches the log as received: `bma serve`'s own log is
/// read after a forged `?error=x%0aFAKE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_errors_are_never_logged_raw_and_state_comes_first() {
    use bma_web::IdentityProvider;
    // The provider alone: an error with another login's state is refused for the state.
    let oidc = bma_web::Oidc::new(lab_oidc(), "http://127.0.0.1:18000/auth/callback").unwrap();
    let start = oidc.start().await.unwrap();
    let query = vec![("error".to_owned(), "access_denied".to_owned()), ("state".to_owned(), "forged".to_owned())];
    let e = oidc.finish(&start.pending, &query).await.unwrap_err().to_string();
    assert_eq!(e, "login refused: state does not match");
    assert!(start.redirect_to.contains("prompt=login"), "every login asks again: {}", start.redirect_to);

    // Through the portal: a forged answer (another state, an error) in the
    // middle of a login is refused and does not spend the login in progress.
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let (_, token) = h.invited("ec810044@adm.cfwb.be").await;
    let res = h.get(&format!("/formulaire/{token}/connexion")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let at_provider = res.headers()[LOCATION].to_str().unwrap().to_owned();
    let res = h.get("/auth/callback?error=access_denied&state=forged").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (status, url, page) = login_with(&h.client, &at_provider, "directrice.dupont").await;
    assert_eq!(status, StatusCode::OK, "{url}: {page}");
    assert!(url.ends_with(&format!("/formulaire/{token}")) && page.contains("Marie Dupont"), "{url}: {page}");
    h.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("bma.db").display())).await.unwrap();
    let (_, token) = invited_mailbox(&store, "ec810042@adm.cfwb.be").await;
    store.close().await;
    let (l, port) = listener().await;
    drop(l);
    let base = format!("http://127.0.0.1:{port}");
    let lab = lab_oidc();
    let mut child = tokio::process::Command::new(bma_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--no-scheduler"])
        .current_dir(dir.path())
        .env_remove("BMA_CONFIG")
        .env("BMA_LOG", "debug")
        .env("BMA_CAMPAIGN_END", "2099-12-31")
        .env("BMA_PORTAL_BASE_URL", &base)
        .env("BMA_OIDC_ISSUER", &lab.issuer)
        .env("BMA_OIDC_CLIENT_ID", &lab.client_id)
        .env("BMA_OIDC_CLIENT_SECRET", &lab.client_secret)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
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
    for forged in ["x%0aFAKE%20line", "access_denied%0d%0aFAKE%20line"] {
        let res = http.get(format!("{base}/formulaire/{token}/connexion")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = url::Url::parse(res.headers()[LOCATION].to_str().unwrap()).unwrap();
        let state = to.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
        let res = http.get(format!("{base}/auth/callback?error={forged}&state={state}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("the provider answered other"), "the error is named from a closed set: {log}");
    assert!(
        !log.lines().any(|l| l.trim_start().starts_with("FAKE")) && !log.contains("FAKE"),
        "no forged log line: {log}"
    );
}

/// The lab's provider (`lab/oidc/server.mjs` of this workspace, with the
/// lab's installed modules) run apart, on a port of its own, so that its
/// signing key can be rotated without touching the shared lab.
struct OwnProvider {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnProvider {
    async fn start() -> OwnProvider {
        let dir = tempfile::tempdir().unwrap();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/oidc");
        for f in ["server.mjs", "accounts.json", "package.json"] {
            std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        }
        let lab = lab_file("lab.json");
        let modules = std::path::Path::new(lab["workspace"].as_str().unwrap()).join("lab/oidc/node_modules");
        std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
        let port = (19700..19800)
            .map(|p| p + (std::process::id() % 100) as u16)
            .map(|p| 19700 + (p - 19700) % 100)
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port");
        let mut p = OwnProvider { dir, port, child: None };
        p.run().await;
        p
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let child = tokio::process::Command::new("node")
            .arg("server.mjs")
            .current_dir(self.dir.path())
            .env("BMA_LAB_OIDC_PORT", self.port.to_string())
            .env("BMA_LAB_OIDC_STATE", self.dir.path().join("state"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node (cargo xtask lab install)");
        self.child = Some(child);
        let http = client();
        for _ in 0..100 {
            if http.get(format!("{}/health", self.issuer())).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("the provider did not start");
    }

    /// Stops the provider, replaces its signing key by a new one under a
    /// new key id, and starts it again.
    async fn rotate_key(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.unwrap();
        }
        let jwks = self.dir.path().join("state/jwks.json");
        let before = std::fs::read_to_string(&jwks).unwrap();
        let script = "const { generateKeyPairSync } = require('node:crypto');\
            const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });\
            require('node:fs').writeFileSync(process.argv[1], JSON.stringify({ keys: [\
              { ...privateKey.export({ format: 'jwk' }), kid: 'bma-lab-rotated', use: 'sig', alg: 'RS256' }] }));";
        let ok = std::process::Command::new("node").args(["-e", script, jwks.to_str().unwrap()]).status().unwrap();
        assert!(ok.success());
        assert_ne!(before, std::fs::read_to_string(&jwks).unwrap());
        self.run().await;
    }
}

/// Key rotation: the provider signs with a key the portal's cached key set
/// does not have; the portal fetches the keys again and the login works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_fetched_again_after_a_rotation() {
    let mut provider = OwnProvider::start().await;
    let issuer = provider.issuer();
    let h = Harness::start(TestBackend::Sqlite, |s| {
        s.oidc = Some(OidcSettings { issuer, ..lab_oidc() });
    })
    .await;
    let (_, token) = h.invited("ec810043@adm.cfwb.be").await;
    let (status, page) = h.login(&token, "directrice.dupont").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Marie Dupont"), "logged in: {page}");

    provider.rotate_key().await;
    let jwks: serde_json::Value =
        client().get(format!("{}/jwks", provider.issuer())).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "bma-lab-rotated", "{jwks}");
    let other = client();
    let (status, _, page) =
        login_with(&other, &h.url(&format!("/formulaire/{token}/connexion")), "secretaire.martin").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Luc Martin"), "logged in with the new key: {page}");
    // This workspace's provider asks in French before ending a session.
    let page = other.get(format!("{}/session/end", provider.issuer())).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Voulez-vous fermer votre session Cerbère EDU") && page.contains("name=\"logout\""),
        "{page}"
    );
    h.stop().await;
}
