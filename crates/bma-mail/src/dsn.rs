//! Delivery status notifications (RFC 3464) as they arrive in the bounce
//! mailbox: which recipient failed, with which status, and which of our
//! messages it was.
//!
//! A bounce names its mailbox three ways, tried in this order by the
//! campaign: the VERP address it was sent back to (`To:`, set by us per
//! recipient, the most reliable), the `Final-Recipient` / `Original-Recipient`
//! fields of the report, and the Message-ID of the returned original.
//!
//! Only what a DSN needs is parsed: header fields (unfolded), multipart
//! boundaries (nested), and the per-recipient field groups of the
//! `message/delivery-status` part. A message that is not a report (an
//! auto-reply, a human answer) gives `None`, never an error.

/// One recipient's status in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient`, without its type (`rfc822;`), lower-cased.
    pub final_recipient: Option<String>,
    /// `Original-Recipient`, the same way.
    pub original_recipient: Option<String>,
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: String,
    /// Enhanced status code (`5.1.1`).
    pub status: String,
    /// `Diagnostic-Code`, without its type, if any.
    pub diagnostic: Option<String>,
}

impl RecipientStatus {
    /// A permanent failure: the mail will never arrive.
    pub fn failed(&self) -> bool {
        self.action.eq_ignore_ascii_case("failed") || self.status.starts_with('5')
    }
}

/// A parsed delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// Addresses of the `To:` header (the VERP return path), lower-cased.
    pub to: Vec<String>,
    /// The recipients reported.
    pub recipients: Vec<RecipientStatus>,
    /// Message-ID of the returned original, without brackets, if present.
    pub original_message_id: Option<String>,
}

/// Parses a raw message as a DSN; `None` if it is not one.
pub fn parse(raw: &[u8]) -> Option<Dsn> {
    let text = String::from_utf8_lossy(raw);
    let (headers, body) = split_headers(&text);
    let content_type = header(&headers, "content-type")?;
    let (mime, params) = parse_content_type(&content_type);
    if mime != "multipart/report" {
        return None;
    }
    let boundary = params.iter().find(|(k, _)| k == "boundary").map(|(_, v)| v.clone())?;
    let to = header(&headers, "to").map(|v| addresses(&v)).unwrap_or_default();
    let mut dsn = Dsn { to, recipients: Vec::new(), original_message_id: None };
    let mut found = false;
    for part in split_multipart(body, &boundary) {
        let (part_headers, part_body) = split_headers(part);
        let part_type = header(&part_headers, "content-type").unwrap_or_else(|| "text/plain".to_owned());
        let (part_mime, _) = parse_content_type(&part_type);
        match part_mime.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                found = true;
                dsn.recipients = recipient_groups(part_body);
            }
            "message/rfc822" | "text/rfc822-headers" | "message/global" | "message/global-headers" => {
                let (original, _) = split_headers(part_body);
                dsn.original_message_id = header(&original, "message-id")
                    .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>').to_owned());
            }
            _ => {}
        }
    }
    found.then_some(dsn)
}

/// Header lines (unfolded, `(lower-case name, value)`) and the body.
pub(crate) fn split_headers(text: &str) -> (Vec<(String, String)>, &str) {
    let end = text.find("\r\n\r\n").map(|i| (i, i + 4)).or_else(|| text.find("\n\n").map(|i| (i, i + 2)));
    let (head, body) = match end {
        Some((h, b)) => (&text[..h], &text[b..]),
        None => (text, ""),
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (fields, body)
}

pub(crate) fn header(fields: &[(String, String)], name: &str) -> Option<String> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// `multipart/report; report-type=delivery-status; boundary="x"` →
/// (`multipart/report`, [(report-type, delivery-status), (boundary, x)]).
pub(crate) fn parse_content_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()))
        .collect();
    (mime, params)
}

/// The parts between `--boundary` lines, without the closing one.
pub(crate) fn split_multipart<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.starts_with(&delimiter) {
            if let Some(s) = start {
                // The line break before the delimiter belongs to it.
                let end = body[..offset].strip_suffix("\r\n").or_else(|| body[..offset].strip_suffix('\n'));
                parts.push(&body[s..end.map_or(offset, str::len)]);
            }
            if trimmed[delimiter.len()..].starts_with("--") {
                return parts;
            }
            start = Some(offset + line.len());
        }
        offset += line.len();
    }
    if let Some(s) = start {
        parts.push(&body[s..]);
    }
    parts
}

/// The per-recipient groups of a delivery-status body (the first group is
/// per-message and has no `Final-Recipient`).
fn recipient_groups(body: &str) -> Vec<RecipientStatus> {
    let body = body.replace("\r\n", "\n");
    let mut out = Vec::new();
    for group in body.split("\n\n") {
        let (fields, _) = split_headers(&format!("{group}\n\n"));
        let typed = |name: &str| {
            header(&fields, name).map(|v| match v.split_once(';') {
                Some((_, rest)) => rest.trim().to_owned(),
                None => v.trim().to_owned(),
            })
        };
        let final_recipient = typed("final-recipient").map(|a| strip_brackets(&a).to_lowercase());
        let Some(action) = header(&fields, "action") else { continue };
        out.push(RecipientStatus {
            final_recipient,
            original_recipient: typed("original-recipient").map(|a| strip_brackets(&a).to_lowercase()),
            action: action.to_ascii_lowercase(),
            status: header(&fields, "status").unwrap_or_default().split_whitespace().next().unwrap_or("").to_owned(),
            diagnostic: typed("diagnostic-code"),
        });
    }
    out
}

fn strip_brackets(s: &str) -> String {
    s.trim().trim_start_matches('<').trim_end_matches('>').to_owned()
}

/// The addresses of an address-list header value, lower-cased.
fn addresses(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|a| {
            let a = match (a.find('<'), a.rfind('>')) {
                (Some(s), Some(e)) if s < e => &a[s + 1..e],
                _ => a,
            };
            let a = a.trim();
            a.contains('@').then(|| a.to_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report shaped like Postfix's when the LMTP server refuses the recipient.
    const POSTFIX: &str = "Return-Path: <>\r\n\
Delivered-To: bounces+ec000001=adm.cfwb.be@bma.test\r\n\
From: MAILER-DAEMON@lab.test (Mail Delivery System)\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
To: bounces+ec000001=adm.cfwb.be@bma.test\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\
\tboundary=\"ABC.1714000000/lab.test\"\r\n\
\r\n\
This is a MIME-encapsulated message.\r\n\
\r\n\
--ABC.1714000000/lab.test\r\n\
Content-Description: Notification\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
\r\n\
--ABC.1714000000/lab.test\r\n\
Content-Description: Delivery report\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; lab.test\r\n\
X-Postfix-Queue-ID: ABC\r\n\
Arrival-Date: Mon, 22 Apr 2024 08:00:01 +0000 (UTC)\r\n\
\r\n\
Final-Recipient: rfc822; EC000001@adm.cfwb.be\r\n\
Original-Recipient: rfc822;ec000001@adm.cfwb.be\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Remote-MTA: dns; 127.0.0.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <ec000001@adm.cfwb.be> User doesn't exist:\r\n\
    ec000001@adm.cfwb.be\r\n\
\r\n\
--ABC.1714000000/lab.test\r\n\
Content-Description: Undelivered Message Headers\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: SGNE <migrationbma@cfwb.be>\r\n\
To: ec000001@adm.cfwb.be\r\n\
Message-ID: <invitation.1.abc@cfwb.be>\r\n\
Subject: Migration de votre BMA\r\n\
\r\n\
--ABC.1714000000/lab.test--\r\n";

    #[test]
    fn a_postfix_report() {
        let dsn = parse(POSTFIX.as_bytes()).expect("a DSN");
        assert_eq!(dsn.to, vec!["bounces+ec000001=adm.cfwb.be@bma.test"]);
        assert_eq!(dsn.original_message_id.as_deref(), Some("invitation.1.abc@cfwb.be"));
        assert_eq!(dsn.recipients.len(), 1);
        let r = &dsn.recipients[0];
        assert_eq!(r.final_recipient.as_deref(), Some("ec000001@adm.cfwb.be"));
        assert_eq!(r.original_recipient.as_deref(), Some("ec000001@adm.cfwb.be"));
        assert_eq!((r.action.as_str(), r.status.as_str()), ("failed", "5.1.1"));
        assert!(r.diagnostic.as_deref().unwrap().contains("User doesn't exist"), "{r:?}");
        assert!(r.failed());
    }

    #[test]
    fn other_shapes() {
        // LF line endings, a delayed (not failed) report, the whole original returned.
        let delayed = POSTFIX
            .replace("\r\n", "\n")
            .replace("Action: failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.4.1 (connection refused)")
            .replace("text/rfc822-headers", "message/rfc822");
        let dsn = parse(delayed.as_bytes()).expect("a DSN");
        assert_eq!(dsn.recipients[0].status, "4.4.1");
        assert!(!dsn.recipients[0].failed());
        assert_eq!(dsn.original_message_id.as_deref(), Some("invitation.1.abc@cfwb.be"));
        // Not reports: a plain message, an auto-reply, a report of another type.
        for raw in [
            "From: a@b.be\r\nSubject: hello\r\n\r\nbody\r\n".to_owned(),
            "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n"
                .to_owned(),
            POSTFIX.replace("message/delivery-status", "message/disposition-notification"),
            String::new(),
        ] {
            assert_eq!(parse(raw.as_bytes()), None, "{raw}");
        }
    }
}
