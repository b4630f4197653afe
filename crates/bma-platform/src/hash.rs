//! Password hashes as the platforms store them, and their schemes.
//!
//! Dovecot writes a hash as `{SCHEME}value` (`{SHA512-CRYPT}$6$…`); a
//! value without the braces is in the passdb's default scheme, or, for the
//! crypt(3) family, says its scheme by its own prefix (`$6$` is
//! SHA512-CRYPT, `$2y$` BLF-CRYPT, `$argon2id$` ARGON2ID…). LDAP's
//! `userPassword` uses the same braces (`{CRYPT}$6$…`, `{SSHA}…`).
//!
//! Rules: a hash is carried byte for byte: [`PasswordHash::value`] is what
//! was read, only its scheme is made explicit ([`PasswordHash::stored`],
//! with its encoding suffix);
//! a scheme is *strong* when it is salted and slow (crypt with SHA-2 and
//! rounds, bcrypt, Argon2, PBKDF2), *weak* otherwise; a cutover carries
//! only a scheme the new platform accepts, and by default it accepts only
//! strong ones ([`Scheme::STRONG`]). Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use crate::PlatformError;

/// A password scheme, by Dovecot's name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// `SHA512-CRYPT`: crypt(3) `$6$`.
    Sha512Crypt,
    /// `SHA256-CRYPT`: crypt(3) `$5$`.
    Sha256Crypt,
    /// `BLF-CRYPT`: bcrypt `$2a$`, `$2b$`, `$2y$`.
    BlfCrypt,
    /// `ARGON2ID`.
    Argon2id,
    /// `ARGON2I`.
    Argon2i,
    /// `PBKDF2`.
    Pbkdf2,
    /// `MD5-CRYPT`: crypt(3) `$1$`.
    Md5Crypt,
    /// `CRYPT`: DES crypt(3), eight characters at most.
    DesCrypt,
    /// `SSHA512`: one salted SHA-512.
    Ssha512,
    /// `SSHA256`: one salted SHA-256.
    Ssha256,
    /// `SSHA`: one salted SHA-1.
    Ssha,
    /// `SHA512`: one unsalted SHA-512.
    Sha512,
    /// `SHA256`: one unsalted SHA-256.
    Sha256,
    /// `SHA`: one unsalted SHA-1.
    Sha,
    /// `SMD5`: one salted MD5.
    Smd5,
    /// `PLAIN-MD5` (also `LDAP-MD5`): one unsalted MD5.
    PlainMd5,
    /// `PLAIN`: the password itself.
    Plain,
}

/// A scheme name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown password scheme '{0}'")]
pub struct UnknownScheme(pub String);

impl Scheme {
    /// Every scheme.
    pub const ALL: [Scheme; 17] = [
        Scheme::Sha512Crypt,
        Scheme::Sha256Crypt,
        Scheme::BlfCrypt,
        Scheme::Argon2id,
        Scheme::Argon2i,
        Scheme::Pbkdf2,
        Scheme::Md5Crypt,
        Scheme::DesCrypt,
        Scheme::Ssha512,
        Scheme::Ssha256,
        Scheme::Ssha,
        Scheme::Sha512,
        Scheme::Sha256,
        Scheme::Sha,
        Scheme::Smd5,
        Scheme::PlainMd5,
        Scheme::Plain,
    ];

    /// The salted and slow ones: what a new platform accepts by default.
    pub const STRONG: [Scheme; 6] =
        [Scheme::Sha512Crypt, Scheme::Sha256Crypt, Scheme::BlfCrypt, Scheme::Argon2id, Scheme::Argon2i, Scheme::Pbkdf2];

    /// Dovecot's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sha512Crypt => "SHA512-CRYPT",
            Scheme::Sha256Crypt => "SHA256-CRYPT",
            Scheme::BlfCrypt => "BLF-CRYPT",
            Scheme::Argon2id => "ARGON2ID",
            Scheme::Argon2i => "ARGON2I",
            Scheme::Pbkdf2 => "PBKDF2",
            Scheme::Md5Crypt => "MD5-CRYPT",
            Scheme::DesCrypt => "CRYPT",
            Scheme::Ssha512 => "SSHA512",
            Scheme::Ssha256 => "SSHA256",
            Scheme::Ssha => "SSHA",
            Scheme::Sha512 => "SHA512",
            Scheme::Sha256 => "SHA256",
            Scheme::Sha => "SHA",
            Scheme::Smd5 => "SMD5",
            Scheme::PlainMd5 => "PLAIN-MD5",
            Scheme::Plain => "PLAIN",
        }
    }

    /// Salted and slow.
    pub fn is_strong(self) -> bool {
        Scheme::STRONG.contains(&self)
    }

    /// The scheme a crypt(3) value names by its prefix, if any.
    pub fn of_crypt(value: &str) -> Option<Scheme> {
        let prefixes: [(&str, Scheme); 8] = [
            ("$6$", Scheme::Sha512Crypt),
            ("$5$", Scheme::Sha256Crypt),
            ("$2a$", Scheme::BlfCrypt),
            ("$2b$", Scheme::BlfCrypt),
            ("$2y$", Scheme::BlfCrypt),
            ("$argon2id$", Scheme::Argon2id),
            ("$argon2i$", Scheme::Argon2i),
            ("$1$", Scheme::Md5Crypt),
        ];
        prefixes.into_iter().find(|(p, _)| value.starts_with(p)).map(|(_, s)| s)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = UnknownScheme;

    /// Dovecot's names, any case, with its aliases (`CLEARTEXT`, `LDAP-MD5`,
    /// `BLF-CRYPT.b64`'s base name…).
    fn from_str(s: &str) -> Result<Scheme, UnknownScheme> {
        let upper = s.trim().to_ascii_uppercase();
        let base = upper.split('.').next().unwrap_or_default();
        let alias = match base {
            "CLEARTEXT" => Some(Scheme::Plain),
            "LDAP-MD5" | "MD5" => Some(Scheme::PlainMd5),
            "DES-CRYPT" => Some(Scheme::DesCrypt),
            _ => None,
        };
        alias
            .or_else(|| Scheme::ALL.into_iter().find(|k| k.as_str() == base))
            .ok_or_else(|| UnknownScheme(s.to_owned()))
    }
}

/// A password hash: its scheme and its value, byte for byte as read.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    scheme: Scheme,
    /// Dovecot's encoding suffix of the scheme (`.b64`, `.hex`), if any.
    encoding: Option<String>,
    value: String,
}

impl fmt::Debug for PasswordHash {
    /// The scheme only: a hash is not for logs either.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash({{{}}}…)", self.scheme)
    }
}

impl PasswordHash {
    /// Reads a stored hash: `{SCHEME}value`, a crypt(3) value that names
    /// its scheme, or a bare value in `default` (the passdb's scheme).
    /// Refused: an empty value, an unknown scheme, a bare value without a
    /// default, a `{CRYPT}` value that is not crypt(3) (LDAP's way of
    /// writing crypt hashes: `{CRYPT}$6$…` is SHA512-CRYPT).
    pub fn parse(stored: &str, default: Option<Scheme>) -> Result<PasswordHash, PlatformError> {
        let invalid = |message: String| PlatformError::Invalid { what: "password hash", message };
        let (scheme, encoding, value) = match stored.strip_prefix('{').and_then(|rest| rest.split_once('}')) {
            Some((name, value)) => {
                let named = name.parse::<Scheme>().map_err(|e| invalid(e.to_string()))?;
                // {CRYPT} holds any crypt(3) value; its own prefix says which.
                let scheme = if named == Scheme::DesCrypt { Scheme::of_crypt(value).unwrap_or(named) } else { named };
                let encoding = name.find('.').map(|at| name[at..].to_owned());
                (scheme, encoding, value)
            }
            None => {
                let scheme = Scheme::of_crypt(stored)
                    .or(default)
                    .ok_or_else(|| invalid("a value without {SCHEME} and no default scheme".to_owned()))?;
                (scheme, None, stored)
            }
        };
        if value.is_empty() {
            return Err(invalid("empty".to_owned()));
        }
        if value.contains(|c: char| c.is_control() || c == ':' || c.is_whitespace()) {
            return Err(invalid("white space, ':' or a control character in the value".to_owned()));
        }
        Ok(PasswordHash { scheme, encoding, value: value.to_owned() })
    }

    /// A hash of a scheme and its value.
    pub fn new(scheme: Scheme, value: &str) -> Result<PasswordHash, PlatformError> {
        PasswordHash::parse(value, Some(scheme)).and_then(|h| {
            if h.scheme == scheme {
                Ok(h)
            } else {
                Err(PlatformError::Invalid {
                    what: "password hash",
                    message: format!("a {} value given as {scheme}", h.scheme),
                })
            }
        })
    }

    /// Its scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The value, as read.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// As Dovecot stores it, the scheme explicit: `{SHA512-CRYPT}$6$…`
    /// (with its encoding suffix, if it had one: `{BLF-CRYPT.b64}…`).
    pub fn stored(&self) -> String {
        format!("{{{}{}}}{}", self.scheme, self.encoding.as_deref().unwrap_or(""), self.value)
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::{PasswordHash, Scheme};

    #[test]
    fn stored_hashes_are_read_with_their_scheme() {
        let rows: Vec<String> = [
            ("{SHA512-CRYPT}$6$salt$abc", None),
            ("$6$salt$abc", None),
            ("$6$salt$abc", Some(Scheme::Plain)),
            ("{CRYPT}$6$salt$abc", None),
            ("{CRYPT}$2y$10$abc", None),
            ("{CRYPT}abJnggxhB/yWI", None),
            ("$2b$12$abc", None),
            ("$argon2id$v=19$m=65536$abc", None),
            ("{ssha}c2FsdA==", None),
            ("{LDAP-MD5}X03MO1qnZdYdgyfeuILPmQ==", None),
            ("{CLEARTEXT}secret", None),
            ("{BLF-CRYPT.b64}JDJ5JA==", None),
            ("deadbeef", Some(Scheme::PlainMd5)),
            ("deadbeef", None),
            ("{NOPE}abc", None),
            ("{SHA512-CRYPT}", None),
            ("{PLAIN}two words", None),
            ("{SHA}a:b", None),
        ]
        .into_iter()
        .map(|(stored, default)| match PasswordHash::parse(stored, default) {
            Ok(h) => format!("{stored} -> {} strong={} {}", h.scheme(), h.scheme().is_strong(), h.stored()),
            Err(e) => format!("{stored} -> {e}"),
        })
        .collect();
        expect![[r#"
            {SHA512-CRYPT}$6$salt$abc -> SHA512-CRYPT strong=true {SHA512-CRYPT}$6$salt$abc
            $6$salt$abc -> SHA512-CRYPT strong=true {SHA512-CRYPT}$6$salt$abc
            $6$salt$abc -> SHA512-CRYPT strong=true {SHA512-CRYPT}$6$salt$abc
            {CRYPT}$6$salt$abc -> SHA512-CRYPT strong=true {SHA512-CRYPT}$6$salt$abc
            {CRYPT}$2y$10$abc -> BLF-CRYPT strong=true {BLF-CRYPT}$2y$10$abc
            {CRYPT}abJnggxhB/yWI -> CRYPT strong=false {CRYPT}abJnggxhB/yWI
            $2b$12$abc -> BLF-CRYPT strong=true {BLF-CRYPT}$2b$12$abc
            $argon2id$v=19$m=65536$abc -> ARGON2ID strong=true {ARGON2ID}$argon2id$v=19$m=65536$abc
            {ssha}c2FsdA== -> SSHA strong=false {SSHA}c2FsdA==
            {LDAP-MD5}X03MO1qnZdYdgyfeuILPmQ== -> PLAIN-MD5 strong=false {PLAIN-MD5}X03MO1qnZdYdgyfeuILPmQ==
            {CLEARTEXT}secret -> PLAIN strong=false {PLAIN}secret
            {BLF-CRYPT.b64}JDJ5JA== -> BLF-CRYPT strong=true {BLF-CRYPT.b64}JDJ5JA==
            deadbeef -> PLAIN-MD5 strong=false {PLAIN-MD5}deadbeef
            deadbeef -> invalid password hash: a value without {SCHEME} and no default scheme
            {NOPE}abc -> invalid password hash: unknown password scheme 'NOPE'
            {SHA512-CRYPT} -> invalid password hash: empty
            {PLAIN}two words -> invalid password hash: white space, ':' or a control character in the value
            {SHA}a:b -> invalid password hash: white space, ':' or a control character in the value"#]]
        .assert_eq(&rows.join("\n"));
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(s.as_str().parse::<Scheme>(), Ok(s));
            assert_eq!(s.as_str().to_lowercase().parse::<Scheme>(), Ok(s));
        }
        assert!(PasswordHash::new(Scheme::Sha256Crypt, "$6$x$y").is_err());
        let h = PasswordHash::new(Scheme::Sha512Crypt, "$6$x$y").expect("a hash");
        assert_eq!(format!("{h:?}"), "PasswordHash({SHA512-CRYPT}…)");
    }
}
