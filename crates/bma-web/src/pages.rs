//! The French pages, compiled askama templates (HTML-escaped by default).
//!
//! Text that comes from code goes through the `fr` filter
//! ([`crate::display::fr`]): a no-break space before `?`, `:`, `;` and `!`.

use askama::Template;
use bma_core::contact::Contact;
use bma_store::EnrollmentForm;

/// Who is logged in, for the header (with the logout form's CSRF token).
#[derive(Debug, Clone)]
pub struct Who {
    /// Full name.
    pub name: String,
    /// Email.
    pub email: String,
    /// CSRF token of the session.
    pub csrf: String,
}

/// What every page has.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<title>`.
    pub title: String,
    /// Who is logged in.
    pub who: Option<Who>,
    /// The contact in the footer.
    pub contact: Contact,
    /// An error page, or a form returned with errors: the title says so first.
    pub error: bool,
}

/// The filters of the templates.
mod filters {
    /// French typography: see [`crate::display::fr`].
    pub fn fr<T: std::fmt::Display>(text: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(crate::display::fr(&text.to_string()))
    }

    /// A phone stored in E.164, the Belgian way: see [`crate::display::phone`].
    pub fn phone<T: std::fmt::Display>(e164: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(crate::display::phone(&e164.to_string()))
    }
}

/// A page with a heading and a few paragraphs (errors, results).
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    /// Layout.
    pub layout: Layout,
    /// `<h1>`.
    pub heading: String,
    /// Paragraphs.
    pub paragraphs: Vec<String>,
    /// An optional link (href, label).
    pub link: Option<(String, String)>,
}

/// The portal's home page.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    /// Layout.
    pub layout: Layout,
    /// Whom to write to when no mail 1 came: before the invitation deadline
    /// Enseignement.be, from it on the SGNE migration team (the FAQ).
    pub no_mail_contact: Contact,
    /// The invitation deadline, in French.
    pub deadline: String,
    /// Whether the deadline has come.
    pub after_deadline: bool,
}

/// The privacy notice (`/confidentialite`).
#[derive(Template)]
#[template(path = "privacy.html")]
pub struct PrivacyPage {
    /// Layout.
    pub layout: Layout,
    /// The organisation's part.
    pub privacy: crate::settings::PrivacySettings,
    /// The campaign's name.
    pub campaign: String,
    /// The campaign's last day, in French.
    pub campaign_end: String,
}

/// The accessibility statement (`/accessibilite`).
#[derive(Template)]
#[template(path = "accessibility.html")]
pub struct AccessibilityPage {
    /// Layout.
    pub layout: Layout,
    /// Where to report a problem.
    pub report_to: Contact,
}

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
