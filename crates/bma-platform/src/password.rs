//! New passwords: for a manager who does not know the BMA's password, and
//! for a reset by the helpdesk.
//!
//! A new password is four words of a French list of 1,024 ([`crate::words`])
//! and two digits, joined by hyphens (`pomme-nuage-tigre-violon-42`): at
//! least 21 characters, easy to read aloud and to type on any keyboard,
//! 46 bits drawn by the operating system's CSPRNG (`rand::rng()`, a ChaCha
//! generator seeded by the OS and reseeded). Its hash is SHA512-CRYPT with
//! a random 16-character salt and the default 5,000 rounds, the scheme
//! Dovecot's passwd-file and LDAP's `{CRYPT}` both read.
//!
//! A password given by a link is kept until the link is opened *sealed*
//! ([`seal`]): ChaCha20-Poly1305 under a key that is the SHA-256 of the
//! link's token (which only the email holds; the store keeps its hash), so
//! a copy of the store opens no password, and a sealed password altered
//! in the store does not open at all.
//!
//! Rules: the clear password is a [`Secret`] (its `Debug` prints `***`);
//! this module neither logs nor keeps it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bma_imap::Secret;
use chacha20poly1305::aead::{Aead as _, KeyInit as _};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::Rng;
use sha_crypt::{PasswordHasher as _, ShaCrypt};
use sha2::{Digest as _, Sha256};

use crate::words::WORDS;
use crate::{PasswordHash, PlatformError, Scheme};

/// Words in a new password.
pub const WORDS_PER_PASSWORD: usize = 4;

/// A new password, drawn afresh.
pub fn generate() -> Secret {
    let mut rng = rand::rng();
    let mut parts: Vec<String> =
        (0..WORDS_PER_PASSWORD).map(|_| WORDS[rng.random_range(0..WORDS.len())].to_owned()).collect();
    parts.push(format!("{:02}", rng.random_range(0..100u8)));
    Secret::new(parts.join("-"))
}

/// The SHA512-CRYPT hash of `password`, with a random salt.
pub fn hash(password: &Secret) -> Result<PasswordHash, PlatformError> {
    let mut salt = [0u8; 12];
    rand::rng().fill(&mut salt);
    let hashed = ShaCrypt::SHA512
        .hash_password_with_salt(password.expose().as_bytes(), &salt)
        .map_err(|e| PlatformError::Invalid { what: "password", message: format!("SHA512-CRYPT failed: {e}") })?;
    PasswordHash::new(Scheme::Sha512Crypt, hashed.as_ref())
}

/// Whether `password` is the one `hash` was made from (SHA-crypt schemes only).
pub fn matches(password: &Secret, hash: &PasswordHash) -> bool {
    use sha_crypt::PasswordVerifier as _;
    matches!(hash.scheme(), Scheme::Sha512Crypt | Scheme::Sha256Crypt)
        && ShaCrypt::SHA512.verify_password(password.expose().as_bytes(), hash.value()).is_ok()
}

/// The key a link's token gives.
fn key_of(token: &str) -> Key {
    let mut h = Sha256::new();
    h.update(b"bma new password link v1\0");
    h.update(token.as_bytes());
    Key::from(<[u8; 32]>::from(h.finalize()))
}

/// `password` sealed with the key of `token`: base64 of a random nonce and
/// the ciphertext.
pub fn seal(password: &Secret, token: &str) -> Result<String, PlatformError> {
    let mut nonce = [0u8; 12];
    rand::rng().fill(&mut nonce);
    let cipher = ChaCha20Poly1305::new(&key_of(token));
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), password.expose().as_bytes())
        .map_err(|_| PlatformError::Invalid { what: "password", message: "cannot be sealed".to_owned() })?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(B64.encode(out))
}

/// The password `sealed` holds, if `token` is the one it was sealed with.
pub fn unseal(sealed: &str, token: &str) -> Option<Secret> {
    let bytes = B64.decode(sealed).ok()?;
    let (nonce, ciphertext) = (bytes.get(..12)?, bytes.get(12..)?);
    let cipher = ChaCha20Poly1305::new(&key_of(token));
    let plain = cipher.decrypt(&Nonce::from(<[u8; 12]>::try_from(nonce).ok()?), ciphertext).ok()?;
    String::from_utf8(plain).ok().map(Secret::new)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{generate, hash, matches, seal, unseal};

    #[test]
    fn a_sealed_password_opens_with_its_token_only() {
        let p = generate();
        let sealed = seal(&p, "token-a").expect("sealed");
        assert!(!sealed.contains(p.expose()));
        assert_eq!(unseal(&sealed, "token-a"), Some(p.clone()));
        assert_eq!(unseal(&sealed, "token-b"), None);
        assert_ne!(seal(&p, "token-a").expect("sealed"), sealed, "a fresh nonce each time");
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(unseal(&String::from_utf8(altered).expect("base64"), "token-a"), None);
        assert_eq!(unseal("not base64!", "token-a"), None);
    }
    use crate::Scheme;

    #[test]
    fn new_passwords_are_long_words_and_digits_and_differ() {
        let drawn: Vec<String> = (0..200).map(|_| generate().expose().to_owned()).collect();
        for p in &drawn {
            assert!(p.len() >= 15, "{p}");
            let parts: Vec<&str> = p.split('-').collect();
            assert_eq!(parts.len(), 5, "{p}");
            assert!(parts[..4].iter().all(|w| crate::words::WORDS.contains(w)), "{p}");
            assert!(parts[4].len() == 2 && parts[4].bytes().all(|b| b.is_ascii_digit()), "{p}");
        }
        assert_eq!(drawn.iter().collect::<HashSet<_>>().len(), drawn.len());
        assert_eq!(format!("{:?}", generate()), "Secret(***)");
    }

    #[test]
    fn hashes_verify_and_are_salted() {
        let p = generate();
        let (a, b) = (hash(&p).expect("a hash"), hash(&p).expect("a hash"));
        assert_eq!(a.scheme(), Scheme::Sha512Crypt);
        assert!(a.value().starts_with("$6$"), "{}", a.value());
        assert_ne!(a, b);
        assert!(matches(&p, &a) && matches(&p, &b));
        assert!(!matches(&generate(), &a));
    }
}
