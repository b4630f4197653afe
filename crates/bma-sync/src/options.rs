//! How a run goes: [`Options`] (start from `Options::default()`), the
//! [`Endpoint`]s it copies between, the [`Progress`] it reports to, and the
//! caps that several runs can share ([`RateLimiter`], connection slots,
//! [`share`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bma_imap::{Auth, Config};

use crate::mapping::MappingOptions;
use crate::probe::ProbeCache;

/// One side of a copy: where and how to log in.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Server.
    pub config: Config,
    /// Login.
    pub auth: Auth,
}

impl Endpoint {
    /// The user whose mailbox this is.
    pub fn user(&self) -> &str {
        match &self.auth {
            Auth::Login { user, .. } | Auth::XOAuth2 { user, .. } | Auth::XOAuth2File { user, .. } => user,
            Auth::Plain { authzid: Some(u), .. } => u,
            Auth::Plain { authcid, .. } => authcid,
        }
    }

    pub(crate) fn key(&self) -> String {
        format!("{}@{}:{}", self.user(), self.config.host, self.config.port)
    }
}

/// Told of progress (a progress bar).
pub trait Progress: Send + Sync {
    /// More to copy: `messages` of `bytes` in all.
    fn add_total(&self, messages: u64, bytes: u64);
    /// Copied: `messages` of `bytes`.
    fn advance(&self, messages: u64, bytes: u64);
    /// Something to act on, found before the copy starts (the target
    /// rewrites messages): for a display to show at once, so that the user
    /// may stop and change the setting; the [`Summary`](crate::Summary)
    /// carries it too.
    fn warn(&self, _warning: &crate::report::Warning) {}
}

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// Folder selection and mapping.
    pub mapping: MappingOptions,
    /// Connections per server (and folders copied at once).
    pub max_connections: usize,
    /// Plan and report, change nothing.
    pub dry_run: bool,
    /// Expunge from the target what was expunged from the source (among messages copied).
    pub delete: bool,
    /// Mappings recorded per state transaction.
    pub commit_every: usize,
    /// Retries of a folder after a lost connection (backoff 1 s, 2 s, 4 s, ...).
    pub retries: u32,
    /// Progress reporting.
    pub progress: Option<Arc<dyn Progress>>,
    /// Messages per MULTIAPPEND command when the target has MULTIAPPEND
    /// (RFC 3502); 1 or 0 turns MULTIAPPEND off (pipelined single APPENDs).
    pub batch_messages: usize,
    /// Bytes per MULTIAPPEND command (a command ends at whichever limit
    /// comes first). Messages are streamed, never held as a batch.
    pub batch_bytes: u64,
    /// Shared cap on bytes copied per second (across folders, and across
    /// mailboxes when the same limiter is given to several runs).
    pub rate: Option<Arc<RateLimiter>>,
    /// Shared cap on connection pairs (one to each server) open at once,
    /// across runs that share it; `max_connections` still caps each run.
    pub connection_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Pauses before retrying messages the target refused with
    /// `[THROTTLED]`, `[UNAVAILABLE]` or `[OVERQUOTA]` (each twice as long).
    pub pause: Duration,
    /// How many such pauses a folder may take before the refusals are final.
    pub pauses: u32,
    /// Which appended messages are compared by content with what the target
    /// stored (every one is compared by size).
    pub verify: Verify,
    /// What the probe found per target server (shared by clones: a batch
    /// probes each server once).
    pub probe: ProbeCache,
}

/// Which appended messages are compared by content with what the target
/// stored (by its `DIGEST.SHA1` where offered, else read back); every
/// appended message is compared by RFC822.SIZE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Those a target is known to rewrite ([`crate::Shape::risky`]): 8-bit
    /// or malformed headers, bare CR or LF, no blank line after the headers,
    /// no final line ending, NUL bytes.
    #[default]
    Risky,
    /// Every message (the campaign's final copy).
    Full,
}

/// A cap on bytes per second, shared by whatever copies through it.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_second: u64,
    sent: Mutex<(Instant, u64)>,
}

impl RateLimiter {
    /// A limiter of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> RateLimiter {
        RateLimiter { bytes_per_second: bytes_per_second.max(1), sent: Mutex::new((Instant::now(), 0)) }
    }

    /// Accounts for `bytes` and waits until they fit in the rate.
    pub async fn take(&self, bytes: u64) {
        let due = {
            let mut g = self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            // Idle time is not banked beyond one second's worth.
            let floor = now.checked_sub(Duration::from_secs(1)).unwrap_or(g.0);
            if g.0 + Duration::from_secs_f64(g.1 as f64 / self.bytes_per_second as f64) < floor {
                *g = (floor, 0);
            }
            g.1 += bytes;
            g.0 + Duration::from_secs_f64(g.1 as f64 / self.bytes_per_second as f64)
        };
        tokio::time::sleep_until(due.into()).await;
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mapping", &self.mapping)
            .field("max_connections", &self.max_connections)
            .field("dry_run", &self.dry_run)
            .field("delete", &self.delete)
            .field("batch_messages", &self.batch_messages)
            .field("batch_bytes", &self.batch_bytes)
            .field("rate", &self.rate)
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// These options for `parallel` runs at once (a batch of mailboxes)
    /// sharing [`Options::max_connections`] connection pairs: each run gets
    /// its fair share (at least one pair) and all of them one shared cap.
    /// A run's extra pairs are worth their logins on a big mailbox only:
    /// without a share, the extra workers of the runs under way would take
    /// every pair freed by a finished mailbox, and the next mailbox would
    /// wait for its first connection while they log in again.
    #[must_use]
    pub fn shared_by(mut self, parallel: usize) -> Options {
        let total = self.max_connections.max(1);
        self.connection_slots = Some(Arc::new(tokio::sync::Semaphore::new(total)));
        self.max_connections = share(total, parallel);
        self
    }
}

/// Each of `parallel` runs' share of `total` connection pairs: at least one.
pub fn share(total: usize, parallel: usize) -> usize {
    (total / parallel.max(1)).max(1)
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mapping: MappingOptions::default(),
            max_connections: 4,
            dry_run: false,
            delete: false,
            commit_every: 64,
            retries: 5,
            progress: None,
            batch_messages: 100,
            batch_bytes: 16 << 20,
            rate: None,
            connection_slots: None,
            pause: Duration::from_secs(2),
            pauses: 3,
            verify: Verify::Risky,
            probe: ProbeCache::default(),
        }
    }
}
