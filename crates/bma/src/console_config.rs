//! `[console]` of `bma.toml`: the helpdesk console of `bma serve`, its own
//! client at the identity provider, and who has which role.
//!
//! The console is served when `client_id` is set. Its provider is
//! `oidc.issuer` unless `issuer` names another (staff may log in
//! elsewhere than the schools' Cerbère EDU). A role comes from the values
//! of the ID token's `roles_claim` (asked with `scopes`) and from the
//! lists `agents`, `operators` and `admins` (subjects or emails); the
//! highest wins; nobody else gets in.

use bma_core::staff::RoleLists;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// `[console]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// The provider staff log in at; empty: `oidc.issuer`.
    pub issuer: String,
    /// The console's client id; empty: no console.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The ID token claim whose values name roles (`agent`, `operator`, `admin`); empty: none.
    pub roles_claim: String,
    /// Scopes asked beside `openid profile email` (the one that brings the
    /// roles claim), separated by spaces or commas, as OAuth writes them.
    pub scopes: String,
    /// Lifetime of a staff session, minutes.
    pub session_minutes: u32,
    /// Helpdesk agents (subjects or emails).
    pub agents: Vec<String>,
    /// Migration operators.
    pub operators: Vec<String>,
    /// Administrators.
    pub admins: Vec<String>,
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            roles_claim: "bma_roles".to_owned(),
            scopes: String::new(),
            // A working day: the agents keep it open.
            session_minutes: 600,
            agents: Vec::new(),
            operators: Vec::new(),
            admins: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &if self.client_secret.is_empty() { "" } else { "***" })
            .field("roles_claim", &self.roles_claim)
            .finish_non_exhaustive()
    }
}

/// The console's settings, when it is configured.
pub fn settings(config: &Config) -> Option<bma_web::ConsoleSettings> {
    let c = &config.console;
    if c.client_id.trim().is_empty() {
        return None;
    }
    let issuer = if c.issuer.trim().is_empty() { config.oidc.issuer.trim() } else { c.issuer.trim() };
    let claim = c.roles_claim.trim();
    Some(bma_web::ConsoleSettings {
        oidc: bma_web::OidcSettings {
            issuer: issuer.to_owned(),
            client_id: c.client_id.trim().to_owned(),
            client_secret: c.client_secret.clone(),
            extra_scopes: c
                .scopes
                .split(|ch: char| ch == ',' || ch.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            roles_claim: (!claim.is_empty()).then(|| claim.to_owned()),
        },
        roles: RoleLists { agents: c.agents.clone(), operators: c.operators.clone(), admins: c.admins.clone() },
        session_minutes: i64::from(c.session_minutes.max(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_only_with_a_client_and_on_the_portal_provider_by_default() {
        let mut config = Config::default();
        assert!(settings(&config).is_none());
        config.oidc.issuer = "http://127.0.0.1:9090".into();
        config.console.client_id = " bma-console ".into();
        config.console.scopes = "bma, ".into();
        let s = settings(&config).expect("configured");
        assert_eq!(
            (s.oidc.issuer.as_str(), s.oidc.client_id.as_str(), s.oidc.roles_claim.as_deref()),
            ("http://127.0.0.1:9090", "bma-console", Some("bma_roles"))
        );
        assert_eq!(s.oidc.extra_scopes, ["bma"]);
        config.console.issuer = "https://staff.example".into();
        config.console.roles_claim = String::new();
        let s = settings(&config).expect("configured");
        assert_eq!((s.oidc.issuer.as_str(), s.oidc.roles_claim), ("https://staff.example", None));
    }
}
