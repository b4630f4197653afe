//! The platforms in an LDAP directory (OpenLDAP): [`LdapAccounts`] (the
//! accounts, as Dovecot's `ldap` passdb and userdb read them) and
//! [`LdapRoutes`] (the routes, as Postfix's `ldap:` table reads them).
//!
//! The directory's layout, under bases the configuration names (the lab's
//! `lab/ldap/bma.schema` defines the classes):
//!
//! ```text
//! <accounts base>               one per platform (ou=legacy…, ou=new…)
//!   mail=<address>              objectClass bmaMailbox
//!     mail                      the address, lower case
//!     userPassword              {SCHEME}hash, as Dovecot compares it
//!     bmaQuotaBytes             the account's own quota (else the platform's)
//!     bmaLoginRefusal           present: logins refused, with this French reason
//! <routes base>
//!   mail=<address>              objectClass bmaRoute
//!     bmaTransport              Postfix's transport for this recipient
//! ```
//!
//! A recipient routed to the legacy platform has no route entry (the
//! relay's default sends it there), so a rollback leaves the directory as
//! it was before the cutover, as the files backend leaves its table.
//!
//! Rules: one entry is changed by one LDAP operation, which the server
//! applies whole (Dovecot and Postfix read the old entry or the new one);
//! an attribute already at the value wanted is not written, so a resumed
//! step changes nothing; a refusal is an attribute read by a passdb of its
//! own placed before the accounts' with `skip = authenticated`, so that
//! the master user still logs in on behalf of a refused account (the files
//! backend's rule); Dovecot keeps no cache of these lookups, so the next
//! login reads the entry as changed. The bind password is a
//! [`bma_imap::Secret`]; TLS is verified unless explicitly turned off.
//!
//! `ldap3`'s blocking client runs its own small runtime, which cannot be
//! started from a thread that already runs in one (the engine's
//! `spawn_blocking` threads do): every call of this module runs on a
//! thread of its own, with one connection opened, bound and closed there,
//! which carries all the LDAP operations of the call (a read and a modify
//! of one entry, or the entries of a batch: `upsert_all`, `set_login_all`,
//! `remove_all`, `LdapRoutes::set_all`).

mod accounts;
mod routes;

use std::time::Duration;

use bma_imap::{Secret, Security};
use ldap3::{LdapConn, LdapConnSettings, LdapError};

pub use accounts::LdapAccounts;
pub use routes::LdapRoutes;

use crate::PlatformError;

/// How to reach and bind to the directory.
#[derive(Debug, Clone)]
pub struct Directory {
    url: String,
    security: Security,
    verify_tls: bool,
    bind_dn: String,
    password: Secret,
}

impl Directory {
    /// The directory at `url` (`ldap://host:port` or `ldaps://…`, which
    /// `security` must agree with), bound as `bind_dn`; `verify_tls`
    /// false only where TLS is explicitly not verified.
    pub fn new(
        url: &str,
        security: Security,
        verify_tls: bool,
        bind_dn: &str,
        password: Secret,
    ) -> Result<Directory, PlatformError> {
        let url = url.trim();
        let invalid = |message: String| PlatformError::Invalid { what: "LDAP URL", message };
        let tls_url = match url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase()) {
            Some(s) if s == "ldaps" => true,
            Some(s) if s == "ldap" => false,
            _ => return Err(invalid(format!("{url:?}: not ldap://host:port nor ldaps://host:port"))),
        };
        if tls_url != (security == Security::Tls) {
            return Err(invalid(format!(
                "{url:?} with security {security:?}: ldaps:// goes with tls, ldap:// with starttls or none"
            )));
        }
        if bind_dn.trim().is_empty() {
            return Err(PlatformError::Invalid { what: "bind DN", message: "empty".to_owned() });
        }
        Ok(Directory { url: url.to_owned(), security, verify_tls, bind_dn: bind_dn.trim().to_owned(), password })
    }

    /// Runs `work` on a connection of its own, bound, on a thread of its
    /// own (see the module doc): every operation `work` makes on the
    /// connection it is given goes over that one connection and bind.
    fn with<T: Send>(
        &self,
        work: impl FnOnce(&mut LdapConn) -> Result<T, PlatformError> + Send,
    ) -> Result<T, PlatformError> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let settings = LdapConnSettings::new()
                        .set_conn_timeout(Duration::from_secs(10))
                        .set_starttls(self.security == Security::StartTls)
                        .set_no_tls_verify(!self.verify_tls);
                    let mut conn =
                        LdapConn::with_settings(settings, &self.url).map_err(|e| self.failed("connect", &e))?;
                    conn.with_timeout(Duration::from_secs(30));
                    conn.simple_bind(&self.bind_dn, self.password.expose())
                        .and_then(|r| r.success())
                        .map_err(|e| self.failed("bind", &e))?;
                    let result = work(&mut conn);
                    let _ = conn.unbind();
                    result
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(PlatformError::Command { command: self.url.clone(), message: "panicked".into() })
                })
        })
    }

    fn failed(&self, what: &str, error: &LdapError) -> PlatformError {
        PlatformError::Command { command: format!("LDAP {what} at {}", self.url), message: error.to_string() }
    }
}

/// The DN of `address`'s entry under `base`.
fn dn(address: &str, base: &str) -> String {
    format!("mail={},{base}", ldap3::dn_escape(address))
}

/// An LDAP error of an operation on `dn`.
fn op_failed(op: &str, dn: &str) -> impl FnOnce(LdapError) -> PlatformError {
    let command = format!("LDAP {op} {dn}");
    move |e| PlatformError::Command { command, message: e.to_string() }
}

/// The result code of "no such object".
const NO_SUCH_OBJECT: u32 = 32;

/// Deletes the entry at `dn`; one already gone is not an error.
fn delete(conn: &mut LdapConn, dn: &str) -> Result<(), PlatformError> {
    let result = conn.delete(dn).map_err(op_failed("delete", dn))?;
    if result.rc != NO_SUCH_OBJECT {
        result.success().map_err(op_failed("delete", dn))?;
    }
    Ok(())
}

/// The first value of `attr` in a search entry, text or binary.
fn first(entry: &ldap3::SearchEntry, attr: &str) -> Option<String> {
    let find = |name: &str| name.eq_ignore_ascii_case(attr);
    entry.attrs.iter().find(|(k, _)| find(k)).and_then(|(_, v)| v.first().cloned()).or_else(|| {
        entry
            .bin_attrs
            .iter()
            .find(|(k, _)| find(k))
            .and_then(|(_, v)| v.first())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    })
}

/// The entry at `dn` with `attrs`, if there is one.
fn entry(conn: &mut LdapConn, dn: &str, attrs: &[&str]) -> Result<Option<ldap3::SearchEntry>, PlatformError> {
    let result =
        conn.search(dn, ldap3::Scope::Base, "(objectClass=*)", attrs.to_vec()).map_err(op_failed("search", dn))?;
    if result.1.rc == NO_SUCH_OBJECT {
        return Ok(None);
    }
    let (entries, _) = result.success().map_err(op_failed("search", dn))?;
    Ok(entries.into_iter().next().map(ldap3::SearchEntry::construct))
}

#[cfg(test)]
mod tests {
    use bma_imap::{Secret, Security};

    use super::{Directory, dn};

    #[test]
    fn urls_and_security_must_agree() {
        let ok = |url, security| Directory::new(url, security, true, "cn=bma,dc=x", Secret::new("p")).is_ok();
        assert!(ok("ldap://127.0.0.1:389", Security::None));
        assert!(ok("ldap://ldap.example:389", Security::StartTls));
        assert!(ok("LDAPS://ldap.example", Security::Tls));
        assert!(!ok("ldaps://ldap.example", Security::StartTls));
        assert!(!ok("ldap://ldap.example", Security::Tls));
        assert!(!ok("http://ldap.example", Security::None));
        assert!(!ok("ldap.example:389", Security::None));
        assert!(Directory::new("ldap://x", Security::None, true, " ", Secret::new("p")).is_err());
    }

    #[test]
    fn addresses_are_escaped_in_dns() {
        assert_eq!(dn("ec1@adm.cfwb.be", "ou=new,dc=x"), "mail=ec1@adm.cfwb.be,ou=new,dc=x");
        assert_eq!(dn("a,b+c@x.be", "ou=new,dc=x"), r"mail=a\2cb\2bc@x.be,ou=new,dc=x");
    }
}
