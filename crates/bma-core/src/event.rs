//! What the event log of the store records: the kinds of its events (a
//! closed set, stored as their names) and the structured details of the
//! ones whose details are more than a note.
//!
//! Rules: a new kind is a new variant here (and its name is then stored
//! forever); an event the store reads back with a kind this build does
//! not know is a typed error, never a string passed on.

use serde::{Deserialize, Serialize};

use crate::named::named_set;

named_set! {
    /// The kind of an event of the log.
    pub enum EventKind / UnknownEventKind ("event kind") {
        /// A mailbox moved from one state to another.
        Transition = "transition",
        /// A mailbox created by a registry import.
        Imported = "imported",
        /// A mailbox whose registry data changed at an import.
        Updated = "updated",
        /// The summary of a registry import (no mailbox).
        RegistryImport = "registry_import",
        /// The summary of an applied wave plan (no mailbox).
        WavePlan = "wave_plan",
        /// A scheduled mailbox moved to another wave.
        Replanned = "replanned",
        /// Pinned to a wave (or unpinned) by an operator.
        Pinned = "pinned",
        /// Excluded from (or readmitted to) the planning.
        Excluded = "excluded",
        /// Its planning priority set.
        Priority = "priority",
        /// The campaign started (no mailbox).
        CampaignStart = "campaign_start",
        /// The campaign paused (no mailbox).
        CampaignPause = "campaign_pause",
        /// The campaign resumed (no mailbox).
        CampaignResume = "campaign_resume",
        /// A reminder queued in the outbox.
        ReminderQueued = "reminder_queued",
        /// One of our emails accepted by the relay.
        EmailSent = "email_sent",
        /// A delivery failure report on a mailbox no longer invited.
        Bounce = "bounce",
        /// A delivery failure report that proves nothing, kept for a human (no mailbox).
        BounceUnverified = "bounce_unverified",
        /// The list of mailboxes without a delivered mail 1, sent at the deadline (no mailbox).
        DeadlineWatch = "deadline_watch",
        /// Flagged for the helpdesk.
        Attention = "attention",
        /// A presync that brought the copy up to date.
        Presync = "presync",
        /// Mail 1 sent again to an invited mailbox.
        InvitationResent = "invitation_resent",
        /// A new version of the form, after the first.
        FormCorrected = "form_corrected",
        /// The backup address changed; the previous one and the BMA notified.
        BackupChanged = "backup_changed",
        /// A verification link queued for the backup address.
        BackupVerificationRequested = "backup_verification_requested",
        /// The backup address verified by its link.
        BackupVerified = "backup_verified",
        /// A step of a mailbox's cutover done (`details.step`, see `switch::Step`).
        CutoverStep = "cutover_step",
        /// A cutover rolled back: mail routed to the legacy platform again, its login restored.
        CutoverRollback = "cutover_rollback",
        /// A new password given (`bma mailbox reset-password`), its link sent.
        PasswordReset = "password_reset",
        /// The link of a new password opened (it shows the password once).
        PasswordLinkOpened = "password_link_opened",
        /// The daily report queued for the migration team (`details.day`: the day it reports).
        DailyReport = "daily_report",
        /// Mail 2 sent again on request (the manager lost it), without any password.
        Mail2Resent = "mail2_resent",
        /// A call to the helpdesk noted from the console: nothing changed, the reason says what was asked.
        CallNote = "call_note",
        /// A presync asked for by staff (the console), queued beside the scheduler's.
        PresyncRequested = "presync_requested",
        /// A person's personal data erased on request (GDPR art. 17), the person replaced by a placeholder.
        PersonalDataErased = "personal_data_erased",
        /// A mailbox's personal data removed at the end of its retention.
        PersonalDataPurged = "personal_data_purged",
        /// A mailbox's Sieve scripts on the legacy platform audited for forwarding (its findings replaced).
        ForwardingAudited = "forwarding_audited",
    }
}

/// The details of a presync that completed: its figures, as the copy
/// engine reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresyncDetails {
    /// Messages copied.
    pub copied: u64,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// How long it took, milliseconds.
    pub elapsed_ms: u64,
    /// Folders seen.
    pub folders: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_by_its_name() {
        let mut names = std::collections::BTreeSet::new();
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
            assert!(names.insert(kind.as_str()), "{kind} named twice");
        }
        assert_eq!(EventKind::parse("teleported"), Err(UnknownEventKind("teleported".to_owned())));
        assert_eq!(EventKind::FormCorrected, "form_corrected");
    }

    #[test]
    fn presync_details_are_the_json_of_before() {
        let d = PresyncDetails { copied: 3, copied_bytes: 120, elapsed_ms: 40, folders: 2 };
        let json = serde_json::json!({ "copied": 3, "copied_bytes": 120, "elapsed_ms": 40, "folders": 2 });
        assert_eq!(serde_json::to_value(d).unwrap(), json);
    }
}
