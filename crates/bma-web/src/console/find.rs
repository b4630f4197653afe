//! Finding the caller: the console's home page is its search.
//!
//! Rules: the search runs over an index in memory (`bma_core::search`
//! entries beside the store's rows); before each search the index is
//! brought up to date with the mailboxes that had an event since it was
//! last read (every change of what the search knows writes one), so a
//! form received a second ago is found, and a quiet campaign costs one
//! `MAX(id)` query per search; searches arriving while a check runs share
//! the next one (a check begun after a search arrived serves it). The page shows state and phase at a glance
//! and links each result to the mailbox's page.

use std::collections::HashMap;
use std::time::Instant;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use bma_core::search::{Entry, rank};
use bma_store::{SearchRow, Store, StoreError};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::auth::Staff;
use super::pages::{ConsoleLayout, render};
use crate::Portal;
use crate::error::Answer;

/// The most results a search shows.
pub(crate) const MAX_RESULTS: usize = 50;

/// The search index: the rows, their entries, and the last event read.
#[derive(Debug, Default)]
pub(crate) struct Index {
    inner: RwLock<Indexed>,
    /// When the last check against the store that succeeded began: held
    /// while checking, so searches arriving together share one check.
    checked: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Indexed {
    /// The latest event id the rows reflect (`None`: never read).
    seen: Option<i64>,
    rows: Vec<SearchRow>,
    entries: Vec<Entry>,
    position: HashMap<i64, usize>,
}

fn entry_of(r: &SearchRow) -> Entry {
    Entry::new(&r.address, r.fase, std::iter::once(r.name.as_str()).chain(r.people.iter().map(String::as_str)))
}

impl Indexed {
    fn rebuild(&mut self, rows: Vec<SearchRow>) {
        self.entries = rows.iter().map(entry_of).collect();
        self.position = rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        self.rows = rows;
    }
}

impl Index {
    /// Brings the index up to date with the store as it was when the
    /// search arrived: a check begun after that is as good as its own, so
    /// many searches at once cost one or two checks, not one each.
    async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let arrived = Instant::now();
        let mut checked = self.checked.lock().await;
        if checked.is_some_and(|began| began > arrived) {
            return Ok(());
        }
        let began = Instant::now();
        self.check(store).await?;
        *checked = Some(began);
        Ok(())
    }

    /// Reads what changed since the index was last read, if anything did.
    async fn check(&self, store: &Store) -> Result<(), StoreError> {
        let latest = store.latest_event_id().await?;
        if self.inner.read().await.seen == Some(latest) {
            return Ok(());
        }
        let mut ix = self.inner.write().await;
        match ix.seen {
            Some(seen) if seen == latest => {}
            Some(seen) => {
                let changed = store.search_rows(Some(seen)).await?;
                let mut added = false;
                for row in changed {
                    match ix.position.get(&row.id).copied() {
                        Some(i) => {
                            ix.entries[i] = entry_of(&row);
                            ix.rows[i] = row;
                        }
                        None => {
                            ix.rows.push(row);
                            added = true;
                        }
                    }
                }
                if added {
                    let mut rows = std::mem::take(&mut ix.rows);
                    rows.sort_by(|a, b| a.address.cmp(&b.address));
                    ix.rebuild(rows);
                }
                ix.seen = Some(latest);
            }
            None => {
                let rows = store.search_rows(None).await?;
                ix.rebuild(rows);
                ix.seen = Some(latest);
            }
        }
        Ok(())
    }

    /// The rows best answering `query`, best first.
    pub(crate) async fn search(&self, store: &Store, query: &str) -> Result<Vec<SearchRow>, StoreError> {
        self.refresh(store).await?;
        let ix = self.inner.read().await;
        Ok(rank(&ix.entries, query, MAX_RESULTS).into_iter().map(|i| ix.rows[i].clone()).collect())
    }
}

/// A result line.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    address: String,
    name: String,
    fase: u32,
    state: &'static str,
    state_code: &'static str,
    phase: String,
    wave: String,
    people: String,
}

/// The search page.
#[derive(Template)]
#[template(path = "console/search.html")]
pub(crate) struct SearchPage {
    layout: ConsoleLayout,
    query: String,
    searched: bool,
    results: Vec<Found>,
}

/// The query string of the search.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /console?q=…`: the search and its results.
pub(crate) async fn home(
    State(p): State<Portal>,
    staff: Staff,
    Query(SearchQuery { q }): Query<SearchQuery>,
) -> Answer {
    let Some(console) = p.console() else {
        return Ok(crate::site::not_found_page(&p));
    };
    let query = q.trim().to_owned();
    let results = if query.is_empty() { Vec::new() } else { console.index.search(p.store(), &query).await? };
    let contacts = &p.settings().campaign.contacts;
    let results = results
        .into_iter()
        .map(|r| Found {
            phase: contacts.for_state(r.state, None).name.clone(),
            state: r.state.label_fr(),
            state_code: r.state.as_str(),
            wave: r.wave.map_or_else(String::new, bma_core::settings::date_fr),
            people: r.people.join(", "),
            address: r.address,
            name: r.name,
            fase: r.fase,
        })
        .collect();
    let page = SearchPage {
        layout: ConsoleLayout::of("Rechercher une boîte", Some(&staff)),
        searched: !query.is_empty(),
        query,
        results,
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hold_the_people_and_the_establishment() {
        let row = SearchRow {
            id: 1,
            address: "ec001234@adm.cfwb.be".into(),
            fase: 1234,
            name: "École Sainte-Marie".into(),
            state: bma_core::State::Enrolled,
            wave: None,
            people: vec!["Marie Dupont".into()],
        };
        let e = [entry_of(&row)];
        assert_eq!(rank(&e, "dupont marie", 5), [0]);
        assert_eq!(rank(&e, "ecole sainte", 5), [0]);
        assert!(rank(&e, "martin", 5).is_empty());
    }
}
