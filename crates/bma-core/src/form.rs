//! The manager's enrolment form: its fields and their rules, as pure
//! functions of values (no I/O), shared by the web crate that shows the
//! form and the store that keeps its versions.
//!
//! Rules (from the FAQ and issues 5 and 10): name and first name required
//! (letters, spaces, hyphens, apostrophes, a dot only right after a letter:
//! "J.-P." but no `example.com`, so no link can be slipped into an email
//! that quotes the name); phone Belgian (`0x xxx xx xx`,
//! `04xx xx xx xx`, `+32 …`, `0032 …`, with `(0)` tolerated) or
//! international (`+` or `00`, 8 to 15 digits), stored as E.164; role one
//! of four; backup email parsed by lettre's address parser (the one that
//! builds the emails we send, so an accepted address always makes a
//! sendable email; lettre comes without its default features, only its
//! parser, so this module stays free of I/O) and then held to a plain
//! `local@domain.tld` (no display name, `<…>`, quotes, IP literal), typed
//! twice, neither the BMA itself nor any address of the BMA domain; whether
//! the manager knows the BMA's password (oui / non). The privacy notice is a
//! page the form links to, not a box to tick. Each error is a French
//! sentence tied to its field; the values typed are kept for the page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the manager gives in the form, once validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentForm {
    /// Family name.
    pub family_name: String,
    /// First name.
    pub given_name: String,
    /// Phone, E.164 (`+3224133090`).
    pub phone: String,
    /// `direction`, `secretariat`, `pouvoir_organisateur`, `autre`.
    pub role: String,
    /// Backup email address (lower-case).
    pub backup_email: String,
    /// Whether the manager knows the BMA's current password.
    pub knows_password: bool,
}

/// Who fills the form in, as the identity provider said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerIdentity {
    /// The provider's subject identifier.
    pub subject: String,
    /// Full name.
    pub name: String,
    /// First name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Email.
    pub email: String,
}

/// The roles a manager can have.
pub const ROLES: [(&str, &str); 4] = [
    ("direction", "Direction"),
    ("secretariat", "Secrétariat"),
    ("pouvoir_organisateur", "Pouvoir organisateur"),
    ("autre", "Autre"),
];

/// The French label of a role value.
pub fn role_label(value: &str) -> &'static str {
    ROLES.iter().find(|(v, _)| *v == value).map_or("", |(_, l)| l)
}

/// The form as typed (every value kept as a string, to show it again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormInput {
    /// `nom`.
    pub family_name: String,
    /// `prenom`.
    pub given_name: String,
    /// `telephone`.
    pub phone: String,
    /// `role`.
    pub role: String,
    /// `email_secours`.
    pub backup_email: String,
    /// `email_secours_confirmation`.
    pub backup_email_confirm: String,
    /// `mot_de_passe_connu`: `oui` or `non`.
    pub knows_password: String,
}

/// Field names, as in the HTML form.
pub mod field {
    /// Family name.
    pub const FAMILY_NAME: &str = "nom";
    /// First name.
    pub const GIVEN_NAME: &str = "prenom";
    /// Phone.
    pub const PHONE: &str = "telephone";
    /// Role.
    pub const ROLE: &str = "role";
    /// Backup email.
    pub const BACKUP_EMAIL: &str = "email_secours";
    /// Backup email, again.
    pub const BACKUP_EMAIL_CONFIRM: &str = "email_secours_confirmation";
    /// Knows the password.
    pub const KNOWS_PASSWORD: &str = "mot_de_passe_connu";
}

impl FormInput {
    /// The form from decoded `application/x-www-form-urlencoded` pairs
    /// (unknown fields ignored; the last value of a field wins).
    pub fn from_pairs(pairs: &[(String, String)]) -> FormInput {
        let mut f = FormInput::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                field::FAMILY_NAME => &mut f.family_name,
                field::GIVEN_NAME => &mut f.given_name,
                field::PHONE => &mut f.phone,
                field::ROLE => &mut f.role,
                field::BACKUP_EMAIL => &mut f.backup_email,
                field::BACKUP_EMAIL_CONFIRM => &mut f.backup_email_confirm,
                field::KNOWS_PASSWORD => &mut f.knows_password,
                _ => continue,
            };
            *slot = v.clone();
        }
        f
    }

    /// The form prefilled from a stored version.
    pub fn from_enrollment(e: &EnrollmentForm) -> FormInput {
        FormInput {
            family_name: e.family_name.clone(),
            given_name: e.given_name.clone(),
            phone: e.phone.clone(),
            role: e.role.clone(),
            backup_email: e.backup_email.clone(),
            backup_email_confirm: e.backup_email.clone(),
            knows_password: if e.knows_password { "oui" } else { "non" }.to_owned(),
        }
    }
}

/// Errors by field name.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// What the form is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context<'a> {
    /// The BMA's address.
    pub bma_address: &'a str,
    /// The BMA domain (`adm.cfwb.be`).
    pub bma_domain: &'a str,
}

const MAX_NAME: usize = 100;
const MAX_EMAIL: usize = 254;

/// Checks the form; the validated values, or every error by field.
pub fn validate(input: &FormInput, ctx: &Context<'_>) -> Result<EnrollmentForm, FieldErrors> {
    let mut errors = FieldErrors::new();
    let family_name =
        person_name(&input.family_name).map_err(|e| errors.insert(field::FAMILY_NAME, format!("Nom : {e}"))).ok();
    let given_name =
        person_name(&input.given_name).map_err(|e| errors.insert(field::GIVEN_NAME, format!("Prénom : {e}"))).ok();
    let phone = phone_e164(&input.phone).map_err(|e| errors.insert(field::PHONE, e)).ok();
    let role = input.role.trim();
    if !ROLES.iter().any(|(v, _)| *v == role) {
        errors.insert(field::ROLE, "Choisissez votre fonction dans la liste.".to_owned());
    }
    let backup = backup_email(&input.backup_email, ctx).map_err(|e| errors.insert(field::BACKUP_EMAIL, e)).ok();
    // The confirmation is checked against a valid address only: one
    // mistake, one message.
    let confirm = input.backup_email_confirm.trim().to_lowercase();
    if let Some(b) = &backup {
        if confirm.is_empty() {
            errors.insert(field::BACKUP_EMAIL_CONFIRM, "Retapez l'adresse de secours pour la confirmer.".to_owned());
        } else if *b != confirm {
            errors
                .insert(field::BACKUP_EMAIL_CONFIRM, "Les deux adresses de secours ne sont pas identiques.".to_owned());
        }
    }
    let knows = match input.knows_password.trim() {
        "oui" => Some(true),
        "non" => Some(false),
        _ => {
            errors.insert(
                field::KNOWS_PASSWORD,
                "Indiquez si vous connaissez le mot de passe actuel de votre BMA (oui ou non).".to_owned(),
            );
            None
        }
    };
    match (family_name, given_name, phone, backup, knows) {
        (Some(family_name), Some(given_name), Some(phone), Some(backup_email), Some(knows_password))
            if errors.is_empty() =>
        {
            Ok(EnrollmentForm { family_name, given_name, phone, role: role.to_owned(), backup_email, knows_password })
        }
        _ => Err(errors),
    }
}

/// A name or first name: trimmed, inner blanks collapsed, letters with
/// spaces, hyphens, apostrophes and dots.
pub fn person_name(raw: &str) -> Result<String, String> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err("ce champ est obligatoire.".to_owned());
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("{MAX_NAME} caractères au plus."));
    }
    if !name.chars().any(char::is_alphabetic)
        || !name.chars().all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '’' | '.'))
    {
        return Err("seuls les lettres, espaces, traits d'union et apostrophes sont acceptés.".to_owned());
    }
    // A dot ends an initial ("J.-P. Durand"): right after a letter, and
    // never followed by a letter, so no `site.be` can be written.
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '.'
            && (i == 0 || !chars[i - 1].is_alphabetic() || chars.get(i + 1).is_some_and(|n| n.is_alphanumeric()))
        {
            return Err("un point n'est accepté qu'après une initiale (par exemple « J.-P. »).".to_owned());
        }
    }
    Ok(name)
}

/// A phone number in E.164 (`+3224133090`), from what people write:
/// `02 413 30 90`, `+32 (0)2 413.3090`, `0032 470 12 34 56`,
/// `+33 1 23 45 67 89`.
pub fn phone_e164(raw: &str) -> Result<String, String> {
    const HINT: &str = "Numéro de téléphone invalide : indiquez un numéro belge (par exemple 02 413 30 90 ou \
                        0470 12 34 56) ou international commençant par + (par exemple +33 1 23 45 67 89).";
    let s = raw.trim();
    if s.is_empty() {
        return Err("Le numéro de téléphone est obligatoire.".to_owned());
    }
    let s = s.replace("(0)", "");
    if !s.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '.' | '/' | '-' | '(' | ')')) {
        return Err(HINT.to_owned());
    }
    let plus = s.starts_with('+');
    if s.chars().skip(1).any(|c| c == '+') {
        return Err(HINT.to_owned());
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let international = if plus {
        Some(digits)
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(rest.to_owned())
    } else if let Some(national) = digits.strip_prefix('0') {
        return belgian(national).ok_or_else(|| HINT.to_owned());
    } else {
        None
    };
    let Some(intl) = international else {
        return Err(HINT.to_owned());
    };
    if let Some(national) = intl.strip_prefix("32") {
        return belgian(national).ok_or_else(|| HINT.to_owned());
    }
    if (8..=15).contains(&intl.len()) && !intl.starts_with('0') { Ok(format!("+{intl}")) } else { Err(HINT.to_owned()) }
}

/// A Belgian national significant number (without the trunk 0): 8 digits
/// (fixed lines, 0800/090x; 45x to 49x being mobile prefixes, not zone 4),
/// or 9 digits for mobiles (45x to 49x).
fn belgian(nsn: &str) -> Option<String> {
    let mobile_prefix = nsn.starts_with('4') && nsn.len() > 1 && matches!(nsn.as_bytes()[1], b'5'..=b'9');
    let ok = match nsn.len() {
        8 => !nsn.starts_with('0') && !mobile_prefix,
        9 => mobile_prefix,
        _ => false,
    };
    ok.then(|| format!("+32{nsn}"))
}

/// The backup address: valid, lower-cased, not the BMA nor its domain.
pub fn backup_email(raw: &str, ctx: &Context<'_>) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("L'adresse email de secours est obligatoire.".to_owned());
    }
    if email.len() > MAX_EMAIL {
        return Err(format!("L'adresse email de secours est trop longue ({MAX_EMAIL} caractères au plus)."));
    }
    if email.contains(['<', '>', '"', ',', ';']) || email.contains(char::is_whitespace) {
        return Err("Indiquez seulement l'adresse email de secours, sans nom, guillemets ni chevrons (exemple : \
                    prenom.nom@exemple.be)."
            .to_owned());
    }
    if !plain_address(&email) {
        return Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).".to_owned());
    }
    if email == ctx.bma_address.to_lowercase() {
        return Err("L'adresse de secours doit être différente de la BMA elle-même.".to_owned());
    }
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    let bma_domain = ctx.bma_domain.to_lowercase();
    if domain == bma_domain || domain.ends_with(&format!(".{bma_domain}")) {
        return Err(format!(
            "L'adresse de secours ne peut pas être une adresse @{bma_domain} : indiquez une adresse extérieure."
        ));
    }
    Ok(email)
}

/// An address lettre accepts that is also a plain `local@domain.tld`:
/// a dot-atom local part (no quotes), a domain name (no IP literal) of
/// two labels at least, none empty, a top-level label of letters.
fn plain_address(email: &str) -> bool {
    if email.parse::<lettre::Address>().is_err() {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = !local.is_empty() && local.split('.').all(|a| !a.is_empty() && a.chars().all(atom));
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let tld_ok = labels.last().is_some_and(|t| t.chars().count() >= 2 && t.chars().all(char::is_alphabetic))
        || labels.last().is_some_and(|t| t.starts_with("xn--"));
    local_ok && labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

/// An address shown to someone who did not give it: the first character
/// of the local part and of the domain, the top-level domain
/// (`m•••@e•••.be`).
pub fn mask_email(email: &str) -> String {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return "•••".to_owned();
    };
    let first = |s: &str| s.chars().next().map_or_else(String::new, |c| c.to_string());
    let tld = domain.rsplit_once('.').map_or("", |(_, t)| t);
    format!("{}•••@{}•••.{tld}", first(local), first(domain))
}

/// Where a box forwards its mail, as the manager's pages and emails show
/// it (`m***@gmail.com`): the first character of the local part and the
/// whole domain, so that the reader recognises the box without the address
/// being spelled out. A `mailto:` URI is read for its address; anything
/// else (a variable, a program) is `None`.
pub fn mask_forward_target(target: &str) -> Option<String> {
    let bare = target.trim().trim_start_matches("mailto:");
    let bare = bare.split(['?', ',']).next().unwrap_or(bare).trim();
    let (local, domain) = bare.rsplit_once('@')?;
    let domain = domain.trim_end_matches('>').trim_end_matches('.').to_lowercase();
    let first = local.trim_start_matches('<').chars().next()?;
    let valid = |c: char| c.is_alphanumeric() || "-.".contains(c);
    (domain.contains('.') && domain.chars().all(valid) && !first.is_control() && first != '$')
        .then(|| format!("{first}***@{domain}"))
}

/// A phone number shown to someone who did not give it: its last two
/// digits (`•••• 56`).
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("•••• {tail}")
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// Each input and what the rule made of it, one line each.
    fn table<T: std::fmt::Debug>(inputs: &[&str], rule: impl Fn(&str) -> T, expected: &Expect) {
        let lines: Vec<String> = inputs.iter().map(|raw| format!("{raw:?} → {:?}", rule(raw))).collect();
        expected.assert_eq(&(lines.join("\n") + "\n"));
    }

    #[test]
    fn phones() {
        let inputs = [
            "02 413 30 90",
            "+32 (0)2 413.3090",
            "+32 2 413 30 90",
            "0032 2 413 30 90",
            "04 222 22 22",
            "0470 12 34 56",
            "0470/12.34.56",
            "+32 470 12 34 56",
            "0800 12 345",
            "+33 1 23 45 67 89",
            "0033 1 23 45 67 89",
            "+1 (202) 555-0143",
            "",
            "02 413 30 9",
            "0470 12 34 5",
            "0410 12 34 56",
            "2 413 30 90",
            "+32 02 413 30 90 1",
            "+0 123 456 789",
            "+123",
            "+1234567890123456",
            "02 413 30 90 ext 5",
            "+32+2 413 30 90",
        ];
        // Errors are one of two sentences: the table shows which.
        let rule =
            |raw: &str| phone_e164(raw).map_err(|e| if e.contains("obligatoire") { "obligatoire" } else { "invalide" });
        table(
            &inputs,
            rule,
            &expect![[r#"
            "02 413 30 90" → Ok("+3224133090")
            "+32 (0)2 413.3090" → Ok("+3224133090")
            "+32 2 413 30 90" → Ok("+3224133090")
            "0032 2 413 30 90" → Ok("+3224133090")
            "04 222 22 22" → Ok("+3242222222")
            "0470 12 34 56" → Ok("+32470123456")
            "0470/12.34.56" → Ok("+32470123456")
            "+32 470 12 34 56" → Ok("+32470123456")
            "0800 12 345" → Ok("+3280012345")
            "+33 1 23 45 67 89" → Ok("+33123456789")
            "0033 1 23 45 67 89" → Ok("+33123456789")
            "+1 (202) 555-0143" → Ok("+12025550143")
            "" → Err("obligatoire")
            "02 413 30 9" → Err("invalide")
            "0470 12 34 5" → Err("invalide")
            "0410 12 34 56" → Err("invalide")
            "2 413 30 90" → Err("invalide")
            "+32 02 413 30 90 1" → Err("invalide")
            "+0 123 456 789" → Err("invalide")
            "+123" → Err("invalide")
            "+1234567890123456" → Err("invalide")
            "02 413 30 90 ext 5" → Err("invalide")
            "+32+2 413 30 90" → Err("invalide")
        "#]],
        );
    }

    #[test]
    fn names() {
        let inputs = [
            "  Marie-Claire   d'Ursel ",
            "Éloïse",
            "J.-P. Durand",
            "Marie D.",
            "St. Pierre",
            "A. B. C.",
            "",
            "   ",
            "123",
            "Marie<script>",
            &"a".repeat(101),
            "--",
            // A dot only ends an initial: no domain name can be written.
            "evil.com",
            "www.example.be",
            "Marie .Dupont",
            ".Marie",
            "J..P",
            "a.b",
            "x.co",
        ];
        table(
            &inputs,
            person_name,
            &expect![[r#"
            "  Marie-Claire   d'Ursel " → Ok("Marie-Claire d'Ursel")
            "Éloïse" → Ok("Éloïse")
            "J.-P. Durand" → Ok("J.-P. Durand")
            "Marie D." → Ok("Marie D.")
            "St. Pierre" → Ok("St. Pierre")
            "A. B. C." → Ok("A. B. C.")
            "" → Err("ce champ est obligatoire.")
            "   " → Err("ce champ est obligatoire.")
            "123" → Err("seuls les lettres, espaces, traits d'union et apostrophes sont acceptés.")
            "Marie<script>" → Err("seuls les lettres, espaces, traits d'union et apostrophes sont acceptés.")
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" → Err("100 caractères au plus.")
            "--" → Err("seuls les lettres, espaces, traits d'union et apostrophes sont acceptés.")
            "evil.com" → Err("un point n'est accepté qu'après une initiale (par exemple « J.-P. »).")
            "www.example.be" → Err("un point n'est accepté qu'après une initiale (par exemple « J.-P. »).")
            "Marie .Dupont" → Err("un point n'est accepté qu'après une initiale (par exemple « J.-P. »).")
            ".Marie" → Err("un point n'est accepté qu'après une initiale (par exemple « J.-P. »).")
            "J..P" → Err("un point n'est accepté qu'après une initiale (par exemple « J.-P. »).")
            "a.b" → Err("un point n'est accepté qu'après une initiale (par exemple « J.-P. »).")
            "x.co" → Err("un point n'est accepté qu'après une initiale (par exemple « J.-P. »).")
        "#]],
        );
    }

    #[test]
    fn backup_addresses() {
        let ctx = Context { bma_address: "ec012345@adm.cfwb.be", bma_domain: "adm.cfwb.be" };
        let long = format!("{}@exemple.be", "a".repeat(250));
        let inputs = [
            "Marie.Dupont@Exemple.be",
            "  m+bma@ecole.test ",
            "o'brien@mail.example.ie",
            "marie@école.be",
            "Marie Dupont <marie@exemple.be>",
            "<marie@exemple.be>",
            "\"marie dupont\"@exemple.be",
            "\"marie\"@exemple.be",
            "marie@exemple.be, luc@exemple.be",
            "a@b..c",
            "a@b.c",
            "a@[127.0.0.1]",
            "a@127.0.0.1",
            "a..b@exemple.be",
            ".a@exemple.be",
            "a@-exemple.be",
            "a@exemple",
            "",
            "ec012345@adm.cfwb.be",
            "x@sub.adm.cfwb.be",
            &long,
        ];
        table(
            &inputs,
            |raw| backup_email(raw, &ctx),
            &expect![[r#"
            "Marie.Dupont@Exemple.be" → Ok("marie.dupont@exemple.be")
            "  m+bma@ecole.test " → Ok("m+bma@ecole.test")
            "o'brien@mail.example.ie" → Ok("o'brien@mail.example.ie")
            "marie@école.be" → Ok("marie@école.be")
            "Marie Dupont <marie@exemple.be>" → Err("Indiquez seulement l'adresse email de secours, sans nom, guillemets ni chevrons (exemple : prenom.nom@exemple.be).")
            "<marie@exemple.be>" → Err("Indiquez seulement l'adresse email de secours, sans nom, guillemets ni chevrons (exemple : prenom.nom@exemple.be).")
            "\"marie dupont\"@exemple.be" → Err("Indiquez seulement l'adresse email de secours, sans nom, guillemets ni chevrons (exemple : prenom.nom@exemple.be).")
            "\"marie\"@exemple.be" → Err("Indiquez seulement l'adresse email de secours, sans nom, guillemets ni chevrons (exemple : prenom.nom@exemple.be).")
            "marie@exemple.be, luc@exemple.be" → Err("Indiquez seulement l'adresse email de secours, sans nom, guillemets ni chevrons (exemple : prenom.nom@exemple.be).")
            "a@b..c" → Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).")
            "a@b.c" → Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).")
            "a@[127.0.0.1]" → Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).")
            "a@127.0.0.1" → Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).")
            "a..b@exemple.be" → Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).")
            ".a@exemple.be" → Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).")
            "a@-exemple.be" → Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).")
            "a@exemple" → Err("Adresse email de secours invalide (exemple : prenom.nom@exemple.be).")
            "" → Err("L'adresse email de secours est obligatoire.")
            "ec012345@adm.cfwb.be" → Err("L'adresse de secours doit être différente de la BMA elle-même.")
            "x@sub.adm.cfwb.be" → Err("L'adresse de secours ne peut pas être une adresse @adm.cfwb.be : indiquez une adresse extérieure.")
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@exemple.be" → Err("L'adresse email de secours est trop longue (254 caractères au plus).")
        "#]],
        );
    }

    #[test]
    fn whole_forms() {
        let ctx = Context { bma_address: "ec012345@adm.cfwb.be", bma_domain: "adm.cfwb.be" };
        let good = FormInput {
            family_name: "Dupont".to_owned(),
            given_name: "Marie".to_owned(),
            phone: "0470 12 34 56".to_owned(),
            role: "direction".to_owned(),
            backup_email: "Marie@Exemple.be".to_owned(),
            backup_email_confirm: "marie@exemple.be ".to_owned(),
            knows_password: "non".to_owned(),
        };
        let cases = [
            ("valid", good.clone()),
            ("empty", FormInput::default()),
            ("confirmation differs", FormInput { backup_email_confirm: "luc@exemple.be".to_owned(), ..good.clone() }),
            ("confirmation missing", FormInput { backup_email_confirm: String::new(), ..good.clone() }),
            ("bad backup: no confirmation error", FormInput { backup_email: "a@b".to_owned(), ..good.clone() }),
            ("unknown role", FormInput { role: "chef".to_owned(), ..good }),
        ];
        let lines: Vec<String> =
            cases.iter().map(|(what, input)| format!("{what}: {:?}", validate(input, &ctx))).collect();
        expect![[r#"
            valid: Ok(EnrollmentForm { family_name: "Dupont", given_name: "Marie", phone: "+32470123456", role: "direction", backup_email: "marie@exemple.be", knows_password: false })
            empty: Err({"email_secours": "L'adresse email de secours est obligatoire.", "mot_de_passe_connu": "Indiquez si vous connaissez le mot de passe actuel de votre BMA (oui ou non).", "nom": "Nom : ce champ est obligatoire.", "prenom": "Prénom : ce champ est obligatoire.", "role": "Choisissez votre fonction dans la liste.", "telephone": "Le numéro de téléphone est obligatoire."})
            confirmation differs: Err({"email_secours_confirmation": "Les deux adresses de secours ne sont pas identiques."})
            confirmation missing: Err({"email_secours_confirmation": "Retapez l'adresse de secours pour la confirmer."})
            bad backup: no confirmation error: Err({"email_secours": "Adresse email de secours invalide (exemple : prenom.nom@exemple.be)."})
            unknown role: Err({"role": "Choisissez votre fonction dans la liste."})
        "#]].assert_eq(&(lines.join("\n") + "\n"));
    }

    #[test]
    fn pairs_and_versions() {
        let pairs: Vec<(String, String)> =
            [("nom", "Dupont"), ("inconnu", "x"), ("role", "autre"), ("role", "direction")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        let input = FormInput::from_pairs(&pairs);
        assert_eq!((input.family_name.as_str(), input.role.as_str()), ("Dupont", "direction"));
        let stored = EnrollmentForm {
            family_name: "Dupont".to_owned(),
            given_name: "Marie".to_owned(),
            phone: "+32470123456".to_owned(),
            role: "direction".to_owned(),
            backup_email: "marie@exemple.be".to_owned(),
            knows_password: true,
        };
        let again = FormInput::from_enrollment(&stored);
        assert_eq!(again.backup_email_confirm, "marie@exemple.be");
        assert_eq!(again.knows_password, "oui");
        assert_eq!(role_label("pouvoir_organisateur"), "Pouvoir organisateur");
        assert_eq!(role_label("chef"), "");
    }

    #[test]
    fn masks() {
        let lines: Vec<String> = ["marie.dupont@exemple.be", "pas-une-adresse", "+32470123456", "7"]
            .iter()
            .map(|v| format!("{v:?} → {} / {}", mask_email(v), mask_phone(v)))
            .collect();
        expect![[r#"
            "marie.dupont@exemple.be" → m•••@e•••.be / •••• 
            "pas-une-adresse" → ••• / •••• 
            "+32470123456" → ••• / •••• 56
            "7" → ••• / •••• 7
        "#]]
        .assert_eq(&(lines.join("\n") + "\n"));
    }

    #[test]
    fn forward_targets() {
        table(
            &[
                "marie.dupont@gmail.com",
                "Direction.Ecole@Skynet.BE",
                "mailto:z@skynet.be?subject=x",
                "<a@hotmail.com>",
                "${target}@gmail.com",
                "${adresse}",
                "@gmail.com",
                "x@localhost",
                "x@evil.com\n",
                "x@evil com",
                "",
            ],
            mask_forward_target,
            &expect![[r#"
                "marie.dupont@gmail.com" → Some("m***@gmail.com")
                "Direction.Ecole@Skynet.BE" → Some("D***@skynet.be")
                "mailto:z@skynet.be?subject=x" → Some("z***@skynet.be")
                "<a@hotmail.com>" → Some("a***@hotmail.com")
                "${target}@gmail.com" → None
                "${adresse}" → None
                "@gmail.com" → None
                "x@localhost" → None
                "x@evil.com\n" → Some("x***@evil.com")
                "x@evil com" → None
                "" → None
            "#]],
        );
    }
}
