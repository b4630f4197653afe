//! Mozilla's autoconfiguration file, `config-v1.1.xml`, as Thunderbird
//! and K-9 / Thunderbird for Android fetch it when a person types their
//! address: from `autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=…`
//! and from `<domain>/.well-known/autoconfig/mail/config-v1.1.xml`.
//!
//! The file names the domain, not the person: the user name is the
//! client's placeholder `%EMAILADDRESS%` (the BMA logs in with its whole
//! address), so two addresses of a domain get the same bytes. A request
//! with an address of another domain, or without an address on a host
//! that names none of ours, gets the site's 404.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{AutoconfigSettings, Security, Server, esc, not_found, query_value, settings, xml};
use crate::Portal;

/// `GET` of either path.
pub(crate) async fn answer(State(p): State<Portal>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let Some(s) = settings(&p) else { return not_found(&p) };
    let domain = match query_value(query.as_deref(), &["emailaddress"]) {
        Some(address) => s.mailbox(&address).map(|m| m.domain),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            s.domain_of_host(host, portal_host(&p).as_deref()).map(str::to_owned)
        }
    };
    match domain {
        Some(domain) => {
            let guide = format!("{}/guides/thunderbird", p.settings().base_url);
            xml(StatusCode::OK, config_xml(s, &domain, &guide))
        }
        None => not_found(&p),
    }
}

/// The portal's host name (`[::1]` for an IPv6 literal).
pub(crate) fn portal_host(p: &Portal) -> Option<String> {
    url::Url::parse(&p.settings().base_url).ok().and_then(|u| u.host_str().map(str::to_owned))
}

/// Thunderbird's name of a security mode.
fn socket_type(security: Security) -> &'static str {
    match security {
        Security::Tls => "SSL",
        Security::StartTls => "STARTTLS",
    }
}

fn server(out: &mut String, element: &str, kind: &str, s: &Server) {
    out.push_str(&format!(
        "    <{element} type=\"{kind}\">\n      <hostname>{}</hostname>\n      <port>{}</port>\n      \
         <socketType>{}</socketType>\n      <username>%EMAILADDRESS%</username>\n      \
         <authentication>password-cleartext</authentication>\n    </{element}>\n",
        esc(&s.host),
        s.port,
        socket_type(s.security),
    ));
}

/// The file for `domain` (one of the settings' domains), its
/// documentation link at `guide`.
pub fn config_xml(s: &AutoconfigSettings, domain: &str, guide: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n");
    out.push_str(&format!(
        "  <emailProvider id=\"{d}\">\n    <domain>{d}</domain>\n    <displayName>{}</displayName>\n    \
         <displayShortName>{}</displayShortName>\n",
        esc(&s.display_name),
        esc(&s.short_name),
        d = esc(domain),
    ));
    server(&mut out, "incomingServer", "imap", &s.imap);
    server(&mut out, "outgoingServer", "smtp", &s.submission);
    out.push_str(&format!(
        "    <documentation url=\"{}\">\n      <descr lang=\"fr\">Configurer Thunderbird pour votre boîte mail \
         administrative</descr>\n    </documentation>\n",
        esc(guide)
    ));
    out.push_str("  </emailProvider>\n</clientConfig>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoconfig::tests::settings;

    #[test]
    fn the_file_names_the_servers_and_escapes_what_it_writes() {
        let mut s = settings();
        s.display_name = "BMA <FWB> & \"co\"".to_owned();
        let text = config_xml(&s, "adm.cfwb.be", "https://bma.example/guides/thunderbird?a=1&b=2");
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="adm.cfwb.be">
    <domain>adm.cfwb.be</domain>
    <displayName>BMA &lt;FWB&gt; &amp; &quot;co&quot;</displayName>
    <displayShortName>BMA</displayShortName>
    <incomingServer type="imap">
      <hostname>imap.bma.example</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.bma.example</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
    <documentation url="https://bma.example/guides/thunderbird?a=1&amp;b=2">
      <descr lang="fr">Configurer Thunderbird pour votre boîte mail administrative</descr>
    </documentation>
  </emailProvider>
</clientConfig>
"#;
        assert_eq!(text, expected);
    }
}
