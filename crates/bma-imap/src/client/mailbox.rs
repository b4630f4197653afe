//! Commands on mailboxes and on the selected one: NAMESPACE, LIST (with
//! special use and subscriptions), SELECT/EXAMINE (with CONDSTORE),
//! STATUS (alone, or pipelined for many mailboxes), CREATE, DELETE,
//! (UN)SUBSCRIBE (alone, or pipelined: [`Client::mailbox_commands`]),
//! UNSELECT, UID STORE, UID EXPUNGE, EXPUNGE, GETQUOTAROOT.
//!
//! Rules: mailbox names go on the wire in modified UTF-7, quoted; a
//! pipeline of text-only commands is one write and one round trip, its
//! results given back in the order of the commands.

use std::collections::BTreeSet;

use super::{Client, Completion, Part, flag_list, flags_of, non_empty};
use crate::codec::{self, Response, Value};
use crate::error::{Error, Result};
use crate::mutf7::MailboxName;
use crate::types::{
    Flag, MailboxInfo, Namespace, Namespaces, Quota, ResponseCode, SelectInfo, SpecialUse, StatusInfo, UidSet,
};

/// What to do with flags in [`Client::uid_store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `+FLAGS.SILENT`
    Add,
    /// `-FLAGS.SILENT`
    Remove,
    /// `FLAGS.SILENT`
    Replace,
}

/// A command on a mailbox name, for [`Client::mailbox_commands`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxCommand {
    /// CREATE.
    Create,
    /// `CREATE name (USE (\Sent))`: only where the server has
    /// CREATE-SPECIAL-USE (RFC 6154).
    CreateSpecialUse(SpecialUse),
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// DELETE.
    Delete,
}

impl MailboxCommand {
    fn name(self) -> &'static str {
        match self {
            MailboxCommand::Create | MailboxCommand::CreateSpecialUse(_) => "CREATE",
            MailboxCommand::Subscribe => "SUBSCRIBE",
            MailboxCommand::Unsubscribe => "UNSUBSCRIBE",
            MailboxCommand::Delete => "DELETE",
        }
    }
}

impl Client {
    /// NAMESPACE (an empty personal namespace with the LIST delimiter when not supported).
    pub async fn namespace(&mut self) -> Result<Namespaces> {
        if !self.caps.namespace() {
            let (untagged, _) = self.run("LIST", vec![Part::Text(b"LIST \"\" \"\"".to_vec())]).await?;
            let delimiter = untagged.iter().find_map(|r| match r {
                Response::Data { name, values } if name == "LIST" => values.get(1).and_then(delimiter_of),
                _ => None,
            });
            let personal = vec![Namespace { prefix: MailboxName::from_wire(""), delimiter }];
            return Ok(Namespaces { personal, ..Namespaces::default() });
        }
        let (untagged, _) = self.run("NAMESPACE", vec![Part::Text(b"NAMESPACE".to_vec())]).await?;
        let values = untagged
            .into_iter()
            .find_map(|r| match r {
                Response::Data { name, values } if name == "NAMESPACE" => Some(values),
                _ => None,
            })
            .ok_or_else(|| Error::Protocol("no NAMESPACE response".into()))?;
        let group = |v: Option<&Value>| -> Vec<Namespace> {
            v.and_then(Value::as_list)
                .unwrap_or(&[])
                .iter()
                .filter_map(|ns| {
                    let ns = ns.as_list()?;
                    Some(Namespace {
                        prefix: MailboxName::from_wire(ns.first()?.as_str()?),
                        delimiter: ns.get(1).and_then(delimiter_of),
                    })
                })
                .collect()
        };
        Ok(Namespaces { personal: group(values.first()), other: group(values.get(1)), shared: group(values.get(2)) })
    }

    /// Every mailbox, with special use and subscription: `LIST "" "*" RETURN
    /// (SUBSCRIBED SPECIAL-USE)` when LIST-EXTENDED is there, else LIST then LSUB.
    pub async fn list(&mut self) -> Result<Vec<MailboxInfo>> {
        if self.caps.list_extended() {
            let ret = if self.caps.special_use() { "RETURN (SUBSCRIBED SPECIAL-USE)" } else { "RETURN (SUBSCRIBED)" };
            let cmd = format!("LIST \"\" \"*\" {ret}");
            let (untagged, _) = self.run("LIST", vec![Part::Text(cmd.into_bytes())]).await?;
            return Ok(untagged.into_iter().filter_map(|r| parse_list(r, "LIST")).collect());
        }
        let (untagged, _) = self.run("LIST", vec![Part::Text(b"LIST \"\" \"*\"".to_vec())]).await?;
        let mut all: Vec<MailboxInfo> = untagged.into_iter().filter_map(|r| parse_list(r, "LIST")).collect();
        let (untagged, _) = self.run("LSUB", vec![Part::Text(b"LSUB \"\" \"*\"".to_vec())]).await?;
        let subscribed: BTreeSet<MailboxName> =
            untagged.into_iter().filter_map(|r| parse_list(r, "LSUB")).map(|m| m.name).collect();
        for m in &mut all {
            m.subscribed = subscribed.contains(&m.name);
        }
        Ok(all)
    }

    /// SELECT (read-write), with CONDSTORE when the server has it.
    pub async fn select(&mut self, mailbox: &MailboxName) -> Result<SelectInfo> {
        self.open("SELECT", mailbox).await
    }

    /// EXAMINE (read-only), with CONDSTORE when the server has it.
    pub async fn examine(&mut self, mailbox: &MailboxName) -> Result<SelectInfo> {
        self.open("EXAMINE", mailbox).await
    }

    pub(super) async fn open(&mut self, command: &'static str, mailbox: &MailboxName) -> Result<SelectInfo> {
        let params = if self.caps.condstore() { " (CONDSTORE)" } else { "" };
        Ok(self.open_with(command, mailbox, params).await?.0)
    }

    /// `command mailbox params`: what it tells, and the untagged responses
    /// that are not about the mailbox as a whole (FETCH, VANISHED, ...).
    pub(super) async fn open_with(
        &mut self,
        command: &'static str,
        mailbox: &MailboxName,
        params: &str,
    ) -> Result<(SelectInfo, Vec<Response>)> {
        let mut cmd = format!("{command} ").into_bytes();
        codec::push_quoted(&mut cmd, mailbox.wire().as_bytes());
        cmd.extend_from_slice(params.as_bytes());
        self.exists = None;
        let (untagged, done) = self.run(command, vec![Part::Text(cmd)]).await?;
        let mut rest = Vec::new();
        let mut info =
            SelectInfo { read_only: matches!(done.code, Some(ResponseCode::ReadOnly)), ..SelectInfo::default() };
        let mut have_validity = false;
        for r in untagged {
            match r {
                Response::Numbered { seq, name } if name == "EXISTS" => info.exists = seq,
                Response::Numbered { seq, name } if name == "RECENT" => info.recent = seq,
                Response::Data { name, values } if name == "FLAGS" => info.flags = flags_of(values.first()),
                Response::Status { tag: None, code: Some(code), .. } => match code {
                    ResponseCode::UidValidity(v) => {
                        info.uid_validity = v;
                        have_validity = true;
                    }
                    ResponseCode::UidNext(n) => info.uid_next = Some(n),
                    ResponseCode::HighestModSeq(m) => info.highest_modseq = Some(m),
                    ResponseCode::PermanentFlags(f) => info.permanent_flags = f,
                    _ => {}
                },
                r => rest.push(r),
            }
        }
        if !have_validity {
            return Err(Error::Protocol(format!("{command} without UIDVALIDITY")));
        }
        Ok((info, rest))
    }

    /// The STATUS command for `mailbox`: MESSAGES UIDNEXT UIDVALIDITY UNSEEN,
    /// HIGHESTMODSEQ (CONDSTORE) and SIZE (STATUS=SIZE).
    pub(super) fn status_command(&self, mailbox: &MailboxName) -> Vec<u8> {
        let mut cmd = b"STATUS ".to_vec();
        codec::push_quoted(&mut cmd, mailbox.wire().as_bytes());
        cmd.extend_from_slice(b" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN");
        if self.caps.condstore() {
            cmd.extend_from_slice(b" HIGHESTMODSEQ");
        }
        if self.caps.has("STATUS=SIZE") {
            cmd.extend_from_slice(b" SIZE");
        }
        cmd.push(b')');
        cmd
    }

    /// STATUS: MESSAGES UIDNEXT UIDVALIDITY UNSEEN, HIGHESTMODSEQ (CONDSTORE) and SIZE (STATUS=SIZE).
    pub async fn status(&mut self, mailbox: &MailboxName) -> Result<StatusInfo> {
        let cmd = self.status_command(mailbox);
        let (untagged, _) = self.run("STATUS", vec![Part::Text(cmd)]).await?;
        Ok(untagged.iter().find_map(|r| status_of(r).map(|(_, info)| info)).unwrap_or_default())
    }

    /// GETQUOTAROOT (RFC 9208): the storage quota of `mailbox`'s first
    /// quota root that has one; `None` when the server has no QUOTA
    /// capability or sets no storage limit.
    pub async fn quota(&mut self, mailbox: &MailboxName) -> Result<Option<Quota>> {
        if !self.caps.has("QUOTA") {
            return Ok(None);
        }
        let mut cmd = b"GETQUOTAROOT ".to_vec();
        codec::push_quoted(&mut cmd, mailbox.wire().as_bytes());
        let (untagged, _) = self.run("GETQUOTAROOT", vec![Part::Text(cmd)]).await?;
        Ok(untagged.iter().find_map(storage_of))
    }

    /// STATUS of several mailboxes, pipelined (one round trip): one result
    /// per mailbox, in order; a mailbox the server refuses is an `Err` in
    /// its place, a lost connection the `Err` of the whole call.
    pub async fn status_many(&mut self, mailboxes: &[&MailboxName]) -> Result<Vec<Result<StatusInfo>>> {
        let commands = mailboxes.iter().map(|m| ("STATUS", self.status_command(m))).collect();
        let (untagged, done) = self.pipeline(commands).await?;
        // Each STATUS response names its mailbox; when a server writes the
        // name differently (INBOX in another case, a literal), the responses
        // are taken in order, as the server answers commands in order.
        let mut by_name: Vec<(String, StatusInfo)> = untagged.iter().filter_map(status_of).collect();
        let mut out = Vec::with_capacity(mailboxes.len());
        for (m, d) in mailboxes.iter().zip(done) {
            out.push(d.map(|_| {
                let wire = m.wire();
                let i = by_name
                    .iter()
                    .position(|(n, _)| n == wire || (m.is_inbox() && n.eq_ignore_ascii_case("INBOX")))
                    .unwrap_or(0);
                if by_name.is_empty() { StatusInfo::default() } else { by_name.remove(i).1 }
            }));
        }
        Ok(out)
    }

    /// Mailbox commands (CREATE, SUBSCRIBE, ...), pipelined (one round
    /// trip), run by the server in the order given: one result per command;
    /// a lost connection is the `Err` of the whole call.
    pub async fn mailbox_commands(&mut self, commands: &[(MailboxCommand, &MailboxName)]) -> Result<Vec<Result<()>>> {
        let commands = commands
            .iter()
            .map(|(c, m)| {
                let name = c.name();
                let mut cmd = format!("{name} ").into_bytes();
                codec::push_quoted(&mut cmd, m.wire().as_bytes());
                if let MailboxCommand::CreateSpecialUse(u) = c {
                    cmd.extend_from_slice(format!(" (USE ({}))", u.attribute()).as_bytes());
                }
                (name, cmd)
            })
            .collect();
        let (_, done) = self.pipeline(commands).await?;
        Ok(done.into_iter().map(|d| d.map(|_| ())).collect())
    }

    /// Sends text-only commands back to back, then reads their completions:
    /// the untagged responses, and each command's completion in order.
    pub(super) async fn pipeline(
        &mut self,
        commands: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<(Vec<Response>, Vec<Result<Completion>>)> {
        self.drain().await?;
        let mut tags = Vec::with_capacity(commands.len());
        let mut buf = Vec::new();
        for (name, text) in &commands {
            let tag = self.tag();
            tracing::trace!(host = %self.config.host, %tag, command = name, "IMAP command (pipelined)");
            buf.extend_from_slice(tag.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(text);
            buf.extend_from_slice(b"\r\n");
            tags.push(tag);
        }
        if commands.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        self.write(&buf).await?;
        let mut done: Vec<Option<Completion>> = commands.iter().map(|_| None).collect();
        let mut untagged = Vec::new();
        let mut left = commands.len();
        while left > 0 {
            match self.recv().await? {
                Response::Status { tag: Some(t), status, code, text } => {
                    let Some(i) = tags.iter().position(|x| *x == t) else {
                        return Err(Error::Protocol(format!("completion for unknown tag {t}")));
                    };
                    if done[i].replace(Completion { status, code, text }).is_none() {
                        left -= 1;
                    }
                }
                Response::Continuation(_) => {
                    return Err(Error::Protocol("unexpected continuation in a pipeline".into()));
                }
                r => untagged.push(r),
            }
        }
        let results = done
            .into_iter()
            .zip(&commands)
            // Every tag is completed when the loop ends (`left` is 0).
            .map(|(d, (name, _))| {
                d.ok_or_else(|| Error::Protocol(format!("{name} not completed"))).and_then(|c| c.into_result(name))
            })
            .collect();
        Ok((untagged, results))
    }

    pub(super) async fn mailbox_command(&mut self, command: &'static str, mailbox: &MailboxName) -> Result<()> {
        let mut cmd = format!("{command} ").into_bytes();
        codec::push_quoted(&mut cmd, mailbox.wire().as_bytes());
        self.simple(command, vec![Part::Text(cmd)]).await.map(|_| ())
    }

    /// CREATE.
    pub async fn create(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.mailbox_command("CREATE", mailbox).await
    }

    /// DELETE.
    pub async fn delete(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.mailbox_command("DELETE", mailbox).await
    }

    /// SUBSCRIBE.
    pub async fn subscribe(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.mailbox_command("SUBSCRIBE", mailbox).await
    }

    /// UNSUBSCRIBE.
    pub async fn unsubscribe(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.mailbox_command("UNSUBSCRIBE", mailbox).await
    }

    /// UNSELECT when supported, else CLOSE (which expunges: avoid on a source).
    pub async fn unselect(&mut self) -> Result<()> {
        if !self.caps.has("UNSELECT") {
            return Err(Error::Unsupported("UNSELECT"));
        }
        self.simple("UNSELECT", vec![Part::Text(b"UNSELECT".to_vec())]).await.map(|_| ())
    }

    /// CLOSE (RFC 3501): leaves the selected mailbox, expunging its
    /// `\Deleted` messages if it was selected read-write. For a session that
    /// must go back to the authenticated state without UNSELECT.
    pub async fn close(&mut self) -> Result<()> {
        self.simple("CLOSE", vec![Part::Text(b"CLOSE".to_vec())]).await.map(|_| ())
    }

    /// UID STORE of flags (silent), in the selected mailbox.
    pub async fn uid_store(&mut self, uids: &UidSet, mode: StoreMode, flags: &[Flag]) -> Result<()> {
        non_empty(uids)?;
        let op = match mode {
            StoreMode::Add => "+FLAGS.SILENT",
            StoreMode::Remove => "-FLAGS.SILENT",
            StoreMode::Replace => "FLAGS.SILENT",
        };
        let cmd = format!("UID STORE {uids} {op} ({})", flag_list(flags));
        self.simple("UID STORE", vec![Part::Text(cmd.into_bytes())]).await.map(|_| ())
    }

    /// UID EXPUNGE (UIDPLUS): expunges only these UIDs, if marked `\Deleted`.
    pub async fn uid_expunge(&mut self, uids: &UidSet) -> Result<()> {
        non_empty(uids)?;
        if !self.caps.uidplus() {
            return Err(Error::Unsupported("UIDPLUS"));
        }
        let cmd = format!("UID EXPUNGE {uids}");
        self.simple("UID EXPUNGE", vec![Part::Text(cmd.into_bytes())]).await.map(|_| ())
    }

    /// EXPUNGE (RFC 3501): removes every `\Deleted` message of the selected
    /// mailbox, whoever marked it; prefer [`Client::uid_expunge`].
    pub async fn expunge(&mut self) -> Result<()> {
        self.simple("EXPUNGE", vec![Part::Text(b"EXPUNGE".to_vec())]).await.map(|_| ())
    }
}

pub(super) fn delimiter_of(v: &Value) -> Option<char> {
    v.as_nstring().and_then(|s| s.chars().next())
}

pub(super) fn parse_list(r: Response, which: &str) -> Option<MailboxInfo> {
    let Response::Data { name, values } = r else { return None };
    if name != which {
        return None;
    }
    let attributes: Vec<String> =
        values.first()?.as_list()?.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    let delimiter = values.get(1).and_then(delimiter_of);
    let mailbox = values.get(2)?.as_str()?;
    let special_use = attributes.iter().find_map(|a| SpecialUse::from_attribute(a));
    let subscribed = which == "LSUB" || attributes.iter().any(|a| a.eq_ignore_ascii_case("\\Subscribed"));
    Some(MailboxInfo { name: MailboxName::from_wire(mailbox), delimiter, attributes, special_use, subscribed })
}

/// A STATUS response: the mailbox name as the server wrote it, and what it says.
/// The STORAGE resource of a `QUOTA` response: `* QUOTA root (STORAGE used limit …)`.
pub(super) fn storage_of(r: &Response) -> Option<Quota> {
    let Response::Data { name, values } = r else { return None };
    if !name.eq_ignore_ascii_case("QUOTA") {
        return None;
    }
    let items = values.get(1).and_then(Value::as_list)?;
    items.chunks(3).find_map(|triple| match triple {
        [k, used, limit] if k.as_str().is_some_and(|k| k.eq_ignore_ascii_case("STORAGE")) => {
            Some(Quota { used_bytes: used.as_u64()? * 1024, limit_bytes: limit.as_u64()? * 1024 })
        }
        _ => None,
    })
}

pub(super) fn status_of(r: &Response) -> Option<(String, StatusInfo)> {
    let Response::Data { name, values } = r else { return None };
    if name != "STATUS" {
        return None;
    }
    let mut info = StatusInfo::default();
    let items = values.get(1).and_then(Value::as_list).unwrap_or(&[]);
    for pair in items.chunks(2) {
        let (Some(k), Some(v)) = (pair[0].as_str(), pair.get(1).and_then(Value::as_u64)) else { continue };
        let v32 = u32::try_from(v).ok();
        match k.to_ascii_uppercase().as_str() {
            "MESSAGES" => info.messages = v32,
            "UIDNEXT" => info.uid_next = v32,
            "UIDVALIDITY" => info.uid_validity = v32,
            "UNSEEN" => info.unseen = v32,
            "HIGHESTMODSEQ" => info.highest_modseq = Some(v),
            "SIZE" => info.size = Some(v),
            _ => {}
        }
    }
    Some((values.first().and_then(Value::as_str).unwrap_or_default().to_owned(), info))
}
