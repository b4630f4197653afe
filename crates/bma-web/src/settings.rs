//! What the portal needs to know: its public address, the identity
//! provider, the campaign, the limits.

use bma_core::settings::Settings;

/// The OpenID Connect provider (Cerbère EDU). `Debug` masks the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Issuer URL; discovery at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (never logged).
    pub client_secret: String,
    /// Scopes asked beyond `openid profile email` (the console's roles claim may need one).
    pub extra_scopes: Vec<String>,
    /// A claim of the ID token whose values a login reports (the console's roles); `None`: none.
    pub roles_claim: Option<String>,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &if self.client_secret.is_empty() { "" } else { "***" })
            .finish()
    }
}

/// The portal's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    /// Public base URL (`https://bma.example`); links and the OIDC redirect
    /// URI (`<base>/auth/callback`) are built on it. `http://` only on a
    /// loopback host (development and the lab).
    pub base_url: String,
    /// The identity provider; `None`: pages are served, login is unavailable.
    pub oidc: Option<OidcSettings>,
    /// The campaign (dates, BMA domain, sender, contacts).
    pub campaign: Settings,
    /// Requests per minute per client address (0: no limit).
    pub rate_limit_per_ip: u32,
    /// Requests per minute per form link (0: no limit).
    pub rate_limit_per_link: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (only
    /// behind a reverse proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Lifetime of a logged-in session, minutes.
    pub session_minutes: i64,
    /// The bounce mailbox (VERP base) of the portal's emails.
    pub bounce_address: String,
    /// Domain of the Message-IDs of the portal's emails.
    pub message_id_domain: String,
    /// What the privacy page says that is the organisation's to say.
    pub privacy: PrivacySettings,
    /// The helpdesk console (`/console`); `None`: not served.
    pub console: Option<ConsoleSettings>,
    /// Who may read `/metrics` (loopback only by default).
    pub metrics: crate::metrics::MetricsSettings,
    /// What mail clients are told (autoconfiguration, the guides); `None`: not configured.
    pub autoconfig: Option<crate::autoconfig::AutoconfigSettings>,
}

/// The helpdesk console's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Its own client at the identity provider (callback `<base>/console/auth/callback`),
    /// asking for the roles claim when one is configured.
    pub oidc: OidcSettings,
    /// Who has which role, by subject or email, beside the claim.
    pub roles: bma_core::staff::RoleLists,
    /// Lifetime of a staff session, minutes (a working day by default).
    pub session_minutes: i64,
}

/// The organisation's part of the privacy page (`/confidentialite`); the
/// rest (the rights, the authority to complain to) is the law's and fixed.
/// Also the `[privacy]` section of `bma.toml`, as it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    /// The controller, as named on the page.
    pub controller: String,
    /// Its postal address.
    pub controller_address: String,
    /// The legal basis of the processing (GDPR article 6).
    pub legal_basis: String,
    /// The data protection officer's email.
    pub dpo_email: String,
    /// The data protection officer's postal address.
    pub dpo_address: String,
    /// Who receives the data besides the controller.
    pub recipients: String,
    /// Months the form's answers are kept after the campaign's end: what
    /// the page promises, and the one setting of the retention (`bma
    /// privacy purge` counts its days with [`PrivacySettings::retention_days`]).
    pub retention_months: u32,
    /// `bma serve` (with its scheduler) runs the purge itself, hourly, on
    /// the campaign clock; otherwise `bma privacy purge` from cron.
    #[serde(default)]
    pub purge_automatically: bool,
}

impl Default for PrivacySettings {
    /// The Fédération Wallonie-Bruxelles' values for the FAQ's campaign.
    fn default() -> Self {
        PrivacySettings {
            controller: "Ministère de la Fédération Wallonie-Bruxelles, Administration générale de l'Enseignement, \
                         Service général du Numérique éducatif (SGNE)"
                .to_owned(),
            controller_address: "Boulevard Léopold II 44, 1080 Bruxelles".to_owned(),
            legal_basis: "l'exécution d'une mission d'intérêt public dont est investie l'Administration générale de \
                          l'Enseignement (article 6.1.e du RGPD) : fournir aux établissements scolaires et aux \
                          pouvoirs organisateurs une boîte mail administrative et en assurer la migration"
                .to_owned(),
            dpo_email: "dpo@cfwb.be".to_owned(),
            dpo_address: "Délégué à la protection des données, Ministère de la Fédération Wallonie-Bruxelles, \
                          Boulevard Léopold II 44, 1080 Bruxelles"
                .to_owned(),
            recipients: "l'ETNIC (Entreprise publique des Technologies numériques de l'Information et de la \
                         Communication), qui réalise la migration pour le SGNE en tant que sous-traitant"
                .to_owned(),
            retention_months: 12,
            purge_automatically: false,
        }
    }
}

impl PrivacySettings {
    /// The days of the retention after `end` (the campaign's last day):
    /// up to the same day `retention_months` later (the last day of that
    /// month if it is shorter), so that what is purged goes when the page
    /// says, not a day later. Twelve months after 31 May 2024: 365 days.
    pub fn retention_days(&self, end: time::Date) -> u32 {
        let months = i64::from(end.month() as u8) - 1 + i64::from(self.retention_months);
        let year = i32::try_from(i64::from(end.year()) + months.div_euclid(12)).unwrap_or(i32::MAX);
        let month =
            time::Month::try_from(u8::try_from(months.rem_euclid(12) + 1).unwrap_or(1)).unwrap_or(time::Month::January);
        let day = end.day().min(month.length(year));
        let until = time::Date::from_calendar_date(year, month, day).unwrap_or(time::Date::MAX);
        u32::try_from((until - end).whole_days()).unwrap_or(u32::MAX)
    }

    /// The same, each text without its surrounding white space.
    pub fn trimmed(&self) -> PrivacySettings {
        PrivacySettings {
            controller: self.controller.trim().to_owned(),
            controller_address: self.controller_address.trim().to_owned(),
            legal_basis: self.legal_basis.trim().to_owned(),
            dpo_email: self.dpo_email.trim().to_owned(),
            dpo_address: self.dpo_address.trim().to_owned(),
            recipients: self.recipients.trim().to_owned(),
            retention_months: self.retention_months,
            purge_automatically: self.purge_automatically,
        }
    }
}

impl PortalSettings {
    /// Defaults for a portal at `base_url` with the FAQ's campaign.
    pub fn new(base_url: &str) -> PortalSettings {
        PortalSettings {
            base_url: base_url.trim_end_matches('/').to_owned(),
            oidc: None,
            campaign: Settings::default(),
            rate_limit_per_ip: 300,
            rate_limit_per_link: 60,
            trust_forwarded_for: false,
            session_minutes: 60,
            bounce_address: "bounces@cfwb.be".to_owned(),
            message_id_domain: "cfwb.be".to_owned(),
            privacy: PrivacySettings::default(),
            console: None,
            metrics: crate::metrics::MetricsSettings::default(),
            autoconfig: None,
        }
    }

    /// Whether cookies are `Secure` with the `__Host-` prefix: always,
    /// unless the base URL is plain HTTP (allowed on loopback only).
    pub fn secure_cookies(&self) -> bool {
        !self.base_url.starts_with("http://")
    }

    /// The problems of these settings, in English for the operator.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        match url::Url::parse(&self.base_url) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" => {
                if !is_loopback_host(u.host_str().unwrap_or("")) {
                    out.push(format!(
                        "portal.base_url '{}': plain http is only allowed on a loopback host; use https",
                        self.base_url
                    ));
                }
            }
            _ => out.push(format!("portal.base_url '{}' is not an http(s) URL", self.base_url)),
        }
        if let Some(o) = &self.oidc {
            if url::Url::parse(&o.issuer).is_err() {
                out.push(format!("oidc.issuer '{}' is not a URL", o.issuer));
            }
            if o.client_id.trim().is_empty() {
                out.push("oidc.client_id is empty".to_owned());
            }
        }
        if let Some(c) = &self.console {
            if url::Url::parse(&c.oidc.issuer).is_err() {
                out.push(format!("console.issuer '{}' is not a URL", c.oidc.issuer));
            }
            if c.oidc.client_id.trim().is_empty() {
                out.push("console.client_id is empty".to_owned());
            }
            let lists = &c.roles;
            if c.oidc.roles_claim.is_none()
                && lists.agents.is_empty()
                && lists.operators.is_empty()
                && lists.admins.is_empty()
            {
                out.push("console: no roles_claim and no agents, operators or admins: nobody could use it".to_owned());
            }
        }
        out
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        for (url, ok, secure) in [
            ("https://bma.example", true, true),
            ("http://127.0.0.1:8080", true, false),
            ("http://localhost:8080", true, false),
            ("http://[::1]:8080", true, false),
            ("http://bma.example", false, false),
            ("ftp://x", false, true),
        ] {
            let s = PortalSettings::new(url);
            assert_eq!(s.problems().is_empty(), ok, "{url}");
            assert_eq!(s.secure_cookies(), secure, "{url}");
        }
    }

    #[test]
    fn retention_in_days_is_the_months_of_the_page() {
        use time::macros::date;
        for (months, end, days) in [
            (12, date!(2024 - 05 - 31), 365),
            (0, date!(2024 - 05 - 31), 0),
            (1, date!(2024 - 01 - 31), 29),
            (1, date!(2023 - 01 - 31), 28),
            (18, date!(2024 - 05 - 31), 548),
            (24, date!(2024 - 02 - 29), 730),
            (13, date!(2024 - 12 - 15), 396),
        ] {
            let p = PrivacySettings { retention_months: months, ..PrivacySettings::default() };
            assert_eq!(p.retention_days(end), days, "{months} months after {end}");
        }
    }
}
