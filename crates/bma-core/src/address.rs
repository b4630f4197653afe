//! Mailbox addresses and FASE numbers.
//!
//! A BMA address is `<prefix><FASE>@<domain>`: `ec` for an establishment
//! (école), `po` for an organising authority (pouvoir organisateur), the
//! FASE number written with a fixed number of digits. The rule (domain,
//! digits, prefixes) comes from the campaign settings; [`Address::parse`]
//! is the only way to build an [`Address`], so an `Address` in hand is
//! always lower case and valid for the rule it was checked against.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of entity a mailbox belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxKind {
    /// An establishment (école); prefix `ec` by default.
    Ecole,
    /// An organising authority (pouvoir organisateur); prefix `po` by default.
    PouvoirOrganisateur,
}

impl MailboxKind {
    /// All kinds, in a stable order.
    pub const ALL: [MailboxKind; 2] = [MailboxKind::Ecole, MailboxKind::PouvoirOrganisateur];

    /// The short code used in registries and in the store (`ec` / `po`).
    pub fn code(self) -> &'static str {
        match self {
            MailboxKind::Ecole => "ec",
            MailboxKind::PouvoirOrganisateur => "po",
        }
    }

    /// Parses the short code (`ec` / `po`, any case, surrounding blanks ignored).
    pub fn from_code(code: &str) -> Option<MailboxKind> {
        match code.trim().to_ascii_lowercase().as_str() {
            "ec" => Some(MailboxKind::Ecole),
            "po" => Some(MailboxKind::PouvoirOrganisateur),
            _ => None,
        }
    }

    /// French label, for pages and emails.
    pub fn label_fr(self) -> &'static str {
        match self {
            MailboxKind::Ecole => "établissement",
            MailboxKind::PouvoirOrganisateur => "pouvoir organisateur",
        }
    }
}

/// A FASE registry number (establishment or organising authority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fase(u32);

impl Fase {
    /// Parses a FASE number: ASCII digits only, at most `digits` of them,
    /// leading zeros allowed (Excel often drops them, so fewer digits are
    /// accepted and padded), not zero.
    pub fn parse(s: &str, digits: usize) -> Result<Fase, AddressError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(AddressError::FaseEmpty);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > digits {
            return Err(AddressError::FaseFormat { value: s.to_owned(), digits });
        }
        let n: u32 = s.parse().map_err(|_| AddressError::FaseFormat { value: s.to_owned(), digits })?;
        if n == 0 {
            return Err(AddressError::FaseFormat { value: s.to_owned(), digits });
        }
        Ok(Fase(n))
    }

    /// The number itself.
    pub fn number(self) -> u32 {
        self.0
    }

    /// Written with `digits` digits, zero padded.
    pub fn padded(self, digits: usize) -> String {
        format!("{:0digits$}", self.0)
    }
}

/// The address rule of a campaign: `<prefix><FASE on N digits>@<domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRule {
    /// Domain of every BMA, lower case (`adm.cfwb.be`).
    pub domain: String,
    /// Number of digits of a FASE number in an address (6).
    pub fase_digits: usize,
}

impl Default for AddressRule {
    fn default() -> Self {
        AddressRule { domain: "adm.cfwb.be".to_owned(), fase_digits: 6 }
    }
}

impl AddressRule {
    /// Builds the address of a kind and FASE number under this rule.
    pub fn address_for(&self, kind: MailboxKind, fase: Fase) -> Address {
        Address { full: format!("{}{}@{}", kind.code(), fase.padded(self.fase_digits), self.domain), kind, fase }
    }

    /// Whether an email address (any case) belongs to the campaign's domain.
    pub fn is_in_domain(&self, email: &str) -> bool {
        email.rsplit_once('@').is_some_and(|(_, d)| d.trim().eq_ignore_ascii_case(&self.domain))
    }
}

/// A valid, lower-case BMA address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String")]
pub struct Address {
    full: String,
    kind: MailboxKind,
    fase: Fase,
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.full
    }
}

impl Address {
    /// Parses and normalises (trims, lower-cases) an address, checking it
    /// against the rule.
    pub fn parse(s: &str, rule: &AddressRule) -> Result<Address, AddressError> {
        let lower = s.trim().to_lowercase();
        if lower.is_empty() {
            return Err(AddressError::Empty);
        }
        let Some((local, domain)) = lower.split_once('@') else {
            return Err(AddressError::NoAt(lower));
        };
        if domain != rule.domain {
            return Err(AddressError::Domain { address: lower.clone(), expected: rule.domain.clone() });
        }
        let kind =
            local.get(..2).and_then(MailboxKind::from_code).ok_or_else(|| AddressError::Prefix(lower.clone()))?;
        let digits = &local[2..];
        if digits.len() != rule.fase_digits || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddressError::LocalPart { address: lower.clone(), digits: rule.fase_digits });
        }
        let fase = Fase::parse(digits, rule.fase_digits)?;
        Ok(Address { full: lower, kind, fase })
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// Establishment or organising authority.
    pub fn kind(&self) -> MailboxKind {
        self.kind
    }

    /// The FASE number in the address.
    pub fn fase(&self) -> Fase {
        self.fase
    }
}

impl AddressError {
    /// The same, in French (the console's pages).
    pub fn fr(&self) -> String {
        match self {
            AddressError::Empty => "l'adresse est vide".to_owned(),
            AddressError::NoAt(a) => format!("'{a}' n'est pas une adresse email (pas de @)"),
            AddressError::Domain { address, expected } => {
                format!("'{address}' n'est pas dans le domaine {expected}")
            }
            AddressError::Prefix(a) => format!("'{a}' ne commence pas par ec ou po"),
            AddressError::LocalPart { address, digits } => {
                format!("'{address}' n'est pas ec ou po suivi de {digits} chiffres")
            }
            AddressError::FaseEmpty => "le numéro FASE est vide".to_owned(),
            AddressError::FaseFormat { value, digits } => {
                format!("le numéro FASE '{value}' n'est pas un nombre d'au plus {digits} chiffres (autre que 0)")
            }
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// Why an address or a FASE number is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing given.
    #[error("the address is empty")]
    Empty,
    /// No `@`.
    #[error("'{0}' is not an email address (no @)")]
    NoAt(String),
    /// Another domain than the campaign's.
    #[error("'{address}' is not in the domain {expected}")]
    Domain {
        /// The address given.
        address: String,
        /// The campaign's domain.
        expected: String,
    },
    /// The local part does not start with a known prefix.
    #[error("'{0}' does not start with ec or po")]
    Prefix(String),
    /// The local part is not prefix + N digits.
    #[error("'{address}' is not ec or po followed by {digits} digits")]
    LocalPart {
        /// The address given.
        address: String,
        /// Digits expected.
        digits: usize,
    },
    /// An empty FASE number.
    #[error("the FASE number is empty")]
    FaseEmpty,
    /// A FASE number that is not 1 to N digits, or zero.
    #[error("FASE '{value}' is not a number of at most {digits} digits (other than 0)")]
    FaseFormat {
        /// The value given.
        value: String,
        /// Digits expected.
        digits: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_addresses() {
        let rule = AddressRule::default();
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("ec012345@adm.cfwb.be", Ok("ec012345@adm.cfwb.be")),
            ("  EC012345@ADM.CFWB.BE ", Ok("ec012345@adm.cfwb.be")),
            ("po999999@adm.cfwb.be", Ok("po999999@adm.cfwb.be")),
            ("", Err("the address is empty")),
            ("ec012345", Err("'ec012345' is not an email address (no @)")),
            ("ec012345@cfwb.be", Err("'ec012345@cfwb.be' is not in the domain adm.cfwb.be")),
            ("xx012345@adm.cfwb.be", Err("'xx012345@adm.cfwb.be' does not start with ec or po")),
            ("ec12345@adm.cfwb.be", Err("'ec12345@adm.cfwb.be' is not ec or po followed by 6 digits")),
            ("ec1234567@adm.cfwb.be", Err("'ec1234567@adm.cfwb.be' is not ec or po followed by 6 digits")),
            ("ec12a456@adm.cfwb.be", Err("'ec12a456@adm.cfwb.be' is not ec or po followed by 6 digits")),
            ("ec000000@adm.cfwb.be", Err("FASE '000000' is not a number of at most 6 digits (other than 0)")),
        ];
        for (input, expected) in cases {
            let got = Address::parse(input, &rule).map(|a| a.to_string()).map_err(|e| e.to_string());
            assert_eq!(got, expected.map(str::to_owned).map_err(str::to_owned), "input {input:?}");
        }
    }

    #[test]
    fn kind_and_fase_follow_the_address() {
        let rule = AddressRule::default();
        let a = Address::parse("po000042@adm.cfwb.be", &rule).unwrap();
        assert_eq!(a.kind(), MailboxKind::PouvoirOrganisateur);
        assert_eq!(a.fase().number(), 42);
        assert_eq!(rule.address_for(a.kind(), a.fase()), a);
    }

    #[test]
    fn fase_accepts_dropped_leading_zeros() {
        assert_eq!(Fase::parse("42", 6).unwrap().padded(6), "000042");
        assert!(Fase::parse("1234567", 6).is_err());
        assert!(Fase::parse("-1", 6).is_err());
        assert!(Fase::parse("", 6).is_err());
    }

    #[test]
    fn domain_membership_ignores_case() {
        let rule = AddressRule::default();
        assert!(rule.is_in_domain("someone@ADM.cfwb.be"));
        assert!(!rule.is_in_domain("someone@cfwb.be"));
    }
}
