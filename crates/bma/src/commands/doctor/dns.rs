//! The DNS questions of `bma doctor autoconfig`: a name's addresses (A and
//! AAAA, through its CNAMEs) and a service's SRV records, asked of the
//! system's resolver (`/etc/resolv.conf`) or of one named server
//! (`--resolver IP:PORT`), each under the doctor's timeout.
//!
//! Rules: no cache between questions (a record just added is seen), no
//! hosts file (clients do not read ours), one attempt per server; "no such
//! name" and "no record of this type" are an empty answer, not an error;
//! any other failure is an error the caller reports as it is. Once the
//! server has let one question time out, the next ones are not asked
//! (each would wait its timeout for nothing): they fail at once, saying so.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

/// A question that got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The resolver's own error (a timeout, a refusal, a server failure).
    #[error("{0}")]
    Resolve(ResolveError),
    /// Not asked: the server let an earlier question time out.
    #[error("not asked: the DNS server did not answer an earlier question in time")]
    Silent,
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Srv {
    /// Lower first.
    pub priority: u16,
    /// Among equal priorities.
    pub weight: u16,
    /// The service's port.
    pub port: u16,
    /// The host, lower case, without the final dot (`.` alone: "no such service").
    pub target: String,
}

/// A resolver for the doctor's questions.
pub struct Dns {
    resolver: TokioResolver,
    silent: AtomicBool,
}

impl Dns {
    /// The system's resolver, or `server` when given; `timeout` per question.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Dns, ResolveError> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
                TokioResolver::builder_with_config(ResolverConfig::from_parts(None, vec![], servers), provider)
            }
            None => TokioResolver::builder(provider)?,
        };
        let options = builder.options_mut();
        options.timeout = timeout;
        options.attempts = 1;
        options.cache_size = 0;
        options.use_hosts_file = ResolveHosts::Never;
        options.ndots = 0;
        Ok(Dns { resolver: builder.build(), silent: AtomicBool::new(false) })
    }

    /// The addresses of `name` (A and AAAA, CNAMEs followed); empty when
    /// it has none.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        self.ask()?;
        match self.resolver.lookup_ip(absolute(name)).await {
            Ok(found) => Ok(found.iter().collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Whether a question may be asked.
    fn ask(&self) -> Result<(), DnsError> {
        if self.silent.load(Ordering::Relaxed) { Err(DnsError::Silent) } else { Ok(()) }
    }

    /// A failed question; a timeout makes the server silent for the next ones.
    fn failed(&self, e: ResolveError) -> DnsError {
        if e.proto().is_some_and(|p| matches!(p.kind(), ProtoErrorKind::Timeout)) {
            self.silent.store(true, Ordering::Relaxed);
        }
        DnsError::Resolve(e)
    }

    /// The SRV records of `name`, by priority then weight (highest first);
    /// empty when it has none.
    pub async fn srv(&self, name: &str) -> Result<Vec<Srv>, DnsError> {
        self.ask()?;
        let found = match self.resolver.srv_lookup(absolute(name)).await {
            Ok(found) => found,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => return Ok(Vec::new()),
            Err(e) => return Err(self.failed(e)),
        };
        let mut records: Vec<Srv> = found
            .iter()
            .map(|r| Srv {
                priority: r.priority(),
                weight: r.weight(),
                port: r.port(),
                target: host_name(&r.target().to_ascii()),
            })
            .collect();
        records.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
        Ok(records)
    }
}

/// `name` as a fully qualified name (a final dot), so that no search
/// domain of the machine is tried.
fn absolute(name: &str) -> String {
    let name = name.trim();
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

/// A host name as compared: lower case, without the final dot (the root
/// `.` stays `.`).
pub fn host_name(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    match name.strip_suffix('.') {
        Some("") | None => name,
        Some(bare) => bare.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_without_case_or_final_dot() {
        for (name, bare) in
            [("IMAP.Example.BE.", "imap.example.be"), ("imap.example.be", "imap.example.be"), (".", "."), (" a. ", "a")]
        {
            assert_eq!(host_name(name), bare, "{name:?}");
        }
        assert_eq!(absolute("autoconfig.adm.cfwb.be"), "autoconfig.adm.cfwb.be.");
        assert_eq!(absolute("x.be."), "x.be.");
    }
}
