//! [`Relay`]: the Postfix that routes mail per recipient, as both routing
//! backends drive it (the files' [`crate::files::TransportMap`] and the
//! directory's [`crate::ldap::LdapRoutes`]).
//!
//! Rules: a route is confirmed by the lookup Postfix itself makes, never
//! by reading back what we wrote: the tables of its `transport_maps` (read
//! again at each lookup, since a reload may change them), in their order,
//! the address asked of each, then its domain, the first answer winning,
//! and none meaning the relay's default (the legacy platform). So a line of
//! another table that shadows ours is seen, and the route is refused as not
//! confirmed. A table is asked once for all its keys (`postmap -q -`, the
//! keys on its input: both of an address, or those of several), and the
//! tables after the ones that have every address are not asked. After a
//! change Postfix is told to reload (its daemons keep a small cache of
//! their last lookups); held mail is released by `postqueue -f`, each
//! deferred message looked up afresh.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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
        Ok(self.lookup_all(table, &[key])?.into_iter().next().map(|(_, value)| value))
    }

    /// Postfix's own lookup of `keys` in `table`, in one `postmap -q -`
    /// (the keys on its input, one a line): each key the table has, with
    /// its value.
    pub fn lookup_all(&self, table: &str, keys: &[&str]) -> Result<Vec<(String, String)>, PlatformError> {
        if let Some(key) = keys.iter().find(|k| k.is_empty() || k.contains(['\n', '\r'])) {
            return Err(PlatformError::Invalid { what: "lookup key", message: format!("{key:?}") });
        }
        let mut c = self.command("postmap");
        c.args(["-q", "-"]).arg(table).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let line = format!("{c:?}").replace('"', "");
        let failed = |message: String| PlatformError::Command { command: line.clone(), message };
        let mut child = c.spawn().map_err(|e| failed(e.to_string()))?;
        let input: String = keys.iter().map(|k| format!("{k}\n")).collect();
        // A few short lines: the pipe takes them whole before postmap reads.
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().map_err(|e| failed(e.to_string()))?;
        // postmap -q -: 0 when a key was found, 1 (and nothing said) when none was
        let none_found = out.status.code() == Some(1) && out.stderr.is_empty();
        if !out.status.success() && !none_found {
            let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(failed(if message.is_empty() { out.status.to_string() } else { message }));
        }
        if let Some(Err(e)) = written {
            return Err(failed(format!("cannot write the keys: {e}")));
        }
        Ok(parse_answers(&String::from_utf8_lossy(&out.stdout)))
    }

    /// The tables of `transport_maps`, in Postfix's order.
    pub fn tables(&self) -> Result<Vec<String>, PlatformError> {
        let out = run(self.command("postconf").args(["-h", "transport_maps"]))?;
        Ok(split_tables(&out))
    }

    /// The route of `address` as Postfix looks it up now.
    pub fn route(&self, address: &str) -> Result<Route, PlatformError> {
        Ok(self.routes(&[address])?.remove(0))
    }

    /// The routes of `addresses` as Postfix looks them up now, in one
    /// reading of `transport_maps` and one `postmap` per table at most
    /// (none once every address is found).
    pub fn routes(&self, addresses: &[&str]) -> Result<Vec<Route>, PlatformError> {
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<[&str; 2]> =
            addresses.iter().map(|a| [*a, a.rsplit_once('@').map_or("", |(_, domain)| domain)]).collect();
        let mut asked: Vec<&str> = keys.iter().flatten().copied().filter(|k| !k.is_empty()).collect();
        asked.sort_unstable();
        asked.dedup();
        let mut answers: Vec<Vec<(String, String)>> = Vec::new();
        for table in self.tables()? {
            if keys.iter().all(|[address, _]| answers.iter().any(|a| answer(a, address).is_some())) {
                break;
            }
            answers.push(self.lookup_all(&table, &asked)?);
        }
        addresses
            .iter()
            .zip(&keys)
            .map(|(address, keys)| {
                // No line: the relay's default, the legacy platform.
                let Some(transport) = first_hit(keys, &answers) else { return Ok(Route::Legacy) };
                self.transports.route_of(transport).ok_or_else(|| {
                    PlatformError::NotConfirmed(format!(
                        "{address} goes to '{transport}', none of the configured transports"
                    ))
                })
            })
            .collect()
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
        self.confirm_all(&[address], route)
    }

    /// Reloads once, then checks that Postfix looks up `route` for each of
    /// `addresses` (one lookup of them all, [`Relay::routes`]).
    pub fn confirm_all(&self, addresses: &[&str], route: Route) -> Result<(), PlatformError> {
        self.reload()?;
        for (address, now) in addresses.iter().zip(self.routes(addresses)?) {
            if now != route {
                return Err(PlatformError::NotConfirmed(format!(
                    "{address}: route {route} set, Postfix looks up {now}"
                )));
            }
            tracing::info!(address, %route, "route set");
        }
        Ok(())
    }
}

/// The lines of `postmap -q -`, `key<TAB>value` for each key found (a
/// space taken for the tab), the value trimmed.
fn parse_answers(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|line| line.split_once('\t').or_else(|| line.split_once(' ')))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

/// The value of `key` in a table's answers. postmap folds the keys it
/// prints to lower case, so they are compared without case.
fn answer<'a>(answers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    answers.iter().find(|(k, _)| !key.is_empty() && k.eq_ignore_ascii_case(key)).map(|(_, value)| value.as_str())
}

/// Postfix's first answer for `keys` (most specific first) over the
/// answers of its tables in their order: the first key any table has, from
/// the first table that has it.
fn first_hit<'a>(keys: &[&str], tables: &'a [Vec<(String, String)>]) -> Option<&'a str> {
    keys.iter().find_map(|key| tables.iter().find_map(|answers| answer(answers, key)))
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
    use super::{Transports, first_hit, parse_answers, split_tables};
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
    fn postmap_answers_are_read_as_it_writes_them() {
        for (out, answers) in [
            ("", vec![]),
            ("a@x.be\tlmtp:new\n", vec![("a@x.be", "lmtp:new")]),
            ("a@x.be\tsmtp:[mx old]\nx.be\tretry:held\n", vec![("a@x.be", "smtp:[mx old]"), ("x.be", "retry:held")]),
            ("a@x.be lmtp:new\n\n", vec![("a@x.be", "lmtp:new")]),
            ("a@x.be\t lmtp:new \r\n", vec![("a@x.be", "lmtp:new")]),
            ("no value\n\tlmtp:new\n", vec![("no", "value")]),
        ] {
            let answers: Vec<(String, String)> =
                answers.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            assert_eq!(parse_answers(out), answers, "{out:?}");
        }
    }

    #[test]
    fn the_first_answer_is_the_address_in_any_table_then_the_domain() {
        let keys = ["a@x.be", "x.be"];
        // each table's answers, in transport_maps' order
        for (tables, hit) in [
            (vec![], None),
            (vec![vec![], vec![]], None),
            (vec![vec![("a@x.be", "t1")], vec![("a@x.be", "t2")]], Some("t1")),
            (vec![vec![("x.be", "d1")], vec![("a@x.be", "t2")]], Some("t2")),
            (vec![vec![("x.be", "d1")], vec![("x.be", "d2")]], Some("d1")),
            (vec![vec![("x.be", "d1"), ("a@x.be", "t1")]], Some("t1")),
            (vec![vec![], vec![("X.BE", "d2")]], Some("d2")),
            (vec![vec![("b@x.be", "other"), ("y.be", "other")], vec![]], None),
        ] {
            let tables: Vec<Vec<(String, String)>> = tables
                .into_iter()
                .map(|t| t.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
                .collect();
            assert_eq!(first_hit(&keys, &tables), hit, "{tables:?}");
        }
        assert_eq!(first_hit(&["a@x.be", ""], &[vec![(String::new(), "blank".to_owned())]]), None);
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
