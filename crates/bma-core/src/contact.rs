//! Whom to contact, by phase of a mailbox's migration.
//!
//! The FAQ names three contacts: Enseignement.be for mailboxes whose
//! migration has not started, the SGNE migration team while it runs, and
//! ETNIC's Service Desk once the mailbox has migrated. [`Contacts::for_state`]
//! maps a lifecycle state to its phase, so that the helpdesk console, the
//! status page and the emails all say the same thing.

use serde::{Deserialize, Serialize};

use crate::lifecycle::State;

/// One contact point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name of the service.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone number as people write it; empty when there is none.
    #[serde(default)]
    pub phone: String,
}

/// The phase of a mailbox, as far as contacts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Migration not started (no mail 1 yet).
    Before,
    /// Between mail 1 and the end of the cutover.
    During,
    /// Migrated.
    After,
}

impl Phase {
    /// The phase of a state. A blocked mailbox is in the phase of the
    /// state it was blocked in; without it, "during" (the team holds it).
    pub fn of(state: State, blocked_from: Option<State>) -> Phase {
        match state {
            State::Imported | State::Scheduled => Phase::Before,
            State::Migrated => Phase::After,
            State::Blocked => {
                blocked_from.filter(|s| *s != State::Blocked).map_or(Phase::During, |s| Phase::of(s, None))
            }
            _ => Phase::During,
        }
    }
}

/// The three contacts of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    /// Before the migration of the mailbox has started.
    pub before: Contact,
    /// While it runs.
    pub during: Contact,
    /// After it.
    pub after: Contact,
}

impl Default for Contacts {
    fn default() -> Self {
        Contacts {
            before: Contact {
                name: "Service Enseignement.be".to_owned(),
                email: "BMA@enseignement.be".to_owned(),
                phone: String::new(),
            },
            during: Contact {
                name: "Équipe migration du SGNE (Service général du Numérique éducatif)".to_owned(),
                email: "migrationbma@cfwb.be".to_owned(),
                phone: "+32 (0)2 413.3090".to_owned(),
            },
            after: Contact {
                name: "Service Desk de l'ETNIC".to_owned(),
                email: "support@etnic.be".to_owned(),
                phone: "+32 (0)2 800.1010".to_owned(),
            },
        }
    }
}

impl Contacts {
    /// The contact for a phase.
    pub fn for_phase(&self, phase: Phase) -> &Contact {
        match phase {
            Phase::Before => &self.before,
            Phase::During => &self.during,
            Phase::After => &self.after,
        }
    }

    /// The contact for a mailbox in `state`.
    pub fn for_state(&self, state: State, blocked_from: Option<State>) -> &Contact {
        self.for_phase(Phase::of(state, blocked_from))
    }

    /// The three, with their key names.
    pub fn by_phase(&self) -> [(&'static str, &Contact); 3] {
        [("before", &self.before), ("during", &self.during), ("after", &self.after)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_follows_the_phase() {
        let c = Contacts::default();
        let cases = [
            (State::Imported, None, "BMA@enseignement.be"),
            (State::Scheduled, None, "BMA@enseignement.be"),
            (State::Invited, None, "migrationbma@cfwb.be"),
            (State::InvitationBounced, None, "migrationbma@cfwb.be"),
            (State::Enrolled, None, "migrationbma@cfwb.be"),
            (State::Migrating, None, "migrationbma@cfwb.be"),
            (State::Failed, None, "migrationbma@cfwb.be"),
            (State::Migrated, None, "support@etnic.be"),
            (State::Blocked, Some(State::Imported), "BMA@enseignement.be"),
            (State::Blocked, None, "migrationbma@cfwb.be"),
        ];
        for (state, from, email) in cases {
            assert_eq!(c.for_state(state, from).email, email, "{state}");
        }
    }
}
