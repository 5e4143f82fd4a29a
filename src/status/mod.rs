//! The status page at `/`, each association's view and the JSON at `/api/v1/status`: what the
//! exporter sees, per pair and per association. Each is made on request from the [`Published`]
//! the renderer published, whose snapshots are shared, not copied: a page renders at most
//! [`MAX_ROWS`] rows, a view one association, and the JSON is serialised a batch at a time
//! as the client reads it. No request calls AWS or copies the fleet. No value from SSM or the
//! configuration reaches the HTML unescaped: the templates escape every value
//! (`html::Entities`).
//!
//! One idea a file: `select` picks and orders the rows, `model` holds the JSON's shapes,
//! `html` writes the pages and `json` streams the document; `verdict` judges failed and
//! overdue for them.

mod html;
mod json;
mod model;
mod select;
mod verdict;

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;

use crate::board::Published;
use html::{AssociationPage, Counted, StatusPage, decode, encode, render};
use model::{Head, unix};
use select::{Entry, first_rows};

pub use json::StatusJson;
pub use model::{
    AssociationStatus, Build, CycleStatus, EventsStatus, ExecutionStatus, FailedTargetStatus,
    FailedTargetsStatus, PairStatus, ScheduleStatus, TargetCountStatus,
};
pub use select::{MAX_ROWS, NO_EXECUTION};

pub const HTML_TYPE: &str = "text/html; charset=utf-8";
pub const JSON_TYPE: &str = "application/json";

/// This build, as the page names it.
pub const BUILD: Build = Build {
    version: env!("CARGO_PKG_VERSION"),
    rustc: env!("SAE_RUSTC_VERSION"),
};

impl Published {
    /// Whether the renderer has published the board: before, it has no pair.
    pub fn is_published(&self) -> bool {
        !self.posts.pairs().is_empty()
    }

    /// The page as of `now`: its head, the filters with their counts, and the first
    /// [`MAX_ROWS`] rows of every association, or of those with the status that `filter`
    /// (the `status` query value, percent-encoded as the filter's link spells it) names.
    /// `None` for a status no association has.
    pub fn index(
        &self,
        filter: Option<&str>,
        now: SystemTime,
        build: Build,
        telemetry_path: &str,
    ) -> Option<Bytes> {
        let (mut watched, mut failed, mut overdue) = (0, 0, 0);
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        for (e, _) in self.entries(now) {
            watched += 1;
            failed += usize::from(e.failed);
            overdue += usize::from(e.overdue);
            *by_status.entry(e.filter_key()).or_default() += 1;
        }
        let current = match filter {
            Some(query) => Some(*by_status.keys().find(|k| encode(k) == query)?),
            None => None,
        };
        let mut shown: Vec<Entry<'_>> = self
            .entries(now)
            .map(|(e, _)| e)
            .filter(|e| current.is_none_or(|c| e.filter_key() == c))
            .collect();
        let matching = shown.len();
        first_rows(&mut shown);

        let placed = self.posts.pairs().iter().any(|p| p.place.is_some());
        let choices: Vec<(Option<&str>, usize)> = std::iter::once((None, watched))
            .chain(by_status.iter().map(|(k, n)| (Some(*k), *n)))
            .collect();
        let page = StatusPage {
            head: Head::of(self, now, build),
            counted: Counted {
                watched,
                failed,
                overdue,
            },
            telemetry_path,
            choices: &choices,
            current,
            placed,
            shown: &shown,
            matching,
            now,
        };
        Some(Bytes::from(render(&page)))
    }

    /// The view, as of `now`, of the association whose ID its link spells as `id`
    /// (percent-encoded): its facts in every pair that has it. `None` when no pair has it.
    pub fn association(&self, id: &str, now: SystemTime) -> Option<Bytes> {
        let id = decode(id)?;
        let mut found: Vec<Entry<'_>> = self
            .posts
            .pairs()
            .iter()
            .enumerate()
            .filter_map(|(slot, posted)| {
                Some(Entry::new(slot, posted, posted.snapshot.get(&id)?, now))
            })
            .collect();
        if found.is_empty() {
            return None;
        }
        found.sort_by(Entry::order);
        let page = AssociationPage {
            found: &found,
            now,
            rendered_unix: unix(now),
        };
        Some(Bytes::from(render(&page)))
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use crate::telemetry::EventsHealth;
    use hyper::body::Body as _;
    use serde::Serialize;
    use serde_json::{Value, json};

    use super::model::{association_status, cycle_status, events_status};
    use super::*;
    use crate::board::{Board, Posts};
    use crate::config::Place;
    use crate::snapshot::{
        AssociationState, ExecutionState, FailedTargets, LastSuccess, Snapshot, TargetCounts,
        Timing,
    };
    use crate::ssm::{Association, Execution, ScheduleFields, Target};
    use crate::telemetry::CycleOutcome;

    pub(super) const NOW: f64 = 1_700_000_600.0;
    pub(super) const TEST_BUILD: Build = Build {
        version: "0.0.0-test",
        rustc: "1.0.0",
    };

    pub(super) fn at(seconds: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    /// The whole document in one value, as the renderer once built it for every change of
    /// the board: what the streamed JSON must equal byte for byte.
    #[derive(Debug, Serialize)]
    pub(super) struct Status {
        build: Build,
        rendered_unix: f64,
        generation: u64,
        config: String,
        ready: bool,
        events: Option<EventsStatus>,
        pairs: Vec<PairStatus>,
        pub(super) associations: Vec<AssociationStatus>,
    }

    impl Status {
        pub(super) fn of(
            posts: &Posts,
            events: Option<&EventsHealth>,
            now: SystemTime,
            build: Build,
        ) -> Status {
            let mut associations = Vec::new();
            let mut pairs = Vec::new();
            for (slot, posted) in posts.pairs().iter().enumerate() {
                let account_id = posted.place.as_ref().map(|p| p.account_id.clone());
                let region = posted.place.as_ref().map(|p| p.region.clone());
                pairs.push(PairStatus {
                    account_id: account_id.clone(),
                    region: region.clone(),
                    cycles: posted.cycles,
                    targeted_polls: posted.targeted,
                    associations: posted.snapshot.associations.len(),
                    last_cycle: posted.last_cycle.as_ref().map(cycle_status),
                });
                for a in &posted.snapshot.associations {
                    let status = association_status(a, account_id.clone(), region.clone(), now);
                    associations.push((slot, status));
                }
            }
            associations.sort_by(|(slot_a, a), (slot_b, b)| {
                (!a.failed, !a.overdue, slot_a, &a.name, &a.association_id).cmp(&(
                    !b.failed,
                    !b.overdue,
                    slot_b,
                    &b.name,
                    &b.association_id,
                ))
            });
            Status {
                build,
                rendered_unix: unix(now),
                generation: posts.generation(),
                config: posts.summary().to_owned(),
                ready: posts.ready(),
                events: events.map(events_status),
                pairs,
                associations: associations.into_iter().map(|(_, a)| a).collect(),
            }
        }
    }

    /// The body's frames, taken as hyper takes them.
    pub(super) fn frames(mut body: StatusJson) -> Vec<Bytes> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut frames = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            let frame = frame.expect("infallible");
            frames.push(frame.into_data().expect("a data frame"));
        }
        assert!(body.done);
        frames
    }

    pub(super) fn json(published: &Published) -> Vec<u8> {
        frames(StatusJson::new(
            Arc::new(published.clone()),
            at(NOW),
            TEST_BUILD,
        ))
        .concat()
    }

    pub(super) fn whole(published: &Published) -> Vec<u8> {
        let status = Status::of(
            &published.posts,
            published.events.as_ref(),
            at(NOW),
            TEST_BUILD,
        );
        serde_json::to_vec(&status).expect("JSON")
    }

    pub(super) fn index(published: &Published, filter: Option<&str>) -> Option<String> {
        published
            .index(filter, at(NOW), TEST_BUILD, "/metrics")
            .map(|b| String::from_utf8(b.to_vec()).expect("utf-8"))
    }

    fn association(published: &Published, id: &str) -> Option<String> {
        published
            .association(id, at(NOW))
            .map(|b| String::from_utf8(b.to_vec()).expect("utf-8"))
    }

    pub(super) fn last_cycle(finished: f64) -> CycleOutcome {
        CycleOutcome {
            finished: at(finished),
            duration: Duration::ZERO,
            watched: 0,
            calls: 0,
            throttled: 0,
            failures: 0,
            error_kind: None,
            listed: true,
        }
    }

    /// The association IDs of a page's rows, in order.
    pub(super) fn row_ids(html: &str) -> Vec<String> {
        html.lines()
            .filter(|l| l.starts_with("<tr") && l.contains("/association/"))
            .map(|l| {
                let start = l.find("/association/").expect("link") + 13;
                let end = start + l[start..].find('"').expect("link's end");
                l[start..end].to_owned()
            })
            .collect()
    }

    pub(super) fn target(id: &str, status: &str, detailed: &str) -> Target {
        Target {
            resource_id: Some(id.into()),
            status: Some(status.into()),
            detailed_status: Some(detailed.into()),
            resource_type: Some("ManagedInstance".into()),
        }
    }

    /// An association that ran once, over `targets`, polled at `polled`.
    pub(super) fn ran(
        id: &str,
        name: &str,
        status: &str,
        targets: &[Target],
        naming: Option<usize>,
        polled: f64,
    ) -> AssociationState {
        let mut counts = TargetCounts::default();
        let mut failed = naming.map(FailedTargets::new);
        for t in targets {
            counts.add(t);
            if let Some(f) = &mut failed {
                f.add(t);
            }
        }
        AssociationState {
            association: Association {
                association_id: id.into(),
                association_name: Some(name.into()),
                document_name: Some("AWS-RunShellScript".into()),
                document_version: Some("1".into()),
                association_version: Some("1".into()),
                last_execution_date: Some(at(1_700_000_000.0)),
                overview: None,
                ..Association::default()
            },
            finished: Some(Arc::new(ExecutionState {
                execution: Execution {
                    execution_id: format!("{}-e", &id[..8]),
                    status: Some(status.into()),
                    detailed_status: Some(status.into()),
                    created_time: Some(at(1_700_000_000.0)),
                    resource_count_by_status: None,
                },
                targets: counts,
                filters: Vec::new(),
                read_at: at(polled),
                failed,
                pinned: false,
            })),
            running: None,
            last_successful_execution: LastSuccess::Unknown,
            timing: Timing::Unscheduled,
            poll_ok: true,
            last_good_poll: Some(at(polled)),
            error_kind: None,
        }
    }

    /// An execution in progress over `targets`, started at `started`.
    pub(super) fn running(
        id: &str,
        status: &str,
        targets: &[Target],
        started: f64,
    ) -> Arc<ExecutionState> {
        let mut counts = TargetCounts::default();
        for t in targets {
            counts.add(t);
        }
        Arc::new(ExecutionState {
            execution: Execution {
                execution_id: format!("{}-r", &id[..8]),
                status: Some(status.into()),
                detailed_status: Some(status.into()),
                created_time: Some(at(started)),
                resource_count_by_status: None,
            },
            targets: counts,
            filters: Vec::new(),
            read_at: at(NOW),
            failed: None,
            pinned: false,
        })
    }

    /// `a` on `expression` with `offset_days`, its last run started at `last_start`: its
    /// timing as the schedule's own reckoning has it.
    fn scheduled(a: &mut AssociationState, expression: &str, offset_days: u8, last_start: f64) {
        a.association.schedule.expression = Some(expression.into());
        a.association.schedule.offset_days = Some(offset_days).filter(|d| *d > 0);
        a.association.last_execution_date = Some(at(last_start));
        let schedule = crate::schedule::parse(expression).expect("a schedule");
        let offset = u32::from(offset_days);
        let next_run = schedule.next_run(Some(at(last_start)), None, offset);
        a.timing = Timing::Scheduled {
            next_run,
            interval: next_run.and_then(|next| schedule.interval(next, offset)),
        };
    }

    pub(super) fn place(account_id: &str, region: &str) -> Option<Place> {
        Some(Place {
            account_id: account_id.into(),
            region: region.into(),
        })
    }

    /// Two pairs. One whose last cycle went well: a success on `rate(30 minutes)` whose next
    /// run is overdue; a failed run whose name carries markup, on a weekly cron schedule with
    /// an offset, its next run already running; a success whose schedule carries markup and
    /// could not be read. One throttled, with a pinned run it could not re-read and an
    /// association it never could.
    pub(super) fn fixture() -> Published {
        let board = Board::new(
            [
                place("111111111111", "us-east-1"),
                place("222222222222", "eu-west-1"),
            ],
            "discovery of every association named <prod>*, poll interval 1m",
        );
        let mut east = Snapshot::default();
        let mut overdue = ran(
            "11111111-1111-1111-1111-111111111111",
            "patch-linux",
            "Success",
            &[
                target("i-01", "Success", "Success"),
                target("i-02", "Success", "Success"),
            ],
            None,
            NOW - 30.0,
        );
        // Its schedule stopped firing: the last run, two hours ago, was its last success.
        scheduled(&mut overdue, "rate(30 minutes)", 0, NOW - 7_200.0);
        if let Some(e) = &mut overdue.finished {
            Arc::make_mut(e).execution.created_time = Some(at(NOW - 7_200.0));
        }
        overdue.last_successful_execution = LastSuccess::At(at(NOW - 7_200.0));
        east.associations.push(overdue);
        let id = "22222222-2222-2222-2222-222222222222";
        let mut weekly = ran(
            id,
            "<script>alert(1)</script>",
            "Failed",
            &[
                target("i-03", "Success", "Success"),
                target("i-05", "Failed", "Failed"),
                target("i-04", "TimedOut", "DeliveryTimedOut"),
                target("i-06", "Failed", "Undeliverable"),
            ],
            Some(2),
            NOW - 30.0,
        );
        // Sundays at 22:00 two days on: Tuesdays, the day NOW is. Last week's run failed; this
        // week's started 23m 20s ago; the one before last week's was the last success.
        let this_week = 1_699_999_200.0;
        let week = 604_800.0;
        if let Some(e) = &mut weekly.finished {
            Arc::make_mut(e).execution.created_time = Some(at(this_week - week));
        }
        weekly.running = Some(running(
            id,
            "InProgress",
            &[
                target("i-03", "Success", "Success"),
                target("i-04", "InProgress", "InProgress"),
                target("i-05", "Pending", "Pending"),
                target("i-06", "Failed", "Failed"),
            ],
            this_week,
        ));
        scheduled(&mut weekly, "cron(0 22 ? * SUN *)", 2, this_week);
        weekly.association.schedule.duration_hours = Some(4);
        weekly.association.schedule.apply_only_at_cron_interval = Some(true);
        weekly.last_successful_execution = LastSuccess::At(at(this_week - 2.0 * week));
        east.associations.push(weekly);
        let mut unparsed = ran(
            "66666666-6666-6666-6666-666666666666",
            "baseline",
            "Success",
            &[target("i-09", "Success", "Success")],
            None,
            NOW - 30.0,
        );
        unparsed.association.schedule = ScheduleFields {
            expression: Some("rate(<b>2</b> fortnights)".into()),
            ..ScheduleFields::default()
        };
        unparsed.timing = Timing::Unparsed;
        east.associations.push(unparsed);
        let mut pinned = ran(
            "33333333-3333-3333-3333-333333333333",
            "inventory",
            "InProgress",
            &[
                target("i-07", "InProgress", "InProgress"),
                target("i-08", "Success", "Success"),
            ],
            None,
            NOW - 3_725.0,
        );
        pinned.poll_ok = false;
        pinned.error_kind = Some("throttled");
        pinned.last_successful_execution = LastSuccess::None;
        if let Some(e) = &mut pinned.finished {
            std::sync::Arc::make_mut(e).pinned = true;
        }
        let never = AssociationState {
            error_kind: Some("timeout"),
            ..AssociationState::unknown("44444444-4444-4444-4444-444444444444")
        };
        let west = Snapshot {
            associations: vec![pinned, never],
            region_associations: None,
            listing_refused: None,
        };
        board.post(
            0,
            Arc::new(east),
            3,
            CycleOutcome {
                finished: at(NOW - 30.0),
                duration: Duration::from_millis(1_250),
                watched: 0,
                calls: 7,
                throttled: 0,
                failures: 0,
                error_kind: None,
                listed: true,
            },
        );
        board.post(
            1,
            Arc::new(west),
            2,
            CycleOutcome {
                finished: at(NOW - 90.0),
                duration: Duration::from_secs(30),
                watched: 0,
                calls: 12,
                throttled: 4,
                failures: 2,
                error_kind: Some("throttled"),
                listed: true,
            },
        );
        let posts = board.subscribe().borrow().clone();
        Published {
            posts,
            events: None,
        }
    }

    /// UPDATE_GOLDEN=1 rewrites the files; review their diff before committing them.
    fn golden(name: &str, got: &str) {
        let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, got).expect("write golden file");
        }
        let expected = std::fs::read_to_string(&path).expect("read golden file");
        assert_eq!(got, expected, "rendered:\n{got}");
    }

    #[test]
    fn the_page_of_a_fixed_board_matches_its_golden_file() {
        let published = fixture();
        golden("status.html", &index(&published, None).expect("the page"));
        golden(
            "association.html",
            &association(&published, "22222222-2222-2222-2222-222222222222").expect("a view"),
        );
    }

    /// Overdue ones after the failed ones, before the rest: "patch-linux" before "baseline".
    #[test]
    fn failed_ones_come_first_then_overdue_ones_then_by_pair_and_name() {
        let published = fixture();
        let expected = [
            "22222222-2222-2222-2222-222222222222",
            "44444444-4444-4444-4444-444444444444",
            "33333333-3333-3333-3333-333333333333",
            "11111111-1111-1111-1111-111111111111",
            "66666666-6666-6666-6666-666666666666",
        ];
        assert_eq!(
            row_ids(&index(&published, None).expect("the page")),
            expected
        );
        let value: Value = serde_json::from_slice(&json(&published)).expect("JSON");
        let order: Vec<(&str, bool, bool)> = value["associations"]
            .as_array()
            .expect("associations")
            .iter()
            .map(|a| {
                (
                    a["association_id"].as_str().expect("an ID"),
                    a["failed"] == json!(true),
                    a["overdue"] == json!(true),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                (expected[0], true, false),
                (expected[1], true, false),
                (expected[2], true, false),
                (expected[3], false, true),
                (expected[4], false, false),
            ]
        );
    }

    #[test]
    fn markup_in_a_name_or_a_schedule_shows_as_text() {
        let published = fixture();
        let index = index(&published, None).expect("the page");
        let view = association(&published, "22222222-2222-2222-2222-222222222222").expect("a view");
        for html in [&index, &view] {
            assert!(!html.contains("<script"), "{html}");
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{html}"
            );
        }
        assert!(index.contains("named &lt;prod&gt;*"), "{index}");
        let view = association(&published, "66666666-6666-6666-6666-666666666666").expect("a view");
        assert!(!view.contains("<b>"), "{view}");
        assert!(
            view.contains(
                "<tr><th>Schedule</th><td><code>rate(&lt;b&gt;2&lt;/b&gt; fortnights)</code> <span class=\"c other\">unparsed</span></td></tr>"
            ),
            "{view}"
        );
    }

    /// The facts of a schedule in a view and a row: ahead, overdue, unparsed or none, and
    /// the running execution's progress beside the finished one's counts.
    #[test]
    fn a_view_and_a_row_tell_when_it_runs_next_and_how_far_the_run_is() {
        let published = fixture();
        let fact = |id: &str, name: &str| -> String {
            let view = association(&published, id).expect("a view");
            let start = format!("<tr><th>{name}</th><td>");
            let line = view
                .lines()
                .find_map(|l| l.strip_prefix(&start))
                .unwrap_or_else(|| panic!("{name} in {view}"));
            line.strip_suffix("</td></tr>").unwrap_or(line).to_owned()
        };
        let weekly = "22222222-2222-2222-2222-222222222222";
        let overdue = "11111111-1111-1111-1111-111111111111";
        let pinned = "33333333-3333-3333-3333-333333333333";
        let unparsed = "66666666-6666-6666-6666-666666666666";
        for (id, name, expected) in [
            (weekly, "Schedule", "<code>cron(0 22 ? * SUN *)</code>"),
            (weekly, "Schedule offset", "2 days"),
            (weekly, "Duration", "4h, then SSM cancels the run"),
            (weekly, "Apply only at cron interval", "yes"),
            (weekly, "Interval", "7d 0h"),
            (
                weekly,
                "Last run",
                "2023-11-14T22:00:00Z <span class=\"muted\">(23m 20s ago)</span>",
            ),
            (
                weekly,
                "Next run",
                "2023-11-21T22:00:00Z <span title=\"2023-11-21T22:00:00Z\">in 6d 23h</span>",
            ),
            (
                weekly,
                "Last successful execution",
                "2023-10-31T22:00:00Z <span class=\"muted\">(14d 0h ago)</span>",
            ),
            (
                weekly,
                "Progress",
                "<td>4 of 4 done</td><td>2 of 4 done</td>",
            ),
            (overdue, "Schedule offset", "—"),
            (overdue, "Interval", "30m 0s"),
            (
                overdue,
                "Next run",
                "2023-11-14T20:53:20Z <span class=\"c late\" title=\"2023-11-14T20:53:20Z\">overdue 1h 30m</span>",
            ),
            (
                pinned,
                "Schedule",
                "<span class=\"muted\">none: it runs when created or updated</span>",
            ),
            (pinned, "Next run", "—"),
            (pinned, "Last successful execution", "—"),
            (
                unparsed,
                "Next run",
                "<span class=\"muted\">unknown: the schedule could not be read</span>",
            ),
        ] {
            // The executions' rows have a cell per column.
            let got = if name == "Progress" {
                let view = association(&published, id).expect("a view");
                let start = format!("<tr><th>{name}</th>");
                let line = view.lines().find_map(|l| l.strip_prefix(&start));
                line.and_then(|l| l.strip_suffix("</tr>"))
                    .unwrap_or_default()
                    .to_owned()
            } else {
                fact(id, name)
            };
            assert_eq!(got, expected, "{id} {name}");
        }
        let page = index(&published, None).expect("the page");
        let row = |id: &str| {
            page.lines()
                .find(|l| l.contains(&format!("/association/{id}")))
                .expect("a row")
                .to_owned()
        };
        assert!(row(overdue).starts_with("<tr class=\"overdue\">"));
        assert!(row(overdue).contains(
            "<td>—</td><td><span class=\"c late\" title=\"2023-11-14T20:53:20Z\">overdue 1h 30m</span></td>"
        ));
        assert!(row(weekly).contains(
            "<td><span class=\"c run\">InProgress</span> 2 of 4 done</td><td><span title=\"2023-11-21T22:00:00Z\">in 6d 23h</span></td>"
        ));
        assert!(
            row(unparsed).contains("<td>—</td><td><span class=\"c other\">unparsed</span></td>")
        );
        assert!(
            page.contains(
                "<p>5 watched, 3 failed, 1 overdue (listed first, failed before overdue).</p>"
            ),
            "{page}"
        );
    }

    #[test]
    fn a_view_is_found_by_its_id_as_its_link_spells_it() {
        let published = fixture();
        let view = association(&published, "22222222-2222-2222-2222-222222222222");
        assert_eq!(
            association(&published, "%32%32222222-2222-2222-2222-222222222222"),
            view
        );
        for missing in [
            "55555555-5555-5555-5555-555555555555",
            "22222222-2222-2222-2222-22222222222",
            "%3",
            "%zz",
            "%FF",
            "",
        ] {
            assert_eq!(association(&published, missing), None, "{missing}");
        }
        assert_eq!(decode("a%20b%2F%C3%BC"), Some("a b/ü".to_owned()));
        assert_eq!(decode(&encode("<ü> &")), Some("<ü> &".to_owned()));
        assert_eq!(decode("%+1"), None);
    }

    /// An association that two pairs both watch has its facts from each in one view, failed
    /// first.
    #[test]
    fn a_view_shows_the_association_in_every_pair_that_has_it() {
        let id = "55555555-5555-5555-5555-555555555555";
        let board = Board::new(
            [
                place("111111111111", "us-east-1"),
                place("222222222222", "eu-west-1"),
            ],
            "",
        );
        let healthy = ran(id, "shared", "Success", &[], None, NOW - 5.0);
        let mut failing = healthy.clone();
        failing.poll_ok = false;
        for (slot, state) in [healthy, failing].into_iter().enumerate() {
            let snapshot = Snapshot {
                associations: vec![state],
                region_associations: None,
                listing_refused: None,
            };
            board.post(slot, Arc::new(snapshot), 1, last_cycle(NOW));
        }
        let published = Published {
            posts: board.subscribe().borrow().clone(),
            events: None,
        };
        let view = association(&published, id).expect("a view");
        let pairs: Vec<&str> = view
            .lines()
            .filter_map(|l| l.strip_prefix("<tr><th>Pair</th><td>"))
            .collect();
        assert_eq!(
            pairs,
            [
                "222222222222 eu-west-1</td></tr>",
                "111111111111 us-east-1</td></tr>"
            ]
        );
    }
}
