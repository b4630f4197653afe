//! [`LdapRoutes`]: routes per recipient as entries `bmaRoute` of the
//! directory, read by Postfix's `ldap:` table (the layout is in the module
//! doc of `ldap`).

use std::collections::HashSet;

use ldap3::{LdapConn, Mod};

use super::{Directory, delete, dn, entry, first, op_failed};
use crate::files::check_address;
use crate::relay::{Relay, Transports};
use crate::{PlatformError, Route, Routing};

const TRANSPORT: &str = "bmaTransport";

/// The routes under a base of the directory, and the relay that reads them.
#[derive(Debug, Clone)]
pub struct LdapRoutes {
    directory: Directory,
    base: String,
    relay: Relay,
}

impl LdapRoutes {
    /// The routes under `base`, for the Postfix whose configuration
    /// directory is `config_dir` (`None`: the default) and whose
    /// `transport_maps` has an `ldap:` table reading them.
    pub fn new(
        directory: Directory,
        base: &str,
        config_dir: Option<std::path::PathBuf>,
        transports: Transports,
    ) -> LdapRoutes {
        LdapRoutes { directory, base: base.trim().to_owned(), relay: Relay::new(config_dir, transports) }
    }

    /// Sets the route of each of `addresses` to `route` on one connection,
    /// each entry as [`Routing::set`] changes one, then has Postfix reload
    /// once and confirms them all in one lookup.
    pub fn set_all(&self, addresses: &[&str], route: Route) -> Result<(), PlatformError> {
        if addresses.is_empty() {
            return Ok(());
        }
        let dns =
            addresses.iter().map(|a| check_address(a).map(|()| dn(a, &self.base))).collect::<Result<Vec<_>, _>>()?;
        let transport = (route != Route::Legacy).then(|| self.relay.transports().of(route).to_owned());
        self.directory.with(|conn| {
            addresses.iter().zip(&dns).try_for_each(|(address, dn)| set(conn, dn, address, transport.as_deref()))
        })?;
        self.relay.confirm_all(addresses, route)
    }
}

/// Sets the entry at `dn` to route `address` by `transport` (`None`: no
/// entry, the relay's default), unless it already does.
fn set(conn: &mut LdapConn, dn: &str, address: &str, transport: Option<&str>) -> Result<(), PlatformError> {
    let current = entry(conn, dn, &[TRANSPORT])?;
    match (current, transport) {
        (None, None) => Ok(()),
        (Some(_), None) => delete(conn, dn),
        (None, Some(transport)) => {
            let one = |v: &str| HashSet::from([v.to_owned()]);
            let attrs = vec![
                ("objectClass".to_owned(), one("bmaRoute")),
                ("mail".to_owned(), one(address)),
                (TRANSPORT.to_owned(), one(transport)),
            ];
            conn.add(dn, attrs).and_then(|r| r.success()).map_err(op_failed("add", dn)).map(drop)
        }
        (Some(e), Some(transport)) if first(&e, TRANSPORT).as_deref() == Some(transport) => Ok(()),
        (Some(_), Some(transport)) => conn
            .modify(dn, vec![Mod::Replace(TRANSPORT.to_owned(), HashSet::from([transport.to_owned()]))])
            .and_then(|r| r.success())
            .map_err(op_failed("modify", dn))
            .map(drop),
    }
}

impl Routing for LdapRoutes {
    fn route(&self, address: &str) -> Result<Route, PlatformError> {
        check_address(address)?;
        self.relay.route(address)
    }

    fn set(&self, address: &str, route: Route) -> Result<(), PlatformError> {
        self.set_all(&[address], route)
    }

    fn release(&self) -> Result<(), PlatformError> {
        self.relay.flush()
    }
}
