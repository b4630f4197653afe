//! Logging in at the lab's OpenID Connect provider over plain HTTP, as the
//! portal tests do (`tests/it/portal/`, `tests/it/trust.rs`): the walk of
//! `bma-visitor` (redirects followed by hand, to see every hop, and the
//! provider's login form posted when it shows up), on the test's client.

use reqwest::StatusCode;

/// Follows redirects from `start` by hand, logging in as `account`
/// (password `password`) at the provider's page when it shows up. Returns
/// the last status, URL and body.
pub async fn login_with(client: &reqwest::Client, start: &str, account: &str) -> (StatusCode, String, String) {
    let page = bma_visitor::Visitor::with_client(client.clone())
        .follow(start, account, "password")
        .await
        .unwrap_or_else(|e| panic!("{start}: {e}"));
    (page.status, page.url, page.body)
}
