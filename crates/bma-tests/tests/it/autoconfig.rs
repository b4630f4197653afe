//! Mail clients that set themselves up, over HTTP against `bma serve`'s
//! router: Thunderbird's `config-v1.1.xml` at both URLs, Outlook's POX
//! Autodiscover (POST and GET, the path in any case, bad bodies, a DTD),
//! Apple's `.mobileconfig` (read as a plist, its UUIDs, signed and
//! verified by the `openssl` command), each read as its client reads it
//! (element paths, plist keys) and validated with `xmllint` against
//! schemas written for these tests from the formats' documentation
//! (`autoconfig/*.xsd`). Nothing tells whether a mailbox exists: another
//! domain is the same 404 for a mailbox of the store and for none, and two
//! addresses of our domain get answers that differ by the address only.
//! The French guides, with the settings' values, axe-clean in Chromium;
//! the status page of a migrated mailbox links them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bma_core::lifecycle::{Actor, State};
use bma_tests::web::{Harness, T0};
use bma_tests::{TestBackend, addr, on_both_backends};
use bma_web::autoconfig::{AutoconfigSettings, Security, Server, Signer, mobileconfig};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use reqwest::StatusCode;

const REQUEST_NS: &str = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
const ROOT_NS: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
const SETTINGS_NS: &str = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// The settings of these tests: implicit TLS to read, STARTTLS to send.
fn settings() -> AutoconfigSettings {
    AutoconfigSettings {
        domains: vec!["adm.cfwb.be".to_owned()],
        display_name: "Boîte mail administrative (BMA)".to_owned(),
        short_name: "BMA".to_owned(),
        imap: Server { host: "imap.bma-nouvelle.example".to_owned(), port: 993, security: Security::Tls },
        submission: Server { host: "smtp.bma-nouvelle.example".to_owned(), port: 587, security: Security::StartTls },
        webmail_url: Some("https://webmail.bma-nouvelle.example/".to_owned()),
        signer: None,
    }
}

async fn harness(backend: TestBackend, s: Option<AutoconfigSettings>) -> Harness {
    Harness::start(backend, move |p| p.autoconfig = s).await
}

/// One element as a client's parser sees it: its path of local names
/// from the root, its namespace, its attributes, its text.
#[derive(Debug)]
struct Element {
    path: String,
    ns: String,
    attrs: BTreeMap<String, String>,
    text: String,
}

/// Every element of `xml` in document order.
fn elements(xml: &str) -> Vec<Element> {
    let mut reader = NsReader::from_str(xml);
    let mut open: Vec<usize> = Vec::new();
    let mut out: Vec<Element> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap_or_else(|e| panic!("{e}: {xml}"));
        let ns = match ns {
            ResolveResult::Bound(Namespace(n)) => n.to_owned(),
            _ => String::new(),
        };
        let text = match &event {
            Event::Start(e) | Event::Empty(e) => {
                let parent = open.last().map(|i| format!("{}/", out[*i].path)).unwrap_or_default();
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            a.key.as_ref().to_owned(),
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap().into_owned(),
                        )
                    })
                    .collect();
                let path = format!("{parent}{}", e.local_name().as_ref());
                out.push(Element { path, ns, attrs, text: String::new() });
                if matches!(event, Event::Start(_)) {
                    open.push(out.len() - 1);
                }
                None
            }
            Event::End(_) => {
                open.pop();
                None
            }
            Event::Text(t) => Some(t.xml10_content().into_owned()),
            Event::CData(t) => Some(t.xml10_content().into_owned()),
            Event::GeneralRef(r) => Some(match r.resolve_char_ref().unwrap() {
                Some(c) => c.to_string(),
                None => quick_xml::escape::resolve_predefined_entity(r).unwrap().to_owned(),
            }),
            Event::Eof => break,
            _ => None,
        };
        if let (Some(t), Some(i)) = (text, open.last()) {
            out[*i].text.push_str(&t);
        }
    }
    out
}

/// The trimmed texts of the elements at `path`.
fn texts<'a>(els: &'a [Element], path: &str) -> Vec<&'a str> {
    els.iter().filter(|e| e.path == path).map(|e| e.text.trim()).collect()
}

/// The one text at `path`.
fn text<'a>(els: &'a [Element], path: &str) -> &'a str {
    match texts(els, path).as_slice() {
        [one] => one,
        other => panic!("{path}: {other:?} in {els:#?}"),
    }
}

/// The schemas of these tests.
fn schema(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/autoconfig").join(name)
}

/// `xmllint --schema`: `Err` with its complaint when `xml` is not valid.
fn validate(name: &str, xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.xml");
    std::fs::write(&file, xml).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schema(name))
        .arg(&file)
        .output()
        .expect("xmllint (cargo xtask lab install: libxml2-utils)");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

async fn body(res: reqwest::Response) -> (StatusCode, String, String) {
    let status = res.status();
    let ty = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (status, ty, res.text().await.unwrap())
}

// Thunderbird.

async fn thunderbird(h: &Harness, path: &str, host: Option<&str>) -> (StatusCode, String, String) {
    let mut req = h.client.get(h.url(path));
    if let Some(host) = host {
        req = req.header("host", host);
    }
    body(req.send().await.unwrap()).await
}

async fn thunderbird_reads_its_file_at_both_urls(backend: TestBackend) {
    let h = harness(backend, Some(settings())).await;
    for (path, host) in [
        ("/mail/config-v1.1.xml?emailaddress=ec000001%40adm.cfwb.be", Some("autoconfig.adm.cfwb.be")),
        ("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ec000001%40adm.cfwb.be", None),
        // Without the address: the host names the domain.
        ("/.well-known/autoconfig/mail/config-v1.1.xml", Some("adm.cfwb.be")),
        ("/mail/config-v1.1.xml", Some("autoconfig.adm.cfwb.be")),
        // The portal's own host, one domain configured.
        ("/mail/config-v1.1.xml", None),
    ] {
        let (status, ty, xml) = thunderbird(&h, path, host).await;
        assert_eq!(status, StatusCode::OK, "{path} on {host:?}: {xml}");
        assert_eq!(ty, "text/xml; charset=utf-8", "{path}");
        validate("thunderbird.xsd", &xml).unwrap_or_else(|e| panic!("{path}: {e}\n{xml}"));
        let els = elements(&xml);
        let provider = els.iter().find(|e| e.path == "clientConfig/emailProvider").unwrap();
        assert_eq!(provider.attrs["id"], "adm.cfwb.be");
        assert_eq!(els[0].attrs["version"], "1.1");
        assert_eq!(text(&els, "clientConfig/emailProvider/domain"), "adm.cfwb.be");
        assert_eq!(text(&els, "clientConfig/emailProvider/displayName"), "Boîte mail administrative (BMA)");
        let incoming = els.iter().find(|e| e.path == "clientConfig/emailProvider/incomingServer").unwrap();
        assert_eq!(incoming.attrs["type"], "imap");
        let outgoing = els.iter().find(|e| e.path == "clientConfig/emailProvider/outgoingServer").unwrap();
        assert_eq!(outgoing.attrs["type"], "smtp");
        for (server, host, port, socket) in [
            ("incomingServer", "imap.bma-nouvelle.example", "993", "SSL"),
            ("outgoingServer", "smtp.bma-nouvelle.example", "587", "STARTTLS"),
        ] {
            let at = |leaf: &str| text(&els, &format!("clientConfig/emailProvider/{server}/{leaf}")).to_owned();
            assert_eq!(at("hostname"), host);
            assert_eq!(at("port"), port);
            assert_eq!(at("socketType"), socket);
            assert_eq!(at("username"), "%EMAILADDRESS%");
            assert_eq!(at("authentication"), "password-cleartext");
        }
        let doc = els.iter().find(|e| e.path == "clientConfig/emailProvider/documentation").unwrap();
        assert_eq!(doc.attrs["url"], h.url("/guides/thunderbird"));
    }
    // The schema is not a rubber stamp.
    let (_, _, xml) = thunderbird(&h, "/mail/config-v1.1.xml", None).await;
    assert!(validate("thunderbird.xsd", &xml.replace(">SSL<", ">TLS<")).is_err());
    assert!(validate("thunderbird.xsd", &xml.replace("<port>993</port>", "")).is_err());

    // Another domain, by address or by host: 404.
    for (path, host) in [
        ("/mail/config-v1.1.xml?emailaddress=ec000001%40other.be", None),
        ("/mail/config-v1.1.xml?emailaddress=not-an-address", None),
        ("/.well-known/autoconfig/mail/config-v1.1.xml", Some("autoconfig.other.be")),
    ] {
        assert_eq!(thunderbird(&h, path, host).await.0, StatusCode::NOT_FOUND, "{path} on {host:?}");
    }
    h.stop().await;
}

// Outlook.

fn request(email: &str, schema: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<Autodiscover xmlns=\"{REQUEST_NS}\">\r\n  <Request>\r\n    \
         <EMailAddress>{email}</EMailAddress>\r\n    <AcceptableResponseSchema>{schema}</AcceptableResponseSchema>\r\n  \
         </Request>\r\n</Autodiscover>\r\n"
    )
}

async fn post(h: &Harness, path: &str, body: String) -> (StatusCode, String, String) {
    let req = h.client.post(h.url(path)).header("content-type", "text/xml").body(body);
    self::body(req.send().await.unwrap()).await
}

/// Checks an Autodiscover answer for `address` as Outlook reads it.
fn check_settings(xml: &str, address: &str, what: &str) {
    validate("autodiscover.xsd", xml).unwrap_or_else(|e| panic!("{what}: {e}\n{xml}"));
    let els = elements(xml);
    assert_eq!((els[0].path.as_str(), els[0].ns.as_str()), ("Autodiscover", ROOT_NS), "{what}");
    assert_eq!(els[1].ns, SETTINGS_NS, "{what}: Response in 2006a");
    let account = "Autodiscover/Response/Account";
    assert_eq!(text(&els, &format!("{account}/AccountType")), "email");
    assert_eq!(text(&els, &format!("{account}/Action")), "settings");
    let protocols: Vec<&str> = texts(&els, &format!("{account}/Protocol/Type"));
    assert_eq!(protocols, ["IMAP", "SMTP"], "{what}");
    let at = |leaf: &str| texts(&els, &format!("{account}/Protocol/{leaf}"));
    assert_eq!(at("Server"), ["imap.bma-nouvelle.example", "smtp.bma-nouvelle.example"]);
    assert_eq!(at("Port"), ["993", "587"]);
    assert_eq!(at("Encryption"), ["SSL", "TLS"]);
    assert_eq!(at("SPA"), ["off", "off"]);
    assert_eq!(at("AuthRequired"), ["on", "on"]);
    assert_eq!(at("LoginName"), [address, address], "{what}");
}

async fn outlook_reads_its_settings_by_post_and_get_in_any_case(backend: TestBackend) {
    let h = harness(backend, Some(settings())).await;
    let address = "ec000001@adm.cfwb.be";
    for path in ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml", "/AUTODISCOVER/AUTODISCOVER.XML"] {
        let (status, ty, xml) = post(&h, path, request(address, SETTINGS_NS)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {xml}");
        assert_eq!(ty, "text/xml; charset=utf-8");
        check_settings(&xml, address, path);
    }
    for path in [
        "/autodiscover/autodiscover.xml?email=ec000001%40adm.cfwb.be",
        "/AutoDiscover/autodiscover.xml?Email=ec000001@adm.cfwb.be",
    ] {
        let (status, _, xml) = body(h.get(path).await).await;
        assert_eq!(status, StatusCode::OK, "{path}: {xml}");
        check_settings(&xml, address, path);
    }
    // The address is escaped where it is written.
    let (status, _, xml) =
        post(&h, "/autodiscover/autodiscover.xml", request("o&apos;brien&amp;co@adm.cfwb.be", SETTINGS_NS)).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    check_settings(&xml, "o'brien&co@adm.cfwb.be", "an address with & and '");

    // Bodies that are not a request: 400 with an <Error> of the schema, code 600.
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE Autodiscover [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n\
         <Autodiscover xmlns=\"{REQUEST_NS}\"><Request><EMailAddress>&x;@adm.cfwb.be</EMailAddress></Request></Autodiscover>"
    );
    let bomb = format!(
        "<!DOCTYPE a [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>\
         <Autodiscover xmlns=\"{REQUEST_NS}\"><Request><EMailAddress>&b;@adm.cfwb.be</EMailAddress></Request></Autodiscover>"
    );
    for (what, bad) in [
        ("not XML", "hello".to_owned()),
        ("unclosed", request(address, SETTINGS_NS).replace("</Autodiscover>", "")),
        ("other namespace", request(address, SETTINGS_NS).replace(REQUEST_NS, "urn:other")),
        ("no address", request("", SETTINGS_NS)),
        ("external entity", xxe),
        ("entity expansion", bomb),
        ("empty", String::new()),
    ] {
        let (status, ty, xml) = post(&h, "/autodiscover/autodiscover.xml", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {xml}");
        assert_eq!(ty, "text/xml; charset=utf-8");
        validate("autodiscover.xsd", &xml).unwrap_or_else(|e| panic!("{what}: {e}\n{xml}"));
        let els = elements(&xml);
        assert_eq!(text(&els, "Autodiscover/Response/Error/ErrorCode"), "600", "{what}");
        assert!(!xml.contains("root:"), "{what}: nothing of the file");
    }
    // A response schema we do not give: Exchange's 601.
    let mobile = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
    let (status, _, xml) = post(&h, "/autodiscover/autodiscover.xml", request(address, mobile)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text(&elements(&xml), "Autodiscover/Response/Error/ErrorCode"), "601");
    // Another domain: 404.
    let (status, _, _) = post(&h, "/autodiscover/autodiscover.xml", request("ec000001@other.be", SETTINGS_NS)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.stop().await;
}

// Apple.

async fn profile(h: &Harness, email: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let res = h.client.get(h.url("/autoconfig/apple.mobileconfig")).query(&[("email", email)]).send().await.unwrap();
    (res.status(), res.headers().clone(), res.bytes().await.unwrap().to_vec())
}

fn dictionary(bytes: &[u8]) -> plist::Dictionary {
    plist::Value::from_reader_xml(bytes).unwrap().into_dictionary().unwrap()
}

/// The UUIDs of a profile: its own and its mail payload's.
fn uuids(d: &plist::Dictionary) -> (String, String) {
    let mail = d["PayloadContent"].as_array().unwrap()[0].as_dictionary().unwrap();
    (d["PayloadUUID"].as_string().unwrap().to_owned(), mail["PayloadUUID"].as_string().unwrap().to_owned())
}

async fn apple_devices_install_a_profile_that_replaces_itself(backend: TestBackend) {
    let h = harness(backend, Some(settings())).await;
    let (status, headers, first) = profile(&h, "ec000001@adm.cfwb.be").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/x-apple-aspen-config");
    assert_eq!(headers["content-disposition"], "attachment; filename=\"bma-adm.cfwb.be.mobileconfig\"");
    let d = dictionary(&first);
    assert_eq!(d["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(d["PayloadVersion"].as_signed_integer(), Some(1));
    let content = d["PayloadContent"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    let mail = content[0].as_dictionary().unwrap();
    for (key, value) in [
        ("PayloadType", "com.apple.mail.managed"),
        ("EmailAccountType", "EmailTypeIMAP"),
        ("EmailAddress", "ec000001@adm.cfwb.be"),
        ("IncomingMailServerHostName", "imap.bma-nouvelle.example"),
        ("IncomingMailServerUsername", "ec000001@adm.cfwb.be"),
        ("OutgoingMailServerHostName", "smtp.bma-nouvelle.example"),
        ("OutgoingMailServerUsername", "ec000001@adm.cfwb.be"),
        ("IncomingMailServerAuthentication", "EmailAuthPassword"),
    ] {
        assert_eq!(mail[key].as_string(), Some(value), "{key}");
    }
    assert_eq!(mail["IncomingMailServerPortNumber"].as_signed_integer(), Some(993));
    assert_eq!(mail["OutgoingMailServerPortNumber"].as_signed_integer(), Some(587));
    assert_eq!(mail["IncomingMailServerUseSSL"].as_boolean(), Some(true));
    assert_eq!(mail["OutgoingMailServerUseSSL"].as_boolean(), Some(true));
    assert_eq!(mail["OutgoingPasswordSameAsIncomingPassword"].as_boolean(), Some(true));
    for key in ["IncomingPassword", "OutgoingPassword", "Password"] {
        assert!(!mail.contains_key(key) && !d.contains_key(key), "{key}: no password in a profile");
    }

    // The same bytes again (a reinstall replaces), other UUIDs for another address.
    let (_, _, again) = profile(&h, "ec000001@adm.cfwb.be").await;
    assert_eq!(first, again);
    let (_, _, other) = profile(&h, "ec000002@adm.cfwb.be").await;
    let (a, b) = (uuids(&d), uuids(&dictionary(&other)));
    assert!(a.0 != b.0 && a.1 != b.1 && a.0 != a.1, "{a:?} {b:?}");
    for u in [&a.0, &a.1] {
        assert_eq!(uuid_version(u), '5', "{u}");
    }

    assert_eq!(profile(&h, "ec000001@other.be").await.0, StatusCode::NOT_FOUND);
    h.stop().await;
}

/// The version digit of a UUID's text.
fn uuid_version(u: &str) -> char {
    u.chars().nth(14).unwrap()
}

/// `openssl cms -verify` of `signed` against `ca`: the content, or its complaint.
fn openssl_verify(signed: &[u8], ca: &Path, dir: &Path) -> Result<Vec<u8>, String> {
    let (input, output) = (dir.join("profile.der"), dir.join("content.plist"));
    std::fs::write(&input, signed).unwrap();
    let out = Command::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-in"])
        .arg(&input)
        .arg("-CAfile")
        .arg(ca)
        .arg("-out")
        .arg(&output)
        .output()
        .expect("openssl (cargo xtask lab install)");
    if out.status.success() {
        Ok(std::fs::read(&output).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A self-signed RSA certificate and key made by `openssl req`.
fn rsa_certificate(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("rsa.crt"), dir.join("rsa.key"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=BMA profils test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    (std::fs::read_to_string(cert).unwrap(), std::fs::read_to_string(key).unwrap())
}

/// With a certificate, the profile is a CMS SignedData that `openssl cms
/// -verify` accepts against that certificate, and whose content is the
/// unsigned profile; a byte changed and it is refused. RSA and P-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_profile_is_verified_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let p256 = rcgen::generate_simple_self_signed(vec!["bma.example".to_owned()]).unwrap();
    let keys = [(p256.cert.pem(), p256.signing_key.serialize_pem()), rsa_certificate(dir.path())];
    for (i, (cert, key)) in keys.iter().enumerate() {
        let mut s = settings();
        s.signer = Some(Arc::new(Signer::from_pem(cert, key).unwrap()));
        let h = harness(TestBackend::Sqlite, Some(s.clone())).await;
        let (status, headers, signed) = profile(&h, "ec000001@adm.cfwb.be").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/x-apple-aspen-config");
        let ca = dir.path().join(format!("ca{i}.pem"));
        std::fs::write(&ca, cert).unwrap();
        let content = openssl_verify(&signed, &ca, dir.path()).unwrap_or_else(|e| panic!("key {i}: {e}"));
        let m = s.mailbox("ec000001@adm.cfwb.be").unwrap();
        assert_eq!(content, mobileconfig::profile(&s, &m), "key {i}: the content is the profile");
        assert_eq!(uuids(&dictionary(&content)).0, mobileconfig::payload_uuid("profile", "ec000001@adm.cfwb.be"));

        // One byte of the content changed: refused.
        let at = signed.windows(11).position(|w| w == b"ec000001@ad").unwrap();
        let mut forged = signed.clone();
        forged[at + 7] = b'2';
        assert!(openssl_verify(&forged, &ca, dir.path()).is_err(), "key {i}: a forged profile verified");
        // Another certificate as the anchor: refused.
        let other = rcgen::generate_simple_self_signed(vec!["other.example".to_owned()]).unwrap();
        let other_ca = dir.path().join("other.pem");
        std::fs::write(&other_ca, other.cert.pem()).unwrap();
        assert!(openssl_verify(&signed, &other_ca, dir.path()).is_err(), "key {i}: verified by a stranger");
        h.stop().await;
    }
}

// Nothing tells whether a mailbox exists.

/// Another domain: one 404, whether its local part is a mailbox of the
/// store or none; our domain: answers that differ by the address only.
async fn no_answer_tells_whether_a_mailbox_exists(backend: TestBackend) {
    let h = harness(backend, Some(settings())).await;
    let known = if backend == TestBackend::Sqlite { "ec830001@adm.cfwb.be" } else { "ec840001@adm.cfwb.be" };
    let unknown = if backend == TestBackend::Sqlite { "ec839999@adm.cfwb.be" } else { "ec849999@adm.cfwb.be" };
    h.invited(known).await;
    assert!(h.store.mailbox(&addr(known)).await.is_ok());
    assert!(h.store.mailbox(&addr(unknown)).await.is_err());

    let answers = |email: String| {
        let h = &h;
        async move {
            let enc = email.replace('@', "%40");
            let tb = body(h.get(&format!("/mail/config-v1.1.xml?emailaddress={enc}")).await).await;
            let ad = post(h, "/autodiscover/autodiscover.xml", request(&email, SETTINGS_NS)).await;
            let get = body(h.get(&format!("/autodiscover/autodiscover.xml?email={enc}")).await).await;
            let (s, _, p) = profile(h, &email).await;
            let p = String::from_utf8_lossy(&p).into_owned();
            vec![
                ("thunderbird", tb.0, tb.2),
                ("autodiscover", ad.0, ad.2),
                ("autodiscover get", get.0, get.2),
                ("profile", s, p),
            ]
        }
    };
    let other = |a: &str| a.replace("adm.cfwb.be", "other.be");
    let (k, u) = (answers(other(known)).await, answers(other(unknown)).await);
    for ((what, ks, kb), (_, us, ub)) in k.iter().zip(&u) {
        assert_eq!((*ks, *us), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND), "{what}");
        assert_eq!(kb, ub, "{what}: the same 404 for a mailbox and for none");
    }
    let (k, u) = (answers(known.to_owned()).await, answers(unknown.to_owned()).await);
    for ((what, ks, kb), (_, us, ub)) in k.iter().zip(&u) {
        assert_eq!((*ks, *us), (StatusCode::OK, StatusCode::OK), "{what}");
        let mut kb = kb.replace(known, "ADDRESS");
        let mut ub = ub.replace(unknown, "ADDRESS");
        if *what == "profile" {
            for (b, a) in [(&mut kb, known), (&mut ub, unknown)] {
                for kind in ["profile", "mail"] {
                    *b = b.replace(&mobileconfig::payload_uuid(kind, a), &format!("UUID-{kind}"));
                }
            }
        }
        assert_eq!(kb, ub, "{what}: the answers differ by more than the address");
    }
    // Not configured: every URL is a 404.
    let off = harness(backend, None).await;
    for path in [
        "/mail/config-v1.1.xml?emailaddress=ec000001%40adm.cfwb.be",
        "/autodiscover/autodiscover.xml?email=ec000001%40adm.cfwb.be",
        "/autoconfig/apple.mobileconfig?email=ec000001%40adm.cfwb.be",
    ] {
        assert_eq!(off.get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    off.stop().await;
    h.stop().await;
}

// The guides.

const GUIDES: [(&str, &str); 6] = [
    ("/guides", "Configurer votre messagerie"),
    ("/guides/outlook", "Configurer Outlook"),
    ("/guides/thunderbird", "Configurer Thunderbird"),
    ("/guides/apple-mail", "Configurer Apple Mail sur Mac"),
    ("/guides/smartphone", "Configurer un smartphone ou une tablette"),
    ("/guides/webmail", "Lire vos emails dans le navigateur (webmail)"),
];

/// Every guide is a French page with the settings' values; without them,
/// it says they are not published; a migrated mailbox's status page
/// links the guides, an enrolled one's does not.
async fn the_guides_give_the_real_values_and_the_status_page_links_them(backend: TestBackend) {
    let h = harness(backend, Some(settings())).await;
    for (path, heading) in GUIDES {
        let (status, ty, page) = body(h.get(path).await).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(ty, "text/html; charset=utf-8", "{path}");
        assert!(page.starts_with("<!doctype html>\n<html lang=\"fr\">"), "{path}");
        assert!(page.contains(&format!("<h1>{heading}</h1>")), "{path}: {page}");
        assert!(page.contains("support@etnic.be"), "{path}: the contact after the migration");
        for mark in [":", ";", "?", "!", "»"] {
            assert!(!page.contains(&format!(" {mark}")), "{path}: an ordinary space before {mark}");
        }
        assert!(!page.contains("« "), "{path}: an ordinary space after «");
        if !matches!(path, "/guides" | "/guides/webmail") {
            for value in [
                "<dd class=\"address\">imap.bma-nouvelle.example</dd>",
                "<dt>Port</dt><dd>993</dd>",
                "<dt>Sécurité</dt><dd>SSL/TLS</dd>",
                "<dd class=\"address\">smtp.bma-nouvelle.example</dd>",
                "<dt>Port</dt><dd>587</dd>",
                "<dt>Sécurité</dt><dd>STARTTLS</dd>",
                "ecXXXXXX@adm.cfwb.be",
            ] {
                assert!(page.contains(value), "{path}: {value} missing");
            }
        }
        assert!(!page.contains("non-publie"), "{path}");
    }
    let index = h.get("/guides").await.text().await.unwrap();
    for (path, _) in &GUIDES[1..] {
        assert!(index.contains(&format!("<a href=\"{path}\">")), "the index links {path}");
    }
    let apple = h.get("/guides/apple-mail").await.text().await.unwrap();
    assert!(apple.contains("<form method=\"get\" action=\"/autoconfig/apple.mobileconfig\" id=\"profil\">"), "{apple}");
    assert!(apple.contains("<label for=\"email\">"), "{apple}");
    let webmail = h.get("/guides/webmail").await.text().await.unwrap();
    assert!(webmail.contains("<a href=\"https://webmail.bma-nouvelle.example/\" id=\"webmail\">"), "{webmail}");

    // The status page: the guides once migrated.
    let address = if backend == TestBackend::Sqlite { "ec830010@adm.cfwb.be" } else { "ec840010@adm.cfwb.be" };
    let (_, token) = h.invited(address).await;
    let (status, page) = h.login(&token, "directrice.dupont").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let actor = Actor::System("test".into());
    h.store.transition(&addr(address), State::Enrolled, &actor, "test", serde_json::json!({}), T0).await.unwrap();
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(!page.contains("href=\"/guides\""), "not before the migration: {page}");
    for state in [State::CutoverScheduled, State::Migrating, State::Migrated] {
        h.store.transition(&addr(address), state, &actor, "test", serde_json::json!({}), T0).await.unwrap();
    }
    let page = h.get(&format!("/formulaire/{token}")).await.text().await.unwrap();
    assert!(page.contains("Votre boîte a migré"), "{page}");
    assert!(page.contains("<a href=\"/guides\">les guides de configuration</a>"), "{page}");
    assert!(page.contains("smartphone\u{a0}: <a href"), "a no-break space before the colon: {page}");
    h.stop().await;

    let off = harness(backend, None).await;
    for (path, _) in GUIDES {
        let page = off.get(path).await.text().await.unwrap();
        assert!(!page.contains("bma-nouvelle"), "{path}");
        if path != "/guides/webmail" {
            assert!(page.contains("id=\"non-publie\""), "{path}: says the values are not published");
        }
    }
    off.stop().await;
}

on_both_backends!(
    thunderbird_reads_its_file_at_both_urls,
    outlook_reads_its_settings_by_post_and_get_in_any_case,
    apple_devices_install_a_profile_that_replaces_itself,
    no_answer_tells_whether_a_mailbox_exists,
    the_guides_give_the_real_values_and_the_status_page_links_them,
);

/// The guides in Chromium: 0 axe-core violations (WCAG 2.0/2.1 A and AA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_are_axe_clean() {
    use bma_tests::browser::{Browser, free_port, start_chromedriver};
    let axe = crate::portal_e2e::axe_source();
    let h = harness(TestBackend::Sqlite, Some(settings())).await;
    let (mut driver, driver_url) = start_chromedriver(free_port(19500..=19599, 7)).await;
    let b = Browser::start(&driver_url).await;
    let mut problems = Vec::new();
    for (path, heading) in GUIDES {
        b.goto(&h.url(path)).await;
        assert!(b.title().await.starts_with(heading), "{path}");
        problems.extend(
            crate::portal_e2e::axe_violations(&b, &axe, path).await.into_iter().map(|p| format!("{path}: {p}")),
        );
    }
    b.quit().await;
    let _ = driver.kill().await;
    h.stop().await;
    assert!(problems.is_empty(), "{problems:#?}");
}
