//! Enrolment: the manager's form, kept version by version, and the
//! verification of the backup address.
//!
//! A submission is one transaction: the form version (with who submitted
//! it, from the identity provider, and when), the mailbox's move from
//! `invited` to `enrolled` the first time (a `form_corrected` event
//! afterwards), the confirmation email to the BMA in the outbox and, when
//! the backup address is new for this mailbox, its verification email.
//! Corrections are accepted while the mailbox is `enrolled` or `presynced`;
//! from `cutover_scheduled` on the form is closed. Verification codes, like
//! form tokens, are stored hashed.
//!
//! A correction that changes the backup address queues, in the same
//! transaction, a notice to the previous backup address and to the BMA
//! ([`BackupChange`]). New verification links and the links followed are
//! [`crate::backup`]'s.

use bma_core::lifecycle::{Actor, State};
use bma_core::{EventKind, TokenHash};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::cols::Cols;
use crate::events::{Event, record};
use crate::mailbox::{parse_date, parse_state};
use crate::outbox::{NewEmail, insert_email};
use crate::portal_session::PortalSession;
use crate::transition::{self, Also, Transition};
use crate::{Store, StoreError, from_millis, to_millis};

/// A mailbox as the portal sees it through its form link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortalMailbox {
    /// Store id.
    pub id: i64,
    /// Address.
    pub address: String,
    /// Establishment or organising authority.
    pub name: String,
    /// Lifecycle state.
    pub state: State,
    /// When blocked: the state it was blocked in.
    pub blocked_from: Option<State>,
    /// When mail 1 was queued.
    pub invited_at: Option<OffsetDateTime>,
    /// Its invitation wave.
    pub wave: Option<time::Date>,
    /// The day of its cutover, once scheduled.
    pub cutover_on: Option<time::Date>,
}

// The form as the store keeps it is the form as its rules validated it:
// one type, in bma-core.
pub use bma_core::form::{EnrollmentForm, ManagerIdentity};

/// One stored version of the form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrollment {
    /// 1 for the first submission, then 2, 3, …
    pub version: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// What was given.
    pub form: EnrollmentForm,
    /// Who gave it.
    pub identity: ManagerIdentity,
}

/// A verification to start if the backup address is new for the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupVerificationRequest {
    /// The hash of the code in the link.
    pub code_hash: TokenHash,
    /// The email carrying the link, to the backup address.
    pub email: NewEmail,
    /// Until when the link works.
    pub expires_at: OffsetDateTime,
}

/// The notices of a change of backup address: to the previous address
/// and to the BMA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupChange {
    /// The backup address of the version being replaced (checked inside
    /// the transaction: a concurrent change makes the submission a conflict).
    pub previous: String,
    /// The emails to queue.
    pub notices: Vec<NewEmail>,
}

/// A version of the form and what goes with it, for
/// [`Store::submit_enrollment_notifying`].
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The answers, validated.
    pub form: &'a EnrollmentForm,
    /// Who gave them.
    pub identity: &'a ManagerIdentity,
    /// The confirmation email to the BMA.
    pub confirmation: &'a NewEmail,
    /// The verification of the backup address, queued if it is new.
    pub verification: Option<&'a BackupVerificationRequest>,
    /// The notices of a changed backup address.
    pub change: Option<&'a BackupChange>,
}

/// What [`Store::submit_enrollment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitOutcome {
    /// The version stored.
    pub version: i64,
    /// Whether it was the first (the mailbox became `enrolled`).
    pub first: bool,
    /// Whether a verification email was queued for the backup address.
    pub verification_queued: bool,
}

/// Where the verification of a backup address stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupStatus {
    /// The address.
    pub email: String,
    /// When the link was sent (the last one).
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// When it was verified.
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
}

fn portal_mailbox_from_row(r: &AnyRow) -> Result<PortalMailbox, StoreError> {
    let blocked_from: Option<String> = r.try_get("blocked_from")?;
    Ok(PortalMailbox {
        id: r.try_get("id")?,
        address: r.try_get("address")?,
        name: r.try_get("name")?,
        state: parse_state(&r.try_get::<String, _>("state")?)?,
        blocked_from: blocked_from.as_deref().map(parse_state).transpose()?,
        invited_at: r.try_get::<Option<i64>, _>("invited_at")?.map(from_millis),
        wave: parse_date(r.try_get("wave")?)?,
        cutover_on: parse_date(r.try_get("cutover_on")?)?,
    })
}

/// A form version from a row whose columns are named `<prefix><column>`.
pub(crate) fn enrollment_from_row(r: &impl Cols, prefix: &str) -> Result<Enrollment, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    let text = |c: &str| -> Result<String, StoreError> { r.text(col(c).as_str()) };
    Ok(Enrollment {
        version: r.int(col("version").as_str())?,
        submitted_at: from_millis(r.int(col("submitted_at").as_str())?),
        form: EnrollmentForm {
            family_name: text("family_name")?,
            given_name: text("given_name")?,
            phone: text("phone")?,
            role: text("role")?,
            backup_email: text("backup_email")?,
            knows_password: r.int(col("knows_password").as_str())? != 0,
        },
        identity: ManagerIdentity {
            subject: text("id_subject")?,
            name: text("id_name")?,
            given_name: text("id_given_name")?,
            family_name: text("id_family_name")?,
            email: text("id_email")?,
        },
    })
}

/// Everything the page of a form link shows, read in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalView {
    /// The mailbox of the link.
    pub mailbox: PortalMailbox,
    /// The session of the request, if its id is live.
    pub session: Option<PortalSession>,
    /// The last version of the form.
    pub latest: Option<Enrollment>,
    /// The verification of its backup address.
    pub backup: Option<BackupStatus>,
    /// Its last forwarding audit found a running script that forwards
    /// outside (the page then reads what to say: `forwarding_audit_of`).
    pub forwards_outside: bool,
}

pub(crate) const ENROLLMENT_COLUMNS: &str = "version, submitted_at, family_name, given_name, phone, role, backup_email, \
     knows_password, id_subject, id_name, id_given_name, id_family_name, id_email";

impl Store {
    /// The mailbox a form token opens (hashed before the lookup; a token of
    /// the wrong shape is not looked up).
    pub async fn portal_mailbox_by_token(&self, token: &str) -> Result<Option<PortalMailbox>, StoreError> {
        if !bma_core::token::well_formed(token) {
            return Ok(None);
        }
        self.portal_mailbox_by_token_hash(&TokenHash::of(token)).await
    }

    /// The mailbox whose form token has this hash: any link sent to it
    /// (mail 1, a reminder, a resend) that was not revoked.
    pub async fn portal_mailbox_by_token_hash(&self, hash: &TokenHash) -> Result<Option<PortalMailbox>, StoreError> {
        let row = sqlx::query(
            "SELECT m.id, m.address, m.name, m.state, m.blocked_from, m.invited_at, m.wave, m.cutover_on \
             FROM form_tokens t JOIN mailboxes m ON m.id = t.mailbox_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(hash.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(portal_mailbox_from_row).transpose()
    }

    /// The page of a form link in one statement (the hot path of the
    /// portal): the mailbox whose token has this hash, the session whose
    /// id has `session_hash` (if live), the last form version and the
    /// verification of its backup address.
    pub async fn portal_view(
        &self,
        token_hash: &TokenHash,
        session_hash: Option<&TokenHash>,
        now: OffsetDateTime,
    ) -> Result<Option<PortalView>, StoreError> {
        let row = sqlx::query(
            "SELECT m.id, m.address, m.name, m.state, m.blocked_from, m.invited_at, m.wave, m.cutover_on, \
             s.csrf AS s_csrf, s.expires_at AS s_expires_at, s.login_pending AS s_login_pending, \
             s.id_subject AS s_id_subject, s.id_name AS s_id_name, s.id_given_name AS s_id_given_name, \
             s.id_family_name AS s_id_family_name, s.id_email AS s_id_email, \
             e.version AS e_version, e.submitted_at AS e_submitted_at, e.family_name AS e_family_name, \
             e.given_name AS e_given_name, e.phone AS e_phone, e.role AS e_role, e.backup_email AS e_backup_email, \
             e.knows_password AS e_knows_password, e.id_subject AS e_id_subject, e.id_name AS e_id_name, \
             e.id_given_name AS e_id_given_name, e.id_family_name AS e_id_family_name, e.id_email AS e_id_email, \
             v.email AS v_email, v.requested_at AS v_requested_at, v.verified_at AS v_verified_at, \
             CASE WHEN EXISTS (SELECT 1 FROM forwarding_findings f WHERE f.mailbox_id = m.id AND f.active = 1 \
               AND f.kind IN ('redirect', 'notify') AND f.reach IN ('external', 'dynamic')) THEN 1 ELSE 0 END \
               AS forwards_outside \
             FROM form_tokens t JOIN mailboxes m ON m.id = t.mailbox_id \
             LEFT JOIN portal_sessions s ON s.id_hash = $2 AND s.expires_at > $3 \
             LEFT JOIN enrollments e ON e.mailbox_id = m.id \
               AND e.version = (SELECT MAX(version) FROM enrollments WHERE mailbox_id = m.id) \
             LEFT JOIN backup_verifications v ON v.mailbox_id = m.id AND v.email = e.backup_email \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(token_hash.as_str())
        .bind(session_hash.map(TokenHash::as_str))
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let session = match r.try_get::<Option<String>, _>("s_csrf")? {
            Some(_) => Some(crate::portal_session::session_from_row(&r, "s_")?),
            None => None,
        };
        let latest = match r.try_get::<Option<i64>, _>("e_version")? {
            Some(_) => Some(enrollment_from_row(&r, "e_")?),
            None => None,
        };
        let backup = match r.try_get::<Option<String>, _>("v_email")? {
            Some(email) => Some(BackupStatus {
                email,
                requested_at: from_millis(r.try_get("v_requested_at")?),
                verified_at: r.try_get::<Option<i64>, _>("v_verified_at")?.map(from_millis),
            }),
            None => None,
        };
        let forwards_outside = r.try_get::<i64, _>("forwards_outside")? != 0;
        Ok(Some(PortalView { mailbox: portal_mailbox_from_row(&r)?, session, latest, backup, forwards_outside }))
    }

    /// The latest version of a mailbox's form.
    pub async fn latest_enrollment(&self, mailbox_id: i64) -> Result<Option<Enrollment>, StoreError> {
        let sql =
            format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE mailbox_id = $1 ORDER BY version DESC LIMIT 1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox_id).fetch_optional(self.pool()).await?;
        row.as_ref().map(|r| enrollment_from_row(r, "")).transpose()
    }

    /// Every version of a mailbox's form, oldest first.
    pub async fn enrollments(&self, mailbox_id: i64) -> Result<Vec<Enrollment>, StoreError> {
        let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE mailbox_id = $1 ORDER BY version");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox_id).fetch_all(self.pool()).await?;
        rows.iter().map(|r| enrollment_from_row(r, "")).collect()
    }

    /// Stores a version of the form, with the state change (first time),
    /// its event, the confirmation email and, if the backup address is new
    /// for the mailbox, its verification, all in one transaction. Refused
    /// (nothing written) unless the mailbox is `invited` (first submission)
    /// or `enrolled`/`presynced` (a correction).
    pub async fn submit_enrollment(
        &self,
        mailbox_id: i64,
        form: &EnrollmentForm,
        identity: &ManagerIdentity,
        confirmation: &NewEmail,
        verification: Option<&BackupVerificationRequest>,
        now: OffsetDateTime,
    ) -> Result<SubmitOutcome, StoreError> {
        let submission = Submission { form, identity, confirmation, verification, change: None };
        self.submit_enrollment_notifying(mailbox_id, &submission, now).await
    }

    /// [`Store::submit_enrollment`], with the notices of a change of backup
    /// address queued in the same transaction when the address changes
    /// (the version replaced must have `change.previous` as its address,
    /// else [`StoreError::Conflict`] and nothing is written).
    pub async fn submit_enrollment_notifying(
        &self,
        mailbox_id: i64,
        submission: &Submission<'_>,
        now: OffsetDateTime,
    ) -> Result<SubmitOutcome, StoreError> {
        let Submission { form, identity, confirmation, verification, change } = *submission;
        let now_ms = to_millis(now);
        let mut tx = self.pool().begin().await?;
        // Takes SQLite's write lock now, so the state read below is not stale.
        sqlx::query("UPDATE mailboxes SET id = id WHERE 0 = 1").execute(&mut *tx).await?;
        let row = sqlx::query("SELECT address, state, blocked_from FROM mailboxes WHERE id = $1")
            .bind(mailbox_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox #{mailbox_id}")))?;
        let address: String = row.try_get("address")?;
        let state = parse_state(&row.try_get::<String, _>("state")?)?;
        let first = match state {
            State::Invited => true,
            State::Enrolled | State::Presynced => false,
            other => return Err(StoreError::FormClosed { address, state: other }),
        };
        // Conditional on the state read: a concurrent change (the engine
        // scheduling the cutover, another submission) makes this submission
        // fail, not overwrite. On PostgreSQL it also locks the row, so
        // concurrent submissions are one after the other until the commit.
        // The state itself changes (the first time) through the transition below.
        let done = sqlx::query("UPDATE mailboxes SET updated_at = $1 WHERE id = $2 AND state = $3")
            .bind(now_ms)
            .bind(mailbox_id)
            .bind(state.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(address));
        }
        let version: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM enrollments WHERE mailbox_id = $1")
                .bind(mailbox_id)
                .fetch_one(&mut *tx)
                .await?;
        let previous_backup: Option<String> =
            sqlx::query_scalar("SELECT backup_email FROM enrollments WHERE mailbox_id = $1 AND version = $2")
                .bind(mailbox_id)
                .bind(version - 1)
                .fetch_optional(&mut *tx)
                .await?;
        let notify = match (change, &previous_backup) {
            (Some(c), Some(prev)) if *prev == c.previous => *prev != form.backup_email,
            (Some(_), _) => return Err(StoreError::Conflict(address)),
            (None, _) => false,
        };
        sqlx::query(
            "INSERT INTO enrollments (mailbox_id, version, submitted_at, family_name, given_name, phone, role, \
             backup_email, knows_password, id_subject, id_name, id_given_name, id_family_name, id_email) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(mailbox_id)
        .bind(version)
        .bind(now_ms)
        .bind(form.family_name.clone())
        .bind(form.given_name.clone())
        .bind(form.phone.clone())
        .bind(form.role.clone())
        .bind(form.backup_email.clone())
        .bind(i64::from(form.knows_password))
        .bind(identity.subject.clone())
        .bind(identity.name.clone())
        .bind(identity.given_name.clone())
        .bind(identity.family_name.clone())
        .bind(identity.email.clone())
        .execute(&mut *tx)
        .await?;
        let (outbox_id, _) = insert_email(&mut tx, confirmation, now).await?;
        let actor = Actor::Manager(identity.subject.clone());
        let details = serde_json::json!({
            "version": version, "outbox_id": outbox_id, "message_id": confirmation.message_id,
            "knows_password": form.knows_password,
        });
        if first {
            let change = Transition {
                mailbox_id,
                address: &address,
                from: state,
                blocked_from: None,
                to: State::Enrolled,
                reason: "form received; confirmation queued",
                details,
            };
            transition::apply(&mut tx, now_ms, &actor.to_text(), change, Also::default()).await?;
        } else {
            let reason = format!("form corrected (version {version}); confirmation queued");
            let event = Event::note(Some(mailbox_id), EventKind::FormCorrected, &reason, details);
            record(&mut tx, now_ms, &actor.to_text(), event).await?;
        }
        if let (true, Some(c)) = (notify, change) {
            let mut ids = Vec::new();
            for notice in &c.notices {
                ids.push(insert_email(&mut tx, notice, now).await?.0);
            }
            let details = serde_json::json!({ "version": version, "outbox_ids": ids });
            let reason = "backup address changed; the previous address and the BMA notified";
            let event = Event::note(Some(mailbox_id), EventKind::BackupChanged, reason, details);
            record(&mut tx, now_ms, &actor.to_text(), event).await?;
        }
        let mut verification_queued = false;
        if let Some(v) = verification {
            let known: Option<i64> =
                sqlx::query_scalar("SELECT id FROM backup_verifications WHERE mailbox_id = $1 AND email = $2")
                    .bind(mailbox_id)
                    .bind(form.backup_email.clone())
                    .fetch_optional(&mut *tx)
                    .await?;
            if known.is_none() {
                let (outbox_id, _) = insert_email(&mut tx, &v.email, now).await?;
                sqlx::query(
                    "INSERT INTO backup_verifications (mailbox_id, email, code_hash, requested_at, expires_at, \
                     verified_at) VALUES ($1, $2, $3, $4, $5, NULL)",
                )
                .bind(mailbox_id)
                .bind(form.backup_email.clone())
                .bind(v.code_hash.as_str())
                .bind(now_ms)
                .bind(to_millis(v.expires_at))
                .execute(&mut *tx)
                .await?;
                let details = serde_json::json!({ "outbox_id": outbox_id, "message_id": v.email.message_id });
                let reason = "verification link queued for the backup address";
                let event = Event::note(Some(mailbox_id), EventKind::BackupVerificationRequested, reason, details);
                record(&mut tx, now_ms, &actor.to_text(), event).await?;
                verification_queued = true;
            }
        }
        tx.commit().await?;
        Ok(SubmitOutcome { version, first, verification_queued })
    }
}
