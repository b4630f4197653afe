//! Outlook's POX Autodiscover: the client `POST`s its request (schema
//! `outlook/requestschema/2006`: the address and the response schema it
//! accepts) to `/autodiscover/autodiscover.xml` on `autodiscover.<domain>`
//! or `<domain>`, in whatever case it likes; some clients `GET` it with
//! `?email=`. The answer (`outlook/responseschema/2006a`) is an `email`
//! account with its IMAP and SMTP settings, the whole address as the login.
//!
//! The request is read with quick-xml's namespace-aware reader and
//! refused before anything is built from it when it has a document type
//! (no DTD, so no external entity, no entity expansion) or an entity
//! reference other than XML's five and character references. A body that
//! is not such a request is a 400 with an Autodiscover `<Error>` (code
//! 600, Invalid Request); a response schema we do not offer is an
//! `<Error>` with code 601, as Exchange answers it; an address of
//! another domain is the site's 404.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};

use super::{AutoconfigSettings, Security, Server, esc, not_found, query_value, settings, xml};
use crate::Portal;

/// The path, in its lower-case form (matched in any case).
pub const PATH: &str = "/autodiscover/autodiscover.xml";

/// The namespace of Outlook's requests.
pub const REQUEST_SCHEMA: &str = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
/// The namespace of the response's root element.
pub const RESPONSE_ROOT_SCHEMA: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
/// The response schema we answer in (Outlook's).
pub const RESPONSE_SCHEMA: &str = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// What an Outlook request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `<EMailAddress>`, trimmed.
    pub email: String,
    /// `<AcceptableResponseSchema>`, trimmed.
    pub schema: String,
}

/// Why a body is not a request we read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A `<!DOCTYPE …>`: refused whatever it declares.
    #[error("a document type declaration")]
    Doctype,
    /// An entity reference that is neither XML's own nor a character.
    #[error("an entity reference")]
    Entity,
    /// Not well-formed XML (or not UTF-8).
    #[error("not well-formed: {0}")]
    Malformed(String),
    /// Well-formed, but not an Autodiscover request of schema 2006.
    #[error("not an Outlook Autodiscover request: {0}")]
    NotARequest(&'static str),
}

impl RequestError {
    /// Its kind, for the log (never the body's text).
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::Doctype => "doctype",
            RequestError::Entity => "entity",
            RequestError::Malformed(_) => "malformed",
            RequestError::NotARequest(_) => "not a request",
        }
    }
}

/// How deep a request may nest (its own depth is 3).
const MAX_DEPTH: usize = 16;

/// Reads a request; see the module's rules.
pub fn parse_request(body: &[u8]) -> Result<Request, RequestError> {
    let text = std::str::from_utf8(body).map_err(|_| RequestError::Malformed("not UTF-8".to_owned()))?;
    let mut reader = NsReader::from_str(text);
    // Element paths from the root, by local name, each in its namespace.
    let mut path: Vec<(bool, String)> = Vec::new();
    let mut email: Option<String> = None;
    let mut schema: Option<String> = None;
    let mut roots = 0;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| RequestError::Malformed(e.to_string()))?;
        let ours = matches!(ns, ResolveResult::Bound(Namespace(n)) if n == REQUEST_SCHEMA);
        match event {
            Event::DocType(_) => return Err(RequestError::Doctype),
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if path.is_empty() {
                    roots += 1;
                    if roots > 1 || !ours || name != "Autodiscover" {
                        return Err(RequestError::NotARequest("the root is not Autodiscover of schema 2006"));
                    }
                }
                path.push((ours, name));
                if path.len() > MAX_DEPTH {
                    return Err(RequestError::NotARequest("nested too deep"));
                }
            }
            Event::Empty(_) if path.is_empty() => return Err(RequestError::NotARequest("the root is empty")),
            Event::Empty(_) => {}
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                append(&path, &mut email, &mut schema, &text);
            }
            Event::CData(c) => {
                let text = c.xml10_content();
                append(&path, &mut email, &mut schema, &text);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => s.to_owned(),
                        None => return Err(RequestError::Entity),
                    },
                    Err(e) => return Err(RequestError::Malformed(e.to_string())),
                };
                append(&path, &mut email, &mut schema, &resolved);
            }
            Event::Eof if path.is_empty() => break,
            Event::Eof => return Err(RequestError::Malformed("an element is not closed".to_owned())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if roots == 0 {
        return Err(RequestError::NotARequest("no root element"));
    }
    let email = email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    let email = email.ok_or(RequestError::NotARequest("no EMailAddress"))?;
    Ok(Request { email, schema: schema.map(|s| s.trim().to_owned()).unwrap_or_default() })
}

/// Text at `Autodiscover/Request/EMailAddress` or
/// `…/AcceptableResponseSchema` (all in the request's namespace) goes to
/// its value; text elsewhere is ignored.
fn append(path: &[(bool, String)], email: &mut Option<String>, schema: &mut Option<String>, text: &str) {
    let [(true, root), (true, request), (true, leaf)] = path else { return };
    if root != "Autodiscover" || request != "Request" {
        return;
    }
    match leaf.as_str() {
        "EMailAddress" => email.get_or_insert_with(String::new).push_str(text),
        "AcceptableResponseSchema" => schema.get_or_insert_with(String::new).push_str(text),
        _ => {}
    }
}

/// `POST`: Outlook's request.
pub(crate) async fn post(State(p): State<Portal>, _headers: HeaderMap, body: Bytes) -> Response {
    let Some(s) = settings(&p) else { return not_found(&p) };
    let request = match parse_request(&body) {
        Ok(r) => r,
        Err(e) => {
            // The kind only: a parser's message may quote the body.
            tracing::debug!(kind = e.kind(), "autodiscover request refused");
            return xml(StatusCode::BAD_REQUEST, error_xml(ErrorCode::InvalidRequest, p.now()));
        }
    };
    if !request.schema.is_empty() && request.schema != RESPONSE_SCHEMA {
        return xml(StatusCode::OK, error_xml(ErrorCode::SchemaNotAvailable, p.now()));
    }
    answer_for(&p, s, &request.email)
}

/// `GET ?email=` (or `?emailaddress=`): the same answer.
pub(crate) async fn get(State(p): State<Portal>, RawQuery(query): RawQuery) -> Response {
    let Some(s) = settings(&p) else { return not_found(&p) };
    match query_value(query.as_deref(), &["email", "emailaddress"]) {
        Some(email) => answer_for(&p, s, &email),
        None => xml(StatusCode::BAD_REQUEST, error_xml(ErrorCode::InvalidRequest, p.now())),
    }
}

fn answer_for(p: &Portal, s: &AutoconfigSettings, email: &str) -> Response {
    match s.mailbox(email) {
        Some(m) => xml(StatusCode::OK, response_xml(s, &m.address)),
        None => not_found(p),
    }
}

/// Outlook's name of a security mode (`Encryption`: `SSL` is TLS from
/// the first byte, `TLS` is STARTTLS).
fn encryption(security: Security) -> &'static str {
    match security {
        Security::Tls => "SSL",
        Security::StartTls => "TLS",
    }
}

fn protocol(out: &mut String, kind: &str, s: &Server, login: &str) {
    out.push_str(&format!(
        "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{}</Server>\n        <Port>{}</Port>\n        \
         <LoginName>{}</LoginName>\n        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        \
         <SSL>on</SSL>\n        <Encryption>{}</Encryption>\n        <AuthRequired>on</AuthRequired>\n",
        esc(&s.host),
        s.port,
        esc(login),
        encryption(s.security),
    ));
    if kind == "SMTP" {
        out.push_str("        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n");
    }
    out.push_str("      </Protocol>\n");
}

/// The settings of `address` (one of ours), schema 2006a.
pub fn response_xml(s: &AutoconfigSettings, address: &str) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{RESPONSE_ROOT_SCHEMA}\">\n  \
         <Response xmlns=\"{RESPONSE_SCHEMA}\">\n    <User>\n      <DisplayName>{}</DisplayName>\n    </User>\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
        esc(&s.display_name)
    );
    protocol(&mut out, "IMAP", &s.imap, address);
    protocol(&mut out, "SMTP", &s.submission, address);
    out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    out
}

/// The errors we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 600: the body is not a request.
    InvalidRequest,
    /// 601: the response schema asked for is not one we give.
    SchemaNotAvailable,
}

impl ErrorCode {
    fn code_and_message(self) -> (u16, &'static str) {
        match self {
            ErrorCode::InvalidRequest => (600, "Invalid Request"),
            ErrorCode::SchemaNotAvailable => (601, "Provider is not available"),
        }
    }
}

/// An `<Error>` response at `now` (its `Time` and `Id`, as Exchange writes them).
pub fn error_xml(code: ErrorCode, now: time::OffsetDateTime) -> String {
    let (code, message) = code.code_and_message();
    let time = format!("{:02}:{:02}:{:02}.{:07}", now.hour(), now.minute(), now.second(), now.nanosecond() / 100);
    let id = now.unix_timestamp().rem_euclid(1_000_000_000);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{RESPONSE_ROOT_SCHEMA}\">\n  <Response>\n    \
         <Error Time=\"{time}\" Id=\"{id}\">\n      <ErrorCode>{code}</ErrorCode>\n      <Message>{message}</Message>\n      \
         <DebugData />\n    </Error>\n  </Response>\n</Autodiscover>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoconfig::tests::settings;

    fn request(email: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{REQUEST_SCHEMA}\">\n <Request>\n  \
             <EMailAddress>{email}</EMailAddress>\n  <AcceptableResponseSchema>{RESPONSE_SCHEMA}</AcceptableResponseSchema>\n \
             </Request>\n</Autodiscover>"
        )
    }

    #[test]
    fn a_request_is_read_with_its_references() {
        let r = parse_request(request("ec000001@adm.cfwb.be").as_bytes()).unwrap();
        assert_eq!(r, Request { email: "ec000001@adm.cfwb.be".to_owned(), schema: RESPONSE_SCHEMA.to_owned() });
        let r = parse_request(request(" o&apos;brien&#38;co&#x40;adm.cfwb.be ").as_bytes()).unwrap();
        assert_eq!(r.email, "o'brien&co@adm.cfwb.be");
        // A prefix instead of the default namespace, CDATA, a comment.
        let prefixed = format!(
            "<a:Autodiscover xmlns:a=\"{REQUEST_SCHEMA}\"><a:Request><!-- x --><a:EMailAddress><![CDATA[x@y.be]]>\
             </a:EMailAddress></a:Request></a:Autodiscover>"
        );
        assert_eq!(parse_request(prefixed.as_bytes()).unwrap().email, "x@y.be");
    }

    #[test]
    fn what_is_not_a_request_is_refused() {
        let xxe = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
             <Autodiscover xmlns=\"{REQUEST_SCHEMA}\"><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"
        );
        let entity = format!(
            "<Autodiscover xmlns=\"{REQUEST_SCHEMA}\"><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"
        );
        let other_ns =
            "<Autodiscover xmlns=\"urn:x\"><Request><EMailAddress>a@b.be</EMailAddress></Request></Autodiscover>";
        let no_ns = "<Autodiscover><Request><EMailAddress>a@b.be</EMailAddress></Request></Autodiscover>";
        let wrong_place =
            format!("<Autodiscover xmlns=\"{REQUEST_SCHEMA}\"><EMailAddress>a@b.be</EMailAddress></Autodiscover>");
        let unclosed = request("a@b.be").replace("</Autodiscover>", "");
        let two_roots = format!("{}{}", request("a@b.be"), request("c@b.be"));
        let deep = format!(
            "<Autodiscover xmlns=\"{REQUEST_SCHEMA}\">{}{}</Autodiscover>",
            "<x>".repeat(20),
            "</x>".repeat(20)
        );
        for (body, expected) in [
            (xxe.as_str(), Some(RequestError::Doctype)),
            (entity.as_str(), Some(RequestError::Entity)),
            (other_ns, None),
            (no_ns, None),
            (wrong_place.as_str(), None),
            (two_roots.as_str(), None),
            (deep.as_str(), None),
            ("<Autodiscover", None),
            (unclosed.as_str(), None),
            ("", None),
            ("not xml at all", None),
            ("<a></b>", None),
        ] {
            let got = parse_request(body.as_bytes());
            assert!(got.is_err(), "{body:?} was read: {got:?}");
            if let Some(e) = expected {
                assert_eq!(got.unwrap_err(), e, "{body:?}");
            }
        }
        assert!(parse_request(b"\xff\xfe<a/>").is_err());
    }

    #[test]
    fn the_response_has_both_protocols_with_the_address_escaped() {
        let text = response_xml(&settings(), "o'brien&co@adm.cfwb.be");
        for part in [
            "<Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">",
            "<Type>IMAP</Type>\n        <Server>imap.bma.example</Server>\n        <Port>993</Port>\n        \
             <LoginName>o&apos;brien&amp;co@adm.cfwb.be</LoginName>",
            "<Encryption>SSL</Encryption>",
            "<Type>SMTP</Type>\n        <Server>smtp.bma.example</Server>\n        <Port>587</Port>",
            "<Encryption>TLS</Encryption>\n        <AuthRequired>on</AuthRequired>\n        <UsePOPAuth>off</UsePOPAuth>",
        ] {
            assert!(text.contains(part), "{part} missing from\n{text}");
        }
        assert_eq!(text.matches("<SPA>off</SPA>").count(), 2);
    }

    #[test]
    fn an_error_has_its_code_and_time() {
        let at = time::macros::datetime!(2024-04-22 09:05:07.1234567 UTC);
        let text = error_xml(ErrorCode::InvalidRequest, at);
        assert!(text.contains("<Error Time=\"09:05:07.1234567\" Id=\""), "{text}");
        assert!(text.contains("<ErrorCode>600</ErrorCode>\n      <Message>Invalid Request</Message>"), "{text}");
        assert!(error_xml(ErrorCode::SchemaNotAvailable, at).contains("<ErrorCode>601</ErrorCode>"));
    }
}
