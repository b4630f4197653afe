//! The written invariants of the house, kept true by reading the tree.
//!
//! Each rule here is one line of `ARCHITECTURE.md` that the compiler does
//! not enforce. A failure names the file and the line that breaks it, and
//! the rule says where the code belongs instead:
//!
//! - every Rust file opens with a `//!` doc that says what it holds;
//! - `sqlx` is the store's: no other crate depends on it (but the test
//!   crate, which reads the database the way an attacker with a copy
//!   would), so SQL stays in `bma-store`;
//! - `axum` is the web crate's: no other crate depends on it;
//! - `INSERT INTO events` is written only in the store's events module,
//!   and `UPDATE mailboxes SET state` only in its transition module: one
//!   path for every event and every change of state;
//! - no `#[allow(…)]` (clippy's or the compiler's): a lint that must be
//!   silenced is silenced with `#[expect(…, reason = "…")]`, which says why
//!   and fails once it is no longer needed;
//! - every crate under `crates/` is named in ARCHITECTURE.md's codemap.

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace's root, from this crate's manifest directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Every `.rs` file of the workspace's code (crates and xtask), as paths
/// relative to the root, sorted; `target/` and the lab's generated files
/// are not code.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "target" || n == "node_modules") {
                    continue;
                }
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = root();
    let mut out = Vec::new();
    walk(&root.join("crates"), &mut out);
    walk(&root.join("xtask"), &mut out);
    let mut rel: Vec<PathBuf> =
        out.into_iter().map(|p| p.strip_prefix(&root).expect("under root").to_path_buf()).collect();
    rel.sort();
    rel
}

/// The crate directories under `crates/`.
fn crates() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("crates"))
        .expect("crates/")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The lines of `file` (relative to the root) holding `needle`, as
/// `file:line`.
fn lines_with(file: &Path, text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| format!("{}:{}", file.display(), i + 1))
        .collect()
}

/// Whether `file` (relative) is this test itself, which names every
/// pattern it looks for.
fn is_this_file(file: &Path) -> bool {
    file.ends_with("tests/it/tidy.rs")
}

#[test]
fn every_file_opens_with_its_doc() {
    let root = root();
    let missing: Vec<String> = rust_files()
        .into_iter()
        .filter(|f| {
            let text = fs::read_to_string(root.join(f)).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` doc at the top:\n{}", missing.join("\n"));
}

#[test]
fn sql_and_http_stay_in_their_crates() {
    let root = root();
    let mut wrong = Vec::new();
    for name in crates() {
        let manifest = fs::read_to_string(root.join("crates").join(&name).join("Cargo.toml")).expect("manifest");
        let depends_on = |dep: &str| {
            manifest.lines().any(|l| {
                l.trim_start().starts_with(&format!("{dep} ")) || l.trim_start().starts_with(&format!("{dep}."))
            })
        };
        if depends_on("sqlx") && name != "bma-store" && name != "bma-tests" {
            wrong.push(format!("crates/{name} depends on sqlx: SQL belongs in bma-store"));
        }
        if depends_on("axum") && name != "bma-web" {
            wrong.push(format!("crates/{name} depends on axum: HTTP belongs in bma-web"));
        }
        if name == "bma-visitor" && manifest.lines().any(|l| l.trim_start().starts_with("bma-")) {
            wrong.push(format!("crates/{name} depends on a crate of ours: it sees the portal from outside"));
        }
        if name == "bma-sieve" && manifest.lines().any(|l| l.trim_start().starts_with("bma-")) {
            wrong.push(format!("crates/{name} depends on a crate of ours: it reads scripts, nothing else"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn one_path_for_events_and_states() {
    let root = root();
    let mut wrong = Vec::new();
    for file in rust_files() {
        if is_this_file(&file) {
            continue;
        }
        let text = fs::read_to_string(root.join(&file)).unwrap_or_default();
        if !file.ends_with("crates/bma-store/src/events.rs") {
            wrong.extend(
                lines_with(&file, &text, "INSERT INTO events")
                    .into_iter()
                    .map(|l| format!("{l}: events are written by bma-store's events module")),
            );
        }
        if !file.ends_with("crates/bma-store/src/transition.rs") {
            wrong.extend(
                lines_with(&file, &text, "UPDATE mailboxes SET state")
                    .into_iter()
                    .map(|l| format!("{l}: states change through bma-store's transition module")),
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn lints_are_expected_not_allowed() {
    let root = root();
    let needle = ["#[allow(", "#![allow("];
    let mut wrong = Vec::new();
    for file in rust_files() {
        if is_this_file(&file) {
            continue;
        }
        let text = fs::read_to_string(root.join(&file)).unwrap_or_default();
        for n in needle {
            wrong.extend(lines_with(&file, &text, n));
        }
    }
    assert!(wrong.is_empty(), "use #[expect(lint, reason = \"…\")] instead of:\n{}", wrong.join("\n"));
}

#[test]
fn every_crate_is_on_the_map() {
    let map = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let missing: Vec<String> = crates().into_iter().filter(|c| !map.contains(&format!("| `crates/{c}` |"))).collect();
    assert!(missing.is_empty(), "crates missing from ARCHITECTURE.md's codemap: {missing:?}");
}
