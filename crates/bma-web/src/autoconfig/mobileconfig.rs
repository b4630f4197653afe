//! A configuration profile (`.mobileconfig`) for Apple Mail on macOS,
//! iPhone and iPad: a `Configuration` holding one `com.apple.mail.managed`
//! payload, the IMAP account of one address, its login the address, the
//! outgoing password the incoming one, and no password at all (the device
//! asks for it when the profile is installed).
//!
//! The payloads' identifiers and UUIDs are UUIDs v5 of the address under
//! a namespace of ours, so the profile of an address is the same every
//! time it is downloaded and installing it again replaces the account
//! instead of adding a second one. With a signing certificate the profile
//! is a CMS SignedData (DER, see [`super::sign`]), which the device shows
//! as verified; without one it is the plist itself.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plist::{Dictionary, Value};
use uuid::Uuid;

use super::{AutoconfigSettings, Mailbox, Server, not_found, query_value, settings};
use crate::Portal;

/// The namespace of our payload UUIDs (a fixed random UUID: changing it
/// makes every installed profile a different one).
const NAMESPACE: Uuid = Uuid::from_u128(0x6d2f_4b8e_93a1_4c57_b0e2_5f1d_8a34_c9e7);

/// The content type devices install from.
pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// `GET /autoconfig/apple.mobileconfig?email=…`: the profile as a download.
pub(crate) async fn answer(State(p): State<Portal>, RawQuery(query): RawQuery) -> Response {
    let Some(s) = settings(&p) else { return not_found(&p) };
    let Some(m) = query_value(query.as_deref(), &["email", "emailaddress"]).and_then(|e| s.mailbox(&e)) else {
        return not_found(&p);
    };
    let plist = profile(s, &m);
    let body = match &s.signer {
        None => plist,
        Some(signer) => match signer.sign(&plist) {
            Ok(signed) => signed,
            Err(e) => {
                tracing::error!(error = %e, "signing a configuration profile failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "signing failed").into_response();
            }
        },
    };
    let disposition = format!("attachment; filename=\"{}\"", file_name(&m));
    let mut res = (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// `bma-adm.cfwb.be.mobileconfig`: the domain's, so the file name never
/// carries a local part's odd characters into a header.
pub fn file_name(m: &Mailbox) -> String {
    format!("bma-{}.mobileconfig", m.domain)
}

/// The UUID of one payload (`profile` or `mail`) of an address, upper
/// case as Apple writes them. Addresses differing only by case share it.
pub fn payload_uuid(kind: &str, address: &str) -> String {
    let name = format!("{kind}:{}", address.to_lowercase());
    Uuid::new_v5(&NAMESPACE, name.as_bytes()).hyphenated().to_string().to_uppercase()
}

/// `be.cfwb.adm` from `adm.cfwb.be`: the reversed domain of identifiers.
fn reversed(domain: &str) -> String {
    domain.split('.').rev().collect::<Vec<_>>().join(".")
}

fn server(d: &mut Dictionary, side: &str, s: &Server, address: &str) {
    d.insert(format!("{side}MailServerAuthentication"), Value::String("EmailAuthPassword".to_owned()));
    d.insert(format!("{side}MailServerHostName"), Value::String(s.host.clone()));
    d.insert(format!("{side}MailServerPortNumber"), Value::Integer(s.port.into()));
    // Apple's UseSSL is TLS either way: implicit on 993/465, STARTTLS on 143/587.
    d.insert(format!("{side}MailServerUseSSL"), Value::Boolean(true));
    d.insert(format!("{side}MailServerUsername"), Value::String(address.to_owned()));
}

/// The profile of `m` as an XML plist (unsigned).
pub fn profile(s: &AutoconfigSettings, m: &Mailbox) -> Vec<u8> {
    let base = format!("{}.bma", reversed(&m.domain));
    let profile_uuid = payload_uuid("profile", &m.address);
    let mail_uuid = payload_uuid("mail", &m.address);

    let mut mail = Dictionary::new();
    mail.insert("EmailAccountDescription".to_owned(), Value::String(format!("{} ({})", s.short_name, m.address)));
    mail.insert("EmailAccountType".to_owned(), Value::String("EmailTypeIMAP".to_owned()));
    mail.insert("EmailAddress".to_owned(), Value::String(m.address.clone()));
    server(&mut mail, "Incoming", &s.imap, &m.address);
    server(&mut mail, "Outgoing", &s.submission, &m.address);
    mail.insert("OutgoingPasswordSameAsIncomingPassword".to_owned(), Value::Boolean(true));
    mail.insert("PayloadDisplayName".to_owned(), Value::String(s.display_name.clone()));
    mail.insert("PayloadIdentifier".to_owned(), Value::String(format!("{base}.mail.{mail_uuid}")));
    mail.insert("PayloadType".to_owned(), Value::String("com.apple.mail.managed".to_owned()));
    mail.insert("PayloadUUID".to_owned(), Value::String(mail_uuid));
    mail.insert("PayloadVersion".to_owned(), Value::Integer(1.into()));

    let mut top = Dictionary::new();
    top.insert("PayloadContent".to_owned(), Value::Array(vec![Value::Dictionary(mail)]));
    top.insert(
        "PayloadDescription".to_owned(),
        Value::String(format!(
            "Configure la boîte mail administrative {} dans Mail (lecture IMAP, envoi SMTP). Le mot de passe \
             vous sera demandé à l'installation.",
            m.address
        )),
    );
    top.insert("PayloadDisplayName".to_owned(), Value::String(format!("{} – {}", s.short_name, m.address)));
    top.insert("PayloadIdentifier".to_owned(), Value::String(format!("{base}.{profile_uuid}")));
    top.insert("PayloadOrganization".to_owned(), Value::String(s.display_name.clone()));
    top.insert("PayloadRemovalDisallowed".to_owned(), Value::Boolean(false));
    top.insert("PayloadType".to_owned(), Value::String("Configuration".to_owned()));
    top.insert("PayloadUUID".to_owned(), Value::String(profile_uuid));
    top.insert("PayloadVersion".to_owned(), Value::Integer(1.into()));

    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    if let Err(e) = Value::Dictionary(top).to_writer_xml(&mut out) {
        tracing::error!(error = %e, "writing a plist failed");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoconfig::tests::settings;

    fn read(bytes: &[u8]) -> Dictionary {
        plist::Value::from_reader_xml(bytes).unwrap().into_dictionary().unwrap()
    }

    #[test]
    fn the_profile_is_one_mail_payload_without_a_password() {
        let s = settings();
        let m = s.mailbox("o'brien&co@adm.cfwb.be").unwrap();
        let bytes = profile(&s, &m);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("brien&amp;co@adm.cfwb.be") && !text.contains("&co@"), "escaped: {text}");
        let top = read(&bytes);
        assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
        let content = top["PayloadContent"].as_array().unwrap();
        assert_eq!(content.len(), 1);
        let mail = content[0].as_dictionary().unwrap();
        for (key, value) in [
            ("PayloadType", "com.apple.mail.managed"),
            ("EmailAccountType", "EmailTypeIMAP"),
            ("EmailAddress", "o'brien&co@adm.cfwb.be"),
            ("IncomingMailServerHostName", "imap.bma.example"),
            ("IncomingMailServerUsername", "o'brien&co@adm.cfwb.be"),
            ("OutgoingMailServerHostName", "smtp.bma.example"),
            ("OutgoingMailServerUsername", "o'brien&co@adm.cfwb.be"),
        ] {
            assert_eq!(mail[key].as_string(), Some(value), "{key}");
        }
        assert_eq!(mail["IncomingMailServerPortNumber"].as_unsigned_integer(), Some(993));
        assert_eq!(mail["OutgoingMailServerPortNumber"].as_unsigned_integer(), Some(587));
        assert_eq!(mail["OutgoingPasswordSameAsIncomingPassword"].as_boolean(), Some(true));
        let passwords: Vec<&String> =
            mail.keys().filter(|k| k.ends_with("Password") && *k != "OutgoingPasswordSameAsIncomingPassword").collect();
        assert!(passwords.is_empty(), "no password: {passwords:?}");
        assert!(mail["PayloadIdentifier"].as_string().unwrap().starts_with("be.cfwb.adm.bma.mail."));
    }

    #[test]
    fn uuids_are_stable_per_address_and_differ_between_addresses() {
        let a = payload_uuid("profile", "ec000001@adm.cfwb.be");
        assert_eq!(a, payload_uuid("profile", "EC000001@adm.cfwb.be"));
        assert_ne!(a, payload_uuid("profile", "ec000002@adm.cfwb.be"));
        assert_ne!(a, payload_uuid("mail", "ec000001@adm.cfwb.be"));
        let parsed = Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 5);
        assert_eq!(a, a.to_uppercase());
    }
}
