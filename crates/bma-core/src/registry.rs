//! The mailbox registry: parsing exports and planning an import.
//!
//! [`parse`] reads the bytes of a registry export as people really produce
//! them: UTF-8 with or without BOM, UTF-16 with BOM ("Unicode text" from
//! Excel) or Windows-1252 (the usual Excel CSV in Belgium); comma, semicolon
//! or tab separated (detected on the header); CRLF or LF. Columns are named
//! in English or French. Every bad row is reported with its line number;
//! the caller decides whether a single bad row stops the import
//! (the default) or only that row.
//!
//! A UTF-8 file with a few bad bytes (a line pasted from a Windows-1252
//! file) is read as UTF-8 and those lines are reported, rather than the
//! whole file decoded as Windows-1252, which would garble every accent.
//! Names are at most [`MAX_NAME_CHARS`] characters without control
//! characters, and every message escapes the control characters of the
//! input it quotes.
//!
//! [`plan_import`] compares parsed rows with what the store already knows:
//! new mailboxes, changed ones (field by field), unchanged ones, and those
//! missing from the new list (reported, never deleted).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::address::{Address, AddressRule, Fase, MailboxKind};

/// One valid row of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryRow {
    /// Line of the file (the header is line 1).
    pub line: usize,
    /// The mailbox address.
    pub address: Address,
    /// Establishment or organising authority name.
    pub name: String,
    /// Current quota in bytes, when given.
    pub quota_bytes: Option<u64>,
    /// Current usage in bytes, when given.
    pub usage_bytes: Option<u64>,
    /// Current number of messages, when given.
    pub messages: Option<u64>,
}

/// The longest name accepted, in characters (the longest establishment
/// names of the registry are about 150).
pub const MAX_NAME_CHARS: usize = 300;

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Line of the file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// The same, in French (the console's import page).
    pub message_fr: String,
    /// The raw fields of the row, for the rejects file.
    pub fields: Vec<String>,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The text encoding a file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encoding {
    /// UTF-8 without BOM.
    Utf8,
    /// UTF-8 with a BOM.
    Utf8Bom,
    /// UTF-16 (LE or BE) with a BOM.
    Utf16,
    /// Windows-1252 (Excel's "CSV (séparateur: point-virgule)" in Belgium).
    Windows1252,
}

/// What [`parse`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parsed {
    /// Valid rows, in file order.
    pub rows: Vec<RegistryRow>,
    /// Invalid rows, in file order (several problems of a row are joined).
    pub errors: Vec<RowError>,
    /// The encoding detected.
    pub encoding: Encoding,
    /// The separator detected.
    pub delimiter: char,
    /// The header as found in the file.
    pub header: Vec<String>,
}

/// A problem with the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No header row.
    #[error("the file is empty: a header row is expected (address or type and fase, and name)")]
    Empty,
    /// A header names a column we do not know.
    #[error("unknown column {column} (known: {known})")]
    UnknownColumn {
        /// The column as written.
        column: String,
        /// The known columns.
        known: String,
    },
    /// A column appears twice.
    #[error("column {0} appears twice in the header")]
    DuplicateColumn(String),
    /// Required columns are missing.
    #[error("the header has no {0} column")]
    MissingColumn(&'static str),
    /// The header line is in another encoding than the rest of the file.
    #[error("line {line}: {detail}")]
    HeaderEncoding {
        /// Line of the file.
        line: usize,
        /// Which byte, and what to do.
        detail: String,
    },
    /// The CSV itself cannot be read (unbalanced quotes…).
    #[error("line {line}: {message}")]
    Malformed {
        /// Line of the file.
        line: usize,
        /// The reader's message.
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Address,
    Kind,
    Fase,
    Name,
    QuotaBytes,
    UsageBytes,
    Messages,
}

/// Column names and their aliases, after [`normalise_header`].
const COLUMNS: &[(Column, &[&str])] = &[
    (Column::Address, &["address", "adresse", "email", "e_mail", "courriel", "adresse_mail", "adresse_email", "bma"]),
    (Column::Kind, &["type", "kind"]),
    (Column::Fase, &["fase", "numero_fase", "n_fase", "no_fase"]),
    (
        Column::Name,
        &["name", "nom", "etablissement", "nom_etablissement", "nom_de_l_etablissement", "denomination", "libelle"],
    ),
    (Column::QuotaBytes, &["quota_bytes", "quota", "quota_octets"]),
    (Column::UsageBytes, &["usage_bytes", "usage", "utilisation", "used_bytes", "taille", "taille_octets"]),
    (Column::Messages, &["messages", "message_count", "nb_messages", "nombre_messages"]),
];

/// Lower case, accents removed, runs of anything but letters and digits
/// turned into one `_`: `"N° FASE"` → `n_fase`, `"Établissement"` → `etablissement`.
fn normalise_header(h: &str) -> String {
    let mut out = String::new();
    for c in h.trim().chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// A file's text, as [`decode`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text (a bad byte of a UTF-8 file is U+FFFD).
    pub text: String,
    /// The encoding detected.
    pub encoding: Encoding,
    /// Lines in another encoding than the file's (bytes that are not UTF-8
    /// in a UTF-8 file, UTF-8 characters in a Windows-1252 one): line, what
    /// is wrong and where.
    pub bad_lines: BTreeMap<usize, Said>,
}

/// Decodes the bytes of a file, detecting its encoding. Without a BOM, a
/// file that is not entirely UTF-8 is still UTF-8 when it has more valid
/// multi-byte characters than invalid sequences (a few bad lines in a UTF-8
/// file, reported in [`Decoded::bad_lines`]); otherwise it is Windows-1252,
/// whose accented letters are almost never valid UTF-8 sequences.
pub fn decode(bytes: &[u8]) -> Decoded {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        let bad_lines = not_utf8(&scan_utf8(rest));
        return Decoded { text: String::from_utf8_lossy(rest).into_owned(), encoding: Encoding::Utf8Bom, bad_lines };
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        let (text, _, _) = encoding_rs::UTF_16LE.decode(bytes);
        return Decoded { text: text.into_owned(), encoding: Encoding::Utf16, bad_lines: BTreeMap::new() };
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Decoded { text: s.to_owned(), encoding: Encoding::Utf8, bad_lines: BTreeMap::new() };
    }
    let scan = scan_utf8(bytes);
    if scan.valid > scan.invalid {
        let bad_lines = not_utf8(&scan);
        return Decoded { text: String::from_utf8_lossy(bytes).into_owned(), encoding: Encoding::Utf8, bad_lines };
    }
    // Windows-1252, except the lines that hold UTF-8 characters: decoded as
    // Windows-1252 they would be garbled (`Ã©` for `é`), so they are named.
    let bad_lines = scan
        .multibyte
        .iter()
        .map(|(line, position)| {
            let detail = Said {
                en: format!(
                    "a UTF-8 character (at position {position} of the line) in a file read as Windows-1252: this \
                     line was written in another encoding; correct it and save the whole file in one encoding"
                ),
                fr: format!(
                    "un caractère UTF-8 (en position {position} de la ligne) dans un fichier lu en Windows-1252 : \
                     cette ligne a été écrite dans un autre encodage ; corrigez-la et enregistrez tout le fichier \
                     dans un seul encodage"
                ),
            };
            (*line, detail)
        })
        .collect();
    let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
    Decoded { text: text.into_owned(), encoding: Encoding::Windows1252, bad_lines }
}

/// What [`scan_utf8`] found.
#[derive(Default)]
struct Utf8Scan {
    /// Valid multi-byte characters.
    valid: usize,
    /// Invalid sequences.
    invalid: usize,
    /// Lines with invalid sequences: the first one's byte and position.
    bad: BTreeMap<usize, (u8, usize)>,
    /// Lines with valid multi-byte characters: the first one's position.
    multibyte: BTreeMap<usize, usize>,
}

/// Walks bytes as UTF-8, line by line (positions are 1-based bytes of the line).
fn scan_utf8(bytes: &[u8]) -> Utf8Scan {
    let mut scan = Utf8Scan::default();
    let mut line = 1;
    let mut line_start = 0;
    let mut at = 0;
    while at < bytes.len() {
        let (good, bad_len) = match std::str::from_utf8(&bytes[at..]) {
            Ok(s) => (s, None),
            Err(e) => {
                let good = std::str::from_utf8(&bytes[at..at + e.valid_up_to()]).unwrap_or_default();
                (good, Some(e.error_len().unwrap_or(bytes.len() - at - e.valid_up_to())))
            }
        };
        for (i, c) in good.char_indices() {
            if c == '\n' {
                line += 1;
                line_start = at + i + 1;
            } else if !c.is_ascii() {
                scan.valid += 1;
                scan.multibyte.entry(line).or_insert(at + i - line_start + 1);
            }
        }
        let Some(len) = bad_len else { break };
        let bad_at = at + good.len();
        scan.invalid += 1;
        scan.bad.entry(line).or_insert((bytes[bad_at], bad_at - line_start + 1));
        at = bad_at + len;
    }
    scan
}

/// The lines of a UTF-8 file that are not UTF-8, described.
fn not_utf8(scan: &Utf8Scan) -> BTreeMap<usize, Said> {
    scan.bad
        .iter()
        .map(|(line, (byte, position))| {
            let detail = Said {
                en: format!(
                    "not valid UTF-8 (byte 0x{byte:02X} at position {position} of the line): this line was written \
                     in another encoding; correct it and save the file as UTF-8"
                ),
                fr: format!(
                    "pas de l'UTF-8 valide (octet 0x{byte:02X} en position {position} de la ligne) : cette ligne a \
                     été écrite dans un autre encodage ; corrigez-la et enregistrez le fichier en UTF-8"
                ),
            };
            (*line, detail)
        })
        .collect()
}

/// A problem of a row, in English (the CLI, the rejects file) and in French (the console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// English.
    pub en: String,
    /// French.
    pub fr: String,
}

impl Said {
    fn new(en: String, fr: String) -> Said {
        Said { en, fr }
    }
}

/// The separator of the header line: the most frequent of `;`, `,` and tab
/// outside quotes (semicolon wins ties: it is what Excel writes here).
fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut counts = [(b';', 0usize), (b',', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in header.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for (d, n) in &mut counts {
                if *d == b {
                    *n += 1;
                }
            }
        }
    }
    counts.iter().fold((b';', 0), |best, &(d, n)| if n > best.1 { (d, n) } else { best }).0
}

/// Parses a registry export. File-level problems are errors; row-level
/// problems are collected in [`Parsed::errors`].
pub fn parse(bytes: &[u8], rule: &AddressRule) -> Result<Parsed, RegistryError> {
    let Decoded { text, encoding, bad_lines } = decode(bytes);
    let delimiter = detect_delimiter(&text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());

    // The reader's own line count is off by one after CRLF line ends (a
    // record's position is then the `\n` ending the line before): count
    // from byte offsets instead, a newline at the position included.
    let newlines: Vec<u64> = text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i as u64).collect();
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => return Err(RegistryError::Empty),
            Some(Err(e)) => return Err(malformed(&e)),
            Some(Ok(r)) if r.iter().all(str::is_empty) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let header_line = header.position().map_or(1, |p| line_of(&newlines, p.byte()));
    if let Some(detail) = bad_lines.get(&header_line) {
        return Err(RegistryError::HeaderEncoding { line: header_line, detail: detail.en.clone() });
    }
    let header_fields: Vec<String> = header.iter().map(|f| crate::csv_cell::restore(f).to_owned()).collect();
    let mut columns: Vec<Column> = Vec::new();
    for raw in &header_fields {
        let norm = normalise_header(raw);
        let col =
            COLUMNS.iter().find(|(_, aliases)| aliases.contains(&norm.as_str())).map(|(c, _)| *c).ok_or_else(|| {
                RegistryError::UnknownColumn {
                    column: quote(raw),
                    known: COLUMNS.iter().map(|(_, a)| a[0]).collect::<Vec<_>>().join(", "),
                }
            })?;
        if columns.contains(&col) {
            return Err(RegistryError::DuplicateColumn(quote(raw)));
        }
        columns.push(col);
    }
    let has = |c: Column| columns.contains(&c);
    if !(has(Column::Address) || (has(Column::Kind) && has(Column::Fase))) {
        return Err(RegistryError::MissingColumn("address (or type and fase)"));
    }
    if !has(Column::Name) {
        return Err(RegistryError::MissingColumn("name"));
    }

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<Address, usize> = HashMap::new();
    for record in records {
        let record = record.map_err(|e| malformed(&e))?;
        let line = record.position().map_or(0, |p| line_of(&newlines, p.byte()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        let fields: Vec<String> = record.iter().map(|f| crate::csv_cell::restore(f).to_owned()).collect();
        let last_line = line + fields.iter().map(|f| f.matches('\n').count()).sum::<usize>();
        if let Some((_, detail)) = bad_lines.range(line..=last_line).next() {
            errors.push(RowError { line, message: detail.en.clone(), message_fr: detail.fr.clone(), fields });
            continue;
        }
        if fields.len() != columns.len() {
            errors.push(RowError {
                line,
                message: format!("expected {} fields, found {}", columns.len(), fields.len()),
                message_fr: format!("{} champs attendus, {} trouvés", columns.len(), fields.len()),
                fields,
            });
            continue;
        }
        let get =
            |c: Column| columns.iter().position(|x| *x == c).map(|i| fields[i].as_str()).filter(|s| !s.is_empty());
        let mut problems: Vec<Said> = Vec::new();
        let address = row_address(get(Column::Address), get(Column::Kind), get(Column::Fase), rule, &mut problems);
        let name = get(Column::Name).map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "));
        match &name {
            None => problems.push(Said::new("the name is missing".to_owned(), "le nom manque".to_owned())),
            Some(n) if n.chars().count() > MAX_NAME_CHARS => problems.push(Said::new(
                format!("the name is {} characters long, at most {MAX_NAME_CHARS} are accepted", n.chars().count()),
                format!("le nom compte {} caractères, au plus {MAX_NAME_CHARS} sont acceptés", n.chars().count()),
            )),
            Some(n) if n.chars().any(is_hidden) => problems.push(Said::new(
                format!("the name {} contains a control character", quote(n)),
                format!("le nom {} contient un caractère de contrôle", quote(n)),
            )),
            Some(_) => {}
        }
        let mut number = |c: Column, label: &str| {
            get(c).and_then(|v| match v.parse::<u64>() {
                Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => {
                    problems.push(Said::new(
                        format!("{label} {} is not a non-negative whole number", quote(v)),
                        format!("{label} {} n'est pas un nombre entier positif ou nul", quote(v)),
                    ));
                    None
                }
            })
        };
        let quota_bytes = number(Column::QuotaBytes, "quota_bytes");
        let usage_bytes = number(Column::UsageBytes, "usage_bytes");
        let messages = number(Column::Messages, "messages");
        if let Some(a) = &address
            && let Some(first) = seen.get(a)
        {
            problems
                .push(Said::new(format!("{a} is already on line {first}"), format!("{a} est déjà en ligne {first}")));
        }
        match (address, name) {
            (Some(address), Some(name)) if problems.is_empty() => {
                seen.insert(address.clone(), line);
                rows.push(RegistryRow { line, address, name, quota_bytes, usage_bytes, messages });
            }
            _ => {
                let en: Vec<&str> = problems.iter().map(|p| p.en.as_str()).collect();
                let fr: Vec<&str> = problems.iter().map(|p| p.fr.as_str()).collect();
                errors.push(RowError {
                    line,
                    message: escape_controls(&en.join("; ")),
                    message_fr: escape_controls(&fr.join(" ; ")),
                    fields,
                });
            }
        }
    }
    Ok(Parsed { rows, errors, encoding, delimiter: delimiter as char, header: header_fields })
}

/// 1-based line of a record starting at `byte`, given the offsets of every `\n`.
fn line_of(newlines: &[u64], byte: u64) -> usize {
    newlines.partition_point(|&n| n <= byte) + 1
}

fn malformed(e: &csv::Error) -> RegistryError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    RegistryError::Malformed { line, message: escape_controls(&e.to_string()) }
}

/// A character that changes or hides what a line shows: control characters
/// (C0, DEL, C1) and the bidirectional embeddings, overrides and isolates.
fn is_hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Input quoted in a message: between single quotes, control characters
/// escaped, cut after 80 characters (a whole row pasted into one cell must
/// not flood the terminal).
pub fn quote(input: &str) -> String {
    const MAX: usize = 80;
    let mut out = escape_controls(&input.chars().take(MAX).collect::<String>());
    if input.chars().count() > MAX {
        out.push('…');
    }
    format!("'{out}'")
}

/// Control characters (C0, DEL, C1) and the bidirectional overrides that
/// can disguise a line on a terminal, written as `\u{…}` escapes; the rest
/// unchanged.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_hidden(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn row_address(
    address: Option<&str>,
    kind: Option<&str>,
    fase: Option<&str>,
    rule: &AddressRule,
    problems: &mut Vec<Said>,
) -> Option<Address> {
    let kind = match kind.map(|k| (k, MailboxKind::from_code(k))) {
        Some((k, None)) => {
            problems.push(Said::new(
                format!("type {} is neither ec nor po", quote(k)),
                format!("le type {} n'est ni ec ni po", quote(k)),
            ));
            return None;
        }
        Some((_, Some(k))) => Some(k),
        None => None,
    };
    let fase = match fase.map(|f| Fase::parse(f, rule.fase_digits)) {
        Some(Err(e)) => {
            problems.push(Said::new(e.to_string(), e.fr()));
            return None;
        }
        Some(Ok(f)) => Some(f),
        None => None,
    };
    match address {
        Some(a) => match Address::parse(a, rule) {
            Ok(addr) => {
                if let Some(k) = kind
                    && k != addr.kind()
                {
                    problems.push(Said::new(
                        format!("type {} does not match the address {addr}", k.code()),
                        format!("le type {} ne correspond pas à l'adresse {addr}", k.code()),
                    ));
                }
                if let Some(f) = fase
                    && f != addr.fase()
                {
                    let fase = f.padded(rule.fase_digits);
                    problems.push(Said::new(
                        format!("FASE {fase} does not match the address {addr}"),
                        format!("le numéro FASE {fase} ne correspond pas à l'adresse {addr}"),
                    ));
                }
                Some(addr)
            }
            Err(e) => {
                problems.push(Said::new(e.to_string(), e.fr()));
                None
            }
        },
        None => match (kind, fase) {
            (Some(k), Some(f)) => Some(rule.address_for(k, f)),
            _ => {
                problems.push(Said::new(
                    "no address, and no type with fase to build it".to_owned(),
                    "pas d'adresse, ni de type avec un numéro FASE pour la construire".to_owned(),
                ));
                None
            }
        },
    }
}

/// What the store already knows of a mailbox, for [`plan_import`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMailbox {
    /// Address (lower case).
    pub address: String,
    /// Name.
    pub name: String,
    /// Quota in bytes.
    pub quota_bytes: Option<u64>,
    /// Usage in bytes.
    pub usage_bytes: Option<u64>,
    /// Messages.
    pub messages: Option<u64>,
}

/// One changed field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Field name.
    pub field: &'static str,
    /// Old value (text; empty when unknown).
    pub old: String,
    /// New value.
    pub new: String,
}

/// What an import will do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportPlan {
    /// Mailboxes to create.
    pub new: Vec<RegistryRow>,
    /// Mailboxes to update, with what changes.
    pub updated: Vec<(RegistryRow, Vec<FieldChange>)>,
    /// Rows identical to what is known.
    pub unchanged: usize,
    /// Known addresses absent from this import (reported, kept).
    pub missing: Vec<String>,
}

/// Compares rows with known mailboxes. A value not given in the import
/// (`None`) keeps what is known: an export without usage columns does not
/// erase the usage figures of a richer one.
pub fn plan_import(known: &[KnownMailbox], rows: &[RegistryRow]) -> ImportPlan {
    let by_address: BTreeMap<&str, &KnownMailbox> = known.iter().map(|k| (k.address.as_str(), k)).collect();
    let mut plan = ImportPlan::default();
    for row in rows {
        match by_address.get(row.address.as_str()) {
            None => plan.new.push(row.clone()),
            Some(k) => {
                let mut changes = Vec::new();
                if k.name != row.name {
                    changes.push(FieldChange { field: "name", old: k.name.clone(), new: row.name.clone() });
                }
                let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
                for (field, old, new) in [
                    ("quota_bytes", k.quota_bytes, row.quota_bytes),
                    ("usage_bytes", k.usage_bytes, row.usage_bytes),
                    ("messages", k.messages, row.messages),
                ] {
                    if new.is_some() && new != old {
                        changes.push(FieldChange { field, old: opt(old), new: opt(new) });
                    }
                }
                if changes.is_empty() {
                    plan.unchanged += 1;
                } else {
                    plan.updated.push((row.clone(), changes));
                }
            }
        }
    }
    let incoming: std::collections::HashSet<&str> = rows.iter().map(|r| r.address.as_str()).collect();
    plan.missing = known.iter().filter(|k| !incoming.contains(k.address.as_str())).map(|k| k.address.clone()).collect();
    plan.missing.sort();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> AddressRule {
        AddressRule::default()
    }

    fn errors(input: &[u8]) -> Vec<String> {
        parse(input, &rule()).unwrap().errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn utf8_commas_lf() {
        let p =
            parse(b"address,name,quota_bytes,usage_bytes,messages\nec000001@adm.cfwb.be,Ecole A,100,50,7\n", &rule())
                .unwrap();
        assert_eq!((p.encoding, p.delimiter), (Encoding::Utf8, ','));
        assert_eq!(p.errors, vec![]);
        let r = &p.rows[0];
        assert_eq!((r.line, r.address.as_str(), r.name.as_str()), (2, "ec000001@adm.cfwb.be", "Ecole A"));
        assert_eq!((r.quota_bytes, r.usage_bytes, r.messages), (Some(100), Some(50), Some(7)));
    }

    #[test]
    fn excel_windows_1252_semicolons_crlf_type_fase() {
        // "Athénée Royal" and "École" in Windows-1252.
        let bytes = b"type;fase;nom\r\nec;1234;Ath\xe9n\xe9e Royal\r\npo;000042;\xc9cole libre\r\n";
        let p = parse(bytes, &rule()).unwrap();
        assert_eq!((p.encoding, p.delimiter), (Encoding::Windows1252, ';'));
        assert_eq!(p.errors, vec![]);
        let got: Vec<(&str, &str)> = p.rows.iter().map(|r| (r.address.as_str(), r.name.as_str())).collect();
        assert_eq!(got, vec![("ec001234@adm.cfwb.be", "Athénée Royal"), ("po000042@adm.cfwb.be", "École libre")]);
    }

    #[test]
    fn utf8_bom_and_french_headers() {
        let p = parse(
            "\u{feff}Adresse;Nom de l'établissement;Quota\nEC000001@ADM.CFWB.BE;  École   A ;10\n".as_bytes(),
            &rule(),
        )
        .unwrap();
        assert_eq!(p.encoding, Encoding::Utf8Bom);
        assert_eq!(p.rows[0].address.as_str(), "ec000001@adm.cfwb.be");
        assert_eq!(p.rows[0].name, "École A");
        assert_eq!(p.rows[0].quota_bytes, Some(10));
    }

    #[test]
    fn utf16_tab_separated() {
        let text = "address\tname\nec000001@adm.cfwb.be\tÉcole\n";
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let p = parse(&bytes, &rule()).unwrap();
        assert_eq!((p.encoding, p.delimiter), (Encoding::Utf16, '\t'));
        assert_eq!(p.rows[0].name, "École");
    }

    #[test]
    fn every_bad_row_is_named() {
        let input = b"address,type,fase,name,messages\n\
ec000001@adm.cfwb.be,,,A,1\n\
ec000002@adm.cfwb.be,po,,B,\n\
ec000003@adm.cfwb.be,,4,C,\n\
nobody@example.org,,,D,\n\
,,,E,\n\
,xx,1,F,\n\
ec000001@adm.cfwb.be,,,A again,\n\
ec000007@adm.cfwb.be,,,,\n\
ec000008@adm.cfwb.be,,,H,-3\n\
ec000009@adm.cfwb.be,,,I\n\
\n\
,ec,10,J,2\n";
        expect_test::expect![[r#"
            [
                "line 3: type po does not match the address ec000002@adm.cfwb.be",
                "line 4: FASE 000004 does not match the address ec000003@adm.cfwb.be",
                "line 5: 'nobody@example.org' is not in the domain adm.cfwb.be",
                "line 6: no address, and no type with fase to build it",
                "line 7: type 'xx' is neither ec nor po",
                "line 8: ec000001@adm.cfwb.be is already on line 2",
                "line 9: the name is missing",
                "line 10: messages '-3' is not a non-negative whole number",
                "line 11: expected 5 fields, found 4",
            ]
        "#]]
        .assert_debug_eq(&errors(input));
        let p = parse(input, &rule()).unwrap();
        let fr: Vec<String> = p.errors.iter().map(|e| format!("ligne {} : {}", e.line, e.message_fr)).collect();
        expect_test::expect![[r#"
            [
                "ligne 3 : le type po ne correspond pas à l'adresse ec000002@adm.cfwb.be",
                "ligne 4 : le numéro FASE 000004 ne correspond pas à l'adresse ec000003@adm.cfwb.be",
                "ligne 5 : 'nobody@example.org' n'est pas dans le domaine adm.cfwb.be",
                "ligne 6 : pas d'adresse, ni de type avec un numéro FASE pour la construire",
                "ligne 7 : le type 'xx' n'est ni ec ni po",
                "ligne 8 : ec000001@adm.cfwb.be est déjà en ligne 2",
                "ligne 9 : le nom manque",
                "ligne 10 : messages '-3' n'est pas un nombre entier positif ou nul",
                "ligne 11 : 5 champs attendus, 4 trouvés",
            ]
        "#]]
        .assert_debug_eq(&fr);
        let good: Vec<&str> = p.rows.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(good, vec!["ec000001@adm.cfwb.be", "ec000010@adm.cfwb.be"]);
    }

    #[test]
    fn file_level_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "the file is empty: a header row is expected (address or type and fase, and name)"),
            (
                b"address,colour\n",
                "unknown column 'colour' (known: address, type, fase, name, quota_bytes, usage_bytes, messages)",
            ),
            (b"address,name,Nom\n", "column 'Nom' appears twice in the header"),
            (b"fase,name\n", "the header has no address (or type and fase) column"),
            (b"address\n", "the header has no name column"),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input, &rule()).unwrap_err().to_string(), *expected);
        }
    }

    #[test]
    fn headers_normalise() {
        for (raw, norm) in
            [("N° FASE", "n_fase"), ("Établissement", "etablissement"), ("  Quota (octets) ", "quota_octets")]
        {
            assert_eq!(normalise_header(raw), norm);
        }
    }

    #[test]
    fn import_plan_diffs() {
        let rows = parse(
            b"address,name,messages\nec000001@adm.cfwb.be,A,1\nec000002@adm.cfwb.be,B2,\nec000003@adm.cfwb.be,C,3\n",
            &rule(),
        )
        .unwrap()
        .rows;
        let known = vec![
            KnownMailbox {
                address: "ec000001@adm.cfwb.be".into(),
                name: "A".into(),
                quota_bytes: Some(5),
                usage_bytes: None,
                messages: Some(1),
            },
            KnownMailbox {
                address: "ec000002@adm.cfwb.be".into(),
                name: "B".into(),
                quota_bytes: None,
                usage_bytes: None,
                messages: Some(9),
            },
            KnownMailbox {
                address: "ec000009@adm.cfwb.be".into(),
                name: "Z".into(),
                quota_bytes: None,
                usage_bytes: None,
                messages: None,
            },
        ];
        let plan = plan_import(&known, &rows);
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.new.iter().map(|r| r.address.as_str()).collect::<Vec<_>>(), vec!["ec000003@adm.cfwb.be"]);
        assert_eq!(plan.updated.len(), 1);
        assert_eq!(plan.updated[0].1, vec![FieldChange { field: "name", old: "B".into(), new: "B2".into() }]);
        assert_eq!(plan.missing, vec!["ec000009@adm.cfwb.be".to_owned()]);
    }
}

#[cfg(test)]
mod hostile_input {
    use super::*;

    fn rule() -> AddressRule {
        AddressRule::default()
    }

    /// (input, encoding, valid rows' names, errors).
    #[test]
    fn encodings_table() {
        /// What, the file, the encoding read, the valid rows' names, the errors.
        type Case = (&'static str, Vec<u8>, Encoding, Vec<&'static str>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "UTF-8 with two lines pasted from Windows-1252",
                b"address;name\nec000001@adm.cfwb.be;Ath\xc3\xa9n\xc3\xa9e Royal\nec000002@adm.cfwb.be;\xc9cole B\n\
                  ec000003@adm.cfwb.be;\xc3\x89cole C\nec000004@adm.cfwb.be;Lyc\xe9e D\nec000005@adm.cfwb.be;Coll\xc3\xa8ge E\n"
                    .to_vec(),
                Encoding::Utf8,
                vec!["Athénée Royal", "École C", "Collège E"],
                vec![
                    "line 3: not valid UTF-8 (byte 0xC9 at position 22 of the line): this line was written in another encoding; correct it and save the file as UTF-8",
                    "line 5: not valid UTF-8 (byte 0xE9 at position 25 of the line): this line was written in another encoding; correct it and save the file as UTF-8",
                ],
            ),
            (
                "UTF-8 with a BOM and one bad line",
                b"\xef\xbb\xbfaddress;name\r\nec000001@adm.cfwb.be;\xc3\x89cole\r\nec000002@adm.cfwb.be;Ath\xe9n\xe9e\r\n".to_vec(),
                Encoding::Utf8Bom,
                vec!["École"],
                vec![
                    "line 3: not valid UTF-8 (byte 0xE9 at position 25 of the line): this line was written in another encoding; correct it and save the file as UTF-8",
                ],
            ),
            (
                "a genuine Windows-1252 file",
                b"address;name\r\nec000001@adm.cfwb.be;Ath\xe9n\xe9e\r\nec000002@adm.cfwb.be;\xc9cole \xab la Source \xbb\r\n".to_vec(),
                Encoding::Windows1252,
                vec!["Athénée", "École « la Source »"],
                vec![],
            ),
            (
                "Windows-1252 with a line pasted from a UTF-8 file",
                b"address;name\r\nec000001@adm.cfwb.be;Ath\xe9n\xe9e\r\nec000002@adm.cfwb.be;\xc9cole B\r\nec000003@adm.cfwb.be;Coll\xc3\xa8ge\r\n".to_vec(),
                Encoding::Windows1252,
                vec!["Athénée", "École B"],
                vec![
                    "line 4: a UTF-8 character (at position 26 of the line) in a file read as Windows-1252: this line was written in another encoding; correct it and save the whole file in one encoding",
                ],
            ),
            (
                "plain ASCII",
                b"address,name\nec000001@adm.cfwb.be,Ecole\n".to_vec(),
                Encoding::Utf8,
                vec!["Ecole"],
                vec![],
            ),
        ];
        for (what, input, encoding, names, errors) in cases {
            let p = parse(&input, &rule()).unwrap();
            assert_eq!(p.encoding, encoding, "{what}");
            assert_eq!(p.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), names, "{what}");
            assert_eq!(p.errors.iter().map(ToString::to_string).collect::<Vec<_>>(), errors, "{what}");
        }
    }

    #[test]
    fn a_bad_byte_in_the_header_of_a_utf8_file_is_named() {
        let input =
            b"address;\xe9tablissement\nec000001@adm.cfwb.be;\xc3\x89cole\nec000002@adm.cfwb.be;\xc3\x89cole B\n";
        assert_eq!(
            parse(input, &rule()).unwrap_err().to_string(),
            "line 1: not valid UTF-8 (byte 0xE9 at position 9 of the line): this line was written in another encoding; correct it and save the file as UTF-8"
        );
    }

    #[test]
    fn names_and_messages_table() {
        let long = "É".repeat(MAX_NAME_CHARS + 1);
        let at_cap = "É".repeat(MAX_NAME_CHARS);
        let cases: Vec<(String, Option<&str>)> = vec![
            (format!("ec000001@adm.cfwb.be,{at_cap}"), None),
            (
                format!("ec000001@adm.cfwb.be,{long}"),
                Some("line 2: the name is 301 characters long, at most 300 are accepted"),
            ),
            (
                "ec000001@adm.cfwb.be,Ecole\u{7}A".to_owned(),
                Some("line 2: the name 'Ecole\\u{7}A' contains a control character"),
            ),
            (
                "ec000001@adm.cfwb.be,Ecole \u{202e}A".to_owned(),
                Some("line 2: the name 'Ecole \\u{202e}A' contains a control character"),
            ),
            (
                "\"ec000001@adm.cfwb.be\u{1b}[2J\",Ecole".to_owned(),
                Some("line 2: 'ec000001@adm.cfwb.be\\u{1b}[2j' is not in the domain adm.cfwb.be"),
            ),
            (
                "ec000001@adm.cfwb.be,Ecole,\"1\u{8}\u{8}9\"".to_owned(),
                Some("line 2: messages '1\\u{8}\\u{8}9' is not a non-negative whole number"),
            ),
            (
                format!("ec000001@adm.cfwb.be,Ecole,{}", "9".repeat(100)),
                Some(
                    "line 2: messages '99999999999999999999999999999999999999999999999999999999999999999999999999999999…' is not a non-negative whole number",
                ),
            ),
            ("ec000001@adm.cfwb.be,'=HYPERLINK(\"x\")".to_owned(), None),
        ];
        for (row, expected) in cases {
            let header = if row.matches(',').count() == 2 { "address,name,messages" } else { "address,name" };
            let p = parse(format!("{header}\n{row}\n").as_bytes(), &rule()).unwrap();
            let got = p.errors.first().map(ToString::to_string);
            assert_eq!(got.as_deref(), expected, "{row:?}");
        }
        // A neutralised cell comes back as it was written by the registry.
        let p = parse(b"address,name\nec000001@adm.cfwb.be,'=HYPERLINK(\"x\")\n", &rule()).unwrap();
        assert_eq!(p.rows[0].name, "=HYPERLINK(\"x\")");
        let err = parse(b"address,col\x1bour\n", &rule()).unwrap_err().to_string();
        assert!(err.starts_with("unknown column 'col\\u{1b}our'"), "{err}");
    }
}

#[cfg(test)]
mod line_numbers {
    #[test]
    fn crlf_and_lf_count_alike() {
        for input in [
            &b"address,name\r\nec000001@adm.cfwb.be,A\r\nec000002@adm.cfwb.be,B\r\n"[..],
            b"address,name\nec000001@adm.cfwb.be,A\nec000002@adm.cfwb.be,B\n",
        ] {
            let p = super::parse(input, &crate::AddressRule::default()).unwrap();
            let lines: Vec<usize> = p.rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, vec![2, 3], "{:?}", String::from_utf8_lossy(input));
        }
    }
}
