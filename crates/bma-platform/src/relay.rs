//! [`Relay`]: the Postfix that routes mail per recipient, as both routing
//! backends drive it (the files' [`crate::files::TransportMap`] and the
//! directory's [`crate::ldap::LdapRoutes`]).
//!
//! Rules: a route is confirmed by the lookup Postfix itself makes, never
//! by reading back what we wrote: the tables of its `transport_maps`, in
//! their order, each asked with `postmap -q` for the address then for its
//! domain, the first answer winning, and none meaning the relay's default
//! (the legacy platform). So a line of another table that shadows ours is
//! seen, and the route is refused as not confirmed. After a change Postfix
//! is told to reload (its daemons keep a small cache of their last
//! lookups); held mail is released by `postqueue -f`, each deferred
//! message looked up afresh.

use std::path::PathBuf;
use std::process::Command;

use crate::{PlatformError, Route};

/// The transports of the three routes, as the relay's tables name them.
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

impl Transports {
    /// The route a transport stands for, if it is one of ours.
    pub fn route_of(&self, transport: &str) -> Option<Route> {
        [(Route::Legacy, &self.legacy), (Route::New, &self.new), (Route::Held, &self.held)]
            .into_iter()
            .find(|(_, name)| name.as_str() == transport)
            .map(|(r, _)| r)
    }

    /// The transport of `route`.
    pub fn of(&self, route: Route) -> &str {
        match route {
            Route::Legacy => &self.legacy,
            Route::New => &self.new,
            Route::Held => &self.held,
        }
    }
}

/// A Postfix instance, reached through its commands.
#[derive(Debug, Clone)]
pub struct Relay {
    config_dir: Option<PathBuf>,
    transports: Transports,
}

impl Relay {
    /// The Postfix whose configuration directory is `config_dir` (`None`:
    /// the default, `/etc/postfix`), its routes sent by `transports`.
    pub fn new(config_dir: Option<PathBuf>, transports: Transports) -> Relay {
        Relay { config_dir, transports }
    }

    /// The transports of the routes.
    pub fn transports(&self) -> &Transports {
        &self.transports
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        if let Some(dir) = &self.config_dir {
            c.arg("-c").arg(dir);
        }
        c
    }

    /// Postfix's own lookup of `key` in `table` (`hash:/etc/postfix/transport`,
    /// `ldap:/etc/postfix/routes.cf`…), if the table has it.
    pub fn lookup(&self, table: &str, key: &str) -> Result<Option<String>, PlatformError> {
        let mut c = self.command("postmap");
        c.arg("-q").arg(key).arg(table);
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

    /// The tables of `transport_maps`, in Postfix's order.
    pub fn tables(&self) -> Result<Vec<String>, PlatformError> {
        let out = run(self.command("postconf").args(["-h", "transport_maps"]))?;
        Ok(split_tables(&out))
    }

    /// The route of `address` as Postfix looks it up now.
    pub fn route(&self, address: &str) -> Result<Route, PlatformError> {
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        let tables = self.tables()?;
        let mut found = None;
        'keys: for key in [address, domain] {
            for table in &tables {
                if let Some(transport) = self.lookup(table, key)? {
                    found = Some(transport);
                    break 'keys;
                }
            }
        }
        // No line: the relay's default, the legacy platform.
        let Some(transport) = found else { return Ok(Route::Legacy) };
        self.transports.route_of(&transport).ok_or_else(|| {
            PlatformError::NotConfirmed(format!("{address} goes to '{transport}', none of the configured transports"))
        })
    }

    /// Has a running Postfix read its tables again (a stopped one reads
    /// them when it starts).
    pub fn reload(&self) -> Result<(), PlatformError> {
        let mut status = self.command("postfix");
        status.arg("status");
        if status.output().is_ok_and(|o| o.status.success()) {
            run(self.command("postfix").arg("reload"))?;
        }
        Ok(())
    }

    /// Compiles a table's text file (`postmap hash:/…`).
    pub fn compile(&self, table: &str) -> Result<(), PlatformError> {
        run(self.command("postmap").arg(table)).map(drop)
    }

    /// Delivers again what the queue holds, each message by its route now.
    pub fn flush(&self) -> Result<(), PlatformError> {
        run(self.command("postqueue").arg("-f")).map(drop)
    }

    /// Reloads, then checks that Postfix looks up `route` for `address`.
    pub fn confirm(&self, address: &str, route: Route) -> Result<(), PlatformError> {
        self.reload()?;
        let now = self.route(address)?;
        if now != route {
            return Err(PlatformError::NotConfirmed(format!("{address}: route {route} set, Postfix looks up {now}")));
        }
        tracing::info!(address, %route, "route set");
        Ok(())
    }
}

/// `transport_maps` split as Postfix splits it: commas and white space.
fn split_tables(value: &str) -> Vec<String> {
    value.split([',', ' ', '\t', '\n']).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// Runs a command of the platform, its error output in the error.
pub(crate) fn run(command: &mut Command) -> Result<String, PlatformError> {
    let line = format!("{command:?}").replace('"', "");
    let out = command.output().map_err(|e| PlatformError::Command { command: line.clone(), message: e.to_string() })?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let message = if message.is_empty() { out.status.to_string() } else { message };
        return Err(PlatformError::Command { command: line, message });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::{Transports, split_tables};
    use crate::Route;

    #[test]
    fn transport_maps_is_split_as_postfix_splits_it() {
        for (value, tables) in [
            ("", vec![]),
            ("hash:/etc/postfix/transport\n", vec!["hash:/etc/postfix/transport"]),
            ("hash:/a, ldap:/b.cf", vec!["hash:/a", "ldap:/b.cf"]),
            ("hash:/a,ldap:/b.cf\tlmdb:/c", vec!["hash:/a", "ldap:/b.cf", "lmdb:/c"]),
        ] {
            assert_eq!(split_tables(value), tables, "{value:?}");
        }
    }

    #[test]
    fn transports_name_routes() {
        let t = Transports { legacy: "lmtp:a".into(), new: "lmtp:b".into(), held: "retry:held".into() };
        for route in [Route::Legacy, Route::New, Route::Held] {
            assert_eq!(t.route_of(t.of(route)), Some(route));
        }
        assert_eq!(t.route_of("smtp:other"), None);
    }
}
