//! APPEND: one message ([`Client::append`]), pipelined APPENDs
//! ([`AppendPipeline`]: up to [`Config::append_depth`](super::Config) in
//! flight with LITERAL+, each small one written in one `write`) and
//! streamed MULTIAPPEND (RFC 3502, [`MultiAppendPipeline`]: messages written
//! into the open command as they come, up to two commands in flight).
//! Both pipelines keep their commands in flight in one type, `InFlight`.
//!
//! Rules: a refusal of one message (or of one batch) is its result, typed
//! (over quota, too big, throttled, TRYCREATE...); an `Err` from a pipeline
//! means the connection is lost. A body is written from the caller's
//! buffer (appended to the command's head only when at most 64 KiB), never
//! copied otherwise. A pipeline dropped with commands in flight leaves
//! their tags to the client; one dropped with a MULTIAPPEND half-written
//! breaks the connection (its next command would be taken for a literal).

use std::collections::VecDeque;

use super::{Client, Completion, Part, flag_list};
use crate::codec::{self, Response};
use crate::error::{Error, Result};
use crate::mutf7::MailboxName;
use crate::types::{AppendUid, Flag, InternalDate, ResponseCode};

/// One message to APPEND.
#[derive(Debug, Clone, Copy)]
pub struct AppendMessage<'a> {
    /// The message, byte for byte (no NUL).
    pub body: &'a [u8],
    /// Flags; those a client may not set (`\Recent`) are left out.
    pub flags: &'a [Flag],
    /// INTERNALDATE to give it.
    pub internal_date: Option<InternalDate>,
}

impl Client {
    /// APPEND of one message; returns its UID when the server tells it (UIDPLUS).
    pub async fn append(&mut self, mailbox: &MailboxName, message: AppendMessage<'_>) -> Result<Option<AppendUid>> {
        let mut p = self.append_pipeline(mailbox);
        p.push(0, message).await?;
        let done = p.finish().await?;
        done.into_iter().next().map_or_else(|| Err(Error::Protocol("APPEND result missing".into())), |d| d.result)
    }

    /// MULTIAPPEND (RFC 3502) to `mailbox`: messages streamed into commands
    /// of as many messages as the caller wants, up to 2 commands in flight.
    /// Needs the server's MULTIAPPEND; non-synchronising literals with
    /// LITERAL+ (up to [`Config::sync_literal_above`](super::Config::sync_literal_above)), synchronising otherwise.
    pub fn multiappend_pipeline(&mut self, mailbox: &MailboxName) -> Result<MultiAppendPipeline<'_>> {
        if !self.caps.multiappend() {
            return Err(Error::Unsupported("MULTIAPPEND"));
        }
        Ok(MultiAppendPipeline {
            client: self,
            mailbox: mailbox.clone(),
            depth: 2,
            open: None,
            flight: InFlight::new(),
        })
    }

    /// A pipeline of APPENDs to `mailbox`: up to [`Config::append_depth`](super::Config::append_depth) in
    /// flight with LITERAL+, one at a time otherwise.
    pub fn append_pipeline(&mut self, mailbox: &MailboxName) -> AppendPipeline<'_> {
        let depth = if self.caps.literal_plus() { self.config.append_depth.max(1) } else { 1 };
        AppendPipeline { client: self, mailbox: mailbox.clone(), depth, open: None, flight: InFlight::new() }
    }
}

/// Commands of one pipeline written and not completed, with what the
/// caller gave for each (`I`: one message's id for APPEND, a batch's ids
/// for MULTIAPPEND), and the completions not yet taken, in the order they
/// came. The one in-flight type of [`AppendPipeline`] and [`MultiAppendPipeline`].
#[derive(Debug)]
struct InFlight<I> {
    sent: VecDeque<(String, I)>,
    done: VecDeque<(I, Completion)>,
}

impl<I> InFlight<I> {
    fn new() -> InFlight<I> {
        InFlight { sent: VecDeque::new(), done: VecDeque::new() }
    }

    /// Commands written and not completed.
    fn len(&self) -> usize {
        self.sent.len()
    }

    /// Records the completion of the command tagged `tag`.
    fn record(&mut self, tag: &str, c: Completion) -> Result<()> {
        let Some(pos) = self.sent.iter().position(|(x, _)| x == tag) else {
            return Err(Error::Protocol(format!("completion for unknown tag {tag}")));
        };
        if let Some((_, ids)) = self.sent.remove(pos) {
            self.done.push_back((ids, c));
        }
        Ok(())
    }

    /// Reads until the oldest command in flight is completed (recording
    /// the others completed on the way).
    async fn complete_one(&mut self, client: &mut Client) -> Result<()> {
        let Some(tag) = self.sent.front().map(|(t, _)| t.clone()) else { return Ok(()) };
        loop {
            match client.recv().await {
                Ok(Response::Status { tag: Some(t), status, code, text }) => {
                    self.record(&t, Completion { status, code, text })?;
                    if t == tag {
                        return Ok(());
                    }
                }
                Ok(Response::Continuation(_)) => return Err(Error::Protocol("unexpected continuation".into())),
                Ok(_) => {}
                Err(e) => {
                    self.sent.clear();
                    return Err(e);
                }
            }
        }
    }

    /// The next completion, waiting for the oldest when none is there yet;
    /// `None` when nothing is in flight.
    async fn next(&mut self, client: &mut Client) -> Result<Option<(I, Completion)>> {
        if self.done.is_empty() && !self.sent.is_empty() {
            self.complete_one(client).await?;
        }
        Ok(self.done.pop_front())
    }

    /// Waits for every command in flight; returns the completions not yet taken.
    async fn finish(&mut self, client: &mut Client) -> Result<Vec<(I, Completion)>> {
        while !self.sent.is_empty() {
            self.complete_one(client).await?;
        }
        Ok(self.done.drain(..).collect())
    }

    /// Leaves the tags in flight to the client (the pipeline is dropped).
    fn abandon(&mut self, client: &mut Client) {
        client.abandoned.extend(self.sent.drain(..).map(|(t, _)| t));
    }
}

/// The arguments of one message after the mailbox: ` (FLAGS)` and ` "INTERNALDATE"`.
fn push_message_args(head: &mut Vec<u8>, message: &AppendMessage<'_>) {
    let flags = flag_list(message.flags);
    if !flags.is_empty() {
        head.extend_from_slice(format!(" ({flags})").as_bytes());
    }
    if let Some(d) = message.internal_date {
        head.extend_from_slice(format!(" \"{}\"", d.to_imap()).as_bytes());
    }
}

/// The outcome of one APPEND of a pipeline.
#[derive(Debug)]
pub struct AppendDone {
    /// The caller's identifier given to [`AppendPipeline::push`].
    pub id: u64,
    /// The UID given by the server (UIDPLUS), or the refusal (typed: over
    /// quota, too big, throttled, TRYCREATE, ...).
    pub result: Result<Option<AppendUid>>,
}

impl AppendDone {
    fn of((id, c): (u64, Completion)) -> AppendDone {
        AppendDone { id, result: append_result(c) }
    }
}

/// APPEND or MULTIAPPEND commands in flight to one mailbox: `I` is what
/// each command carries, one message's id ([`AppendPipeline`]) or a
/// batch's ids ([`MultiAppendPipeline`]). One type for both: the commands
/// in flight, their completions, and what a drop leaves to the client.
#[derive(Debug)]
pub struct Pipeline<'c, I> {
    client: &'c mut Client,
    mailbox: MailboxName,
    depth: usize,
    /// The MULTIAPPEND command being written: its tag and the ids pushed
    /// into it (always `None` for single APPENDs, written whole).
    open: Option<(String, Vec<u64>)>,
    flight: InFlight<I>,
}

impl<I> Pipeline<'_, I> {
    /// Commands written (ended, for MULTIAPPEND) and not completed.
    pub fn in_flight(&self) -> usize {
        self.flight.len()
    }
}

impl<I> Drop for Pipeline<'_, I> {
    fn drop(&mut self) {
        // A command left open cannot be completed any more: the connection
        // must not be used again (its next command would be taken for a
        // literal). Those in flight are read away later.
        if self.open.take().is_some() {
            self.client.broken = true;
        }
        self.flight.abandon(self.client);
    }
}

/// APPENDs in flight to one mailbox; see [`Client::append_pipeline`].
///
/// [`push`](AppendPipeline::push) sends a message (waiting first for the
/// oldest in flight when the pipeline is full); results come back in order
/// from [`next_done`](AppendPipeline::next_done) and
/// [`finish`](AppendPipeline::finish). A refusal of one message is its
/// result; an `Err` from these methods means the connection is lost.
/// Dropping a pipeline with APPENDs in flight loses their results (they may
/// have succeeded): call `finish`.
pub type AppendPipeline<'c> = Pipeline<'c, u64>;

impl AppendPipeline<'_> {
    /// Sends one message; `id` comes back in its [`AppendDone`].
    pub async fn push(&mut self, id: u64, message: AppendMessage<'_>) -> Result<()> {
        if message.body.contains(&0) {
            return Err(Error::InvalidArgument("message contains a NUL byte".into()));
        }
        while self.flight.len() >= self.depth {
            self.flight.complete_one(self.client).await?;
        }
        if self.flight.len() == 0 {
            // Nothing can be abandoned while the pipeline borrows the client,
            // so this only reads away what was abandoned before it.
            self.client.drain().await?;
        }
        let tag = self.client.tag();
        let mut head = b"APPEND ".to_vec();
        codec::push_quoted(&mut head, self.mailbox.wire().as_bytes());
        push_message_args(&mut head, &message);
        head.push(b' ');
        let parts = [Part::Text(head), Part::Literal(message.body)];
        let mut untagged = Vec::new();
        let mut others = Vec::new();
        let early = self.client.send(&tag, &parts, &mut untagged, &mut others).await;
        for (t, c) in others {
            self.flight.record(&t, c)?;
        }
        match early? {
            Some(c) => self.flight.done.push_back((id, c)),
            None => self.flight.sent.push_back((tag, id)),
        }
        Ok(())
    }

    /// The next result, in order of completion, waiting if none is there yet;
    /// `None` when nothing is in flight.
    pub async fn next_done(&mut self) -> Result<Option<AppendDone>> {
        Ok(self.flight.next(self.client).await?.map(AppendDone::of))
    }

    /// Waits for every APPEND in flight; returns the results not yet taken.
    pub async fn finish(mut self) -> Result<Vec<AppendDone>> {
        Ok(self.flight.finish(self.client).await?.into_iter().map(AppendDone::of).collect())
    }
}

/// The outcome of one MULTIAPPEND command (RFC 3502: all its messages are
/// appended, or none).
#[derive(Debug)]
pub struct BatchDone {
    /// The callers' identifiers, in the order the messages were pushed.
    pub ids: Vec<u64>,
    /// The new UIDs in the same order (empty without UIDPLUS), or the
    /// refusal of the whole batch.
    pub result: Result<Vec<AppendUid>>,
}

impl BatchDone {
    fn of((ids, c): (Vec<u64>, Completion)) -> BatchDone {
        BatchDone { ids, result: batch_result(c) }
    }
}

/// MULTIAPPEND commands to one mailbox, streamed; see [`Client::multiappend_pipeline`].
///
/// [`push`](MultiAppendPipeline::push) writes one message into the command
/// being sent (opening one when none is), so a batch is never held in
/// memory; [`end_batch`](MultiAppendPipeline::end_batch) ends that
/// command; up to `depth` ended commands wait for their completion while the
/// next one is written. An `Err` from these methods means the connection is
/// lost; a refused batch is its [`BatchDone::result`].
pub type MultiAppendPipeline<'c> = Pipeline<'c, Vec<u64>>;

impl MultiAppendPipeline<'_> {
    /// Messages in the command being written.
    pub fn open_len(&self) -> usize {
        self.open.as_ref().map_or(0, |(_, ids)| ids.len())
    }

    /// Writes one message into the current command (opening one if needed).
    pub async fn push(&mut self, id: u64, message: AppendMessage<'_>) -> Result<()> {
        if message.body.contains(&0) {
            return Err(Error::InvalidArgument("message contains a NUL byte".into()));
        }
        let mut head = Vec::with_capacity(128);
        if self.open.is_none() {
            while self.flight.len() >= self.depth {
                self.flight.complete_one(self.client).await?;
            }
            if self.flight.len() == 0 {
                self.client.drain().await?;
            }
            let tag = self.client.tag();
            head.extend_from_slice(tag.as_bytes());
            head.extend_from_slice(b" APPEND ");
            codec::push_quoted(&mut head, self.mailbox.wire().as_bytes());
            self.open = Some((tag, Vec::new()));
        }
        push_message_args(&mut head, &message);
        let len = message.body.len();
        let plus = self.client.non_sync(len);
        head.extend_from_slice(format!(" {{{len}{}}}\r\n", if plus { "+" } else { "" }).as_bytes());
        if let Some((_, ids)) = self.open.as_mut() {
            ids.push(id);
        }
        if plus && len <= 64 * 1024 {
            head.extend_from_slice(message.body);
            return self.client.write(&head).await;
        }
        self.client.write(&head).await?;
        if !plus && !self.wait_continuation().await? {
            return Ok(());
        }
        self.client.write(message.body).await
    }

    /// Waits for the `+` of a synchronising literal; `false` when the server
    /// ended the command instead (the batch is then done, refused).
    async fn wait_continuation(&mut self) -> Result<bool> {
        let open_tag = self.open.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
        loop {
            match self.client.recv().await {
                Ok(Response::Continuation(_)) => return Ok(true),
                Ok(Response::Status { tag: Some(t), status, code, text }) if t == open_tag => {
                    let ids = self.open.take().map(|(_, ids)| ids).unwrap_or_default();
                    self.flight.done.push_back((ids, Completion { status, code, text }));
                    return Ok(false);
                }
                Ok(Response::Status { tag: Some(t), status, code, text }) => {
                    self.flight.record(&t, Completion { status, code, text })?;
                }
                Ok(_) => {}
                Err(e) => {
                    self.open = None;
                    self.flight.sent.clear();
                    return Err(e);
                }
            }
        }
    }

    /// Ends the command being written; its result comes from
    /// [`next_done`](MultiAppendPipeline::next_done) or [`finish`](MultiAppendPipeline::finish).
    pub async fn end_batch(&mut self) -> Result<()> {
        if let Some(open) = self.open.take() {
            self.client.write(b"\r\n").await?;
            self.flight.sent.push_back(open);
        }
        Ok(())
    }

    /// A completed batch, waiting for the oldest when none is there yet;
    /// `None` when nothing is in flight.
    pub async fn next_done(&mut self) -> Result<Option<BatchDone>> {
        Ok(self.flight.next(self.client).await?.map(BatchDone::of))
    }

    /// A completed batch if one is ready without waiting.
    pub fn try_done(&mut self) -> Option<BatchDone> {
        self.flight.done.pop_front().map(BatchDone::of)
    }

    /// Ends the open command and waits for every command in flight; returns
    /// the results not yet taken.
    pub async fn finish(mut self) -> Result<Vec<BatchDone>> {
        self.end_batch().await?;
        Ok(self.flight.finish(self.client).await?.into_iter().map(BatchDone::of).collect())
    }
}

fn batch_result(c: Completion) -> Result<Vec<AppendUid>> {
    let c = c.into_result("APPEND")?;
    Ok(match c.code {
        Some(ResponseCode::AppendUid { uid_validity, uid }) => vec![AppendUid { uid_validity, uid }],
        Some(ResponseCode::AppendUids { uid_validity, uids }) => {
            uids.into_iter().flat_map(|(a, b)| a..=b).map(|uid| AppendUid { uid_validity, uid }).collect()
        }
        _ => Vec::new(),
    })
}

fn append_result(c: Completion) -> Result<Option<AppendUid>> {
    let c = c.into_result("APPEND")?;
    Ok(match c.code {
        Some(ResponseCode::AppendUid { uid_validity, uid }) => Some(AppendUid { uid_validity, uid }),
        _ => None,
    })
}
