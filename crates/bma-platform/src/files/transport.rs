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
//! by `postmap -q`, the lookup Postfix makes. Held mail is released by
//! `postqueue -f`: the deferred messages are tried again at once, each
//! looked up afresh.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{check_address, lock, rewrite, run};
use crate::{PlatformError, Route, Routing};

/// The transports of the three routes, as the table names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transports {
    /// To the legacy platform (`lmtp:inet:legacy.example:24`, `smtp:[mx-old]`…).
    pub legacy: String,
    /// To the new platform.
    pub new: String,
    /// Mail kept deferred in the queue: a transport that cannot deliver
    /// and makes Postfix try again later, never bounce (`retry:held`, or a
    /// closed port).
    pub held: String,
}

/// A Postfix transport table.
#[derive(Debug, Clone)]
pub struct TransportMap {
    path: PathBuf,
    map_type: String,
    config_dir: Option<PathBuf>,
    transports: Transports,
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
        TransportMap { path: path.into(), map_type: map_type.to_owned(), config_dir, transports }
    }

    /// The table's text file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        if let Some(dir) = &self.config_dir {
            c.arg("-c").arg(dir);
        }
        c
    }

    fn table(&self) -> String {
        format!("{}:{}", self.map_type, self.path.display())
    }

    /// Postfix's own lookup of `key` in the table, if it has one.
    fn lookup(&self, key: &str) -> Result<Option<String>, PlatformError> {
        let mut c = self.command("postmap");
        c.arg("-q").arg(key).arg(self.table());
        let line = format!("{c:?}").replace('"', "");
        let out = c.output().map_err(|e| PlatformError::Command { command: line.clone(), message: e.to_string() })?;
        match out.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
            // postmap -q: 1 is "not found"
            Some(1) if out.stderr.is_empty() => Ok(None),
            _ => Err(PlatformError::Command {
                command: line,
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }),
        }
    }

    fn route_of(&self, transport: &str) -> Option<Route> {
        let t = &self.transports;
        [(Route::Legacy, &t.legacy), (Route::New, &t.new), (Route::Held, &t.held)]
            .into_iter()
            .find(|(_, name)| name.as_str() == transport)
            .map(|(r, _)| r)
    }

    /// Compiles the table and has Postfix read it.
    fn publish(&self, _file: &Path) -> Result<(), PlatformError> {
        run(self.command("postmap").arg(self.table()))?;
        // A Postfix that is not running reads the table when it starts.
        let mut status = self.command("postfix");
        status.arg("status");
        if status.output().is_ok_and(|o| o.status.success()) {
            run(self.command("postfix").arg("reload"))?;
        }
        Ok(())
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
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        let transport = match self.lookup(address)? {
            Some(t) => t,
            // No line of its own: the domain's, else the relay's default (legacy).
            None => match self.lookup(domain)? {
                Some(t) => t,
                None => return Ok(Route::Legacy),
            },
        };
        self.route_of(&transport).ok_or_else(|| {
            PlatformError::NotConfirmed(format!("{address} goes to '{transport}', none of the configured transports"))
        })
    }

    fn set(&self, address: &str, route: Route) -> Result<(), PlatformError> {
        check_address(address)?;
        let transport = match route {
            Route::Legacy => None,
            Route::New => Some(self.transports.new.as_str()),
            Route::Held => Some(self.transports.held.as_str()),
        };
        let compiled = self.path.with_file_name(format!(
            "{}.{}",
            self.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            if self.map_type == "hash" { "db" } else { self.map_type.as_str() }
        ));
        let changed = rewrite(&self.path, |text| Ok(with_route(text, address, transport)), |f| self.publish(f))?;
        if !changed && !compiled.exists() {
            let _lock = lock(&self.path)?;
            self.publish(&self.path)?;
        }
        let now = self.route(address)?;
        if now != route {
            return Err(PlatformError::NotConfirmed(format!("{address}: route {route} set, Postfix looks up {now}")));
        }
        tracing::info!(address, %route, "route set");
        Ok(())
    }

    fn release(&self) -> Result<(), PlatformError> {
        run(self.command("postqueue").arg("-f")).map(drop)
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
