//! Why a mailbox needs a human: the reasons the helpdesk's list shows, a
//! closed set stored as their names.
//!
//! Rules: a mailbox carries at most one reason at a time; a bounced mail 1
//! (`invitation_bounced`) is the one the helpdesk acts on first, so no
//! other reason replaces it (the store keeps that rule).

use crate::named::named_set;

named_set! {
    /// Why a mailbox is flagged for the helpdesk.
    pub enum AttentionReason / UnknownAttentionReason ("attention reason") {
        /// Mail 1 came back.
        InvitationBounced = "invitation_bounced",
        /// One of our emails was not confirmed delivered after every check.
        EmailUnconfirmed = "email_unconfirmed",
        /// The presync failed at each of its attempts.
        PresyncFailed = "presync_failed",
        /// The legacy platform does not know the mailbox: its master user
        /// may not log in on behalf of it. Flagged once, never retried.
        LegacyUnknown = "legacy_unknown",
        /// The cutover window closed without a form.
        WindowClosed = "window_closed",
        /// The cutover planner found no slot for it.
        NoCutoverSlot = "no_cutover_slot",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_by_its_name() {
        for reason in AttentionReason::ALL {
            assert_eq!(AttentionReason::parse(reason.as_str()), Ok(*reason));
            assert_eq!(reason.to_string().parse::<AttentionReason>(), Ok(*reason));
        }
        assert_eq!(AttentionReason::parse("bored"), Err(UnknownAttentionReason("bored".to_owned())));
        assert_eq!(AttentionReason::WindowClosed, "window_closed");
    }
}
