//! Signing of configuration profiles: a CMS SignedData (RFC 5652), DER,
//! the profile as its encapsulated content, SHA-256, signed attributes
//! (content type, message digest), the signing certificate and the chain
//! that follows it in its PEM file. Apple devices show such a profile as
//! verified when the chain leads to a root they trust.
//!
//! Keys: RSA (PKCS#1 v1.5) in PKCS#8 or PKCS#1 PEM, and ECDSA P-256 in
//! PKCS#8 or SEC1 PEM: what certificate authorities issue for signing.
//! The key must be the certificate's: checked when the signer is built,
//! so a mismatch stops `bma serve` rather than produce profiles no device
//! accepts. Pure Rust (RustCrypto's `cms`): no system library.

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::x509::Certificate;
use cms::cert::x509::der::asn1::OctetString;
use cms::cert::x509::der::{Any, DecodePem, Encode, Tag};
use cms::cert::x509::spki::{AlgorithmIdentifierOwned, EncodePublicKey};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use sha2::Sha256;

/// OID of SHA-256 (2.16.840.1.101.3.4.2.1).
const SHA_256: cms::cert::x509::der::oid::ObjectIdentifier =
    cms::cert::x509::der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// OID of CMS `id-data` (1.2.840.113549.1.7.1).
const ID_DATA: cms::cert::x509::der::oid::ObjectIdentifier =
    cms::cert::x509::der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");

/// Why a signer cannot be built or cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The certificate file holds no certificate, or one that does not parse.
    #[error("the signing certificate: {0}")]
    Certificate(String),
    /// The key file holds no key we read (RSA or P-256, PEM).
    #[error("the signing key: {0}")]
    Key(String),
    /// The key is not the certificate's.
    #[error("the signing key is not the key of the signing certificate")]
    Mismatch,
    /// Building the signature failed.
    #[error("signing: {0}")]
    Sign(String),
}

enum Key {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    P256(p256::ecdsa::SigningKey),
}

/// A certificate chain and its key, ready to sign.
pub struct Signer {
    chain: Vec<Certificate>,
    key: Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subject = self.chain.first().map(|c| c.tbs_certificate.subject.to_string()).unwrap_or_default();
        f.debug_struct("Signer").field("subject", &subject).field("key", &"***").finish()
    }
}

/// Two signers are the same when their chains are (the key follows).
impl PartialEq for Signer {
    fn eq(&self, other: &Signer) -> bool {
        self.chain == other.chain
    }
}

impl Eq for Signer {}

impl Signer {
    /// From the PEM text of the certificate (then its chain) and of its key.
    pub fn from_pem(certificates: &str, key: &str) -> Result<Signer, SignError> {
        let chain = read_chain(certificates)?;
        let Some(first) = chain.first() else {
            return Err(SignError::Certificate("no certificate in the file".to_owned()));
        };
        let key = read_key(key)?;
        let public = match &key {
            Key::Rsa(k) => rsa::RsaPublicKey::from((**k).as_ref()).to_public_key_der(),
            Key::P256(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(|e| SignError::Key(e.to_string()))?;
        let certified = first
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| SignError::Certificate(e.to_string()))?;
        if public.as_bytes() != certified.as_slice() {
            return Err(SignError::Mismatch);
        }
        Ok(Signer { chain, key })
    }

    /// The subject of the signing certificate (for the log).
    pub fn subject(&self) -> String {
        self.chain.first().map(|c| c.tbs_certificate.subject.to_string()).unwrap_or_default()
    }

    /// `content` wrapped in a SignedData, DER.
    pub fn sign(&self, content: &[u8]) -> Result<Vec<u8>, SignError> {
        let err = |e: &dyn std::fmt::Display| SignError::Sign(e.to_string());
        let octets = OctetString::new(content.to_vec()).map_err(|e| err(&e))?;
        let econtent = Any::new(Tag::OctetString, octets.as_bytes()).map_err(|e| err(&e))?;
        let encapsulated = EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: Some(econtent) };
        let cert = &self.chain[0];
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        });
        let digest = AlgorithmIdentifierOwned { oid: SHA_256, parameters: None };
        let mut builder = SignedDataBuilder::new(&encapsulated);
        builder.add_digest_algorithm(digest.clone()).map_err(|e| err(&e))?;
        for c in &self.chain {
            builder.add_certificate(CertificateChoices::Certificate(c.clone())).map_err(|e| err(&e))?;
        }
        match &self.key {
            Key::Rsa(k) => {
                let info = SignerInfoBuilder::new(k.as_ref(), sid, digest, &encapsulated, None).map_err(|e| err(&e))?;
                builder.add_signer_info::<_, rsa::pkcs1v15::Signature>(info).map_err(|e| err(&e))?;
            }
            Key::P256(k) => {
                let info = SignerInfoBuilder::new(k, sid, digest, &encapsulated, None).map_err(|e| err(&e))?;
                builder.add_signer_info::<_, p256::ecdsa::DerSignature>(info).map_err(|e| err(&e))?;
            }
        }
        builder.build().map_err(|e| err(&e))?.to_der().map_err(|e| err(&e))
    }
}

/// Every `CERTIFICATE` block of a PEM text, in order (each read on its
/// own: x509-cert's chain reader panics on some inputs).
fn read_chain(pem: &str) -> Result<Vec<Certificate>, SignError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut chain = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            return Err(SignError::Certificate("a certificate without its END line".to_owned()));
        };
        let block = &rest[start..start + len + END.len()];
        chain.push(Certificate::from_pem(block.as_bytes()).map_err(|e| SignError::Certificate(e.to_string()))?);
        rest = &rest[start + len + END.len()..];
    }
    Ok(chain)
}

/// An RSA or P-256 private key from its PEM text.
fn read_key(pem: &str) -> Result<Key, SignError> {
    let pem = pem.trim();
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        let k = rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| SignError::Key(e.to_string()))?;
        return Ok(Key::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k))));
    }
    if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
        use p256::elliptic_curve::SecretKey;
        let k: SecretKey<p256::NistP256> =
            SecretKey::from_sec1_pem(pem).map_err(|e| SignError::Key(format!("{e} (only P-256 is supported)")))?;
        return Ok(Key::P256(p256::ecdsa::SigningKey::from(k)));
    }
    if pem.contains("-----BEGIN PRIVATE KEY-----") {
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(Key::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k))));
        }
        return p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map(Key::P256)
            .map_err(|e| SignError::Key(format!("neither RSA nor P-256: {e}")));
    }
    if pem.contains("ENCRYPTED") {
        return Err(SignError::Key("an encrypted key: give it unencrypted, readable by bma only".to_owned()));
    }
    Err(SignError::Key("no PEM private key (RSA or P-256) in the file".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let a = rcgen::generate_simple_self_signed(vec!["a.example".to_owned()]).unwrap();
        let b = rcgen::KeyPair::generate().unwrap();
        let signer = Signer::from_pem(&a.cert.pem(), &a.signing_key.serialize_pem()).unwrap();
        assert!(signer.subject().contains("rcgen"), "{}", signer.subject());
        let signed = signer.sign(b"<plist/>").unwrap();
        assert_eq!(signed[0], 0x30, "DER");
        assert!(signed.windows(8).any(|w| w == b"<plist/>"), "the content is encapsulated");
        assert!(matches!(Signer::from_pem(&a.cert.pem(), &b.serialize_pem()), Err(SignError::Mismatch)));
        assert!(matches!(Signer::from_pem("", &b.serialize_pem()), Err(SignError::Certificate(_))));
        assert!(matches!(Signer::from_pem(&a.cert.pem(), "nothing"), Err(SignError::Key(_))));
        assert!(!format!("{signer:?}").contains("PRIVATE"), "{signer:?}");
    }
}
