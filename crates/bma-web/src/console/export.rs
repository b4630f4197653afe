//! The console's lists as files: `GET /console/export/{list}.{csv|json}`.
//!
//! Lists: `boites` (every mailbox: address, FASE, name, kind, state,
//! wave, planning), `attention` (what needs a human, oldest first) and
//! `recherche?q=…` (a search's results, with the people of each form).
//!
//! Rules: CSV for Excel as Belgian offices open it (UTF-8 with a BOM,
//! `;` between cells, CRLF), every cell through
//! `bma_core::csv_cell::neutralise` (a cell starting with `= + - @` is
//! not a formula); JSON as an array of objects with the same keys; a list
//! that holds personal data (`recherche`) is refused below the role of
//! `StaffAction::ExportPersonalData`; nothing is cached.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bma_core::csv_cell;
use bma_core::staff::StaffAction;
use serde::Deserialize;

use super::auth::Staff;
use super::mailbox::when;
use crate::Portal;
use crate::error::Answer;

/// A list as rows of named cells.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<String>>,
}

/// The format asked for by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

fn csv_of(t: &Table) -> Result<Vec<u8>, csv::Error> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::WriterBuilder::new().delimiter(b';').terminator(csv::Terminator::CRLF).from_writer(&mut out);
        w.write_record(t.columns)?;
        for row in &t.rows {
            w.write_record(csv_cell::record(row))?;
        }
        w.flush()?;
    }
    Ok(out)
}

fn json_of(t: &Table) -> serde_json::Value {
    serde_json::Value::Array(
        t.rows
            .iter()
            .map(|row| {
                serde_json::Value::Object(
                    t.columns
                        .iter()
                        .zip(row)
                        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(v.as_str())))
                        .collect(),
                )
            })
            .collect(),
    )
}

fn answer(t: &Table, format: Format) -> Response {
    let file = |ext: &str| format!("attachment; filename=\"bma-{}.{ext}\"", t.name);
    match format {
        Format::Csv => match csv_of(t) {
            Ok(bytes) => (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, file("csv")),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "export failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        Format::Json => (
            [(header::CONTENT_TYPE, "application/json".to_owned()), (header::CONTENT_DISPOSITION, file("json"))],
            json_of(t).to_string(),
        )
            .into_response(),
    }
}

/// The query of `recherche`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    #[serde(default)]
    q: String,
}

/// `GET /console/export/{file}`.
pub(crate) async fn list(
    State(p): State<Portal>,
    staff: Staff,
    Path(file): Path<String>,
    Query(ExportQuery { q }): Query<ExportQuery>,
) -> Answer {
    let (name, format) = match file.rsplit_once('.') {
        Some((n, "csv")) => (n, Format::Csv),
        Some((n, "json")) => (n, Format::Json),
        _ => return Ok(crate::site::not_found_page(&p)),
    };
    let store = p.store();
    let table = match name {
        "boites" => Table {
            name: "boites",
            columns: &["adresse", "fase", "nom", "type", "etat", "vague", "epinglee", "exclue", "priorite"],
            rows: store
                .mailboxes()
                .await?
                .into_iter()
                .map(|m| {
                    vec![
                        m.address,
                        m.fase.to_string(),
                        m.name,
                        m.kind.label_fr().to_owned(),
                        m.state.label_fr().to_owned(),
                        m.wave.map(|d| d.to_string()).unwrap_or_default(),
                        m.pinned_wave.map(|d| d.to_string()).unwrap_or_default(),
                        if m.excluded { "oui" } else { "non" }.to_owned(),
                        m.priority.to_string(),
                    ]
                })
                .collect(),
        },
        "attention" => {
            let mut list = store.attention_list().await?;
            list.sort_by_key(|a| a.since);
            Table {
                name: "attention",
                columns: &["adresse", "etat", "a_traiter", "depuis"],
                rows: list
                    .into_iter()
                    .map(|a| {
                        vec![a.address, a.state.label_fr().to_owned(), a.reason.label_fr().to_owned(), when(a.since)]
                    })
                    .collect(),
            }
        }
        "recherche" => {
            if let Err(refused) = staff.may(&p, StaffAction::ExportPersonalData) {
                return Ok(refused);
            }
            let Some(console) = p.console() else {
                return Ok(crate::site::not_found_page(&p));
            };
            Table {
                name: "recherche",
                columns: &["adresse", "fase", "nom", "etat", "personnes"],
                rows: console
                    .index
                    .search(store, &q)
                    .await?
                    .into_iter()
                    .map(|r| {
                        vec![r.address, r.fase.to_string(), r.name, r.state.label_fr().to_owned(), r.people.join(", ")]
                    })
                    .collect(),
            }
        }
        _ => return Ok(crate::site::not_found_page(&p)),
    };
    tracing::info!(list = table.name, rows = table.rows.len(), "console export");
    Ok(answer(&table, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_for_excel_with_formulas_neutralised() {
        let t = Table {
            name: "t",
            columns: &["a", "b"],
            rows: vec![
                vec!["=HYPERLINK(\"x\")".into(), "École; d'Uccle".into()],
                vec!["+32 2".into(), "@x".into()],
                vec!["-1".into(), "ok".into()],
            ],
        };
        let text = String::from_utf8(csv_of(&t).unwrap()).unwrap();
        assert_eq!(text, "\u{feff}a;b\r\n\"'=HYPERLINK(\"\"x\"\")\";\"École; d'Uccle\"\r\n'+32 2;'@x\r\n'-1;ok\r\n");
        assert_eq!(json_of(&t)[0]["a"], "=HYPERLINK(\"x\")", "JSON keeps the values as they are");
    }
}
