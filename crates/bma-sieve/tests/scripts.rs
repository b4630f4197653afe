//! The corpus: every `scripts/*.sieve` read, its findings, its `set`s
//! and what stripping its external forwarding changes, compared with
//! `scripts/*.expected` (written by `UPDATE_EXPECT=1 cargo test -p
//! bma-sieve`, then read by a person before it is committed).
//!
//! The scripts are shaped like those found on mail servers: Roundcube's
//! managesieve plugin (`# rule:[…]`), SOGo's generated forward and
//! vacation, the Thunderbird Sieve add-on, Pigeonhole's examples, hand
//! written ones with odd spacing and CRLF, and unreadable ones (`bad-*`),
//! whose expected file is their error.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use bma_sieve::{Domains, read_bytes, strip_external};

/// The BMA's domain and the FWB's: the internal ones in this corpus.
fn domains() -> Domains {
    Domains::new(["adm.cfwb.be", "cfwb.be"])
}

fn describe(name: &str, bytes: &[u8]) -> String {
    let domains = domains();
    let report = match read_bytes(name, bytes, &domains) {
        Ok(r) => r,
        Err(e) => return format!("error: {e}\n"),
    };
    let mut out = String::new();
    let _ = writeln!(out, "requires: {:?}", report.requires);
    for f in &report.findings {
        let _ = writeln!(out, "{f}");
    }
    for a in &report.assignments {
        let cond = if a.conditional { " (conditional)" } else { "" };
        let _ = writeln!(out, "set {:?} = {:?} at line {}{cond}", a.name, a.value, a.line);
    }
    let source = std::str::from_utf8(bytes).expect("read above");
    let stripped = strip_external(name, source, &domains).expect("a readable script strips");
    if stripped.changes.is_empty() {
        out.push_str("strip: nothing\n");
    } else {
        for c in &stripped.changes {
            let _ = writeln!(out, "strip line {}: {:?} -> {:?}", c.line, c.before, c.after);
        }
        // CR shown, since expect-test reads its files with CRLF made LF.
        let _ = writeln!(out, "stripped:\n{}", stripped.text.replace('\r', "\\r"));
    }
    out
}

#[test]
fn corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("tests/scripts")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sieve"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "the corpus has {} scripts", names.len());
    let mut readable = 0;
    for name in &names {
        let bytes = fs::read(dir.join(name)).expect("script");
        let got = describe(name, &bytes);
        readable += usize::from(!got.starts_with("error:"));
        assert_eq!(name.starts_with("bad-"), got.starts_with("error:"), "{name}: {got}");
        let expected = format!("scripts/{}.expected", name.trim_end_matches(".sieve"));
        expect_test::expect_file![expected].assert_eq(&got);
    }
    assert!(readable >= 30, "{readable} readable scripts");
}
