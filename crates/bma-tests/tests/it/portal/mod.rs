//! The enrolment portal over HTTP (issue 5): the router of `bma serve`
//! on a real socket, logins at the lab's real OpenID Connect provider,
//! the store on SQLite and PostgreSQL where it matters; and `bma serve`
//! itself for what only the binary does (defaults, warning, logs).
//!
//! Every validation rule of the form and every security rule of the issue
//! has a case here: French 404/410 pages, security headers, CSRF on every
//! POST, cookie attributes, hashed sessions, rate limits, body limit, no
//! token in the log.
//!
//! Needs `cargo xtask lab up` (the OIDC provider) and `cargo build -p bma`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use bma_core::ManualClock;
use bma_core::lifecycle::{Actor, State};
use bma_mail::Templates;
use bma_store::{NewEmail, Store};
use bma_tests::provider::login_with;
use bma_tests::web::{
    Harness, T0, assert_security_headers, client, csrf_of, invited_mailbox, lab_oidc, listener, post_form, set_cookie,
    valid_form, with,
};
use bma_tests::{TestBackend, TestDb, addr, bma_bin, lab_file, on_both_backends};
use bma_web::{OidcSettings, Portal, PortalSettings};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use sqlx::Connection;
use time::Duration;
use time::macros::datetime;

/// The `<title>` of a page.
fn title_of(html: &str) -> &str {
    html.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or("")
}

mod form;
mod link;
mod oidc;
mod pages;
mod security;
mod serve;
