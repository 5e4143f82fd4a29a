//! One pair's series as text, written family by family straight into gzip members: a [`Part`]
//! is what a cycle of a pair renders, made of [`Chunk`]s that are compressed as they are
//! written and never held as plain text.

use std::io::Write;
use std::time::SystemTime;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::config::Place;
use crate::render::families::{Family, SNAPSHOT_FAMILIES};
use crate::snapshot::{ExecutionState, Snapshot, Timing};
use crate::telemetry::{place_values, with_place_labels};
use crate::timestamp::since_epoch;

/// Text held only as one gzip member, compressed alone: members one after the other make one
/// gzip stream (RFC 1952 §2.2), which is how the exposition's parts are joined without
/// compressing them again. The plain text is not kept: at ten times the size it would be most
/// of what the exporter holds, and a plain scrape is decompressed as it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Chunk {
    pub(super) gzip: Bytes,
    /// The length of the plain text.
    pub(super) plain_len: usize,
    /// The text could not be compressed: the member is empty though the text was not.
    pub(super) incomplete: bool,
}

impl Chunk {
    pub(super) fn new(plain: &[u8]) -> Chunk {
        let mut sink = Compressor::default();
        sink.buffer.extend_from_slice(plain);
        sink.finish()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.plain_len == 0
    }
}

/// Text compressed as it is written, a buffer at a time, so that a family's plain text (8 MB
/// for the targets of 10,000 associations) never exists whole.
#[derive(Default)]
struct Compressor {
    buffer: Vec<u8>,
    encoder: Option<GzEncoder<Vec<u8>>>,
    plain_len: usize,
    failed: bool,
}

impl Compressor {
    /// How much plain text is gathered before it is compressed.
    const BUFFER: usize = 64 * 1024;

    fn compress(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        self.plain_len += self.buffer.len();
        let encoder = self
            .encoder
            .get_or_insert_with(|| GzEncoder::new(Vec::new(), Compression::fast()));
        // Writing to a Vec cannot fail; should it, the chunk says so and the exposition is
        // refused rather than served without these lines.
        self.failed |= encoder.write_all(&self.buffer).is_err();
        self.buffer.clear();
    }

    /// One gzip member of everything written; empty for no text, as a member of nothing adds
    /// nothing.
    fn finish(mut self) -> Chunk {
        self.compress();
        let gzip = match self.encoder.map(GzEncoder::finish) {
            Some(Ok(mut gzip)) => {
                gzip.shrink_to_fit();
                Bytes::from(gzip)
            }
            Some(Err(_)) => {
                self.failed = true;
                Bytes::new()
            }
            None => Bytes::new(),
        };
        Chunk {
            incomplete: self.failed,
            gzip,
            plain_len: self.plain_len,
        }
    }
}

/// The text of a stream of gzip members, for tests.
#[cfg(test)]
pub fn gunzip(stream: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut plain = Vec::new();
    flate2::read::MultiGzDecoder::new(stream)
        .read_to_end(&mut plain)
        .expect("valid gzip");
    plain
}

/// One pair's series, family by family (in [`SNAPSHOT_FAMILIES`]' order), without the HELP and
/// TYPE lines: what a cycle of the pair renders, and all it renders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    pub(super) families: Vec<Chunk>,
}

impl Part {
    /// Renders the series of `snapshot`, with the pair's `place` as labels when the
    /// exposition is `placed`.
    pub fn render(place: Option<&Place>, placed: bool, snapshot: &Snapshot) -> Part {
        let place = place_values(placed, place);
        // One family at a time: the rows being sorted are one family's, not the pair's
        // (70,000 of them at 10,000 associations, about 10 MB), at the cost of walking the
        // snapshot once per family.
        let families = (0..SNAPSHOT_FAMILIES.len())
            .map(|only| {
                let mut families = families(placed);
                for (i, series) in families.iter_mut().enumerate() {
                    series.active = i == only;
                }
                collect(&mut families, 0, &place, snapshot);
                let mut sink = Compressor::default();
                if let Some(series) = families.into_iter().nth(only) {
                    series.write_series_into(&mut sink);
                }
                sink.finish()
            })
            .collect();
        Part { families }
    }
}

/// A family of the snapshot for each of [`SNAPSHOT_FAMILIES`], with no series yet.
pub(super) fn families(placed: bool) -> Vec<Series<'static>> {
    SNAPSHOT_FAMILIES
        .iter()
        .map(|family| Series::new(family, placed))
        .collect()
}

/// Adds the series of `snapshot`, a pair's at `slot` with `place` label values, to
/// `families`, which are in [`SNAPSHOT_FAMILIES`]' order.
pub(super) fn collect<'a>(
    families: &mut [Series<'a>],
    slot: usize,
    place: &[&'a str],
    snapshot: &'a Snapshot,
) {
    let [
        created,
        execution_info,
        unparsed_schedules,
        failed_target,
        failed_omitted,
        info,
        last_execution,
        last_successful_execution,
        poll_last_success,
        max_duration,
        next_run,
        poll_success,
        running_created,
        running_targets,
        schedule_interval,
        targets,
    ] = families
    else {
        return;
    };
    let mut unparsed: u32 = 0;
    for a in &snapshot.associations {
        let id = a.id();
        poll_success.set(slot, &[id], place, if a.poll_ok { 1.0 } else { 0.0 });
        if !a.poll_ok
            && let Some(t) = a.last_good_poll
        {
            // Only while the association's series are older than its pair's last cycle: a
            // value that moved every cycle would make every cycle a change to render.
            poll_last_success.set(slot, &[id], place, seconds(t));
        }
        if a.last_good_poll.is_none() {
            // Never read: there is nothing true to say about it beyond the failure.
            continue;
        }
        let record = &a.association;
        info.set(
            slot,
            &[
                id,
                text(&record.association_name),
                text(&record.document_name),
                text(&record.document_version),
                text(&record.association_version),
                text(&record.schedule.expression),
            ],
            place,
            1.0,
        );
        if let Some(t) = record.last_execution_date {
            last_execution.set(slot, &[id], place, seconds(t));
        }
        if let Some(hours) = record.schedule.duration_hours {
            max_duration.set(slot, &[id], place, f64::from(hours) * 3600.0);
        }
        if let Some(t) = a.last_successful_execution.time() {
            last_successful_execution.set(slot, &[id], place, seconds(t));
        }
        match a.timing {
            Timing::Unscheduled => {}
            Timing::Unparsed => unparsed += 1,
            Timing::Scheduled {
                next_run: next,
                interval,
            } => {
                if let Some(t) = next {
                    next_run.set(slot, &[id], place, seconds(t));
                }
                if let Some(d) = interval {
                    schedule_interval.set(slot, &[id], place, d.as_secs_f64());
                }
            }
        }
        for (e, targets, created) in [
            (&a.finished, &mut *targets, &mut *created),
            (&a.running, &mut *running_targets, &mut *running_created),
        ] {
            let Some(e) = e else { continue };
            let run = &e.execution;
            execution_info.set(
                slot,
                &[
                    id,
                    run.execution_id.as_str(),
                    text(&run.status),
                    text(&run.detailed_status),
                ],
                place,
                1.0,
            );
            if let Some(t) = run.created_time {
                created.set(slot, &[id], place, seconds(t));
            }
            for (key, count) in e.targets.iter() {
                targets.set(
                    slot,
                    &[id, &key.status, &key.detailed_status, &key.resource_type],
                    place,
                    // Counts are far below 2^53: exact as f64.
                    count as f64,
                );
            }
        }
        if let Some(failed) = a.finished.as_ref().and_then(|e| e.failed.as_ref()) {
            for (resource_id, target) in failed.iter() {
                failed_target.set(
                    slot,
                    &[
                        id,
                        resource_id,
                        &target.resource_type,
                        &target.detailed_status,
                    ],
                    place,
                    1.0,
                );
            }
            failed_omitted.set(slot, &[id], place, failed.omitted as f64);
        }
    }
    if !snapshot.associations.is_empty() {
        unparsed_schedules.set(slot, &[], place, f64::from(unparsed));
    }
}

/// Whether `a` and `b` render the same series: equal but for when associations whose last
/// poll succeeded were polled, which is not rendered. Then a cycle that read nothing new
/// renders nothing.
pub fn renders_same(a: &Snapshot, b: &Snapshot) -> bool {
    a.associations.len() == b.associations.len()
        && a.associations.iter().zip(&b.associations).all(|(a, b)| {
            a.association == b.association
                && same_counts(a.finished.as_deref(), b.finished.as_deref())
                && same_counts(a.running.as_deref(), b.running.as_deref())
                && a.last_successful_execution == b.last_successful_execution
                && a.timing == b.timing
                && a.poll_ok == b.poll_ok
                && a.last_good_poll.is_some() == b.last_good_poll.is_some()
                && (a.poll_ok || a.last_good_poll == b.last_good_poll)
        })
}

/// Whether two readings of an execution render the same: when they were read is not rendered,
/// so a running execution read again with the same counts renders nothing.
fn same_counts(a: Option<&ExecutionState>, b: Option<&ExecutionState>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.execution == b.execution && a.targets == b.targets && a.failed == b.failed
        }
        (None, None) => true,
        _ => false,
    }
}

/// The HELP and TYPE lines of `family`.
pub(super) fn write_header_into(out: &mut Vec<u8>, family: &Family) {
    let name = family.name;
    out.extend_from_slice(format!("# HELP {name} ").as_bytes());
    escape_into(out, family.help, false);
    out.extend_from_slice(format!("\n# TYPE {name} gauge\n").as_bytes());
}

/// Where series text is written: a buffer, which may be taken away after each series.
pub(super) trait Out {
    fn buffer(&mut self) -> &mut Vec<u8>;
    /// A series is written whole.
    fn series_written(&mut self) {}
}

impl Out for Vec<u8> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        self
    }
}

impl Out for Compressor {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    /// Compresses the buffer once it holds `BUFFER` bytes.
    fn series_written(&mut self) {
        if self.buffer.len() >= Self::BUFFER {
            self.compress();
        }
    }
}

/// The series of one family, as borrowed label values (its own labels, then the place's)
/// and a value, each with the slot of the pair it came from.
pub(super) struct Series<'a> {
    pub(super) family: &'static Family,
    names: Vec<&'static str>,
    pub(super) rows: Vec<(usize, Vec<&'a str>, f64)>,
    /// Whether series set are kept; a pair's part collects one family at a time.
    active: bool,
}

impl<'a> Series<'a> {
    fn new(family: &'static Family, placed: bool) -> Self {
        Series {
            family,
            names: with_place_labels(family.labels, placed),
            rows: Vec::new(),
            active: true,
        }
    }

    fn set(&mut self, slot: usize, own: &[&'a str], place: &[&'a str], value: f64) {
        if !self.active {
            return;
        }
        let values = own.iter().chain(place).copied().collect();
        self.rows.push((slot, values, value));
    }

    /// Appends the series in the text format, pair after pair, each pair's by their labels;
    /// nothing without series.
    pub(super) fn write_series_into(mut self, sink: &mut impl Out) {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by_key(|&i| self.names[i]);
        for (_, values, _) in &mut self.rows {
            *values = order.iter().map(|&i| values[i]).collect();
        }
        // Stable: of two series with the same labels, the later one set wins, as a second
        // `set` of a gauge would.
        self.rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let name = self.family.name;
        for (i, (slot, values, value)) in self.rows.iter().enumerate() {
            if self
                .rows
                .get(i + 1)
                .is_some_and(|next| next.0 == *slot && next.1 == *values)
            {
                continue;
            }
            let out = sink.buffer();
            out.extend_from_slice(name.as_bytes());
            for (n, (&label, value)) in order
                .iter()
                .map(|&i| &self.names[i])
                .zip(values)
                .enumerate()
            {
                out.push(if n == 0 { b'{' } else { b',' });
                out.extend_from_slice(label.as_bytes());
                out.extend_from_slice(b"=\"");
                escape_into(out, value, true);
                out.push(b'"');
            }
            if !values.is_empty() {
                out.push(b'}');
            }
            out.push(b' ');
            out.extend_from_slice(value.to_string().as_bytes());
            out.push(b'\n');
            sink.series_written();
        }
    }
}

/// An optional label value: what SSM left out is the empty string.
fn text<T: std::ops::Deref<Target = str>>(v: &Option<T>) -> &str {
    v.as_deref().unwrap_or_default()
}

/// The text format's escaping: `\\` and newline always, `"` in label values.
fn escape_into(out: &mut Vec<u8>, text: &str, quotes: bool) {
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quotes => out.extend_from_slice(b"\\\""),
            b => out.push(b),
        }
    }
}

/// Seconds since the epoch, to the millisecond the API reports; times before 1970 are 0.
fn seconds(t: SystemTime) -> f64 {
    since_epoch(t).as_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prometheus::{Encoder, TextEncoder};

    use super::*;
    use crate::render::families::TARGETS;
    use crate::render::tests::{at, counts};
    use crate::snapshot::{AssociationState, TargetCounts};
    use crate::ssm::Execution;
    use crate::telemetry::PLACE_LABELS;

    /// Our writer against the prometheus crate's registry and encoder, for awkward values:
    /// quotes, backslashes, newlines, a value that is a prefix of another, characters that sort
    /// before `"`, non-ASCII, a repeated label set, fractional and large values.
    #[test]
    fn series_text_matches_the_prometheus_crate() {
        let rows: Vec<(Vec<&str>, f64)> = vec![
            (
                vec!["a", "x\"y", "", "r1", "111111111111", "us-east-1"],
                1.0,
            ),
            (vec!["a", "x", "", "r1", "111111111111", "us-east-1"], 2.5),
            (
                vec!["a b", "x", "\\", "r1", "111111111111", "us-east-1"],
                3.0,
            ),
            (
                vec!["a!", "line\nbreak", "é", "r1", "111111111111", "us-east-1"],
                1_700_000_000.125,
            ),
            (vec!["a,b", "x", "", "r2", "222222222222", "eu-west-1"], 0.0),
            (vec!["a", "x", "", "r1", "111111111111", "us-east-1"], 7.0),
            (vec!["", "", "", "", "", ""], 1e21),
        ];
        // The family's four labels, then the place's two.
        let registry = prometheus::Registry::new();
        let names: Vec<&str> = TARGETS
            .labels
            .iter()
            .chain(&PLACE_LABELS)
            .copied()
            .collect();
        let vec =
            prometheus::GaugeVec::new(prometheus::Opts::new(TARGETS.name, TARGETS.help), &names)
                .expect("valid");
        registry.register(Box::new(vec.clone())).expect("registers");
        let mut ours = Series::new(&TARGETS, true);
        for (values, value) in &rows {
            vec.with_label_values(values).set(*value);
            ours.set(0, &values[..4], &values[4..], *value);
        }
        let mut theirs = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut theirs)
            .expect("encodes");
        let mut text = Vec::new();
        write_header_into(&mut text, &TARGETS);
        ours.write_series_into(&mut text);
        assert_eq!(
            String::from_utf8(text).expect("utf-8"),
            String::from_utf8(theirs).expect("utf-8")
        );
    }

    /// A running execution is read every cycle: read again with the same counts, it renders
    /// the same, whenever it was read; other counts do not.
    #[test]
    fn a_reading_renders_the_same_whenever_it_was_read() {
        let reading = |read_at: f64, targets: TargetCounts| {
            let mut a = AssociationState::unknown("11111111-1111-1111-1111-111111111111");
            a.poll_ok = true;
            a.last_good_poll = Some(at(read_at));
            a.running = Some(Arc::new(ExecutionState {
                execution: Execution {
                    execution_id: "cccccccc-cccc-cccc-cccc-cccccccccccc".into(),
                    status: Some("InProgress".into()),
                    detailed_status: Some("InProgress".into()),
                    created_time: Some(at(1_700_000_000.0)),
                    resource_count_by_status: None,
                },
                targets,
                filters: Vec::new(),
                read_at: at(read_at),
                failed: None,
                pinned: false,
            }));
            Snapshot {
                associations: vec![a],
                region_associations: None,
                listing_refused: None,
            }
        };
        let half = counts(&[
            ("Success", "Success", "ManagedInstance"),
            ("InProgress", "InProgress", "ManagedInstance"),
        ]);
        let done = counts(&[
            ("Success", "Success", "ManagedInstance"),
            ("Success", "Success", "ManagedInstance"),
        ]);
        let first = reading(1_700_000_100.0, half.clone());
        assert!(renders_same(&first, &reading(1_700_000_160.0, half)));
        assert!(!renders_same(&first, &reading(1_700_000_160.0, done)));
    }
}
