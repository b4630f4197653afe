//! The lifecycle of a mailbox in a campaign.
//!
//! ```text
//!   imported ──► scheduled ──► invited ──► enrolled ──► presynced ──► cutover_scheduled ──► migrating ──► migrated
//!      ▲            │             │  ▲          │                          ▲    ▲  ▲            │            │
//!      └────────────┘             ▼  │          └──────────────────────────┘    │  └────────────┼── rollback ┘
//!                          invitation_bounced                                   └────────── failed
//!
//!   any state but migrated ──► blocked ──► (back to the state it was blocked in)
//! ```
//!
//! - `imported`: known from the registry, not yet in a wave.
//! - `scheduled`: placed in an invitation wave.
//! - `invited`: mail 1 (the form link) has been sent.
//! - `invitation_bounced`: mail 1 came back (DSN); the helpdesk must act. A resend
//!   returns it to `invited`, a replanning to `scheduled`.
//! - `enrolled`: the manager filled the form.
//! - `presynced`: a first full copy reached the new platform (copies go on until cutover).
//! - `cutover_scheduled`: a cutover slot is assigned.
//! - `migrating`: the cutover is running (final copy, routing switch, mail 2).
//! - `migrated`: done; final for the campaign (never blocked), but a rollback
//!   (`bma cutover rollback`) takes it back to `cutover_scheduled`.
//! - `failed`: the cutover failed; it can be rescheduled (after a rollback).
//! - `blocked`: held by an operator; unblocking returns to the state it was held in.
//!
//! Every transition is recorded by the store as an event in the same
//! transaction as the new state; this module only decides what is legal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Known from the registry, in no wave yet.
    Imported,
    /// In an invitation wave.
    Scheduled,
    /// Mail 1 sent.
    Invited,
    /// Mail 1 bounced.
    InvitationBounced,
    /// Form received.
    Enrolled,
    /// First full copy done.
    Presynced,
    /// Cutover slot assigned.
    CutoverScheduled,
    /// Cutover running.
    Migrating,
    /// Migrated; final but for a rollback.
    Migrated,
    /// Cutover failed.
    Failed,
    /// Held by an operator.
    Blocked,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 11] = [
        State::Imported,
        State::Scheduled,
        State::Invited,
        State::InvitationBounced,
        State::Enrolled,
        State::Presynced,
        State::CutoverScheduled,
        State::Migrating,
        State::Migrated,
        State::Failed,
        State::Blocked,
    ];

    /// The name used in the store, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Imported => "imported",
            State::Scheduled => "scheduled",
            State::Invited => "invited",
            State::InvitationBounced => "invitation_bounced",
            State::Enrolled => "enrolled",
            State::Presynced => "presynced",
            State::CutoverScheduled => "cutover_scheduled",
            State::Migrating => "migrating",
            State::Migrated => "migrated",
            State::Failed => "failed",
            State::Blocked => "blocked",
        }
    }

    /// French label, for pages and emails.
    pub fn label_fr(self) -> &'static str {
        match self {
            State::Imported => "en attente de planification",
            State::Scheduled => "invitation planifiée",
            State::Invited => "invitation envoyée",
            State::InvitationBounced => "invitation non distribuée",
            State::Enrolled => "formulaire reçu",
            State::Presynced => "copie préalable effectuée",
            State::CutoverScheduled => "migration planifiée",
            State::Migrating => "migration en cours",
            State::Migrated => "migrée",
            State::Failed => "migration en échec",
            State::Blocked => "suspendue",
        }
    }

    /// Whether the campaign is done with this state: it cannot be
    /// blocked, and only a rollback leaves it.
    pub fn is_terminal(self) -> bool {
        self == State::Migrated
    }

    /// The states reachable from this one by a normal transition
    /// (blocking and unblocking are handled by [`check_transition`]).
    pub fn successors(self) -> &'static [State] {
        use State::*;
        match self {
            Imported => &[Scheduled],
            Scheduled => &[Imported, Invited],
            Invited => &[InvitationBounced, Enrolled, Scheduled],
            InvitationBounced => &[Invited, Scheduled],
            Enrolled => &[Presynced, CutoverScheduled],
            Presynced => &[CutoverScheduled],
            CutoverScheduled => &[Migrating, Enrolled],
            Migrating => &[Migrated, Failed, CutoverScheduled],
            // a rollback: routed to the legacy platform again, to be cut over another day
            Migrated => &[CutoverScheduled],
            Failed => &[CutoverScheduled, Enrolled],
            Blocked => &[],
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown state '{0}' (known: imported, scheduled, invited, invitation_bounced, enrolled, presynced, cutover_scheduled, migrating, migrated, failed, blocked)"
)]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<State, UnknownState> {
        State::ALL.into_iter().find(|st| st.as_str() == s.trim()).ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// A refused transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    /// `to` is not a successor of `from`.
    #[error("a mailbox cannot go from {from} to {to}{}", allowed_hint(*from))]
    NotAllowed {
        /// Current state.
        from: State,
        /// Requested state.
        to: State,
    },
    /// Unblocking must return to the state the mailbox was blocked in.
    #[error("a blocked mailbox returns to the state it was blocked in ({blocked_from}), not to {to}")]
    UnblockElsewhere {
        /// The state the mailbox was blocked in.
        blocked_from: State,
        /// Requested state.
        to: State,
    },
    /// Already in that state.
    #[error("the mailbox is already {0}")]
    Already(State),
}

fn allowed_hint(from: State) -> String {
    let next: Vec<&str> = from.successors().iter().map(|s| s.as_str()).collect();
    if from.is_terminal() {
        format!(": {from} is final (only a rollback takes it back to {})", next.join(", "))
    } else if from == State::Blocked {
        String::new()
    } else {
        format!(" (from {from}: {}, or blocked)", next.join(", "))
    }
}

/// Decides whether `from → to` is legal. `blocked_from` is the state a
/// blocked mailbox was held in (required when `from` is `Blocked`).
pub fn check_transition(from: State, to: State, blocked_from: Option<State>) -> Result<(), IllegalTransition> {
    if from == to {
        return Err(IllegalTransition::Already(from));
    }
    if from == State::Blocked {
        return match blocked_from {
            Some(prev) if prev == to => Ok(()),
            Some(prev) => Err(IllegalTransition::UnblockElsewhere { blocked_from: prev, to }),
            None => Err(IllegalTransition::NotAllowed { from, to }),
        };
    }
    if to == State::Blocked && !from.is_terminal() {
        return Ok(());
    }
    if from.successors().contains(&to) { Ok(()) } else { Err(IllegalTransition::NotAllowed { from, to }) }
}

/// Who caused a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Actor {
    /// The system itself (scheduler, worker, import).
    System(String),
    /// An operator of the migration team or the helpdesk, by login.
    Operator(String),
    /// A school manager, by identity-provider subject.
    Manager(String),
}

impl Actor {
    /// Compact text for the store and logs: `system:import`, `operator:jdoe`.
    pub fn to_text(&self) -> String {
        match self {
            Actor::System(n) => format!("system:{n}"),
            Actor::Operator(n) => format!("operator:{n}"),
            Actor::Manager(n) => format!("manager:{n}"),
        }
    }

    /// Parses [`Actor::to_text`]'s output; anything else is an operator name.
    pub fn from_text(s: &str) -> Actor {
        match s.split_once(':') {
            Some(("system", n)) => Actor::System(n.to_owned()),
            Some(("operator", n)) => Actor::Operator(n.to_owned()),
            Some(("manager", n)) => Actor::Manager(n.to_owned()),
            _ => Actor::Operator(s.to_owned()),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
        }
        assert!("nope".parse::<State>().is_err());
    }

    #[test]
    fn transitions_table() {
        use State::*;
        type Case = (State, State, Option<State>, Result<(), &'static str>);
        let cases: &[Case] = &[
            (Imported, Scheduled, None, Ok(())),
            (Scheduled, Invited, None, Ok(())),
            (Invited, Enrolled, None, Ok(())),
            (Invited, InvitationBounced, None, Ok(())),
            (InvitationBounced, Invited, None, Ok(())),
            (Enrolled, Presynced, None, Ok(())),
            (Presynced, CutoverScheduled, None, Ok(())),
            (CutoverScheduled, Migrating, None, Ok(())),
            (Migrating, Migrated, None, Ok(())),
            (Migrating, Failed, None, Ok(())),
            (Failed, CutoverScheduled, None, Ok(())),
            (Migrated, CutoverScheduled, None, Ok(())),
            (Enrolled, Blocked, None, Ok(())),
            (Blocked, Enrolled, Some(Enrolled), Ok(())),
            (
                Blocked,
                Migrated,
                Some(Enrolled),
                Err("a blocked mailbox returns to the state it was blocked in (enrolled), not to migrated"),
            ),
            (
                Imported,
                Migrated,
                None,
                Err("a mailbox cannot go from imported to migrated (from imported: scheduled, or blocked)"),
            ),
            (
                Migrated,
                Blocked,
                None,
                Err(
                    "a mailbox cannot go from migrated to blocked: migrated is final (only a rollback takes it back to cutover_scheduled)",
                ),
            ),
            (Invited, Invited, None, Err("the mailbox is already invited")),
        ];
        for (from, to, blocked_from, expected) in cases {
            let got = check_transition(*from, *to, *blocked_from).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_owned), "{from} -> {to}");
        }
    }

    #[test]
    fn every_non_terminal_state_reaches_migrated() {
        // Breadth-first search over successors: no dead ends but the terminal state.
        for start in State::ALL.into_iter().filter(|s| *s != State::Blocked) {
            let mut seen = vec![start];
            let mut i = 0;
            while i < seen.len() {
                for n in seen[i].successors() {
                    if !seen.contains(n) {
                        seen.push(*n);
                    }
                }
                i += 1;
            }
            assert!(seen.contains(&State::Migrated), "{start} cannot reach migrated");
        }
    }

    #[test]
    fn actor_text_round_trip() {
        for a in [Actor::System("import".into()), Actor::Operator("jdoe".into()), Actor::Manager("sub-1".into())] {
            assert_eq!(Actor::from_text(&a.to_text()), a);
        }
    }
}
