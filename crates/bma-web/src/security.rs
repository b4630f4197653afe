//! What every response carries and what every request goes through:
//! security headers, rate limits, and a request log without personal data.
//!
//! - Headers: a strict Content-Security-Policy (nothing but our own
//!   stylesheet, forms posting to ourselves, no framing), `nosniff`, no
//!   referrer (the form link carries a secret token and must not leak to
//!   another site), `Cache-Control: no-store` (every page but the
//!   stylesheet is personal or may become so), HSTS when served over https.
//! - Rate limits: fixed one-minute windows counted in memory, per client
//!   address and per form link (keyed by the hash of the token); over the
//!   limit, a French 429 page with `Retry-After`. Limits are settings, so a
//!   benchmark can raise them while still going through the limiter.
//! - The log names the route's pattern (`/formulaire/{token}`), never the
//!   path itself, so tokens and codes never reach it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Portal;

/// The policy: our stylesheet only, forms to ourselves (and, with a
/// provider, its origin: see [`csp_for`]), no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// The policy of a portal whose identity provider is at `issuer`: the
/// logout form's answer redirects there (RP-initiated logout), which
/// browsers check against `form-action`.
pub fn csp_for(issuer: Option<&str>) -> HeaderValue {
    let origin = issuer.and_then(|i| url::Url::parse(i).ok()).map(|u| u.origin().ascii_serialization());
    match origin {
        Some(o) if o != "null" => {
            HeaderValue::from_str(&CSP.replace("form-action 'self'", &format!("form-action 'self' {o}")))
                .unwrap_or_else(|_| HeaderValue::from_static(CSP))
        }
        _ => HeaderValue::from_static(CSP),
    }
}

/// Counts each request against its client address (see [`client_ip`]);
/// over the limit, the 429 page.
pub async fn limit_per_ip(State(portal): State<Portal>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>();
    let ip = client_ip(req.headers(), peer, portal.inner.settings.trust_forwarded_for);
    match portal.inner.ip_limiter.hit(&ip) {
        Ok(()) => next.run(req).await,
        Err(wait) => portal.too_many(wait).into_response(),
    }
}

/// Adds the security headers to every response.
pub async fn headers(State(portal): State<Portal>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, portal.inner.csp.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if portal.inner.settings.secure_cookies() {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    res
}

/// Answers 408 when a request (its body read and its answer) takes longer
/// than `limit`: a client trickling its body holds nothing for long.
pub async fn whole_request(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs(), "request timed out");
            let body = "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Délai dépassé</title>\
                        </head><body><h1>Délai dépassé</h1><p>La demande a mis trop de temps à arriver. Réessayez.</p>\
                        </body></html>";
            let mut res = (axum::http::StatusCode::REQUEST_TIMEOUT, axum::response::Html(body)).into_response();
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
    }
}

/// Logs each request by its route pattern, status and duration.
pub async fn log(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("(no route)", |m| m.as_str()).to_owned();
    let method = req.method().clone();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, route, status, ms, "request");
    } else {
        tracing::debug!(%method, route, status, ms, "request");
    }
    res
}

/// The client's address: the peer, or with `trust_forwarded_for` the last
/// entry of `X-Forwarded-For` (the one our own proxy added).
pub fn client_ip(headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>, trust_forwarded: bool) -> String {
    if trust_forwarded
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
    {
        return ip.to_string();
    }
    peer.map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// Fixed-window counters: at most `limit` hits per key per window.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    shards: Vec<Mutex<HashMap<String, (Instant, u32)>>>,
}

const SHARDS: usize = 16;
const MAX_KEYS_PER_SHARD: usize = 20_000;

impl RateLimiter {
    /// At most `limit` per minute per key; 0 means no limit.
    pub fn per_minute(limit: u32) -> RateLimiter {
        RateLimiter::new(limit, Duration::from_secs(60))
    }

    /// At most `limit` per `window` per key; 0 means no limit.
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter { limit, window, shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    /// Counts a hit for `key`; `Err(seconds to wait)` when over the limit.
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let shard = key.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b))) % SHARDS;
        let now = Instant::now();
        let mut map = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS_PER_SHARD {
            map.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = map.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let wait = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(wait.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_window() {
        let r = RateLimiter::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(r.hit("a").is_ok());
        }
        assert!(r.hit("a").is_err());
        assert!(r.hit("b").is_ok(), "another key has its own count");
        std::thread::sleep(Duration::from_millis(220));
        assert!(r.hit("a").is_ok(), "a new window");
        let off = RateLimiter::per_minute(0);
        assert!((0..10_000).all(|_| off.hit("a").is_ok()));
    }

    #[test]
    fn the_policy_lets_the_logout_reach_the_provider_only() {
        let with = csp_for(Some("https://cerbere.example.be/realms/edu"));
        assert!(with.to_str().unwrap().contains("form-action 'self' https://cerbere.example.be;"), "{with:?}");
        assert_eq!(csp_for(None).to_str().unwrap(), CSP);
        assert_eq!(csp_for(Some("not a url")).to_str().unwrap(), CSP);
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.7"));
        let peer = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5555)));
        assert_eq!(client_ip(&h, Some(&peer), false), "127.0.0.1");
        assert_eq!(client_ip(&h, Some(&peer), true), "198.51.100.7");
    }
}
