//! `[metrics]` of `bma.toml`: who may read `/metrics` of `bma serve`.
//!
//! `allow` lists the addresses and networks (`127.0.0.1`, `::1`,
//! `10.0.0.0/8`) whose clients may read; loopback only by default, so a
//! Prometheus on the same host works without configuration and nobody
//! else reads anything. `token`, when set, lets any client that sends
//! `Authorization: Bearer <token>` read; give it through the environment
//! (`BMA_METRICS_TOKEN`) rather than the file, as every secret. The list
//! can come from the environment too: `BMA_METRICS_ALLOW="10.0.0.0/8,
//! ::1"`. Every entry is checked when the configuration loads: a typo
//! stops `bma` rather than lock the scraper out, or let everyone in.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, Origin};

/// `[metrics]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Addresses or networks (CIDR) whose clients may read `/metrics`.
    pub allow: Vec<String>,
    /// A bearer token that lets any client read; empty: none.
    pub token: String,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig { allow: vec!["127.0.0.0/8".to_owned(), "::1".to_owned()], token: String::new() }
    }
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("allow", &self.allow)
            .field("token", &if self.token.is_empty() { "" } else { "***" })
            .finish()
    }
}

/// The problems of `[metrics]`, each with its key.
pub fn validate(config: &Config) -> Vec<ConfigIssue> {
    let mut issues: Vec<ConfigIssue> = config
        .metrics
        .allow
        .iter()
        .filter_map(|n| bma_web::metrics::parse_network(n).err())
        .map(|message| ConfigIssue { key: "metrics.allow".into(), origin: Origin::Merged, message })
        .collect();
    let token = &config.metrics.token;
    if !token.is_empty() && (token.trim() != token || token.len() < 16 || token.chars().any(char::is_control)) {
        issues.push(ConfigIssue {
            key: "metrics.token".into(),
            origin: Origin::Merged,
            message: "must be at least 16 characters, without spaces around or control characters".into(),
        });
    }
    issues
}

/// Who may read `/metrics` (entries that do not parse were refused at load).
pub fn settings(config: &Config) -> bma_web::MetricsSettings {
    let m = &config.metrics;
    bma_web::MetricsSettings {
        allow: m.allow.iter().filter_map(|n| bma_web::metrics::parse_network(n).ok()).collect(),
        token: (!m.token.is_empty()).then(|| m.token.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn loopback_by_default_and_the_list_and_token_from_the_environment() {
        let s = settings(&Config::default());
        assert!(s.allows("127.0.0.1".parse().unwrap()) && s.allows("::1".parse().unwrap()));
        assert!(!s.allows("10.1.2.3".parse().unwrap()));
        assert_eq!(s.token, None);
        let c = load(
            None,
            env(&[("BMA_METRICS_ALLOW", "10.0.0.0/8, 192.0.2.7"), ("BMA_METRICS_TOKEN", "a-long-scrape-token")]),
        )
        .unwrap();
        let s = settings(&c);
        assert!(s.allows("10.1.2.3".parse().unwrap()) && s.allows("192.0.2.7".parse().unwrap()));
        assert!(!s.allows("127.0.0.1".parse().unwrap()), "the list replaces the default");
        assert_eq!(s.token.as_deref(), Some("a-long-scrape-token"));
        assert!(!format!("{c:?}").contains("a-long-scrape-token"), "the token is never printed");
    }

    #[test]
    fn a_bad_entry_or_a_weak_token_stops_the_load() {
        let errors = load(None, env(&[("BMA_METRICS_ALLOW", "10.0.0.0/33,localhost"), ("BMA_METRICS_TOKEN", "short")]))
            .unwrap_err()
            .to_string();
        assert!(errors.contains("metrics.allow: '10.0.0.0/33' is not an address or a network"), "{errors}");
        assert!(errors.contains("metrics.allow: 'localhost' is not"), "{errors}");
        assert!(errors.contains("metrics.token: must be at least 16 characters"), "{errors}");
        assert!(!errors.contains("short"), "the token is not repeated: {errors}");
    }
}
