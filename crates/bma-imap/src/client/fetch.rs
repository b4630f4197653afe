//! Streamed UID FETCH: metadata ([`MetaStream`]: UID, FLAGS, INTERNALDATE,
//! RFC822.SIZE, MODSEQ; CONDSTORE `CHANGEDSINCE`) and whole messages
//! ([`BodyStream`]: `BODY.PEEK[]` with FLAGS and INTERNALDATE), one command
//! each, messages consumed as they arrive; and the checks of stored
//! messages ([`Client::fetch_checks`]: RFC822.SIZE, Cyrus' `DIGEST.SHA1`).
//!
//! Rules: each literal is read once into a buffer of its size and moved to
//! the caller (never copied); a stream dropped before its end leaves its
//! tag to the client, which reads its completion away before the next
//! command.

use super::{Client, Completion, flags_of, non_empty};
use crate::codec::{Response, Value};
use crate::error::{Error, Result};
use crate::types::{FetchedMessage, InternalDate, MessageCheck, MessageMeta, UidSet};

impl Client {
    /// UID FETCH of metadata (UID FLAGS INTERNALDATE RFC822.SIZE, and MODSEQ
    /// with CONDSTORE) for `uids` in the selected mailbox, streamed; with
    /// `changed_since`, only messages whose MODSEQ is greater (CHANGEDSINCE).
    pub async fn fetch_meta(&mut self, uids: &UidSet, changed_since: Option<u64>) -> Result<MetaStream<'_>> {
        non_empty(uids)?;
        let condstore = self.caps.condstore();
        if changed_since.is_some() && !condstore {
            return Err(Error::Unsupported("CONDSTORE"));
        }
        let mut cmd =
            format!("UID FETCH {uids} (UID FLAGS INTERNALDATE RFC822.SIZE{})", if condstore { " MODSEQ" } else { "" });
        if let Some(m) = changed_since {
            cmd.push_str(&format!(" (CHANGEDSINCE {m})"));
        }
        let tag = self.start(cmd).await?;
        Ok(MetaStream { client: self, tag: Some(tag) })
    }

    /// UID FETCH of whole messages (`BODY.PEEK[]`, with FLAGS and
    /// INTERNALDATE) for `uids` in the selected mailbox, streamed as they
    /// arrive: one command, the server sends them back to back.
    pub async fn fetch_bodies(&mut self, uids: &UidSet) -> Result<BodyStream<'_>> {
        non_empty(uids)?;
        let tag = self.start(format!("UID FETCH {uids} (UID FLAGS INTERNALDATE BODY.PEEK[])")).await?;
        Ok(BodyStream { client: self, tag: Some(tag) })
    }

    /// UID FETCH of what checks a stored message without reading it: its
    /// RFC822.SIZE and, with `sha1` (the server must offer `DIGEST=SHA1`,
    /// else [`Error::Unsupported`]), its `DIGEST.SHA1`. Collected: a few
    /// bytes per message.
    pub async fn fetch_checks(&mut self, uids: &UidSet, sha1: bool) -> Result<Vec<MessageCheck>> {
        non_empty(uids)?;
        if sha1 && !self.caps.digest_sha1() {
            return Err(Error::Unsupported("DIGEST=SHA1"));
        }
        let cmd = format!("UID FETCH {uids} (UID RFC822.SIZE{})", if sha1 { " DIGEST.SHA1" } else { "" });
        let mut tag = Some(self.start(cmd).await?);
        let mut out = Vec::new();
        while let Some(r) = stream_next(self, &mut tag, "UID FETCH").await? {
            let Response::Fetch { items, .. } = r else { continue };
            let uid = item(&items, "UID").and_then(Value::as_u32);
            let size = item(&items, "RFC822.SIZE").and_then(Value::as_u64);
            if let (Some(uid), Some(size)) = (uid, size) {
                let sha1 = item(&items, "DIGEST.SHA1").and_then(Value::as_str).and_then(hex20);
                out.push(MessageCheck { uid, size, sha1 });
            }
        }
        Ok(out)
    }

    /// Sends a command without literals and returns its tag.
    pub(super) async fn start(&mut self, cmd: String) -> Result<String> {
        self.drain().await?;
        let tag = self.tag();
        tracing::trace!(host = %self.config.host, %tag, "IMAP streamed command");
        let line = format!("{tag} {cmd}\r\n");
        self.write(line.as_bytes()).await?;
        Ok(tag)
    }
}

/// 40 hexadecimal digits (either case) as 20 bytes.
fn hex20(text: &str) -> Option<[u8; 20]> {
    let bytes = text.as_bytes();
    if bytes.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

pub(super) fn item<'a>(items: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

pub(super) fn meta_of(seq: u32, items: &[(String, Value)]) -> Option<MessageMeta> {
    Some(MessageMeta {
        seq,
        uid: item(items, "UID")?.as_u32()?,
        flags: flags_of(item(items, "FLAGS")),
        internal_date: item(items, "INTERNALDATE").and_then(Value::as_str).and_then(InternalDate::parse),
        size: Some(item(items, "RFC822.SIZE")?.as_u64()?),
        modseq: item(items, "MODSEQ").and_then(Value::as_list).and_then(|l| l.first()).and_then(Value::as_u64),
    })
}

/// Reads the next response of a streamed command: `Ok(Some)` for an untagged
/// response, `Ok(None)` once its completion (OK) is read.
pub(super) async fn stream_next(
    client: &mut Client,
    tag: &mut Option<String>,
    command: &'static str,
) -> Result<Option<Response>> {
    let Some(t) = tag.as_deref() else { return Ok(None) };
    match client.recv().await {
        Ok(Response::Status { tag: Some(got), status, code, text }) if got == t => {
            *tag = None;
            Completion { status, code, text }.into_result(command)?;
            Ok(None)
        }
        Ok(Response::Status { tag: Some(got), .. }) => {
            Err(Error::Protocol(format!("completion for unknown tag {got}")))
        }
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            // The connection is gone: nothing left to drain.
            *tag = None;
            Err(e)
        }
    }
}

/// Metadata of messages as they arrive; see [`Client::fetch_meta`].
#[derive(Debug)]
pub struct MetaStream<'c> {
    client: &'c mut Client,
    tag: Option<String>,
}

impl MetaStream<'_> {
    /// The next message's metadata, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<MessageMeta>> {
        while let Some(r) = stream_next(self.client, &mut self.tag, "UID FETCH").await? {
            if let Response::Fetch { seq, items } = r
                && let Some(m) = meta_of(seq, &items)
            {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }
}

impl Drop for MetaStream<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.tag.take() {
            self.client.abandoned.push(t);
        }
    }
}

/// Whole messages as they arrive; see [`Client::fetch_bodies`].
#[derive(Debug)]
pub struct BodyStream<'c> {
    client: &'c mut Client,
    tag: Option<String>,
}

impl BodyStream<'_> {
    /// The next message, `None` at the end. Its body is the buffer the
    /// literal was read into, not a copy.
    pub async fn next(&mut self) -> Result<Option<FetchedMessage>> {
        while let Some(r) = stream_next(self.client, &mut self.tag, "UID FETCH").await? {
            let Response::Fetch { items, .. } = r else { continue };
            let mut uid = None;
            let mut body = None;
            let mut flags = None;
            let mut internal_date = None;
            for (k, v) in items {
                match k.as_str() {
                    "UID" => uid = v.as_u32(),
                    "BODY[]" => body = v.into_bytes(),
                    "FLAGS" => flags = Some(flags_of(Some(&v))),
                    "INTERNALDATE" => internal_date = v.as_str().and_then(InternalDate::parse),
                    _ => {}
                }
            }
            if let (Some(uid), Some(body)) = (uid, body) {
                return Ok(Some(FetchedMessage { uid, flags, internal_date, body }));
            }
        }
        Ok(None)
    }
}

impl Drop for BodyStream<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.tag.take() {
            self.client.abandoned.push(t);
        }
    }
}
