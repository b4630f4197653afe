//! Values of the protocol: flags, INTERNALDATE, UID sets, capabilities,
//! response codes, and the results of SELECT, STATUS, LIST and FETCH.

use std::collections::BTreeSet;
use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::mutf7::MailboxName;

/// A message flag or keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// `\Recent` (session-only: never sent in APPEND or STORE)
    Recent,
    /// A keyword such as `$Forwarded` or `Important` (no backslash).
    Keyword(String),
    /// Another backslash flag, such as `\*` in PERMANENTFLAGS (kept with its backslash).
    Extension(String),
}

impl Flag {
    /// Parses a flag as the server writes it; system flags are case-insensitive.
    pub fn parse(s: &str) -> Flag {
        match s.to_ascii_lowercase().as_str() {
            "\\seen" => Flag::Seen,
            "\\answered" => Flag::Answered,
            "\\flagged" => Flag::Flagged,
            "\\deleted" => Flag::Deleted,
            "\\draft" => Flag::Draft,
            "\\recent" => Flag::Recent,
            _ if s.starts_with('\\') => Flag::Extension(s.to_owned()),
            _ => Flag::Keyword(s.to_owned()),
        }
    }

    /// The wire form.
    pub fn as_str(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Recent => "\\Recent",
            Flag::Keyword(k) | Flag::Extension(k) => k,
        }
    }

    /// Whether a client may set this flag (APPEND, STORE): not `\Recent`, not
    /// `\*`, and a keyword must be a valid atom.
    pub fn settable(&self) -> bool {
        match self {
            Flag::Recent | Flag::Extension(_) => false,
            Flag::Keyword(k) => !k.is_empty() && k.bytes().all(is_atom_char),
            _ => true,
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ATOM-CHAR of RFC 3501 (without `]`, which is only a resp-special).
pub(crate) fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// INTERNALDATE: an instant with the zone the server gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InternalDate(pub OffsetDateTime);

impl InternalDate {
    /// Parses `dd-Mon-yyyy hh:mm:ss +zzzz` (day may be one digit or space-padded).
    pub fn parse(s: &str) -> Option<InternalDate> {
        let s = s.trim_start();
        let (date, rest) = s.split_once(' ')?;
        let (time, zone) = rest.trim_start().split_once(' ')?;
        let mut d = date.split('-');
        let day: u8 = d.next()?.parse().ok()?;
        let month_name = d.next()?;
        let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month_name))?;
        let year: i32 = d.next()?.parse().ok()?;
        if d.next().is_some() {
            return None;
        }
        let mut t = time.split(':').map(|x| x.parse::<u8>().ok());
        let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
        let z = zone.trim().as_bytes();
        if z.len() != 5 || !matches!(z[0], b'+' | b'-') || !z[1..].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let zh = i8::try_from((z[1] - b'0') * 10 + (z[2] - b'0')).ok()?;
        let zm = i8::try_from((z[3] - b'0') * 10 + (z[4] - b'0')).ok()?;
        let sign = if z[0] == b'-' { -1 } else { 1 };
        let offset = UtcOffset::from_hms(sign * zh, sign * zm, 0).ok()?;
        let month = Month::try_from(month as u8 + 1).ok()?;
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let time = Time::from_hms(h, m, sec).ok()?;
        Some(InternalDate(PrimitiveDateTime::new(date, time).assume_offset(offset)))
    }

    /// The wire form, `dd-Mon-yyyy hh:mm:ss +zzzz` (without quotes).
    pub fn to_imap(&self) -> String {
        let t = self.0;
        let off = t.offset();
        let total = off.whole_minutes();
        let sign = if total < 0 { '-' } else { '+' };
        let total = total.unsigned_abs();
        format!(
            "{:02}-{}-{:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
            t.day(),
            MONTHS[usize::from(u8::from(t.month())) - 1],
            t.year(),
            t.hour(),
            t.minute(),
            t.second(),
            total / 60,
            total % 60
        )
    }
}

impl fmt::Display for InternalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_imap())
    }
}

/// A set of UIDs (or sequence numbers): sorted, merged ranges; `u32::MAX`
/// as an upper bound stands for `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UidSet {
    ranges: Vec<(u32, u32)>,
}

impl UidSet {
    /// `1:*`, every message.
    pub fn all() -> UidSet {
        UidSet { ranges: vec![(1, u32::MAX)] }
    }

    /// `from:to` (`to == u32::MAX` means `*`).
    pub fn range(from: u32, to: u32) -> UidSet {
        let (a, b) = if from <= to { (from, to) } else { (to, from) };
        UidSet { ranges: vec![(a.max(1), b.max(1))] }
    }

    /// `from:*`.
    pub fn from_uid(from: u32) -> UidSet {
        UidSet::range(from, u32::MAX)
    }

    /// Whether the set is empty (an empty set must not be sent).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `uid` is in the set.
    pub fn contains(&self, uid: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, b)| b < uid);
        self.ranges.get(i).is_some_and(|&(a, _)| a <= uid)
    }

    /// Adds one UID.
    pub fn insert(&mut self, uid: u32) {
        self.ranges.push((uid, uid));
        self.normalize();
    }

    fn normalize(&mut self) {
        self.ranges.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(a, b) in &self.ranges {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        self.ranges = out;
    }

    /// The ranges, sorted and merged.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// A set of inclusive ranges, in any order, overlapping or not (a
    /// range written backwards counts up); UID 0 is left out.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> UidSet {
        let mut set = UidSet {
            ranges: ranges.into_iter().map(|(a, b)| (a.min(b).max(1), a.max(b))).filter(|&(_, b)| b > 0).collect(),
        };
        set.normalize();
        set
    }

    /// Parses the wire form of a set of UIDs (`1:5000,5002,7:6`) without
    /// expanding its ranges; `None` if it is empty or malformed, has a 0,
    /// or a `*` (which only a client sends).
    pub fn parse(wire: &str) -> Option<UidSet> {
        let number = |s: &str| s.parse::<u32>().ok().filter(|&n| n > 0 && s.bytes().all(|b| b.is_ascii_digit()));
        let ranges = wire
            .split(',')
            .map(|part| match part.split_once(':') {
                Some((a, b)) => Some((number(a)?, number(b)?)),
                None => number(part).map(|n| (n, n)),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(UidSet::from_ranges(ranges))
    }

    /// Adds every UID of `other`.
    pub fn extend_set(&mut self, other: &UidSet) {
        if other.is_empty() {
            return;
        }
        self.ranges.extend_from_slice(&other.ranges);
        self.normalize();
    }

    /// The UIDs in both sets.
    pub fn intersection(&self, other: &UidSet) -> UidSet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = self.ranges[i];
            let (c, d) = other.ranges[j];
            let (lo, hi) = (a.max(c), b.min(d));
            if lo <= hi {
                out.push((lo, hi));
            }
            if b < d {
                i += 1;
            } else {
                j += 1;
            }
        }
        UidSet { ranges: out }
    }

    /// How many UIDs the set holds (`*` counted as `u32::MAX`).
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// The UIDs in ascending order, one by one (lazily: a range is not
    /// expanded in memory).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    /// The wire form, such as `1:5,7,9:*`.
    pub fn to_imap(&self) -> String {
        let bound = |n: u32| if n == u32::MAX { "*".to_owned() } else { n.to_string() };
        self.ranges
            .iter()
            .map(|&(a, b)| if a == b { bound(a) } else { format!("{}:{}", bound(a), bound(b)) })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromIterator<u32> for UidSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> UidSet {
        let mut set = UidSet { ranges: iter.into_iter().filter(|&u| u > 0).map(|u| (u, u)).collect() };
        set.normalize();
        set
    }
}

impl fmt::Display for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_imap())
    }
}

/// What the server says it can do (CAPABILITY), upper-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    set: BTreeSet<String>,
}

impl Capabilities {
    /// From the atoms of a CAPABILITY response or code.
    pub fn from_atoms<'a>(atoms: impl IntoIterator<Item = &'a str>) -> Capabilities {
        Capabilities { set: atoms.into_iter().map(str::to_ascii_uppercase).collect() }
    }

    /// Whether `cap` (case-insensitive) is advertised.
    pub fn has(&self, cap: &str) -> bool {
        self.set.contains(&cap.to_ascii_uppercase())
    }

    /// Whether `AUTH=<mechanism>` is advertised.
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.has(&format!("AUTH={mechanism}"))
    }

    /// Every advertised capability, upper-cased.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(String::as_str)
    }

    /// LITERAL+ (RFC 7888): non-synchronising literals of any size.
    pub fn literal_plus(&self) -> bool {
        self.has("LITERAL+")
    }

    /// LITERAL- (RFC 7888): non-synchronising literals up to 4096 bytes.
    pub fn literal_minus(&self) -> bool {
        self.has("LITERAL-")
    }

    /// UIDPLUS (RFC 4315): APPENDUID, UID EXPUNGE.
    pub fn uidplus(&self) -> bool {
        self.has("UIDPLUS")
    }

    /// CONDSTORE (RFC 7162): MODSEQ, CHANGEDSINCE.
    pub fn condstore(&self) -> bool {
        self.has("CONDSTORE") || self.has("QRESYNC")
    }

    /// QRESYNC (RFC 7162).
    pub fn qresync(&self) -> bool {
        self.has("QRESYNC")
    }

    /// MULTIAPPEND (RFC 3502): several messages in one APPEND.
    pub fn multiappend(&self) -> bool {
        self.has("MULTIAPPEND")
    }

    /// SPECIAL-USE (RFC 6154).
    pub fn special_use(&self) -> bool {
        self.has("SPECIAL-USE")
    }

    /// `DIGEST=SHA1` (Cyrus): `FETCH … DIGEST.SHA1`, the SHA-1 of the whole
    /// message as stored, without sending it.
    pub fn digest_sha1(&self) -> bool {
        self.has("DIGEST=SHA1")
    }

    /// CREATE-SPECIAL-USE (RFC 6154): `CREATE name (USE (\Sent))`.
    pub fn create_special_use(&self) -> bool {
        self.has("CREATE-SPECIAL-USE")
    }

    /// LIST-EXTENDED (RFC 5258): `LIST ... RETURN (...)`.
    pub fn list_extended(&self) -> bool {
        self.has("LIST-EXTENDED")
    }

    /// LIST-STATUS (RFC 5819).
    pub fn list_status(&self) -> bool {
        self.has("LIST-STATUS")
    }

    /// ENABLE (RFC 5161).
    pub fn enable(&self) -> bool {
        self.has("ENABLE")
    }

    /// NAMESPACE (RFC 2342).
    pub fn namespace(&self) -> bool {
        self.has("NAMESPACE")
    }

    /// SASL-IR (RFC 4959): initial response in AUTHENTICATE.
    pub fn sasl_ir(&self) -> bool {
        self.has("SASL-IR")
    }

    /// STARTTLS.
    pub fn starttls(&self) -> bool {
        self.has("STARTTLS")
    }

    /// LOGINDISABLED: LOGIN refused (usually before TLS).
    pub fn login_disabled(&self) -> bool {
        self.has("LOGINDISABLED")
    }
}

/// A response code (`[...]` after OK, NO, BAD, BYE, PREAUTH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseCode {
    /// `[ALERT]`
    Alert,
    /// `[CAPABILITY ...]`
    Capability(Capabilities),
    /// `[PERMANENTFLAGS (...)]`
    PermanentFlags(Vec<Flag>),
    /// `[READ-ONLY]`
    ReadOnly,
    /// `[READ-WRITE]`
    ReadWrite,
    /// `[TRYCREATE]`: the target mailbox does not exist.
    TryCreate,
    /// `[UIDNEXT n]`
    UidNext(u32),
    /// `[UIDVALIDITY n]`
    UidValidity(u32),
    /// `[UNSEEN n]`
    Unseen(u32),
    /// `[HIGHESTMODSEQ n]`
    HighestModSeq(u64),
    /// `[NOMODSEQ]`
    NoModSeq,
    /// `[APPENDUID uidvalidity uid]` (UIDPLUS)
    AppendUid {
        /// UIDVALIDITY of the mailbox appended to.
        uid_validity: u32,
        /// UID of the new message.
        uid: u32,
    },
    /// `[APPENDUID uidvalidity uid-set]` after a MULTIAPPEND (UIDPLUS):
    /// the new UIDs, in the order the messages were given.
    AppendUids {
        /// UIDVALIDITY of the mailbox appended to.
        uid_validity: u32,
        /// The new UIDs as ranges, in order.
        uids: Vec<(u32, u32)>,
    },
    /// `[COPYUID ...]` (kept as text)
    CopyUid(String),
    /// `[OVERQUOTA]` (RFC 5530)
    OverQuota,
    /// `[TOOBIG]` (RFC 4469 / 7889)
    TooBig,
    /// `[LIMIT]` (RFC 5530)
    Limit,
    /// `[THROTTLED]`
    Throttled,
    /// `[UNAVAILABLE]` (RFC 5530)
    Unavailable,
    /// `[AUTHENTICATIONFAILED]`
    AuthenticationFailed,
    /// `[AUTHORIZATIONFAILED]`
    AuthorizationFailed,
    /// `[EXPIRED]`
    Expired,
    /// `[PRIVACYREQUIRED]`
    PrivacyRequired,
    /// `[CONTACTADMIN]`
    ContactAdmin,
    /// `[NONEXISTENT]`
    NonExistent,
    /// `[ALREADYEXISTS]`
    AlreadyExists,
    /// `[INUSE]`
    InUse,
    /// `[SERVERBUG]`
    ServerBug,
    /// `[CLOSED]`
    Closed,
    /// Any other code: its name, upper-cased, and its arguments as sent.
    Other(String, String),
}

/// The special use of a mailbox (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

impl SpecialUse {
    /// From a LIST attribute, case-insensitive.
    pub fn from_attribute(attr: &str) -> Option<SpecialUse> {
        Some(match attr.to_ascii_lowercase().as_str() {
            "\\all" => SpecialUse::All,
            "\\archive" => SpecialUse::Archive,
            "\\drafts" => SpecialUse::Drafts,
            "\\flagged" => SpecialUse::Flagged,
            "\\junk" => SpecialUse::Junk,
            "\\sent" => SpecialUse::Sent,
            "\\trash" => SpecialUse::Trash,
            _ => return None,
        })
    }

    /// Its LIST attribute (`\Sent`).
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }
}

/// One mailbox of a LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Its name (wire form kept; [`MailboxName::name`] for Unicode).
    pub name: MailboxName,
    /// Hierarchy delimiter, `None` for a flat name space.
    pub delimiter: Option<char>,
    /// Attributes as sent (`\HasNoChildren`, `\Noselect`, `\Sent`, ...).
    pub attributes: Vec<String>,
    /// Special use, from the attributes.
    pub special_use: Option<SpecialUse>,
    /// Whether the user is subscribed to it.
    pub subscribed: bool,
}

impl MailboxInfo {
    /// Whether the attribute (case-insensitive) is present.
    pub fn has_attribute(&self, attr: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }

    /// Whether it can be selected (not `\Noselect` nor `\NonExistent`).
    pub fn selectable(&self) -> bool {
        !self.has_attribute("\\Noselect") && !self.has_attribute("\\NonExistent")
    }
}

/// One namespace: a prefix and its hierarchy delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Prefix, wire form (such as `""` or `INBOX.`).
    pub prefix: MailboxName,
    /// Hierarchy delimiter, `None` when flat.
    pub delimiter: Option<char>,
}

/// NAMESPACE: personal, other users', shared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespaces {
    /// The user's own namespaces.
    pub personal: Vec<Namespace>,
    /// Other users' namespaces.
    pub other: Vec<Namespace>,
    /// Shared namespaces.
    pub shared: Vec<Namespace>,
}

/// What SELECT or EXAMINE tells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectInfo {
    /// EXISTS: number of messages.
    pub exists: u32,
    /// RECENT.
    pub recent: u32,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT, when the server sent it.
    pub uid_next: Option<u32>,
    /// HIGHESTMODSEQ, when CONDSTORE is on and the mailbox has mod-sequences.
    pub highest_modseq: Option<u64>,
    /// FLAGS: flags defined in the mailbox.
    pub flags: Vec<Flag>,
    /// PERMANENTFLAGS, when sent.
    pub permanent_flags: Vec<Flag>,
    /// Whether the mailbox was opened read-only.
    pub read_only: bool,
}

/// What STATUS tells (fields the server did not return are `None`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusInfo {
    /// MESSAGES.
    pub messages: Option<u32>,
    /// UIDNEXT.
    pub uid_next: Option<u32>,
    /// UIDVALIDITY.
    pub uid_validity: Option<u32>,
    /// UNSEEN.
    pub unseen: Option<u32>,
    /// HIGHESTMODSEQ (CONDSTORE).
    pub highest_modseq: Option<u64>,
    /// SIZE in bytes (STATUS=SIZE, RFC 8438).
    pub size: Option<u64>,
}

/// The storage quota of a mailbox's quota root (GETQUOTAROOT, RFC 9208's
/// `STORAGE` resource, which counts units of 1,024 bytes), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bytes used.
    pub used_bytes: u64,
    /// The limit in bytes.
    pub limit_bytes: u64,
}

/// Metadata of one message (UID FETCH of UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// Sequence number.
    pub seq: u32,
    /// UID.
    pub uid: u32,
    /// Flags.
    pub flags: Vec<Flag>,
    /// INTERNALDATE.
    pub internal_date: Option<InternalDate>,
    /// RFC822.SIZE.
    pub size: Option<u64>,
    /// MODSEQ, when asked for and CONDSTORE is on.
    pub modseq: Option<u64>,
}

/// What the server tells of a stored message without sending it: its size,
/// and its SHA-1 where the server offers `DIGEST=SHA1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCheck {
    /// UID.
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: u64,
    /// `DIGEST.SHA1`, when asked for and sent.
    pub sha1: Option<[u8; 20]>,
}

/// One message body as fetched (`BODY.PEEK[]`), with the flags and date sent alongside.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    /// UID.
    pub uid: u32,
    /// Flags, when the server sent them in the same response.
    pub flags: Option<Vec<Flag>>,
    /// INTERNALDATE, when sent in the same response.
    pub internal_date: Option<InternalDate>,
    /// The message, byte for byte.
    pub body: Vec<u8>,
}

impl fmt::Debug for FetchedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedMessage")
            .field("uid", &self.uid)
            .field("flags", &self.flags)
            .field("internal_date", &self.internal_date)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// `[APPENDUID v uid]`: where an appended message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendUid {
    /// UIDVALIDITY of the mailbox.
    pub uid_validity: u32,
    /// UID of the new message.
    pub uid: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let cases = [
            ("\\Seen", Flag::Seen, true),
            ("\\SEEN", Flag::Seen, true),
            ("\\answered", Flag::Answered, true),
            ("\\Flagged", Flag::Flagged, true),
            ("\\Deleted", Flag::Deleted, true),
            ("\\Draft", Flag::Draft, true),
            ("\\Recent", Flag::Recent, false),
            ("$Forwarded", Flag::Keyword("$Forwarded".into()), true),
            ("Important", Flag::Keyword("Important".into()), true),
            ("\\*", Flag::Extension("\\*".into()), false),
            ("\\MDNSent", Flag::Extension("\\MDNSent".into()), false),
        ];
        for (wire, flag, settable) in cases {
            assert_eq!(Flag::parse(wire), flag, "{wire}");
            assert_eq!(flag.settable(), settable, "{wire}");
            assert!(flag.as_str().eq_ignore_ascii_case(wire));
        }
    }

    #[test]
    fn dates() {
        let cases = [
            ("13-Sep-2020 12:27:17 +0000", "13-Sep-2020 12:27:17 +0000", 1_600_000_037),
            (" 2-Mar-2020 08:00:00 +0100", "02-Mar-2020 08:00:00 +0100", 1_583_132_400),
            ("2-mar-2020 08:00:00 -0130", "02-Mar-2020 08:00:00 -0130", 1_583_141_400),
            ("19-Apr-1998 15:33:20 +0000", "19-Apr-1998 15:33:20 +0000", 893_000_000),
        ];
        for (wire, canon, unix) in cases {
            let d = InternalDate::parse(wire).unwrap_or_else(|| panic!("{wire}"));
            assert_eq!(d.to_imap(), canon);
            assert_eq!(d.0.unix_timestamp(), unix, "{wire}");
        }
        for bad in
            ["", "13-Sep-2020", "32-Sep-2020 12:00:00 +0000", "13-Foo-2020 12:00:00 +0000", "13-Sep-2020 1:2 +0000"]
        {
            assert_eq!(InternalDate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn uid_sets() {
        let cases: [(UidSet, &str); 5] = [
            (UidSet::all(), "1:*"),
            ([5, 1, 2, 3, 7, 9, 10].into_iter().collect(), "1:3,5,7,9:10"),
            (UidSet::from_uid(42), "42:*"),
            (UidSet::range(9, 4), "4:9"),
            ([3, 3, 0].into_iter().collect(), "3"),
        ];
        for (set, wire) in cases {
            assert_eq!(set.to_imap(), wire);
        }
        let mut s = UidSet::default();
        assert!(s.is_empty());
        s.insert(4);
        s.insert(5);
        assert_eq!(s.to_imap(), "4:5");
        assert!(s.contains(5) && !s.contains(6));
    }

    #[test]
    fn uid_sets_from_the_wire() {
        let cases: [(&str, Option<&str>, u64); 10] = [
            ("1:5000,5002", Some("1:5000,5002"), 5001),
            ("5002,1:5000,5001", Some("1:5002"), 5002),
            ("7:3,9", Some("3:7,9"), 6),
            ("42", Some("42"), 1),
            ("4294967294:4294967295", Some("4294967294:*"), 2),
            ("", None, 0),
            ("1,,2", None, 0),
            ("0:3", None, 0),
            ("3:*", None, 0),
            ("1:2:3", None, 0),
        ];
        for (wire, canon, count) in cases {
            let set = UidSet::parse(wire);
            assert_eq!(set.as_ref().map(UidSet::to_imap).as_deref(), canon, "{wire}");
            assert_eq!(set.map_or(0, |s| s.count()), count, "{wire}");
        }
    }

    #[test]
    fn uid_set_operations() {
        let a = UidSet::parse("1:10,20:30,40").expect("a");
        let b = UidSet::parse("5:25,40:50").expect("b");
        assert_eq!(a.intersection(&b).to_imap(), "5:10,20:25,40");
        assert_eq!(b.intersection(&a), a.intersection(&b));
        assert!(a.intersection(&UidSet::default()).is_empty());
        let mut u = a;
        u.extend_set(&b);
        assert_eq!(u.to_imap(), "1:30,40:50");
        assert_eq!(UidSet::parse("3:5,9").expect("set").iter().collect::<Vec<_>>(), [3, 4, 5, 9]);
        assert_eq!(UidSet::from_ranges([(0, 0), (0, 2), (9, 7)]).to_imap(), "1:2,7:9");
        assert_eq!(UidSet::all().count(), u64::from(u32::MAX));
    }
}
