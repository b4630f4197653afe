//! Why a mailbox needs a human: the reasons the helpdesk's list shows, a
//! closed set stored as their names.
//!
//! Rules: a mailbox carries at most one reason at a time. Two reasons are
//! kept until a human acts ([`AttentionReason::is_kept`]): a bounced mail 1
//! (`invitation_bounced`, the one the helpdesk acts on first, until a
//! resend clears it) and a mailbox the legacy platform does not know
//! (`legacy_unknown`: its presync is never queued again while it stands,
//! so a later reason must not erase it). The store keeps that rule.

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
        /// The new platform stored messages other than it was given (Cyrus'
        /// `munge8bit`, say): every message is there, but a setting of the
        /// new platform must change before the cutover. Not retried.
        TargetAltered = "target_altered",
        /// The legacy platform does not know the mailbox: its master user
        /// may not log in on behalf of it. Flagged once, never retried.
        LegacyUnknown = "legacy_unknown",
        /// The cutover window closed without a form.
        WindowClosed = "window_closed",
        /// The cutover planner found no slot for it.
        NoCutoverSlot = "no_cutover_slot",
        /// The cutover failed at each of its attempts, or was refused at
        /// its checks (a password scheme the new platform does not take,
        /// messages missing on the new side); mail is routed as before it.
        CutoverFailed = "cutover_failed",
        /// The manager said they do not know the BMA's password: a new
        /// one is to be given (`bma mailbox reset-password`).
        PasswordUnknown = "password_unknown",
        /// A Sieve script of the legacy box (a filter, a vacation) was not
        /// written on the new platform at the cutover: the reader could not
        /// read it, or the new platform refused it even without its
        /// external forwarding. The cutover went on; the script is still on
        /// the legacy platform.
        SieveNotMigrated = "sieve_not_migrated",
    }
}

impl AttentionReason {
    /// What needs a human, in French, for the console.
    pub fn label_fr(self) -> &'static str {
        match self {
            AttentionReason::InvitationBounced => "le mail 1 est revenu en erreur",
            AttentionReason::EmailUnconfirmed => "un email n'a pas pu être confirmé comme distribué",
            AttentionReason::PresyncFailed => "la présynchronisation a échoué à chaque tentative",
            AttentionReason::TargetAltered => "la nouvelle plateforme modifie des messages : un réglage doit changer",
            AttentionReason::LegacyUnknown => "l'ancienne plateforme ne connaît pas cette boîte",
            AttentionReason::WindowClosed => "la fenêtre de migration s'est fermée sans formulaire",
            AttentionReason::NoCutoverSlot => "aucun créneau de bascule trouvé",
            AttentionReason::CutoverFailed => "la bascule a échoué ou a été refusée à ses vérifications",
            AttentionReason::PasswordUnknown => "le gestionnaire ne connaît pas le mot de passe : en donner un nouveau",
            AttentionReason::SieveNotMigrated => {
                "des règles de tri (Sieve) n'ont pas pu être reprises sur la nouvelle plateforme"
            }
        }
    }

    /// Whether no other reason replaces this one: it stands until a human
    /// acts on it.
    pub fn is_kept(self) -> bool {
        matches!(self, AttentionReason::InvitationBounced | AttentionReason::LegacyUnknown)
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

    #[test]
    fn only_a_bounce_and_an_unknown_mailbox_are_kept() {
        let kept: Vec<&str> = AttentionReason::ALL.iter().filter(|r| r.is_kept()).map(|r| r.as_str()).collect();
        assert_eq!(kept, ["invitation_bounced", "legacy_unknown"]);
    }
}
