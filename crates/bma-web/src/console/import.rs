//! The registry import from the console (an administrator's): the file
//! chosen on `/console/import`, checked and compared with the campaign on
//! a first page, applied from that page's button.
//!
//! Rules:
//! - the role before anything (`StaffAction::ImportRegistry`, admin; a
//!   refusal reads nothing of the request); then the session's CSRF token
//!   (in the upload's multipart body and in the confirmation's form);
//! - the same parsing and plan as `bma import mailboxes`
//!   (`bma_core::registry`), all-or-nothing: a file with an invalid row
//!   shows every bad row with its line and offers nothing to apply;
//! - nothing is kept on the server between the two pages: the
//!   confirmation carries the file back (base64) with its SHA-256, checked
//!   before it is parsed again, so what is applied is what was shown;
//! - applied through `Store::apply_import` (one transaction, an event per
//!   mailbox) with the administrator as actor and the reason in the
//!   events' source; the answer says what changed.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bma_core::registry::{self, Encoding, Parsed};
use bma_core::staff::StaffAction;
use sha2::{Digest, Sha256};

use super::auth::{Staff, StaffForm};
use super::pages::{ConsoleLayout, ConsoleMessage, render};
use crate::Portal;
use crate::error::Answer;
use crate::pages::filters;

/// Largest registry accepted (3,500 rows are ~300 KB; an Excel export with
/// every column a few times that).
pub(crate) const MAX_FILE: usize = 4 * 1024 * 1024;

/// Lines listed on the page, of each kind (the counts are whole).
const SHOWN: usize = 50;

/// The upload page.
#[derive(Template)]
#[template(path = "console/import.html")]
pub(crate) struct ImportPage {
    layout: ConsoleLayout,
    csrf: String,
    /// After an upload: what the file holds and would change.
    preview: Option<Preview>,
}

/// What an uploaded file holds and would change.
pub(crate) struct Preview {
    name: String,
    encoding: &'static str,
    delimiter: &'static str,
    valid: usize,
    errors: Vec<String>,
    errors_total: usize,
    new: Vec<String>,
    new_total: usize,
    updated: Vec<String>,
    updated_total: usize,
    unchanged: usize,
    missing: Vec<String>,
    missing_total: usize,
    /// The file, for the confirmation (base64), and its SHA-256 (hex).
    file: String,
    digest: String,
}

fn encoding_fr(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 => "UTF-8",
        Encoding::Utf8Bom => "UTF-8 (avec BOM)",
        Encoding::Utf16 => "UTF-16",
        Encoding::Windows1252 => "Windows-1252 (export Excel)",
    }
}

fn delimiter_fr(d: char) -> &'static str {
    match d {
        ';' => "points-virgules",
        ',' => "virgules",
        _ => "tabulations",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file name as shown and recorded: its last path part, without control
/// characters, at most 100 characters.
fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name: String = last.chars().filter(|c| !c.is_control()).take(100).collect();
    if name.trim().is_empty() { "registre.csv".to_owned() } else { name.trim().to_owned() }
}

fn forbidden_csrf(p: &Portal, staff: &Staff) -> Response {
    tracing::warn!("console import without its session's CSRF token");
    ConsoleMessage::page(
        p,
        Some(staff),
        StatusCode::FORBIDDEN,
        "Demande refusée",
        vec!["Cette demande n'a pas pu être vérifiée. Rechargez la page, puis recommencez.".to_owned()],
    )
}

fn bad_file(p: &Portal, staff: &Staff, text: String) -> Response {
    ConsoleMessage::page(p, Some(staff), StatusCode::BAD_REQUEST, "Import impossible", vec![text])
}

/// `GET /console/import`: the form.
pub(crate) async fn form(State(p): State<Portal>, staff: Staff) -> Answer {
    if let Err(refusal) = staff.may(&p, StaffAction::ImportRegistry) {
        return Ok(refusal);
    }
    let page = ImportPage {
        layout: ConsoleLayout::of("Importer le registre", Some(&staff)),
        csrf: staff.csrf.clone(),
        preview: None,
    };
    Ok(render(StatusCode::OK, &page))
}

/// `POST /console/import`: the file checked and compared, nothing changed.
pub(crate) async fn check(State(p): State<Portal>, staff: Staff, req: Request) -> Answer {
    if let Err(refusal) = staff.may(&p, StaffAction::ImportRegistry) {
        return Ok(refusal);
    }
    let Ok(mut multipart) = Multipart::from_request(req, &p).await else {
        return Ok(bad_file(&p, &staff, "Le fichier n'a pas été reçu : choisissez-le, puis envoyez.".to_owned()));
    };
    let (mut csrf, mut file) = (String::new(), None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("csrf") => csrf = field.text().await.unwrap_or_default(),
                Some("fichier") => {
                    let name = clean_name(field.file_name().unwrap_or_default());
                    match field.bytes().await {
                        Ok(bytes) => file = Some((name, bytes)),
                        Err(_) => {
                            let text = format!("Le fichier dépasse {} Mo, ou n'a pas été reçu entier.", MAX_FILE >> 20);
                            return Ok(bad_file(&p, &staff, text));
                        }
                    }
                }
                _ => {}
            },
            Ok(None) => break,
            Err(_) => return Ok(bad_file(&p, &staff, "L'envoi n'a pas pu être lu : recommencez.".to_owned())),
        }
    }
    if !crate::session::constant_time_eq(csrf.as_bytes(), staff.csrf.as_bytes()) {
        return Ok(forbidden_csrf(&p, &staff));
    }
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Ok(bad_file(&p, &staff, "Aucun fichier : choisissez le registre (CSV), puis envoyez.".to_owned()));
    };
    let parsed = match registry::parse(&bytes, &p.settings().campaign.addresses) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(bad_file(&p, &staff, format!("{name} ne peut pas être importé : {e}."))),
    };
    let known = p.store().known_mailboxes().await?;
    let preview = preview(name, &bytes, &parsed, &known);
    let page = ImportPage {
        layout: ConsoleLayout::of("Importer le registre : vérification", Some(&staff)),
        csrf: staff.csrf.clone(),
        preview: Some(preview),
    };
    Ok(render(StatusCode::OK, &page))
}

/// What the page shows of a parsed file against the campaign.
fn preview(name: String, bytes: &[u8], parsed: &Parsed, known: &[registry::KnownMailbox]) -> Preview {
    let plan = registry::plan_import(known, &parsed.rows);
    let updated: Vec<String> = plan
        .updated
        .iter()
        .take(SHOWN)
        .map(|(row, changes)| {
            let what: Vec<String> =
                changes.iter().map(|c| format!("{} : « {} » → « {} »", c.field, c.old, c.new)).collect();
            format!("{} (ligne {}) : {}", row.address, row.line, what.join(", "))
        })
        .collect();
    Preview {
        name,
        encoding: encoding_fr(parsed.encoding),
        delimiter: delimiter_fr(parsed.delimiter),
        valid: parsed.rows.len(),
        errors: parsed.errors.iter().take(SHOWN).map(|e| format!("ligne {} : {}", e.line, e.message_fr)).collect(),
        errors_total: parsed.errors.len(),
        new: plan.new.iter().take(SHOWN).map(|r| format!("{} — {}", r.address, r.name)).collect(),
        new_total: plan.new.len(),
        updated,
        updated_total: plan.updated.len(),
        unchanged: plan.unchanged,
        missing: plan.missing.iter().take(SHOWN).cloned().collect(),
        missing_total: plan.missing.len(),
        file: STANDARD.encode(bytes),
        digest: hex(&Sha256::digest(bytes)),
    }
}

/// `POST /console/import/appliquer`: the file shown on the check page, applied.
pub(crate) async fn apply(State(p): State<Portal>, staff: Staff, req: Request) -> Answer {
    if let Err(refusal) = staff.may(&p, StaffAction::ImportRegistry) {
        return Ok(refusal);
    }
    let form = match StaffForm::from_request(req, &p).await {
        Ok(form) => form,
        Err(refusal) => return Ok(refusal),
    };
    let reason = match bma_engine::operations::Reason::new(form.field("motif")) {
        Ok(r) => r,
        Err(_) => {
            let text = "Le motif est obligatoire : il est enregistré dans l'historique avec votre nom.".to_owned();
            return Ok(ConsoleMessage::page(
                &p,
                Some(&staff),
                StatusCode::BAD_REQUEST,
                "Import non effectué",
                vec![text],
            ));
        }
    };
    let bytes = STANDARD.decode(form.field("fichier")).unwrap_or_default();
    if bytes.is_empty() || hex(&Sha256::digest(&bytes)) != form.field("empreinte") {
        return Ok(bad_file(
            &p,
            &staff,
            "Le fichier confirmé n'est pas celui qui a été vérifié : recommencez.".to_owned(),
        ));
    }
    let name = clean_name(form.field("nom"));
    let parsed = match registry::parse(&bytes, &p.settings().campaign.addresses) {
        Ok(parsed) if parsed.errors.is_empty() => parsed,
        _ => return Ok(bad_file(&p, &staff, format!("{name} a des lignes invalides : rien n'a été importé."))),
    };
    let source = format!("{name} (console, motif : {})", reason.as_str());
    let outcome = p.store().apply_import(&parsed.rows, &source, &staff.actor(), p.now()).await?;
    tracing::info!(created = outcome.created, updated = outcome.updated, "registry imported from the console");
    let mut lines = vec![format!(
        "Import effectué : {} nouvelle(s) boîte(s), {} mise(s) à jour, {} inchangée(s).",
        outcome.created, outcome.updated, outcome.unchanged
    )];
    if !outcome.missing.is_empty() {
        lines.push(format!(
            "{} boîte(s) de la campagne ne sont pas dans ce fichier : elles sont gardées, rien n'est supprimé.",
            outcome.missing.len()
        ));
    }
    Ok(ConsoleMessage::page(&p, Some(&staff), StatusCode::OK, "Registre importé", lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_cleaned() {
        for (raw, want) in [
            ("registre.csv", "registre.csv"),
            ("C:\\Users\\sgne\\Bureau\\registre 2024.csv", "registre 2024.csv"),
            ("../../etc/passwd", "passwd"),
            ("a\r\nb.csv", "ab.csv"),
            ("", "registre.csv"),
            ("   ", "registre.csv"),
        ] {
            assert_eq!(clean_name(raw), want, "{raw:?}");
        }
        assert_eq!(clean_name(&"x".repeat(300)).len(), 100);
    }
}
