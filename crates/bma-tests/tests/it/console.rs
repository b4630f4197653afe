//! The helpdesk console over HTTP, against the lab's OpenID Connect
//! provider (its own client, roles in the `bma_roles` claim): who gets in,
//! what each role may do (every refusal proved, nothing changed), the
//! search as a caller is heard, the mailbox page and the actions through
//! the engine's operations with their reason and actor.

use bma_core::staff::{Role, RoleLists, StaffAction, allows};
use bma_tests::web::{Harness, csrf_of, lab_console, post_form, set_cookie, valid_form};
use bma_tests::{TestBackend, addr, provider::login_with};
use reqwest::StatusCode;
use reqwest::header::LOCATION;

const MARIE: &str = "ec007001@adm.cfwb.be";
const OTHER: &str = "ec007002@adm.cfwb.be";

/// A portal with the console, a mailbox whose form Marie Dupont filled
/// (through the portal, as she would) and another without a form.
async fn console(backend: TestBackend, roles: RoleLists) -> Harness {
    let h = Harness::start(backend, |s| s.console = Some(lab_console(roles))).await;
    let (_, token) = h.invited(MARIE).await;
    let (status, page) = h.login(&token, "directrice.dupont").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let res = post_form(&h, &format!("/formulaire/{token}"), &valid_form(&csrf_of(&page))).await;
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    h.invited(OTHER).await;
    h
}

/// A client logged in to the console as `account`; the page it lands on.
async fn staff(h: &Harness, account: &str) -> (reqwest::Client, StatusCode, String) {
    let client = bma_tests::web::client();
    let (status, url, page) = login_with(&client, &h.url("/console/connexion"), account).await;
    assert!(status != StatusCode::OK || url.ends_with("/console"), "{account} landed on {url}");
    (client, status, page)
}

async fn get(c: &reqwest::Client, h: &Harness, path: &str) -> (StatusCode, String) {
    let res = c.get(h.url(path)).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn post(c: &reqwest::Client, h: &Harness, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    c.post(h.url(path)).form(form).send().await.unwrap()
}

async fn events(h: &Harness) -> usize {
    let m = h.store.mailbox(&addr(MARIE)).await.unwrap();
    h.store.timeline(m.id).await.unwrap().len()
}

/// Who gets in: nobody without a staff login or a role; a manager's
/// session opens nothing; the role comes from the claim or the lists.
async fn who_gets_in(backend: TestBackend) {
    let h = console(backend, RoleLists { agents: vec!["hugo.petit@cfwb.test".into()], ..RoleLists::default() }).await;
    // No session: the login page, for every console page.
    for path in ["/console", &format!("/console/boites/{MARIE}")] {
        let (status, page) = get(&h.client, &h, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(page.contains("id=\"connexion\""), "{path}: {page}");
    }
    // The manager logged in on the portal (h.client) is not staff.
    let (status, _) = get(&h.client, &h, "/console").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A staff account without a role in the claim nor the lists: refused, no session.
    let none = bma_tests::web::client();
    let start = none.get(h.url("/console/connexion")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let (status, _, page) = login_with(&none, start.headers()[LOCATION].to_str().unwrap(), "secretaire.martin").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("Accès réservé"), "{page}");
    assert_eq!(get(&none, &h, "/console").await.0, StatusCode::UNAUTHORIZED);
    // Listed by email, without the claim: an agent.
    let (c, status, page) = staff(&h, "stagiaire.sgne").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("agent du helpdesk"), "{page}");
    let (status, _) = get(&c, &h, "/console?q=dupont").await;
    assert_eq!(status, StatusCode::OK);
    // The console's cookie is its own.
    let res = h.client.get(h.url("/console/connexion")).send().await.unwrap();
    assert!(set_cookie(res.headers(), "bma_console").is_some(), "{:?}", res.headers());
    h.stop().await;
}

/// Every action a role may not take is refused (403) with nothing
/// changed; a POST without the session's CSRF token is refused too.
async fn each_refusal_is_proved(backend: TestBackend) {
    let h = console(backend, RoleLists::default()).await;
    for (account, role) in [("agent.helpdesk", Role::Agent), ("operateur.sgne", Role::Operator)] {
        let (c, status, page) = staff(&h, account).await;
        assert_eq!(status, StatusCode::OK, "{account}: {page}");
        let (_, page) = get(&c, &h, &format!("/console/boites/{MARIE}")).await;
        let csrf = csrf_of(&page);
        for action in StaffAction::ALL.iter().copied().filter(|a| !allows(role, *a)) {
            let before = events(&h).await;
            let path = match action {
                StaffAction::CampaignStart | StaffAction::CampaignPause | StaffAction::CampaignResume => {
                    format!("/console/campagne/{action}")
                }
                StaffAction::ExportPersonalData => "/console/export/recherche.csv?q=dupont".to_owned(),
                StaffAction::ErasePersonalData => "/console/donnees-personnelles/effacer".to_owned(),
                StaffAction::ImportRegistry => "/console/import".to_owned(),
                _ => format!("/console/boites/{MARIE}/actions/{action}"),
            };
            let form = [
                ("csrf", csrf.as_str()),
                ("motif", "essai"),
                ("confirme", "oui"),
                ("jour", ""),
                ("priorite", "3"),
                ("adresse", "marie.perso@ecole.test"),
            ];
            let res = if action == StaffAction::ExportPersonalData {
                c.get(h.url(&path)).send().await.unwrap()
            } else {
                post(&c, &h, &path, &form).await
            };
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{account} {action}");
            let page = res.text().await.unwrap();
            assert!(page.contains("réservé au rôle"), "{account} {action}: {page}");
            assert_eq!(events(&h).await, before, "{account} {action}: nothing recorded");
            assert_eq!(h.store.campaign_state().await.unwrap(), bma_store::CampaignState::NotStarted);
        }
        // The personal-data page and its export are an admin's too.
        for path in [
            "/console/donnees-personnelles?adresse=marie.perso%40ecole.test",
            "/console/donnees-personnelles/export.json?adresse=marie.perso%40ecole.test",
        ] {
            let (status, page) = get(&c, &h, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{account} {path}");
            assert!(!page.contains("marie.perso") && !page.contains("Dupont"), "{account} {path}: {page}");
        }
        // Without the CSRF token, even an allowed action.
        let before = events(&h).await;
        let res = post(&c, &h, &format!("/console/boites/{MARIE}/actions/call_note"), &[("motif", "x")]).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{account}");
        let res =
            post(&c, &h, &format!("/console/boites/{MARIE}/actions/call_note"), &[("csrf", "forged"), ("motif", "x")])
                .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{account}");
        assert_eq!(events(&h).await, before);
    }
    h.stop().await;
}

/// An agent finds the caller as heard on the phone, reads the page (the
/// view recorded), notes the call; an operator's destructive action is
/// confirmed on a second page, then done through the operation with the
/// reason and the staff member as actor.
async fn find_see_act(backend: TestBackend) {
    let h = console(backend, RoleLists::default()).await;
    let (agent, _, _) = staff(&h, "agent.helpdesk").await;
    for (query, expected) in
        [("dupont marie", MARIE), ("DUPONT  Marié", MARIE), ("7001", MARIE), ("ec007002@adm.cfwb.be", OTHER)]
    {
        let (status, page) = get(&agent, &h, &format!("/console?q={}", query.replace(' ', "+"))).await;
        assert_eq!(status, StatusCode::OK);
        let first = page.split("/console/boites/").nth(1).unwrap_or("");
        assert!(first.starts_with(expected), "{query}: first result {first:.40}");
    }
    let (_, page) = get(&agent, &h, "/console?q=inconnu+xyz").await;
    assert!(page.contains("Aucun résultat"), "{page}");

    // Her box forwards to Gmail today (as the audit found it).
    let finding = |kind, reach, target: &str, detail: &str| bma_store::ForwardingFinding {
        script: "roundcube".into(),
        active: true,
        kind,
        reach: Some(reach),
        target: target.into(),
        line: 3,
        copy: true,
        conditional: false,
        detail: detail.into(),
    };
    let audit = bma_store::ForwardingAudit {
        audited_at: bma_core::Clock::now(h.clock.as_ref()),
        scripts: 1,
        active_script: Some("roundcube".into()),
        findings: vec![
            finding(
                bma_store::FindingKind::Redirect,
                bma_store::ForwardingReach::External,
                "marie.dupont@gmail.com",
                "redirect :copy",
            ),
            finding(bma_store::FindingKind::Vacation, bma_store::ForwardingReach::Sender, "", "vacation"),
        ],
    };
    h.store.record_forwarding_audit(&addr(MARIE), &audit, &bma_core::Actor::System("test".into())).await.unwrap();
    let (status, page) = get(&agent, &h, &format!("/console/boites/{MARIE}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"redirige\"") && page.contains("extérieur"), "{page}");
    assert!(page.contains("Marie Dupont") && !page.contains("marie.perso@ecole.test"), "{page}");
    let m = h.store.mailbox(&addr(MARIE)).await.unwrap();
    let views = h.store.staff_views(m.id, 10).await.unwrap();
    assert_eq!(views.first().map(|v| v.subject.as_str()), Some("staff-0001"), "{views:?}");
    // The page's file, read in one statement, is what each part's own read says.
    let flagged = h
        .store
        .flag(
            &addr(MARIE),
            bma_core::AttentionReason::PresyncFailed,
            "test",
            serde_json::json!({}),
            &bma_core::Actor::System("test".into()),
            bma_core::Clock::now(h.clock.as_ref()),
        )
        .await
        .unwrap();
    assert!(flagged);
    let file = h.store.mailbox_file(&addr(MARIE)).await.unwrap();
    let m = h.store.mailbox(&addr(MARIE)).await.unwrap();
    assert_eq!(file.mailbox, m);
    let flag = h.store.attention_of(&addr(MARIE)).await.unwrap().map(|a| (a.reason, a.since));
    assert!(flag.is_some());
    assert_eq!(file.attention, flag);
    let unknown = h.store.mailbox_file(&addr("ec007999@adm.cfwb.be")).await.unwrap_err();
    assert!(matches!(unknown, bma_store::StoreError::NotFound(_)), "{unknown}");
    assert_eq!(file.events, h.store.timeline(m.id).await.unwrap());
    let emails: Vec<_> = h
        .store
        .emails_of(m.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| bma_store::OutboxEmail { raw: String::new(), ..e })
        .collect();
    assert!(!emails.is_empty());
    assert_eq!(file.emails, emails);
    let forms = h.store.enrollments(m.id).await.unwrap();
    assert!(!forms.is_empty());
    assert_eq!(file.forms, forms);
    let backup = &forms.last().unwrap().form.backup_email;
    assert_eq!(file.backup_status(backup).cloned(), h.store.backup_status(m.id, backup).await.unwrap());
    assert!(file.backup_status(backup).is_some());
    assert_eq!(file.views, views);

    // A call noted: reason required, recorded as the agent's.
    let csrf = csrf_of(&page);
    let path = format!("/console/boites/{MARIE}/actions/call_note");
    let res = post(&agent, &h, &path, &[("csrf", &csrf), ("motif", "  ")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = post(&agent, &h, &path, &[("csrf", &csrf), ("motif", "Appel : n'a pas reçu le mail 1")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let last = h.store.timeline(m.id).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.kind, last.actor.as_str(), last.reason.as_str()),
        (bma_core::EventKind::CallNote, "operator:console:nadia.lambert@etnic.test", "Appel : n'a pas reçu le mail 1")
    );
    let (_, page) = get(&agent, &h, &format!("/console/boites/{MARIE}?fait=call_note")).await;
    assert!(page.contains("Action effectuée") && page.contains("appel noté"), "{page}");

    // The operator sees the personal data whole, excludes with a confirmation.
    let (op, _, _) = staff(&h, "operateur.sgne").await;
    let (_, page) = get(&op, &h, &format!("/console/boites/{MARIE}")).await;
    assert!(page.contains("marie.perso@ecole.test"), "{page}");
    assert!(page.contains("marie.dupont@gmail.com"), "the forwarding target whole for an operator");
    let csrf = csrf_of(&page);
    let path = format!("/console/boites/{MARIE}/actions/exclude");
    let res = post(&op, &h, &path, &[("csrf", &csrf), ("motif", "école fermée")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let confirm = res.text().await.unwrap();
    assert!(confirm.contains("Confirmer") && confirm.contains("name=\"confirme\" value=\"oui\""), "{confirm}");
    assert!(!h.store.mailbox(&addr(MARIE)).await.unwrap().excluded, "not before the confirmation");
    let res = post(&op, &h, &path, &[("csrf", &csrf), ("motif", "école fermée"), ("confirme", "oui")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(h.store.mailbox(&addr(MARIE)).await.unwrap().excluded);
    // A pin off the wave days is refused by the operation, with its reason.
    let res = post(
        &op,
        &h,
        &format!("/console/boites/{OTHER}/actions/pin"),
        &[("csrf", &csrf), ("motif", "demande"), ("jour", "2024-05-21")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("not a wave day"));
    // Block, then unblock back to where it was.
    for action in ["block", "unblock"] {
        let res = post(
            &op,
            &h,
            &format!("/console/boites/{OTHER}/actions/{action}"),
            &[("csrf", &csrf), ("motif", "vérification"), ("confirme", "oui")],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{action}");
    }
    assert_eq!(h.store.mailbox(&addr(OTHER)).await.unwrap().state, bma_core::State::Invited);
    // Without an engine in the process, an action that needs it says so.
    let res =
        post(&op, &h, &format!("/console/boites/{OTHER}/actions/retry_presync"), &[("csrf", &csrf), ("motif", "x")])
            .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Lists as files: any staff member gets the mailboxes for Excel; the
    // people of a search only an admin.
    let res = agent.get(h.url("/console/export/boites.csv")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    assert!(csv.starts_with("\u{feff}adresse;fase;nom;") && csv.contains(&format!("{MARIE};7001;")), "{csv}");
    let (admin, _, page) = staff(&h, "admin.sgne").await;
    let res = admin.get(h.url("/console/export/recherche.json?q=dupont+marie")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let found: serde_json::Value = res.json().await.unwrap();
    assert_eq!(found[0]["adresse"].as_str(), Some(MARIE), "{found}");
    assert!(found[0]["personnes"].as_str().is_some_and(|p| p.contains("Marie Dupont")), "{found}");

    // The admin starts the campaign.
    let res =
        post(&admin, &h, "/console/campagne/campaign_start", &[("csrf", &csrf_of(&page)), ("motif", "feu vert")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(h.store.campaign_state().await.unwrap(), bma_store::CampaignState::Running);
    h.stop().await;
}

/// An administrator finds what is held about Marie Dupont by her backup
/// address, downloads it as JSON, then erases it (reason, confirmation):
/// nothing is found by that address afterwards, and her mailbox's
/// timeline says who erased it and why.
async fn personal_data_of_one_person(backend: TestBackend) {
    let h = console(backend, RoleLists::default()).await;
    let (admin, _, home) = staff(&h, "admin.sgne").await;
    assert!(home.contains("href=\"/console/donnees-personnelles\""), "in an admin's navigation: {home}");
    let (agent, _, home) = staff(&h, "agent.helpdesk").await;
    assert!(!home.contains("donnees-personnelles"), "not in an agent's: {home}");
    drop(agent);
    let (status, page) = get(&admin, &h, "/console/donnees-personnelles?adresse=marie.perso%40ecole.test").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Versions de formulaire</td><td>1<"), "{page}");
    assert!(page.contains(&format!("/console/boites/{MARIE}")), "{page}");
    let res = admin
        .get(h.url("/console/donnees-personnelles/export.json?adresse=marie.perso%40ecole.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let data: serde_json::Value = res.json().await.unwrap();
    assert_eq!(data["forms"][0]["mailbox"].as_str(), Some(MARIE), "{data}");
    assert_eq!(data["forms"][0]["form"]["family_name"].as_str(), Some("Dupont"), "{data}");
    let (status, _) = get(&admin, &h, "/console/donnees-personnelles?adresse=pas+une+adresse").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let csrf = csrf_of(&page);
    let erase = |confirm: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("adresse", "marie.perso@ecole.test".to_owned()),
            ("motif", "demande écrite du 3 juin".to_owned()),
            ("confirme", confirm.to_owned()),
        ]
    };
    let form = erase("");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = post(&admin, &h, "/console/donnees-personnelles/effacer", &pairs).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("name=\"confirme\" value=\"oui\""));
    assert_eq!(
        h.store
            .export_person(&bma_store::Person::address("marie.perso@ecole.test").unwrap())
            .await
            .unwrap()
            .forms
            .len(),
        1,
        "not before the confirmation"
    );
    let form = erase("oui");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = post(&admin, &h, "/console/donnees-personnelles/effacer", &pairs).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("Données effacées : 1 version(s) de formulaire") && page.contains(MARIE), "{page}");
    let left = h.store.export_person(&bma_store::Person::address("marie.perso@ecole.test").unwrap()).await.unwrap();
    assert!(left.forms.is_empty() && left.sessions.is_empty(), "{left:?}");
    let m = h.store.mailbox(&addr(MARIE)).await.unwrap();
    let e = h
        .store
        .timeline(m.id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == bma_core::EventKind::PersonalDataErased)
        .expect("recorded");
    assert_eq!(e.actor, "operator:console:claire.wauters@cfwb.test", "{e:?}");
    assert!(e.reason.contains("demande écrite du 3 juin"), "{e:?}");
    h.stop().await;
}

/// A file as a browser sends it from `<input type="file">`: multipart,
/// the CSRF token first.
fn upload(csrf: &str, name: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----bmaTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"{name}\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The value of the hidden field `name` of a page.
fn hidden(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no field {name}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].replace("&#x2b;", "+").replace("&#x2f;", "/").replace("&#x3d;", "=")
}

/// An administrator imports the registry from the console: checked and
/// compared first (nothing changed), applied from that page; a file with
/// a bad row shows it and offers nothing to apply; a tampered confirmation
/// is refused.
async fn an_admin_imports_the_registry(backend: TestBackend) {
    let h = console(backend, RoleLists::default()).await;
    let (c, status, page) = staff(&h, "admin.sgne").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("href=\"/console/import\""), "the admin's menu links the import");
    let (status, form) = get(&c, &h, "/console/import").await;
    assert_eq!(status, StatusCode::OK, "{form}");
    let csrf = csrf_of(&form);
    let send = |csrf: String, name: &'static str, file: Vec<u8>| {
        let c = c.clone();
        let url = h.url("/console/import");
        async move {
            let (content_type, body) = upload(&csrf, name, &file);
            let res = c.post(url).header("content-type", content_type).body(body).send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };

    // A file with a bad row: every bad row shown, nothing to apply, nothing changed.
    let bad = "adresse;nom\nec007003@adm.cfwb.be;École nouvelle\npas-une-adresse;École fausse\n";
    let (status, page) = send(csrf.clone(), "registre.csv", bad.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Rien ne sera importé"), "{page}");
    let said = "ligne 3\u{a0}: 'pas-une-adresse' n'est pas une adresse email (pas de @)".replace('\'', "&#39;");
    assert!(page.contains(&said), "the bad row, in French: {page}");
    assert!(!page.contains("form-appliquer"), "nothing to apply: {page}");

    // Without the session's token: refused.
    let (status, _) = send("faux".into(), "registre.csv", bad.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A good file in Windows-1252 (Excel): one new, one renamed, one unchanged; nothing applied yet.
    let good = "adresse;nom\r\nec007001@adm.cfwb.be;École communale de Test\r\n\
                ec007002@adm.cfwb.be;Athénée royal renommé\r\nec007003@adm.cfwb.be;École nouvelle\r\n";
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(good);
    let (status, page) = send(csrf.clone(), "C:\\Bureau\\registre.csv", bytes.into_owned()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for (id, n) in [("import-valides", 3), ("import-invalides", 0), ("import-nouvelles", 1), ("import-modifiees", 1)] {
        assert!(page.contains(&format!("<dd id=\"{id}\">{n}</dd>")), "{id} = {n}: {page}");
    }
    assert!(page.contains("Windows-1252"), "{page}");
    assert!(page.contains("Athénée royal renommé"), "the change shown: {page}");
    assert!(h.store.mailbox(&addr("ec007003@adm.cfwb.be")).await.is_err(), "nothing applied by the check");

    // A confirmation whose file was changed: refused.
    let mut form = vec![
        ("csrf".to_owned(), csrf.clone()),
        ("nom".to_owned(), hidden(&page, "nom")),
        ("empreinte".to_owned(), hidden(&page, "empreinte")),
        ("motif".to_owned(), "registre de septembre".to_owned()),
    ];
    let file = hidden(&page, "fichier");
    let tampered = [form.clone(), vec![("fichier".to_owned(), format!("{file}AA"))]].concat();
    let res = c.post(h.url("/console/import/appliquer")).form(&tampered).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(h.store.mailbox(&addr("ec007003@adm.cfwb.be")).await.is_err());

    // Applied, with the administrator as actor and the reason recorded.
    form.push(("fichier".to_owned(), file));
    let res = c.post(h.url("/console/import/appliquer")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let done = res.text().await.unwrap();
    assert!(done.contains("Import effectué : 1 nouvelle(s) boîte(s), 1 mise(s) à jour, 1 inchangée(s)."), "{done}");
    let new = h.store.mailbox(&addr("ec007003@adm.cfwb.be")).await.unwrap();
    assert_eq!(new.name, "École nouvelle");
    let imported = h.store.timeline(new.id).await.unwrap().remove(0);
    assert!(imported.actor.starts_with("operator:console:"), "{}", imported.actor);
    assert!(imported.reason.contains("registre.csv (console, motif : registre de septembre)"), "{}", imported.reason);
    assert_eq!(h.store.mailbox(&addr(OTHER)).await.unwrap().name, "Athénée royal renommé");
    h.stop().await;
}

bma_tests::on_both_backends!(
    who_gets_in,
    each_refusal_is_proved,
    find_see_act,
    personal_data_of_one_person,
    an_admin_imports_the_registry
);
