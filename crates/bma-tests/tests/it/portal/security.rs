//! The portal's security rules: CSRF on every POST, headers, cookies, hashed
//! sessions, HSTS, refused logins, rate limits and the body limit.

use super::*;

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
