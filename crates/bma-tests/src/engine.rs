//! The campaign engine on the lab, for the tests that run it in process
//! (`tests/it/campaign.rs`, `tests/it/trust.rs`, `tests/it/outbox_workers.rs`): the
//! lab's IMAP platforms as the engine reaches them, its SMTP relay, the
//! engine's settings, which each test changes with struct update syntax,
//! and the default campaign's waves planned on a store.

use std::time::Duration;

use bma_core::Actor;
use bma_core::planner::{WavePlan, plan_waves};
use bma_core::settings::Settings;
use bma_engine::{EngineSettings, PlatformAccess, PresyncSettings};
use bma_imap::{Config, Secret, Security};
use bma_mail::{SmtpConfig, SmtpSender, SmtpTls};
use bma_store::Store;
use time::OffsetDateTime;

use crate::lab_file;

/// A lab platform (`legacy` or `new`), reached with the lab's master user.
pub fn lab_platform(name: &str) -> PlatformAccess {
    let lab = lab_file("lab.json");
    let host = lab[name]["host"].as_str().expect("host");
    let port = lab[name]["imap_port"].as_u64().expect("port") as u16;
    PlatformAccess {
        config: Config::new(host, port).with_security(Security::None),
        admin: lab["master_user"].as_str().expect("master").to_owned(),
        password: Secret::new(lab["master_password"].as_str().expect("password")),
        sieve: Some(crate::sieve::lab_sieve_config(name)),
    }
}

/// Presync on at any hour, any day, without a byte rate: `parallel`
/// copies at once sharing `max_connections` pairs per server.
pub fn presync_always(parallel: usize, max_connections: usize) -> PresyncSettings {
    PresyncSettings {
        enabled: true,
        parallel,
        max_connections,
        max_bytes_per_second: 0,
        hours: (0, 24),
        weekends: true,
    }
}

/// The lab's Postfix, plain SMTP.
pub fn lab_smtp() -> SmtpSender {
    let lab = lab_file("lab.json");
    SmtpSender::new(&SmtpConfig {
        host: lab["smtp"]["host"].as_str().expect("host").to_owned(),
        port: lab["smtp"]["port"].as_u64().expect("port") as u16,
        tls: SmtpTls::None,
        timeout: Duration::from_secs(10),
    })
    .expect("an SMTP sender")
}

/// The engine's settings on the lab: the default campaign, the portal at
/// `http://127.0.0.1:8080`, the legacy platform only, no rate limit, no
/// presync, no forwarding audit before mail 1; `bounces` is the bounce mailbox (one per test, since each
/// campaign marks what it reads there as read).
pub fn lab_engine_settings(bounces: &str) -> EngineSettings {
    EngineSettings {
        settings: Settings::default(),
        portal_base_url: "http://127.0.0.1:8080".into(),
        login_domain: Some("127.0.0.1".into()),
        bounce_address: bounces.to_owned(),
        message_id_domain: "bma.test".into(),
        reply_days: 14,
        team_address: "migrationbma@bma.test".into(),
        daily_report_hour: None,
        max_per_minute: 0,
        legacy: Some(lab_platform("legacy")),
        new: None,
        presync: PresyncSettings {
            enabled: false,
            parallel: 1,
            max_connections: 1,
            max_bytes_per_second: 0,
            hours: (0, 24),
            weekends: true,
        },
        switch: None,
        audit_before_mail1: false,
    }
}

/// The default campaign's waves planned for the store's candidates and
/// applied at `t0` by the operator `test`.
pub async fn plan_default_waves(store: &Store, t0: OffsetDateTime) -> WavePlan {
    let c = Settings::default().campaign;
    let rules = c.wave_rules().expect("the default campaign's weekday");
    let candidates = store.planning_candidates().await.expect("planning candidates");
    let plan = plan_waves(&rules, c.start, &candidates).expect("a wave plan");
    store.apply_wave_plan(&plan, &Actor::Operator("test".into()), t0).await.expect("apply the wave plan");
    plan
}
