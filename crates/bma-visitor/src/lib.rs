//! `bma-visitor`: a manager's way through the enrolment portal over HTTP,
//! as a person goes, for the tests and the demo (`cargo xtask demo`).
//!
//! The portal is tested from where its users get to it: a link read from a
//! mailbox, followed; a login at the OpenID Connect provider (Cerbère EDU,
//! the lab's `oidc-provider`); a form filled with the CSRF token of the
//! page it was served on; the backup address confirmed from the link that
//! reached it. Doing that takes a client that keeps cookies and follows
//! redirects by hand, so that every hop is seen, and a few readings of
//! pages and emails. They are written once here so that the integration
//! tests and the demo walk the same way, and the demo cannot look a link
//! up in the database any more than a test can.
//!
//! Rules: nothing here knows the store or the engine, only HTTP, HTML and
//! the raw text of an email; a reading that finds nothing says so
//! (`None`), never guesses.

mod reading;

use reqwest::StatusCode;
use reqwest::header::LOCATION;

pub use reading::{csrf_of, link_in, password_on};

/// What went wrong on the way.
#[derive(Debug, thiserror::Error)]
pub enum VisitError {
    /// The HTTP client could not be built, or a request failed.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A URL or a `Location` that is not one.
    #[error("not a URL: {0}")]
    Url(String),
    /// A page without what a person would look for on it.
    #[error("{0}")]
    Page(String),
    /// More redirects than a person would follow.
    #[error("more than {0} redirects from {1}")]
    Redirects(usize, String),
}

/// A page as it was reached: its status, its URL, its text.
#[derive(Debug, Clone)]
pub struct Page {
    /// The last response's status.
    pub status: StatusCode,
    /// The URL it was served at.
    pub url: String,
    /// Its body.
    pub body: String,
}

/// Someone with a browser's memory: cookies kept, redirects followed one
/// by one.
#[derive(Debug, Clone)]
pub struct Visitor {
    client: reqwest::Client,
}

/// What a manager answers on the form.
#[derive(Debug, Clone)]
pub struct Answers {
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// Phone, as typed.
    pub phone: String,
    /// Role (`direction`, `secretariat`, …).
    pub role: String,
    /// The backup address, typed twice.
    pub backup_email: String,
    /// Whether the manager knows the BMA's password (the FAQ's question).
    pub knows_password: bool,
}

impl Answers {
    /// The form's fields with `csrf`, named as the portal names them.
    pub fn fields(&self, csrf: &str) -> Vec<(&'static str, String)> {
        vec![
            ("csrf", csrf.to_owned()),
            ("nom", self.family_name.clone()),
            ("prenom", self.given_name.clone()),
            ("telephone", self.phone.clone()),
            ("role", self.role.clone()),
            ("email_secours", self.backup_email.clone()),
            ("email_secours_confirmation", self.backup_email.to_lowercase()),
            ("mot_de_passe_connu", if self.knows_password { "oui" } else { "non" }.to_owned()),
        ]
    }
}

/// Redirects a person follows at most.
const MAX_HOPS: usize = 15;

impl Visitor {
    /// A new visitor (no cookie yet).
    pub fn new() -> Result<Visitor, VisitError> {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()?;
        Ok(Visitor { client })
    }

    /// A visitor on `client` (its cookies shared with it): a client that
    /// must keep cookies and follow no redirect.
    pub fn with_client(client: reqwest::Client) -> Visitor {
        Visitor { client }
    }

    /// Its HTTP client (cookies included), for requests of one's own.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Follows redirects from `start`, logging in at the provider as
    /// `account` with `password` when its login page shows up
    /// (`/interaction/…`); the page it ends on.
    pub async fn follow(&self, start: &str, account: &str, password: &str) -> Result<Page, VisitError> {
        let mut url = parse(start)?;
        let mut res = self.client.get(url.clone()).send().await?;
        for _ in 0..MAX_HOPS {
            if res.status().is_redirection() {
                let location = res
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| VisitError::Page(format!("a redirect without Location at {url}")))?
                    .to_owned();
                url = url.join(&location).map_err(|_| VisitError::Url(location))?;
                res = self.client.get(url.clone()).send().await?;
                continue;
            }
            if res.status() == StatusCode::OK && url.path().starts_with("/interaction/") {
                let login = url.join(&format!("{}/login", url.path())).map_err(|e| VisitError::Url(e.to_string()))?;
                res =
                    self.client.post(login.clone()).form(&[("login", account), ("password", password)]).send().await?;
                url = login;
                continue;
            }
            let status = res.status();
            return Ok(Page { status, url: url.to_string(), body: res.text().await? });
        }
        Err(VisitError::Redirects(MAX_HOPS, start.to_owned()))
    }

    /// GETs `url` as it is (no redirect followed).
    pub async fn get(&self, url: &str) -> Result<Page, VisitError> {
        let res = self.client.get(parse(url)?).send().await?;
        let status = res.status();
        Ok(Page { status, url: url.to_owned(), body: res.text().await? })
    }

    /// POSTs `fields` to `url`, then follows where it redirects.
    pub async fn post(&self, url: &str, fields: &[(&str, String)]) -> Result<Page, VisitError> {
        let target = parse(url)?;
        let res = self.client.post(target.clone()).form(fields).send().await?;
        if res.status().is_redirection() {
            let location = res.headers().get(LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("").to_owned();
            let next = target.join(&location).map_err(|_| VisitError::Url(location))?;
            let res = self.client.get(next.clone()).send().await?;
            let status = res.status();
            return Ok(Page { status, url: next.to_string(), body: res.text().await? });
        }
        let status = res.status();
        Ok(Page { status, url: url.to_owned(), body: res.text().await? })
    }

    /// The whole form, as a manager fills it from the link of mail 1: the
    /// link followed to the login at the provider (as `account`), the form
    /// posted with its page's CSRF token; the page that answers.
    pub async fn enrol(
        &self,
        link: &str,
        account: &str,
        password: &str,
        answers: &Answers,
    ) -> Result<Page, VisitError> {
        let connexion = format!("{}/connexion", link.trim_end_matches('/'));
        let form = self.follow(&connexion, account, password).await?;
        let csrf = csrf_of(&form.body).ok_or_else(|| {
            VisitError::Page(format!("no form at {} ({}): {}", form.url, form.status, excerpt(&form.body)))
        })?;
        let answered = self.post(&form.url, &answers.fields(&csrf)).await?;
        if !answered.status.is_success() {
            return Err(VisitError::Page(format!(
                "the form was refused ({}): {}",
                answered.status,
                excerpt(&answered.body)
            )));
        }
        Ok(answered)
    }

    /// Confirms a backup address from the link that reached it: the page
    /// opened, its button pressed; the page that answers.
    pub async fn confirm(&self, link: &str) -> Result<Page, VisitError> {
        let page = self.get(link).await?;
        if !page.status.is_success() {
            return Err(VisitError::Page(format!("{link}: {} {}", page.status, excerpt(&page.body))));
        }
        let confirmed = self.post(link, &[]).await?;
        if !confirmed.status.is_success() {
            return Err(VisitError::Page(format!("{link}: {} {}", confirmed.status, excerpt(&confirmed.body))));
        }
        Ok(confirmed)
    }
}

impl Visitor {
    /// Opens a new-password link as its manager does: the page (a button,
    /// so that a mail scanner fetching links shows nothing), the button
    /// pressed; the password the page shows, once.
    pub async fn reveal_password(&self, link: &str) -> Result<String, VisitError> {
        let page = self.confirm(link).await?;
        password_on(&page.body)
            .ok_or_else(|| VisitError::Page(format!("{link}: no password on the page: {}", excerpt(&page.body))))
    }
}

fn parse(url: &str) -> Result<url::Url, VisitError> {
    url::Url::parse(url).map_err(|_| VisitError::Url(url.to_owned()))
}

/// The start of a page, for an error.
fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}
