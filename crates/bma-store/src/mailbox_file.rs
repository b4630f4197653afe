//! A mailbox's file as the helpdesk console's page shows it, read in one
//! statement: its timeline, its emails, every version of its form, its
//! backup address verifications and the last views of its page.
//!
//! Why one statement: the page is opened all day, and each statement and
//! each row read is a round trip to the database's connection (on SQLite,
//! a hand-over to the connection's thread and back per row). Each part is
//! aggregated by the database into one JSON array ([`crate::cols`]) and
//! decoded by the same function as the part's own read, so the file holds
//! exactly what [`Store::timeline`], [`Store::emails_of`],
//! [`Store::enrollments`], [`Store::backup_status`] and
//! [`Store::staff_views`] return, read in one snapshot of the store.
//!
//! Rules: emails come without their message (`raw` is empty); the views
//! are the last [`VIEWS`], latest first.

use sqlx::Row as _;

use crate::backup::backup_from_row;
use crate::cols::{json_objects, json_rows};
use crate::enrollment::{ENROLLMENT_COLUMNS, enrollment_from_row};
use crate::mailbox::{EVENT_COLUMNS, event_from_row};
use crate::outbox::{LISTED_COLUMNS, email_from_row};
use crate::staff::view_from_row;
use crate::{BackupStatus, Enrollment, EventRecord, OutboxEmail, StaffView, Store, StoreError};

/// How many of the last views the file holds.
pub const VIEWS: u32 = 10;

/// A mailbox's file for the console.
#[derive(Debug, Clone, PartialEq)]
pub struct MailboxFile {
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
    /// The file of mailbox `mailbox_id`, in one statement.
    pub async fn mailbox_file(&self, mailbox_id: i64) -> Result<MailboxFile, StoreError> {
        let b = self.backend();
        let of = |table: &str| format!("{table} WHERE mailbox_id = $1");
        let sql = format!(
            "SELECT {} AS events, {} AS emails, {} AS forms, {} AS backups, {} AS views",
            json_rows(b, EVENT_COLUMNS, &of("events"), "id", None),
            json_rows(b, LISTED_COLUMNS, &of("outbox"), "id", None),
            json_rows(b, ENROLLMENT_COLUMNS, &of("enrollments"), "version", None),
            json_rows(b, "id, email, requested_at, verified_at", &of("backup_verifications"), "id", None),
            json_rows(b, "id, at, subject, name", &of("staff_views"), "at DESC, id DESC", Some(VIEWS)),
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox_id).fetch_one(self.pool()).await?;
        let part = |name: &str| -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
            json_objects(&row.try_get::<String, _>(name)?)
        };
        Ok(MailboxFile {
            events: part("events")?.iter().map(event_from_row).collect::<Result<_, _>>()?,
            emails: part("emails")?.iter().map(email_from_row).collect::<Result<_, _>>()?,
            forms: part("forms")?.iter().map(|r| enrollment_from_row(r, "")).collect::<Result<_, _>>()?,
            backups: part("backups")?.iter().map(backup_from_row).collect::<Result<_, _>>()?,
            views: part("views")?.iter().map(view_from_row).collect::<Result<_, _>>()?,
        })
    }
}
