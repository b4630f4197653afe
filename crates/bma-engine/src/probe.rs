//! Route confirmation by a probe: after the relay's table says where a
//! recipient's mail goes, a message sent through the relay itself (the
//! one the outbox uses) must land on that side before the step is done.
//!
//! The probe is a small message to the BMA with a Message-ID of its own,
//! `probe.<mailbox id>.<unique>@<domain>`, and an `X-BMA-Probe` header;
//! it is waited for in the INBOX of the side the route names (read with
//! the platform's master user, like mail 2), at most a bounded time (then
//! a clear error, and the step is retried like any step), and expunged
//! there as soon as it landed, so the manager never sees it.
//!
//! Idempotent on resume: `unique` is the caller's (the cutover attempt's
//! for the `route` step), so a run killed after sending finds its probe
//! already there and does not send another; and every probe of the
//! mailbox found in that INBOX (one a killed run sent with another
//! `unique`, such as a rollback's) is expunged with it.

use std::time::{Duration, Instant};

use bma_platform::Route;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::send::{expunge_from_inbox, inbox_uids_where};
use crate::{Engine, EngineError};

/// How long a probe may take to land, by default.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// How often its INBOX is looked at meanwhile.
const PROBE_POLL: Duration = Duration::from_millis(250);

impl Engine {
    /// Confirms that mail for `address` reaches the `route` side (`new`
    /// or `legacy`): a probe sent through the relay, waited for in that
    /// side's INBOX for at most `timeout`, then expunged there with any
    /// earlier probe of the mailbox. Returns what the step records.
    pub async fn probe_route(
        &self,
        address: &str,
        route: Route,
        unique: &str,
        timeout: Duration,
        now: OffsetDateTime,
    ) -> Result<serde_json::Value, EngineError> {
        let side = match route {
            Route::New => self.settings.new.as_ref(),
            Route::Legacy => self.settings.legacy.as_ref(),
            Route::Held => None,
        }
        .ok_or_else(|| EngineError::Incomplete(format!("no platform to probe for the route {}", route.as_str())))?;
        let address = self.address(address)?;
        let mailbox = self.store.mailbox(&address).await?;
        let user = address.as_str();
        let unique: String = unique.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
        let prefix = format!("<probe.{}.", mailbox.id);
        let message_id = format!("probe.{}.{unique}@{}", mailbox.id, self.settings.message_id_domain);
        let ours = format!("<{message_id}>");
        let started = Instant::now();
        let mut landed = inbox_uids_where(side, user, |id| id == ours).await?;
        let sent = landed.is_empty();
        if sent {
            let from = &self.settings.settings.sender.address;
            let date = now.format(&Rfc2822).map_err(|e| EngineError::Encode(e.to_string()))?;
            let raw = format!(
                "From: <{from}>\r\nTo: <{user}>\r\nSubject: bma route probe\r\nDate: {date}\r\n\
                 Message-ID: {ours}\r\nX-BMA-Probe: {unique}\r\nAuto-Submitted: auto-generated\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
                 Route confirmation of a mailbox cutover; removed on arrival.\r\n"
            );
            let email = bma_mail::OutgoingEmail {
                envelope: bma_mail::Envelope {
                    from: bma_mail::verp(&self.settings.bounce_address, user),
                    to: vec![user.to_owned()],
                },
                raw: raw.into_bytes(),
                message_id: message_id.clone(),
            };
            self.sender.send(&email).await?;
        }
        while landed.is_empty() {
            if started.elapsed() >= timeout {
                return Err(EngineError::Incomplete(format!(
                    "{user}: mail routed to the {} platform is not confirmed: the probe {ours} sent through the relay \
                     did not reach that INBOX within {} s (look at the relay's queue, `postqueue -p`)",
                    route.as_str(),
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(PROBE_POLL).await;
            landed = inbox_uids_where(side, user, |id| id == ours).await?;
        }
        let probes = inbox_uids_where(side, user, |id| id.starts_with(&prefix)).await?;
        expunge_from_inbox(side, user, &probes).await?;
        tracing::info!(address = %user, route = route.as_str(), ms = started.elapsed().as_millis() as u64, "route confirmed by a probe");
        Ok(serde_json::json!({
            "probe": message_id, "sent": sent, "removed": probes.len(),
            "landed_ms": started.elapsed().as_millis() as u64,
        }))
    }
}
