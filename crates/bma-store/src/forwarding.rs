//! The forwarding audit's findings: what each mailbox's Sieve scripts on
//! the legacy platform do with its mail (redirect, notify, vacation…),
//! read by `bma audit forwarding`.
//!
//! Rules: one audit of a mailbox is one transaction that replaces its
//! previous audit whole (the audit row, every finding) and writes a
//! `forwarding_audited` event with its counts; a script that could not
//! be fetched or read is a finding of kind [`FindingKind::Unreadable`]
//! with the error, never left out; kinds and reaches are closed sets
//! stored by name, an unknown name read back is [`StoreError::Corrupt`].

use bma_core::{Actor, Address, EventKind};
use sqlx::Row;
use time::OffsetDateTime;

use crate::events::{lock_mailbox, note};
use crate::{Store, StoreError, from_millis, to_millis};

macro_rules! stored_names {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value of a stored name.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_names! {
    /// What a script does that the audit keeps.
    FindingKind {
        /// `redirect` (with `:copy` or not).
        Redirect = "redirect",
        /// `notify` (a mailto notice of the message).
        Notify = "notify",
        /// Dovecot's `pipe`.
        Pipe = "pipe",
        /// Dovecot's `execute`.
        Execute = "execute",
        /// `include` of another script.
        Include = "include",
        /// `vacation`: an automatic answer to the sender.
        Vacation = "vacation",
        /// `reject`/`ereject`: a refusal sent back.
        Reject = "reject",
        /// Dovecot's `report`.
        Report = "report",
        /// A script that could not be fetched or read: the error says why.
        Unreadable = "unreadable",
    }
}

stored_names! {
    /// Where mail goes by a finding (as `bma-sieve` judges it).
    Reach {
        /// It stays in the box.
        Stays = "stays",
        /// To an address of the organisation.
        Internal = "internal",
        /// Outside the organisation.
        External = "external",
        /// Written with a variable that cannot be known without a message.
        Dynamic = "dynamic",
        /// Back to the sender (vacation, reject).
        Sender = "sender",
        /// To a program (pipe, execute): nobody can tell.
        Opaque = "opaque",
    }
}

/// One finding of an audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingFinding {
    /// The script's name.
    pub script: String,
    /// Whether the script is the active one, or included by it.
    pub active: bool,
    /// What it does.
    pub kind: FindingKind,
    /// Where mail goes; `None` for an unreadable script.
    pub reach: Option<Reach>,
    /// The address, URI, program or script named (empty if none).
    pub target: String,
    /// Its line in the script (0 for an unreadable script).
    pub line: u32,
    /// `redirect :copy`, `notify`: a copy stays in the box.
    pub copy: bool,
    /// Under an `if`.
    pub conditional: bool,
    /// The action as written (`redirect :copy`), or the error of an unreadable script.
    pub detail: String,
}

/// A mailbox's audit: its scripts and findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingAudit {
    /// When.
    pub audited_at: OffsetDateTime,
    /// Every script of the box.
    pub scripts: u32,
    /// The active script's name, if one is.
    pub active_script: Option<String>,
    /// What was found, by script and line.
    pub findings: Vec<ForwardingFinding>,
}

impl ForwardingAudit {
    /// The findings that send mail outside the organisation (or may: dynamic).
    pub fn external(&self) -> impl Iterator<Item = &ForwardingFinding> {
        self.findings.iter().filter(|f| matches!(f.reach, Some(Reach::External | Reach::Dynamic)))
    }

    /// Whether the box forwards outside from a script that runs (the active one).
    pub fn forwards_outside(&self) -> bool {
        self.external().any(|f| f.active && matches!(f.kind, FindingKind::Redirect | FindingKind::Notify))
    }

    /// How many scripts could not be read.
    pub fn unreadable(&self) -> usize {
        self.findings.iter().filter(|f| f.kind == FindingKind::Unreadable).count()
    }

    /// What the manager is told (mail 1, the reminders, the status page):
    /// where the running scripts forward outside, masked
    /// (`bma_core::form::mask_forward_target`), each once in the order
    /// found; and whether one forwards to an address the script computes.
    pub fn announced(&self) -> Announced {
        let mut out = Announced::default();
        for f in self.external().filter(|f| f.active && matches!(f.kind, FindingKind::Redirect | FindingKind::Notify)) {
            for target in f.target.split(", ") {
                match bma_core::form::mask_forward_target(target) {
                    Some(masked) if !out.targets.contains(&masked) => out.targets.push(masked),
                    Some(_) => {}
                    None => out.computed = true,
                }
            }
        }
        out
    }
}

/// The campaign's forwarding in figures: what the last audits found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForwardingSummary {
    /// Mailboxes audited.
    pub audited: u64,
    /// Mailboxes whose running scripts forward outside.
    pub forwarding_outside: u64,
    /// Those, by target domain (a box counted once per domain; a target
    /// the script computes is `(calculée)`).
    pub domains: std::collections::BTreeMap<String, u64>,
    /// Mailboxes with a script that could not be read (or whose scripts could not be listed).
    pub with_unreadable: u64,
}

/// The domain of a forwarding target (an address or a `mailto:` URI), lower case.
pub fn target_domain(target: &str) -> Option<String> {
    let bare = target.trim().trim_start_matches("mailto:");
    let bare = bare.split('?').next().unwrap_or(bare);
    let domain = bare.rsplit_once('@')?.1.trim_end_matches('>').trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty() && !domain.contains(['$', '{', '}', ' '])).then_some(domain)
}

/// What a box's manager is told of its forwarding ([`ForwardingAudit::announced`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Announced {
    /// Masked addresses (`m***@gmail.com`).
    pub targets: Vec<String>,
    /// A target the script computes (a variable).
    pub computed: bool,
}

impl Announced {
    /// Nothing to say.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && !self.computed
    }
}

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown forwarding {what} {text:?}"))
}

impl Store {
    /// Replaces the audit of `address` with `audit`, with its event, in one transaction.
    pub async fn record_forwarding_audit(
        &self,
        address: &Address,
        audit: &ForwardingAudit,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let (id, _) = lock_mailbox(&mut tx, address).await?;
        let at = to_millis(audit.audited_at);
        sqlx::query("DELETE FROM forwarding_findings WHERE mailbox_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM forwarding_audits WHERE mailbox_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO forwarding_audits (mailbox_id, audited_at, scripts, active_script) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(at)
        .bind(i64::from(audit.scripts))
        .bind(audit.active_script.clone())
        .execute(&mut *tx)
        .await?;
        for (n, f) in audit.findings.iter().enumerate() {
            sqlx::query(
                "INSERT INTO forwarding_findings (mailbox_id, seq, script, active, kind, reach, target, line, \
                 keeps_copy, conditional, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(id)
            .bind(n as i64)
            .bind(f.script.clone())
            .bind(i64::from(f.active))
            .bind(f.kind.as_str())
            .bind(f.reach.map(Reach::as_str))
            .bind(f.target.clone())
            .bind(i64::from(f.line))
            .bind(i64::from(f.copy))
            .bind(i64::from(f.conditional))
            .bind(f.detail.clone())
            .execute(&mut *tx)
            .await?;
        }
        let external: Vec<&str> = audit.external().map(|f| f.target.as_str()).collect();
        let details = serde_json::json!({
            "scripts": audit.scripts,
            "active_script": audit.active_script,
            "findings": audit.findings.len(),
            "external": external,
            "unreadable": audit.unreadable(),
            "forwards_outside": audit.forwards_outside(),
        });
        let reason = if audit.forwards_outside() {
            "forwards mail outside the organisation"
        } else if audit.unreadable() > 0 {
            "a script could not be read"
        } else {
            "no forwarding outside the organisation"
        };
        note(&mut tx, Some(id), audit.audited_at, actor, EventKind::ForwardingAudited, reason, details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The campaign's forwarding in figures, from the last audit of each box.
    pub async fn forwarding_summary(&self) -> Result<ForwardingSummary, StoreError> {
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM forwarding_audits").fetch_one(self.pool()).await?;
        let with_unreadable: i64 =
            sqlx::query_scalar("SELECT COUNT(DISTINCT mailbox_id) FROM forwarding_findings WHERE kind = 'unreadable'")
                .fetch_one(self.pool())
                .await?;
        let rows = sqlx::query(
            "SELECT mailbox_id, target FROM forwarding_findings WHERE active = 1 \
             AND kind IN ('redirect', 'notify') AND reach IN ('external', 'dynamic') ORDER BY mailbox_id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut per_box: std::collections::BTreeMap<i64, std::collections::BTreeSet<String>> = Default::default();
        for r in rows {
            let target: String = r.try_get("target")?;
            let domains = per_box.entry(r.try_get("mailbox_id")?).or_default();
            for t in target.split(", ") {
                domains.insert(target_domain(t).unwrap_or_else(|| "(calculée)".to_owned()));
            }
        }
        let mut summary = ForwardingSummary {
            audited: u64::try_from(audited).unwrap_or(0),
            forwarding_outside: per_box.len() as u64,
            with_unreadable: u64::try_from(with_unreadable).unwrap_or(0),
            ..ForwardingSummary::default()
        };
        for domain in per_box.into_values().flatten() {
            *summary.domains.entry(domain).or_insert(0) += 1;
        }
        Ok(summary)
    }

    /// The last audit of `address`, if it was audited.
    pub async fn forwarding_audit(&self, address: &Address) -> Result<Option<ForwardingAudit>, StoreError> {
        let id: i64 = sqlx::query_scalar("SELECT id FROM mailboxes WHERE address = $1")
            .bind(address.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(address.to_string()))?;
        self.forwarding_audit_of(id).await
    }

    /// The last audit of the mailbox `id`, if it was audited.
    pub async fn forwarding_audit_of(&self, id: i64) -> Result<Option<ForwardingAudit>, StoreError> {
        let Some(row) =
            sqlx::query("SELECT audited_at, scripts, active_script FROM forwarding_audits WHERE mailbox_id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT script, active, kind, reach, target, line, keeps_copy, conditional, detail FROM forwarding_findings \
             WHERE mailbox_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let mut findings = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.try_get("kind")?;
            let reach: Option<String> = r.try_get("reach")?;
            findings.push(ForwardingFinding {
                script: r.try_get("script")?,
                active: r.try_get::<i64, _>("active")? != 0,
                kind: FindingKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
                reach: match reach {
                    None => None,
                    Some(t) => Some(Reach::parse(&t).ok_or_else(|| corrupt("reach", &t))?),
                },
                target: r.try_get("target")?,
                line: u32::try_from(r.try_get::<i64, _>("line")?).unwrap_or(0),
                copy: r.try_get::<i64, _>("keeps_copy")? != 0,
                conditional: r.try_get::<i64, _>("conditional")? != 0,
                detail: r.try_get("detail")?,
            });
        }
        Ok(Some(ForwardingAudit {
            audited_at: from_millis(row.try_get("audited_at")?),
            scripts: u32::try_from(row.try_get::<i64, _>("scripts")?).unwrap_or(0),
            active_script: row.try_get("active_script")?,
            findings,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [
            FindingKind::Redirect,
            FindingKind::Notify,
            FindingKind::Pipe,
            FindingKind::Execute,
            FindingKind::Include,
            FindingKind::Vacation,
            FindingKind::Reject,
            FindingKind::Report,
            FindingKind::Unreadable,
        ] {
            assert_eq!(FindingKind::parse(k.as_str()), Some(k));
        }
        for r in [Reach::Stays, Reach::Internal, Reach::External, Reach::Dynamic, Reach::Sender, Reach::Opaque] {
            assert_eq!(Reach::parse(r.as_str()), Some(r));
        }
        assert_eq!(FindingKind::parse("Redirect"), None);
    }

    #[test]
    fn announced_is_what_runs_outside_masked_once() {
        let f = |active: bool, kind: FindingKind, reach: Reach, target: &str| ForwardingFinding {
            script: "s".into(),
            active,
            kind,
            reach: Some(reach),
            target: target.into(),
            line: 1,
            copy: false,
            conditional: false,
            detail: String::new(),
        };
        let audit = ForwardingAudit {
            audited_at: OffsetDateTime::UNIX_EPOCH,
            scripts: 2,
            active_script: Some("s".into()),
            findings: vec![
                f(true, FindingKind::Redirect, Reach::External, "marie@gmail.com"),
                f(true, FindingKind::Redirect, Reach::External, "Marc@Gmail.com, mo@skynet.be"),
                f(true, FindingKind::Notify, Reach::External, "mailto:z@proximus.be?subject=x"),
                f(false, FindingKind::Redirect, Reach::External, "old@hotmail.com"),
                f(true, FindingKind::Redirect, Reach::Internal, "ec000001@adm.cfwb.be"),
                f(true, FindingKind::Vacation, Reach::Sender, ""),
            ],
        };
        let a = audit.announced();
        assert_eq!(a.targets, ["m***@gmail.com", "M***@gmail.com", "m***@skynet.be", "z***@proximus.be"]);
        assert!(!a.computed);
        let dynamic = ForwardingAudit {
            findings: vec![f(true, FindingKind::Redirect, Reach::Dynamic, "${to}")],
            ..audit.clone()
        };
        assert_eq!(dynamic.announced(), Announced { targets: vec![], computed: true });
        let quiet = ForwardingAudit { findings: vec![], ..audit };
        assert!(quiet.announced().is_empty());
    }
}
