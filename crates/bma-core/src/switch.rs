//! The cutover of one mailbox, step by step: the steps, their order, and
//! which one comes next given those already recorded.
//!
//! ```text
//!   cutover_scheduled ─check─► migrating ─provision─► hold ─► final_copy ─► verify ─► mail2 ─► route ─► post_copy ─► migrated
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
//! | `mail2` | mail 2 put in the legacy INBOX (found by its Message-ID if already there) and queued to the verified backup address |
//! | `route` | mail for the address routed to the new platform, confirmed; what was held released |
//! | `post_copy` | the legacy login's refusal pointing to the new webmail; what reached the legacy box meanwhile (mail 2 among it) copied too; the mailbox becomes `migrated` |
//!
//! Rules: a step is recorded (an event of the store) only once its side
//! effects are done, so a worker killed at any point resumes at the first
//! step not recorded and does that step again; the steps of an attempt
//! are those recorded since the mailbox last became `migrating`. Pure: no
//! I/O.

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

#[cfg(test)]
mod tests {
    use super::Step;

    #[test]
    fn the_next_step_is_the_first_not_done() {
        use Step::*;
        let table: [(&[Step], Option<Step>); 6] = [
            (&[], Some(Check)),
            (&[Check], Some(Provision)),
            (&[Check, Provision, Hold], Some(FinalCopy)),
            // recorded twice (a step done again after a crash) or out of order
            (&[Provision, Check, Check, Hold, FinalCopy, Verify], Some(Mail2)),
            (&[Check, Provision, Hold, FinalCopy, Verify, Mail2, Route], Some(PostCopy)),
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
