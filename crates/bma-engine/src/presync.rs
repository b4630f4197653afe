//! Presync: invited and enrolled mailboxes are copied to the new platform
//! in the background with the copy engine (`bma-sync`, its state in the
//! campaign store), within the allowed hours, a cap on connections per
//! server and on bytes per second shared by all copies, and kept up to date until
//! their cutover. Removals on the source are carried (the target is a
//! mirror until cutover). A copy that does not complete fails its job,
//! which the queue retries with backoff; when it is dead, the mailbox is
//! flagged for the operators.
//!
//! A mailbox the legacy platform does not know is not a copy to retry: the
//! master user's login on behalf of it is refused as not authorized
//! (Dovecot answers `[AUTHORIZATIONFAILED]` for a user its passdb lacks,
//! `[AUTHENTICATIONFAILED]` for a wrong master password). A copy refused so
//! is checked against the legacy platform alone, and if that login is
//! refused as well the copy fails with [`EngineError::UnknownOnLegacy`], a
//! permanent failure: its job dies at once and the mailbox is flagged
//! `legacy_unknown` ("unknown on the legacy platform"), once.
//!
//! A new platform that stores messages other than it was given (Cyrus'
//! `munge8bit` replaces 8-bit header bytes) is not a copy to retry either:
//! when the altered messages are the copy's only shortfall, the copy is
//! recorded (every message is there) and the mailbox flagged
//! `target_altered`, with the count and the setting to change as the probe
//! named it.

use bma_core::{AttentionReason, PresyncDetails};
use bma_sync::{Options, Outcome};
use time::{OffsetDateTime, Weekday};

use crate::{Engine, EngineError, PlatformAccess, PresyncSettings};

impl PresyncSettings {
    /// Whether copies may run at `now` (UTC).
    pub fn allowed_at(&self, now: OffsetDateTime) -> bool {
        if self.weekends && matches!(now.weekday(), Weekday::Saturday | Weekday::Sunday) {
            return true;
        }
        let (from, until) = self.hours;
        let h = now.hour();
        match from.cmp(&until) {
            std::cmp::Ordering::Less => (from..until).contains(&h),
            std::cmp::Ordering::Greater => h >= from || h < until,
            std::cmp::Ordering::Equal => false,
        }
    }

    /// Parses `20-7` (from 20:00 to 07:00) or `0-24`.
    pub fn parse_hours(s: &str) -> Result<(u8, u8), String> {
        let bad = || format!("'{s}' is not an hour range like 20-7 or 0-24");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let a: u8 = a.trim().parse().map_err(|_| bad())?;
        let b: u8 = b.trim().parse().map_err(|_| bad())?;
        if a > 23 || b > 24 || a == b {
            return Err(bad());
        }
        Ok((a, b))
    }
}

impl Engine {
    /// Whether presync is configured and allowed at `now`.
    pub fn presync_due(&self, now: OffsetDateTime) -> bool {
        let p = &self.settings.presync;
        p.enabled && self.settings.legacy.is_some() && self.settings.new.is_some() && p.allowed_at(now)
    }

    /// Copies one mailbox from the legacy platform to the new one and
    /// records it (the first full copy of an enrolled mailbox makes it
    /// `presynced`). An incomplete copy is an error, so the job is retried.
    pub async fn presync(&self, address: &str, now: OffsetDateTime) -> Result<bma_sync::Summary, EngineError> {
        let (Some(legacy), Some(new)) = (&self.settings.legacy, &self.settings.new) else {
            return Err(EngineError::Incomplete("presync needs [legacy] and [new] platforms".to_owned()));
        };
        let options = Options {
            // Each copy its share of the connection cap, which all share.
            max_connections: bma_sync::share(self.settings.presync.max_connections, self.settings.presync.parallel),
            delete: true,
            connection_slots: Some(self.presync_slots.clone()),
            rate: self.presync_rate.clone(),
            ..Options::default()
        };
        let summary = match bma_sync::run(
            &legacy.endpoint(address),
            &new.endpoint(address),
            self.store.clone(),
            &options,
        )
        .await
        {
            Ok(summary) => summary,
            Err(e) if refused_authorization(&e) && !known_on(legacy, address).await? => {
                return Err(EngineError::UnknownOnLegacy(address.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        for w in &summary.warnings {
            tracing::warn!(address, "presync: {w}");
        }
        // Every message is on the new platform, but it changed some: not a
        // copy to retry (it would change them again) but a setting of the
        // new platform for a human to change, named in the flag.
        let altered_only = summary.only_altered();
        if summary.outcome != Outcome::Complete && !altered_only {
            return Err(EngineError::Incomplete(format!(
                "{address}: {:?}, {} copied, {} refused, {} altered by the target, {} folder errors",
                summary.outcome, summary.copied, summary.skipped, summary.altered, summary.errors
            )));
        }
        let figures = PresyncDetails {
            copied: summary.copied,
            copied_bytes: summary.copied_bytes,
            elapsed_ms: summary.elapsed_ms,
            folders: summary.folders.len(),
        };
        let mailbox = self.address(address)?;
        self.store.record_presync(&mailbox, &figures, &self.actor(), now).await?;
        if altered_only {
            let why = altered_reason(&summary);
            let folders: serde_json::Map<String, serde_json::Value> = summary
                .folders
                .iter()
                .filter(|f| !f.altered.is_empty())
                .map(|f| (f.source.clone(), serde_json::json!(f.altered.len())))
                .collect();
            let details = serde_json::json!({ "altered": summary.altered, "folders": folders });
            self.store.flag(&mailbox, AttentionReason::TargetAltered, &why, details, &self.actor(), now).await?;
        }
        Ok(summary)
    }
}

/// Why a mailbox is flagged `target_altered`: how many messages, and the
/// setting to change as the probe named it (else where to look).
fn altered_reason(summary: &bma_sync::Summary) -> String {
    let remedy = if summary.warnings.is_empty() {
        "compare them with `bma sync --json` and the new platform's settings".to_owned()
    } else {
        summary.warnings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    };
    format!("the new platform altered {} messages it was given: {remedy}", summary.altered)
}

/// Whether a copy failed because a master user's login on behalf of the
/// mailbox was refused as not authorized (on either side: both log in at once).
fn refused_authorization(e: &bma_sync::Error) -> bool {
    matches!(e, bma_sync::Error::Imap { source, .. } if is_unauthorized(source))
}

fn is_unauthorized(e: &bma_imap::Error) -> bool {
    matches!(e, bma_imap::Error::AuthFailed { code: Some(bma_imap::ResponseCode::AuthorizationFailed), .. })
}

/// Whether `platform` knows `address`: its master user may log in on behalf of it.
async fn known_on(platform: &PlatformAccess, address: &str) -> Result<bool, EngineError> {
    match platform.session(address).await {
        Ok(client) => {
            let _ = client.logout().await;
            Ok(true)
        }
        Err(e) if is_unauthorized(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use crate::PresyncSettings;

    #[test]
    fn allowed_hours() {
        let nights = PresyncSettings {
            enabled: true,
            parallel: 1,
            max_connections: 1,
            max_bytes_per_second: 0,
            hours: (20, 7),
            weekends: true,
        };
        for (at, ok) in [
            (datetime!(2024-04-22 21:00 UTC), true),  // Monday night
            (datetime!(2024-04-23 06:59 UTC), true),  // Tuesday early
            (datetime!(2024-04-23 07:00 UTC), false), // office hours
            (datetime!(2024-04-23 12:00 UTC), false),
            (datetime!(2024-04-27 12:00 UTC), true), // Saturday
        ] {
            assert_eq!(nights.allowed_at(at), ok, "{at}");
        }
        let always = PresyncSettings { hours: (0, 24), weekends: false, ..nights };
        assert!(always.allowed_at(datetime!(2024-04-23 12:00 UTC)));
        assert_eq!(PresyncSettings::parse_hours("20-7"), Ok((20, 7)));
        assert_eq!(PresyncSettings::parse_hours(" 0 - 24 "), Ok((0, 24)));
        for bad in ["", "7", "25-3", "3-3", "a-b"] {
            assert!(PresyncSettings::parse_hours(bad).is_err(), "{bad}");
        }
    }
}
