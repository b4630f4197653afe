//! Mailboxes and their event log.
//!
//! The registry import and every lifecycle transition write the mailbox row
//! and its event in one transaction. Events of the import as a whole (a
//! summary with counts and the missing addresses) have no mailbox.

use std::collections::BTreeMap;

use bma_core::lifecycle::{self, Actor, State};
use bma_core::registry::{ImportPlan, KnownMailbox, RegistryRow};
use bma_core::{Address, EventKind, MailboxKind};
use serde::Serialize;
use sqlx::Row;
use time::{Date, OffsetDateTime};

use crate::cols::Cols;
use crate::events::{self, Event};
use crate::transition::{self, Also, Transition};
use crate::{Store, StoreError, from_millis, to_millis};

/// A mailbox as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailboxRecord {
    /// Store id.
    pub id: i64,
    /// Address.
    pub address: String,
    /// Establishment or organising authority.
    pub kind: MailboxKind,
    /// FASE number.
    pub fase: u32,
    /// Name.
    pub name: String,
    /// Quota on the legacy platform, bytes.
    pub quota_bytes: Option<u64>,
    /// Usage on the legacy platform, bytes.
    pub usage_bytes: Option<u64>,
    /// Messages on the legacy platform.
    pub messages: Option<u64>,
    /// Lifecycle state.
    pub state: State,
    /// When blocked: the state it was blocked in.
    pub blocked_from: Option<State>,
    /// The invitation wave it is planned or was invited in.
    pub wave: Option<Date>,
    /// Pinned by an operator to this wave.
    pub pinned_wave: Option<Date>,
    /// Left out of the planning by an operator.
    pub excluded: bool,
    /// Planning priority (higher goes first).
    pub priority: i64,
    /// First import.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Store id (increasing).
    pub id: i64,
    /// The mailbox, if the event concerns one.
    pub mailbox_id: Option<i64>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who or what.
    pub actor: String,
    /// What kind of event.
    pub kind: EventKind,
    /// State before, for transitions.
    pub from_state: Option<State>,
    /// State after.
    pub to_state: Option<State>,
    /// Why, in words.
    pub reason: String,
    /// Structured details.
    pub details: serde_json::Value,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// Mailboxes created.
    pub created: usize,
    /// Mailboxes updated.
    pub updated: usize,
    /// Rows identical to what was known.
    pub unchanged: usize,
    /// Known mailboxes absent from the import (kept).
    pub missing: Vec<String>,
}

/// `SELECT <every mailbox column> FROM mailboxes <rest>`, as a literal.
macro_rules! mailbox_columns {
    () => {
        "id, address, kind, fase, name, quota_bytes, usage_bytes, messages, state, blocked_from, \
         wave, pinned_wave, excluded, priority, created_at, updated_at"
    };
}

macro_rules! select_mailboxes {
    ($rest:literal) => {
        concat!("SELECT ", mailbox_columns!(), " FROM mailboxes ", $rest)
    };
}

/// The columns [`mailbox_from_row`] reads.
pub(crate) const MAILBOX_COLUMNS: &str = mailbox_columns!();

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

fn opt_i64(v: Option<u64>) -> Option<i64> {
    v.and_then(|n| i64::try_from(n).ok())
}

pub(crate) fn parse_state(s: &str) -> Result<State, StoreError> {
    s.parse().map_err(|e: lifecycle::UnknownState| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn parse_date(v: Option<String>) -> Result<Option<Date>, StoreError> {
    v.map(|s| bma_core::settings::iso_date::parse(&s).map_err(StoreError::Corrupt)).transpose()
}

pub(crate) fn mailbox_from_row(row: &impl Cols) -> Result<MailboxRecord, StoreError> {
    let kind = row.text("kind")?;
    Ok(MailboxRecord {
        id: row.int("id")?,
        address: row.text("address")?,
        kind: MailboxKind::from_code(&kind).ok_or_else(|| StoreError::Corrupt(format!("mailbox kind '{kind}'")))?,
        fase: u32::try_from(row.int("fase")?).map_err(|_| StoreError::Corrupt("fase".into()))?,
        name: row.text("name")?,
        quota_bytes: opt_u64(row.opt_int("quota_bytes")?),
        usage_bytes: opt_u64(row.opt_int("usage_bytes")?),
        messages: opt_u64(row.opt_int("messages")?),
        state: parse_state(&row.text("state")?)?,
        blocked_from: row.opt_text("blocked_from")?.as_deref().map(parse_state).transpose()?,
        wave: parse_date(row.opt_text("wave")?)?,
        pinned_wave: parse_date(row.opt_text("pinned_wave")?)?,
        excluded: row.int("excluded")? != 0,
        priority: row.int("priority")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

/// The columns of `events`, as [`event_from_row`] reads them.
pub(crate) const EVENT_COLUMNS: &str = "id, mailbox_id, at, actor, kind, from_state, to_state, reason, details";

pub(crate) fn event_from_row(row: &impl Cols) -> Result<EventRecord, StoreError> {
    let state =
        |col: &str| -> Result<Option<State>, StoreError> { row.opt_text(col)?.as_deref().map(parse_state).transpose() };
    let details = row.text("details")?;
    Ok(EventRecord {
        id: row.int("id")?,
        mailbox_id: row.opt_int("mailbox_id")?,
        at: from_millis(row.int("at")?),
        actor: row.text("actor")?,
        kind: EventKind::parse(&row.text("kind")?)?,
        from_state: state("from_state")?,
        to_state: state("to_state")?,
        reason: row.text("reason")?,
        details: serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(format!("event details: {e}")))?,
    })
}

impl Store {
    /// The registry as the import planner needs it.
    pub async fn known_mailboxes(&self) -> Result<Vec<KnownMailbox>, StoreError> {
        let rows = sqlx::query("SELECT address, name, quota_bytes, usage_bytes, messages FROM mailboxes")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KnownMailbox {
                    address: r.try_get("address")?,
                    name: r.try_get("name")?,
                    quota_bytes: opt_u64(r.try_get("quota_bytes")?),
                    usage_bytes: opt_u64(r.try_get("usage_bytes")?),
                    messages: opt_u64(r.try_get("messages")?),
                })
            })
            .collect()
    }

    /// Applies an import plan in one transaction: new mailboxes (state
    /// `imported`, event `imported`), updated ones (event `updated` with the
    /// field changes) and one `registry_import` summary event. The plan is
    /// recomputed inside the transaction against the rows it was given, so
    /// a concurrent import cannot make it insert a duplicate.
    pub async fn apply_import(
        &self,
        rows: &[RegistryRow],
        source: &str,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<ImportOutcome, StoreError> {
        let now = to_millis(at);
        let actor = actor.to_text();
        let mut tx = self.pool().begin().await?;
        // Take the write lock first on SQLite so that the read below is current.
        sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let known_rows = sqlx::query("SELECT address, name, quota_bytes, usage_bytes, messages FROM mailboxes")
            .fetch_all(&mut *tx)
            .await?;
        let mut known = Vec::with_capacity(known_rows.len());
        for r in &known_rows {
            known.push(KnownMailbox {
                address: r.try_get("address")?,
                name: r.try_get("name")?,
                quota_bytes: opt_u64(r.try_get("quota_bytes")?),
                usage_bytes: opt_u64(r.try_get("usage_bytes")?),
                messages: opt_u64(r.try_get("messages")?),
            });
        }
        let plan: ImportPlan = bma_core::registry::plan_import(&known, rows);

        for chunk in plan.new.chunks(crate::CHUNK) {
            let sql = format!(
                "INSERT INTO mailboxes (address, kind, fase, name, quota_bytes, usage_bytes, messages, state, \
                 created_at, updated_at) VALUES {} RETURNING id, address",
                crate::values_placeholders(chunk.len(), 10)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.address.as_str().to_owned())
                    .bind(r.address.kind().code())
                    .bind(i64::from(r.address.fase().number()))
                    .bind(r.name.clone())
                    .bind(opt_i64(r.quota_bytes))
                    .bind(opt_i64(r.usage_bytes))
                    .bind(opt_i64(r.messages))
                    .bind(State::Imported.as_str())
                    .bind(now)
                    .bind(now);
            }
            let inserted = q.fetch_all(&mut *tx).await?;
            let ids: BTreeMap<String, i64> = inserted
                .iter()
                .map(|r| Ok((r.try_get::<String, _>("address")?, r.try_get::<i64, _>("id")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            let reasons: Vec<String> =
                chunk.iter().map(|r| format!("registry import from {source}, line {}", r.line)).collect();
            let events: Vec<Event<'_>> = chunk
                .iter()
                .zip(&reasons)
                .map(|(r, reason)| Event {
                    mailbox_id: ids.get(r.address.as_str()).copied(),
                    kind: EventKind::Imported,
                    from: None,
                    to: Some(State::Imported),
                    reason,
                    details: serde_json::json!({ "name": r.name }),
                })
                .collect();
            events::record_many(&mut tx, now, &actor, &events).await?;
        }

        for (row, changes) in &plan.updated {
            let id: i64 = sqlx::query_scalar(
                "UPDATE mailboxes SET name = $1, quota_bytes = COALESCE($2, quota_bytes), \
                 usage_bytes = COALESCE($3, usage_bytes), messages = COALESCE($4, messages), updated_at = $5 \
                 WHERE address = $6 RETURNING id",
            )
            .bind(row.name.clone())
            .bind(opt_i64(row.quota_bytes))
            .bind(opt_i64(row.usage_bytes))
            .bind(opt_i64(row.messages))
            .bind(now)
            .bind(row.address.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let fields: Vec<&str> = changes.iter().map(|c| c.field).collect();
            let reason = format!("registry import from {source}, line {}: {} changed", row.line, fields.join(", "));
            let details = serde_json::json!({ "changes": changes });
            events::record(&mut tx, now, &actor, Event::note(Some(id), EventKind::Updated, &reason, details)).await?;
        }

        let outcome = ImportOutcome {
            created: plan.new.len(),
            updated: plan.updated.len(),
            unchanged: plan.unchanged,
            missing: plan.missing,
        };
        let reason = format!("registry import from {source}");
        let details = serde_json::to_value(&outcome).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        events::record(&mut tx, now, &actor, Event::note(None, EventKind::RegistryImport, &reason, details)).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// One mailbox by address.
    pub async fn mailbox(&self, address: &Address) -> Result<MailboxRecord, StoreError> {
        let row = sqlx::query(select_mailboxes!("WHERE address = $1"))
            .bind(address.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(address.to_string()))?;
        mailbox_from_row(&row)
    }

    /// Every mailbox, by address.
    pub async fn mailboxes(&self) -> Result<Vec<MailboxRecord>, StoreError> {
        let rows = sqlx::query(select_mailboxes!("ORDER BY address")).fetch_all(self.pool()).await?;
        rows.iter().map(mailbox_from_row).collect()
    }

    /// The timeline of a mailbox, oldest first.
    pub async fn timeline(&self, mailbox_id: i64) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM events WHERE mailbox_id = $1 ORDER BY id")
            .bind(mailbox_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Events that concern no mailbox (imports), newest first.
    pub async fn campaign_events(&self, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM events WHERE mailbox_id IS NULL ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Number of mailboxes in each state (states with none are absent).
    pub async fn counts_by_state(&self) -> Result<BTreeMap<State, u64>, StoreError> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM mailboxes GROUP BY state").fetch_all(self.pool()).await?;
        let mut counts = BTreeMap::new();
        for r in &rows {
            let n: i64 = r.try_get("n")?;
            counts.insert(parse_state(&r.try_get::<String, _>("state")?)?, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    /// Moves a mailbox to `to`, in one transaction with its event. Refuses
    /// an illegal transition (typed error, nothing written) and a concurrent
    /// change (the update is conditional on the state read).
    pub async fn transition(
        &self,
        address: &Address,
        to: State,
        actor: &Actor,
        reason: &str,
        details: serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<MailboxRecord, StoreError> {
        let now = to_millis(at);
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let row = sqlx::query(select_mailboxes!("WHERE address = $1"))
            .bind(address.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(address.to_string()))?;
        let current = mailbox_from_row(&row)?;
        let change = Transition {
            mailbox_id: current.id,
            address: address.as_str(),
            from: current.state,
            blocked_from: current.blocked_from,
            to,
            reason,
            details,
        };
        transition::apply(&mut tx, now, &actor.to_text(), change, Also::default()).await?;
        tx.commit().await?;
        Ok(MailboxRecord {
            state: to,
            blocked_from: (to == State::Blocked).then_some(current.state),
            updated_at: from_millis(now),
            ..current
        })
    }
}
