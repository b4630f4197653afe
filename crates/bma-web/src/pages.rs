//! The layout every page shares and the pages of no particular audience
//! (messages, home, privacy notice, accessibility statement): French,
//! compiled askama templates (HTML-escaped by default). Each audience's own
//! pages live in its module (`enrolment::pages`).
//!
//! Text that comes from code goes through the `fr` filter
//! ([`crate::display::fr`]): a no-break space before `?`, `:`, `;` and `!`.

use askama::Template;
use bma_core::contact::Contact;

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

/// The filters of the templates (every audience's pages use them).
pub(crate) mod filters {
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
