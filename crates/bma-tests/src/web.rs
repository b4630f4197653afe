//! The portal's harness: `bma serve`'s router on a real socket against a
//! test database, logins at the lab's OpenID Connect provider, and the
//! checks every page shares (security headers, CSRF fields, cookies).
//! Used by the portal's tests and the trust tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration as StdDuration;

use bma_core::lifecycle::{Actor, State};
use bma_core::{AddressRule, ManualClock, registry};
use bma_mail::Templates;
use bma_store::{NewEmail, Store};
use bma_web::{OidcSettings, Portal, PortalSettings};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::provider::login_with;
use crate::{TestBackend, TestDb, addr, lab_file};

/// The instant of the tests: the first wave of the FAQ's campaign.
pub const T0: OffsetDateTime = datetime!(2024-04-22 09:00 UTC);

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A listener on a port of the range registered at the lab's provider.
pub async fn listener() -> (tokio::net::TcpListener, u16) {
    let lab = lab_file("lab.json");
    let range = &lab["oidc"]["test_redirect_ports"];
    // The last 50 ports of the range are left to portal_e2e and the benchmark.
    let (first, last) = (range[0].as_u64().unwrap_or(18000) as u16, range[1].as_u64().unwrap_or(18199) as u16 - 50);
    let span = last - first + 1;
    let start = (std::process::id() as u16).wrapping_mul(7) % span;
    for i in 0..span {
        let port = first + (start + NEXT_PORT.fetch_add(1, Ordering::SeqCst) + i) % span;
        if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return (l, port);
        }
    }
    panic!("no free port in {first}..={last}");
}

/// A portal of `bma serve` on a test database, a port of the range the
/// lab's provider accepts, and the campaign clock of the test.
pub struct Harness {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client with a cookie store that follows no redirect.
    pub client: reqwest::Client,
    /// The portal's store.
    pub store: Store,
    /// The portal's clock.
    pub clock: Arc<ManualClock>,
    /// The test database (taken by [`Harness::stop`]).
    pub db: Option<TestDb>,
    server: tokio::task::JoinHandle<()>,
}

/// The lab provider's client for the portal.
pub fn lab_oidc() -> OidcSettings {
    let lab = lab_file("lab.json");
    OidcSettings {
        issuer: lab["oidc"]["issuer"].as_str().unwrap().to_owned(),
        client_id: lab["oidc"]["client_id"].as_str().unwrap().to_owned(),
        client_secret: lab["oidc"]["client_secret"].as_str().unwrap().to_owned(),
        extra_scopes: Vec::new(),
        roles_claim: None,
    }
}

/// The lab provider's client for the helpdesk console, roles from its
/// `bma_roles` claim (scope `bma`) and from `roles`.
pub fn lab_console(roles: bma_core::staff::RoleLists) -> bma_web::ConsoleSettings {
    let lab = lab_file("lab.json");
    let c = &lab["oidc"]["console"];
    bma_web::ConsoleSettings {
        oidc: OidcSettings {
            issuer: lab["oidc"]["issuer"].as_str().unwrap().to_owned(),
            client_id: c["client_id"].as_str().unwrap().to_owned(),
            client_secret: c["client_secret"].as_str().unwrap().to_owned(),
            extra_scopes: vec![c["scope"].as_str().unwrap().to_owned()],
            roles_claim: Some(c["roles_claim"].as_str().unwrap().to_owned()),
        },
        roles,
        session_minutes: 60,
    }
}

/// A client with a cookie store that follows no redirect.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(StdDuration::from_secs(20))
        .build()
        .unwrap()
}

impl Harness {
    /// A portal on a new database of `backend`, its settings tweaked.
    pub async fn start(backend: TestBackend, tweak: impl FnOnce(&mut PortalSettings)) -> Harness {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let (l, port) = listener().await;
        let base = format!("http://127.0.0.1:{port}");
        let mut settings = PortalSettings::new(&base);
        settings.oidc = Some(lab_oidc());
        settings.bounce_address = "bounces@bma.test".into();
        settings.message_id_domain = "bma.test".into();
        tweak(&mut settings);
        let clock = Arc::new(ManualClock::new(T0));
        let portal = Portal::new(store.clone(), settings, Templates::load(None).unwrap(), clock.clone()).unwrap();
        let server = tokio::spawn(async move {
            bma_web::serve(l, portal, std::future::pending()).await.unwrap();
        });
        Harness { base, client: client(), store, clock, db: Some(db), server }
    }

    /// Stops the server and drops the database.
    pub async fn stop(mut self) {
        self.server.abort();
        self.store.close().await;
        if let Some(db) = self.db.take() {
            db.drop_db().await;
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// POST `form` to `path`.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// An invited mailbox with a known form token.
    pub async fn invited(&self, address: &str) -> (i64, String) {
        invited_mailbox(&self.store, address).await
    }

    /// Logs in at the lab provider through the link; the page it lands on.
    pub async fn login(&self, token: &str, account: &str) -> (StatusCode, String) {
        let (status, _, body) =
            login_with(&self.client, &self.url(&format!("/formulaire/{token}/connexion")), account).await;
        (status, body)
    }
}

/// An invited mailbox with a known form token: its id and the token.
pub async fn invited_mailbox(store: &Store, address: &str) -> (i64, String) {
    let csv = format!("address,name\n{address},École communale de Test\n");
    let rows = registry::parse(csv.as_bytes(), &AddressRule::default()).unwrap().rows;
    let actor = Actor::System("test".into());
    store.apply_import(&rows, "test.csv", &actor, T0 - Duration::days(7)).await.unwrap();
    store
        .transition(&addr(address), State::Scheduled, &actor, "test", serde_json::json!({}), T0 - Duration::days(6))
        .await
        .unwrap();
    let token = bma_engine::new_token();
    let id = store.mailbox(&addr(address)).await.unwrap().id;
    let email = NewEmail {
        mailbox_id: Some(id),
        kind: "invitation".into(),
        key: format!("invitation:{address}"),
        recipient: address.to_owned(),
        envelope_from: "bounces@bma.test".into(),
        message_id: format!("invitation.{id}.{}@bma.test", &token[..12]),
        subject: "Invitation".into(),
        raw: "Subject: Invitation\r\n\r\nlien\r\n".into(),
        run_at: T0,
        max_attempts: 1,
    };
    store
        .invite(&addr(address), &bma_core::TokenHash::of(&token), &email, &actor, T0 - Duration::hours(1))
        .await
        .unwrap();
    (id, token)
}

/// The value of `name="csrf"` in a page.
pub fn csrf_of(html: &str) -> String {
    bma_visitor::csrf_of(html).expect("a CSRF field")
}

/// The `Set-Cookie` whose name is `name`.
pub fn set_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find(|c| c.starts_with(&format!("{name}=")))
}

/// The form filled in as a manager would, with `csrf`.
pub fn valid_form(csrf: &str) -> Vec<(&'static str, String)> {
    bma_visitor::Answers {
        family_name: "Dupont".into(),
        given_name: "Marie".into(),
        phone: "+32 (0)2 413.3090".into(),
        role: "direction".into(),
        backup_email: "Marie.Perso@Ecole.test".into(),
        knows_password: false,
    }
    .fields(csrf)
}

/// Marie Dupont's answers as she types them from mail 1's link (the
/// browser and visitor tests): she knows the BMA's password.
pub fn marie_dupont() -> bma_visitor::Answers {
    bma_visitor::Answers {
        family_name: "Dupont".into(),
        given_name: "Marie".into(),
        phone: "+32 2 413 30 90".into(),
        role: "direction".into(),
        backup_email: "marie.perso@ecole.test".into(),
        knows_password: true,
    }
}

/// `form` with fields replaced (`Some`) or removed (`None`).
pub fn with(form: &[(&'static str, String)], changes: &[(&'static str, Option<&str>)]) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = form.to_vec();
    for (k, v) in changes {
        out.retain(|(n, _)| n != k);
        if let Some(v) = v {
            out.push((k, (*v).to_owned()));
        }
    }
    out
}

/// POST `form` to `path` as it is.
pub async fn post_form(h: &Harness, path: &str, form: &[(&'static str, String)]) -> reqwest::Response {
    h.client.post(h.url(path)).form(form).send().await.unwrap()
}

/// Asserts the headers every page carries (CSP without script, no sniffing,
/// no framing, no referrer, no caching).
pub fn assert_security_headers(headers: &HeaderMap, what: &str) {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let csp = get("content-security-policy");
    for part in ["default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{what}: {csp}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(get("cache-control"), "no-store", "{what}");
}
