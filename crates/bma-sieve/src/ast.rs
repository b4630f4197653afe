//! The parsed script: commands, tests and arguments as RFC 5228 §8.2
//! writes them, each with its byte range and line.
//!
//! Rules: the tree keeps what was written (names in their case, strings
//! unescaped, encoded characters decoded when the script requires
//! "encoded-character") and classifies names into closed sets
//! ([`CommandKind`], [`TestKind`]) case-insensitively, an unknown name
//! kept as `Other` with its arguments read generically. A command's span
//! runs from its name to its `;` or closing `}`, so that the source can be
//! cut at it. Which tags take a value is not in the grammar: the few we
//! need are told to [`Command::split`] by the reader that asks.

use std::ops::Range;

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The top-level commands, in order.
    pub commands: Vec<Command>,
    /// The capabilities named by `require`, in order.
    pub requires: Vec<String>,
}

impl Script {
    /// Whether the script requires `capability` (compared ignoring ASCII case).
    pub fn requires(&self, capability: &str) -> bool {
        self.requires.iter().any(|r| r.eq_ignore_ascii_case(capability))
    }
}

/// The commands a reader tells apart; every other name is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// `require`
    Require,
    /// `if`
    If,
    /// `elsif`
    ElsIf,
    /// `else`
    Else,
    /// `stop`
    Stop,
    /// `keep`
    Keep,
    /// `discard`
    Discard,
    /// `fileinto` (RFC 5228 §4.1)
    FileInto,
    /// `redirect` (RFC 5228 §4.2, `:copy` RFC 3894)
    Redirect,
    /// `reject` (RFC 5429)
    Reject,
    /// `ereject` (RFC 5429)
    Ereject,
    /// `vacation` (RFC 5230)
    Vacation,
    /// `notify` (RFC 5435, or the older draft's `:method` form)
    Notify,
    /// `set` (RFC 5229)
    Set,
    /// `include` (RFC 6609)
    Include,
    /// `pipe` (vnd.dovecot.pipe)
    Pipe,
    /// `execute` (vnd.dovecot.execute)
    Execute,
    /// `report` (vnd.dovecot.report)
    Report,
    /// Any other name.
    Other,
}

impl CommandKind {
    /// The kind of the command named `name` (any case).
    pub fn of(name: &str) -> CommandKind {
        match name.to_ascii_lowercase().as_str() {
            "require" => CommandKind::Require,
            "if" => CommandKind::If,
            "elsif" => CommandKind::ElsIf,
            "else" => CommandKind::Else,
            "stop" => CommandKind::Stop,
            "keep" => CommandKind::Keep,
            "discard" => CommandKind::Discard,
            "fileinto" => CommandKind::FileInto,
            "redirect" => CommandKind::Redirect,
            "reject" => CommandKind::Reject,
            "ereject" => CommandKind::Ereject,
            "vacation" => CommandKind::Vacation,
            "notify" => CommandKind::Notify,
            "set" => CommandKind::Set,
            "include" => CommandKind::Include,
            "pipe" => CommandKind::Pipe,
            "execute" => CommandKind::Execute,
            "report" => CommandKind::Report,
            _ => CommandKind::Other,
        }
    }
}

impl CommandKind {
    /// The tags of this command that take a value (lower case), as far
    /// as the reader needs them: the base spec and the extensions of the
    /// commands it judges (imap4flags, RFC 6009, RFC 9042, the notify
    /// draft, vnd.dovecot.execute).
    pub fn valued_tags(self) -> &'static [&'static str] {
        match self {
            CommandKind::Redirect => &["notify", "ret", "by", "bymode"],
            CommandKind::FileInto => &["flags", "mailboxid", "specialuse"],
            CommandKind::Keep => &["flags"],
            CommandKind::Vacation => &["days", "seconds", "subject", "from", "addresses", "handle"],
            CommandKind::Notify => &["from", "importance", "options", "message", "method", "id"],
            CommandKind::Execute => &["input", "output"],
            _ => &[],
        }
    }

    /// How many positional strings the command needs at least (the
    /// draft's `notify :method …` needs none; the caller sees to it).
    pub fn positional_strings(self) -> usize {
        match self {
            CommandKind::Set => 2,
            CommandKind::Report => 3,
            CommandKind::Redirect
            | CommandKind::FileInto
            | CommandKind::Reject
            | CommandKind::Ereject
            | CommandKind::Vacation
            | CommandKind::Notify
            | CommandKind::Include
            | CommandKind::Pipe
            | CommandKind::Execute => 1,
            _ => 0,
        }
    }
}

/// The tests a reader tells apart; every other name is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    /// `allof (…)`
    AllOf,
    /// `anyof (…)`
    AnyOf,
    /// `not test`
    Not,
    /// `header`
    Header,
    /// `address`
    Address,
    /// `envelope`
    Envelope,
    /// `exists`
    Exists,
    /// `size :over/:under n`
    Size,
    /// `true`
    True,
    /// `false`
    False,
    /// Any other name.
    Other,
}

impl TestKind {
    /// The kind of the test named `name` (any case).
    pub fn of(name: &str) -> TestKind {
        match name.to_ascii_lowercase().as_str() {
            "allof" => TestKind::AllOf,
            "anyof" => TestKind::AnyOf,
            "not" => TestKind::Not,
            "header" => TestKind::Header,
            "address" => TestKind::Address,
            "envelope" => TestKind::Envelope,
            "exists" => TestKind::Exists,
            "size" => TestKind::Size,
            "true" => TestKind::True,
            "false" => TestKind::False,
            _ => TestKind::Other,
        }
    }
}

/// A command: a name, arguments, maybe tests, and `;` or a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The name as written.
    pub name: String,
    /// Its kind.
    pub kind: CommandKind,
    /// The arguments before any test.
    pub arguments: Vec<Argument>,
    /// The test (`if`) or tests, if any.
    pub tests: Vec<Test>,
    /// Whether the tests were written as a parenthesised list.
    pub test_list: bool,
    /// The block, if the command ends with one rather than `;`.
    pub block: Option<Vec<Command>>,
    /// From the first byte of the name to the `;` or `}` included.
    pub span: Range<usize>,
    /// The line of the name, from 1.
    pub line: u32,
}

/// A test: a name, arguments and maybe tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    /// The name as written.
    pub name: String,
    /// Its kind.
    pub kind: TestKind,
    /// The arguments before any nested test.
    pub arguments: Vec<Argument>,
    /// The nested tests (`not`, `allof`, `anyof`, extensions).
    pub tests: Vec<Test>,
    /// Whether the nested tests were written as a parenthesised list.
    pub test_list: bool,
    /// Its bytes.
    pub span: Range<usize>,
    /// The line of the name.
    pub line: u32,
}

/// One argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    /// `:name`, without the colon.
    Tag {
        /// The name as written.
        name: String,
        /// Its bytes.
        span: Range<usize>,
    },
    /// A number, its K/M/G applied.
    Number {
        /// The value.
        value: u64,
        /// Its bytes.
        span: Range<usize>,
    },
    /// A string or a bracketed list of strings.
    Strings(StringList),
}

impl Argument {
    /// The argument's bytes.
    pub fn span(&self) -> Range<usize> {
        match self {
            Argument::Tag { span, .. } | Argument::Number { span, .. } => span.clone(),
            Argument::Strings(list) => list.span.clone(),
        }
    }

    /// The tag's name if this is a tag.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Argument::Tag { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The strings if this is a string or a list.
    pub fn strings(&self) -> Option<&StringList> {
        match self {
            Argument::Strings(list) => Some(list),
            _ => None,
        }
    }
}

/// A string or `[…]` list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringList {
    /// The strings.
    pub items: Vec<SieveString>,
    /// Whether written in brackets (even with one item).
    pub bracketed: bool,
    /// Its bytes.
    pub span: Range<usize>,
}

impl StringList {
    /// The one string of an unbracketed (or one-item) list.
    pub fn single(&self) -> Option<&SieveString> {
        match self.items.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// One string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveString {
    /// The value: escapes removed, encoded characters decoded.
    pub value: String,
    /// Whether written as `text:`.
    pub multiline: bool,
    /// Its bytes.
    pub span: Range<usize>,
}

/// A command's arguments, its tags apart from its positional arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split<'a> {
    /// Each tag (lower-cased) with its value when it takes one.
    pub tags: Vec<(String, Option<&'a Argument>)>,
    /// The positional arguments, in order.
    pub positional: Vec<&'a Argument>,
}

impl Split<'_> {
    /// Whether tag `name` (lower case) was given.
    pub fn has(&self, name: &str) -> bool {
        self.tags.iter().any(|(t, _)| t == name)
    }

    /// The value of tag `name` (lower case), if given with one.
    pub fn value(&self, name: &str) -> Option<&Argument> {
        self.tags.iter().find(|(t, _)| t == name).and_then(|(_, v)| *v)
    }
}

impl Command {
    /// The arguments split into tags and positional ones; the tags named
    /// in `valued` (lower case) take the argument after them.
    pub fn split(&self, valued: &[&str]) -> Split<'_> {
        split(&self.arguments, valued)
    }
}

impl Test {
    /// As [`Command::split`].
    pub fn split(&self, valued: &[&str]) -> Split<'_> {
        split(&self.arguments, valued)
    }
}

fn split<'a>(arguments: &'a [Argument], valued: &[&str]) -> Split<'a> {
    let mut out = Split::default();
    let mut args = arguments.iter();
    while let Some(arg) = args.next() {
        match arg.tag() {
            Some(tag) => {
                let tag = tag.to_ascii_lowercase();
                let value = if valued.contains(&tag.as_str()) { args.next() } else { None };
                out.tags.push((tag, value));
            }
            None => out.positional.push(arg),
        }
    }
    out
}
