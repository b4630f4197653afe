//! The portal's state: the store, the settings, the identity provider, the
//! email composer, the clock, the rate limiters and the cookie names,
//! shared by every handler of every audience (axum's `State`).
//!
//! Rules: time comes from the injected clock only; the notices every
//! audience answers with (unknown link, too many requests, refused POST)
//! are built here once.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use bma_core::Clock;
use bma_core::contact::Contact;
use bma_core::settings::date_fr;
use bma_mail::{Composer, Sender, Templates};
use bma_store::{PortalMailbox, Store};
use time::OffsetDateTime;

use crate::error::{Notice, WebError};
use crate::oidc::{IdentityProvider, Oidc};
use crate::settings::PortalSettings;
use crate::{security, session};

/// The portal: its store, settings and collaborators, shared by handlers.
#[derive(Clone)]
pub struct Portal {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) settings: PortalSettings,
    pub(crate) idp: Option<Arc<dyn IdentityProvider>>,
    pub(crate) composer: Composer,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ip_limiter: security::RateLimiter,
    pub(crate) link_limiter: security::RateLimiter,
    pub(crate) cookies: session::Cookies,
    pub(crate) csp: HeaderValue,
    pub(crate) console: Option<crate::console::Console>,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").field("base_url", &self.inner.settings.base_url).finish_non_exhaustive()
    }
}

impl Portal {
    /// A portal; with `settings.oidc`, an OpenID Connect login (discovered
    /// on first use).
    pub fn new(
        store: Store,
        settings: PortalSettings,
        templates: Templates,
        clock: Arc<dyn Clock>,
    ) -> Result<Portal, WebError> {
        Portal::with_engine(store, settings, templates, clock, None)
    }

    /// [`Portal::new`], the console acting through `engine`.
    pub fn with_engine(
        store: Store,
        settings: PortalSettings,
        templates: Templates,
        clock: Arc<dyn Clock>,
        engine: Option<Arc<bma_engine::Engine>>,
    ) -> Result<Portal, WebError> {
        let problems = settings.problems();
        if !problems.is_empty() {
            return Err(WebError::Settings(problems.join("; ")));
        }
        let idp: Option<Arc<dyn IdentityProvider>> = match &settings.oidc {
            Some(o) => Some(Arc::new(Oidc::new(o.clone(), &format!("{}/auth/callback", settings.base_url))?)),
            None => None,
        };
        let console_idp: Option<Arc<dyn IdentityProvider>> = match &settings.console {
            Some(c) => {
                Some(Arc::new(Oidc::new(c.oidc.clone(), &format!("{}/console/auth/callback", settings.base_url))?))
            }
            None => None,
        };
        Ok(Portal::with_identity_provider(store, settings, templates, clock, idp).with_console(console_idp, engine))
    }

    /// The same portal with the helpdesk console (when `settings.console`
    /// is set) logging staff in with `idp`, and acting through `engine`
    /// (without one, the actions that need the engine say so). Called
    /// before the portal is shared.
    pub fn with_console(
        mut self,
        idp: Option<Arc<dyn IdentityProvider>>,
        engine: Option<Arc<bma_engine::Engine>>,
    ) -> Portal {
        let settings = self.inner.settings.console.clone();
        let console = match (settings, idp) {
            (Some(settings), Some(idp)) => Some(crate::console::Console::new(settings, idp, engine)),
            _ => None,
        };
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.console = console,
            None => tracing::error!("the console is set on a portal already shared: not served"),
        }
        self
    }

    /// The helpdesk console, if it is served.
    pub(crate) fn console(&self) -> Option<&crate::console::Console> {
        self.inner.console.as_ref()
    }

    /// A portal with a given identity provider (or none).
    pub fn with_identity_provider(
        store: Store,
        settings: PortalSettings,
        templates: Templates,
        clock: Arc<dyn Clock>,
        idp: Option<Arc<dyn IdentityProvider>>,
    ) -> Portal {
        let cookies = session::Cookies { secure: settings.secure_cookies() };
        let csp = security::csp_for(settings.oidc.as_ref().map(|o| o.issuer.as_str()));
        let sender = &settings.campaign.sender;
        let composer = Composer::new(
            templates,
            Sender { name: sender.name.clone(), address: sender.address.clone() },
            &settings.bounce_address,
            &settings.message_id_domain,
        );
        Portal {
            inner: Arc::new(Inner {
                ip_limiter: security::RateLimiter::per_minute(settings.rate_limit_per_ip),
                link_limiter: security::RateLimiter::per_minute(settings.rate_limit_per_link),
                store,
                settings,
                idp,
                composer,
                clock,
                cookies,
                csp,
                console: None,
            }),
        }
    }

    /// Whether login is possible (an identity provider is configured).
    pub fn login_available(&self) -> bool {
        self.inner.idp.is_some()
    }

    /// The settings.
    pub fn settings(&self) -> &PortalSettings {
        &self.inner.settings
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The contact of the campaign's running phase.
    pub(crate) fn general_contact(&self) -> &Contact {
        &self.inner.settings.campaign.contacts.during
    }

    /// The contact of a mailbox's phase.
    pub(crate) fn contact_of(&self, m: &PortalMailbox) -> &Contact {
        self.inner.settings.campaign.contacts.for_state(m.state, m.blocked_from)
    }

    /// 403: a POST that could not be checked.
    pub(crate) fn forbidden(&self) -> Notice {
        Notice::new(
            StatusCode::FORBIDDEN,
            "Demande refusée",
            &[
                "Cette demande n'a pas pu être vérifiée : votre session a peut-être expiré.",
                "Rouvrez le lien reçu par email, reconnectez-vous, puis recommencez.",
            ],
            self.general_contact(),
        )
    }

    /// 429 with `Retry-After`.
    pub(crate) fn too_many(&self, wait: u64) -> Notice {
        Notice::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de demandes",
            &["Trop de demandes ont été reçues en peu de temps. Patientez une minute, puis réessayez."],
            self.general_contact(),
        )
        .retry_after(wait)
    }

    /// 404: a form link that names no mailbox.
    pub(crate) fn unknown_link(&self) -> Notice {
        Notice::new(
            StatusCode::NOT_FOUND,
            "Ce lien n'est pas valide",
            &[
                "Le lien que vous avez suivi ne correspond à aucune boîte mail administrative. Vérifiez qu'il \
                 est complet : copiez-le en entier depuis l'email reçu du SGNE, sans espace ni coupure.",
                "Si le problème persiste, ou si vous n'avez reçu aucun email concernant la migration, \
                 contactez l'équipe migration du SGNE en précisant vos nom, prénom et l'adresse de la BMA.",
            ],
            self.general_contact(),
        )
    }

    /// 410: a form link of mailbox `m` after the campaign's end; `None` before.
    pub(crate) fn expired(&self, m: &PortalMailbox) -> Option<Notice> {
        let end = self.inner.settings.campaign.campaign.end;
        if self.now().date() <= end {
            return None;
        }
        let text = format!(
            "La campagne de migration des BMA s'est terminée le {} : ce lien n'est plus valable et le \
             formulaire ne peut plus être complété.",
            date_fr(end)
        );
        Some(Notice::new(
            StatusCode::GONE,
            "Ce lien a expiré",
            &[
                text.as_str(),
                "Pour toute question sur votre boîte mail administrative, contactez le service indiqué \
                 ci-dessous en précisant vos nom, prénom et l'adresse de la BMA.",
            ],
            self.contact_of(m),
        ))
    }
}
