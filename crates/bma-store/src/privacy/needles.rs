//! Needles: what names a person (their subjects, addresses, full names
//! both ways round, phones) and its replacement, in text and in JSON
//! (pure). A needle shorter than [`super::MIN_NEEDLE`] only matches a
//! whole value.

use std::collections::BTreeSet;

use bma_core::form::{EnrollmentForm, ManagerIdentity};
use bma_core::lifecycle::Actor;

use super::{ERASED, ERASED_ADDRESS, ERASED_VERP, MIN_NEEDLE};

/// What to look for and what to put instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Needles {
    /// Identity subjects (exact).
    pub(super) subjects: BTreeSet<String>,
    /// Addresses, ASCII-lowercased.
    pub(super) addresses: BTreeSet<String>,
    /// (needle, replacement), longest first.
    pub(super) texts: Vec<(String, &'static str)>,
}

/// Finds `needle` in `hay` ignoring ASCII case, from byte `from`.
pub(super) fn find_ci(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (from..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

impl Needles {
    pub(super) fn add_text(&mut self, text: &str, replacement: &'static str) {
        let t = text.trim();
        if t.is_empty() || t == ERASED || t.eq_ignore_ascii_case(ERASED_ADDRESS) || t.eq_ignore_ascii_case(ERASED_VERP)
        {
            return;
        }
        if !self.texts.iter().any(|(n, _)| n.eq_ignore_ascii_case(t)) {
            self.texts.push((t.to_owned(), replacement));
            // Longest first: an address before a name it contains.
            self.texts.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        }
    }

    /// A subject of theirs.
    pub(crate) fn subject(&mut self, s: &str) {
        let s = s.trim();
        if !s.is_empty() && s != ERASED {
            self.subjects.insert(s.to_owned());
            self.add_text(s, ERASED);
        }
    }

    /// An address of theirs (and its VERP form, `local=domain`).
    pub(crate) fn address(&mut self, a: &str) {
        let a = a.trim();
        if a.is_empty() || a.eq_ignore_ascii_case(ERASED_ADDRESS) || !a.contains('@') {
            return;
        }
        self.addresses.insert(a.to_ascii_lowercase());
        self.add_text(a, ERASED_ADDRESS);
        self.add_text(&a.replacen('@', "=", 1), ERASED_VERP);
    }

    /// A name or a phone of theirs.
    pub(crate) fn text(&mut self, t: &str) {
        self.add_text(t, ERASED);
    }

    /// Everything a form version says about who gave it and who manages the mailbox.
    pub(crate) fn form(&mut self, f: &EnrollmentForm, id: &ManagerIdentity) {
        self.subject(&id.subject);
        self.address(&f.backup_email);
        self.address(&id.email);
        for (a, b) in [(&f.given_name, &f.family_name), (&id.given_name, &id.family_name)] {
            if !a.trim().is_empty() && !b.trim().is_empty() {
                self.text(&format!("{} {}", a.trim(), b.trim()));
                self.text(&format!("{} {}", b.trim(), a.trim()));
            }
        }
        self.text(&id.name);
        self.text(&f.phone);
    }

    /// Whether there is nothing to look for.
    pub(crate) fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Whether `a` is one of their addresses.
    pub(crate) fn is_address(&self, a: &str) -> bool {
        self.addresses.contains(&a.trim().to_ascii_lowercase())
    }

    /// Whether `s` is one of their subjects.
    pub(crate) fn is_subject(&self, s: &str) -> bool {
        self.subjects.contains(s)
    }

    /// `text` with every needle replaced, or `None` if none is in it. A
    /// short needle replaces only a whole value.
    pub(crate) fn redact(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for (needle, replacement) in &self.texts {
            let current = out.as_deref().unwrap_or(text);
            if needle.chars().count() < MIN_NEEDLE {
                if current.trim().eq_ignore_ascii_case(needle) {
                    out = Some((*replacement).to_owned());
                }
                continue;
            }
            let Some(mut at) = find_ci(current, needle, 0) else { continue };
            let mut next = String::with_capacity(current.len());
            let mut done = 0;
            loop {
                next.push_str(&current[done..at]);
                next.push_str(replacement);
                done = at + needle.len();
                match find_ci(current, needle, done) {
                    Some(i) => at = i,
                    None => break,
                }
            }
            next.push_str(&current[done..]);
            out = Some(next);
        }
        out
    }

    /// `value` with every string in it redacted, or `None` if unchanged.
    pub(crate) fn redact_json(&self, value: &serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match value {
            Value::String(s) => self.redact(s).map(Value::String),
            Value::Array(items) => {
                let new: Vec<Option<Value>> = items.iter().map(|v| self.redact_json(v)).collect();
                new.iter().any(Option::is_some).then(|| {
                    Value::Array(new.into_iter().zip(items).map(|(n, old)| n.unwrap_or_else(|| old.clone())).collect())
                })
            }
            Value::Object(map) => {
                let mut changed = false;
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let key = self.redact(k).inspect(|_| changed = true).unwrap_or_else(|| k.clone());
                    let val = self.redact_json(v).inspect(|_| changed = true).unwrap_or_else(|| v.clone());
                    out.insert(key, val);
                }
                changed.then_some(Value::Object(out))
            }
            _ => None,
        }
    }

    /// The actor text with a subject of theirs replaced.
    pub(super) fn redact_actor(&self, actor: &str) -> Option<String> {
        match Actor::from_text(actor) {
            Actor::Manager(s) if self.is_subject(&s) => Some(Actor::Manager(ERASED.to_owned()).to_text()),
            _ => self.redact(actor),
        }
    }
}
