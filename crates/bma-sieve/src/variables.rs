//! Variables (RFC 5229), as far as a reader can know them: `set` is
//! recorded and its value followed through the script, so that a target
//! written `${fwd}` is resolved when the script gives it a literal value.
//!
//! Rules: references are read only when the script requires "variables";
//! a reference is `${` [namespace `.`] name `}` (a name is an identifier
//! or digits, compared ignoring case), anything else stays literal. A
//! value is known when every reference in it is: match variables (`${1}`)
//! and namespaced ones (`${env.x}`) never are, a variable never set here
//! is not either (an included script may set it: RFC 6609 `global`), nor
//! one set under a condition to a value other than the one it had, nor
//! one set with a modifier other than `:lower`, `:upper`, `:lowerfirst`,
//! `:upperfirst`, `:quotewildcard` and `:length` (those are applied in
//! RFC 5229 §4's order). The script is followed in order of writing, which
//! is the order of running for a script without loops.

use std::collections::HashMap;

/// One `set`: where, which variable, and its value when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The line of the `set`.
    pub line: u32,
    /// The variable's name as written.
    pub name: String,
    /// The value, when it can be known without running the script.
    pub value: Option<String>,
    /// Whether the `set` runs only under a condition.
    pub conditional: bool,
}

/// What is known of the variables at one point of the script.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    /// Whether the script requires "variables" (else `${…}` is literal).
    pub enabled: bool,
    /// By lower-cased name: the value if known, `None` if set but unknown.
    known: HashMap<String, Option<String>>,
}

impl Variables {
    /// Nothing known yet; references read only if `enabled`.
    pub fn new(enabled: bool) -> Variables {
        Variables { enabled, known: HashMap::new() }
    }

    /// Records `set name value` (`value` already resolved, `None` if
    /// unknown), under a condition or not.
    pub fn set(&mut self, name: &str, value: Option<String>, conditional: bool) {
        let key = name.to_ascii_lowercase();
        let value = match (conditional, self.known.get(&key)) {
            (false, _) => value,
            (true, Some(Some(before))) if value.as_ref() == Some(before) => value,
            (true, _) => None,
        };
        self.known.insert(key, value);
    }

    /// `text` with its references replaced, or `None` if one of them
    /// cannot be known.
    pub fn resolve(&self, text: &str) -> Option<String> {
        if !self.enabled {
            return Some(text.to_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            match reference(after) {
                Some((name, used)) => {
                    let value = self.known.get(&name.to_ascii_lowercase())?.as_ref()?;
                    out.push_str(value);
                    rest = &after[used..];
                }
                None => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Some(out)
    }

    /// Whether `text` holds a variable reference.
    pub fn mentions(&self, text: &str) -> bool {
        self.enabled && text.match_indices("${").any(|(at, _)| reference(&text[at + 2..]).is_some())
    }
}

/// A reference after its `${`: the name (with its namespace, which makes
/// it unknowable since `.` is in no variable we record) and the bytes used.
fn reference(after: &str) -> Option<(&str, usize)> {
    let close = after.find('}')?;
    let name = &after[..close];
    let identifier = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let number = !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit());
    let valid = number || (!name.is_empty() && name.split('.').all(identifier));
    valid.then_some((name, close + 1))
}

/// `value` with `set`'s modifiers (lower-cased tag names) applied, or
/// `None` if one of them is not one we apply.
pub fn apply_modifiers(value: &str, modifiers: &[String]) -> Option<String> {
    const ORDER: [&str; 7] = ["lower", "upper", "lowerfirst", "upperfirst", "quotewildcard", "length", ""];
    if modifiers.iter().any(|m| !ORDER.contains(&m.as_str())) {
        return None;
    }
    let mut value = value.to_owned();
    for step in ORDER {
        if !modifiers.iter().any(|m| m == step) {
            continue;
        }
        value = match step {
            "lower" => value.to_lowercase(),
            "upper" => value.to_uppercase(),
            "lowerfirst" | "upperfirst" => {
                let mut chars = value.chars();
                let first = chars.next().map(|c| {
                    if step == "lowerfirst" { c.to_lowercase().collect::<String>() } else { c.to_uppercase().collect() }
                });
                first.unwrap_or_default() + chars.as_str()
            }
            "quotewildcard" => value.chars().fold(String::new(), |mut s, c| {
                if matches!(c, '*' | '?' | '\\') {
                    s.push('\\');
                }
                s.push(c);
                s
            }),
            _ => value.chars().count().to_string(),
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        let mut v = Variables::new(true);
        v.set("fwd", Some("a@example.org".into()), false);
        v.set("Dom", Some("adm.cfwb.be".into()), false);
        v.set("maybe", Some("x".into()), true);
        v.set("same", Some("s".into()), false);
        v.set("same", Some("s".into()), true);
        v.set("changed", Some("s".into()), false);
        v.set("changed", Some("t".into()), true);
        let table: &[(&str, Option<&str>)] = &[
            ("plain", Some("plain")),
            ("${fwd}", Some("a@example.org")),
            ("${FWD}", Some("a@example.org")),
            ("me@${dom}", Some("me@adm.cfwb.be")),
            ("${same}", Some("s")),
            ("${changed}", None),
            ("${maybe}", None),
            ("${1}", None),
            ("${env.x}", None),
            ("${never}", None),
            ("${not valid}", Some("${not valid}")),
            ("${", Some("${")),
            ("$${fwd}}", Some("$a@example.org}")),
        ];
        for (text, want) in table {
            assert_eq!(v.resolve(text).as_deref(), *want, "{text:?}");
        }
        assert_eq!(Variables::new(false).resolve("${fwd}").as_deref(), Some("${fwd}"));
        assert!(v.mentions("x${y}") && !v.mentions("x${y") && !Variables::new(false).mentions("${y}"));
    }

    #[test]
    fn modifiers() {
        let m = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let table: &[(&str, Vec<String>, Option<&str>)] = &[
            ("Ab", m(&[]), Some("Ab")),
            ("Ab", m(&["lower"]), Some("ab")),
            ("ab", m(&["upperfirst"]), Some("Ab")),
            ("AB", m(&["lower", "upperfirst"]), Some("Ab")),
            ("été", m(&["length"]), Some("3")),
            ("a*b", m(&["quotewildcard"]), Some("a\\*b")),
            ("a", m(&["encodeurl"]), None),
        ];
        for (value, mods, want) in table {
            assert_eq!(apply_modifiers(value, mods).as_deref(), *want, "{value:?} {mods:?}");
        }
    }
}
