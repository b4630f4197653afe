//! The cutover of one mailbox, step by step: the steps, their order, and
//! which one comes next given those already recorded.
//!
//! ```text
//!   cutover_scheduled ─check─► migrating ─provision─► hold ─► final_copy ─► verify ─► sieve ─► mail2 ─► route ─► post_copy ─► migrated
//!                                 │
//!                                 └── any step failing for good, or a rollback ──► routes back, legacy login restored
//! ```
//!
//! | step | what it does (each is idempotent: done again, it changes nothing more) |
//! |---|---|
//! | `check` | the new platform reachable, the legacy account's hash in a scheme the new platform accepts; nothing changed if refused; the mailbox becomes `migrating` |
//! | `provision` | the account on the new platform: the hash carried byte for byte, quota × the campaign's multiplier |
//! | `hold` | the legacy login refused with a French reason; mail for the address held at the relay |
//! | `final_copy` | the last incremental copy (flags, new messages, deletions) |
//! | `verify` | the receipt: every legacy message on the new side, folder by folder; refused if any is missing |
//! | `sieve` | the legacy Sieve scripts (filters, vacation, redirects) written on the new platform without their external forwarding, the same one active; a script that cannot be read or that the new platform refuses is left out and the mailbox flagged, never failing the cutover. Here because the legacy login is refused since `hold` (the scripts no longer change; the master user still reads them), the account exists since `provision`, mail is held until `route` (no message is delivered on the new side before its filters are there), and `mail2` says what was taken out; after `verify`, so that a cutover refused for a short receipt has written nothing more |
//! | `mail2` | mail 2 put in the legacy INBOX (found by its Message-ID if already there) and queued to the verified backup address |
//! | `route` | mail for the address routed to the new platform, confirmed by the relay's lookup; what was held released; a probe through the relay seen in the new INBOX, then removed |
//! | `post_copy` | the legacy login's refusal pointing to the new webmail; what reached the legacy box meanwhile (mail 2 among it) copied too; the mailbox becomes `migrated` |
//!
//! Rules: a step is recorded (an event of the store) only once its side
//! effects are done, so a worker killed at any point resumes at the first
//! step not recorded and does that step again; the steps of an attempt
//! are those recorded since the mailbox last became `migrating`. Pure: no
//! I/O.
//!
//! [`Limits`] decide which due mailboxes the scheduler lets start
//! ([`Limits::admit`]): a cutover under way always goes on (mail is held,
//! the legacy login refused: it must end); a new one starts only within
//! the hours (`hour` inclusive to `end_hour` exclusive, UTC, on its day or
//! a later one) and while fewer than `max_parallel` mailboxes are in
//! flight (a cutover job queued or running, or a mailbox `migrating`),
//! in the order given; the rest wait for a later step, or for the next
//! day once the hours are over.

use crate::named::named_set;

named_set! {
    /// A step of a mailbox's cutover, in the order they are done.
    pub enum Step / UnknownStep ("cutover step") {
        /// Checks before anything changes.
        Check = "check",
        /// The account on the new platform.
        Provision = "provision",
        /// The legacy login refused, mail held at the relay.
        Hold = "hold",
        /// The last copy.
        FinalCopy = "final_copy",
        /// The receipt.
        Verify = "verify",
        /// The Sieve scripts, without their external forwarding.
        Sieve = "sieve",
        /// Mail 2.
        Mail2 = "mail2",
        /// Mail routed to the new platform, held mail released.
        Route = "route",
        /// What arrived meanwhile, copied.
        PostCopy = "post_copy",
    }
}

impl Step {
    /// In French, for the pages and `bma show`.
    pub fn label_fr(self) -> &'static str {
        match self {
            Step::Check => "vérifications",
            Step::Provision => "compte créé sur la nouvelle plateforme",
            Step::Hold => "courrier retenu, ancienne connexion fermée",
            Step::FinalCopy => "dernière copie",
            Step::Verify => "récépissé",
            Step::Sieve => "règles de tri et de redirection reprises",
            Step::Mail2 => "deuxième email",
            Step::Route => "courrier dirigé vers la nouvelle plateforme",
            Step::PostCopy => "copie des derniers messages",
        }
    }

    /// The step to do after those `done` (in any order, repeated or
    /// not): the first one of [`Step::ALL`] not among them; `None` when
    /// every step is done.
    pub fn next(done: &[Step]) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| !done.contains(s))
    }

    /// Whether, with the steps `done`, the relay may hold mail or the
    /// legacy login be refused: what a rollback must undo.
    pub fn switching(done: &[Step]) -> bool {
        done.contains(&Step::Hold)
    }
}

/// When and how many cutovers may start (`[cutover]`: `hour`, `end_hour`, `max_parallel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The first hour (UTC) a cutover may start, inclusive.
    pub start_hour: u8,
    /// The hour (UTC, 1 to 24) from which no new cutover starts that day.
    pub end_hour: u8,
    /// Mailboxes in flight at once, at most (at least one).
    pub max_parallel: u32,
}

/// A mailbox whose cutover is due, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due<'a> {
    /// The mailbox.
    pub address: &'a str,
    /// Its cutover is under way (`migrating`).
    pub started: bool,
    /// A cutover job for it is queued or running.
    pub queued: bool,
}

impl Limits {
    /// Whether a new cutover may start at `hour` (UTC).
    pub fn may_start(&self, hour: u8) -> bool {
        self.start_hour <= hour && hour < self.end_hour
    }

    /// The due mailboxes whose cutover job is to be queued at `hour`:
    /// every one under way without a job (to resume it, at any hour),
    /// then, within the hours, new ones in the order of `due` while fewer
    /// than `max_parallel` are in flight (under way or queued).
    pub fn admit<'a>(&self, hour: u8, due: &[Due<'a>]) -> Vec<&'a str> {
        let mut admitted: Vec<&'a str> = due.iter().filter(|d| d.started && !d.queued).map(|d| d.address).collect();
        let mut in_flight = due.iter().filter(|d| d.started || d.queued).count();
        let room = usize::try_from(self.max_parallel.max(1)).unwrap_or(usize::MAX);
        if self.may_start(hour) {
            for d in due.iter().filter(|d| !d.started && !d.queued) {
                if in_flight >= room {
                    break;
                }
                admitted.push(d.address);
                in_flight += 1;
            }
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::{Due, Limits, Step};

    #[test]
    fn cutovers_start_within_the_hours_and_the_limit() {
        let limits = Limits { start_hour: 6, end_hour: 18, max_parallel: 2 };
        let new = |address| Due { address, started: false, queued: false };
        let started = |address| Due { address, started: true, queued: false };
        let running = |address| Due { address, started: true, queued: true };
        let queued = |address| Due { address, started: false, queued: true };
        let table: [(&str, u8, Vec<Due<'_>>, &[&str]); 10] = [
            ("before the hours: nothing new", 5, vec![new("a"), new("b")], &[]),
            ("at the start hour", 6, vec![new("a"), new("b"), new("c")], &["a", "b"]),
            ("one running leaves one place", 9, vec![running("a"), new("b"), new("c")], &["b"]),
            ("a queued job counts, and is not queued again", 9, vec![queued("a"), running("b"), new("c")], &[]),
            ("one under way without a job is resumed", 9, vec![started("a"), new("b"), new("c")], &["a", "b"]),
            ("the last hour still starts", 17, vec![new("a")], &["a"]),
            ("from the end hour, nothing new", 18, vec![new("a")], &[]),
            ("but one under way is resumed at any hour", 23, vec![started("a"), new("b")], &["a"]),
            (
                "over the limit (lowered meanwhile): all go on, none new",
                9,
                vec![started("a"), running("b"), started("c"), new("d")],
                &["a", "c"],
            ),
            ("in the order given", 6, vec![new("c"), new("a"), new("b")], &["c", "a"]),
        ];
        for (what, hour, due, admitted) in table {
            assert_eq!(limits.admit(hour, &due), admitted, "{what}");
        }
        let one = Limits { start_hour: 0, end_hour: 24, max_parallel: 0 };
        assert_eq!(one.admit(0, &[new("a"), new("b")]), ["a"], "at least one");
        assert!(one.may_start(23));
    }

    #[test]
    fn the_next_step_is_the_first_not_done() {
        use Step::*;
        let table: [(&[Step], Option<Step>); 7] = [
            (&[], Some(Check)),
            (&[Check], Some(Provision)),
            (&[Check, Provision, Hold], Some(FinalCopy)),
            // recorded twice (a step done again after a crash) or out of order
            (&[Provision, Check, Check, Hold, FinalCopy, Verify], Some(Sieve)),
            (&[Check, Provision, Hold, FinalCopy, Verify, Sieve], Some(Mail2)),
            (&[Check, Provision, Hold, FinalCopy, Verify, Sieve, Mail2, Route], Some(PostCopy)),
            (Step::ALL, None),
        ];
        for (done, next) in table {
            assert_eq!(Step::next(done), next, "{done:?}");
        }
        assert!(!Step::switching(&[Check, Provision]) && Step::switching(&[Check, Provision, Hold]));
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in Step::ALL {
            assert_eq!(s.as_str().parse::<Step>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::from(s.as_str())));
        }
        assert!("done".parse::<Step>().is_err());
    }
}
