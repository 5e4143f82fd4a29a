//! Which associations a page shows, and in what order: every association on the board by
//! reference, with what the page orders and filters it by, and the first [`MAX_ROWS`] of
//! them. Nothing here copies the fleet or writes a byte of the answer.

use std::cmp::Ordering;
use std::time::SystemTime;

use super::model::{AssociationStatus, association_status};
use super::verdict::{execution_status, is_failed, is_overdue};
use crate::board::{PairPost, Published};
use crate::snapshot::AssociationState;

/// Rows the page shows per filter, failed ones first, then overdue ones; the rest are counted,
/// not shown. It bounds the page whatever the fleet: the JSON has every association.
pub const MAX_ROWS: usize = 500;

/// The filter value of associations that never ran.
pub const NO_EXECUTION: &str = "none";

/// One association where the board holds it, by reference, with what the page orders and
/// filters it by.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry<'a> {
    /// Its pair's position on the board.
    pub(super) slot: usize,
    posted: &'a PairPost,
    state: &'a AssociationState,
    pub(super) failed: bool,
    /// As of the request's moment.
    pub(super) overdue: bool,
}

impl<'a> Entry<'a> {
    pub(super) fn new(
        slot: usize,
        posted: &'a PairPost,
        state: &'a AssociationState,
        now: SystemTime,
    ) -> Entry<'a> {
        Entry {
            slot,
            posted,
            state,
            failed: is_failed(state),
            overdue: is_overdue(state, now),
        }
    }

    /// Failed ones first, then overdue ones (a schedule that stopped firing fails silently),
    /// then by pair, name and ID: the order of the page and of the JSON.
    pub(super) fn order(&self, other: &Entry<'a>) -> Ordering {
        self.key().cmp(&other.key())
    }

    fn key(&self) -> (bool, bool, usize, Option<&'a str>, &'a str) {
        (
            !self.failed,
            !self.overdue,
            self.slot,
            self.state.association.association_name.as_deref(),
            self.state.id(),
        )
    }

    /// What the status filter matches: the execution's status, or [`NO_EXECUTION`].
    pub(super) fn filter_key(&self) -> &'a str {
        execution_status(self.state).unwrap_or(NO_EXECUTION)
    }

    pub(super) fn status(&self, now: SystemTime) -> AssociationStatus {
        let place = self.posted.place.as_ref();
        association_status(
            self.state,
            place.map(|p| p.account_id.clone()),
            place.map(|p| p.region.clone()),
            now,
        )
    }
}

impl Published {
    /// Every association on the board as of `now`, pair by pair, with its position in its
    /// pair's snapshot.
    pub(super) fn entries(&self, now: SystemTime) -> impl Iterator<Item = (Entry<'_>, usize)> {
        self.posts
            .pairs()
            .iter()
            .enumerate()
            .flat_map(move |(slot, posted)| {
                posted
                    .snapshot
                    .associations
                    .iter()
                    .enumerate()
                    .map(move |(index, state)| (Entry::new(slot, posted, state, now), index))
            })
    }
}

/// Keeps the first [`MAX_ROWS`] of `entries` in the page's order, sorted: a partial
/// selection, then a sort of the few kept.
pub(super) fn first_rows(entries: &mut Vec<Entry<'_>>) {
    if entries.len() > MAX_ROWS {
        entries.select_nth_unstable_by(MAX_ROWS, Entry::order);
        entries.truncate(MAX_ROWS);
    }
    entries.sort_by(Entry::order);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::board::Board;
    use crate::snapshot::{AssociationState, Snapshot};
    use crate::status::tests::{
        NOW, Status, TEST_BUILD, at, fixture, index, json, last_cycle, ran, row_ids,
    };

    #[test]
    fn a_filter_picks_the_rows_of_one_status() {
        let published = fixture();
        let rows = |filter| row_ids(&index(&published, filter).expect("a page"));
        let short = |ids: Vec<String>| -> Vec<String> {
            ids.into_iter().map(|id| id[..8].to_owned()).collect()
        };
        assert_eq!(
            short(rows(None)),
            ["22222222", "44444444", "33333333", "11111111", "66666666"]
        );
        assert_eq!(short(rows(Some("Failed"))), ["22222222"]);
        assert_eq!(short(rows(Some("Success"))), ["11111111", "66666666"]);
        assert_eq!(short(rows(Some("InProgress"))), ["33333333"]);
        assert_eq!(short(rows(Some(NO_EXECUTION))), ["44444444"]);
        assert_eq!(index(&published, Some("Cancelled")), None);
        assert!(
            index(&published, Some("Failed"))
                .expect("a page")
                .contains("<a href=\"/?status=Failed\" class=\"current\">Failed (1)</a>")
        );
    }

    /// Two pairs of 1,200 associations in all, every third one's poll fine: each filter shows
    /// the first 500 of its own in the document's order and counts the rest.
    #[test]
    fn a_large_fleet_shows_the_first_rows_and_counts_the_rest() {
        let board = Board::new([None, None], "");
        for (slot, range) in [(0, 0..500), (1, 500..MAX_ROWS + 700)] {
            let mut snapshot = Snapshot::default();
            for i in range {
                let id = format!("{i:08}-0000-0000-0000-000000000000");
                let mut a = if i % 2 == 0 {
                    AssociationState::unknown(&id)
                } else {
                    // Names in the reverse of the IDs' order, so that the name orders them.
                    ran(
                        &id,
                        &format!("run-{}", 10_000 - i),
                        "Success",
                        &[],
                        None,
                        NOW,
                    )
                };
                a.poll_ok = i % 3 == 0;
                snapshot.associations.push(a);
            }
            board.post(slot, Arc::new(snapshot), 1, last_cycle(NOW));
        }
        let published = Published {
            posts: board.subscribe().borrow().clone(),
            events: None,
        };
        let order = Status::of(&published.posts, None, at(NOW), TEST_BUILD).associations;
        let first = |filter: Option<&str>| -> Vec<String> {
            order
                .iter()
                .filter(|a| {
                    filter.is_none_or(|f| {
                        a.execution
                            .as_ref()
                            .and_then(|e| e.status.as_deref())
                            .unwrap_or(NO_EXECUTION)
                            == f
                    })
                })
                .take(MAX_ROWS)
                .map(|a| a.association_id.clone())
                .collect()
        };
        let all = index(&published, None).expect("the page");
        assert_eq!(row_ids(&all), first(None));
        let rows: Vec<&str> = all
            .lines()
            .filter(|l| l.starts_with("<tr") && l.contains("/association/"))
            .collect();
        assert!(rows.iter().all(|r| r.starts_with("<tr class=\"failed\">")));
        assert!(
            all.contains(
                "<p>1200 watched, 800 failed, 0 overdue (listed first, failed before overdue).</p>"
            ),
            "{all}"
        );
        assert!(
            all.contains("<p class=\"more\">700 more not shown:"),
            "{all}"
        );
        assert!(
            all.contains(
                " <a href=\"/\" class=\"current\">All (1200)</a> <a href=\"/?status=Success\">Success (600)</a> <a href=\"/?status=none\">No execution (600)</a></nav>"
            ),
            "{all}"
        );
        for (filter, more) in [("Success", 100), (NO_EXECUTION, 100)] {
            let page = index(&published, Some(filter)).expect("a page");
            assert_eq!(row_ids(&page), first(Some(filter)), "{filter}");
            assert!(
                page.contains(&format!("<p class=\"more\">{more} more not shown:")),
                "{filter}"
            );
        }
        let value: Value = serde_json::from_slice(&json(&published)).expect("JSON");
        assert_eq!(
            value["associations"].as_array().map(Vec::len),
            Some(MAX_ROWS + 700)
        );
    }
}
