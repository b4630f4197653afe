//! A row's columns by name, read alike from a database row or from the
//! same row aggregated into a JSON object (`json_group_array(json_object(…))`
//! on SQLite, `json_agg` on PostgreSQL), so each record is decoded by one
//! function whichever way it was read.
//!
//! Rules: integers are `BIGINT` columns (JSON numbers), text is `TEXT`
//! (JSON strings), `NULL` is JSON `null`; a column missing from the JSON
//! object, or of another type, is a [`StoreError::Corrupt`] naming it.

use serde_json::{Map, Value};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Backend, StoreError};

/// A row's columns by name.
pub(crate) trait Cols {
    /// A `BIGINT NOT NULL` column.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// A nullable `BIGINT` column.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    /// A `TEXT NOT NULL` column.
    fn text(&self, column: &str) -> Result<String, StoreError>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
}

impl Cols for AnyRow {
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

fn corrupt(column: &str, value: Option<&Value>) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {}", value.map_or_else(|| "missing".to_owned(), Value::to_string)))
}

impl Cols for Map<String, Value> {
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.opt_int(column)?.ok_or_else(|| corrupt(column, self.get(column)))
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.get(column) {
            Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| corrupt(column, self.get(column))),
            other => Err(corrupt(column, other)),
        }
    }
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.opt_text(column)?.ok_or_else(|| corrupt(column, self.get(column)))
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.get(column) {
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            other => Err(corrupt(column, other)),
        }
    }
}

/// A subquery giving the rows of `from` (a table and its `WHERE`) as one
/// JSON array text of objects, one member per column of `columns` (comma
/// separated, each a column name or `expression AS name`), in `order`
/// (over those names), the first `limit` rows if given.
pub(crate) fn json_rows(backend: Backend, columns: &str, from: &str, order: &str, limit: Option<usize>) -> String {
    let limit = limit.map_or_else(String::new, |n| format!(" LIMIT {n}"));
    match backend {
        Backend::Sqlite => {
            let pairs: Vec<String> = columns
                .split(',')
                .map(|c| c.rsplit(" AS ").next().unwrap_or(c).trim())
                .map(|name| format!("'{name}', {name}"))
                .collect();
            format!(
                "(SELECT json_group_array(json_object({})) FROM (SELECT {columns} FROM {from} ORDER BY {order}{limit}))",
                pairs.join(", ")
            )
        }
        Backend::Postgres => format!(
            "(SELECT COALESCE(json_agg(t ORDER BY {order}), '[]'::json)::text \
             FROM (SELECT {columns} FROM {from} ORDER BY {order}{limit}) t)"
        ),
    }
}

/// The objects of a JSON array text read by [`json_rows`].
pub(crate) fn json_objects(text: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
    let rows: Vec<Value> = serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("JSON rows: {e}")))?;
    rows.into_iter()
        .map(|v| match v {
            Value::Object(map) => Ok(map),
            other => Err(StoreError::Corrupt(format!("JSON row: {other}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_columns_by_type() {
        let row: Map<String, Value> = serde_json::from_str(
            r#"{"n": 1700000000123, "none": null, "t": "école", "big": 1e300, "neg": -4, "s": "4"}"#,
        )
        .unwrap();
        assert_eq!(row.int("n").unwrap(), 1_700_000_000_123);
        assert_eq!(row.int("neg").unwrap(), -4);
        assert_eq!(row.opt_int("none").unwrap(), None);
        assert_eq!(row.text("t").unwrap(), "école");
        assert_eq!(row.opt_text("none").unwrap(), None);
        // (column, read as) → refused with the column's name
        type Refuses = fn(&Map<String, Value>, &str) -> bool;
        let refused: [(&str, Refuses); 6] = [
            ("missing", |r, c| r.int(c).is_err()),
            ("none", |r, c| r.int(c).is_err()),
            ("none", |r, c| r.text(c).is_err()),
            ("big", |r, c| r.opt_int(c).is_err()),
            ("s", |r, c| r.int(c).is_err()),
            ("n", |r, c| r.opt_text(c).is_err()),
        ];
        for (column, refuses) in refused {
            assert!(refuses(&row, column), "{column}");
        }
        assert!(row.int("missing").unwrap_err().to_string().contains("column missing: missing"));
        assert!(json_objects("[1]").is_err());
        assert!(json_objects("[]").unwrap().is_empty());
    }
}
