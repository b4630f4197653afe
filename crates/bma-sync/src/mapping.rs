//! The folder tree: which source folders are copied, and where they land.
//!
//! A source name (UTF-8, the source's separator, its personal namespace
//! prefix removed) is split into components, joined again with the
//! target's separator under the target's prefix; a component holding the
//! target's separator has it replaced by `_` (reported). INBOX stays INBOX.
//! Special-use folders (by attribute, or by a well-known top-level name in
//! English or French) land in the target's folder of the same use.
//! `--folder-map` overrides all of that; include/exclude globs filter on
//! the source name.

use bma_imap::{MailboxInfo, MailboxName, SpecialUse};

/// One source folder and where it goes.
#[derive(Debug, Clone)]
pub struct FolderPlan {
    /// Source folder.
    pub source: MailboxName,
    /// Source name for humans and the state (UTF-8).
    pub source_name: String,
    /// Target folder.
    pub target: MailboxName,
    /// Target name for humans (UTF-8).
    pub target_name: String,
    /// Whether the target folder already exists.
    pub target_exists: bool,
    /// Whether the source is subscribed.
    pub subscribed: bool,
    /// Whether messages are copied (false for `\Noselect` folders).
    pub selectable: bool,
    /// Why the name changed beyond separator and prefix, if it did.
    pub note: Option<String>,
}

/// What to copy and how to map it.
#[derive(Debug, Clone, Default)]
pub struct MappingOptions {
    /// Source folders to copy (globs, `*` and `?`); empty means all.
    pub include: Vec<String>,
    /// Source folders to leave out (globs).
    pub exclude: Vec<String>,
    /// Explicit `source name = target name` (UTF-8 names, each with its side's separator).
    pub folder_map: Vec<(String, String)>,
}

/// A glob with `*` (any run of characters) and `?` (one character), case-sensitive.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The special use a top-level folder name implies (English, French, Outlook names).
pub fn special_use_by_name(name: &str) -> Option<SpecialUse> {
    let n = name.to_lowercase();
    Some(match n.as_str() {
        "sent" | "sent items" | "sent messages" | "sent mail" | "éléments envoyés" | "envoyés" | "messages envoyés" => {
            SpecialUse::Sent
        }
        "drafts" | "draft" | "brouillons" => SpecialUse::Drafts,
        "trash" | "deleted items" | "deleted messages" | "éléments supprimés" | "corbeille" => SpecialUse::Trash,
        "junk" | "spam" | "junk e-mail" | "junk email" | "courrier indésirable" | "indésirables" => SpecialUse::Junk,
        _ => return None,
    })
}

/// The usual name of a special-use folder.
fn canonical_name(u: SpecialUse) -> &'static str {
    match u {
        SpecialUse::Sent => "Sent",
        SpecialUse::Drafts => "Drafts",
        SpecialUse::Trash => "Trash",
        SpecialUse::Junk => "Junk",
        SpecialUse::Archive => "Archive",
        SpecialUse::All => "All",
        SpecialUse::Flagged => "Flagged",
    }
}

/// Plans the folder tree. `source_prefix`/`target_prefix` are the personal
/// namespace prefixes (UTF-8, such as `INBOX.` or empty).
pub fn plan(
    source: &[MailboxInfo],
    source_prefix: &str,
    target: &[MailboxInfo],
    target_prefix: &str,
    options: &MappingOptions,
) -> Vec<FolderPlan> {
    let target_delim = target.iter().find_map(|m| m.delimiter).unwrap_or('/');
    let mut out = Vec::new();
    for info in source {
        if info.has_attribute("\\NonExistent") {
            continue;
        }
        let source_name = info.name.name().into_owned();
        if !options.include.is_empty() && !options.include.iter().any(|g| glob_match(g, &source_name)) {
            continue;
        }
        if options.exclude.iter().any(|g| glob_match(g, &source_name)) {
            continue;
        }
        let mut note = None;
        let target_name = if let Some((_, dst)) = options.folder_map.iter().find(|(src, _)| *src == source_name) {
            note = Some(format!("mapped by --folder-map to {dst}"));
            dst.clone()
        } else if info.name.is_inbox() {
            "INBOX".to_owned()
        } else {
            let relative = source_name.strip_prefix(source_prefix).unwrap_or(&source_name);
            let delim = info.delimiter;
            let parts: Vec<&str> = match delim {
                Some(d) => relative.split(d).collect(),
                None => vec![relative],
            };
            let use_ = info.special_use.or_else(|| if parts.len() == 1 { special_use_by_name(parts[0]) } else { None });
            let special = use_.and_then(|u| target.iter().find(|t| t.special_use == Some(u)));
            if let Some(t) = special {
                let name = t.name.name().into_owned();
                if name != relative {
                    note = Some(format!("special-use folder mapped to {name}"));
                }
                name
            } else if let Some(u) = use_.filter(|_| parts.len() == 1) {
                // The target has no folder of this use yet: its usual name,
                // which servers configured with special-use names recognise.
                let name = format!("{target_prefix}{}", canonical_name(u));
                if name != relative {
                    note = Some(format!("special-use folder mapped to {name}"));
                }
                name
            } else {
                let fixed: Vec<String> = parts
                    .iter()
                    .map(|p| {
                        if p.contains(target_delim) {
                            note = Some(format!("'{target_delim}' in a name replaced by '_'"));
                            p.replace(target_delim, "_")
                        } else {
                            (*p).to_owned()
                        }
                    })
                    .collect();
                format!("{target_prefix}{}", fixed.join(&target_delim.to_string()))
            }
        };
        let target_mbx = MailboxName::new(&target_name);
        let target_exists =
            target.iter().any(|t| t.name.name() == target_name || (t.name.is_inbox() && target_mbx.is_inbox()));
        out.push(FolderPlan {
            source: info.name.clone(),
            source_name,
            target: target_mbx,
            target_name,
            target_exists,
            subscribed: info.subscribed,
            selectable: info.selectable(),
            note,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbx(name: &str, delim: char, special: Option<SpecialUse>) -> MailboxInfo {
        MailboxInfo {
            name: MailboxName::new(name),
            delimiter: Some(delim),
            attributes: vec![],
            special_use: special,
            subscribed: true,
        }
    }

    #[test]
    fn globs() {
        let cases = [
            ("*", "INBOX", true),
            ("Archives/*", "Archives/2020", true),
            ("Archives/*", "Archive", false),
            ("?NBOX", "INBOX", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("", "", true),
        ];
        for (g, n, want) in cases {
            assert_eq!(glob_match(g, n), want, "{g} {n}");
        }
    }

    #[test]
    fn tree() {
        let source = [
            mbx("INBOX", '.', None),
            mbx("INBOX.Sent Items", '.', None),
            mbx("INBOX.Éléments envoyés", '.', None),
            mbx("INBOX.Projets.2024", '.', None),
            mbx("INBOX.a/b", '.', None),
            mbx("INBOX.Corbeille", '.', Some(SpecialUse::Trash)),
        ];
        let target = [mbx("INBOX", '/', None), mbx("Envoyés", '/', Some(SpecialUse::Sent))];
        let p = plan(&source, "INBOX.", &target, "", &MappingOptions::default());
        let got: Vec<(&str, &str)> = p.iter().map(|f| (f.source_name.as_str(), f.target_name.as_str())).collect();
        assert_eq!(
            got,
            [
                ("INBOX", "INBOX"),
                ("INBOX.Sent Items", "Envoyés"),
                ("INBOX.Éléments envoyés", "Envoyés"),
                ("INBOX.Projets.2024", "Projets/2024"),
                ("INBOX.a/b", "a_b"),
                ("INBOX.Corbeille", "Trash"),
            ]
        );
        let opts = MappingOptions {
            exclude: vec!["INBOX.Projets*".into()],
            folder_map: vec![("INBOX.a/b".into(), "Divers".into())],
            ..MappingOptions::default()
        };
        let p = plan(&source, "INBOX.", &target, "", &opts);
        assert!(p.iter().all(|f| !f.source_name.starts_with("INBOX.Projets")));
        assert!(p.iter().any(|f| f.target_name == "Divers"));
    }
}
