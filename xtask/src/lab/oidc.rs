//! The OpenID Connect provider standing in for Cerbère EDU (`lab/oidc`, node),
//! also the authority of the new platform's IMAP access tokens: `lab token`
//! mints one for a mailbox (an extension grant of the lab), Dovecot checks
//! it at the provider's introspection endpoint.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::{HOST, OIDC_PORT, Paths, Platform, proc};

/// The lab provider's extension grant minting an IMAP access token for a
/// mailbox (`lab/oidc/server.mjs`).
const MAILBOX_GRANT: &str = "urn:bma:lab:grant-type:mailbox-token";
/// The client that mints IMAP tokens (client_secret_post).
const MINT_CLIENT: (&str, &str) = ("bma-lab-mint", "bma-lab-mint-secret");
/// The client the new platform's Dovecot introspects tokens as (HTTP Basic).
const DOVECOT_CLIENT: (&str, &str) = ("bma-lab-dovecot", "bma-lab-dovecot-secret");
/// Longest lifetime of a minted token in seconds (the provider refuses more).
pub const MAX_TOKEN_TTL: u32 = 3600;

/// OIDC part of lab.json.
#[derive(Serialize)]
pub struct OidcJson {
    issuer: String,
    discovery_url: String,
    port: u16,
    client_id: &'static str,
    client_secret: &'static str,
    redirect_uris: [&'static str; 2],
    /// Ports whose `http://127.0.0.1:<port>/auth/callback` is registered
    /// too, for portals started by tests and benchmarks (first, last).
    test_redirect_ports: [u16; 2],
    pkce_required: bool,
    scopes: [&'static str; 3],
    log: PathBuf,
    accounts: Vec<Account>,
    imap_tokens: ImapTokensJson,
    console: ConsoleClientJson,
}

/// The helpdesk console's client (`oidc.console` in lab.json).
#[derive(Serialize)]
struct ConsoleClientJson {
    client_id: &'static str,
    client_secret: &'static str,
    /// Asked beside `openid profile email`: brings the roles claim.
    scope: &'static str,
    roles_claim: &'static str,
    redirect_path: &'static str,
}

/// How IMAP access tokens are minted and checked (`oidc.imap_tokens` in lab.json).
#[derive(Serialize)]
struct ImapTokensJson {
    /// The platform whose Dovecot accepts them.
    platform: Platform,
    mechanisms: [&'static str; 2],
    token_endpoint: String,
    grant_type: &'static str,
    client_id: &'static str,
    client_secret: &'static str,
    introspection_endpoint: String,
    introspection_client_id: &'static str,
    scope: &'static str,
    /// Introspection claim holding the mailbox address.
    username_attribute: &'static str,
    max_ttl_seconds: u32,
}

/// A lab account of the provider (lab/oidc/accounts.json).
#[derive(Serialize, Deserialize)]
struct Account {
    login: String,
    password: String,
    sub: String,
    given_name: String,
    family_name: String,
    email: String,
    /// The console's roles (`bma_roles`, scope `bma`): staff accounts only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
}

/// The provider's description for lab.json.
pub fn describe(paths: &Paths) -> Result<OidcJson> {
    let file = paths.templates.join("oidc/accounts.json");
    let accounts =
        serde_json::from_str(&fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?)?;
    let issuer = format!("http://{HOST}:{OIDC_PORT}");
    Ok(OidcJson {
        discovery_url: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
        port: OIDC_PORT,
        client_id: "bma-portal",
        client_secret: "bma-portal-secret",
        redirect_uris: ["http://127.0.0.1:8080/auth/callback", "http://localhost:8080/auth/callback"],
        test_redirect_ports: [18000, 18199],
        pkce_required: true,
        scopes: ["openid", "profile", "email"],
        log: paths.oidc_log(),
        accounts,
        imap_tokens: ImapTokensJson {
            platform: Platform::New,
            mechanisms: ["XOAUTH2", "OAUTHBEARER"],
            token_endpoint: format!("http://{HOST}:{OIDC_PORT}/token"),
            grant_type: MAILBOX_GRANT,
            client_id: MINT_CLIENT.0,
            client_secret: MINT_CLIENT.1,
            introspection_endpoint: format!("http://{HOST}:{OIDC_PORT}/token/introspection"),
            introspection_client_id: DOVECOT_CLIENT.0,
            scope: "imap",
            username_attribute: "email",
            max_ttl_seconds: MAX_TOKEN_TTL,
        },
        console: ConsoleClientJson {
            client_id: "bma-console",
            client_secret: "bma-console-secret",
            scope: "bma",
            roles_claim: "bma_roles",
            redirect_path: "/console/auth/callback",
        },
    })
}

/// The introspection endpoint with Dovecot's client credentials in it, as
/// Dovecot's oauth2 passdb takes them (sent as HTTP Basic).
pub fn introspection_url_for_dovecot() -> String {
    let (id, secret) = DOVECOT_CLIENT;
    format!("http://{id}:{secret}@{HOST}:{OIDC_PORT}/token/introspection")
}

/// Asks the running provider for an IMAP access token for `mailbox`, valid
/// `ttl` seconds (1 to [`MAX_TOKEN_TTL`]). The token is only returned,
/// never logged.
pub fn mint(mailbox: &str, ttl: u32) -> Result<String> {
    if !(1..=MAX_TOKEN_TTL).contains(&ttl) {
        bail!("--ttl {ttl}: expected 1 to {MAX_TOKEN_TTL} seconds");
    }
    let ttl = ttl.to_string();
    let form = [
        ("grant_type", MAILBOX_GRANT),
        ("client_id", MINT_CLIENT.0),
        ("client_secret", MINT_CLIENT.1),
        ("mailbox", mailbox),
        ("expires_in", &ttl),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", form_encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let (status, body) = post_form("/token", &form)
        .with_context(|| format!("cannot reach the OIDC provider on {HOST}:{OIDC_PORT}: is the lab up?"))?;
    let json: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("the provider answered {status} without JSON"))?;
    if status != 200 {
        let field = |k: &str| json[k].as_str().unwrap_or("").to_owned();
        bail!("the provider refused the token (HTTP {status}): {} {}", field("error"), field("error_description"));
    }
    json["access_token"].as_str().map(str::to_owned).context("the provider's answer has no access_token")
}

/// One HTTP/1.0 POST to the provider on loopback (so no chunked answer and
/// no keep-alive): status and body.
fn post_form(path: &str, form: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect((HOST, OIDC_PORT))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {HOST}:{OIDC_PORT}\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8(answer).context("the provider's answer is not UTF-8")?;
    let (head, body) = answer.split_once("\r\n\r\n").context("the provider's answer has no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {:?}", head.lines().next().unwrap_or("")))?;
    Ok((status, body.to_owned()))
}

/// `application/x-www-form-urlencoded` value: unreserved bytes as they are,
/// everything else percent-encoded.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn pid_file(paths: &Paths) -> PathBuf {
    paths.oidc().join("oidc.pid")
}

/// Starts `node lab/oidc/server.mjs` in the background (own process group).
pub fn start(paths: &Paths) -> Result<()> {
    if proc::read_pid(&pid_file(paths)).is_some_and(proc::alive) {
        if !stale(paths) {
            println!("oidc: already running");
            return Ok(());
        }
        // Its clients or accounts changed since it started: only it restarts.
        println!("oidc: lab/oidc changed since it started, restarting it");
        stop(paths);
    }
    fs::create_dir_all(paths.oidc())?;
    let dir = paths.templates.join("oidc");
    let pid = proc::spawn_background(
        Command::new("node")
            .arg(dir.join("server.mjs"))
            .current_dir(&dir)
            .env("BMA_LAB_OIDC_PORT", OIDC_PORT.to_string())
            .env("BMA_LAB_OIDC_STATE", paths.oidc()),
        &paths.oidc_log(),
        &pid_file(paths),
    )
    .context("cannot start node for the OIDC provider")?;
    println!("oidc: started (issuer http://{HOST}:{OIDC_PORT}, pid {pid})");
    Ok(())
}

/// Whether `server.mjs` or `accounts.json` is newer than the running provider.
fn stale(paths: &Paths) -> bool {
    let modified = |p: PathBuf| fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(started) = modified(pid_file(paths)) else {
        return false;
    };
    let dir = paths.templates.join("oidc");
    ["server.mjs", "accounts.json"].iter().filter_map(|f| modified(dir.join(f))).any(|m| m > started)
}

/// Stops the provider; tolerant of one already stopped.
pub fn stop(paths: &Paths) {
    match proc::read_pid(&pid_file(paths)) {
        Some(pid) if proc::terminate(pid, Duration::from_secs(3)) => println!("oidc: stopped"),
        _ => println!("oidc: not running"),
    }
    let _ = fs::remove_file(pid_file(paths));
}

#[cfg(test)]
mod tests {
    use super::form_encode;

    #[test]
    fn form_values_are_percent_encoded() {
        for (value, encoded) in [
            ("ec123456@adm.cfwb.be", "ec123456%40adm.cfwb.be"),
            ("urn:bma:lab:grant-type:mailbox-token", "urn%3Abma%3Alab%3Agrant-type%3Amailbox-token"),
            ("a b&c=d+é", "a%20b%26c%3Dd%2B%C3%A9"),
            ("3600", "3600"),
        ] {
            assert_eq!(form_encode(value), encoded, "{value}");
        }
    }
}
