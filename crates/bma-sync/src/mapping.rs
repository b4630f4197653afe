//! The folder tree: which source folders are copied, and where they land.
//!
//! A source name (UTF-8, the source's separator, its personal namespace
//! prefix removed) is split into components, joined again with the
//! target's separator under the target's prefix; a component holding the
//! target's separator has it replaced by `_` (reported). INBOX stays INBOX.
//! Special-use folders (by attribute, or by a well-known top-level name in
//! English or French) land in the target's folder of the same use; when the
//! target has none yet ([`NewSpecialUse`]): created with its use where the
//! target has CREATE-SPECIAL-USE, under its usual name where the target
//! gives uses by name (SPECIAL-USE announced: Dovecot's `special_use`
//! settings), else under the source's own name (no use to give: a renamed
//! folder would only lose its name).
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
    /// Whether this run created the target folder (so it is empty).
    pub created: bool,
    /// Whether the source is subscribed.
    pub subscribed: bool,
    /// Whether messages are copied (false for `\Noselect` folders).
    pub selectable: bool,
    /// Why the name changed beyond separator and prefix, if it did.
    pub note: Option<String>,
    /// The special use to give the folder when creating it
    /// ([`NewSpecialUse::CreateWithUse`]).
    pub create_use: Option<SpecialUse>,
}

/// What a target does for a special-use folder it does not have yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewSpecialUse {
    /// CREATE-SPECIAL-USE: `CREATE Sent (USE (\Sent))`.
    CreateWithUse,
    /// SPECIAL-USE without it: the server gives uses to configured names,
    /// so the usual name ("Sent") gets the use.
    ByName,
    /// Neither: the source's own name is kept.
    Keep,
}

impl NewSpecialUse {
    /// From the target's capabilities.
    pub fn of(caps: &bma_imap::Capabilities) -> NewSpecialUse {
        if caps.create_special_use() {
            NewSpecialUse::CreateWithUse
        } else if caps.special_use() {
            NewSpecialUse::ByName
        } else {
            NewSpecialUse::Keep
        }
    }
}

/// The target's side of a plan: its folders, personal prefix and what it
/// does with a special-use folder it does not have.
#[derive(Debug, Clone, Copy)]
pub struct TargetTree<'a> {
    /// The target's LIST.
    pub list: &'a [MailboxInfo],
    /// Its personal namespace prefix (UTF-8, such as `INBOX.` or empty).
    pub prefix: &'a str,
    /// See [`NewSpecialUse`].
    pub new_special_use: NewSpecialUse,
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

/// Why a folder plan is what it is, strongest first: when two source
/// folders would land in the same target folder, the stronger keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Claim {
    /// `--folder-map`.
    Explicit,
    /// INBOX.
    Inbox,
    /// A special-use attribute on the source.
    UseAttribute,
    /// A well-known special-use name on the source.
    UseName,
    /// The source's own name.
    Own,
}

/// Two `--folder-map` entries (or one and INBOX) would merge two source
/// folders into one target folder, which is not supported: the copy
/// engine's crash recovery and verification are per folder pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--folder-map: {first} and {second} would both land in {target}; merging folders is not supported")]
pub struct MergeError {
    /// One source folder.
    pub first: String,
    /// The other.
    pub second: String,
    /// Their common target.
    pub target: String,
}

/// Plans the folder tree. `source_prefix` is the source's personal
/// namespace prefix (UTF-8, such as `INBOX.` or empty).
///
/// Each target folder receives one source folder: when two would land in
/// the same one (a source with both "Sent" and "Éléments envoyés", two names
/// equal once the separator is replaced), the stronger claim keeps it
/// (`--folder-map`, INBOX, a special-use attribute, a special-use name, the
/// folder's own name; then the source's order) and the other keeps its own
/// name, or gets " (2)", " (3)"... appended, with a note. Two explicit
/// `--folder-map` entries onto one target are an error.
pub fn plan(
    source: &[MailboxInfo],
    source_prefix: &str,
    tree: &TargetTree<'_>,
    options: &MappingOptions,
) -> Result<Vec<FolderPlan>, MergeError> {
    let (target, target_prefix) = (tree.list, tree.prefix);
    let target_delim = target.iter().find_map(|m| m.delimiter).unwrap_or('/');
    // (source, source name, target name, note, claim, own target name, own note, use to create with)
    let mut drafts = Vec::new();
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
        let relative = source_name.strip_prefix(source_prefix).unwrap_or(&source_name);
        let parts: Vec<&str> = match info.delimiter {
            Some(d) => relative.split(d).collect(),
            None => vec![relative],
        };
        let mut own_note = None;
        let fixed: Vec<String> = parts
            .iter()
            .map(|p| {
                if p.contains(target_delim) {
                    own_note = Some(format!("'{target_delim}' in a name replaced by '_'"));
                    p.replace(target_delim, "_")
                } else {
                    (*p).to_owned()
                }
            })
            .collect();
        let own = format!("{target_prefix}{}", fixed.join(&target_delim.to_string()));
        let by_name = if parts.len() == 1 { special_use_by_name(parts[0]) } else { None };
        let use_ = info.special_use.or(by_name);
        let use_claim = if info.special_use.is_some() { Claim::UseAttribute } else { Claim::UseName };
        let mut create_use = None;
        let (target_name, note, claim) =
            if let Some((_, dst)) = options.folder_map.iter().find(|(src, _)| *src == source_name) {
                (dst.clone(), Some(format!("mapped by --folder-map to {dst}")), Claim::Explicit)
            } else if info.name.is_inbox() {
                ("INBOX".to_owned(), None, Claim::Inbox)
            } else if let Some(t) = use_.and_then(|u| target.iter().find(|t| t.special_use == Some(u))) {
                let name = t.name.name().into_owned();
                let note = (name != relative).then(|| format!("special-use folder mapped to {name}"));
                (name, note, use_claim)
            } else if let Some(u) = use_.filter(|_| parts.len() == 1 && tree.new_special_use != NewSpecialUse::Keep) {
                // The target has no folder of this use yet: its usual name,
                // created with the use, or recognised by name.
                let name = format!("{target_prefix}{}", canonical_name(u));
                let note = (name != relative).then(|| format!("special-use folder mapped to {name}"));
                if tree.new_special_use == NewSpecialUse::CreateWithUse {
                    create_use = Some(u);
                }
                (name, note, use_claim)
            } else {
                (own.clone(), own_note.clone(), Claim::Own)
            };
        drafts.push((info, source_name, target_name, note, claim, own, own_note, create_use));
    }
    // Hand out the target names, strongest claim first.
    let key = |name: &str| if MailboxName::new(name).is_inbox() { "INBOX".to_owned() } else { name.to_owned() };
    let mut order: Vec<usize> = (0..drafts.len()).collect();
    order.sort_by_key(|&i| (drafts[i].4, i));
    let mut taken: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for &i in &order {
        let k = key(&drafts[i].2);
        let Some(&holder) = taken.get(&k) else {
            taken.insert(k, i);
            continue;
        };
        if drafts[i].4 <= Claim::Inbox {
            return Err(MergeError {
                first: drafts[holder].1.clone(),
                second: drafts[i].1.clone(),
                target: drafts[i].2.clone(),
            });
        }
        let own = drafts[i].5.clone();
        let mut name = own.clone();
        let mut n = 2;
        while taken.contains_key(&key(&name)) {
            name = format!("{own} ({n})");
            n += 1;
        }
        drafts[i].3 = Some(format!("kept apart: {} already lands in {}", drafts[holder].1, drafts[i].2));
        drafts[i].2 = name.clone();
        drafts[i].7 = None;
        taken.insert(key(&name), i);
    }
    Ok(drafts
        .into_iter()
        .map(|(info, source_name, target_name, note, _, _, _, create_use)| {
            let target_mbx = MailboxName::new(&target_name);
            let target_exists =
                target.iter().any(|t| t.name.name() == target_name || (t.name.is_inbox() && target_mbx.is_inbox()));
            FolderPlan {
                source: info.name.clone(),
                source_name,
                target: target_mbx,
                target_name,
                target_exists,
                created: false,
                subscribed: info.subscribed,
                selectable: info.selectable(),
                note,
                create_use: create_use.filter(|_| !target_exists),
            }
        })
        .collect())
}

/// A name the target may accept when it refused `name`: in each component
/// (split on the target's separator), control characters and the
/// characters servers commonly refuse (`.` on Maildir++ stores, `*` and
/// `%` the LIST wildcards, `\\` and `"`, a leading `~`) become `_`, an
/// empty component `_`; at most 200 bytes in all.
pub fn cleaned_name(name: &str, delim: char) -> String {
    let parts: Vec<String> = name
        .split(delim)
        .map(|part| {
            let mut out: String = part
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if c.is_control() || matches!(c, '.' | '*' | '%' | '\\' | '"') || (i == 0 && c == '~') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            if out.trim().is_empty() {
                out = "_".to_owned();
            }
            out
        })
        .collect();
    let mut joined = parts.join(&delim.to_string());
    if joined.len() > 200 {
        let mut end = 200;
        while !joined.is_char_boundary(end) {
            end -= 1;
        }
        joined.truncate(end);
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target that names special-use folders by configuration (Dovecot).
    fn target_tree<'a>(list: &'a [MailboxInfo], prefix: &'a str) -> TargetTree<'a> {
        TargetTree { list, prefix, new_special_use: NewSpecialUse::ByName }
    }

    #[test]
    fn a_special_use_folder_the_target_lacks() {
        let source = [
            mbx("INBOX", '/', None),
            mbx("Éléments envoyés", '/', None),
            mbx("Corbeille", '/', Some(SpecialUse::Trash)),
        ];
        let target = [mbx("INBOX", '.', None)];
        // (what the target does, target names, uses given on CREATE)
        let cases = [
            (
                NewSpecialUse::CreateWithUse,
                ["INBOX", "INBOX.Sent", "INBOX.Trash"],
                [None, Some(SpecialUse::Sent), Some(SpecialUse::Trash)],
            ),
            (NewSpecialUse::ByName, ["INBOX", "INBOX.Sent", "INBOX.Trash"], [None, None, None]),
            (NewSpecialUse::Keep, ["INBOX", "INBOX.Éléments envoyés", "INBOX.Corbeille"], [None, None, None]),
        ];
        for (new_special_use, names, uses) in cases {
            let tree = TargetTree { list: &target, prefix: "INBOX.", new_special_use };
            let p = plan(&source, "", &tree, &MappingOptions::default()).expect("plan");
            assert_eq!(p.iter().map(|f| f.target_name.as_str()).collect::<Vec<_>>(), names, "{new_special_use:?}");
            assert_eq!(p.iter().map(|f| f.create_use).collect::<Vec<_>>(), uses, "{new_special_use:?}");
        }
        // A target folder of that use already there: no CREATE, no use to give.
        let target = [mbx("INBOX", '.', None), mbx("INBOX.Envoyés", '.', Some(SpecialUse::Sent))];
        let tree = TargetTree { list: &target, prefix: "INBOX.", new_special_use: NewSpecialUse::CreateWithUse };
        let p = plan(&source, "", &tree, &MappingOptions::default()).expect("plan");
        assert_eq!((p[1].target_name.as_str(), p[1].create_use), ("INBOX.Envoyés", None));
    }

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
    fn two_sources_never_merge_into_one_target() {
        let sent_attr = |name: &str| mbx(name, '/', Some(SpecialUse::Sent));
        let plain = |name: &str| mbx(name, '/', None);
        let map = |pairs: &[(&str, &str)]| MappingOptions {
            folder_map: pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
            ..MappingOptions::default()
        };
        type Case<'a> = (Vec<MailboxInfo>, MappingOptions, Result<Vec<&'a str>, &'a str>);
        let cases: Vec<Case<'_>> = vec![
            // the attribute beats the name; the other keeps its own name, numbered when taken
            (
                vec![plain("Sent"), sent_attr("Éléments envoyés")],
                MappingOptions::default(),
                Ok(vec!["Sent (2)", "Sent"]),
            ),
            (
                vec![plain("Sent Items"), plain("Éléments envoyés")],
                MappingOptions::default(),
                Ok(vec!["Sent", "Éléments envoyés"]),
            ),
            // equal once the separator is replaced: the source's order decides
            (vec![mbx("a.b", '/', None), mbx("a/b", '.', None)], MappingOptions::default(), Ok(vec!["a.b", "a_b"])),
            (vec![mbx("a_b", '/', None), mbx("a/b", '.', None)], MappingOptions::default(), Ok(vec!["a_b", "a_b (2)"])),
            // an explicit map wins over an automatic one
            (vec![plain("Sent"), plain("Envoi")], map(&[("Envoi", "Sent")]), Ok(vec!["Sent (2)", "Sent"])),
            // two explicit maps, or one onto INBOX: refused
            (vec![plain("A"), plain("B")], map(&[("A", "C"), ("B", "C")]), Err("A and B would both land in C")),
            (vec![plain("INBOX"), plain("Réception")], map(&[("Réception", "INBOX")]), Err("Réception and INBOX")),
        ];
        for (source, opts, want) in cases {
            let got = plan(&source, "", &target_tree(&[plain("INBOX")], ""), &opts);
            match (got, want) {
                (Ok(p), Ok(names)) => {
                    assert_eq!(p.iter().map(|f| f.target_name.as_str()).collect::<Vec<_>>(), names, "{source:?}");
                }
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{e}"),
                (got, want) => panic!("{source:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn names_the_target_refused_are_cleaned() {
        let long = "é".repeat(150);
        let cases = [
            ("Projets v1.2", '/', "Projets v1_2".to_owned()),
            ("Archives/~old/a*b%c", '/', "Archives/_old/a_b_c".to_owned()),
            ("INBOX.x/y", '.', "INBOX.x/y".to_owned()),
            ("Mot \"cité\"\tici", '/', "Mot _cité__ici".to_owned()),
            ("a//b", '/', "a/_/b".to_owned()),
            (long.as_str(), '/', "é".repeat(100)),
        ];
        for (name, delim, want) in cases {
            assert_eq!(cleaned_name(name, delim), want, "{name}");
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
        let p = plan(&source, "INBOX.", &target_tree(&target, ""), &MappingOptions::default()).expect("plan");
        let got: Vec<(&str, &str)> = p.iter().map(|f| (f.source_name.as_str(), f.target_name.as_str())).collect();
        assert_eq!(
            got,
            [
                ("INBOX", "INBOX"),
                ("INBOX.Sent Items", "Envoyés"),
                // never merged into the folder "Sent Items" already lands in
                ("INBOX.Éléments envoyés", "Éléments envoyés"),
                ("INBOX.Projets.2024", "Projets/2024"),
                ("INBOX.a/b", "a_b"),
                ("INBOX.Corbeille", "Trash"),
            ]
        );
        assert_eq!(p[2].note.as_deref(), Some("kept apart: INBOX.Sent Items already lands in Envoyés"));
        let opts = MappingOptions {
            exclude: vec!["INBOX.Projets*".into()],
            folder_map: vec![("INBOX.a/b".into(), "Divers".into())],
            ..MappingOptions::default()
        };
        let p = plan(&source, "INBOX.", &target_tree(&target, ""), &opts).expect("plan");
        assert!(p.iter().all(|f| !f.source_name.starts_with("INBOX.Projets")));
        assert!(p.iter().any(|f| f.target_name == "Divers"));
    }
}
