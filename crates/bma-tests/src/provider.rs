//! Logging in at the lab's OpenID Connect provider over plain HTTP, as the
//! portal tests do (`tests/it/portal/`, `tests/it/trust.rs`): redirects followed
//! by hand, to see every hop, and the provider's login form posted when it
//! shows up.

use reqwest::StatusCode;
use reqwest::header::LOCATION;

/// Follows redirects from `start` by hand, logging in as `account`
/// (password `password`) at the provider's page when it shows up. Returns
/// the last status, URL and body.
pub async fn login_with(client: &reqwest::Client, start: &str, account: &str) -> (StatusCode, String, String) {
    let mut url = url::Url::parse(start).expect("a URL");
    let mut res = client.get(url.clone()).send().await.expect("GET");
    for _ in 0..15 {
        if res.status().is_redirection() {
            let loc = res.headers()[LOCATION].to_str().expect("a Location").to_owned();
            url = url.join(&loc).expect("a Location URL");
            res = client.get(url.clone()).send().await.expect("GET");
            continue;
        }
        if res.status() == StatusCode::OK && url.path().starts_with("/interaction/") {
            let login_url = url.join(&format!("{}/login", url.path())).expect("the login URL");
            res = client
                .post(login_url.clone())
                .form(&[("login", account), ("password", "password")])
                .send()
                .await
                .expect("POST login");
            url = login_url;
            continue;
        }
        break;
    }
    let status = res.status();
    (status, url.to_string(), res.text().await.expect("a body"))
}
