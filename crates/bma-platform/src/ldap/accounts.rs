//! [`LdapAccounts`]: one platform's accounts, entries `bmaMailbox` under a
//! base of the directory (the layout is in the module doc of `ldap`).

use std::collections::HashSet;

use ldap3::{LdapConn, Mod};

use super::{Directory, delete, dn, entry, first, op_failed};
use crate::files::check_address;
use crate::{Account, Accounts, Login, NewAccount, PasswordHash, PlatformError, Scheme};

const PASSWORD: &str = "userPassword";
const QUOTA: &str = "bmaQuotaBytes";
const REFUSAL: &str = "bmaLoginRefusal";
/// What a refusal without a reason of its own says (an attribute cannot be empty).
const REFUSED: &str = "Connexion refusée.";

/// A platform's accounts in the directory.
#[derive(Debug, Clone)]
pub struct LdapAccounts {
    directory: Directory,
    base: String,
    default_scheme: Option<Scheme>,
}

impl LdapAccounts {
    /// The accounts under `base` (`ou=new,dc=example,dc=be`), whose hashes
    /// without `{SCHEME}` are in `default_scheme` (the passdb's
    /// `default_pass_scheme`).
    pub fn new(directory: Directory, base: &str, default_scheme: Option<Scheme>) -> LdapAccounts {
        LdapAccounts { directory, base: base.trim().to_owned(), default_scheme }
    }

    /// The DN of `address`'s entry, a valid address.
    fn dn_of(&self, address: &str) -> Result<String, PlatformError> {
        check_address(address)?;
        Ok(dn(address, &self.base))
    }

    /// Creates or sets every account of `accounts` on one connection, each
    /// as [`Accounts::upsert`] does one (each entry its own operation).
    pub fn upsert_all(&self, accounts: &[NewAccount]) -> Result<(), PlatformError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let entries =
            accounts.iter().map(|a| Ok((self.dn_of(&a.address)?, a))).collect::<Result<Vec<_>, PlatformError>>()?;
        self.directory.with(|conn| entries.iter().try_for_each(|(dn, account)| upsert(conn, dn, account)))
    }

    /// Allows or refuses the logins of `addresses` on one connection, each
    /// as [`Accounts::set_login`] does one; the addresses that have no
    /// account (which `set_login` refuses) are returned, nothing written
    /// for them.
    pub fn set_login_all(&self, addresses: &[&str], login: &Login) -> Result<Vec<String>, PlatformError> {
        let reason = refusal(login)?;
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let dns = addresses.iter().map(|a| self.dn_of(a)).collect::<Result<Vec<_>, _>>()?;
        let found = self
            .directory
            .with(|conn| dns.iter().map(|dn| set(conn, dn, REFUSAL, reason.clone())).collect::<Result<Vec<_>, _>>())?;
        Ok(addresses.iter().zip(found).filter(|(_, found)| !found).map(|(a, _)| (*a).to_owned()).collect())
    }

    /// Removes the accounts of `addresses` on one connection, one delete
    /// each; an address that has no account is not an error.
    pub fn remove_all(&self, addresses: &[&str]) -> Result<(), PlatformError> {
        if addresses.is_empty() {
            return Ok(());
        }
        let dns = addresses.iter().map(|a| self.dn_of(a)).collect::<Result<Vec<_>, _>>()?;
        self.directory.with(|conn| dns.iter().try_for_each(|dn| delete(conn, dn)))
    }
}

/// The value of [`REFUSAL`] for `login` (`None`: logins allowed).
fn refusal(login: &Login) -> Result<Option<String>, PlatformError> {
    Ok(login.reason()?.map(|r| if r.is_empty() { REFUSED } else { r }.to_owned()))
}

/// Replaces `attr` of the entry at `dn` with `value` (removes it if
/// `None`), unless it already is so, in one read and at most one modify;
/// `false` if there is no entry.
fn set(conn: &mut LdapConn, dn: &str, attr: &'static str, value: Option<String>) -> Result<bool, PlatformError> {
    let Some(current) = entry(conn, dn, &[attr])? else { return Ok(false) };
    if first(&current, attr) == value {
        return Ok(true);
    }
    let values: HashSet<String> = value.into_iter().collect();
    conn.modify(dn, vec![Mod::Replace(attr.to_owned(), values)])
        .and_then(|r| r.success())
        .map_err(op_failed("modify", dn))?;
    Ok(true)
}

/// Creates the entry of `account` at `dn`, or sets its hash and quota to
/// `account`'s where they differ (nothing written if none does).
fn upsert(conn: &mut LdapConn, dn: &str, account: &NewAccount) -> Result<(), PlatformError> {
    let (hash, quota) = (account.hash.stored(), account.quota_bytes.to_string());
    let Some(current) = entry(conn, dn, &[PASSWORD, QUOTA])? else {
        let one = |v: &str| HashSet::from([v.to_owned()]);
        let attrs = vec![
            ("objectClass".to_owned(), one("bmaMailbox")),
            ("mail".to_owned(), one(&account.address)),
            (PASSWORD.to_owned(), one(&hash)),
            (QUOTA.to_owned(), one(&quota)),
        ];
        conn.add(dn, attrs).and_then(|r| r.success()).map_err(op_failed("add", dn))?;
        return Ok(());
    };
    let changes: Vec<Mod<String>> = [(PASSWORD, &hash), (QUOTA, &quota)]
        .into_iter()
        .filter(|(attr, value)| first(&current, attr).as_ref() != Some(*value))
        .map(|(attr, value)| Mod::Replace(attr.to_owned(), HashSet::from([value.clone()])))
        .collect();
    if !changes.is_empty() {
        conn.modify(dn, changes).and_then(|r| r.success()).map_err(op_failed("modify", dn))?;
    }
    Ok(())
}

impl Accounts for LdapAccounts {
    fn read(&self, address: &str) -> Result<Option<Account>, PlatformError> {
        check_address(address)?;
        let dn = dn(address, &self.base);
        let Some(found) = self.directory.with(|conn| entry(conn, &dn, &[PASSWORD, QUOTA, REFUSAL]))? else {
            return Ok(None);
        };
        let malformed = |message: String| PlatformError::Invalid { what: "directory entry", message };
        let stored = first(&found, PASSWORD).ok_or_else(|| malformed(format!("{dn}: no {PASSWORD}")))?;
        let hash = PasswordHash::parse(&stored, self.default_scheme).map_err(|e| malformed(format!("{dn}: {e}")))?;
        let quota_bytes = match first(&found, QUOTA) {
            Some(q) => Some(q.trim().parse().map_err(|_| malformed(format!("{dn}: {QUOTA} {q:?} is not a number")))?),
            None => None,
        };
        let login = first(&found, REFUSAL).map_or(Login::Allowed, Login::Refused);
        Ok(Some(Account { address: address.to_owned(), hash, quota_bytes, login }))
    }

    fn upsert(&self, account: &NewAccount) -> Result<(), PlatformError> {
        self.upsert_all(std::slice::from_ref(account))
    }

    fn set_hash(&self, address: &str, hash: &PasswordHash) -> Result<(), PlatformError> {
        let dn = self.dn_of(address)?;
        if !self.directory.with(|conn| set(conn, &dn, PASSWORD, Some(hash.stored())))? {
            return Err(PlatformError::NoAccount(address.to_owned()));
        }
        Ok(())
    }

    fn set_login(&self, address: &str, login: &Login) -> Result<(), PlatformError> {
        if !self.set_login_all(&[address], login)?.is_empty() {
            return Err(PlatformError::NoAccount(address.to_owned()));
        }
        Ok(())
    }
}
