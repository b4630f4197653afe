//! Login: the [`IdentityProvider`] trait, and its OpenID Connect
//! implementation for Cerbère EDU.
//!
//! The flow is the authorization code flow with PKCE (S256), `state` and
//! `nonce`, the provider found by discovery. The `openidconnect` crate
//! validates the ID token: signature against the provider's published keys,
//! issuer, audience, expiry, nonce. The provider is discovered on first use
//! and remembered, so the portal starts (and serves its pages) while the
//! provider is down. Its HTTP client follows no redirects (SSRF).
//!
//! - Every login asks for the password again (`prompt=login`): on a shared
//!   secretariat PC the next person never inherits the previous identity,
//!   even if the previous one closed the tab without logging out.
//! - Logout is RP-initiated: the browser is sent to the provider's
//!   `end_session_endpoint` with the session's ID token as `id_token_hint`,
//!   so the Cerbère EDU session ends too.
//! - The callback checks `state` before anything else; the provider's
//!   `error` is mapped to a closed set ([`OAuthError`]) and never logged
//!   as received.
//! - Key rotation: an ID token signed by a key the cached key set does not
//!   have makes the provider be discovered again (at most once a minute),
//!   and the token checked against the new keys.
//!
//! The trait is small so that SAML or CAS can be added: start a login
//! (where to send the browser, and an opaque record of what was asked, kept
//! in the session), then finish it from the callback's query parameters.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bma_store::ManagerIdentity;
use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::settings::OidcSettings;

/// A boxed future, for the object-safe trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a login failed (English, for the log; pages say it in French).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The provider cannot be reached or its discovery document is wrong.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// The callback does not match the login started (state), or carries an error.
    #[error("login refused: {0}")]
    Refused(String),
    /// The code exchange or the ID token validation failed.
    #[error("invalid login response: {0}")]
    Invalid(String),
}

/// The `error` of an authorization response (RFC 6749 §4.1.2.1, OpenID
/// Connect Core §3.1.2.6): a closed set, so that what the query says is
/// never written to the log as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    /// `access_denied`.
    AccessDenied,
    /// `login_required`.
    LoginRequired,
    /// `interaction_required`.
    InteractionRequired,
    /// `consent_required`.
    ConsentRequired,
    /// `account_selection_required`.
    AccountSelectionRequired,
    /// `invalid_request`, `invalid_request_uri`, `invalid_request_object`.
    InvalidRequest,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `invalid_scope`.
    InvalidScope,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// Anything else.
    Other,
}

impl OAuthError {
    /// The code of an `error` parameter.
    pub fn parse(value: &str) -> OAuthError {
        match value {
            "access_denied" => OAuthError::AccessDenied,
            "login_required" => OAuthError::LoginRequired,
            "interaction_required" => OAuthError::InteractionRequired,
            "consent_required" => OAuthError::ConsentRequired,
            "account_selection_required" => OAuthError::AccountSelectionRequired,
            "invalid_request" | "invalid_request_uri" | "invalid_request_object" => OAuthError::InvalidRequest,
            "unauthorized_client" => OAuthError::UnauthorizedClient,
            "unsupported_response_type" => OAuthError::UnsupportedResponseType,
            "invalid_scope" => OAuthError::InvalidScope,
            "server_error" => OAuthError::ServerError,
            "temporarily_unavailable" => OAuthError::TemporarilyUnavailable,
            _ => OAuthError::Other,
        }
    }

    /// The code, as the standard spells it (`other` for the rest).
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::AccessDenied => "access_denied",
            OAuthError::LoginRequired => "login_required",
            OAuthError::InteractionRequired => "interaction_required",
            OAuthError::ConsentRequired => "consent_required",
            OAuthError::AccountSelectionRequired => "account_selection_required",
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::Other => "other",
        }
    }
}

/// Text from outside (a provider's message) made safe for one log line:
/// control characters escaped, at most 300 characters.
pub fn log_safe(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(300) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The values of claim `name` in the payload of a JWT whose signature was
/// verified: a string, or the strings of a list; nothing otherwise.
pub fn claim_values(jwt: &str, name: &str) -> Vec<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap_or("");
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
        return Vec::new();
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
    match claims.get(name) {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// A finished login: who, and the ID token (the hint of the logout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Who logged in.
    pub identity: ManagerIdentity,
    /// The ID token as received (a JWT), if the provider gave one.
    pub id_token: Option<String>,
    /// The values of the configured roles claim of the verified ID token
    /// (a string or a list of strings); empty when none is configured.
    pub roles: Vec<String>,
}

/// Where to send the browser, and what to remember until the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    /// The provider's authorization URL.
    pub redirect_to: String,
    /// Opaque record (state, nonce, PKCE verifier), kept server-side.
    pub pending: String,
}

/// A way to log people in.
pub trait IdentityProvider: Send + Sync + std::fmt::Debug {
    /// Starts a login.
    fn start(&self) -> BoxFuture<'_, Result<LoginStart, AuthError>>;
    /// Finishes it from the callback's query parameters and the record of
    /// [`IdentityProvider::start`].
    fn finish<'a>(&'a self, pending: &'a str, query: &'a [(String, String)])
    -> BoxFuture<'a, Result<Login, AuthError>>;
    /// Where to send the browser to end the provider's session too, if it
    /// supports RP-initiated logout; `id_token` is the login's ID token.
    fn logout_url<'a>(&'a self, id_token: &'a str) -> BoxFuture<'a, Option<String>>;
}

type DiscoveredClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// OpenID Connect, discovered from the issuer.
#[derive(Debug)]
pub struct Oidc {
    settings: OidcSettings,
    redirect_uri: String,
    http: openidconnect::reqwest::Client,
    client: Mutex<Option<Discovered>>,
    /// When an unknown signing key last made the provider be discovered again.
    refreshed: Mutex<Option<Instant>>,
}

/// What discovery found.
#[derive(Debug, Clone)]
struct Discovered {
    client: DiscoveredClient,
    end_session: Option<String>,
}

/// Shortest time between two discoveries forced by an unknown signing key.
const REDISCOVER_AFTER: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
}

impl Oidc {
    /// A provider with these settings; the callback is `redirect_uri`.
    pub fn new(settings: OidcSettings, redirect_uri: &str) -> Result<Oidc, AuthError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        Ok(Oidc {
            settings,
            redirect_uri: redirect_uri.to_owned(),
            http,
            client: Mutex::new(None),
            refreshed: Mutex::new(None),
        })
    }

    async fn client(&self) -> Result<DiscoveredClient, AuthError> {
        Ok(self.discovered().await?.client)
    }

    async fn discovered(&self) -> Result<Discovered, AuthError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let found = self.discover().await?;
        *slot = Some(found.clone());
        Ok(found)
    }

    /// Discovers the provider again (its keys may have changed), unless
    /// an unknown key already did less than [`REDISCOVER_AFTER`] ago.
    async fn rediscover(&self) -> Result<Option<DiscoveredClient>, AuthError> {
        let mut refreshed = self.refreshed.lock().await;
        if refreshed.is_some_and(|at| at.elapsed() < REDISCOVER_AFTER) {
            return Ok(None);
        }
        *refreshed = Some(Instant::now());
        let found = self.discover().await?;
        *self.client.lock().await = Some(found.clone());
        Ok(Some(found.client))
    }

    async fn discover(&self) -> Result<Discovered, AuthError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| AuthError::Unavailable(format!("discovery: {e}")))?;
        let redirect =
            RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect);
        // `end_session_endpoint` (RP-Initiated Logout 1.0) is not among the
        // crate's standard metadata: read from the same document.
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
        let end_session = match self.http.get(url).send().await {
            Ok(res) => res
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v.get("end_session_endpoint").and_then(|e| e.as_str()).map(str::to_owned))
                .filter(|e| url::Url::parse(e).is_ok()),
            Err(_) => None,
        };
        Ok(Discovered { client, end_session })
    }

    async fn start_login(&self) -> Result<LoginStart, AuthError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("profile".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
            .add_scopes(self.settings.extra_scopes.iter().cloned().map(Scope::new))
            .add_prompt(CoreAuthPrompt::Login)
            .set_pkce_challenge(challenge)
            .url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        };
        let pending = serde_json::to_string(&pending).map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok(LoginStart { redirect_to: url.to_string(), pending })
    }

    async fn finish_login(&self, pending: &str, query: &[(String, String)]) -> Result<Login, AuthError> {
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let pending: Pending =
            serde_json::from_str(pending).map_err(|_| AuthError::Refused("no login in progress".into()))?;
        // The state first: an answer to another login (or a forged one) is
        // refused whatever else it says.
        let state = get("state").unwrap_or("");
        if !crate::session::constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
            return Err(AuthError::Refused("state does not match".into()));
        }
        if let Some(error) = get("error") {
            let code = OAuthError::parse(error);
            return Err(AuthError::Refused(format!("the provider answered {}", code.as_str())));
        }
        let code = get("code").ok_or_else(|| AuthError::Refused("no code".into()))?;
        let client = self.client().await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| AuthError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| AuthError::Invalid(format!("code exchange: {}", log_safe(&e.to_string()))))?;
        let id_token = token.id_token().ok_or_else(|| AuthError::Invalid("no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce);
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            // Signed by a key we do not have: the provider may have rotated its keys.
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                let Some(fresh) = self.rediscover().await? else {
                    return Err(AuthError::Invalid("ID token: no matching signing key".into()));
                };
                tracing::info!("signing keys fetched again: no cached key matched the ID token");
                id_token
                    .claims(&fresh.id_token_verifier(), &nonce)
                    .map_err(|e| AuthError::Invalid(format!("ID token: {}", log_safe(&e.to_string()))))?
                    .clone()
            }
            Err(e) => return Err(AuthError::Invalid(format!("ID token: {}", log_safe(&e.to_string())))),
        };
        let given_name = claims.given_name().and_then(|n| n.get(None)).map(|n| n.to_string()).unwrap_or_default();
        let family_name = claims.family_name().and_then(|n| n.get(None)).map(|n| n.to_string()).unwrap_or_default();
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_else(|| format!("{given_name} {family_name}").trim().to_owned());
        let identity = ManagerIdentity {
            subject: claims.subject().to_string(),
            name,
            given_name,
            family_name,
            email: claims.email().map(|e| e.to_string()).unwrap_or_default(),
        };
        let id_token = id_token.to_string();
        let roles = match &self.settings.roles_claim {
            Some(claim) => claim_values(&id_token, claim),
            None => Vec::new(),
        };
        Ok(Login { identity, id_token: Some(id_token), roles })
    }

    async fn end_session_url(&self, id_token: &str) -> Option<String> {
        let end = self.discovered().await.ok()?.end_session?;
        let mut url = url::Url::parse(&end).ok()?;
        url.query_pairs_mut().append_pair("id_token_hint", id_token).append_pair("client_id", &self.settings.client_id);
        Some(url.to_string())
    }
}

impl IdentityProvider for Oidc {
    fn start(&self) -> BoxFuture<'_, Result<LoginStart, AuthError>> {
        Box::pin(self.start_login())
    }

    fn finish<'a>(
        &'a self,
        pending: &'a str,
        query: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Login, AuthError>> {
        Box::pin(self.finish_login(pending, query))
    }

    fn logout_url<'a>(&'a self, id_token: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(self.end_session_url(id_token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_values_of_a_token() {
        use base64::Engine as _;
        let jwt =
            |payload: &str| format!("e30.{}.sig", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload));
        let cases: &[(&str, &[&str])] = &[
            (r#"{"bma_roles":["agent","operator"]}"#, &["agent", "operator"]),
            (r#"{"bma_roles":"admin"}"#, &["admin"]),
            (r#"{"bma_roles":[1,"agent",null]}"#, &["agent"]),
            (r#"{"bma_roles":7}"#, &[]),
            (r#"{"other":"admin"}"#, &[]),
            ("not json", &[]),
        ];
        for (payload, want) in cases {
            assert_eq!(claim_values(&jwt(payload), "bma_roles"), *want, "{payload}");
        }
        assert!(claim_values("no-dots", "bma_roles").is_empty());
    }

    #[test]
    fn provider_errors_are_a_closed_set_and_log_text_is_one_line() {
        for (raw, code) in [
            ("access_denied", "access_denied"),
            ("login_required", "login_required"),
            ("invalid_request_uri", "invalid_request"),
            ("x\nFAKE", "other"),
            ("access_denied\r\nINFO forged", "other"),
        ] {
            assert_eq!(OAuthError::parse(raw).as_str(), code, "{raw:?}");
        }
        assert_eq!(log_safe("a\nb\r\u{1b}[31m"), "a\\nb\\r\\u{1b}[31m");
        assert_eq!(log_safe(&"x".repeat(500)).len(), 300);
    }
}
