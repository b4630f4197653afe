//! Login at the lab's provider, the form, the submission: every validation
//! rule, backup address verification, corrections, on both backends.

use super::*;

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
