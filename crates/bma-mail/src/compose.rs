//! One outgoing-email composer: a template rendered, the message built
//! with our own Message-ID and the recipient's VERP return path, in one
//! call, for every sender of the campaign (the portal's confirmation,
//! backup verification and notices; the engine's mail 1, reminders and
//! deadline list).
//!
//! Rules:
//! - the Message-ID is `{kind}.{mailbox id or 0}.{16 random characters}@{domain}`,
//!   so a message read back in a mailbox says what it was and for whom;
//! - the envelope sender is the VERP address of the recipient
//!   ([`crate::verp`]), so a bounce names its mailbox;
//! - the `From` is built from the sender's name and address, never a
//!   string parsed back ([`crate::message::build`]);
//! - what to send and when is the caller's: the [`Outgoing`] it gets is
//!   queued in the store's outbox, never sent from here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::Serialize;

use crate::message::{BuildError, build};
use crate::templates::{TemplateError, TemplateKind, Templates};
use crate::verp;

/// Who the campaign's emails come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// Display name (`Service général du Numérique éducatif (SGNE)`).
    pub name: String,
    /// Address (`migrationbma@cfwb.be`).
    pub address: String,
}

/// Where an email goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct To<'a> {
    /// The recipient's address (RCPT TO and `To`).
    pub address: &'a str,
    /// The mailbox the email is about, if any (named in the Message-ID).
    pub mailbox_id: Option<i64>,
}

/// An email composed, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// What it is.
    pub kind: TemplateKind,
    /// RCPT TO.
    pub recipient: String,
    /// MAIL FROM: the recipient's VERP return path.
    pub return_path: String,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// Its subject, as rendered.
    pub subject: String,
    /// The message as it will be sent (CRLF line ends).
    pub raw: Vec<u8>,
}

impl Outgoing {
    /// The message as text, the way the outbox stores it.
    pub fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Why an email cannot be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The template could not be rendered (a variable missing, …).
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The message could not be built (an invalid address, …).
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Renders templates into messages ready to send.
#[derive(Debug)]
pub struct Composer {
    templates: Templates,
    sender: Sender,
    bounce_address: String,
    message_id_domain: String,
}

impl Composer {
    /// A composer: the templates, who sends, the bounce address whose VERP
    /// form each recipient gets (`bounces@domain`), and the domain of our
    /// Message-IDs.
    pub fn new(templates: Templates, sender: Sender, bounce_address: &str, message_id_domain: &str) -> Composer {
        Composer {
            templates,
            sender,
            bounce_address: bounce_address.to_owned(),
            message_id_domain: message_id_domain.to_owned(),
        }
    }

    /// The templates (to render without sending, e.g. a preview).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Who sends.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The email of `kind` to `to`, rendered with `context`.
    pub fn compose<C: Serialize>(&self, kind: TemplateKind, to: To<'_>, context: &C) -> Result<Outgoing, ComposeError> {
        self.compose_with_id(kind, to, context, self.message_id(kind, to.mailbox_id))
    }

    /// [`Composer::compose`] with a Message-ID the caller can compute
    /// again (`{kind}.{mailbox id}.{unique}@{domain}`): an email put
    /// straight into a mailbox (mail 2 into the legacy INBOX) is found
    /// again by it after a crash, so it is never put there twice.
    /// `unique` is letters, digits, `-` and `_` only.
    pub fn compose_stable<C: Serialize>(
        &self,
        kind: TemplateKind,
        to: To<'_>,
        context: &C,
        unique: &str,
    ) -> Result<Outgoing, ComposeError> {
        let unique: String = unique.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
        let message_id = format!("{}.{}.{unique}@{}", kind.name(), to.mailbox_id.unwrap_or(0), self.message_id_domain);
        self.compose_with_id(kind, to, context, message_id)
    }

    fn compose_with_id<C: Serialize>(
        &self,
        kind: TemplateKind,
        to: To<'_>,
        context: &C,
        message_id: String,
    ) -> Result<Outgoing, ComposeError> {
        let rendered = self.templates.render(kind, context)?;
        let return_path = verp(&self.bounce_address, to.address);
        let email = build(&self.sender.name, &self.sender.address, to.address, &rendered, &message_id, &return_path)?;
        Ok(Outgoing {
            kind,
            recipient: to.address.to_owned(),
            return_path,
            message_id,
            subject: rendered.subject,
            raw: email.raw,
        })
    }

    /// A new Message-ID (without brackets) for an email of `kind`.
    fn message_id(&self, kind: TemplateKind, mailbox_id: Option<i64>) -> String {
        let mut bytes = [0u8; 12];
        rand::rng().fill_bytes(&mut bytes);
        let unique = URL_SAFE_NO_PAD.encode(bytes);
        format!("{}.{}.{unique}@{}", kind.name(), mailbox_id.unwrap_or(0), self.message_id_domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer() -> Composer {
        let templates = Templates::load(None).expect("built-in templates");
        let sender = Sender { name: "SGNE (migration)".to_owned(), address: "migrationbma@cfwb.be".to_owned() };
        Composer::new(templates, sender, "bounces@bma.test", "cfwb.be")
    }

    #[test]
    fn one_call_renders_builds_and_names_the_email() {
        let context = serde_json::json!({
            "deadline": "13 mai 2024", "count": 0, "mailboxes": [], "sender_name": "SGNE",
        });
        let to = To { address: "equipe@cfwb.be", mailbox_id: None };
        let out = composer().compose(TemplateKind::DeadlineWatch, to, &context).expect("composed");
        assert_eq!(out.recipient, "equipe@cfwb.be");
        assert_eq!(out.return_path, "bounces+equipe=cfwb.be@bma.test");
        let (head, domain) = out.message_id.rsplit_once('@').expect("an @");
        assert_eq!(domain, "cfwb.be");
        let parts: Vec<&str> = head.split('.').collect();
        assert_eq!(parts[..2], ["deadline_watch", "0"]);
        assert_eq!(parts[2].len(), 16);
        let raw = out.raw_text();
        assert!(raw.contains(&format!("Message-ID: <{}>", out.message_id)), "{raw}");
        assert!(raw.contains("From: =?utf-8?b?U0dORSAobWlncmF0aW9uKQ==?= <migrationbma@cfwb.be>"), "{raw}");
        assert!(!out.subject.is_empty());
    }

    #[test]
    fn message_ids_differ_and_name_the_mailbox() {
        let c = composer();
        let a = c.message_id(TemplateKind::Reminder, Some(42));
        let b = c.message_id(TemplateKind::Reminder, Some(42));
        assert_ne!(a, b);
        assert!(a.starts_with("reminder.42."), "{a}");
    }

    #[test]
    fn a_missing_variable_is_an_error() {
        let to = To { address: "ec012345@adm.cfwb.be", mailbox_id: Some(1) };
        let err = composer().compose(TemplateKind::Invitation, to, &serde_json::json!({})).unwrap_err();
        assert!(matches!(err, ComposeError::Template(_)), "{err}");
    }
}
