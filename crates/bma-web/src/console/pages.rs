//! The console's pages: its layout (who is logged in, with which role, the
//! logout button, the navigation) and the templates of each page, French,
//! compiled askama templates under `templates/console/`.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::auth::Staff;
use crate::Portal;

/// Who is logged in, for the header.
#[derive(Debug, Clone)]
pub(crate) struct StaffHeader {
    /// Full name.
    pub name: String,
    /// The role, in French.
    pub role: &'static str,
    /// The session's CSRF token (the logout form).
    pub csrf: String,
    /// An administrator (the personal-data page is in the navigation).
    pub admin: bool,
}

/// What every console page has.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleLayout {
    /// `<title>`.
    pub title: String,
    /// Who is logged in.
    pub staff: Option<StaffHeader>,
    /// An error page: the title says so first.
    pub error: bool,
}

impl ConsoleLayout {
    /// The layout of a page titled `title` for `staff`.
    pub fn of(title: &str, staff: Option<&Staff>) -> ConsoleLayout {
        ConsoleLayout {
            title: title.to_owned(),
            staff: staff.map(|s| StaffHeader {
                name: if s.who.name.is_empty() { s.who.subject.clone() } else { s.who.name.clone() },
                role: s.who.role.label_fr(),
                csrf: s.csrf.clone(),
                admin: bma_core::staff::allows(s.who.role, bma_core::staff::StaffAction::ErasePersonalData),
            }),
            error: false,
        }
    }
}

/// A page of a heading and a few paragraphs.
#[derive(Template)]
#[template(path = "console/message.html")]
pub(crate) struct ConsoleMessage {
    layout: ConsoleLayout,
    heading: String,
    paragraphs: Vec<String>,
}

impl ConsoleMessage {
    /// The page, answered with `status`.
    pub fn page(
        _p: &Portal,
        staff: Option<&Staff>,
        status: StatusCode,
        heading: &str,
        paragraphs: Vec<String>,
    ) -> Response {
        let mut layout = ConsoleLayout::of(heading, staff);
        layout.error = status.is_client_error() || status.is_server_error();
        let page = ConsoleMessage { layout, heading: heading.to_owned(), paragraphs };
        render(status, &page)
    }
}

/// The login page.
#[derive(Template)]
#[template(path = "console/login.html")]
pub(crate) struct LoginPage {
    layout: ConsoleLayout,
}

/// The login page, answered with `status`.
pub(crate) fn login_page(_p: &Portal, status: StatusCode) -> Response {
    render(status, &LoginPage { layout: ConsoleLayout::of("Connexion", None) })
}

/// A rendered page with `status`, or the 500 page.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => crate::error::WebError::from(e).into_response(),
    }
}
