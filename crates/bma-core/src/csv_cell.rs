//! CSV cells that a spreadsheet will not run: every CSV the project writes
//! passes each cell through [`neutralise`].
//!
//! Excel and LibreOffice treat a cell starting with `=`, `+`, `-` or `@`
//! (and, once trimmed, tab or carriage return) as a formula: a registry row
//! named `=HYPERLINK("http://…")` would become a live link, or worse, in
//! the rejects file an operator opens. Such a cell is written with a
//! leading apostrophe, which spreadsheets show as text; [`restore`] removes
//! it again when the file comes back (a corrected rejects file re-imported).

use std::borrow::Cow;

/// Whether a spreadsheet would read this cell as a formula.
pub fn is_formula_like(cell: &str) -> bool {
    matches!(cell.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'))
}

/// The cell as it is safe to write: prefixed with `'` when it starts with
/// `=`, `+`, `-`, `@`, tab or carriage return; unchanged otherwise.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if is_formula_like(cell) { Cow::Owned(format!("'{cell}")) } else { Cow::Borrowed(cell) }
}

/// The cell as it was before [`neutralise`]: a leading `'` followed by a
/// formula character is removed.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if is_formula_like(rest) => rest,
        _ => cell,
    }
}

/// A whole record, each cell neutralised.
pub fn record<I, S>(cells: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    cells.into_iter().map(|c| neutralise(c.as_ref()).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_restored() {
        for (cell, written) in [
            ("=1+1", "'=1+1"),
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+32 2 800 10 10", "'+32 2 800 10 10"),
            ("-3", "'-3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("École A", "École A"),
            ("a=b", "a=b"),
            ("", ""),
            ("'quoted", "'quoted"),
            ("42", "42"),
        ] {
            assert_eq!(neutralise(cell), written, "{cell:?}");
            assert_eq!(restore(written), cell, "{written:?}");
        }
        assert_eq!(record(["=x", "y"]), vec!["'=x", "y"]);
        assert_eq!(record(vec!["-1".to_owned()]), vec!["'-1"]);
    }
}
