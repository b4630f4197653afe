//! `bma doctor autoconfig DOMAIN`: whether mail clients can set themselves
//! up for the addresses of DOMAIN, and in plain words what is missing.
//!
//! It asks what a client asks (the ways `bma serve`'s `autoconfig/`
//! answers): the names `autoconfig.DOMAIN` and `autodiscover.DOMAIN`, the
//! SRV records `_autodiscover._tcp`, `_imaps._tcp` or `_imap._tcp`,
//! `_submission._tcp` or `_submissions._tcp` (RFC 6186, RFC 8314: the one
//! of the configured security; the other is reported when present) and
//! whether they agree with the servers `bma.toml` tells clients (`[new]`
//! imap_host…, or mail 2's); then TLS to the IMAP, submission and HTTPS
//! servers (chain and name verified against the system's roots or
//! `--ca-file`, days until expiry: a warning under 21); then the
//! Thunderbird, Autodiscover (a POST of a 2006 request for a made-up
//! address of the domain) and Apple profile URLs, each of which must
//! answer 200 naming the expected servers.
//!
//! Output: one line per check, `✓`, `!` (a warning) or `✗` and a sentence
//! (`--json`: the same as one object); exit code 0 when every check
//! passes, 1 otherwise (a warning too), 2 for a usage error. Every network
//! step has `--timeout` seconds. `--resolver IP:PORT`, `--https-port` and
//! `--ca-file` are for labs and unusual setups.

mod dns;
mod tls;
mod web;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bma_web::autoconfig::{Security, Server};

use crate::config::Config;
use dns::{Dns, Srv, host_name};
use tls::{Mode, Trust};

/// Days of validity under which a certificate is a warning.
const WARN_DAYS: i64 = 21;

/// The local part of the made-up address the URLs are asked about.
const PROBE_LOCAL: &str = "doctor.check";

/// `bma doctor …`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Check DNS, TLS certificates and URLs of mail clients' autoconfiguration for DOMAIN.
    Autoconfig(AutoconfigArgs),
}

/// Arguments of `bma doctor autoconfig`.
#[derive(Debug, clap::Args)]
pub struct AutoconfigArgs {
    /// The mail domain (the campaign's, e.g. adm.cfwb.be).
    domain: String,
    /// Ask this DNS server (IP:PORT) instead of the system's resolver.
    #[arg(long, value_name = "IP:PORT")]
    resolver: Option<SocketAddr>,
    /// The HTTPS port of autoconfig.DOMAIN, autodiscover.DOMAIN and DOMAIN.
    #[arg(long, default_value_t = 443)]
    https_port: u16,
    /// Trust only the certificates of this PEM file (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Seconds for each network step.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// Print JSON (one object: the checks and whether all passed).
    #[arg(long)]
    json: bool,
}

/// Runs `bma doctor`.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Autoconfig(args) => autoconfig(config, &args).await,
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Nothing to do.
    Pass,
    /// Works now, needs care soon (a certificate near its end).
    Warn,
    /// Something is missing or wrong.
    Fail,
}

impl Outcome {
    fn symbol(self) -> &'static str {
        match self {
            Outcome::Pass => "✓",
            Outcome::Warn => "!",
            Outcome::Fail => "✗",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was checked (`dns`, `srv`, `tls`, `url`, `config`).
    pub kind: &'static str,
    /// The name, record, server or URL checked.
    pub subject: String,
    /// How it came out.
    pub outcome: Outcome,
    /// What was found, or what is missing and what to add.
    pub message: String,
}

/// What the checks share: the domain, what `bma.toml` says, the resolver,
/// the trust roots, the options, and the report so far.
struct Doctor {
    domain: String,
    expected: Option<Expected>,
    dns: Dns,
    trust: Trust,
    https_port: u16,
    timeout: Duration,
    checks: Vec<Check>,
}

/// The servers `bma.toml` tells mail clients.
#[derive(Clone)]
struct Expected {
    imap: Server,
    submission: Server,
}

async fn autoconfig(config: &Config, args: &AutoconfigArgs) -> anyhow::Result<ExitCode> {
    let domain = host_name(&args.domain);
    if domain.is_empty() || domain == "." || domain.contains(['/', ' ', '@']) {
        eprintln!("error: {:?} is not a domain name", args.domain);
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let timeout = Duration::from_secs(args.timeout.max(1));
    let settings = crate::autoconfig_config::settings(config);
    let mut d = Doctor {
        domain,
        expected: settings.map(|s| Expected { imap: s.imap, submission: s.submission }),
        dns: Dns::new(args.resolver, timeout).map_err(|e| anyhow::anyhow!("cannot set up the DNS resolver: {e}"))?,
        trust: Trust::load(args.ca_file.as_deref())?,
        https_port: args.https_port,
        timeout,
        checks: Vec::new(),
    };
    if d.expected.is_none() {
        d.fail(
            "config",
            "bma.toml",
            "bma.toml does not say which servers mail clients use: set [new] imap_host and submission_host \
             (or [cutover] imap_host and smtp_host); the servers are taken from the SRV records meanwhile",
        );
    }
    d.names().await;
    let imap = d.service_records(Service::Imap).await;
    let submission = d.service_records(Service::Submission).await;
    d.autodiscover_record().await;
    if let Some(server) = imap {
        d.server_tls(Service::Imap, &server).await;
    }
    if let Some(server) = submission {
        d.server_tls(Service::Submission, &server).await;
    }
    d.urls().await;
    let passed = d.checks.iter().all(|c| c.outcome == Outcome::Pass);
    if args.json {
        let report = serde_json::json!({ "domain": d.domain, "ok": passed, "checks": d.checks });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &d.checks {
            println!("{} {}", c.outcome.symbol(), c.message);
        }
        let failed = d.checks.iter().filter(|c| c.outcome != Outcome::Pass).count();
        if passed {
            println!("autoconfiguration of {}: all {} checks pass", d.domain, d.checks.len());
        } else {
            println!("autoconfiguration of {}: {failed} of {} checks need attention", d.domain, d.checks.len());
        }
    }
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A mail service clients are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Imap,
    Submission,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Imap => "IMAP",
            Service::Submission => "submission",
        }
    }

    /// The SRV label of a security (RFC 6186, RFC 8314).
    fn label(self, security: Security) -> &'static str {
        match (self, security) {
            (Service::Imap, Security::Tls) => "_imaps._tcp",
            (Service::Imap, Security::StartTls) => "_imap._tcp",
            (Service::Submission, Security::Tls) => "_submissions._tcp",
            (Service::Submission, Security::StartTls) => "_submission._tcp",
        }
    }

    fn usual_port(self, security: Security) -> u16 {
        match (self, security) {
            (Service::Imap, Security::Tls) => 993,
            (Service::Imap, Security::StartTls) => 143,
            (Service::Submission, Security::Tls) => 465,
            (Service::Submission, Security::StartTls) => 587,
        }
    }

    fn keys(self) -> &'static str {
        match self {
            Service::Imap => "[new] imap_host, imap_port",
            Service::Submission => "[new] submission_host, submission_port",
        }
    }

    fn mode(self, security: Security) -> Mode {
        match (self, security) {
            (_, Security::Tls) => Mode::Implicit,
            (Service::Imap, Security::StartTls) => Mode::ImapStartTls,
            (Service::Submission, Security::StartTls) => Mode::SmtpStartTls,
        }
    }
}

impl Doctor {
    fn push(&mut self, kind: &'static str, subject: &str, outcome: Outcome, message: String) {
        self.checks.push(Check { kind, subject: subject.to_owned(), outcome, message });
    }

    fn pass(&mut self, kind: &'static str, subject: &str, message: impl Into<String>) {
        self.push(kind, subject, Outcome::Pass, message.into());
    }

    fn fail(&mut self, kind: &'static str, subject: &str, message: impl Into<String>) {
        self.push(kind, subject, Outcome::Fail, message.into());
    }

    fn expected_server(&self, service: Service) -> Option<&Server> {
        self.expected.as_ref().map(|e| match service {
            Service::Imap => &e.imap,
            Service::Submission => &e.submission,
        })
    }

    /// `autoconfig.D` and `autodiscover.D` have addresses.
    async fn names(&mut self) {
        for prefix in ["autoconfig", "autodiscover"] {
            let name = format!("{prefix}.{}", self.domain);
            match self.dns.addresses(&name).await {
                Ok(found) if !found.is_empty() => {
                    self.pass("dns", &name, format!("{name} resolves to {}", list(&found)));
                }
                Ok(_) => self.fail(
                    "dns",
                    &name,
                    format!(
                        "no address for {name}: add `{prefix} 3600 IN CNAME <the host of bma serve>.` (or an A/AAAA \
                         record) in the zone of {}",
                        self.domain
                    ),
                ),
                Err(e) => self.fail("dns", &name, format!("cannot resolve {name}: {e}")),
            }
        }
    }

    /// The SRV record of `service` for the configured security (and the
    /// other security's, reported when present); the server to check TLS
    /// on: the configured one, else the record's.
    async fn service_records(&mut self, service: Service) -> Option<Server> {
        let expected = self.expected_server(service).cloned();
        let security = expected.as_ref().map_or(
            match service {
                Service::Imap => Security::Tls,
                Service::Submission => Security::StartTls,
            },
            |s| s.security,
        );
        let label = service.label(security);
        let name = format!("{label}.{}", self.domain);
        let records = match self.dns.srv(&name).await {
            Ok(r) => r,
            Err(e) => {
                self.fail("srv", &name, format!("cannot read the SRV record {name}: {e}"));
                return expected;
            }
        };
        let example = expected.as_ref().map_or_else(
            || format!("{} {}.", service.usual_port(security), example_host(service, &self.domain)),
            |s| format!("{} {}.", s.port, s.host),
        );
        let usable: Vec<&Srv> = records.iter().filter(|r| r.target != ".").collect();
        match (usable.first(), &expected) {
            (None, _) => {
                self.fail("srv", &name, format!("no SRV record {name}: add `{label} 3600 IN SRV 0 1 {example}`"));
            }
            (Some(r), Some(s)) if host_name(&r.target) == host_name(&s.host) && r.port == s.port => {
                self.pass("srv", &name, format!("{name} points at {}:{} as bma.toml says", r.target, r.port));
            }
            (Some(r), Some(s)) => self.fail(
                "srv",
                &name,
                format!(
                    "{name} points at {}:{} but bma.toml tells clients {}:{} ({}): change the record to `{label} \
                     3600 IN SRV 0 1 {example}` or the settings",
                    r.target,
                    r.port,
                    s.host,
                    s.port,
                    service.keys()
                ),
            ),
            (Some(r), None) => self.pass("srv", &name, format!("{name} points at {}:{}", r.target, r.port)),
        }
        let other = match security {
            Security::Tls => Security::StartTls,
            Security::StartTls => Security::Tls,
        };
        let other_name = format!("{}.{}", service.label(other), self.domain);
        if let Ok(found) = self.dns.srv(&other_name).await
            && let Some(r) = found.iter().find(|r| r.target != ".")
        {
            self.pass(
                "srv",
                &other_name,
                format!("{other_name} also points at {}:{} ({} offered too)", r.target, r.port, other_label(other)),
            );
        }
        expected.or_else(|| usable.first().map(|r| Server { host: r.target.clone(), port: r.port, security }))
    }

    /// `_autodiscover._tcp.D` points at an HTTPS server.
    async fn autodiscover_record(&mut self) {
        let name = format!("_autodiscover._tcp.{}", self.domain);
        let add = format!("add `_autodiscover._tcp 3600 IN SRV 0 1 {} autodiscover.{}.`", self.https_port, self.domain);
        match self.dns.srv(&name).await {
            Ok(r) => match r.iter().find(|r| r.target != ".") {
                Some(r) if r.port == self.https_port => {
                    self.pass("srv", &name, format!("{name} points at {}:{}", r.target, r.port));
                }
                Some(r) => self.fail(
                    "srv",
                    &name,
                    format!(
                        "{name} points at port {} of {}, not HTTPS on {}: {add}",
                        r.port, r.target, self.https_port
                    ),
                ),
                None => self.fail("srv", &name, format!("no SRV record {name} (Outlook looks for it): {add}")),
            },
            Err(e) => self.fail("srv", &name, format!("cannot read the SRV record {name}: {e}")),
        }
    }

    /// The first address of `host`, or a failed check saying why not.
    async fn address(&mut self, kind: &'static str, subject: &str, host: &str, port: u16) -> Option<SocketAddr> {
        match self.dns.addresses(host).await {
            Ok(found) => match found.first() {
                Some(ip) => Some(SocketAddr::new(*ip, port)),
                None => {
                    let about =
                        if subject.contains(host) && kind == "url" { format!("{subject}: ") } else { String::new() };
                    self.fail(
                        kind,
                        subject,
                        format!("{about}{host} has no address in the DNS: add an A or AAAA record"),
                    );
                    None
                }
            },
            Err(e) => {
                self.fail(kind, subject, format!("cannot resolve {host}: {e}"));
                None
            }
        }
    }

    /// TLS to one mail server, as a client reaches it.
    async fn server_tls(&mut self, service: Service, server: &Server) {
        let subject = format!("{}:{}", server.host, server.port);
        let Some(addr) = self.address("tls", &subject, &server.host, server.port).await else { return };
        let mode = service.mode(server.security);
        let what = format!("{} {subject} ({})", service.name(), mode.label());
        match tls::connect(&self.trust, &server.host, addr, mode, self.timeout).await {
            Ok((_, cert)) => self.certificate_check(&subject, &what, &server.host, &cert),
            Err(e) => self.fail("tls", &subject, format!("{what}: {e}")),
        }
    }

    fn certificate_check(&mut self, subject: &str, what: &str, host: &str, cert: &tls::Certificate) {
        if cert.days_left < WARN_DAYS {
            self.push(
                "tls",
                subject,
                Outcome::Warn,
                format!(
                    "{what}: the certificate for {host} expires in {} days ({}): renew it now",
                    cert.days_left, cert.not_after
                ),
            );
        } else {
            self.pass(
                "tls",
                subject,
                format!("{what}: certificate valid for {host}, {} days left ({})", cert.days_left, cert.not_after),
            );
        }
    }

    /// The HTTPS hosts' certificates and the URLs clients fetch.
    async fn urls(&mut self) {
        let probe = format!("{PROBE_LOCAL}@{}", self.domain);
        let autoconfig = format!("autoconfig.{}", self.domain);
        let autodiscover = format!("autodiscover.{}", self.domain);
        let request = autodiscover_request(&probe);
        let urls = [
            Fetch {
                client: "Thunderbird",
                host: autoconfig.clone(),
                method: "GET",
                target: format!("/mail/config-v1.1.xml?emailaddress={}", query_encode(&probe)),
                body: None,
                expect: Expect::Thunderbird,
            },
            Fetch {
                client: "Thunderbird (well-known)",
                host: self.domain.clone(),
                method: "GET",
                target: "/.well-known/autoconfig/mail/config-v1.1.xml".to_owned(),
                body: None,
                expect: Expect::Thunderbird,
            },
            Fetch {
                client: "Outlook Autodiscover",
                host: autodiscover,
                method: "POST",
                target: "/autodiscover/autodiscover.xml".to_owned(),
                body: Some(request.as_bytes()),
                expect: Expect::Autodiscover,
            },
            Fetch {
                client: "Apple profile",
                host: autoconfig,
                method: "GET",
                target: format!("/autoconfig/apple.mobileconfig?email={}", query_encode(&probe)),
                body: None,
                expect: Expect::AppleProfile,
            },
        ];
        let mut certified: Vec<String> = Vec::new();
        for Fetch { client, host, method, target, body, expect } in urls {
            let port = self.https_port;
            let url =
                if port == 443 { format!("https://{host}{target}") } else { format!("https://{host}:{port}{target}") };
            let Some(addr) = self.address("url", &url, &host, port).await else { continue };
            let stream = match tls::connect(&self.trust, &host, addr, Mode::Implicit, self.timeout).await {
                Ok((stream, cert)) => {
                    if !certified.contains(&host) {
                        certified.push(host.clone());
                        let subject = format!("{host}:{port}");
                        self.certificate_check(&subject, &format!("HTTPS {subject}"), &host, &cert);
                    }
                    stream
                }
                Err(e) => {
                    if !certified.contains(&host) {
                        certified.push(host.clone());
                        self.fail("tls", &format!("{host}:{port}"), format!("HTTPS {host}:{port}: {e}"));
                    }
                    self.fail("url", &url, format!("{client}: {url} cannot be fetched (TLS failed above)"));
                    continue;
                }
            };
            let host_header = if port == 443 { host.clone() } else { format!("{host}:{port}") };
            let req = web::Request {
                method,
                host: &host_header,
                target: &target,
                body: body.map(|b| ("text/xml; charset=utf-8", b)),
            };
            match web::exchange(stream, &req, self.timeout).await {
                Ok(answer) if answer.status == 200 => match self.judge(expect, &answer.body) {
                    Ok(found) => {
                        let kind = answer.content_type.as_deref().unwrap_or("no Content-Type");
                        self.pass("url", &url, format!("{client}: {url} answers 200 ({kind}) and names {found}"));
                    }
                    Err(missing) => self.fail("url", &url, format!("{client}: {url} answers 200 but {missing}")),
                },
                Ok(answer) => self.fail(
                    "url",
                    &url,
                    format!(
                        "{client}: {url} answered {} instead of 200: {host} must reach `bma serve` with \
                         autoconfiguration set up ([new] imap_host and submission_host, addresses.domain = {})",
                        answer.status, self.domain
                    ),
                ),
                Err(e) => self.fail("url", &url, format!("{client}: {url} failed: {e}")),
            }
        }
    }

    /// Whether an answer names the expected servers: what it names, or what is wrong.
    fn judge(&self, expect: Expect, body: &[u8]) -> Result<String, String> {
        let text = String::from_utf8_lossy(body);
        let (imap, smtp) = match expect {
            Expect::Thunderbird => (
                web::text_after(&text, "<incomingServer type=\"imap\"", "hostname"),
                web::text_after(&text, "<outgoingServer type=\"smtp\"", "hostname"),
            ),
            Expect::Autodiscover => (
                web::text_after(&text, "<Type>IMAP</Type>", "Server"),
                web::text_after(&text, "<Type>SMTP</Type>", "Server"),
            ),
            Expect::AppleProfile => (
                web::text_after(&text, "<key>IncomingMailServerHostName</key>", "string"),
                web::text_after(&text, "<key>OutgoingMailServerHostName</key>", "string"),
            ),
        };
        let (Some(imap), Some(smtp)) = (imap, smtp) else {
            return Err("its content names no IMAP and submission server (not an autoconfiguration document)".into());
        };
        if let Some(e) = &self.expected {
            for (what, found, want) in [("IMAP", &imap, &e.imap.host), ("submission", &smtp, &e.submission.host)] {
                if host_name(found) != host_name(want) {
                    return Err(format!("it names {found} as the {what} server where bma.toml says {want}"));
                }
            }
        }
        Ok(format!("{imap} and {smtp}"))
    }
}

/// One URL a client fetches.
struct Fetch<'a> {
    client: &'static str,
    host: String,
    method: &'static str,
    target: String,
    body: Option<&'a [u8]>,
    expect: Expect,
}

/// What a URL's answer must hold.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Thunderbird,
    Autodiscover,
    AppleProfile,
}

/// An Outlook Autodiscover request (schema 2006) for `address`.
fn autodiscover_request(address: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<Autodiscover \
         xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\r\n  <Request>\r\n    \
         <EMailAddress>{address}</EMailAddress>\r\n    \
         <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>\r\n  \
         </Request>\r\n</Autodiscover>\r\n"
    )
}

/// An address in a query string (`@` as `%40`).
fn query_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
}

fn example_host(service: Service, domain: &str) -> String {
    match service {
        Service::Imap => format!("imap.{domain}"),
        Service::Submission => format!("smtp.{domain}"),
    }
}

fn other_label(security: Security) -> &'static str {
    match security {
        Security::Tls => "TLS from the first byte",
        Security::StartTls => "STARTTLS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_labels_follow_the_security() {
        for (service, security, label, port) in [
            (Service::Imap, Security::Tls, "_imaps._tcp", 993),
            (Service::Imap, Security::StartTls, "_imap._tcp", 143),
            (Service::Submission, Security::Tls, "_submissions._tcp", 465),
            (Service::Submission, Security::StartTls, "_submission._tcp", 587),
        ] {
            assert_eq!((service.label(security), service.usual_port(security)), (label, port));
        }
        assert_eq!(query_encode("doctor.check@adm.cfwb.be"), "doctor.check%40adm.cfwb.be");
        assert!(autodiscover_request("a@b.be").contains("<EMailAddress>a@b.be</EMailAddress>"));
    }
}
