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
//! The trait is small so that SAML or CAS can be added: start a login
//! (where to send the browser, and an opaque record of what was asked, kept
//! in the session), then finish it from the callback's query parameters.

use std::future::Future;
use std::pin::Pin;

use bma_store::ManagerIdentity;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
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
    fn finish<'a>(
        &'a self,
        pending: &'a str,
        query: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<ManagerIdentity, AuthError>>;
}

type DiscoveredClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// OpenID Connect, discovered from the issuer.
#[derive(Debug)]
pub struct Oidc {
    settings: OidcSettings,
    redirect_uri: String,
    http: openidconnect::reqwest::Client,
    client: Mutex<Option<DiscoveredClient>>,
}

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
        Ok(Oidc { settings, redirect_uri: redirect_uri.to_owned(), http, client: Mutex::new(None) })
    }

    async fn client(&self) -> Result<DiscoveredClient, AuthError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
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
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn start_login(&self) -> Result<LoginStart, AuthError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("profile".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
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

    async fn finish_login(&self, pending: &str, query: &[(String, String)]) -> Result<ManagerIdentity, AuthError> {
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let pending: Pending =
            serde_json::from_str(pending).map_err(|_| AuthError::Refused("no login in progress".into()))?;
        if let Some(error) = get("error") {
            return Err(AuthError::Refused(format!("the provider answered {error}")));
        }
        let state = get("state").unwrap_or("");
        if !crate::session::constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
            return Err(AuthError::Refused("state does not match".into()));
        }
        let code = get("code").ok_or_else(|| AuthError::Refused("no code".into()))?;
        let client = self.client().await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| AuthError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| AuthError::Invalid(format!("code exchange: {e}")))?;
        let id_token = token.id_token().ok_or_else(|| AuthError::Invalid("no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
            .map_err(|e| AuthError::Invalid(format!("ID token: {e}")))?;
        let given_name = claims.given_name().and_then(|n| n.get(None)).map(|n| n.to_string()).unwrap_or_default();
        let family_name = claims.family_name().and_then(|n| n.get(None)).map(|n| n.to_string()).unwrap_or_default();
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_else(|| format!("{given_name} {family_name}").trim().to_owned());
        Ok(ManagerIdentity {
            subject: claims.subject().to_string(),
            name,
            given_name,
            family_name,
            email: claims.email().map(|e| e.to_string()).unwrap_or_default(),
        })
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
    ) -> BoxFuture<'a, Result<ManagerIdentity, AuthError>> {
        Box::pin(self.finish_login(pending, query))
    }
}
