//! `bma serve` itself: its defaults and logs without a token, the OIDC
//! login's state, nonce and verifier, atomic submissions, unsafe configurations
//! refused; and the server's limits (slow clients cut off, connections capped).

use super::*;

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
