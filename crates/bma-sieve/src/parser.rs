//! The parser: RFC 5228 §8.2's grammar over the lexer's tokens, then the
//! shape of the commands and tests whose shape the reader relies on.
//!
//! Rules: `command = identifier arguments (";" / block)`, `arguments =
//! *argument [test / test-list]`, `test = identifier arguments`; any name
//! is accepted and read generically. Then: `require` takes one string list
//! and comes before every other command; `if`/`elsif` take one test and a
//! block, `else` only a block, and `elsif`/`else` follow an `if` or
//! `elsif`; the actions the reader judges (redirect, fileinto, notify,
//! vacation, include, pipe, execute, report, set, keep, discard, stop,
//! reject)
//! take no block and no test; `allof`/`anyof` take a parenthesised list,
//! `not` one test, `true`/`false` nothing, `exists` a string list,
//! `header`/`address`/`envelope` two, `size` `:over`/`:under` and a
//! number. Nesting deeper than [`crate::MAX_NESTING`] is refused (a
//! script cannot make the reader overflow its stack). When "encoded-character"
//! is required, every string is decoded (`encoded`). Never panics: every
//! failure is a [`ReadError`] at a position inside the input.

use std::ops::Range;

use crate::MAX_NESTING;
use crate::ast::{Argument, Command, CommandKind, Script, SieveString, StringList, Test, TestKind};
use crate::encoded;
use crate::error::{ErrorKind, Position, ReadError};
use crate::lexer::{Spanned, Token, tokenize};

/// Parses `source`, named `script` in errors.
pub fn parse(script: &str, source: &str) -> Result<Script, ReadError> {
    let fail = |kind: ErrorKind, offset: usize| ReadError {
        script: script.to_owned(),
        position: Position::at(source, offset),
        kind,
    };
    let tokens = tokenize(source).map_err(|(kind, offset)| fail(kind, offset))?;
    let mut parser = Parser { tokens: &tokens, pos: 0, end: source.len(), lines: LineIndex::new(source) };
    let mut commands = parser.commands(0).map_err(|(kind, offset)| fail(kind, offset))?;
    if let Some(t) = parser.peek() {
        return Err(fail(ErrorKind::Unexpected { expected: "a command", found: t.token.describe() }, t.span.start));
    }
    let requires = check_commands(&commands, true).map_err(|(kind, offset)| fail(kind, offset))?;
    let script_tree = Script { commands: Vec::new(), requires };
    if script_tree.requires("encoded-character") {
        encoded::decode_commands(&mut commands).map_err(|(kind, offset)| fail(kind, offset))?;
    }
    Ok(Script { commands, ..script_tree })
}

type Failure = (ErrorKind, usize);

/// The start of each line, to give every command its line number.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(source: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(source.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> u32 {
        let line = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(line).unwrap_or(u32::MAX)
    }
}

struct Parser<'t> {
    tokens: &'t [Spanned],
    pos: usize,
    end: usize,
    lines: LineIndex,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self, expected: &'static str) -> Result<&Spanned, Failure> {
        let t = self.tokens.get(self.pos).ok_or((ErrorKind::UnexpectedEnd(expected), self.end))?;
        self.pos += 1;
        Ok(t)
    }

    fn expect(&mut self, want: &Token, expected: &'static str) -> Result<Range<usize>, Failure> {
        let t = self.next(expected)?;
        if &t.token == want {
            Ok(t.span.clone())
        } else {
            Err((ErrorKind::Unexpected { expected, found: t.token.describe() }, t.span.start))
        }
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<Command>, Failure> {
        let mut out = Vec::new();
        while let Some(Spanned { token: Token::Identifier(_), .. }) = self.peek() {
            out.push(self.command(depth)?);
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<Command, Failure> {
        let t = self.next("a command")?;
        let Token::Identifier(name) = &t.token else {
            return Err((ErrorKind::Unexpected { expected: "a command", found: t.token.describe() }, t.span.start));
        };
        let (name, start) = (name.clone(), t.span.start);
        if depth >= MAX_NESTING {
            return Err((ErrorKind::TooDeep, start));
        }
        let arguments = self.arguments()?;
        let (tests, test_list) = self.tests(depth)?;
        let t = self.next("\";\" or a block")?;
        let (block, end) = match t.token {
            Token::Semicolon => (None, t.span.end),
            Token::LeftBrace => {
                let block = self.commands(depth + 1)?;
                let close = self.expect(&Token::RightBrace, "a command or \"}\"")?;
                (Some(block), close.end)
            }
            _ => {
                let found = t.token.describe();
                let expected =
                    if tests.is_empty() { "an argument, a test, \";\" or a block" } else { "\";\" or a block" };
                return Err((ErrorKind::Unexpected { expected, found }, t.span.start));
            }
        };
        Ok(Command {
            kind: CommandKind::of(&name),
            name,
            arguments,
            tests,
            test_list,
            block,
            span: start..end,
            line: self.lines.line(start),
        })
    }

    fn arguments(&mut self) -> Result<Vec<Argument>, Failure> {
        let mut out = Vec::new();
        loop {
            let Some(t) = self.peek() else { return Ok(out) };
            let span = t.span.clone();
            let arg = match &t.token {
                Token::Tag(name) => Argument::Tag { name: name.clone(), span },
                Token::Number(value) => Argument::Number { value: *value, span },
                Token::String { value, multiline } => Argument::Strings(StringList {
                    items: vec![SieveString { value: value.clone(), multiline: *multiline, span: span.clone() }],
                    bracketed: false,
                    span,
                }),
                Token::LeftBracket => {
                    self.pos += 1;
                    out.push(Argument::Strings(self.string_list(span.start)?));
                    continue;
                }
                _ => return Ok(out),
            };
            self.pos += 1;
            out.push(arg);
        }
    }

    fn string_list(&mut self, start: usize) -> Result<StringList, Failure> {
        let mut items = Vec::new();
        loop {
            let t = self.next("a string")?;
            match &t.token {
                Token::String { value, multiline } => {
                    items.push(SieveString { value: value.clone(), multiline: *multiline, span: t.span.clone() });
                }
                other => {
                    return Err((
                        ErrorKind::Unexpected { expected: "a string", found: other.describe() },
                        t.span.start,
                    ));
                }
            }
            let t = self.next("\",\" or \"]\"")?;
            match t.token {
                Token::Comma => {}
                Token::RightBracket => return Ok(StringList { items, bracketed: true, span: start..t.span.end }),
                ref other => {
                    let found = other.describe();
                    return Err((ErrorKind::Unexpected { expected: "\",\" or \"]\"", found }, t.span.start));
                }
            }
        }
    }

    /// The optional test or parenthesised test list after arguments.
    fn tests(&mut self, depth: usize) -> Result<(Vec<Test>, bool), Failure> {
        match self.peek().map(|t| &t.token) {
            Some(Token::Identifier(_)) => Ok((vec![self.test(depth + 1)?], false)),
            Some(Token::LeftParen) => {
                self.pos += 1;
                let mut tests = vec![self.test(depth + 1)?];
                loop {
                    let t = self.next("\",\" or \")\"")?;
                    match t.token {
                        Token::Comma => tests.push(self.test(depth + 1)?),
                        Token::RightParen => return Ok((tests, true)),
                        ref other => {
                            let found = other.describe();
                            return Err((ErrorKind::Unexpected { expected: "\",\" or \")\"", found }, t.span.start));
                        }
                    }
                }
            }
            _ => Ok((Vec::new(), false)),
        }
    }

    fn test(&mut self, depth: usize) -> Result<Test, Failure> {
        let t = self.next("a test")?;
        let Token::Identifier(name) = &t.token else {
            return Err((ErrorKind::Unexpected { expected: "a test", found: t.token.describe() }, t.span.start));
        };
        let (name, start) = (name.clone(), t.span.start);
        if depth >= MAX_NESTING {
            return Err((ErrorKind::TooDeep, start));
        }
        let arguments = self.arguments()?;
        let (tests, test_list) = self.tests(depth)?;
        let end = self.tokens.get(self.pos.saturating_sub(1)).map_or(start, |t| t.span.end);
        Ok(Test {
            kind: TestKind::of(&name),
            name,
            arguments,
            tests,
            test_list,
            span: start..end,
            line: self.lines.line(start),
        })
    }
}

fn bad(name: &str, problem: &'static str, offset: usize) -> Failure {
    (ErrorKind::BadArguments { name: name.to_owned(), problem }, offset)
}

/// Checks the shapes of `commands` (a block, or the script when `top`);
/// returns the capabilities the top level requires.
fn check_commands(commands: &[Command], top: bool) -> Result<Vec<String>, Failure> {
    let mut requires = Vec::new();
    let mut others_seen = false;
    let mut after_if = false;
    for c in commands {
        let at = c.span.start;
        match c.kind {
            CommandKind::Require => {
                if !top || others_seen {
                    return Err((ErrorKind::LateRequire, at));
                }
                let (Some(list), 1, true, None) =
                    (c.arguments.first().and_then(Argument::strings), c.arguments.len(), c.tests.is_empty(), &c.block)
                else {
                    return Err(bad(&c.name, "takes one string list", at));
                };
                requires.extend(list.items.iter().map(|s| s.value.clone()));
            }
            CommandKind::If | CommandKind::ElsIf => {
                if c.kind == CommandKind::ElsIf && !after_if {
                    return Err((ErrorKind::OrphanElse("elsif"), at));
                }
                if !c.arguments.is_empty() || c.tests.len() != 1 || c.test_list {
                    return Err(bad(&c.name, "takes one test", at));
                }
                check_test(&c.tests[0])?;
            }
            CommandKind::Else => {
                if !after_if {
                    return Err((ErrorKind::OrphanElse("else"), at));
                }
                if !c.arguments.is_empty() || !c.tests.is_empty() {
                    return Err(bad(&c.name, "takes only a block", at));
                }
            }
            CommandKind::Other => {
                for t in &c.tests {
                    check_test(t)?;
                }
            }
            kind => {
                if !c.tests.is_empty() {
                    return Err(bad(&c.name, "takes no test", at));
                }
                check_action(c, kind)?;
            }
        }
        let control = matches!(c.kind, CommandKind::If | CommandKind::ElsIf | CommandKind::Else);
        match (&c.block, control || c.kind == CommandKind::Other) {
            (None, true) if control => {
                return Err((ErrorKind::BadBlock { name: c.name.clone(), problem: "needs a block" }, at));
            }
            (Some(_), false) => {
                return Err((ErrorKind::BadBlock { name: c.name.clone(), problem: "takes no block" }, at));
            }
            _ => {}
        }
        if let Some(block) = &c.block {
            check_commands(block, false)?;
        }
        after_if = matches!(c.kind, CommandKind::If | CommandKind::ElsIf);
        others_seen |= c.kind != CommandKind::Require;
    }
    Ok(requires)
}

/// The arguments of an action the reader judges: every tag that takes a
/// value has one, and the positional strings it needs are there.
fn check_action(c: &Command, kind: CommandKind) -> Result<(), Failure> {
    let at = c.span.start;
    let split = c.split(kind.valued_tags());
    if split.tags.iter().any(|(t, v)| v.is_none() && kind.valued_tags().contains(&t.as_str())) {
        return Err(bad(&c.name, "a tag lacks its value", at));
    }
    let mut needed = kind.positional_strings();
    if kind == CommandKind::Notify && split.has("method") {
        needed = 0;
    }
    let strings = split.positional.iter().take(needed).filter(|a| a.strings().is_some_and(|l| l.single().is_some()));
    if strings.count() < needed {
        let problem = match needed {
            1 => "needs a string",
            2 => "needs two strings",
            _ => "needs three strings",
        };
        return Err(bad(&c.name, problem, at));
    }
    Ok(())
}

fn check_test(t: &Test) -> Result<(), Failure> {
    let at = t.span.start;
    let strings = t.arguments.iter().filter(|a| a.strings().is_some()).count();
    let ok = match t.kind {
        TestKind::AllOf | TestKind::AnyOf => t.arguments.is_empty() && t.test_list,
        TestKind::Not => t.arguments.is_empty() && t.tests.len() == 1 && !t.test_list,
        TestKind::True | TestKind::False => t.arguments.is_empty() && t.tests.is_empty(),
        TestKind::Exists => strings == 1 && t.tests.is_empty(),
        TestKind::Header | TestKind::Address | TestKind::Envelope => strings >= 2 && t.tests.is_empty(),
        TestKind::Size => {
            let over_under = t
                .arguments
                .iter()
                .filter_map(Argument::tag)
                .any(|n| n.eq_ignore_ascii_case("over") || n.eq_ignore_ascii_case("under"));
            over_under && matches!(t.arguments.last(), Some(Argument::Number { .. })) && t.tests.is_empty()
        }
        TestKind::Other => true,
    };
    if !ok {
        let problem = match t.kind {
            TestKind::AllOf | TestKind::AnyOf => "takes a parenthesised list of tests",
            TestKind::Not => "takes one test",
            TestKind::True | TestKind::False => "takes no argument",
            TestKind::Exists => "takes one string list",
            TestKind::Size => "takes :over or :under and a number",
            _ => "takes a header or address part and keys",
        };
        return Err(bad(&t.name, problem, at));
    }
    for nested in &t.tests {
        check_test(nested)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(commands: &[Command]) -> String {
        commands
            .iter()
            .map(|c| {
                let tests: Vec<String> = c.tests.iter().map(test_outline).collect();
                let block = c.block.as_ref().map(|b| format!("{{{}}}", outline(b))).unwrap_or_default();
                format!("{}@{}({}){}{}", c.name, c.line, c.arguments.len(), tests.join(","), block)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn test_outline(t: &Test) -> String {
        let nested: Vec<String> = t.tests.iter().map(test_outline).collect();
        format!("{}[{}]", t.name, nested.join(","))
    }

    #[test]
    fn shapes_that_parse() {
        let table: &[(&str, &str)] = &[
            ("", ""),
            ("keep;", "keep@1(0)"),
            ("require [\"fileinto\", \"copy\"];\nfileinto :copy \"A\";", "require@1(1) fileinto@2(2)"),
            (
                "if header :contains \"subject\" \"x\" { discard; }\nelsif not exists \"y\" { stop; }\nelse { keep; }",
                "if@1(0)header[]{discard@1(0)} elsif@2(0)not[exists[]]{stop@2(0)} else@3(0){keep@3(0)}",
            ),
            ("if allof (true, anyof(false, size :over 1M)) {}", "if@1(0)allof[true[],anyof[false[],size[]]]{}"),
            ("if true { if false { if true { keep; } } }", "if@1(0)true[]{if@1(0)false[]{if@1(0)true[]{keep@1(0)}}}"),
            ("frobnicate :x 3 [\"a\"] test1 \"z\";", "frobnicate@1(3)test1[]"),
            ("frob (t1, t2 :k) { keep; }", "frob@1(0)t1[],t2[]{keep@1(0)}"),
            ("if myext :a \"b\" { }", "if@1(0)myext[]{}"),
            ("KEEP;\r\nIF TRUE {STOP;}", "KEEP@1(0) IF@2(0)TRUE[]{STOP@2(0)}"),
            ("notify :method \"mailto\" :options [\"a@b\"];", "notify@1(4)"),
        ];
        for (source, want) in table {
            let script = parse("t", source).unwrap_or_else(|e| panic!("{source:?}: {e}"));
            assert_eq!(outline(&script.commands), *want, "{source:?}");
        }
    }

    #[test]
    fn shapes_that_do_not() {
        let table: &[(&str, &str, u32, u32)] = &[
            ("keep", "the script ends too early: expected \";\" or a block", 1, 5),
            ("keep;\n}", "expected a command, found \"}\"", 2, 1),
            ("if true keep;", "true: takes no argument", 1, 4),
            ("if true {} keep", "the script ends too early: expected \";\" or a block", 1, 16),
            ("if true;", "if: needs a block", 1, 1),
            ("keep { }", "keep: takes no block", 1, 1),
            ("else { }", "else without an if before it", 1, 1),
            ("if true {} keep; elsif true {}", "elsif without an if before it", 1, 18),
            ("keep;\nrequire \"x\";", "require must come before every other command", 2, 1),
            ("if true { require \"x\"; }", "require must come before every other command", 1, 11),
            ("require 1;", "require: takes one string list", 1, 1),
            ("if allof true {}", "allof: takes a parenthesised list of tests", 1, 4),
            ("if not (true) {}", "not: takes one test", 1, 4),
            ("if size 10 {}", "size: takes :over or :under and a number", 1, 4),
            ("if header \"x\" {}", "header: takes a header or address part and keys", 1, 4),
            ("if true :x {}", "true: takes no argument", 1, 4),
            ("redirect [\"a\", ];", "expected a string, found \"]\"", 1, 16),
            ("if anyof(true; false) {}", "expected \",\" or \")\", found \";\"", 1, 14),
            ("if (true) {}", "if: takes one test", 1, 1),
            ("redirect \"a\" true;", "redirect: takes no test", 1, 1),
            ("redirect;", "redirect: needs a string", 1, 1),
            ("redirect :copy [\"a\", \"b\"];", "redirect: needs a string", 1, 1),
            ("set \"a\";", "set: needs two strings", 1, 1),
            ("vacation :days;", "vacation: a tag lacks its value", 1, 1),
        ];
        for (source, message, line, column) in table {
            let e = parse("t", source).expect_err(source);
            assert_eq!(
                (e.kind.to_string().as_str(), e.position.line, e.position.column),
                (*message, *line, *column),
                "{source:?}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "if true {".repeat(MAX_NESTING + 1) + &"}".repeat(MAX_NESTING + 1);
        assert_eq!(parse("t", &deep).expect_err("too deep").kind, ErrorKind::TooDeep);
        let deep = format!("if {} true {{}}", "not ".repeat(MAX_NESTING * 4));
        assert_eq!(parse("t", &deep).expect_err("too deep").kind, ErrorKind::TooDeep);
        let fine = "if true {".repeat(10) + &"}".repeat(10);
        assert!(parse("t", &fine).is_ok());
    }
}
