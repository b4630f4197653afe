//! Finding a caller: the words a helpdesk agent types, as heard on the
//! phone, against each mailbox's address, FASE number, establishment name
//! and the names of the people who filled its form.
//!
//! Rules:
//! - text is compared folded ([`fold`]): lower case, accents and other
//!   marks removed (`Éric` = `eric`, `Cœur` = `coeur`), every other
//!   character that is not a letter or digit is a word separator;
//! - every word of the query must be found in the entry, in any field and
//!   any order, as the start of a word or anywhere inside one; an entry
//!   missing one word is not a result;
//! - ranked by [`score`]: the whole address or FASE number first, then
//!   whole words, then word starts, then words found inside others; names
//!   of people and establishments count alike; ties keep the caller's
//!   order (the store's, by address).
//!
//! No I/O: the console keeps the entries in memory and calls [`rank`].

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// `text` in lower case without accents or other combining marks, with
/// ligatures spelled out (`œ` → `oe`, `æ` → `ae`, `ß` → `ss`).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'œ' | 'Œ' => out.push_str("oe"),
            'æ' | 'Æ' => out.push_str("ae"),
            'ß' => out.push_str("ss"),
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' => out.push('d'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The folded words of `text` (letters and digits; anything else separates).
pub fn words(text: &str) -> Vec<String> {
    fold(text).split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// One mailbox as the search sees it, folded once when built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The address's words joined by spaces (how a query spells it, once
    /// its `@` and dots are separators).
    address: String,
    /// The FASE number's digits.
    fase: String,
    /// Every word of the address, names and establishment, folded.
    words: Vec<String>,
    /// The same words joined by spaces: one substring search in it tells
    /// whether any word holds a term (terms have no spaces).
    text: String,
}

impl Entry {
    /// An entry for a mailbox: its address, FASE number, and the names
    /// (establishment, managers, identities) it can be asked for by.
    pub fn new<'a>(address: &str, fase: u32, names: impl IntoIterator<Item = &'a str>) -> Entry {
        let mut all = words(address);
        for n in names {
            all.extend(words(n));
        }
        all.sort();
        all.dedup();
        let text = all.join(" ");
        Entry { address: words(address).join(" "), fase: fase.to_string(), words: all, text }
    }
}

/// How well `entry` answers the query `terms` (folded words), or `None`
/// when one of them is missing.
pub fn score(entry: &Entry, terms: &[String]) -> Option<u32> {
    score_joined(entry, &Query::new(terms))
}

/// A query made ready once for every entry: its folded words, the same
/// joined by spaces, and a substring searcher for each word (built once,
/// not once per entry).
struct Query<'t> {
    terms: &'t [String],
    whole: String,
    finders: Vec<memchr::memmem::Finder<'t>>,
}

impl<'t> Query<'t> {
    fn new(terms: &'t [String]) -> Query<'t> {
        Query { terms, whole: terms.join(" "), finders: terms.iter().map(memchr::memmem::Finder::new).collect() }
    }
}

/// [`score`] for a prepared query.
fn score_joined(entry: &Entry, query: &Query<'_>) -> Option<u32> {
    let (terms, whole) = (query.terms, query.whole.as_str());
    if terms.is_empty() {
        return None;
    }
    // Most entries miss a term: one search in the joined words rejects
    // them before any word is looked at. The address's words are among the
    // words, so a term inside the address is inside one of them.
    if !query.finders.iter().all(|f| f.find(entry.text.as_bytes()).is_some()) {
        return None;
    }
    let mut total = 0;
    if whole == entry.address || whole == entry.fase {
        total += 1000;
    }
    for term in terms {
        let mut best = 0;
        for w in &entry.words {
            let here = if w == term {
                30
            } else if w.starts_with(term.as_str()) {
                20
            } else if w.contains(term.as_str()) {
                10
            } else {
                0
            };
            best = best.max(here);
            if best == 30 {
                break;
            }
        }
        if best == 0 {
            return None;
        }
        total += best;
    }
    Some(total)
}

/// The indices of the best `limit` entries for `query`, best first (ties
/// in the given order).
pub fn rank<'a>(entries: impl IntoIterator<Item = &'a Entry>, query: &str, limit: usize) -> Vec<usize> {
    let terms = words(query);
    let query = Query::new(&terms);
    let mut found: Vec<(u32, usize)> =
        entries.into_iter().enumerate().filter_map(|(i, e)| score_joined(e, &query).map(|s| (s, i))).collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.truncate(limit);
    found.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        let cases = [
            ("Éric LEJEUNE", "eric lejeune"),
            ("Cœur de Marie", "coeur de marie"),
            ("Ærø", "aero"),
            ("Straße", "strasse"),
            ("Françoise-Hélène", "francoise-helene"),
            ("ﬁn", "fin"),
            ("", ""),
        ];
        for (text, want) in cases {
            assert_eq!(fold(text), want, "{text}");
        }
        assert_eq!(words("  Athénée royal d'Uccle 1 "), ["athenee", "royal", "d", "uccle", "1"]);
    }

    fn entries() -> Vec<Entry> {
        vec![
            Entry::new("ec001234@adm.cfwb.be", 1234, ["École fondamentale Sainte-Marie", "Marie Dupont", "Luc Martin"]),
            Entry::new("ec005678@adm.cfwb.be", 5678, ["Athénée royal Marie Curie", "Éric Lejeune"]),
            Entry::new("ec009012@adm.cfwb.be", 9012, ["Lycée Dupontel", "Anne Marie"]),
            Entry::new("po000123@adm.cfwb.be", 123, ["Pouvoir organisateur de Namur"]),
        ]
    }

    #[test]
    fn ranking() {
        let e = entries();
        // (query, expected indices, best first)
        let cases: &[(&str, &[usize])] = &[
            ("dupont marie", &[0, 2]),
            ("DUPONT Marie", &[0, 2]),
            ("marie dupont", &[0, 2]),
            ("eric", &[1]),
            ("Éric Lejeune", &[1]),
            ("lejeun", &[1]),
            ("1234", &[0]),
            ("5678", &[1]),
            ("ec009012@adm.cfwb.be", &[2]),
            ("123", &[3, 0]),
            ("athenee curie", &[1]),
            ("marie", &[0, 1, 2]),
            ("dupont xavier", &[]),
            ("", &[]),
            ("  ,; ", &[]),
        ];
        for (query, want) in cases {
            assert_eq!(rank(&e, query, 10), *want, "{query}");
        }
        assert_eq!(rank(&e, "marie", 1), [0]);
    }

    #[test]
    fn the_whole_address_or_fase_comes_first() {
        let e = &entries()[0];
        for query in ["ec001234@adm.cfwb.be", "EC001234@ADM.CFWB.BE", "1234"] {
            assert!(score(e, &words(query)).is_some_and(|s| s >= 1000), "{query}");
        }
        assert!(score(e, &words("ec001234")).is_some_and(|s| s < 1000), "a word of the address only");
    }
}
