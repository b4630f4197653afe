//! What the browser tests (`tests/it/portal_e2e.rs`, `tests/it/links.rs`) share:
//! a W3C WebDriver client driving headless Debian Chromium through
//! chromedriver, chromedriver itself, a free port, and the portal (`bma
//! serve`) on the lab's SMTP and OpenID Connect provider.
//!
//! The client is written by hand: W3C WebDriver is a few JSON calls over
//! HTTP (new session, navigate, find an element, click, type, read), which
//! `reqwest` makes directly; a WebDriver crate would add a large dependency
//! for the dozen commands the tests use.

use std::ops::RangeInclusive;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A minimal W3C WebDriver client: one session of headless Chromium.
pub struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    /// Opens a session of headless Chromium (French, 1024×900) on the
    /// chromedriver at `driver` (`http://127.0.0.1:<port>`).
    pub async fn start(driver: &str) -> Browser {
        let http = reqwest::Client::new();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1024,900", "--lang=fr-BE"]
            }
        }}});
        let res = http.post(format!("{driver}/session")).json(&caps).send().await.expect("chromedriver answers");
        let v: Value = res.json().await.expect("a JSON answer");
        let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_owned();
        Browser { http, session: format!("{driver}/session/{session}") }
    }

    /// Sends a WebDriver command of the session (`path` after
    /// `/session/<id>`, `body` none when null); its `value`, or panics on a
    /// WebDriver error.
    pub async fn cmd(&self, method: Method, path: &str, body: Value) -> Value {
        let req = self.http.request(method, format!("{}{path}", self.session));
        let req = if body.is_null() { req } else { req.json(&body) };
        let v: Value = req.send().await.expect("chromedriver answers").json().await.expect("a JSON answer");
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    /// Navigates to `url`.
    pub async fn goto(&self, url: &str) {
        self.cmd(Method::POST, "/url", json!({ "url": url })).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.cmd(Method::GET, "/url", Value::Null).await.as_str().expect("a URL").to_owned()
    }

    /// The URL once `ok` holds for it (a click's navigation may still be
    /// under way when the click returns), or panics after 10 s.
    pub async fn wait_url(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            if ok(&url) {
                return url;
            }
            assert!(Instant::now() < deadline, "{what}: still at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page source once it contains `needle`, or panics after 10 s.
    pub async fn wait_source(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let page = self.source().await;
            if page.contains(needle) {
                return page;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in {page}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page source.
    pub async fn source(&self) -> String {
        self.cmd(Method::GET, "/source", Value::Null).await.as_str().expect("a page source").to_owned()
    }

    /// The reference of the first element matching `css`.
    pub async fn find(&self, css: &str) -> String {
        let v = self.cmd(Method::POST, "/element", json!({ "using": "css selector", "value": css })).await;
        v[ELEMENT].as_str().expect("an element reference").to_owned()
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        let v = self.cmd(Method::POST, "/elements", json!({ "using": "css selector", "value": css })).await;
        v.as_array().map_or(0, Vec::len)
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd(Method::GET, &format!("/element/{e}/text"), Value::Null).await.as_str().expect("a text").to_owned()
    }

    /// The DOM property `name` of the first element matching `css`.
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await;
        self.cmd(Method::GET, &format!("/element/{e}/property/{name}"), Value::Null).await.as_str().map(str::to_owned)
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(Method::POST, &format!("/element/{e}/click"), json!({})).await;
    }

    /// Clears the first field matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(Method::POST, &format!("/element/{e}/clear"), json!({})).await;
        self.cmd(Method::POST, &format!("/element/{e}/value"), json!({ "text": text })).await;
    }

    /// Presses Tab; the `id` of the element that has the focus then, and
    /// its computed outline style (the visible focus).
    pub async fn tab(&self) -> (String, String) {
        let tab = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": "\u{E004}" }, { "type": "keyUp", "value": "\u{E004}" }
        ]}]});
        self.cmd(Method::POST, "/actions", tab).await;
        let active = self.cmd(Method::GET, "/element/active", Value::Null).await;
        let e = active[ELEMENT].as_str().expect("an element reference").to_owned();
        let id = self.cmd(Method::GET, &format!("/element/{e}/property/id"), Value::Null).await;
        let outline = self.cmd(Method::GET, &format!("/element/{e}/css/outline-style"), Value::Null).await;
        (id.as_str().unwrap_or("").to_owned(), outline.as_str().unwrap_or("").to_owned())
    }

    /// Runs `script` in the page (WebDriver "execute script": Chromium runs
    /// it outside the page's Content-Security-Policy, which forbids scripts).
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(Method::POST, "/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Runs `script`, which calls its last argument with the result.
    pub async fn exec_async(&self, script: &str) -> Value {
        self.cmd(Method::POST, "/execute/async", json!({ "script": script, "args": [] })).await
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd(Method::POST, "/goog/cdp/execute", json!({ "cmd": cmd, "params": params })).await
    }

    /// The `id` of the element that has the focus.
    pub async fn active_id(&self) -> String {
        let active = self.cmd(Method::GET, "/element/active", Value::Null).await;
        let e = active[ELEMENT].as_str().expect("an element reference").to_owned();
        let id = self.cmd(Method::GET, &format!("/element/{e}/property/id"), Value::Null).await;
        id.as_str().unwrap_or("").to_owned()
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.cmd(Method::GET, "/title", Value::Null).await.as_str().unwrap_or("").to_owned()
    }

    /// Deletes a cookie of the current page's domain, as the browser does
    /// when its `Max-Age` has passed.
    pub async fn delete_cookie(&self, name: &str) {
        self.cmd(Method::DELETE, &format!("/cookie/{name}"), Value::Null).await;
    }

    /// Waits for the lab's OpenID Connect provider's login page (`what`
    /// names it in a failure), then logs in there as `account` with the
    /// lab's password (`password`).
    pub async fn provider_login(&self, what: &str, account: &str) {
        self.wait_url(what, |u| u.starts_with("http://127.0.0.1:9090/interaction/")).await;
        self.fill("#login", account).await;
        self.fill("#password", "password").await;
        self.click("#submit").await;
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// A port of `range` nobody listens on, tried from an offset that depends
/// on the process id and `stagger` (so that tests running at once start
/// from different ports).
pub fn free_port(range: RangeInclusive<u16>, stagger: u16) -> u16 {
    let offset = (std::process::id() % 50) as u16 + stagger;
    let (lo, hi) = (*range.start(), *range.end());
    (0..=hi - lo)
        .map(|i| lo + (offset + i) % (hi - lo + 1))
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port")
}

/// A free port for the portal, registered at the lab's provider: in the
/// last 50 of its `test_redirect_ports` but the last 10 (`tests/it/portal/`
/// leaves them alone, the benchmark takes the last 10); see [`free_port`]
/// for `stagger`.
pub fn free_portal_port(stagger: u16) -> u16 {
    let lab = crate::lab_file("lab.json");
    let last = lab["oidc"]["test_redirect_ports"][1].as_u64().expect("the range's last port") as u16;
    free_port((last - 49)..=(last - 10), stagger)
}

/// Waits (20 s at most) until GET `url` gets an answer.
pub async fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::get(url).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer");
}

/// Starts chromedriver on `port` (killed when dropped) and waits until it
/// answers; returns it and its URL.
pub async fn start_chromedriver(port: u16) -> (tokio::process::Child, String) {
    let driver = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver (cargo xtask lab install)");
    let url = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{url}/status")).await;
    (driver, url)
}

/// The environment of a `bma` whose store is a SQLite file in `dir`, its
/// mail sent through the lab's Postfix, its portal at `base` logging in at
/// the lab's OpenID Connect provider.
pub fn portal_env(dir: &Path, base: &str) -> Vec<(String, String)> {
    let lab = crate::lab_file("lab.json");
    let (smtp, oidc) = (&lab["smtp"], &lab["oidc"]);
    let text = |v: &Value| v.as_str().expect("a string in lab.json").to_owned();
    [
        ("BMA_DATABASE_URL", format!("sqlite://{}", dir.join("bma.db").display())),
        ("BMA_MAIL_SMTP_HOST", text(&smtp["host"])),
        ("BMA_MAIL_SMTP_PORT", smtp["port"].to_string()),
        ("BMA_MAIL_SMTP_TLS", "none".to_owned()),
        ("BMA_MAIL_BOUNCE_ADDRESS", "bounces@bma.test".to_owned()),
        ("BMA_MAIL_MESSAGE_ID_DOMAIN", "bma.test".to_owned()),
        ("BMA_PORTAL_BASE_URL", base.to_owned()),
        ("BMA_OIDC_ISSUER", text(&oidc["issuer"])),
        ("BMA_OIDC_CLIENT_ID", text(&oidc["client_id"])),
        ("BMA_OIDC_CLIENT_SECRET", text(&oidc["client_secret"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Starts the portal (`bma serve --no-scheduler`, killed when dropped) in
/// `dir` with `env` on 127.0.0.1:`port`, and waits until it answers.
pub async fn start_portal(dir: &Path, env: &[(String, String)], port: u16) -> tokio::process::Child {
    let portal = tokio::process::Command::new(crate::bma_bin())
        .args(["serve", "--no-scheduler", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env_remove("BMA_CONFIG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start bma serve");
    wait_http(&format!("http://127.0.0.1:{port}/healthz")).await;
    portal
}
