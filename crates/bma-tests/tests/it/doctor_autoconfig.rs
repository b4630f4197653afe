//! `bma doctor autoconfig` against real components: a DNS server on
//! loopback (Debian's dnsmasq, started by the test with the zone's records
//! on its command line, authoritative for the domain), TLS servers with
//! certificates of a test CA (rcgen) given to the doctor with `--ca-file`
//! (an IMAP server with TLS from the first byte, a submission server with
//! SMTP STARTTLS, an HTTPS front of the real `bma serve`), and the built
//! `bma` binary for both the server and the doctor.
//!
//! Cases: everything present (exit 0, every line ✓, the JSON says ok); a
//! missing SRV record, an expired certificate, a certificate for other
//! names, a certificate near its end, autoconfiguration not served (404):
//! each named in plain words, exit 1.
//!
//! Needs `dnsmasq` (`cargo xtask lab install`) and `cargo build -p bma`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const DOMAIN: &str = "adm.cfwb.be";
const IMAP_HOST: &str = "imap.adm.cfwb.be";
const SMTP_HOST: &str = "smtp.adm.cfwb.be";

/// A test CA and the certificates it signs.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate's validity for a case.
#[derive(Clone, Copy)]
enum Validity {
    /// A year from now.
    Good,
    /// Ended yesterday.
    Expired,
    /// Ends in 10 days.
    Ending,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "bma doctor test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A server configuration with a certificate for `names`.
    fn server(&self, names: &[&str], validity: Validity) -> Arc<ServerConfig> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).expect("params");
        let now = OffsetDateTime::now_utc();
        let (from, to) = match validity {
            Validity::Good => (now - time::Duration::days(1), now + time::Duration::days(365)),
            Validity::Expired => (now - time::Duration::days(90), now - time::Duration::days(1)),
            Validity::Ending => (now - time::Duration::days(80), now + time::Duration::days(10)),
        };
        params.not_before = from;
        params.not_after = to;
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Arc::new(config)
    }
}

async fn bind() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

/// An IMAP server with TLS from the first byte: a greeting, then closes.
async fn imap_server(config: Arc<ServerConfig>) -> u16 {
    let (l, port) = bind().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = TlsAcceptor::from(config.clone());
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"* OK test IMAP ready\r\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

/// An IMAP server with STARTTLS: the greeting and the tagged OK in plain text, then TLS.
async fn imap_starttls_server(config: Arc<ServerConfig>) -> u16 {
    let (l, port) = bind().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = TlsAcceptor::from(config.clone());
            tokio::spawn(async move {
                let mut r = BufReader::new(tcp);
                let _ = r.get_mut().write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] test IMAP ready\r\n").await;
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let Some((tag, verb)) = line.trim().split_once(' ') else { return };
                if !verb.eq_ignore_ascii_case("STARTTLS") {
                    return;
                }
                let _ = r.get_mut().write_all(format!("{tag} OK Begin TLS negotiation now\r\n").as_bytes()).await;
                if let Ok(mut tls) = acceptor.accept(r.into_inner()).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

/// A submission server: SMTP in plain text up to STARTTLS, then TLS.
async fn submission_server(config: Arc<ServerConfig>) -> u16 {
    let (l, port) = bind().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = TlsAcceptor::from(config.clone());
            tokio::spawn(async move {
                let mut r = BufReader::new(tcp);
                let _ = r.get_mut().write_all(b"220 smtp test ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.trim().to_ascii_uppercase();
                    if verb.starts_with("EHLO") {
                        let _ = r.get_mut().write_all(b"250-smtp test\r\n250 STARTTLS\r\n").await;
                    } else if verb == "STARTTLS" {
                        let _ = r.get_mut().write_all(b"220 go ahead\r\n").await;
                        break;
                    } else {
                        let _ = r.get_mut().write_all(b"503 bad sequence\r\n").await;
                    }
                }
                if let Ok(mut tls) = acceptor.accept(r.into_inner()).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

/// HTTPS in front of `bma serve` (plain HTTP on `backend`).
async fn https_front(config: Arc<ServerConfig>, backend: u16) -> u16 {
    let (l, port) = bind().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = TlsAcceptor::from(config.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = TcpStream::connect(("127.0.0.1", backend)).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// dnsmasq on loopback, authoritative for the domain, with `records`
/// (its `--host-record`/`--srv-host` options); killed when dropped.
struct Dns {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Dns {
    /// Starts dnsmasq on a free port. A port free for UDP when picked can be
    /// taken for TCP by another test's connection before dnsmasq binds it
    /// (both come from the same ephemeral range); dnsmasq then exits, and
    /// the next port is tried.
    async fn start(records: &[String]) -> Dns {
        assert!(Path::new("/usr/sbin/dnsmasq").exists(), "dnsmasq is missing: run `cargo xtask lab install`");
        for _ in 0..10 {
            if let Some(dns) = Dns::try_start(free_udp_and_tcp_port(), records).await {
                return dns;
            }
        }
        panic!("dnsmasq did not start on any of 10 ports");
    }

    async fn try_start(port: u16, records: &[String]) -> Option<Dns> {
        let mut child = tokio::process::Command::new("/usr/sbin/dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--pid-file=",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                &format!("--port={port}"),
                &format!("--local=/{DOMAIN}/"),
                "--log-facility=-",
            ])
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("dnsmasq");
        for _ in 0..100 {
            if child.try_wait().expect("dnsmasq status").is_some() {
                return None;
            }
            if answers(port).await {
                return Some(Dns { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) });
            }
        }
        None
    }
}

/// Whether a DNS server answers on `port` (UDP): a query for the domain's
/// address, written by hand, and any reply with its id within 50 ms.
async fn answers(port: u16) -> bool {
    let mut query = vec![0x42, 0x17, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in DOMAIN.split('.') {
        query.push(u8::try_from(label.len()).expect("label"));
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    if socket.send_to(&query, ("127.0.0.1", port)).await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        return false;
    }
    let mut reply = [0_u8; 512];
    match tokio::time::timeout(Duration::from_millis(50), socket.recv(&mut reply)).await {
        Ok(Ok(n)) => n >= 2 && reply[..2] == query[..2],
        Ok(Err(_)) => {
            // ICMP port unreachable: nothing listens yet
            tokio::time::sleep(Duration::from_millis(50)).await;
            false
        }
        Err(_) => false,
    }
}

/// A port that is free for both UDP and TCP on loopback when asked.
fn free_udp_and_tcp_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What a case changes from "everything present".
#[derive(Clone, Copy)]
struct Case {
    /// `tls` (IMAPS, `_imaps._tcp`) or `starttls` (`_imap._tcp`).
    imap_tls: &'static str,
    imaps_srv: bool,
    imap_cert: Validity,
    https_names_ours: bool,
    https_cert: Validity,
    served: bool,
}

const ALL_GOOD: Case = Case {
    imap_tls: "tls",
    imaps_srv: true,
    imap_cert: Validity::Good,
    https_names_ours: true,
    https_cert: Validity::Good,
    served: true,
};

/// The servers clients are told, as `BMA_NEW_*` variables.
fn client_servers(imap: u16, imap_tls: &str, submission: u16) -> Vec<(String, String)> {
    [
        ("BMA_NEW_IMAP_HOST", IMAP_HOST.to_owned()),
        ("BMA_NEW_IMAP_PORT", imap.to_string()),
        ("BMA_NEW_IMAP_TLS", imap_tls.to_owned()),
        ("BMA_NEW_SUBMISSION_HOST", SMTP_HOST.to_owned()),
        ("BMA_NEW_SUBMISSION_PORT", submission.to_string()),
        ("BMA_NEW_SUBMISSION_TLS", "starttls".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Sets up the world of `case`, runs the doctor (`extra` arguments too),
/// and returns its exit code and standard output.
async fn doctor(case: Case, extra: &[&str]) -> (i32, String) {
    doctor_asking(case, extra, None).await
}

/// Like [`doctor`], asking `resolver` instead of the test's DNS server.
async fn doctor_asking(case: Case, extra: &[&str], resolver: Option<SocketAddr>) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("ca.pem");
    let imap_config = ca.server(&[IMAP_HOST], case.imap_cert);
    let imap =
        if case.imap_tls == "tls" { imap_server(imap_config).await } else { imap_starttls_server(imap_config).await };
    let submission = submission_server(ca.server(&[SMTP_HOST], Validity::Good)).await;
    let servers = client_servers(imap, case.imap_tls, submission);

    // bma serve, plain HTTP on loopback, behind the HTTPS front
    let (l, web) = bind().await;
    drop(l);
    let mut serve = tokio::process::Command::new(bma_tests::bma_bin());
    serve
        .args(["serve", "--no-scheduler", "--listen", &format!("127.0.0.1:{web}")])
        .current_dir(dir.path())
        .env_remove("BMA_CONFIG")
        .env("BMA_DATABASE_URL", format!("sqlite://{}", dir.path().join("bma.db").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if case.served {
        serve.envs(servers.clone());
    }
    let mut serve = serve.spawn().expect("bma serve");
    let http = bma_tests::web::client();
    let mut up = false;
    for _ in 0..150 {
        if http.get(format!("http://127.0.0.1:{web}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "bma serve answers /healthz");
    let web_names: Vec<String> = if case.https_names_ours {
        vec![format!("autoconfig.{DOMAIN}"), format!("autodiscover.{DOMAIN}"), DOMAIN.to_owned()]
    } else {
        vec!["portail.example.org".to_owned()]
    };
    let names: Vec<&str> = web_names.iter().map(String::as_str).collect();
    let https = https_front(ca.server(&names, case.https_cert), web).await;

    let mut records: Vec<String> =
        [DOMAIN, &format!("autoconfig.{DOMAIN}"), &format!("autodiscover.{DOMAIN}"), IMAP_HOST, SMTP_HOST]
            .iter()
            .map(|n| format!("--host-record={n},127.0.0.1"))
            .collect();
    records.push(format!("--srv-host=_submission._tcp.{DOMAIN},{SMTP_HOST},{submission},0,1"));
    records.push(format!("--srv-host=_autodiscover._tcp.{DOMAIN},autodiscover.{DOMAIN},{https},0,1"));
    if case.imaps_srv {
        let label = if case.imap_tls == "tls" { "_imaps._tcp" } else { "_imap._tcp" };
        records.push(format!("--srv-host={label}.{DOMAIN},{IMAP_HOST},{imap},0,1"));
    }
    // submission with TLS from the first byte is offered too (RFC 8314): reported, not required
    records.push(format!("--srv-host=_submissions._tcp.{DOMAIN},{SMTP_HOST},465,0,1"));
    let dns = Dns::start(&records).await;

    let out = tokio::process::Command::new(bma_tests::bma_bin())
        .args(["doctor", "autoconfig", DOMAIN, "--resolver", &resolver.unwrap_or(dns.addr).to_string(), "--https-port"])
        .arg(https.to_string())
        .arg("--ca-file")
        .arg(&ca_file)
        .args(if extra.contains(&"--timeout") { &[][..] } else { &["--timeout", "5"][..] })
        .args(extra)
        .current_dir(dir.path())
        .env_remove("BMA_CONFIG")
        .envs(servers)
        .output()
        .await
        .expect("bma doctor");
    let _ = serve.start_kill();
    drop(dns);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.stderr.is_empty(), "no error: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("exit code"), stdout)
}

/// The lines of the output that start with `symbol`.
fn lines_with<'a>(out: &'a str, symbol: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(symbol)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_present_passes() {
    let (code, out) = doctor(ALL_GOOD, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(lines_with(&out, "✗").is_empty() && lines_with(&out, "!").is_empty(), "{out}");
    for needle in [
        "✓ autoconfig.adm.cfwb.be resolves to 127.0.0.1",
        "✓ _imaps._tcp.adm.cfwb.be points at imap.adm.cfwb.be:",
        "✓ _submission._tcp.adm.cfwb.be points at smtp.adm.cfwb.be:",
        "✓ IMAP imap.adm.cfwb.be:",
        "(TLS): certificate valid for imap.adm.cfwb.be",
        "(STARTTLS): certificate valid for smtp.adm.cfwb.be",
        "✓ Thunderbird: https://autoconfig.adm.cfwb.be:",
        "/mail/config-v1.1.xml?emailaddress=doctor.check%40adm.cfwb.be answers 200",
        "✓ Thunderbird (well-known): https://adm.cfwb.be:",
        "✓ Outlook Autodiscover: https://autodiscover.adm.cfwb.be:",
        "✓ Apple profile: https://autoconfig.adm.cfwb.be:",
        "names imap.adm.cfwb.be and smtp.adm.cfwb.be",
        "✓ _submissions._tcp.adm.cfwb.be also points at smtp.adm.cfwb.be:465 (TLS from the first byte offered too)",
        "all 15 checks pass",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let (code, json) = doctor(ALL_GOOD, &["--json"]).await;
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["ok"], true);
    assert!(v["checks"].as_array().expect("checks").iter().all(|c| c["outcome"] == "pass"), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_srv_record_is_named_with_the_record_to_add() {
    let (code, out) = doctor(Case { imaps_srv: false, ..ALL_GOOD }, &[]).await;
    assert_eq!(code, 1, "{out}");
    let failed = lines_with(&out, "✗");
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].starts_with("✗ no SRV record _imaps._tcp.adm.cfwb.be: add `_imaps._tcp 3600 IN SRV 0 1 ")
            && failed[0].ends_with(" imap.adm.cfwb.be.`"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_named() {
    let (code, out) = doctor(Case { imap_cert: Validity::Expired, ..ALL_GOOD }, &[]).await;
    assert_eq!(code, 1, "{out}");
    let failed = lines_with(&out, "✗");
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].contains("IMAP imap.adm.cfwb.be:") && failed[0].ends_with("the certificate has expired: renew it"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_other_names_fails_every_url_of_the_host() {
    let (code, out) = doctor(Case { https_names_ours: false, ..ALL_GOOD }, &[]).await;
    assert_eq!(code, 1, "{out}");
    let failed = lines_with(&out, "✗");
    for host in ["autoconfig.adm.cfwb.be", "autodiscover.adm.cfwb.be", "adm.cfwb.be"] {
        assert!(
            failed.iter().any(|l| l.contains(&format!(
                "the certificate is not valid for {host}: add {host} to its names (subjectAltName)"
            ))),
            "{host}: {out}"
        );
    }
    assert!(failed.iter().any(|l| l.contains("Apple profile") && l.contains("cannot be fetched")), "{out}");
    assert!(
        lines_with(&out, "✓").iter().any(|l| l.contains("IMAP imap.adm.cfwb.be")),
        "the mail servers still pass: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_its_end_is_a_warning() {
    let (code, out) = doctor(Case { https_cert: Validity::Ending, ..ALL_GOOD }, &[]).await;
    assert_eq!(code, 1, "{out}");
    let warned = lines_with(&out, "!");
    assert_eq!(warned.len(), 3, "autoconfig, autodiscover and the domain: {out}");
    assert!(warned.iter().all(|l| l.contains("expires in 9 days") || l.contains("expires in 10 days")), "{out}");
    assert!(lines_with(&out, "✗").is_empty(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_answering_404_are_named() {
    let (code, out) = doctor(Case { served: false, ..ALL_GOOD }, &[]).await;
    assert_eq!(code, 1, "{out}");
    let failed = lines_with(&out, "✗");
    assert_eq!(failed.len(), 4, "the four URLs: {out}");
    assert!(failed.iter().all(|l| l.contains("answered 404 instead of 200")), "{out}");
    assert!(failed.iter().any(|l| l.starts_with("✗ Outlook Autodiscover: https://autodiscover.adm.cfwb.be:")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_with_starttls_is_checked_on_its_own_record() {
    let (code, out) = doctor(Case { imap_tls: "starttls", ..ALL_GOOD }, &[]).await;
    assert_eq!(code, 0, "{out}");
    for needle in
        ["✓ _imap._tcp.adm.cfwb.be points at imap.adm.cfwb.be:", "(STARTTLS): certificate valid for imap.adm.cfwb.be"]
    {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let (code, out) = doctor(Case { imap_tls: "starttls", imaps_srv: false, ..ALL_GOOD }, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ no SRV record _imap._tcp.adm.cfwb.be: add `_imap._tcp 3600 IN SRV 0 1 "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_server_that_never_answers_is_reported_within_the_timeouts() {
    // a socket that reads nothing and answers nothing
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let addr = silent.local_addr().expect("addr");
    let started = std::time::Instant::now();
    let (code, out) = doctor_asking(ALL_GOOD, &["--timeout", "1"], Some(addr)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ cannot resolve autoconfig.adm.cfwb.be:"), "{out}");
    assert!(
        out.contains(
            "✗ cannot read the SRV record _imaps._tcp.adm.cfwb.be: not asked: the DNS server did not answer an \
             earlier question in time"
        ),
        "once silent, the server is not asked again: {out}"
    );
    assert!(lines_with(&out, "✓").is_empty(), "nothing passes without DNS: {out}");
    assert!(started.elapsed() < Duration::from_secs(20), "one timeout, not one per question: {:?}", started.elapsed());
    drop(silent);
}
