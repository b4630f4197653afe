//! QRESYNC (RFC 7162): what changed in a mailbox since an earlier visit,
//! without listing every message.
//!
//! Given the UIDVALIDITY and HIGHESTMODSEQ seen at an earlier visit, the
//! server tells, while it opens the mailbox, which UIDs were expunged since
//! (`* VANISHED (EARLIER) uid-set`) and the UID, flags and mod-sequence of
//! every message changed (or added) since (`* n FETCH (UID .. FLAGS (..)
//! MODSEQ (..))`): [`Client::examine_qresync`] collects both. Given the
//! known UIDs, it reports only about them (RFC 7162; Dovecot does so):
//! messages added since are then not among the changes.
//! [`Client::fetch_changes`] asks the same of the mailbox already open,
//! with `UID FETCH set (...) (CHANGEDSINCE m VANISHED)`, and returns the
//! whole metadata (INTERNALDATE, size) of what changed or was added in `set`.
//!
//! - Both need QRESYNC turned on with ENABLE first
//!   ([`Client::enable_modseq`] right after login).
//! - When the UIDVALIDITY given is not the mailbox's any more, the server
//!   ignores the request and opens the mailbox as usual: the result says
//!   so (no changes, [`SelectInfo::uid_validity`] is the new one) and the
//!   caller compares everything.
//! - UID sets stay ranges ([`UidSet`]): 5000 messages expunged in a row are
//!   one range, never 5000 numbers.
//! - Untagged `VANISHED` without `(EARLIER)` (messages expunged by someone
//!   else while the mailbox is open) is collected too: Dovecot sends it at
//!   the end of the next command, after that command's FETCH responses,
//!   which may include the message (flagged `\Deleted`); a message both
//!   changed and vanished counts as vanished. The other commands of the
//!   client ignore it, as they ignore `EXPUNGE`; [`Client::fetch_changes`]
//!   from the same mod-sequence reports such an expunge again, `(EARLIER)`.
//!
//! A server may report as vanished UIDs the caller never knew (RFC 7162
//! allows it when it cannot tell exactly); when the caller gives the UIDs
//! it knows, the result is cut down to them.

use std::collections::BTreeMap;

use super::fetch::item;
use super::{Client, Part, flags_of, non_empty};
use crate::codec::{self, Response, Value};
use crate::error::{Error, Result};
use crate::mutf7::MailboxName;
use crate::types::{InternalDate, MessageMeta, SelectInfo, UidSet};

/// Longest known-UID set sent as it is: a longer one is sent as the range
/// from its first to its last UID (the answer is then cut down to the set
/// here), so that the command stays well under servers' line limits
/// (Dovecot: 64 KiB).
const KNOWN_UIDS_MAX_WIRE: usize = 8 * 1024;

/// What the caller knows of a mailbox from an earlier visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QresyncParams<'a> {
    /// UIDVALIDITY seen then.
    pub uid_validity: u32,
    /// HIGHESTMODSEQ seen then (at least 1).
    pub mod_seq: u64,
    /// The UIDs the caller knows (such as those it copied): only their
    /// expunges and changes are reported, not the messages added since.
    /// `None`: every expunge and change since `mod_seq`.
    pub known_uids: Option<&'a UidSet>,
}

/// What changed in a mailbox since a mod-sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QresyncChanges {
    /// UIDs expunged since (within the known UIDs when they were given).
    pub vanished: UidSet,
    /// Messages changed or added since, by ascending UID: UID, flags and
    /// MODSEQ; INTERNALDATE and size only from [`Client::fetch_changes`].
    /// A message also in `vanished` is left out.
    pub changed: Vec<MessageMeta>,
}

impl Client {
    /// Whether QRESYNC is on for this connection (ENABLE done and accepted).
    pub fn qresync_enabled(&self) -> bool {
        self.enabled.contains("QRESYNC")
    }

    fn require_qresync(&self) -> Result<()> {
        if !self.caps.qresync() {
            return Err(Error::Unsupported("QRESYNC"));
        }
        if !self.qresync_enabled() {
            return Err(Error::InvalidArgument("QRESYNC is not enabled: call enable_modseq after login".into()));
        }
        Ok(())
    }

    /// `EXAMINE mailbox (QRESYNC (uidvalidity modseq [known-uids]))`: opens
    /// the mailbox read-only and collects what changed since `params`.
    ///
    /// The changes are `None` when the server did not resynchronise: the
    /// mailbox's UIDVALIDITY is not `params.uid_validity` any more (the
    /// returned [`SelectInfo::uid_validity`] is the new one), or its
    /// HIGHESTMODSEQ is missing or lower than `params.mod_seq` (a mailbox
    /// restored from a backup): the caller must compare every message.
    ///
    /// Errors: [`Error::Unsupported`] without QRESYNC on the server,
    /// [`Error::InvalidArgument`] when it is not enabled or `params` has a 0.
    pub async fn examine_qresync(
        &mut self,
        mailbox: &MailboxName,
        params: QresyncParams<'_>,
    ) -> Result<(SelectInfo, Option<QresyncChanges>)> {
        self.require_qresync()?;
        if params.uid_validity == 0 || params.mod_seq == 0 {
            return Err(Error::InvalidArgument("QRESYNC needs a UIDVALIDITY and a mod-sequence above 0".into()));
        }
        let mut cmd = format!(" (QRESYNC ({} {}", params.uid_validity, params.mod_seq);
        if let Some(known) = params.known_uids.filter(|k| !k.is_empty()) {
            cmd.push(' ');
            cmd.push_str(&known_uids_wire(known));
        }
        cmd.push_str("))");
        let (info, rest) = self.open_with("EXAMINE", mailbox, &cmd).await?;
        let changes = collect(rest, params.known_uids)?;
        let resynced =
            info.uid_validity == params.uid_validity && info.highest_modseq.is_some_and(|h| h >= params.mod_seq);
        Ok((info, resynced.then_some(changes)))
    }

    /// `UID FETCH uids (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)
    /// (CHANGEDSINCE changed_since VANISHED)` in the open mailbox: the
    /// messages of `uids` changed or added since, with all their metadata,
    /// and those of `uids` expunged since.
    ///
    /// Errors as for [`Client::examine_qresync`], and
    /// [`Error::InvalidArgument`] for an empty set.
    pub async fn fetch_changes(&mut self, uids: &UidSet, changed_since: u64) -> Result<QresyncChanges> {
        non_empty(uids)?;
        self.require_qresync()?;
        let cmd = format!(
            "UID FETCH {uids} (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ) (CHANGEDSINCE {changed_since} VANISHED)"
        );
        let (untagged, _) = self.run("UID FETCH", vec![Part::Text(cmd.into_bytes())]).await?;
        collect(untagged, Some(uids))
    }
}

/// The known-UID set as sent: the set, or its covering range when too long.
fn known_uids_wire(known: &UidSet) -> String {
    let wire = known.to_imap();
    match (known.ranges().first(), known.ranges().last()) {
        (Some(&(first, _)), Some(&(_, last))) if wire.len() > KNOWN_UIDS_MAX_WIRE => {
            UidSet::range(first, last).to_imap()
        }
        _ => wire,
    }
}

/// The VANISHED and FETCH responses among `responses`, as changes, cut
/// down to the UIDs `within` when given.
fn collect(responses: Vec<Response>, within: Option<&UidSet>) -> Result<QresyncChanges> {
    let mut vanished = UidSet::default();
    let mut changed = BTreeMap::new();
    for r in responses {
        match r {
            Response::Data { name, values } if name == "VANISHED" => {
                let (_earlier, set) = codec::vanished(&values)?;
                vanished.extend_set(&set);
            }
            Response::Fetch { seq, items } => {
                // A later response about the same message is the newer state.
                if let Some(m) = changed_meta(seq, &items) {
                    changed.insert(m.uid, m);
                }
            }
            _ => {}
        }
    }
    let changed = changed
        .into_values()
        .filter(|m| !vanished.contains(m.uid) && within.is_none_or(|w| w.contains(m.uid)))
        .collect();
    if let Some(within) = within {
        vanished = vanished.intersection(within);
    }
    Ok(QresyncChanges { vanished, changed })
}

/// A FETCH response as a change: it needs UID and FLAGS (one without FLAGS,
/// such as a MODSEQ alone, says nothing the caller can apply).
fn changed_meta(seq: u32, items: &[(String, Value)]) -> Option<MessageMeta> {
    let flags = item(items, "FLAGS")?;
    Some(MessageMeta {
        seq,
        uid: item(items, "UID")?.as_u32()?,
        flags: flags_of(Some(flags)),
        internal_date: item(items, "INTERNALDATE").and_then(Value::as_str).and_then(InternalDate::parse),
        size: item(items, "RFC822.SIZE").and_then(Value::as_u64),
        modseq: item(items, "MODSEQ").and_then(Value::as_list).and_then(|l| l.first()).and_then(Value::as_u64),
    })
}

/// Against a scripted peer (the client tests' [`serve`]): the commands
/// byte for byte, responses as RFC 7162 shows them, and the other commands
/// of the client with `VANISHED` and `EXPUNGE` arriving in their midst.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::{Step, serve};
    use crate::client::{AppendMessage, Config, Security};
    use crate::types::{AppendUid, Flag};

    const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 ENABLE CONDSTORE QRESYNC UIDPLUS LITERAL+] hi\r\n";
    const ENABLE: Step = Step::Line("A1 ENABLE CONDSTORE QRESYNC", "* ENABLED CONDSTORE QRESYNC\r\nA1 OK enabled\r\n");

    async fn client(cfg: Config) -> Client {
        let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
        assert!(c.enable_modseq().await.expect("ENABLE"));
        assert!(c.qresync_enabled());
        c
    }

    fn inbox() -> MailboxName {
        MailboxName::new("INBOX")
    }

    fn uids(wire: &str) -> UidSet {
        UidSet::parse(wire).expect("a UID set")
    }

    /// The example of RFC 7162 section 3.2.5.1, with a message changed twice,
    /// a FETCH without FLAGS, a vanished UID outside the known ones and a
    /// changed message that vanished.
    #[tokio::test]
    async fn examine_collects_vanished_and_changed() {
        let script = vec![
            ENABLE,
            Step::Line(
                "A2 EXAMINE \"INBOX\" (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
                "* OK [CLOSED]\r\n* 314 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 67890007] UIDs valid\r\n\
                 * OK [UIDNEXT 567] Predicted next UID\r\n* FLAGS (\\Answered \\Seen $MDNSent)\r\n\
                 * OK [HIGHESTMODSEQ 20050715194046000] Highest\r\n\
                 * VANISHED (EARLIER) 41,43:116,118,120:211,214:540,9000\r\n\
                 * 49 FETCH (UID 117 FLAGS (\\Seen \\Answered) MODSEQ (20050715194045001))\r\n\
                 * 50 FETCH (UID 119 FLAGS (\\Draft $MDNSent) MODSEQ (20050715194045308))\r\n\
                 * 51 FETCH (UID 541 FLAGS (\\Seen $Forwarded) MODSEQ (20050715194045999))\r\n\
                 * 50 FETCH (UID 119 FLAGS (\\Seen) MODSEQ (20050715194045400))\r\n\
                 * 52 FETCH (UID 560 MODSEQ (20050715194045500))\r\n\
                 * 53 FETCH (UID 214 FLAGS () MODSEQ (20050715194045600))\r\n\
                 A2 OK [READ-ONLY] EXAMINE completed\r\n",
            ),
        ];
        let (cfg, _) = serve(false, GREETING, script).await;
        let mut c = client(cfg).await;
        let known = uids("41,43:211,214:541");
        let params =
            QresyncParams { uid_validity: 67_890_007, mod_seq: 20_050_715_194_045_000, known_uids: Some(&known) };
        let (info, changes) = c.examine_qresync(&inbox(), params).await.expect("EXAMINE");
        assert_eq!((info.exists, info.uid_validity, info.uid_next), (314, 67_890_007, Some(567)));
        assert!(info.read_only);
        let changes = changes.expect("resynchronised");
        assert_eq!(changes.vanished.to_imap(), "41,43:116,118,120:211,214:540");
        let got: Vec<(u32, Vec<Flag>, Option<u64>)> =
            changes.changed.iter().map(|m| (m.uid, m.flags.clone(), m.modseq)).collect();
        assert_eq!(
            got,
            [
                (117, vec![Flag::Seen, Flag::Answered], Some(20_050_715_194_045_001)),
                (119, vec![Flag::Seen], Some(20_050_715_194_045_400)),
                (541, vec![Flag::Seen, Flag::Keyword("$Forwarded".into())], Some(20_050_715_194_045_999)),
            ]
        );
    }

    #[tokio::test]
    async fn uidvalidity_changed_or_modseq_gone_back_means_no_changes() {
        let script = vec![
            ENABLE,
            Step::Line(
                "A2 EXAMINE \"INBOX\" (QRESYNC (1 50))",
                "* 3 EXISTS\r\n* OK [UIDVALIDITY 2] new\r\n* OK [HIGHESTMODSEQ 9] h\r\nA2 OK [READ-ONLY] done\r\n",
            ),
            Step::Line(
                "A3 EXAMINE \"INBOX\" (QRESYNC (2 50))",
                "* 3 EXISTS\r\n* OK [UIDVALIDITY 2] v\r\n* OK [HIGHESTMODSEQ 9] h\r\nA3 OK [READ-ONLY] done\r\n",
            ),
            Step::Line(
                "A4 EXAMINE \"INBOX\" (QRESYNC (2 9))",
                "* 3 EXISTS\r\n* OK [UIDVALIDITY 2] v\r\n* OK [HIGHESTMODSEQ 9] h\r\nA4 OK [READ-ONLY] done\r\n",
            ),
        ];
        let (cfg, _) = serve(false, GREETING, script).await;
        let mut c = client(cfg).await;
        let empty = UidSet::default();
        let cases = [(1, 50, None), (2, 50, None), (2, 9, Some(&empty))];
        let mut results = Vec::new();
        for (uid_validity, mod_seq, known_uids) in cases {
            let params = QresyncParams { uid_validity, mod_seq, known_uids };
            let (info, changes) = c.examine_qresync(&inbox(), params).await.expect("EXAMINE");
            assert_eq!(info.uid_validity, 2);
            results.push(changes);
        }
        assert_eq!(results, [None, None, Some(QresyncChanges::default())]);
    }

    #[tokio::test]
    async fn refused_without_qresync_enabled_or_with_zeros() {
        let script = vec![Step::Line("A1 ENABLE CONDSTORE", "* ENABLED CONDSTORE\r\nA1 OK\r\n")];
        let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1 ENABLE CONDSTORE] hi\r\n", script).await;
        let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
        let params = QresyncParams { uid_validity: 1, mod_seq: 1, known_uids: None };
        let err = c.examine_qresync(&inbox(), params).await.expect_err("no QRESYNC");
        assert!(matches!(err, Error::Unsupported("QRESYNC")), "{err:?}");
        assert!(c.enable_modseq().await.expect("ENABLE") && !c.qresync_enabled());

        let (cfg, _) = serve(false, GREETING, vec![ENABLE]).await;
        let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
        let err = c.fetch_changes(&UidSet::all(), 1).await.expect_err("not enabled");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        c.enable_modseq().await.expect("ENABLE");
        for (uid_validity, mod_seq) in [(0, 1), (1, 0)] {
            let params = QresyncParams { uid_validity, mod_seq, known_uids: None };
            let err = c.examine_qresync(&inbox(), params).await.expect_err("a zero");
            assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        }
        let err = c.fetch_changes(&UidSet::default(), 1).await.expect_err("empty set");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }

    #[tokio::test]
    async fn fetch_changes_with_vanished_modifier() {
        let script = vec![
            ENABLE,
            Step::Line(
                "A2 UID FETCH 1:20 (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ) (CHANGEDSINCE 12 VANISHED)",
                "* VANISHED (EARLIER) 3:5,8\r\n\
                 * 4 FETCH (UID 9 FLAGS (\\Flagged) INTERNALDATE \"13-Sep-2020 12:27:17 +0000\" RFC822.SIZE 1890 MODSEQ (14))\r\n\
                 * VANISHED 10\r\n\
                 * 5 FETCH (UID 20 FLAGS () INTERNALDATE \"13-Sep-2020 12:27:18 +0000\" RFC822.SIZE 12 MODSEQ (15))\r\n\
                 A2 OK Fetch completed\r\n",
            ),
        ];
        let (cfg, _) = serve(false, GREETING, script).await;
        let mut c = client(cfg).await;
        let changes = c.fetch_changes(&UidSet::range(1, 20), 12).await.expect("UID FETCH");
        assert_eq!(changes.vanished.to_imap(), "3:5,8,10");
        let [m, added] = changes.changed.as_slice() else { panic!("{changes:?}") };
        assert_eq!((m.seq, m.uid, m.size, m.modseq), (4, 9, Some(1890), Some(14)));
        assert_eq!(m.flags, [Flag::Flagged]);
        assert_eq!(m.internal_date.map(|d| d.0.unix_timestamp()), Some(1_600_000_037));
        assert_eq!((added.uid, added.size), (20, Some(12)));
    }

    /// After ENABLE QRESYNC a server reports expunges as VANISHED (and an
    /// older one as EXPUNGE): the streams and pipelines read past both, and
    /// past FETCH responses nobody asked for.
    #[tokio::test]
    async fn other_commands_read_past_vanished_and_expunge() {
        let script = vec![
            ENABLE,
            Step::Line(
                "A2 EXAMINE \"INBOX\" (CONDSTORE)",
                "* 4 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* VANISHED 99\r\nA2 OK [READ-ONLY] done\r\n",
            ),
            Step::Line(
                "A3 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)",
                "* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"13-Sep-2020 12:27:17 +0000\" RFC822.SIZE 10 MODSEQ (3))\r\n\
                 * VANISHED 2:3\r\n* 2 EXPUNGE\r\n* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (4))\r\n\
                 * 2 FETCH (UID 4 FLAGS () INTERNALDATE \"13-Sep-2020 12:27:17 +0000\" RFC822.SIZE 11 MODSEQ (3))\r\n\
                 A3 OK done\r\n",
            ),
            Step::Line(
                "A4 UID FETCH 4 (UID FLAGS INTERNALDATE BODY.PEEK[])",
                "* VANISHED 5\r\n* 2 FETCH (UID 4 BODY[] {3}\r\nabc)\r\n* VANISHED (EARLIER) 6\r\nA4 OK done\r\n",
            ),
            Step::Bytes(
                b"A5 APPEND \"INBOX\" {1+}\r\nx\r\n".to_vec(),
                "* VANISHED 4\r\n* 1 EXPUNGE\r\nA5 OK [APPENDUID 7 8] ok\r\n",
            ),
        ];
        let (cfg, _) = serve(false, GREETING, script).await;
        let mut c = client(cfg).await;
        let info = c.examine(&inbox()).await.expect("EXAMINE");
        assert_eq!((info.exists, info.uid_validity), (4, 7));
        let mut metas = Vec::new();
        {
            let mut s = c.fetch_meta(&UidSet::all(), None).await.expect("UID FETCH");
            while let Some(m) = s.next().await.expect("meta") {
                metas.push((m.uid, m.size));
            }
        }
        assert_eq!(metas, [(1, Some(10)), (4, Some(11))]);
        let mut bodies = Vec::new();
        {
            let mut s = c.fetch_bodies(&UidSet::range(4, 4)).await.expect("UID FETCH");
            while let Some(m) = s.next().await.expect("body") {
                bodies.push((m.uid, m.body));
            }
        }
        assert_eq!(bodies, [(4, b"abc".to_vec())]);
        let msg = AppendMessage { body: b"x", flags: &[], internal_date: None };
        assert_eq!(c.append(&inbox(), msg).await.expect("APPEND"), Some(AppendUid { uid_validity: 7, uid: 8 }));
    }

    #[test]
    fn long_known_uid_sets_are_sent_as_their_range() {
        let sparse: UidSet = (1..=20_000).filter(|u| u % 2 == 0).collect();
        assert!(sparse.to_imap().len() > KNOWN_UIDS_MAX_WIRE);
        assert_eq!(known_uids_wire(&sparse), "2:20000");
        let short = uids("1:5000,5002");
        assert_eq!(known_uids_wire(&short), "1:5000,5002");
        let fetch = |uid: &str| Response::Fetch {
            seq: 1,
            items: vec![("UID".into(), Value::Atom(uid.into())), ("FLAGS".into(), Value::List(vec![]))],
        };
        let answer = vec![
            Response::Data {
                name: "VANISHED".into(),
                values: vec![Value::List(vec![Value::Atom("EARLIER".into())]), Value::Atom("1:9".into())],
            },
            fetch("11"),
            fetch("12"),
        ];
        let changes = collect(answer, Some(&sparse)).expect("collect");
        assert_eq!(changes.vanished.to_imap(), "2,4,6,8");
        assert_eq!(changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [12]);
    }
}
