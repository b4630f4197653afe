//! A mailbox's file as the helpdesk console's page shows it, read in one
//! statement: the mailbox and its helpdesk flag, its timeline, its emails,
//! every version of its form, its backup address verifications and the
//! last views of its page.
//!
//! Why one statement: the page is opened all day, and each statement and
//! each row read is a round trip to the database's connection (on SQLite,
//! a hand-over to the connection's thread and back per row). Each part is
//! aggregated by the database into one JSON array ([`crate::cols`]) and
//! decoded by the same function as the part's own read, so the file holds
//! exactly what [`Store::mailbox`], [`Store::attention_of`],
//! [`Store::timeline`], [`Store::emails_of`],
//! [`Store::enrollments`], [`Store::backup_status`] and
//! [`Store::staff_views`] return, read in one snapshot of the store.
//!
//! Rules: emails come without their message (`raw` is empty); the views
//! are the last [`VIEWS`], latest first.

use bma_core::{Address, AttentionReason};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backup::backup_from_row;
use crate::cols::{Cols as _, json_objects, json_rows};
use crate::enrollment::{ENROLLMENT_COLUMNS, enrollment_from_row};
use crate::mailbox::{EVENT_COLUMNS, MAILBOX_COLUMNS, event_from_row, mailbox_from_row};
use crate::outbox::{LISTED_COLUMNS, email_from_row};
use crate::staff::view_from_row;
use crate::{
    BackupStatus, Enrollment, EventRecord, MailboxRecord, OutboxEmail, StaffView, Store, StoreError, from_millis,
};

/// How many of the last views the file holds.
pub const VIEWS: usize = 10;

/// A mailbox's file for the console.
#[derive(Debug, Clone, PartialEq)]
pub struct MailboxFile {
    /// The mailbox.
    pub mailbox: MailboxRecord,
    /// Why it needs a human, and since when, if it does.
    pub attention: Option<(AttentionReason, OffsetDateTime)>,
    /// Every event, by id.
    pub events: Vec<EventRecord>,
    /// Every email, by id, without its message.
    pub emails: Vec<OutboxEmail>,
    /// Every version of the form, oldest first.
    pub forms: Vec<Enrollment>,
    /// Every backup address verification asked for.
    pub backups: Vec<BackupStatus>,
    /// The last views of the mailbox's page, latest first.
    pub views: Vec<StaffView>,
}

impl MailboxFile {
    /// Where the verification of `email` stands, as [`Store::backup_status`] says.
    pub fn backup_status(&self, email: &str) -> Option<&BackupStatus> {
        self.backups.iter().find(|b| b.email == email)
    }
}

impl Store {
    /// The file of the mailbox at `address`, in one statement;
    /// [`StoreError::NotFound`] if the registry has none.
    pub async fn mailbox_file(&self, address: &Address) -> Result<MailboxFile, StoreError> {
        let b = self.backend();
        let of = |table: &str| format!("{table} WHERE mailbox_id = (SELECT id FROM mailboxes WHERE address = $1)");
        let sql = format!(
            "SELECT {MAILBOX_COLUMNS}, attention, attention_at, {} AS events, {} AS emails, {} AS forms, \
             {} AS backups, {} AS views FROM mailboxes WHERE address = $1",
            json_rows(b, EVENT_COLUMNS, &of("events"), "id", None),
            json_rows(b, LISTED_COLUMNS, &of("outbox"), "id", None),
            json_rows(b, ENROLLMENT_COLUMNS, &of("enrollments"), "version", None),
            json_rows(b, "id, email, requested_at, verified_at", &of("backup_verifications"), "id", None),
            json_rows(b, "id, at, subject, name", &of("staff_views"), "at DESC, id DESC", Some(VIEWS)),
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(address.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(address.to_string()))?;
        let part = |name: &str| -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
            json_objects(&row.try_get::<String, _>(name)?)
        };
        let attention = match (row.opt_text("attention")?, row.opt_int("attention_at")?) {
            (Some(reason), Some(at)) => Some((AttentionReason::parse(&reason)?, from_millis(at))),
            _ => None,
        };
        Ok(MailboxFile {
            mailbox: mailbox_from_row(&row)?,
            attention,
            events: part("events")?.iter().map(event_from_row).collect::<Result<_, _>>()?,
            emails: part("emails")?.iter().map(email_from_row).collect::<Result<_, _>>()?,
            forms: part("forms")?.iter().map(|r| enrollment_from_row(r, "")).collect::<Result<_, _>>()?,
            backups: part("backups")?.iter().map(backup_from_row).collect::<Result<_, _>>()?,
            views: part("views")?.iter().map(view_from_row).collect::<Result<_, _>>()?,
        })
    }
}
