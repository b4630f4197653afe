//! The routes and their handlers.
//!
//! | route | what |
//! |---|---|
//! | `GET /healthz` | liveness |
//! | `GET /` | what the portal is, whom to contact |
//! | `GET /formulaire/{token}` | before login: the login link; after: the form or the status page |
//! | `POST /formulaire/{token}` | a submission (CSRF) |
//! | `GET /formulaire/{token}/modifier` | the form again, to correct it |
//! | `GET /formulaire/{token}/confirmation` | after a submission |
//! | `POST /formulaire/{token}/verification` | a new verification link for the backup address (CSRF) |
//! | `GET /formulaire/{token}/connexion` | starts the login |
//! | `GET /auth/callback` | the identity provider's answer |
//! | `POST /deconnexion` | logout (CSRF), then the provider's end of session |
//! | `GET /verification/{code}` | the link sent to the backup address: a button |
//! | `POST /verification/{code}` | the button: verifies the address (the code is the credential) |
//! | `GET /confidentialite` | the privacy notice |
//! | `GET /accessibilite` | the accessibility statement |
//! | `GET /static/favicon.svg` | the icon (`/favicon.ico` redirects to it) |
//!
//! A form posted without a valid session (it expired while the form was
//! open, or the person logged in again in another tab) is not refused: it
//! is kept in the session, server-side, and shown again once the person
//! is logged in, to be checked and sent. Nothing is stored as an answer
//! without the session's CSRF token.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use bma_core::contact::Contact;
use bma_core::lifecycle::State as MailboxState;
use bma_core::settings::date_fr;
use bma_mail::{TemplateKind, verp};
use bma_store::{
    BackupChange, BackupStatus, BackupVerificationRequest, Enrollment, NewEmail, PortalMailbox, PortalSession,
    PortalView, RenewOutcome, StoreError, Submission, VerifyOutcome,
};
use time::{Duration, OffsetDateTime};

use crate::form::{self, FieldErrors, FormInput, field};
use crate::oidc::{Login, log_safe};
use crate::pages::{
    AccessibilityPage, BackupView, FormPage, HomePage, Layout, LoginPage, MessagePage, PrivacyPage, RoleOption,
    StatusPage, TextField, VerifyPage, Who,
};
use crate::session::{constant_time_eq, cookie, random_token};
use crate::{Portal, PortalError, security};

/// Largest request body accepted (the form is well under 2 KiB).
pub const BODY_LIMIT: usize = 16 * 1024;
/// How long a login may take at the provider.
const LOGIN_MINUTES: i64 = 15;
/// How long a backup verification link works.
const VERIFICATION_DAYS: i64 = 14;
/// How long answers posted after their session expired wait for a new login.
const DRAFT_MINUTES: i64 = 120;

/// The routes; a request (body and answer) gets `request_timeout`.
pub(crate) fn router(portal: Portal, request_timeout: std::time::Duration) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/formulaire/{token}", get(link).post(submit))
        .route("/formulaire/{token}/modifier", get(edit))
        .route("/formulaire/{token}/confirmation", get(confirmation))
        .route("/formulaire/{token}/verification", axum::routing::post(resend_verification))
        .route("/formulaire/{token}/connexion", get(login_start))
        .route("/auth/callback", get(login_callback))
        .route("/deconnexion", axum::routing::post(logout))
        .route("/verification/{code}", get(verify_page).post(verify))
        .route("/confidentialite", get(privacy))
        .route("/accessibilite", get(accessibility))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(portal.clone(), limit_per_ip))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/static/portal.css", get(stylesheet))
        .route("/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(|| async { Redirect::permanent("/static/favicon.svg") }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(request_timeout, security::whole_request))
        .layer(middleware::from_fn_with_state(portal.clone(), security::headers))
        .layer(middleware::from_fn(security::log))
        .with_state(portal)
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        // The message may name a mailbox: log only what kind of failure it was.
        let kind = match &self {
            PortalError::Store(StoreError::Db(e)) => format!("database: {e}"),
            PortalError::Store(_) => "store".to_owned(),
            PortalError::Page(e) => format!("page: {e}"),
            PortalError::Template(_) | PortalError::Build(_) => "email".to_owned(),
            PortalError::Auth(e) => format!("identity provider: {e}"),
            PortalError::Settings(e) => format!("settings: {e}"),
        };
        tracing::error!(kind, "request failed");
        let body = "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
                    <title>Erreur\u{a0}: une erreur est survenue — Migration des BMA</title></head>\
                    <body><main><h1>Une erreur est survenue</h1><p>Le portail n'a pas pu traiter votre demande. \
                    Réessayez dans quelques minutes\u{a0}; si le problème persiste, contactez l'équipe migration du \
                    SGNE\u{a0}: migrationbma@cfwb.be, +32 (0)2 413.3090.</p></main></body></html>";
        (StatusCode::INTERNAL_SERVER_ERROR, Html(body)).into_response()
    }
}

type Outcome = Result<Response, PortalError>;

impl Portal {
    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn layout(&self, title: &str, who: Option<Who>, contact: &Contact) -> Layout {
        Layout { title: title.to_owned(), who, contact: contact.clone(), error: false }
    }

    fn general_contact(&self) -> &Contact {
        &self.inner.settings.campaign.contacts.during
    }

    fn contact_of(&self, m: &PortalMailbox) -> &Contact {
        self.inner.settings.campaign.contacts.for_state(m.state, m.blocked_from)
    }

    fn message(&self, status: StatusCode, heading: &str, paragraphs: &[&str], contact: &Contact) -> Outcome {
        let page = MessagePage {
            layout: Layout {
                error: status.is_client_error() || status.is_server_error(),
                ..self.layout(heading, None, contact)
            },
            heading: heading.to_owned(),
            paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
            link: None,
        };
        Ok((status, Html(page.render()?)).into_response())
    }

    fn forbidden(&self) -> Outcome {
        self.message(
            StatusCode::FORBIDDEN,
            "Demande refusée",
            &[
                "Cette demande n'a pas pu être vérifiée : votre session a peut-être expiré.",
                "Rouvrez le lien reçu par email, reconnectez-vous, puis recommencez.",
            ],
            self.general_contact(),
        )
    }

    fn too_many(&self, wait: u64) -> Outcome {
        let mut res = self.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de demandes",
            &["Trop de demandes ont été reçues en peu de temps. Patientez une minute, puis réessayez."],
            self.general_contact(),
        )?;
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        Ok(res)
    }

    /// The mailbox of a form link, or the page that says why not (429, 404, 410).
    async fn open_link(&self, token: &str) -> Result<PortalMailbox, Outcome> {
        let key = self.link_key(token)?;
        let found = match &key {
            None => None,
            Some(key) => match self.inner.store.portal_mailbox_by_token_hash(key).await {
                Ok(m) => m,
                Err(e) => return Err(Err(e.into())),
            },
        };
        self.check_link(found)
    }

    /// The whole page of a form link in one store query (the hot path):
    /// the mailbox, the request's session, the last form version and its
    /// backup verification; or the page that says why not.
    async fn open_view(&self, token: &str, headers: &HeaderMap) -> Result<PortalView, Outcome> {
        let key = self.link_key(token)?;
        let session = cookie(headers, self.inner.cookies.session_name())
            .filter(|id| bma_core::token::well_formed(id))
            .map(bma_core::TokenHash::of);
        let store = &self.inner.store;
        let found = match (&key, &session) {
            (None, _) => Ok(None),
            // Without a session cookie only the mailbox matters: the light query.
            (Some(key), None) => store
                .portal_mailbox_by_token_hash(key)
                .await
                .map(|m| m.map(|mailbox| PortalView { mailbox, session: None, latest: None, backup: None })),
            (Some(key), Some(session)) => store.portal_view(key, Some(session), self.now()).await,
        };
        let found = match found {
            Ok(v) => v,
            Err(e) => return Err(Err(e.into())),
        };
        match found {
            Some(v) => {
                self.check_link(Some(v.mailbox.clone()))?;
                Ok(v)
            }
            None => Err(self.unknown_link()),
        }
    }

    /// The hash of a well-formed token, counted by the per-link limiter.
    // The error is the page to answer with, returned once per request: its size does not matter.
    #[allow(clippy::result_large_err)]
    fn link_key(&self, token: &str) -> Result<Option<bma_core::TokenHash>, Outcome> {
        if !bma_core::token::well_formed(token) {
            return Ok(None);
        }
        let key = bma_core::TokenHash::of(token);
        if let Err(wait) = self.inner.link_limiter.hit(key.as_str()) {
            return Err(self.too_many(wait));
        }
        Ok(Some(key))
    }

    /// 404 for no mailbox, 410 after the campaign's end.
    // The error is the page to answer with, returned once per request: its size does not matter.
    #[allow(clippy::result_large_err)]
    fn check_link(&self, found: Option<PortalMailbox>) -> Result<PortalMailbox, Outcome> {
        let Some(m) = found else {
            return Err(self.unknown_link());
        };
        if self.now().date() > self.inner.settings.campaign.campaign.end {
            let end = date_fr(self.inner.settings.campaign.campaign.end);
            let text = format!(
                "La campagne de migration des BMA s'est terminée le {end} : ce lien n'est plus valable et le \
                 formulaire ne peut plus être complété."
            );
            let contact = self.contact_of(&m);
            return Err(self.message(
                StatusCode::GONE,
                "Ce lien a expiré",
                &[
                    text.as_str(),
                    "Pour toute question sur votre boîte mail administrative, contactez le service indiqué \
                     ci-dessous en précisant vos nom, prénom et l'adresse de la BMA.",
                ],
                contact,
            ));
        }
        Ok(m)
    }

    /// The 404 page of a link.
    fn unknown_link(&self) -> Outcome {
        self.message(
            StatusCode::NOT_FOUND,
            "Ce lien n'est pas valide",
            &[
                "Le lien que vous avez suivi ne correspond à aucune boîte mail administrative. Vérifiez qu'il \
                 est complet : copiez-le en entier depuis l'email reçu du SGNE, sans espace ni coupure.",
                "Si le problème persiste, ou si vous n'avez reçu aucun email concernant la migration, \
                 contactez l'équipe migration du SGNE en précisant vos nom, prénom et l'adresse de la BMA.",
            ],
            &self.inner.settings.campaign.contacts.during,
        )
    }

    /// The session of the request, if its cookie names a live one.
    async fn session(&self, headers: &HeaderMap) -> Result<Option<(bma_core::TokenHash, PortalSession)>, PortalError> {
        let Some(id) = cookie(headers, self.inner.cookies.session_name()) else {
            return Ok(None);
        };
        if !bma_core::token::well_formed(id) {
            return Ok(None);
        }
        let hash = bma_core::TokenHash::of(id);
        Ok(self.inner.store.session(&hash, self.now()).await?.map(|s| (hash, s)))
    }

    fn who(session: &PortalSession) -> Option<Who> {
        session.identity.as_ref().map(|i| Who {
            name: i.name.clone(),
            email: i.email.clone(),
            csrf: session.csrf.clone(),
        })
    }

    fn login_page(&self, m: &PortalMailbox, token: &str) -> Outcome {
        let page = LoginPage {
            layout: Layout { error: !self.login_available(), ..self.layout("Connexion", None, self.contact_of(m)) },
            address: m.address.clone(),
            name: m.name.clone(),
            token: token.to_owned(),
            login_available: self.login_available(),
        };
        let status = if self.login_available() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        Ok((status, Html(page.render()?)).into_response())
    }

    #[allow(clippy::too_many_arguments)]
    async fn form_page(
        &self,
        status: StatusCode,
        m: &PortalMailbox,
        token: &str,
        session: &PortalSession,
        input: &FormInput,
        errors: &FieldErrors,
        (correction, kept): (bool, Option<String>),
    ) -> Outcome {
        // A correction says where the verification of the current backup address stands.
        let mut backup_state = None;
        if correction && let Some(e) = self.inner.store.latest_enrollment(m.id).await? {
            let email = if same_person(session, &e) {
                e.form.backup_email.clone()
            } else {
                form::mask_email(&e.form.backup_email)
            };
            backup_state = Some(match self.inner.store.backup_status(m.id, &e.form.backup_email).await? {
                Some(BackupStatus { verified_at: Some(at), .. }) => {
                    format!("Adresse de secours actuelle : {email}, vérifiée le {}.", date_fr(at.date()))
                }
                _ => format!(
                    "Adresse de secours actuelle : {email}, non vérifiée : ouvrez le lien de vérification envoyé à \
                     cette adresse."
                ),
            });
        }
        let err = |k: &str| errors.get(k).cloned();
        let text = |id: &'static str,
                    label: &'static str,
                    kind: &'static str,
                    autocomplete: &'static str,
                    value: &str,
                    hint: Option<&'static str>| {
            let error = err(id);
            let mut described = Vec::new();
            if hint.is_some() {
                described.push(format!("{id}-aide"));
            }
            if error.is_some() {
                described.push(format!("{id}-erreur"));
            }
            TextField {
                id,
                label,
                kind,
                autocomplete,
                value: value.to_owned(),
                hint,
                error,
                described_by: described.join(" "),
            }
        };
        let fields = vec![
            text(field::FAMILY_NAME, "Nom", "text", "family-name", &input.family_name, None),
            text(field::GIVEN_NAME, "Prénom", "text", "given-name", &input.given_name, None),
            text(
                field::PHONE,
                "Téléphone",
                "tel",
                "tel",
                // A stored number (a correction) the way people write it; what was typed as typed.
                &crate::display::phone(&input.phone),
                Some(
                    "Un numéro où l'ETNIC peut vous joindre : belge (02 413 30 90, 0470 12 34 56) ou international (+33 1 23 45 67 89).",
                ),
            ),
            text(
                field::BACKUP_EMAIL,
                "Adresse email de secours",
                "email",
                "email",
                &input.backup_email,
                Some(
                    "Une adresse personnelle ou professionnelle extérieure à la BMA, utilisée si la BMA n'est plus disponible. Un lien de vérification y sera envoyé.",
                ),
            ),
            text(
                field::BACKUP_EMAIL_CONFIRM,
                "Adresse email de secours (confirmation)",
                "email",
                "off",
                &input.backup_email_confirm,
                Some("Retapez la même adresse."),
            ),
        ];
        let order = [
            field::FAMILY_NAME,
            field::GIVEN_NAME,
            field::PHONE,
            field::BACKUP_EMAIL,
            field::BACKUP_EMAIL_CONFIRM,
            field::ROLE,
            field::KNOWS_PASSWORD,
        ];
        let summary = order.iter().filter_map(|k| errors.get(k).map(|e| (*k, e.clone()))).collect();
        let page = FormPage {
            layout: Layout {
                error: !errors.is_empty(),
                ..self.layout("Formulaire", Portal::who(session), self.contact_of(m))
            },
            address: m.address.clone(),
            name: m.name.clone(),
            token: token.to_owned(),
            csrf: session.csrf.clone(),
            correction,
            backup_state,
            kept,
            errors: summary,
            fields,
            roles: form::ROLES
                .iter()
                .map(|(value, label)| RoleOption { value, label, selected: input.role == *value })
                .collect(),
            role_error: err(field::ROLE),
            knows_password: input.knows_password.clone(),
            password_error: err(field::KNOWS_PASSWORD),
        };
        Ok((status, Html(page.render()?)).into_response())
    }

    async fn status_page(
        &self,
        status: StatusCode,
        m: &PortalMailbox,
        token: &str,
        session: &PortalSession,
        confirmed: bool,
        notice: Option<String>,
    ) -> Outcome {
        let store = &self.inner.store;
        let latest: Option<Enrollment> = store.latest_enrollment(m.id).await?;
        let backup = match &latest {
            Some(e) => store.backup_status(m.id, &e.form.backup_email).await?,
            None => None,
        };
        self.status_page_of(status, m, token, session, (confirmed, notice), latest, backup)
    }

    #[allow(clippy::too_many_arguments)]
    fn status_page_of(
        &self,
        status: StatusCode,
        m: &PortalMailbox,
        token: &str,
        session: &PortalSession,
        (confirmed, notice): (bool, Option<String>),
        latest: Option<Enrollment>,
        backup: Option<BackupStatus>,
    ) -> Outcome {
        // Another person logged in with the same link sees who answered,
        // not their contact details.
        let other = latest.as_ref().is_some_and(|e| !same_person(session, e));
        let mask = |email: String| if other { form::mask_email(&email) } else { email };
        let backup =
            backup.map(|b| BackupView { email: mask(b.email), verified_on: b.verified_at.map(|t| date_fr(t.date())) });
        let notice = match (notice, other) {
            (None, true) => Some(
                "Ces réponses ont été envoyées par une autre personne : ses coordonnées sont masquées. Vous pouvez \
                 corriger le formulaire avec les vôtres."
                    .to_owned(),
            ),
            (n, _) => n,
        };
        let c = &self.inner.settings.campaign.campaign;
        // The day given, or the window as it can still happen: from today at
        // the earliest, by the campaign's end at the latest.
        let today = self.now().date();
        let window = m.cutover_on.map(|d| format!("le {}", date_fr(d))).or_else(|| {
            m.invited_at.and_then(|t| {
                crate::display::window(t.date(), today, c.cutover_min_weeks, c.cutover_max_weeks, c.end)
                    .map(crate::display::Window::fr)
            })
        });
        let editable = matches!(m.state, MailboxState::Enrolled | MailboxState::Presynced);
        let page = StatusPage {
            layout: self.layout("État de la migration", Portal::who(session), self.contact_of(m)),
            confirmed,
            notice,
            address: m.address.clone(),
            name: m.name.clone(),
            token: token.to_owned(),
            csrf: session.csrf.clone(),
            state_label: m.state.label_fr(),
            invited_on: m.invited_at.map(|t| date_fr(t.date())),
            submitted: latest.as_ref().map(|e| {
                let who = if e.identity.name.is_empty() { &e.identity.subject } else { &e.identity.name };
                format!("envoyées par {who} le {}", date_fr(e.submitted_at.date()))
            }),
            next: next_steps(m.state, latest.as_ref(), window.as_deref()),
            role_label: latest.as_ref().map_or("", |e| form::role_label(&e.form.role)),
            form: latest.map(|e| {
                if other {
                    bma_store::EnrollmentForm {
                        phone: form::mask_phone(&e.form.phone),
                        backup_email: form::mask_email(&e.form.backup_email),
                        ..e.form
                    }
                } else {
                    e.form
                }
            }),
            window,
            backup,
            editable,
        };
        Ok((status, Html(page.render()?)).into_response())
    }

    /// Checks the POST's CSRF token against the session; the logged-in
    /// session, or the 403 page.
    async fn check_post(
        &self,
        headers: &HeaderMap,
        pairs: &[(String, String)],
    ) -> Result<(bma_core::TokenHash, PortalSession), Outcome> {
        let session = match self.session(headers).await {
            Ok(s) => s,
            Err(e) => return Err(Err(e)),
        };
        let sent = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
        match (session, sent) {
            (Some((hash, s)), Some(sent)) if constant_time_eq(sent.as_bytes(), s.csrf.as_bytes()) => Ok((hash, s)),
            _ => Err(self.forbidden()),
        }
    }

    fn email(
        &self,
        kind: TemplateKind,
        mailbox_id: i64,
        to: &str,
        key: String,
        context: &serde_json::Value,
    ) -> Result<NewEmail, PortalError> {
        let s = &self.inner.settings;
        let rendered = self.inner.templates.render(kind, context)?;
        let message_id = format!("{}.{}.{}@{}", kind.name(), mailbox_id, &random_token()[..16], s.message_id_domain);
        let return_path = verp(&s.bounce_address, to);
        let sender = &s.campaign.sender;
        let email = bma_mail::message::build(&sender.name, &sender.address, to, &rendered, &message_id, &return_path)?;
        Ok(NewEmail {
            mailbox_id: Some(mailbox_id),
            kind: kind.name().to_owned(),
            key,
            recipient: to.to_owned(),
            envelope_from: return_path,
            message_id,
            subject: rendered.subject,
            raw: String::from_utf8_lossy(&email.raw).into_owned(),
            run_at: self.now(),
            max_attempts: 8,
        })
    }

    fn verification_request(
        &self,
        m: &PortalMailbox,
        backup_email: &str,
        manager_name: &str,
    ) -> Result<BackupVerificationRequest, PortalError> {
        let code = random_token();
        let code_hash = bma_core::TokenHash::of(&code);
        let expires_at = self.now() + Duration::days(VERIFICATION_DAYS);
        let s = &self.inner.settings;
        let context = serde_json::json!({
            "name": m.name, "address": m.address, "manager_name": manager_name,
            "verification_link": format!("{}/verification/{code}", s.base_url),
            "expires_on": date_fr(expires_at.date()),
            "contact": s.campaign.contacts.during, "sender_name": s.campaign.sender.name,
            "faq_url": s.campaign.campaign.faq_url,
            "login_domain": s.oidc.as_ref().map(|o| bma_mail::templates::url_host(&o.issuer)),
        });
        let key = format!("backup_verification:{}:{}", m.address, &code_hash.as_str()[..16]);
        let email = self.email(TemplateKind::BackupVerification, m.id, backup_email, key, &context)?;
        Ok(BackupVerificationRequest { code_hash, email, expires_at })
    }
}

/// What comes next, by state, in French.
fn next_steps(state: MailboxState, latest: Option<&Enrollment>, window: Option<&str>) -> Vec<String> {
    let when = window.map_or_else(|| "dans les semaines qui viennent".to_owned(), |w| format!("normalement {w}"));
    let mut out = match state {
        MailboxState::Invited | MailboxState::Scheduled | MailboxState::Imported => {
            vec!["Complétez le formulaire de migration : il est indispensable pour migrer votre boîte.".to_owned()]
        }
        MailboxState::InvitationBounced => vec![
            "L'email d'invitation n'a pas pu être distribué à la BMA. Contactez le service indiqué ci-dessous \
             pour compléter le formulaire."
                .to_owned(),
        ],
        MailboxState::Enrolled | MailboxState::Presynced => vec![
            "Vous n'avez plus rien à faire pour l'instant. Continuez à utiliser votre boîte actuelle comme \
             d'habitude : son contenu est copié vers la nouvelle interface en arrière-plan."
                .to_owned(),
            format!(
                "Vous recevrez sur la BMA un second et dernier email avec le lien vers la nouvelle interface, {when}. \
                 L'adresse et le mot de passe ne changent pas."
            ),
            "Vous pouvez corriger le formulaire jusqu'à ce que la migration de votre boîte soit planifiée.".to_owned(),
        ],
        MailboxState::CutoverScheduled => vec![
            "La migration de votre boîte est planifiée. Vous recevrez sur la BMA un second et dernier email avec \
             le lien vers la nouvelle interface. Le formulaire ne peut plus être modifié : pour tout changement, \
             contactez le service indiqué ci-dessous."
                .to_owned(),
        ],
        MailboxState::Migrating => vec!["La migration de votre boîte est en cours.".to_owned()],
        MailboxState::Migrated => vec![
            "Votre boîte a migré : utilisez le lien du second email pour accéder à la nouvelle interface. Les \
             redirections automatiques vers une autre boîte ne sont plus possibles."
                .to_owned(),
            "Pour un mot de passe perdu ou un souci technique, contactez le Service Desk de l'ETNIC.".to_owned(),
        ],
        MailboxState::Failed => vec![
            "Un problème est survenu pendant la migration de votre boîte. L'équipe migration s'en occupe et vous \
             contactera si nécessaire ; votre boîte actuelle reste utilisable."
                .to_owned(),
        ],
        MailboxState::Blocked => {
            vec!["La migration de votre boîte est suspendue. Contactez le service indiqué ci-dessous.".to_owned()]
        }
    };
    if latest.is_some_and(|e| !e.form.knows_password)
        && !matches!(state, MailboxState::Migrated | MailboxState::Blocked)
    {
        out.push(
            "Vous avez indiqué ne plus connaître le mot de passe de la BMA : un nouveau mot de passe vous sera \
             envoyé lors de la migration, sur la BMA et sur l'adresse de secours."
                .to_owned(),
        );
    }
    out
}

fn pairs_of(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

async fn limit_per_ip(State(portal): State<Portal>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>();
    let ip = security::client_ip(req.headers(), peer, portal.inner.settings.trust_forwarded_for);
    match portal.inner.ip_limiter.hit(&ip) {
        Ok(()) => next.run(req).await,
        Err(wait) => portal.too_many(wait).unwrap_or_else(IntoResponse::into_response),
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../static/portal.css"),
    )
        .into_response()
}

async fn home(State(p): State<Portal>) -> Outcome {
    // The FAQ: whoever has no mail 1 by the invitation deadline calls the
    // SGNE migration team; before it, Enseignement.be answers about the BMA.
    let campaign = &p.inner.settings.campaign;
    let deadline = campaign.campaign.invitation_deadline;
    let after_deadline = p.now().date() >= deadline;
    let contact = if after_deadline { &campaign.contacts.during } else { &campaign.contacts.before };
    let page = HomePage {
        layout: p.layout("Accueil", None, contact),
        no_mail_contact: contact.clone(),
        deadline: date_fr(deadline),
        after_deadline,
    };
    Ok(Html(page.render()?).into_response())
}

async fn privacy(State(p): State<Portal>) -> Outcome {
    let s = &p.inner.settings;
    let page = PrivacyPage {
        layout: p.layout("Protection des données", None, p.general_contact()),
        privacy: s.privacy.clone(),
        campaign: s.campaign.campaign.name.clone(),
        campaign_end: date_fr(s.campaign.campaign.end),
    };
    Ok(Html(page.render()?).into_response())
}

async fn accessibility(State(p): State<Portal>) -> Outcome {
    let page = AccessibilityPage {
        layout: p.layout("Accessibilité", None, p.general_contact()),
        report_to: p.general_contact().clone(),
    };
    Ok(Html(page.render()?).into_response())
}

async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")],
        include_str!("../static/favicon.svg"),
    )
        .into_response()
}

async fn not_found(State(p): State<Portal>) -> Outcome {
    p.message(
        StatusCode::NOT_FOUND,
        "Page introuvable",
        &["Cette page n'existe pas. Le formulaire s'ouvre par le lien personnel reçu par email."],
        p.general_contact(),
    )
}

/// Whether the person of the session gave this version of the form.
fn same_person(session: &PortalSession, e: &Enrollment) -> bool {
    session.identity.as_ref().is_some_and(|i| i.subject == e.identity.subject)
}

const KEPT: &str = "Votre session avait expiré : les réponses que vous aviez envoyées ont été conservées. Vérifiez-les, \
                    puis envoyez le formulaire.";

impl Portal {
    /// The answers kept in the request's session for this link, if any.
    async fn kept_answers(&self, headers: &HeaderMap, token: &str) -> Result<Option<FormInput>, PortalError> {
        let Some(id) = cookie(headers, self.inner.cookies.session_name()).filter(|i| bma_core::token::well_formed(i))
        else {
            return Ok(None);
        };
        let hash = bma_core::TokenHash::of(id);
        let draft = self.inner.store.session_draft(&hash, &bma_core::TokenHash::of(token), self.now()).await?;
        Ok(draft.and_then(|d| serde_json::from_str(&d).ok()))
    }

    /// A form posted without a valid session: the answers are kept in the
    /// session (a new one that starts a login, if the request has no
    /// logged-in session) and shown again after the login; never lost.
    async fn keep_answers(&self, token: &str, pairs: &[(String, String)], headers: &HeaderMap) -> Outcome {
        let m = match self.open_link(token).await {
            Ok(m) => m,
            Err(page) => return page,
        };
        let input = FormInput::from_pairs(pairs);
        let open = matches!(m.state, MailboxState::Invited | MailboxState::Enrolled | MailboxState::Presynced);
        if input == FormInput::default() || !open {
            return self.forbidden();
        }
        let draft = serde_json::to_string(&input).map_err(|e| PortalError::Settings(e.to_string()))?;
        let token_hash = bma_core::TokenHash::of(token);
        let back = if m.state == MailboxState::Invited {
            format!("/formulaire/{token}")
        } else {
            format!("/formulaire/{token}/modifier")
        };
        // Logged in already (a new login in another tab replaced the
        // session the form was opened with): back to the form.
        if let Some((hash, s)) = self.session(headers).await?
            && s.identity.is_some()
        {
            self.inner.store.keep_draft(&hash, &token_hash, &draft).await?;
            tracing::info!("answers kept: the form was posted with an old session");
            return Ok(Redirect::to(&back).into_response());
        }
        let Some(idp) = self.inner.idp.clone() else {
            return self.forbidden();
        };
        let start = match idp.start().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %log_safe(&e.to_string()), "login cannot start");
                return self.message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Connexion momentanément indisponible",
                    &["Le service de connexion Cerbère EDU ne répond pas. Réessayez dans quelques minutes."],
                    self.contact_of(&m),
                );
            }
        };
        let id = random_token();
        let hash = bma_core::TokenHash::of(&id);
        let now = self.now();
        let store = &self.inner.store;
        store.create_session(&hash, &random_token(), now + Duration::minutes(DRAFT_MINUTES), now).await?;
        store.set_login_pending(&hash, &start.pending).await?;
        store.keep_draft(&hash, &token_hash, &draft).await?;
        tracing::info!("answers kept: the form was posted after its session expired");
        let page = MessagePage {
            layout: self.layout("Reconnectez-vous", None, self.contact_of(&m)),
            heading: "Votre session a expiré : reconnectez-vous".to_owned(),
            paragraphs: vec![
                "Vos réponses n'ont pas encore été enregistrées, mais elles ne sont pas perdues : elles ont été \
                 conservées et vous seront présentées à nouveau après la connexion, pour que vous les vérifiiez et \
                 les envoyiez."
                    .to_owned(),
            ],
            link: Some((start.redirect_to, "Se reconnecter avec Cerbère EDU".to_owned())),
        };
        let c = self.inner.cookies;
        let mut res = Html(page.render()?).into_response();
        let h = res.headers_mut();
        h.append(header::SET_COOKIE, c.set(c.session_name(), &id, DRAFT_MINUTES * 60));
        h.append(header::SET_COOKIE, c.set(c.return_name(), token, DRAFT_MINUTES * 60));
        Ok(res)
    }
}

async fn link(State(p): State<Portal>, Path(token): Path<String>, headers: HeaderMap) -> Outcome {
    let view = match p.open_view(&token, &headers).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let m = view.mailbox;
    let Some(session) = view.session.filter(|s| s.identity.is_some()) else {
        return p.login_page(&m, &token);
    };
    if m.state == MailboxState::Invited {
        if let Some(kept) = p.kept_answers(&headers, &token).await? {
            let kept_note = Some(KEPT.to_owned());
            return p
                .form_page(StatusCode::OK, &m, &token, &session, &kept, &FieldErrors::new(), (false, kept_note))
                .await;
        }
        let prefill = session.identity.as_ref().map_or_else(FormInput::default, |i| FormInput {
            family_name: i.family_name.clone(),
            given_name: i.given_name.clone(),
            ..FormInput::default()
        });
        return p.form_page(StatusCode::OK, &m, &token, &session, &prefill, &FieldErrors::new(), (false, None)).await;
    }
    p.status_page_of(StatusCode::OK, &m, &token, &session, (false, None), view.latest, view.backup)
}

async fn edit(State(p): State<Portal>, Path(token): Path<String>, headers: HeaderMap) -> Outcome {
    let m = match p.open_link(&token).await {
        Ok(m) => m,
        Err(page) => return page,
    };
    let Some((_, session)) = p.session(&headers).await?.filter(|(_, s)| s.identity.is_some()) else {
        return p.login_page(&m, &token);
    };
    if !matches!(m.state, MailboxState::Enrolled | MailboxState::Presynced) {
        return Ok(Redirect::to(&format!("/formulaire/{token}")).into_response());
    }
    if let Some(kept) = p.kept_answers(&headers, &token).await? {
        let note = Some(KEPT.to_owned());
        return p.form_page(StatusCode::OK, &m, &token, &session, &kept, &FieldErrors::new(), (true, note)).await;
    }
    // Another person starts from their own name: the previous answers
    // (contact details of someone else) are not shown to them.
    let input = match p.inner.store.latest_enrollment(m.id).await? {
        Some(e) if same_person(&session, &e) => FormInput::from_enrollment(&e.form),
        _ => session.identity.as_ref().map_or_else(FormInput::default, |i| FormInput {
            family_name: i.family_name.clone(),
            given_name: i.given_name.clone(),
            ..FormInput::default()
        }),
    };
    p.form_page(StatusCode::OK, &m, &token, &session, &input, &FieldErrors::new(), (true, None)).await
}

async fn submit(State(p): State<Portal>, Path(token): Path<String>, headers: HeaderMap, body: Bytes) -> Outcome {
    // The CSRF token first: nothing is stored as an answer without it. A
    // form posted with a session that expired (or was replaced) is kept
    // for after the login instead of being refused.
    let pairs = pairs_of(&body);
    let (session_hash, session) = match p.check_post(&headers, &pairs).await {
        Ok(s) => s,
        Err(_) => return p.keep_answers(&token, &pairs, &headers).await,
    };
    let m = match p.open_link(&token).await {
        Ok(m) => m,
        Err(page) => return page,
    };
    let Some(identity) = session.identity.clone() else {
        return p.keep_answers(&token, &pairs, &headers).await;
    };
    let correction = m.state != MailboxState::Invited;
    if !matches!(m.state, MailboxState::Invited | MailboxState::Enrolled | MailboxState::Presynced) {
        let notice = "Le formulaire ne peut plus être modifié à ce stade de la migration.".to_owned();
        return p.status_page(StatusCode::CONFLICT, &m, &token, &session, false, Some(notice)).await;
    }
    let input = FormInput::from_pairs(&pairs);
    let rule = &p.inner.settings.campaign.addresses;
    let ctx = form::Context { bma_address: &m.address, bma_domain: &rule.domain };
    let valid = match form::validate(&input, &ctx) {
        Ok(v) => v,
        Err(errors) => {
            return p
                .form_page(StatusCode::UNPROCESSABLE_ENTITY, &m, &token, &session, &input, &errors, (correction, None))
                .await;
        }
    };
    let manager_name = format!("{} {}", valid.given_name, valid.family_name);
    let s = &p.inner.settings;
    let submitted_on = date_fr(p.now().date());
    let context = serde_json::json!({
        "name": m.name, "address": m.address,
        "submitted_on": submitted_on, "manager_name": manager_name,
        "password_unknown": !valid.knows_password,
        "form_link": format!("{}/formulaire/{token}", s.base_url),
        "contact": s.campaign.contacts.during, "sender_name": s.campaign.sender.name,
        "faq_url": s.campaign.campaign.faq_url,
        "login_domain": s.oidc.as_ref().map(|o| bma_mail::templates::url_host(&o.issuer)),
    });
    let key = format!("confirmation:{}:{}", m.address, &random_token()[..16]);
    let confirmation = p.email(TemplateKind::Confirmation, m.id, &m.address, key, &context)?;
    let verification = p.verification_request(&m, &valid.backup_email, &manager_name)?;
    // A new backup address: the previous one and the BMA are told.
    let store = &p.inner.store;
    let change = match store.latest_enrollment(m.id).await? {
        Some(e) if e.form.backup_email != valid.backup_email => {
            let context = serde_json::json!({
                "name": m.name, "address": m.address, "submitted_on": submitted_on, "manager_name": manager_name,
                "previous_backup": e.form.backup_email, "new_backup": form::mask_email(&valid.backup_email),
                "contact": s.campaign.contacts.during, "sender_name": s.campaign.sender.name,
            });
            let mark = &random_token()[..16];
            let mut notices = Vec::new();
            for to in [e.form.backup_email.as_str(), m.address.as_str()] {
                let key = format!("backup_changed:{}:{to}:{mark}", m.address);
                notices.push(p.email(TemplateKind::BackupChanged, m.id, to, key, &context)?);
            }
            Some(BackupChange { previous: e.form.backup_email, notices })
        }
        Some(e) => Some(BackupChange { previous: e.form.backup_email, notices: Vec::new() }),
        None => None,
    };
    let submission = Submission {
        form: &valid,
        identity: &identity,
        confirmation: &confirmation,
        verification: Some(&verification),
        change: change.as_ref(),
    };
    let submit = || store.submit_enrollment_notifying(m.id, &submission, p.now());
    let mut result = submit().await;
    if let (Err(StoreError::Conflict(_)), false) = (&result, correction) {
        // Another first submission of this mailbox committed first (a
        // double click): this one is stored as the next version, as a correction.
        result = submit().await;
    }
    match result {
        Ok(outcome) => {
            tracing::info!(version = outcome.version, first = outcome.first, "form received");
            p.inner.store.clear_draft(&session_hash).await?;
            Ok(Redirect::to(&format!("/formulaire/{token}/confirmation")).into_response())
        }
        Err(StoreError::FormClosed { .. } | StoreError::Conflict(_) | StoreError::Illegal { .. }) => {
            let notice = "Le formulaire n'a pas pu être enregistré : l'état de la migration a changé entre-temps. \
                          Vérifiez ci-dessous où elle en est."
                .to_owned();
            let m = p.inner.store.portal_mailbox_by_token(&token).await?.unwrap_or(m);
            p.status_page(StatusCode::CONFLICT, &m, &token, &session, false, Some(notice)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn confirmation(State(p): State<Portal>, Path(token): Path<String>, headers: HeaderMap) -> Outcome {
    let m = match p.open_link(&token).await {
        Ok(m) => m,
        Err(page) => return page,
    };
    let Some((_, session)) = p.session(&headers).await?.filter(|(_, s)| s.identity.is_some()) else {
        return p.login_page(&m, &token);
    };
    if p.inner.store.latest_enrollment(m.id).await?.is_none() {
        return Ok(Redirect::to(&format!("/formulaire/{token}")).into_response());
    }
    p.status_page(StatusCode::OK, &m, &token, &session, true, None).await
}

async fn resend_verification(
    State(p): State<Portal>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Outcome {
    let pairs = pairs_of(&body);
    let (_, session) = match p.check_post(&headers, &pairs).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let m = match p.open_link(&token).await {
        Ok(m) => m,
        Err(page) => return page,
    };
    let Some(identity) = session.identity.clone() else {
        return p.forbidden();
    };
    let (status, notice) = match p.inner.store.latest_enrollment(m.id).await? {
        Some(e) => {
            let request = p.verification_request(&m, &e.form.backup_email, &identity.name)?;
            let actor = bma_core::Actor::Manager(identity.subject.clone());
            let shown = if same_person(&session, &e) {
                e.form.backup_email.clone()
            } else {
                form::mask_email(&e.form.backup_email)
            };
            match p.inner.store.renew_backup_verification(m.id, &e.form.backup_email, &request, &actor, p.now()).await?
            {
                RenewOutcome::Sent => {
                    (StatusCode::OK, format!("Un nouveau lien de vérification a été envoyé à {shown}."))
                }
                RenewOutcome::NothingPending => (StatusCode::OK, "L'adresse de secours est déjà vérifiée.".to_owned()),
                RenewOutcome::TooSoon { retry_at } => {
                    let minutes = ((retry_at - p.now()).whole_seconds() + 59) / 60;
                    let when = if minutes < 120 {
                        format!("dans {minutes} minute{}", if minutes > 1 { "s" } else { "" })
                    } else {
                        format!("dans {} heures", (minutes + 59) / 60)
                    };
                    let text = format!(
                        "Un lien de vérification a été envoyé récemment à {shown} : vérifiez sa boîte de réception \
                         et ses courriers indésirables. Vous pourrez demander un nouveau lien {when}."
                    );
                    (StatusCode::TOO_MANY_REQUESTS, text)
                }
            }
        }
        None => (StatusCode::OK, "Complétez d'abord le formulaire.".to_owned()),
    };
    p.status_page(status, &m, &token, &session, false, Some(notice)).await
}

async fn login_start(State(p): State<Portal>, Path(token): Path<String>) -> Outcome {
    let m = match p.open_link(&token).await {
        Ok(m) => m,
        Err(page) => return page,
    };
    let Some(idp) = p.inner.idp.clone() else {
        return p.login_page(&m, &token);
    };
    let start = match idp.start().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %log_safe(&e.to_string()), "login cannot start");
            return p.message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Connexion momentanément indisponible",
                &["Le service de connexion Cerbère EDU ne répond pas. Réessayez dans quelques minutes."],
                p.contact_of(&m),
            );
        }
    };
    let id = random_token();
    let hash = bma_core::TokenHash::of(&id);
    let now = p.now();
    p.inner.store.create_session(&hash, &random_token(), now + Duration::minutes(LOGIN_MINUTES), now).await?;
    p.inner.store.set_login_pending(&hash, &start.pending).await?;
    let c = p.inner.cookies;
    let mut res = Redirect::to(&start.redirect_to).into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, c.set(c.session_name(), &id, LOGIN_MINUTES * 60));
    h.append(header::SET_COOKIE, c.set(c.return_name(), &token, LOGIN_MINUTES * 60));
    Ok(res)
}

async fn login_callback(
    State(p): State<Portal>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Outcome {
    let query = pairs_of(query.unwrap_or_default().as_bytes());
    let failed = |p: &Portal| {
        p.message(
            StatusCode::BAD_REQUEST,
            "La connexion n'a pas abouti",
            &[
                "La connexion avec Cerbère EDU n'a pas pu être vérifiée, ou elle a pris trop de temps.",
                "Rouvrez le lien reçu par email et reconnectez-vous.",
            ],
            p.general_contact(),
        )
    };
    let Some((hash, PortalSession { login_pending: Some(pending), .. })) = p.session(&headers).await? else {
        return failed(&p);
    };
    let Some(idp) = p.inner.idp.clone() else {
        return failed(&p);
    };
    // The provider checks the state before anything else in the answer: a
    // forged callback (another state) neither logs in nor spends the login
    // in progress, which is taken only once the answer is its own.
    let Login { identity, id_token } = match idp.finish(&pending, &query).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %log_safe(&e.to_string()), "login failed");
            return failed(&p);
        }
    };
    if p.inner.store.take_login_pending(&hash).await?.as_deref() != Some(pending.as_str()) {
        // Another callback of this login won the race.
        return failed(&p);
    }
    let new_id = random_token();
    let new_hash = bma_core::TokenHash::of(&new_id);
    let now = p.now();
    let minutes = p.inner.settings.session_minutes;
    let store = &p.inner.store;
    store.login_session(&hash, &new_hash, &random_token(), &identity, now + Duration::minutes(minutes), now).await?;
    if let Some(t) = id_token {
        store.set_session_id_token(&new_hash, &t).await?;
    }
    tracing::info!("login succeeded");
    let c = p.inner.cookies;
    let back = cookie(&headers, c.return_name())
        .filter(|t| bma_core::token::well_formed(t))
        .map_or_else(|| "/".to_owned(), |t| format!("/formulaire/{t}"));
    let mut res = Redirect::to(&back).into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, c.set(c.session_name(), &new_id, minutes * 60));
    h.append(header::SET_COOKIE, c.clear(c.return_name()));
    Ok(res)
}

async fn logout(State(p): State<Portal>, headers: HeaderMap, body: Bytes) -> Outcome {
    let pairs = pairs_of(&body);
    let (hash, _) = match p.check_post(&headers, &pairs).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let id_token = p.inner.store.session_id_token(&hash).await?;
    p.inner.store.delete_session(&hash).await?;
    let c = p.inner.cookies;
    // The Cerbère EDU session ends too (RP-initiated logout): on a shared
    // PC the next person must log in with their own identity.
    let end = match (p.inner.idp.clone(), id_token) {
        (Some(idp), Some(t)) => idp.logout_url(&t).await,
        _ => None,
    };
    let mut res = match end {
        Some(url) => Redirect::to(&url).into_response(),
        None => p.message(
            StatusCode::OK,
            "Vous êtes déconnecté·e",
            &[
                "Votre session sur ce portail est fermée.",
                "Sur un ordinateur partagé, fermez aussi le navigateur pour terminer votre session Cerbère EDU.",
            ],
            p.general_contact(),
        )?,
    };
    res.headers_mut().append(header::SET_COOKIE, c.clear(c.session_name()));
    Ok(res)
}

/// The page of a verification link: a button (a GET verifies nothing, so
/// mail scanners that fetch links cannot verify an address).
async fn verify_page(State(p): State<Portal>, Path(code): Path<String>) -> Outcome {
    if !bma_core::token::well_formed(&code) {
        return p.message(
            StatusCode::NOT_FOUND,
            "Lien de vérification invalide",
            &["Ce lien de vérification n'est pas valide. Copiez-le en entier depuis l'email reçu."],
            p.general_contact(),
        );
    }
    let page = VerifyPage { layout: p.layout("Confirmer l'adresse de secours", None, p.general_contact()), code };
    Ok(Html(page.render()?).into_response())
}

/// The button of the verification page. No session here (the address is
/// read anywhere, often on another device): the code is the credential.
async fn verify(State(p): State<Portal>, Path(code): Path<String>) -> Outcome {
    let contact = p.general_contact();
    if !bma_core::token::well_formed(&code) {
        return p.message(
            StatusCode::NOT_FOUND,
            "Lien de vérification invalide",
            &["Ce lien de vérification n'est pas valide. Copiez-le en entier depuis l'email reçu."],
            contact,
        );
    }
    let hash = bma_core::TokenHash::of(&code);
    if let Err(wait) = p.inner.link_limiter.hit(hash.as_str()) {
        return p.too_many(wait);
    }
    match p.inner.store.verify_backup(&hash, p.now()).await? {
        VerifyOutcome::Verified { email, .. } => {
            let text = format!("L'adresse {email} est confirmée comme adresse de secours de la BMA. Merci !");
            p.message(StatusCode::OK, "Adresse de secours vérifiée", &[text.as_str()], contact)
        }
        VerifyOutcome::Expired => p.message(
            StatusCode::GONE,
            "Ce lien de vérification a expiré",
            &["Rouvrez le lien du formulaire reçu sur la BMA et demandez un nouveau lien de vérification."],
            contact,
        ),
        VerifyOutcome::Unknown => p.message(
            StatusCode::NOT_FOUND,
            "Lien de vérification invalide",
            &[
                "Ce lien de vérification n'est pas (ou plus) valable : un lien plus récent a peut-être été envoyé.",
                "Rouvrez le lien du formulaire reçu sur la BMA pour voir où en est la vérification.",
            ],
            contact,
        ),
    }
}
