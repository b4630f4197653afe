//! The OpenID Connect callback: provider errors never logged raw, `state`
//! checked first, signing keys fetched again after a rotation.

use super::*;

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
