//! The pages of the enrolment: the link before login, the form, the
//! status page and the verification button; French, compiled askama
//! templates (HTML-escaped by default) on the shared [`Layout`]; and
//! `Visit`, which builds them for one person on one form link.
//!
//! Rules: another person logged in with the same link sees who answered,
//! not their contact details (masked: `•••• 90`, `m•••@e•••.be`).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use bma_core::form::{self, FieldErrors, FormInput, field};
use bma_core::lifecycle::State as MailboxState;
use bma_core::settings::date_fr;
use bma_store::{BackupStatus, Enrollment, EnrollmentForm, PortalMailbox, PortalSession};

use super::same_person;
use crate::Portal;
use crate::error::WebError;
use crate::pages::{Layout, Who, filters};

/// The form link before login.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Layout.
    pub layout: Layout,
    /// BMA address.
    pub address: String,
    /// Establishment.
    pub name: String,
    /// The link's token (for the login link).
    pub token: String,
    /// Whether an identity provider is configured.
    pub login_available: bool,
}

/// One text input of the form.
#[derive(Debug, Clone)]
pub struct TextField {
    /// `id` and `name`.
    pub id: &'static str,
    /// Label.
    pub label: &'static str,
    /// `type`.
    pub kind: &'static str,
    /// `autocomplete`.
    pub autocomplete: &'static str,
    /// Value typed or prefilled.
    pub value: String,
    /// Help text.
    pub hint: Option<&'static str>,
    /// Error.
    pub error: Option<String>,
    /// `aria-describedby` (hint and error ids).
    pub described_by: String,
}

/// An option of the role list.
#[derive(Debug, Clone)]
pub struct RoleOption {
    /// Value.
    pub value: &'static str,
    /// Label.
    pub label: &'static str,
    /// Selected.
    pub selected: bool,
}

/// The form.
#[derive(Template)]
#[template(path = "form.html")]
pub struct FormPage {
    /// Layout.
    pub layout: Layout,
    /// BMA address.
    pub address: String,
    /// Establishment.
    pub name: String,
    /// The link's token (form action).
    pub token: String,
    /// CSRF token.
    pub csrf: String,
    /// A correction of a form already sent.
    pub correction: bool,
    /// When correcting: where the verification of the current backup address stands.
    pub backup_state: Option<String>,
    /// Answers kept while the person logged in again, shown for checking.
    pub kept: Option<String>,
    /// Errors in field order: (field id, message), for the summary.
    pub errors: Vec<(&'static str, String)>,
    /// Text inputs.
    pub fields: Vec<TextField>,
    /// Role options.
    pub roles: Vec<RoleOption>,
    /// Role error.
    pub role_error: Option<String>,
    /// `oui`, `non` or empty.
    pub knows_password: String,
    /// Error of that question.
    pub password_error: Option<String>,
}

/// The backup address's verification, for the status page.
#[derive(Debug, Clone)]
pub struct BackupView {
    /// The address.
    pub email: String,
    /// When verified (French date).
    pub verified_on: Option<String>,
}

/// The status page (and the confirmation page).
#[derive(Template)]
#[template(path = "status.html")]
pub struct StatusPage {
    /// Layout.
    pub layout: Layout,
    /// Right after a submission.
    pub confirmed: bool,
    /// A remark at the top.
    pub notice: Option<String>,
    /// BMA address.
    pub address: String,
    /// Establishment.
    pub name: String,
    /// The link's token.
    pub token: String,
    /// CSRF token.
    pub csrf: String,
    /// State, in French.
    pub state_label: &'static str,
    /// When mail 1 was sent.
    pub invited_on: Option<String>,
    /// When the last version of the form was received, by whom.
    pub submitted: Option<String>,
    /// The cutover window.
    pub window: Option<String>,
    /// What happens next.
    pub next: Vec<String>,
    /// The last version of the form.
    pub form: Option<EnrollmentForm>,
    /// The role's label.
    pub role_label: &'static str,
    /// The backup address's verification.
    pub backup: Option<BackupView>,
    /// Whether the form can still be corrected.
    pub editable: bool,
    /// Migrated: the page links the guides to set a mail client up.
    pub migrated: bool,
    /// Where the box forwards outside today, masked (until the cutover).
    pub forwarding: Option<bma_store::Announced>,
}

/// What the status page shows besides the mailbox: the last version of
/// the form, its backup address's verification, the forwarding found.
#[derive(Debug, Default)]
pub struct StatusRead {
    /// The last version of the form.
    pub latest: Option<Enrollment>,
    /// The verification of its backup address.
    pub backup: Option<BackupStatus>,
    /// What the box's forwarding audit found that the manager is told.
    pub forwarding: bma_store::Announced,
}

/// The page of a backup verification link: a button, so that scanners
/// that fetch links do not verify the address.
#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    /// Layout.
    pub layout: Layout,
    /// The code of the link (the form's action).
    pub code: String,
}

/// The link of a new password: a button first (mail scanners fetch links
/// and must not use the only opening), then the password, shown once.
#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    /// Layout.
    pub layout: Layout,
    /// The token of the link (the form's action).
    pub token: String,
    /// The password, on the page the button opens.
    pub shown: Option<String>,
}

/// One person on one form link: what every page of the link is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Visit<'a> {
    /// The portal.
    pub portal: &'a Portal,
    /// The link's mailbox.
    pub mailbox: &'a PortalMailbox,
    /// The link's token.
    pub token: &'a str,
}

/// How the form page is shown.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormMode {
    /// A correction of a version already sent.
    pub correction: bool,
    /// The note shown over answers kept from an expired session.
    pub kept: Option<String>,
}

/// What the status page says besides the state.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusNote {
    /// Right after a submission.
    pub confirmed: bool,
    /// A notice at the top.
    pub notice: Option<String>,
}

fn layout(title: &str, who: Option<Who>, contact: &bma_core::contact::Contact) -> Layout {
    Layout { title: title.to_owned(), who, contact: contact.clone(), error: false }
}

fn who(session: &PortalSession) -> Option<Who> {
    session.identity.as_ref().map(|i| Who { name: i.name.clone(), email: i.email.clone(), csrf: session.csrf.clone() })
}

impl Visit<'_> {
    /// The page of the link before login (503 without an identity provider).
    pub fn login_page(&self) -> Result<Response, WebError> {
        let p = self.portal;
        let m = self.mailbox;
        let page = LoginPage {
            layout: Layout { error: !p.login_available(), ..layout("Connexion", None, p.contact_of(m)) },
            address: m.address.clone(),
            name: m.name.clone(),
            token: self.token.to_owned(),
            login_available: p.login_available(),
        };
        let status = if p.login_available() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        Ok((status, Html(page.render()?)).into_response())
    }

    /// The form, with `input`'s values and `errors` next to their fields.
    pub async fn form_page(
        &self,
        status: StatusCode,
        session: &PortalSession,
        input: &FormInput,
        errors: &FieldErrors,
        mode: FormMode,
    ) -> Result<Response, WebError> {
        let (p, m) = (self.portal, self.mailbox);
        let store = p.store();
        // A correction says where the verification of the current backup address stands.
        let mut backup_state = None;
        if mode.correction
            && let Some(e) = store.latest_enrollment(m.id).await?
        {
            let email = if same_person(session, &e) {
                e.form.backup_email.clone()
            } else {
                form::mask_email(&e.form.backup_email)
            };
            backup_state = Some(match store.backup_status(m.id, &e.form.backup_email).await? {
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
            layout: Layout { error: !errors.is_empty(), ..layout("Formulaire", who(session), p.contact_of(m)) },
            address: m.address.clone(),
            name: m.name.clone(),
            token: self.token.to_owned(),
            csrf: session.csrf.clone(),
            correction: mode.correction,
            backup_state,
            kept: mode.kept,
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

    /// The status page, reading the last version and its verification.
    pub async fn status_page(
        &self,
        status: StatusCode,
        session: &PortalSession,
        note: StatusNote,
    ) -> Result<Response, WebError> {
        let store = self.portal.store();
        let latest: Option<Enrollment> = store.latest_enrollment(self.mailbox.id).await?;
        let backup = match &latest {
            Some(e) => store.backup_status(self.mailbox.id, &e.form.backup_email).await?,
            None => None,
        };
        let forwarding = store.forwarding_audit_of(self.mailbox.id).await?.map(|a| a.announced()).unwrap_or_default();
        self.status_page_of(status, session, note, StatusRead { latest, backup, forwarding })
    }

    /// The status page of what was read.
    pub fn status_page_of(
        &self,
        status: StatusCode,
        session: &PortalSession,
        note: StatusNote,
        read: StatusRead,
    ) -> Result<Response, WebError> {
        let StatusRead { latest, backup, forwarding } = read;
        let (p, m) = (self.portal, self.mailbox);
        // Another person logged in with the same link sees who answered,
        // not their contact details.
        let other = latest.as_ref().is_some_and(|e| !same_person(session, e));
        let mask = |email: String| if other { form::mask_email(&email) } else { email };
        let backup =
            backup.map(|b| BackupView { email: mask(b.email), verified_on: b.verified_at.map(|t| date_fr(t.date())) });
        let notice = match (note.notice, other) {
            (None, true) => Some(
                "Ces réponses ont été envoyées par une autre personne : ses coordonnées sont masquées. Vous pouvez \
                 corriger le formulaire avec les vôtres."
                    .to_owned(),
            ),
            (n, _) => n,
        };
        let c = &p.settings().campaign.campaign;
        // The day given, or the window as it can still happen: from today at
        // the earliest, by the campaign's end at the latest.
        let today = p.now().date();
        let window = m.cutover_on.map(|d| format!("le {}", date_fr(d))).or_else(|| {
            m.invited_at.and_then(|t| {
                crate::display::window(t.date(), today, c.cutover_min_weeks, c.cutover_max_weeks, c.end)
                    .map(crate::display::Window::fr)
            })
        });
        let editable = matches!(m.state, MailboxState::Enrolled | MailboxState::Presynced);
        let page = StatusPage {
            layout: layout("État de la migration", who(session), p.contact_of(m)),
            confirmed: note.confirmed,
            notice,
            address: m.address.clone(),
            name: m.name.clone(),
            token: self.token.to_owned(),
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
                    EnrollmentForm {
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
            migrated: m.state == MailboxState::Migrated,
            // Said until the cutover (mail 2 then says what was taken out).
            forwarding: (m.state != MailboxState::Migrated).then_some(forwarding).filter(|f| !f.is_empty()),
        };
        Ok((status, Html(page.render()?)).into_response())
    }
}

/// What comes next, by state, in French.
pub(crate) fn next_steps(state: MailboxState, latest: Option<&Enrollment>, window: Option<&str>) -> Vec<String> {
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
