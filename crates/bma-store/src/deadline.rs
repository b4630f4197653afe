//! The deadline watch: every mailbox without a delivered mail 1, and why.
//!
//! Read only; what is sent about it is the engine's.

use bma_core::lifecycle::State;
use serde::Serialize;
use sqlx::Row;

use crate::mailbox::{parse_date, parse_state};
use crate::{Store, StoreError};

/// A mailbox without a delivered mail 1, for the deadline watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undelivered {
    /// Address.
    pub address: String,
    /// Establishment name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Why it has no delivered mail 1, in words.
    pub why: String,
}

impl Store {
    /// Every mailbox without a delivered mail 1: not invited yet, excluded,
    /// bounced, or invited but its email not accepted by the relay.
    pub async fn undelivered_invitations(&self) -> Result<Vec<Undelivered>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.address, m.name, m.state, m.blocked_from, m.excluded, m.wave, \
             (SELECT o.state FROM outbox o WHERE o.mailbox_id = m.id AND o.kind = 'invitation' \
              ORDER BY CASE WHEN o.state = 'sent' THEN 0 ELSE 1 END, o.id DESC LIMIT 1) AS mail1 \
             FROM mailboxes m ORDER BY m.address",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let state = parse_state(&r.try_get::<String, _>("state")?)?;
            let blocked_from: Option<String> = r.try_get("blocked_from")?;
            let effective = match (state, blocked_from) {
                (State::Blocked, Some(b)) => parse_state(&b)?,
                _ => state,
            };
            let mail1: Option<String> = r.try_get("mail1")?;
            let excluded = r.try_get::<i64, _>("excluded")? != 0;
            let wave = parse_date(r.try_get("wave")?)?;
            let why = match effective {
                State::Imported if excluded => "excluded from the waves".to_owned(),
                State::Imported => "in no wave".to_owned(),
                State::Scheduled => {
                    format!("planned for the wave of {}, not sent", wave.map(|d| d.to_string()).unwrap_or_default())
                }
                State::InvitationBounced => "mail 1 bounced".to_owned(),
                State::Invited if mail1.as_deref() != Some("sent") => {
                    format!("mail 1 not accepted by the relay ({})", mail1.as_deref().unwrap_or("not queued"))
                }
                _ => continue,
            };
            let why = if state == State::Blocked { format!("{why}; blocked by an operator") } else { why };
            out.push(Undelivered { address: r.try_get("address")?, name: r.try_get("name")?, state, why });
        }
        Ok(out)
    }
}
