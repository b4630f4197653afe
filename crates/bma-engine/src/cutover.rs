//! Cutover slots for enrolled mailboxes, and the helpdesk flags of the
//! mailboxes whose window closes without a form.
//!
//! The plan itself is `bma_core::cutover`; this module feeds it from the
//! store (slots already given count against their week) and applies it,
//! one mailbox and its event at a time.

use bma_core::AttentionReason;
use bma_core::cutover::{CutoverCandidate, CutoverPlan, CutoverRules, plan_cutovers};
use time::{Duration, OffsetDateTime};

use crate::{Engine, EngineError};

impl Engine {
    /// The cutover rules of the campaign (the weekday is validated with the settings).
    pub fn cutover_rules(&self) -> CutoverRules {
        self.settings.settings.campaign.cutover_rules()
    }

    /// Plans the cutover slots of every enrolled mailbox without one, from
    /// `now`; with `apply`, gives each its slot (state `cutover_scheduled`)
    /// and flags those that cannot be placed.
    pub async fn plan_cutovers(&self, now: OffsetDateTime, apply: bool) -> Result<CutoverPlan, EngineError> {
        let rows = self.store.cutover_rows().await?;
        let candidates: Vec<CutoverCandidate> = rows
            .iter()
            .map(|r| CutoverCandidate {
                address: r.address.clone(),
                invited_on: r.invited_at.date(),
                bytes: r.usage_bytes.unwrap_or(0),
                not_before: r.enrolled_at.map(|d| d.date()),
                slot: r.cutover_on,
            })
            .collect();
        // Slots are given from tomorrow: a cutover needs its final copy prepared.
        let plan = plan_cutovers(&self.cutover_rules(), now.date() + Duration::days(1), &candidates);
        if apply {
            for (address, day) in &plan.slots {
                self.store.schedule_cutover(&self.address(address)?, *day, &self.actor(), now).await?;
            }
            for u in &plan.unplaced {
                let details = serde_json::json!({ "window_closes": u.window_closes.to_string() });
                let address = self.address(&u.address)?;
                self.store
                    .flag(&address, AttentionReason::NoCutoverSlot, &u.reason, details, &self.actor(), now)
                    .await?;
            }
        }
        Ok(plan)
    }

    /// Flags invited mailboxes whose cutover window has closed without a
    /// form, for the helpdesk. Returns how many were flagged now.
    pub async fn flag_closed_windows(&self, now: OffsetDateTime) -> Result<usize, EngineError> {
        let weeks = i64::from(self.settings.settings.campaign.cutover_max_weeks);
        let late = self.store.invited_before(now - Duration::weeks(weeks)).await?;
        let mut flagged = 0;
        for address in late {
            let why = format!("no form {weeks} weeks after mail 1: the cutover window has closed");
            let (address, details) = (self.address(&address)?, serde_json::json!({}));
            if self.store.flag(&address, AttentionReason::WindowClosed, &why, details, &self.actor(), now).await? {
                flagged += 1;
            }
        }
        Ok(flagged)
    }
}
