//! Building the messages: headers, text and HTML alternatives, our own
//! Message-ID, and the VERP return path.
//!
//! VERP (variable envelope return path): each recipient gets its own
//! envelope sender, `bounces+ec012345=adm.cfwb.be@bma.example`, so a
//! delivery status notification names the mailbox it is about even when
//! its content is mangled.

use lettre::Address;
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::templates::Rendered;

/// The SMTP envelope of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM (the VERP return path).
    pub from: String,
    /// RCPT TO.
    pub to: Vec<String>,
}

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The envelope.
    pub envelope: Envelope,
    /// The message, as sent (CRLF line ends).
    pub raw: Vec<u8>,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
}

/// Why a message cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An address is not valid.
    #[error("invalid address '{0}'")]
    Address(String),
    /// lettre refused the message.
    #[error("cannot build the message: {0}")]
    Message(String),
}

/// The VERP return path of `recipient` for the bounce address
/// `bounces@domain`: `bounces+local=rdomain@domain`.
pub fn verp(bounce_address: &str, recipient: &str) -> String {
    let (b_local, b_domain) = bounce_address.split_once('@').unwrap_or((bounce_address, ""));
    format!("{b_local}+{}@{b_domain}", recipient.replace('@', "="))
}

/// The recipient encoded in a VERP address, if it is one of ours.
pub fn parse_verp(bounce_address: &str, address: &str) -> Option<String> {
    let (b_local, b_domain) = bounce_address.split_once('@')?;
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(b_domain) {
        return None;
    }
    let tag = local.strip_prefix(b_local)?.strip_prefix('+')?;
    let (r_local, r_domain) = tag.rsplit_once('=')?;
    Some(format!("{r_local}@{r_domain}").to_lowercase())
}

/// Builds a message from `from` (display name and address) to `to`, with the
/// given Message-ID (`id@domain`, without brackets) and return path.
pub fn build(
    from_name: &str,
    from_address: &str,
    to: &str,
    rendered: &Rendered,
    message_id: &str,
    return_path: &str,
) -> Result<OutgoingEmail, BuildError> {
    // Built from its parts, never a string parsed back: a display name with
    // parentheses, commas or quotes is kept as it is (encoded by lettre).
    let from_addr: Address = from_address.parse().map_err(|_| BuildError::Address(from_address.to_owned()))?;
    let name = from_name.trim();
    let from = Mailbox::new((!name.is_empty()).then(|| name.to_owned()), from_addr);
    let to_mailbox: Mailbox = to.parse().map_err(|_| BuildError::Address(to.to_owned()))?;
    let builder = lettre::Message::builder()
        .from(from)
        .to(to_mailbox)
        .subject(rendered.subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .user_agent("bma".to_owned());
    let message = match &rendered.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(rendered.text.clone(), html.clone())),
        None => builder.singlepart(SinglePart::plain(rendered.text.clone())),
    }
    .map_err(|e| BuildError::Message(e.to_string()))?;
    Ok(OutgoingEmail {
        envelope: Envelope { from: return_path.to_owned(), to: vec![to.to_owned()] },
        raw: message.formatted(),
        message_id: message_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verp_round_trip() {
        let cases = [
            ("bounces@bma.test", "ec012345@adm.cfwb.be", "bounces+ec012345=adm.cfwb.be@bma.test"),
            ("retour@sgne.example", "po000042@adm.cfwb.be", "retour+po000042=adm.cfwb.be@sgne.example"),
        ];
        for (bounce, rcpt, expected) in cases {
            assert_eq!(verp(bounce, rcpt), expected);
            assert_eq!(parse_verp(bounce, expected).as_deref(), Some(rcpt));
        }
        assert_eq!(parse_verp("bounces@bma.test", "someone@bma.test"), None);
        assert_eq!(parse_verp("bounces@bma.test", "bounces+x=y@other.test"), None);
    }

    #[test]
    fn message_has_our_id_and_both_parts() {
        let r = Rendered {
            subject: "Migration de votre boîte".into(),
            text: "Bonjour\n".into(),
            html: Some("<p>Bonjour</p>".into()),
        };
        let m = build("SGNE", "migrationbma@bma.test", "ec012345@adm.cfwb.be", &r, "abc@bma.test", "b+x=y@bma.test")
            .unwrap();
        let raw = String::from_utf8(m.raw).unwrap();
        assert!(raw.contains("Message-ID: <abc@bma.test>"), "{raw}");
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("=?utf-8?b?") || raw.contains("Subject: Migration de votre"), "{raw}");
        assert_eq!(m.envelope.from, "b+x=y@bma.test");
        assert!(build("SGNE", "not an address", "x", &r, "a@b", "c@d").is_err());
    }

    /// The display name survives whatever it holds (it used to be dropped
    /// when `"name <address>"` failed to parse back).
    #[test]
    fn the_sender_keeps_its_display_name() {
        let r = Rendered { subject: "S".into(), text: "T\n".into(), html: None };
        let cases = [
            ("SGNE — Migration BMA", "SGNE — Migration BMA <migrationbma@bma.test>"),
            (
                "Service général du Numérique éducatif (SGNE)",
                "Service général du Numérique éducatif (SGNE) <migrationbma@bma.test>",
            ),
            ("SGNE (Migration)", "SGNE (Migration) <migrationbma@bma.test>"),
            ("Dupont, Marie", "Dupont, Marie <migrationbma@bma.test>"),
            ("", "migrationbma@bma.test"),
        ];
        for (name, expected) in cases {
            let m =
                build(name, "migrationbma@bma.test", "ec012345@adm.cfwb.be", &r, "a@bma.test", "b@bma.test").unwrap();
            // As a mail client shows it (encoded words decoded, quotes dropped).
            let from = crate::inspect::header_value(&m.raw, "From").unwrap().replace('"', "");
            assert_eq!(from, expected, "{name:?}");
        }
    }
}
