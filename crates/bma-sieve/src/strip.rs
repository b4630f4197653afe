//! The strip transform: a script's source with its external forwarding
//! taken out, ready to be uploaded in its place.
//!
//! Rules: a `redirect` whose reach is external becomes `keep;` when it
//! has no `:copy` (the message it sent away now stays, as the implicit
//! keep it cancelled would have kept it), and is removed with `:copy`
//! (the implicit keep still holds); a `notify` with a `mailto:` method
//! and an external reach is removed. A removed command alone on its line
//! takes its line with it (indentation and line ending); otherwise only
//! its own bytes go. Every other byte is kept as it was: internal and
//! dynamic redirects (the caller decides on those from the findings),
//! vacation, comments, line endings. The result is parsed again before it
//! is returned; a result that does not parse is an error, never returned.

use crate::error::ReadError;
use crate::findings::{Action, Domains, Finding, Reach, find};
use crate::parser::parse;

/// One change made by [`strip_external`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The line of the command changed, in the original.
    pub line: u32,
    /// The command as it was.
    pub before: String,
    /// What replaced it (`keep;`, or empty when removed).
    pub after: String,
}

/// A stripped script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The new source.
    pub text: String,
    /// What was changed, in the order of the source.
    pub changes: Vec<Change>,
}

/// `source` (named `script`) without its external redirects and mailto
/// notifications, judged against `domains`.
pub fn strip_external(script: &str, source: &str, domains: &Domains) -> Result<Stripped, ReadError> {
    let parsed = parse(script, source)?;
    let report = find(script, &parsed, domains);
    let mut edits: Vec<(std::ops::Range<usize>, &'static str, &Finding)> = Vec::new();
    for f in &report.findings {
        let replacement = match (&f.action, f.reach) {
            (Action::Redirect { copy: false }, Reach::External) => "keep;",
            (Action::Redirect { copy: true }, Reach::External) => "",
            (Action::Notify { mailto: true, .. }, Reach::External) => "",
            _ => continue,
        };
        let range = if replacement.is_empty() { whole_line(source, f.span.clone()) } else { f.span.clone() };
        edits.push((range, replacement, f));
    }
    let mut text = String::with_capacity(source.len());
    let mut changes = Vec::with_capacity(edits.len());
    let mut at = 0;
    for (range, replacement, f) in edits {
        text.push_str(&source[at..range.start]);
        text.push_str(replacement);
        at = range.end;
        changes.push(Change { line: f.line, before: source[f.span.clone()].to_owned(), after: replacement.to_owned() });
    }
    text.push_str(&source[at..]);
    parse(script, &text)?;
    Ok(Stripped { text, changes })
}

/// `span` widened to its whole line (indentation and line ending) when
/// nothing else is on that line.
fn whole_line(source: &str, span: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let line_start = source[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[span.end..].find('\n').map_or(source.len(), |i| span.end + i + 1);
    let blank = |s: &str| s.chars().all(|c| c == ' ' || c == '\t' || c == '\r' || c == '\n');
    if blank(&source[line_start..span.start]) && blank(&source[span.end..line_end]) {
        line_start..line_end
    } else {
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_redirect_form() {
        let d = Domains::new(["adm.cfwb.be"]);
        type Case<'a> = (&'a str, &'a str, &'a [(u32, &'a str, &'a str)]);
        let table: &[Case<'_>] = &[
            ("redirect \"a@gmail.com\";\n", "keep;\n", &[(1, "redirect \"a@gmail.com\";", "keep;")]),
            (
                "require \"copy\";\r\nif true {\r\n\tredirect :copy \"a@gmail.com\";\r\n}\r\n",
                "require \"copy\";\r\nif true {\r\n}\r\n",
                &[(3, "redirect :copy \"a@gmail.com\";", "")],
            ),
            ("redirect \"b@adm.cfwb.be\";", "redirect \"b@adm.cfwb.be\";", &[]),
            ("redirect :copy \"b@ADM.cfwb.be\"; keep;", "redirect :copy \"b@ADM.cfwb.be\"; keep;", &[]),
            ("keep; redirect :copy \"x@y.be\"; stop;", "keep;  stop;", &[(1, "redirect :copy \"x@y.be\";", "")]),
            ("if true { REDIRECT   \"x@y.be\" ; }", "if true { keep; }", &[(1, "REDIRECT   \"x@y.be\" ;", "keep;")]),
            ("redirect text:\nx@y.be\n.\n;", "keep;", &[(1, "redirect text:\nx@y.be\n.\n;", "keep;")]),
            (
                "require [\"variables\"]; set \"t\" \"x@y.be\";\nredirect \"${t}\";\n",
                "require [\"variables\"]; set \"t\" \"x@y.be\";\nkeep;\n",
                &[(2, "redirect \"${t}\";", "keep;")],
            ),
            ("require \"variables\";\nredirect \"${t}\";\n", "require \"variables\";\nredirect \"${t}\";\n", &[]),
            (
                "require \"enotify\";\nnotify :message \"m\" \"mailto:x@y.be\";\nnotify \"mailto:a@adm.cfwb.be\";\n",
                "require \"enotify\";\nnotify \"mailto:a@adm.cfwb.be\";\n",
                &[(2, "notify :message \"m\" \"mailto:x@y.be\";", "")],
            ),
            (
                "notify :method \"mailto\" :options \"x@y.be\"; # old\n",
                " # old\n",
                &[(1, "notify :method \"mailto\" :options \"x@y.be\";", "")],
            ),
            (
                "notify :method \"mailto\" :options \"x@y.be\";\n",
                "",
                &[(1, "notify :method \"mailto\" :options \"x@y.be\";", "")],
            ),
            ("vacation :days 3 \"away\";", "vacation :days 3 \"away\";", &[]),
        ];
        for (source, want, changes) in table {
            let s = strip_external("t", source, &d).unwrap_or_else(|e| panic!("{source:?}: {e}"));
            assert_eq!(s.text, *want, "{source:?}");
            let got: Vec<(u32, &str, &str)> =
                s.changes.iter().map(|c| (c.line, c.before.as_str(), c.after.as_str())).collect();
            assert_eq!(got, *changes, "{source:?}");
        }
    }
}
