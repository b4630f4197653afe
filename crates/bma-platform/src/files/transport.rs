//! [`TransportMap`]: routes per recipient in a Postfix `transport_maps`
//! table.
//!
//! The table is a text file (`address<TAB>transport`) that `postmap`
//! compiles (`hash:`, `lmdb:`…) and Postfix reads. This module manages the
//! lines whose key is an address: a recipient routed to the new platform,
//! or held, has one; a recipient routed to the legacy platform has none
//! (the domain's line, or the relay's default, sends it there), so a
//! rollback leaves the table as it was before the cutover. Other lines
//! (domains, comments) are kept as they are.
//!
//! A change is the text rewritten and renamed, `postmap` run on it under
//! the same lock, Postfix told to reload (its daemons would notice the new
//! table by themselves, within their idle time), then the route confirmed
//! by the [`Relay`]'s own lookup through every table of `transport_maps`.

use std::path::{Path, PathBuf};

use super::{check_address, lock, rewrite};
use crate::relay::{Relay, Transports};
use crate::{PlatformError, Route, Routing};

/// A Postfix transport table.
#[derive(Debug, Clone)]
pub struct TransportMap {
    path: PathBuf,
    map_type: String,
    relay: Relay,
}

impl TransportMap {
    /// The table at `path` of type `map_type` (`hash`, `lmdb`…), for the
    /// Postfix whose configuration directory is `config_dir` (`None`: the
    /// default, `/etc/postfix`).
    pub fn new(
        path: impl Into<PathBuf>,
        map_type: &str,
        config_dir: Option<PathBuf>,
        transports: Transports,
    ) -> TransportMap {
        TransportMap { path: path.into(), map_type: map_type.to_owned(), relay: Relay::new(config_dir, transports) }
    }

    /// The table's text file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn table(&self) -> String {
        format!("{}:{}", self.map_type, self.path.display())
    }

    /// Compiles the table and has Postfix read it.
    fn publish(&self) -> Result<(), PlatformError> {
        self.relay.compile(&self.table())?;
        self.relay.reload()
    }
}

/// The table's text with `address` routed by `transport` (`None`: its line removed).
fn with_route(text: &str, address: &str, transport: Option<&str>) -> String {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.split_whitespace().next().is_none_or(|key| !key.eq_ignore_ascii_case(address)))
        .map(str::to_owned)
        .collect();
    if let Some(transport) = transport {
        lines.push(format!("{address}\t{transport}"));
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

impl Routing for TransportMap {
    fn route(&self, address: &str) -> Result<Route, PlatformError> {
        check_address(address)?;
        self.relay.route(address)
    }

    fn set(&self, address: &str, route: Route) -> Result<(), PlatformError> {
        check_address(address)?;
        let transport = (route != Route::Legacy).then(|| self.relay.transports().of(route));
        let compiled = self.path.with_file_name(format!(
            "{}.{}",
            self.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            if self.map_type == "hash" { "db" } else { self.map_type.as_str() }
        ));
        let changed = rewrite(&self.path, |text| Ok(with_route(text, address, transport)), |_| self.publish())?;
        if !changed && !compiled.exists() {
            let _lock = lock(&self.path)?;
            self.publish()?;
        }
        self.relay.confirm(address, route)
    }

    fn release(&self) -> Result<(), PlatformError> {
        self.relay.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::with_route;

    #[test]
    fn only_the_address_line_changes() {
        let text = "# routes\nadm.cfwb.be\tlmtp:inet:127.0.0.1:10024\nb@adm.cfwb.be\tlmtp:inet:127.0.0.1:20024\n";
        let held = with_route(text, "a@adm.cfwb.be", Some("retry:held"));
        assert_eq!(held, format!("{text}a@adm.cfwb.be\tretry:held\n"));
        let new = with_route(&held, "a@adm.cfwb.be", Some("lmtp:inet:127.0.0.1:20024"));
        assert_eq!(new, format!("{text}a@adm.cfwb.be\tlmtp:inet:127.0.0.1:20024\n"));
        assert_eq!(with_route(&new, "a@adm.cfwb.be", None), text);
        assert_eq!(with_route("", "a@x.be", None), "");
    }
}
