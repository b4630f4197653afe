//! [`Secret`]: a password or token that never shows in `Debug` output or
//! logs, and the readers of secret files: [`Secret::read_file`] (a
//! password file) and [`Secret::read_token_file`] (an OAuth 2.0 token
//! file, read again at each login).
//!
//! Rules: a password file holds the password and at most a line ending
//! (`\n` or `\r\n`, as editors leave it), which is not part of it; any
//! other byte is. A token has no white space: a token file's surrounding
//! white space is not part of it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A password or bearer token. `Debug` and `Display` print `***`; the value
/// is reached only through [`Secret::expose`], at the one place it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value itself, for the code that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from a file: its content without the trailing line
    /// ending(s).
    pub fn read_file(path: &Path) -> Result<Secret, SecretFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SecretFileError { path: path.to_path_buf(), source })?;
        Ok(Secret(text.trim_end_matches(['\r', '\n']).to_owned()))
    }

    /// Reads an OAuth 2.0 bearer token from a file, without blocking: its
    /// content without surrounding white space.
    pub async fn read_token_file(path: &Path) -> Result<Secret, SecretFileError> {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| SecretFileError { path: path.to_path_buf(), source })?;
        Ok(Secret(text.trim().to_owned()))
    }
}

/// A secret file that cannot be read (the error names the file, never its content).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct SecretFileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn read_file_drops_the_line_ending_only() {
        let dir = std::env::temp_dir().join(format!("bma-imap-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for (i, (content, want)) in
            [("hunter2\n", "hunter2"), ("hunter2\r\n", "hunter2"), (" pass word \n", " pass word "), ("x", "x")]
                .into_iter()
                .enumerate()
        {
            let f = dir.join(format!("s{i}"));
            std::fs::write(&f, content).expect("write");
            assert_eq!(Secret::read_file(&f).expect("read").expose(), want, "{content:?}");
        }
        let missing = dir.join("missing");
        let e = Secret::read_file(&missing).expect_err("missing");
        assert!(e.to_string().starts_with(&format!("cannot read {}: ", missing.display())), "{e}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
