//! Findings: every action of a script, and for those by which a message
//! leaves the box, where it goes and whether that is inside the
//! organisation.
//!
//! Rules: a finding is made for `redirect` (with `:copy` or not),
//! `notify` (RFC 5435's `notify "mailto:…"` and the older draft's `notify
//! :method "mailto" :options […]`), `pipe` and `execute` (Dovecot's
//! vnd.dovecot.pipe/execute), `include` (the name, `:personal` by
//! default, so that the caller can fetch and read that script too),
//! `vacation` and `reject`/`ereject` (an answer to the sender), `report`
//! (vnd.dovecot.report: the message sent to an address), and
//! `fileinto`, `keep`, `discard` (the message stays). A target written
//! with a variable is resolved when `variables` knows it, else it is
//! [`Target::Dynamic`] and its reach [`Reach::Dynamic`] (unless only the
//! local part is dynamic: `${user}@gmail.com` is external). An address is
//! internal when its domain (after the last `@`, in `<…>` if there are
//! brackets, any case, a final `.` ignored) is one of the [`Domains`]
//! exactly: a subdomain is not internal unless it is listed, and an
//! address without a domain is not internal. A `mailto:` URI's recipients
//! are its path's addresses and its `to`, `cc`, `bcc` fields, percent-
//! decoded; it is external if any one of them is. Commands under an `if`,
//! `elsif`, `else` or an unknown command's block are marked conditional.

use std::fmt;
use std::ops::Range;

use crate::ast::{Argument, Command, CommandKind, Script, Split};
use crate::variables::{Assignment, Variables, apply_modifiers};

/// The domains whose addresses are inside the organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Domains {
    domains: Vec<String>,
}

impl Domains {
    /// The set of `domains` (any case).
    pub fn new<I, S>(domains: I) -> Domains
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Domains { domains: domains.into_iter().map(|d| normalise(d.as_ref())).collect() }
    }

    /// Whether `address` (`local@domain`, or with `<…>`) is internal.
    pub fn is_internal(&self, address: &str) -> bool {
        domain_of(address).is_some_and(|d| self.domains.contains(&normalise(d)))
    }

    /// The reach of a message sent to all of `recipients`: internal only
    /// if there is at least one and every one is internal.
    pub fn reach(&self, recipients: &[String]) -> Reach {
        if !recipients.is_empty() && recipients.iter().all(|r| self.is_internal(r)) {
            Reach::Internal
        } else {
            Reach::External
        }
    }
}

fn normalise(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The address inside `<…>` if there are brackets, trimmed.
pub fn bare_address(address: &str) -> &str {
    let inner = match (address.find('<'), address.rfind('>')) {
        (Some(open), Some(close)) if open < close => &address[open + 1..close],
        _ => address,
    };
    inner.trim()
}

fn domain_of(address: &str) -> Option<&str> {
    let bare = bare_address(address);
    bare.rfind('@').map(|at| &bare[at + 1..]).filter(|d| !d.trim().is_empty())
}

/// Where a message goes by an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// It stays in the box (`fileinto`, `keep`, `discard`).
    Stays,
    /// To addresses of the internal domains only.
    Internal,
    /// To at least one address outside them.
    External,
    /// To a target computed when the script runs.
    Dynamic,
    /// An answer to whoever sent the message (`vacation`, `reject`).
    Sender,
    /// To a program or another script: this script alone cannot tell.
    Opaque,
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reach::Stays => "stays",
            Reach::Internal => "internal",
            Reach::External => "external",
            Reach::Dynamic => "dynamic",
            Reach::Sender => "sender",
            Reach::Opaque => "opaque",
        })
    }
}

/// What an action names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing (`keep`, `discard`, `vacation`).
    None,
    /// A value known without running the script.
    Known(String),
    /// A value with a variable the reader cannot know: as written.
    Dynamic(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::None => Ok(()),
            Target::Known(v) => write!(f, "{v:?}"),
            Target::Dynamic(v) => write!(f, "dynamic {v:?}"),
        }
    }
}

/// Where `include` looks for a script (RFC 6609).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeLocation {
    /// The user's own scripts (the default).
    Personal,
    /// The server's global scripts.
    Global,
}

/// Which `notify` syntax a script uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifySyntax {
    /// RFC 5435: the method is the positional URI.
    Rfc5435,
    /// The older draft (Dovecot's deprecated "notify"): `:method`, `:options`.
    Draft,
}

/// The action found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `redirect`; with `:copy` the message also stays.
    Redirect {
        /// Whether `:copy` was given.
        copy: bool,
    },
    /// `notify`.
    Notify {
        /// The syntax used.
        syntax: NotifySyntax,
        /// Whether the method is `mailto`.
        mailto: bool,
    },
    /// `pipe` to a program.
    Pipe {
        /// Whether `:copy` was given.
        copy: bool,
    },
    /// `execute` a program (the message given to it only with `:pipe`).
    Execute {
        /// Whether `:pipe` was given.
        pipe: bool,
    },
    /// `include` another script.
    Include {
        /// Where it is looked for.
        location: IncludeLocation,
        /// `:optional`: a missing script is no error.
        optional: bool,
    },
    /// `vacation`: an automatic answer.
    Vacation {
        /// `:days`, if given.
        days: Option<u64>,
        /// `:seconds` (RFC 6131), if given.
        seconds: Option<u64>,
        /// `:from`, if given (resolved, or as written).
        from: Option<String>,
        /// `:addresses`, if given.
        addresses: Vec<String>,
    },
    /// `reject` or `ereject`: a refusal sent back.
    Reject,
    /// `report` (vnd.dovecot.report): the message sent as an abuse
    /// report to an address.
    Report,
    /// `fileinto` a folder.
    FileInto {
        /// Whether `:copy` was given.
        copy: bool,
    },
    /// `keep`.
    Keep,
    /// `discard`.
    Discard,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |on: bool, name: &str| if on { format!(" :{name}") } else { String::new() };
        match self {
            Action::Redirect { copy } => write!(f, "redirect{}", flag(*copy, "copy")),
            Action::Notify { syntax, mailto } => {
                let syntax = match syntax {
                    NotifySyntax::Rfc5435 => "",
                    NotifySyntax::Draft => " (draft)",
                };
                write!(f, "notify{}{syntax}", if *mailto { " mailto" } else { "" })
            }
            Action::Pipe { copy } => write!(f, "pipe{}", flag(*copy, "copy")),
            Action::Execute { pipe } => write!(f, "execute{}", flag(*pipe, "pipe")),
            Action::Include { location, optional } => {
                let location = match location {
                    IncludeLocation::Personal => " :personal",
                    IncludeLocation::Global => " :global",
                };
                write!(f, "include{location}{}", flag(*optional, "optional"))
            }
            Action::Vacation { days, seconds, from, addresses } => {
                f.write_str("vacation")?;
                if let Some(d) = days {
                    write!(f, " :days {d}")?;
                }
                if let Some(s) = seconds {
                    write!(f, " :seconds {s}")?;
                }
                if let Some(from) = from {
                    write!(f, " :from {from:?}")?;
                }
                if !addresses.is_empty() {
                    write!(f, " :addresses {addresses:?}")?;
                }
                Ok(())
            }
            Action::Reject => f.write_str("reject"),
            Action::Report => f.write_str("report"),
            Action::FileInto { copy } => write!(f, "fileinto{}", flag(*copy, "copy")),
            Action::Keep => f.write_str("keep"),
            Action::Discard => f.write_str("discard"),
        }
    }
}

/// One action of one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The script's name.
    pub script: String,
    /// The line of the command.
    pub line: u32,
    /// The command's bytes in the source (for the strip transform).
    pub span: Range<usize>,
    /// What it does.
    pub action: Action,
    /// What it names: an address, a URI, a program, a script, a folder.
    pub target: Target,
    /// The addresses it sends to, when known (redirect, notify mailto).
    pub recipients: Vec<String>,
    /// Where the message goes.
    pub reach: Reach,
    /// Whether it runs only under a condition.
    pub conditional: bool,
}

impl Finding {
    /// Whether the message (or a notice of it) leaves the box this way.
    pub fn leaves(&self) -> bool {
        self.reach != Reach::Stays
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} {}", self.script, self.line, self.action)?;
        if self.target != Target::None {
            write!(f, " {}", self.target)?;
        }
        if matches!(self.action, Action::Notify { .. }) && !self.recipients.is_empty() {
            write!(f, " to {:?}", self.recipients)?;
        }
        write!(f, " {}", self.reach)?;
        if self.conditional {
            f.write_str(" (conditional)")?;
        }
        Ok(())
    }
}

/// What reading one script found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The script's name.
    pub script: String,
    /// The capabilities it requires.
    pub requires: Vec<String>,
    /// Its actions, in the order written.
    pub findings: Vec<Finding>,
    /// Its `set` commands, in the order written.
    pub assignments: Vec<Assignment>,
}

impl Report {
    /// The findings by which something leaves the box.
    pub fn leaving(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.leaves())
    }

    /// The names of the scripts it includes, with where they are.
    pub fn includes(&self) -> impl Iterator<Item = (&str, IncludeLocation)> {
        self.findings.iter().filter_map(|f| match (&f.action, &f.target) {
            (Action::Include { location, .. }, Target::Known(name) | Target::Dynamic(name)) => {
                Some((name.as_str(), *location))
            }
            _ => None,
        })
    }
}

/// The findings of `script` (named `name`), judged against `domains`.
pub fn find(name: &str, script: &Script, domains: &Domains) -> Report {
    let mut walk = Walk {
        name,
        domains,
        variables: Variables::new(script.requires("variables")),
        findings: Vec::new(),
        assignments: Vec::new(),
    };
    walk.commands(&script.commands, false);
    Report {
        script: name.to_owned(),
        requires: script.requires.clone(),
        findings: walk.findings,
        assignments: walk.assignments,
    }
}

struct Walk<'a> {
    name: &'a str,
    domains: &'a Domains,
    variables: Variables,
    findings: Vec<Finding>,
    assignments: Vec<Assignment>,
}

impl Walk<'_> {
    fn commands(&mut self, commands: &[Command], conditional: bool) {
        for c in commands {
            self.command(c, conditional);
            if let Some(block) = &c.block {
                self.commands(block, true);
            }
        }
    }

    /// The value of a string argument: resolved, or dynamic as written.
    fn target(&self, arg: Option<&Argument>) -> Target {
        let Some(s) = arg.and_then(Argument::strings).and_then(|l| l.single()) else { return Target::None };
        if !self.variables.mentions(&s.value) {
            return Target::Known(s.value.clone());
        }
        match self.variables.resolve(&s.value) {
            Some(v) => Target::Known(v),
            None => Target::Dynamic(s.value.clone()),
        }
    }

    fn strings(&self, arg: Option<&Argument>) -> Vec<String> {
        let items = arg.and_then(Argument::strings).map(|l| l.items.as_slice()).unwrap_or_default();
        items.iter().map(|s| self.variables.resolve(&s.value).unwrap_or_else(|| s.value.clone())).collect()
    }

    fn command(&mut self, c: &Command, conditional: bool) {
        let split = c.split(c.kind.valued_tags());
        let first = split.positional.first().copied();
        let (action, target, recipients, reach) = match c.kind {
            CommandKind::Set => {
                self.set(c, &split, conditional);
                return;
            }
            CommandKind::Redirect => {
                let target = self.target(split.positional.last().copied());
                let action = Action::Redirect { copy: split.has("copy") };
                match &target {
                    Target::Known(_) if split.has("list") => (action, target, Vec::new(), Reach::Opaque),
                    Target::Known(a) => {
                        let recipients = vec![bare_address(a).to_owned()];
                        let reach = self.domains.reach(&recipients);
                        (action, target, recipients, reach)
                    }
                    Target::Dynamic(written) => {
                        // `${user}@gmail.com` goes outside whatever `user` is.
                        let domain = domain_of(written).filter(|d| !self.variables.mentions(d));
                        let reach = if domain.is_some() {
                            self.domains.reach(std::slice::from_ref(written))
                        } else {
                            Reach::Dynamic
                        };
                        (action, target, Vec::new(), reach)
                    }
                    Target::None => (action, target, Vec::new(), Reach::Dynamic),
                }
            }
            CommandKind::Report => {
                let target = self.target(split.positional.last().copied());
                let (recipients, reach) = match &target {
                    Target::Known(a) => {
                        let recipients = vec![bare_address(a).to_owned()];
                        let reach = self.domains.reach(&recipients);
                        (recipients, reach)
                    }
                    _ => (Vec::new(), Reach::Dynamic),
                };
                (Action::Report, target, recipients, reach)
            }
            CommandKind::Notify => return self.notify(c, &split, conditional),
            CommandKind::Pipe => {
                (Action::Pipe { copy: split.has("copy") }, self.target(first), Vec::new(), Reach::Opaque)
            }
            CommandKind::Execute => {
                (Action::Execute { pipe: split.has("pipe") }, self.target(first), Vec::new(), Reach::Opaque)
            }
            CommandKind::Include => {
                let location = if split.has("global") { IncludeLocation::Global } else { IncludeLocation::Personal };
                let action = Action::Include { location, optional: split.has("optional") };
                (action, self.target(first), Vec::new(), Reach::Opaque)
            }
            CommandKind::Vacation => {
                let number = |tag| match split.value(tag) {
                    Some(Argument::Number { value, .. }) => Some(*value),
                    _ => None,
                };
                let from = match self.target(split.value("from")) {
                    Target::Known(v) | Target::Dynamic(v) => Some(v),
                    Target::None => None,
                };
                let action = Action::Vacation {
                    days: number("days"),
                    seconds: number("seconds"),
                    from,
                    addresses: self.strings(split.value("addresses")),
                };
                (action, Target::None, Vec::new(), Reach::Sender)
            }
            CommandKind::Reject | CommandKind::Ereject => (Action::Reject, Target::None, Vec::new(), Reach::Sender),
            CommandKind::FileInto => {
                (Action::FileInto { copy: split.has("copy") }, self.target(first), Vec::new(), Reach::Stays)
            }
            CommandKind::Keep => (Action::Keep, Target::None, Vec::new(), Reach::Stays),
            CommandKind::Discard => (Action::Discard, Target::None, Vec::new(), Reach::Stays),
            _ => return,
        };
        self.push(c, action, target, recipients, reach, conditional);
    }

    fn push(
        &mut self,
        c: &Command,
        action: Action,
        target: Target,
        recipients: Vec<String>,
        reach: Reach,
        conditional: bool,
    ) {
        self.findings.push(Finding {
            script: self.name.to_owned(),
            line: c.line,
            span: c.span.clone(),
            action,
            target,
            recipients,
            reach,
            conditional,
        });
    }

    fn set(&mut self, c: &Command, split: &Split<'_>, conditional: bool) {
        let (Some(name), Some(value)) = (
            split.positional.first().and_then(|a| a.strings()).and_then(|l| l.single()),
            split.positional.get(1).and_then(|a| a.strings()).and_then(|l| l.single()),
        ) else {
            return;
        };
        let modifiers: Vec<String> = split.tags.iter().map(|(t, _)| t.clone()).collect();
        let resolved = self.variables.resolve(&value.value).and_then(|v| apply_modifiers(&v, &modifiers));
        self.variables.set(&name.value, resolved.clone(), conditional);
        self.assignments.push(Assignment { line: c.line, name: name.value.clone(), value: resolved, conditional });
    }

    fn notify(&mut self, c: &Command, split: &Split<'_>, conditional: bool) {
        let draft = split.has("method");
        let (syntax, method) = if draft {
            (NotifySyntax::Draft, self.target(split.value("method")))
        } else {
            (NotifySyntax::Rfc5435, self.target(split.positional.last().copied()))
        };
        let mailto = match &method {
            Target::Known(m) | Target::Dynamic(m) => m.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("mailto")),
            Target::None => false,
        };
        let (recipients, reach) = match (&method, mailto) {
            (Target::Known(_), false) => (Vec::new(), Reach::Opaque),
            (Target::Known(uri), true) => {
                let mut recipients = if draft { Vec::new() } else { mailto_recipients(uri) };
                if draft {
                    let options = split.value("options");
                    let dynamic = options
                        .and_then(Argument::strings)
                        .is_some_and(|l| l.items.iter().any(|s| self.variables.resolve(&s.value).is_none()));
                    if dynamic {
                        let action = Action::Notify { syntax, mailto };
                        return self.push(c, action, method, Vec::new(), Reach::Dynamic, conditional);
                    }
                    recipients = self.strings(options).iter().map(|a| bare_address(a).to_owned()).collect();
                }
                let reach = self.domains.reach(&recipients);
                (recipients, reach)
            }
            _ => (Vec::new(), Reach::Dynamic),
        };
        self.push(c, Action::Notify { syntax, mailto }, method, recipients, reach, conditional);
    }
}

/// The recipients of a `mailto:` URI (RFC 6068): the path's addresses
/// and the `to`, `cc` and `bcc` fields', percent-decoded.
pub fn mailto_recipients(uri: &str) -> Vec<String> {
    let rest = uri.get(7..).filter(|_| uri.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("mailto:")));
    let Some(rest) = rest else { return Vec::new() };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut out: Vec<String> = Vec::new();
    let mut add = |list: &str| {
        for a in percent_decode(list).split(',') {
            let a = bare_address(a);
            if !a.is_empty() {
                out.push(a.to_owned());
            }
        }
    };
    add(path);
    for field in query.split('&') {
        if let Some((name, value)) = field.split_once('=')
            && ["to", "cc", "bcc"].iter().any(|n| name.eq_ignore_ascii_case(n))
        {
            add(value);
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    #[test]
    fn internal_or_not() {
        let d = Domains::new(["adm.cfwb.be", "CFWB.be."]);
        let table: &[(&str, bool)] = &[
            ("ec012345@adm.cfwb.be", true),
            ("EC012345@ADM.CFWB.BE", true),
            ("x@cfwb.be", true),
            ("x@cfwb.be.", true),
            ("Secrétariat <po000123@adm.cfwb.be>", true),
            ("x@sub.adm.cfwb.be", false),
            ("x@gmail.com", false),
            ("x@adm.cfwb.be.evil.com", false),
            ("\"a@adm.cfwb.be\"@evil.com", false),
            ("local-only", false),
            ("x@", false),
        ];
        for (address, internal) in table {
            assert_eq!(d.is_internal(address), *internal, "{address}");
        }
        assert_eq!(d.reach(&[]), Reach::External);
    }

    #[test]
    fn mailto_uris() {
        let table: &[(&str, &[&str])] = &[
            ("mailto:a@x.org", &["a@x.org"]),
            ("MAILTO:a@x.org,b@y.org?subject=hi", &["a@x.org", "b@y.org"]),
            ("mailto:?to=a%40x.org&cc=b@y.org&Bcc=c@z.org&body=x", &["a@x.org", "b@y.org", "c@z.org"]),
            ("mailto:a%2Cb@x.org", &["a", "b@x.org"]),
            ("xmpp:a@x.org", &[]),
            ("mailto:", &[]),
        ];
        for (uri, want) in table {
            assert_eq!(mailto_recipients(uri), want.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(), "{uri}");
        }
    }

    #[test]
    fn each_command_found() {
        let d = Domains::new(["adm.cfwb.be"]);
        let table: &[(&str, &str)] = &[
            ("redirect \"a@gmail.com\";", "t:1 redirect \"a@gmail.com\" external"),
            ("redirect :copy \"b@adm.cfwb.be\";", "t:1 redirect :copy \"b@adm.cfwb.be\" internal"),
            ("redirect :list \"list\";", "t:1 redirect \"list\" opaque"),
            ("redirect :notify \"never\" :ret \"hdrs\" \"a@x.be\";", "t:1 redirect \"a@x.be\" external"),
            (
                "notify \"mailto:a@adm.cfwb.be?cc=b@x.be\";",
                "t:1 notify mailto \"mailto:a@adm.cfwb.be?cc=b@x.be\" to [\"a@adm.cfwb.be\", \"b@x.be\"] external",
            ),
            ("notify :importance \"1\" :message \"m\" \"xmpp:a@x\";", "t:1 notify \"xmpp:a@x\" opaque"),
            (
                "notify :method \"mailto\" :options [\"a@x.be\"] :low;",
                "t:1 notify mailto (draft) \"mailto\" to [\"a@x.be\"] external",
            ),
            ("notify :method \"mailto\";", "t:1 notify mailto (draft) \"mailto\" external"),
            ("pipe :copy \"sms\" [\"+32\"];", "t:1 pipe :copy \"sms\" opaque"),
            ("execute :pipe \"scan\";", "t:1 execute :pipe \"scan\" opaque"),
            ("include :global :optional \"spam\";", "t:1 include :global :optional \"spam\" opaque"),
            ("include \"mine\";", "t:1 include :personal \"mine\" opaque"),
            (
                "vacation :days 7 :from \"me@x\" :addresses [\"a@b\", \"c@d\"] \"away\";",
                "t:1 vacation :days 7 :from \"me@x\" :addresses [\"a@b\", \"c@d\"] sender",
            ),
            ("reject \"no\";", "t:1 reject sender"),
            ("fileinto :copy :flags \"\\\\Seen\" \"INBOX.a\";", "t:1 fileinto :copy \"INBOX.a\" stays"),
            ("if true { keep; } else { discard; }", "t:1 keep stays (conditional)\nt:1 discard stays (conditional)"),
            (
                "require \"variables\"; set \"f\" \"x@gmail.com\"; redirect \"${f}\";",
                "t:1 redirect \"x@gmail.com\" external",
            ),
            ("require \"variables\"; redirect \"${f}\";", "t:1 redirect dynamic \"${f}\" dynamic"),
            ("redirect \"${f}\";", "t:1 redirect \"${f}\" external"),
            (
                "require \"variables\"; set :lower \"d\" \"ADM.cfwb.BE\"; redirect \"a@${d}\";",
                "t:1 redirect \"a@adm.cfwb.be\" internal",
            ),
            ("require \"variables\"; redirect \"${u}@Gmail.com\";", "t:1 redirect dynamic \"${u}@Gmail.com\" external"),
            (
                "require \"variables\"; redirect :copy \"${u}@adm.cfwb.be\";",
                "t:1 redirect :copy dynamic \"${u}@adm.cfwb.be\" internal",
            ),
            ("require \"variables\"; redirect \"a@${d}\";", "t:1 redirect dynamic \"a@${d}\" dynamic"),
            ("report \"abuse\" \"spam\" \"abuse@x.be\";", "t:1 report \"abuse@x.be\" external"),
            (
                "require \"variables\"; if true { set \"d\" \"x\"; } redirect \"a@${d}\";",
                "t:1 redirect dynamic \"a@${d}\" dynamic",
            ),
            ("require \"variables\"; set \"a\" \"${1}\"; pipe \"${a}\";", "t:1 pipe dynamic \"${a}\" opaque"),
            ("require [\"variables\",\"enotify\"]; notify \"${m}\";", "t:1 notify dynamic \"${m}\" dynamic"),
            ("stop; frob \"a@b\";", ""),
        ];
        for (source, want) in table {
            let script = parse("t", source).unwrap_or_else(|e| panic!("{source}: {e}"));
            let report = find("t", &script, &d);
            let got: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
            assert_eq!(got.join("\n"), *want, "{source}");
        }
    }
}
