//! The platforms on files: Dovecot's `passwd-file` ([`PasswdFile`]: the
//! accounts) and Postfix's `transport_maps` ([`TransportMap`]: the routes).
//!
//! Rules: every change is a read-modify-write of the whole file under an
//! exclusive lock on a lock file beside it (`<file>.lock`, so that several
//! workers, or a worker and the lab, never lose each other's change), the
//! new text written to a temporary file in the same directory and renamed
//! over the old one (a reader sees the old file or the new one); a change
//! that leaves the text as it was writes nothing; lines this module does
//! not manage are kept as they are, comments included.

mod passwd;
mod transport;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

pub use crate::relay::Transports;
pub use passwd::{PasswdFile, parse_size};
pub use transport::TransportMap;

use crate::PlatformError;

/// Runs `change` on the text of `file` (empty if it does not exist yet)
/// under the file's lock, and writes what it returns if it differs;
/// `written` runs after a write, still under the lock. Returns whether the
/// file changed.
pub(crate) fn rewrite(
    file: &Path,
    change: impl FnOnce(&str) -> Result<String, PlatformError>,
    written: impl FnOnce(&Path) -> Result<(), PlatformError>,
) -> Result<bool, PlatformError> {
    let _lock = lock(file)?;
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(PlatformError::io(file)(e)),
    };
    let new = change(&text)?;
    if new == text && file.exists() {
        return Ok(false);
    }
    replace(file, &new)?;
    written(file)?;
    Ok(true)
}

/// An exclusive lock on `<file>.lock`, released when dropped: what every
/// writer of one of these files takes (the lab's own provisioning too).
pub fn lock(file: &Path) -> Result<fs::File, PlatformError> {
    let path = sibling(file, ".lock");
    let handle =
        fs::File::options().create(true).truncate(false).write(true).open(&path).map_err(PlatformError::io(&path))?;
    handle.lock().map_err(PlatformError::io(&path))?;
    Ok(handle)
}

/// Writes `text` to a temporary file beside `file` and renames it over
/// `file`, keeping `file`'s permissions (0644 for a new file).
fn replace(file: &Path, text: &str) -> Result<(), PlatformError> {
    let tmp = sibling(file, ".bma-tmp");
    let mode = fs::metadata(file).map(|m| m.permissions().mode()).unwrap_or(0o644);
    let mut out = fs::File::create(&tmp).map_err(PlatformError::io(&tmp))?;
    out.write_all(text.as_bytes()).and_then(|()| out.sync_all()).map_err(PlatformError::io(&tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(PlatformError::io(&tmp))?;
    fs::rename(&tmp, file).map_err(PlatformError::io(file))
}

/// `file` with `suffix` added to its name.
fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    file.with_file_name(name)
}

/// Whether `address` can be a key of these files: lower case, one `@`,
/// no white space, no `:` and no control character.
pub(crate) fn check_address(address: &str) -> Result<(), PlatformError> {
    let bad =
        |message: &str| Err(PlatformError::Invalid { what: "address", message: format!("{address:?}: {message}") });
    if address.matches('@').count() != 1 || address.starts_with('@') || address.ends_with('@') {
        return bad("not local@domain");
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':' || c.is_uppercase()) {
        return bad("white space, ':', a control character or upper case");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_address, rewrite};

    #[test]
    fn a_rewrite_that_changes_nothing_writes_nothing() {
        let dir = tempfile::tempdir().expect("a directory");
        let file = dir.path().join("users");
        assert!(rewrite(&file, |_| Ok("a\n".into()), |_| Ok(())).expect("written"));
        let before = std::fs::metadata(&file).and_then(|m| m.modified()).expect("mtime");
        let mut called = false;
        assert!(
            !rewrite(
                &file,
                |t| Ok(t.to_owned()),
                |_| {
                    called = true;
                    Ok(())
                }
            )
            .expect("unchanged")
        );
        assert!(!called);
        assert_eq!(std::fs::metadata(&file).and_then(|m| m.modified()).expect("mtime"), before);
        assert!(!dir.path().join("users.bma-tmp").exists());
    }

    #[test]
    fn addresses_that_cannot_be_keys() {
        for ok in ["ec012345@adm.cfwb.be", "a.b-c+d@x.y"] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for bad in ["", "x", "@x", "x@", "a@b@c", "a b@c", "a:b@c", "A@b.c", "a@b\n"] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }
}
