//! Snapshots → Prometheus text exposition (format 0.0.4): each pair's series rendered once per
//! change of them into a [`Part`], and the parts [`join`]ed with the exporter's own families.
//! The snapshot's series are written directly, the exporter's own through the `prometheus`
//! crate, all in that crate's format. Output is deterministic: families by name; within a
//! family, pair after pair in the board's order, each pair's series by their labels.

use std::io::Write;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, TextEncoder};

use crate::config::Place;
use crate::snapshot::{ExecutionState, Snapshot, Timing};
use crate::telemetry::{place_values, with_place_labels};

/// One metric family of the snapshot: its name, help and label names, kept in one table so
/// the README's metric list and the code cannot drift apart silently.
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

const TARGETS: Family = Family {
    name: "ssm_association_targets",
    help: "Targets of the association's latest finished (or its pinned) execution, by status, detailed status and resource type, as of the last poll; a run that starts changes nothing here, one that finishes replaces them.",
    labels: &[
        "association_id",
        "status",
        "detailed_status",
        "resource_type",
    ],
};
const RUNNING_TARGETS: Family = Family {
    name: "ssm_association_running_targets",
    help: "Targets of the association's execution in progress, by status, detailed status and resource type, as of the last poll; only while one runs.",
    labels: &[
        "association_id",
        "status",
        "detailed_status",
        "resource_type",
    ],
};
const EXECUTION_INFO: Family = Family {
    name: "ssm_association_execution_info",
    help: "Always 1: the executions that ssm_association_targets (a finished status) and ssm_association_running_targets (any other) describe, as of the last poll.",
    labels: &[
        "association_id",
        "execution_id",
        "status",
        "detailed_status",
    ],
};
const INFO: Family = Family {
    name: "ssm_association_info",
    help: "Always 1: the association's name, document, versions and schedule, as of the last successful poll.",
    labels: &[
        "association_id",
        "association_name",
        "document_name",
        "document_version",
        "association_version",
        "schedule_expression",
    ],
};
const EXECUTION_CREATED: Family = Family {
    name: "ssm_association_execution_created_timestamp_seconds",
    help: "When the execution that ssm_association_targets describes started, in seconds since the epoch, as of the last poll.",
    labels: &["association_id"],
};
const RUNNING_CREATED: Family = Family {
    name: "ssm_association_running_execution_created_timestamp_seconds",
    help: "When the association's execution in progress started, in seconds since the epoch, as of the last poll; only while one runs.",
    labels: &["association_id"],
};
const LAST_EXECUTION: Family = Family {
    name: "ssm_association_last_execution_timestamp_seconds",
    help: "When the association last ran (its LastExecutionDate), in seconds since the epoch, as of the last poll.",
    labels: &["association_id"],
};
const NEXT_RUN: Family = Family {
    name: "ssm_association_next_run_timestamp_seconds",
    help: "When the association's schedule fires next after its last execution started (or, never run, after its creation), in seconds since the epoch; absent without a schedule the exporter can read, or for a one-time schedule that has run.",
    labels: &["association_id"],
};
const SCHEDULE_INTERVAL: Family = Family {
    name: "ssm_association_schedule_interval_seconds",
    help: "The period of the association's schedule: a rate's, or for cron the time from its next run to the one after; absent for one-time schedules.",
    labels: &["association_id"],
};
const LAST_SUCCESSFUL_EXECUTION: Family = Family {
    name: "ssm_association_last_successful_execution_timestamp_seconds",
    help: "When the association's newest successful execution was created, in seconds since the epoch; absent when none is known.",
    labels: &["association_id"],
};
const MAX_DURATION: Family = Family {
    name: "ssm_association_max_duration_seconds",
    help: "The association's Duration: how long a run may take before SSM cancels it; absent when not set.",
    labels: &["association_id"],
};
const POLL_SUCCESS: Family = Family {
    name: "ssm_association_poll_success",
    help: "1 if every SSM call about the association succeeded in the last poll, 0 if one failed and the other series of the association are from an earlier poll.",
    labels: &["association_id"],
};
const POLL_LAST_SUCCESS: Family = Family {
    name: "ssm_association_last_successful_poll_timestamp_seconds",
    help: "When the association was last polled successfully, in seconds since the epoch; only while its last poll failed (poll_success 0): the age of its other series. Otherwise they are as of its pair's last cycle.",
    labels: &["association_id"],
};
const FAILED_TARGET: Family = Family {
    name: "ssm_association_failed_target",
    help: "Always 1: a failed or timed-out target of the association's latest finished (or its pinned) execution, by resource, as of the last poll; only when failed_targets is enabled, at most failed_targets.limit per association.",
    labels: &[
        "association_id",
        "resource_id",
        "resource_type",
        "detailed_status",
    ],
};
const FAILED_OMITTED: Family = Family {
    name: "ssm_association_failed_targets_omitted",
    help: "Failed or timed-out targets of the association's latest finished (or its pinned) execution left unnamed by failed_targets.limit, as of the last poll.",
    labels: &["association_id"],
};
const UNPARSED_SCHEDULES: Family = Family {
    name: "ssm_association_exporter_unparsed_schedules",
    help: "Associations whose ScheduleExpression the exporter cannot read: they are polled as any other, with no next run.",
    labels: &[],
};

/// Every family the snapshot renders, in the order of their names: the order of the
/// exposition and of each [`Part`]'s chunks.
const SNAPSHOT_FAMILIES: [&Family; 16] = [
    &EXECUTION_CREATED,
    &EXECUTION_INFO,
    &UNPARSED_SCHEDULES,
    &FAILED_TARGET,
    &FAILED_OMITTED,
    &INFO,
    &LAST_EXECUTION,
    &LAST_SUCCESSFUL_EXECUTION,
    &POLL_LAST_SUCCESS,
    &MAX_DURATION,
    &NEXT_RUN,
    &POLL_SUCCESS,
    &RUNNING_CREATED,
    &RUNNING_TARGETS,
    &SCHEDULE_INTERVAL,
    &TARGETS,
];

/// The names of the snapshot's families, for documentation and tests.
pub fn snapshot_family_names() -> impl Iterator<Item = &'static str> {
    SNAPSHOT_FAMILIES.iter().map(|f| f.name)
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot encode metrics: {0}")]
    Encode(#[source] prometheus::Error),
}

/// Text held only as one gzip member, compressed alone: members one after the other make one
/// gzip stream (RFC 1952 §2.2), which is how the exposition's parts are joined without
/// compressing them again. The plain text is not kept: at ten times the size it would be most
/// of what the exporter holds, and a plain scrape is decompressed as it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Chunk {
    gzip: Bytes,
    /// The length of the plain text.
    plain_len: usize,
    /// The text could not be compressed: the member is empty though the text was not.
    incomplete: bool,
}

impl Chunk {
    fn new(plain: &[u8]) -> Chunk {
        let mut sink = Compressor::default();
        sink.buffer.extend_from_slice(plain);
        sink.finish()
    }

    fn is_empty(&self) -> bool {
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
    families: Vec<Chunk>,
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

/// The HELP and TYPE lines of each snapshot family, made once.
#[derive(Debug, Clone)]
pub struct Headers {
    families: Vec<(&'static str, Chunk)>,
}

impl Default for Headers {
    fn default() -> Self {
        Headers {
            families: SNAPSHOT_FAMILIES
                .iter()
                .map(|family| {
                    let mut out = Vec::new();
                    write_header_into(&mut out, family);
                    (family.name, Chunk::new(&out))
                })
                .collect(),
        }
    }
}

/// The whole exposition, as one buffer of gzip members.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub gzip: Bytes,
    /// The length of the text it decompresses to.
    pub plain_len: usize,
    /// A buffer could not be compressed: the gzip form lacks its lines.
    incomplete: bool,
}

impl Joined {
    /// Whether the gzip form holds every line.
    pub fn complete(&self) -> bool {
        !self.incomplete
    }
}

/// Where a gzip member of the exposition comes from: a header or the own families, made
/// for this exposition, or a family of a pair's part.
enum Member {
    Made(Bytes),
    Part { pair: usize, family: usize },
}

/// Joins the pairs' `parts` (in the board's order) and the exporter's `own` families into
/// one exposition, family by family in the order of their names: each family's HELP and
/// TYPE once, then its series of every pair, pair after pair. The parts' gzip members are copied one after the other into one buffer
/// (a scrape then sends one buffer, as fast as nginx sends a file), and each part's members
/// are made slices of it, so that the members are held once. Nothing is compressed again but
/// the own families, a few dozen series, encoded here.
///
/// # Errors
///
/// [`RenderError`] if the prometheus crate refuses one of `own`.
pub fn join(
    headers: &Headers,
    parts: &mut [&mut Part],
    own: Vec<MetricFamily>,
) -> Result<Joined, RenderError> {
    let mut own = own;
    own.sort_by(|a, b| a.name().cmp(b.name()));
    // Each family's name and, for the snapshot's, its index; own families are taken in
    // name order as their names come up.
    let mut names: Vec<(&str, Option<usize>)> = headers
        .families
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, Some(i)))
        .chain(own.iter().map(|f| (f.name(), None)))
        .collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    let names: Vec<Option<usize>> = names.into_iter().map(|(_, i)| i).collect();
    let mut own = own.into_iter();
    let mut plain_len = 0;
    let mut members = Vec::new();
    let mut incomplete = false;
    let mut push = |chunk: &Chunk, member: Member| {
        if !chunk.is_empty() {
            plain_len += chunk.plain_len;
            incomplete |= chunk.incomplete;
            members.push((member, chunk.gzip.len()));
        }
    };
    // Own families that follow each other in name order go out as one buffer.
    let mut pending: Vec<u8> = Vec::new();
    for index in names {
        match index {
            None => {
                if let Some(family) = own.next() {
                    TextEncoder::new()
                        .encode(std::slice::from_ref(&family), &mut pending)
                        .map_err(RenderError::Encode)?;
                }
            }
            Some(i) => {
                if parts
                    .iter()
                    .all(|p| p.families.get(i).is_none_or(Chunk::is_empty))
                {
                    continue;
                }
                let made = Chunk::new(&pending);
                pending.clear();
                push(&made, Member::Made(made.gzip.clone()));
                let header = &headers.families[i].1;
                push(header, Member::Made(header.gzip.clone()));
                for (pair, part) in parts.iter().enumerate() {
                    if let Some(chunk) = part.families.get(i) {
                        push(chunk, Member::Part { pair, family: i });
                    }
                }
            }
        }
    }
    let made = Chunk::new(&pending);
    push(&made, Member::Made(made.gzip.clone()));

    let mut gzip = BytesMut::with_capacity(members.iter().map(|(_, len)| len).sum());
    let mut placed = Vec::new();
    for (member, len) in members {
        let start = gzip.len();
        match member {
            Member::Made(bytes) => gzip.extend_from_slice(&bytes),
            Member::Part { pair, family } => {
                gzip.extend_from_slice(&parts[pair].families[family].gzip);
                placed.push((pair, family, start..start + len));
            }
        }
    }
    let gzip = gzip.freeze();
    for (pair, family, range) in placed {
        parts[pair].families[family].gzip = gzip.slice(range);
    }
    Ok(Joined {
        gzip,
        plain_len,
        incomplete,
    })
}

/// A family of the snapshot for each of [`SNAPSHOT_FAMILIES`], with no series yet.
fn families(placed: bool) -> Vec<Series<'static>> {
    SNAPSHOT_FAMILIES
        .iter()
        .map(|family| Series::new(family, placed))
        .collect()
}

/// Adds the series of `snapshot`, a pair's at `slot` with `place` label values, to
/// `families`, which are in [`SNAPSHOT_FAMILIES`]' order.
fn collect<'a>(
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

/// Encodes the snapshots of the (account, region) pairs and `extra` families (the exporter's
/// own) as one exposition, all at once: the reference that [`join`]ed [`Part`]s must equal
/// byte for byte. Families by name; within a family, pair after pair in the order given,
/// and a pair's series by their labels, as the prometheus crate's encoder orders them. When
/// any pair has a place, every series also carries `account_id` and `region`, sorted among
/// its labels by name as the rest.
///
/// # Errors
///
/// [`RenderError`] if the prometheus crate refuses one of `extra`.
#[cfg(test)]
pub fn render(
    sources: &[(Option<&Place>, &Snapshot)],
    extra: Vec<MetricFamily>,
) -> Result<Vec<u8>, RenderError> {
    let placed = sources.iter().any(|(place, _)| place.is_some());
    let places: Vec<Vec<&str>> = sources
        .iter()
        .map(|(place, _)| place_values(placed, *place))
        .collect();
    let mut families = families(placed);
    for (slot, ((_, snapshot), place)) in sources.iter().zip(&places).enumerate() {
        collect(&mut families, slot, place, snapshot);
    }
    let mut all: Vec<(String, Option<Series<'_>>, Option<MetricFamily>)> = families
        .into_iter()
        .map(|series| (series.family.name.to_owned(), Some(series), None))
        .chain(
            extra
                .into_iter()
                .map(|family| (family.name().to_owned(), None, Some(family))),
        )
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (_, series, own) in all {
        if let Some(series) = series
            && !series.rows.is_empty()
        {
            write_header_into(&mut out, series.family);
            series.write_series_into(&mut out);
        }
        if let Some(family) = own {
            TextEncoder::new()
                .encode(std::slice::from_ref(&family), &mut out)
                .map_err(RenderError::Encode)?;
        }
    }
    Ok(out)
}

/// The HELP and TYPE lines of `family`.
fn write_header_into(out: &mut Vec<u8>, family: &Family) {
    let name = family.name;
    out.extend_from_slice(format!("# HELP {name} ").as_bytes());
    escape_into(out, family.help, false);
    out.extend_from_slice(format!("\n# TYPE {name} gauge\n").as_bytes());
}

/// Where series text is written: a buffer, which may be taken away after each series.
trait Out {
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
struct Series<'a> {
    family: &'static Family,
    names: Vec<&'static str>,
    rows: Vec<(usize, Vec<&'a str>, f64)>,
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
    fn write_series_into(mut self, sink: &mut impl Out) {
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
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::snapshot::{AssociationState, ExecutionState, LastSuccess, TargetCounts, Timing};
    use crate::ssm::{Association, Execution, ScheduleFields, Target};
    use crate::telemetry::PLACE_LABELS;

    fn at(seconds: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    fn counts(targets: &[(&str, &str, &str)]) -> TargetCounts {
        let mut c = TargetCounts::default();
        for (s, d, r) in targets {
            c.add(&Target {
                resource_id: None,
                status: Some((*s).into()),
                detailed_status: Some((*d).into()),
                resource_type: Some((*r).into()),
            });
        }
        c
    }

    /// The whole exposition for a snapshot of four associations: one whose next run has
    /// started beside its last finished, failed one, with a schedule and a duration; one that
    /// never ran, with a schedule that does not parse; one whose last poll failed after an
    /// earlier success; one never read.
    #[test]
    fn golden() {
        let snapshot = Snapshot {
            associations: vec![
                AssociationState {
                    association: Association {
                        association_id: "11111111-1111-1111-1111-111111111111".into(),
                        association_name: Some("patch-linux".into()),
                        document_name: Some("AWS-RunPatchBaseline".into()),
                        document_version: Some("$DEFAULT".into()),
                        association_version: Some("3".into()),
                        last_execution_date: Some(at(1_700_000_100.5)),
                        overview: None,
                        schedule: ScheduleFields {
                            expression: Some("rate(1 hour)".into()),
                            duration_hours: Some(2),
                            ..ScheduleFields::default()
                        },
                        ..Association::default()
                    },
                    finished: Some(Arc::new(ExecutionState {
                        execution: Execution {
                            execution_id: "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa".into(),
                            status: Some("Failed".into()),
                            detailed_status: Some("Failed".into()),
                            created_time: Some(at(1_700_000_000.25)),
                            resource_count_by_status: None,
                        },
                        targets: counts(&[
                            ("Success", "Success", "ManagedInstance"),
                            ("Success", "Success", "ManagedInstance"),
                            ("Failed", "Failed", "ManagedInstance"),
                            ("TimedOut", "ExecutionTimedOut", "ManagedInstance"),
                            ("Quarantined \"x\"", "New\\Value", "AWS::EC2::Instance"),
                        ]),
                        filters: Vec::new(),
                        read_at: at(1_700_000_200.0),
                        failed: None,
                        pinned: false,
                    })),
                    // The next run has started: its counts beside the last finished one's.
                    running: Some(Arc::new(ExecutionState {
                        execution: Execution {
                            execution_id: "cccccccc-cccc-cccc-cccc-cccccccccccc".into(),
                            status: Some("InProgress".into()),
                            detailed_status: Some("InProgress".into()),
                            created_time: Some(at(1_700_003_600.0)),
                            resource_count_by_status: None,
                        },
                        targets: counts(&[
                            ("Success", "Success", "ManagedInstance"),
                            ("InProgress", "InProgress", "ManagedInstance"),
                            ("Pending", "Pending", "ManagedInstance"),
                        ]),
                        filters: Vec::new(),
                        read_at: at(1_700_003_700.0),
                        failed: None,
                        pinned: false,
                    })),
                    last_successful_execution: LastSuccess::At(at(1_699_996_400.0)),
                    timing: Timing::Scheduled {
                        next_run: Some(at(1_700_007_200.0)),
                        interval: Some(Duration::from_secs(3600)),
                    },
                    poll_ok: true,
                    last_good_poll: Some(at(1_700_003_700.0)),
                    error_kind: None,
                },
                AssociationState {
                    association: Association {
                        association_id: "22222222-2222-2222-2222-222222222222".into(),
                        association_name: None,
                        document_name: Some("AWS-GatherSoftwareInventory".into()),
                        document_version: None,
                        association_version: Some("1".into()),
                        last_execution_date: None,
                        overview: None,
                        schedule: ScheduleFields {
                            expression: Some("cron(every \"day\")".into()),
                            ..ScheduleFields::default()
                        },
                        ..Association::default()
                    },
                    finished: None,
                    running: None,
                    last_successful_execution: LastSuccess::None,
                    timing: Timing::Unparsed,
                    poll_ok: true,
                    last_good_poll: Some(at(1_700_000_200.0)),
                    error_kind: None,
                },
                AssociationState {
                    association: Association {
                        association_id: "33333333-3333-3333-3333-333333333333".into(),
                        association_name: Some("inventory".into()),
                        document_name: Some("AWS-GatherSoftwareInventory".into()),
                        document_version: Some("1".into()),
                        association_version: Some("2".into()),
                        last_execution_date: Some(at(1_699_000_000.0)),
                        overview: None,
                        ..Association::default()
                    },
                    finished: Some(Arc::new(ExecutionState {
                        execution: Execution {
                            execution_id: "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb".into(),
                            status: Some("Success".into()),
                            detailed_status: Some("Success".into()),
                            created_time: Some(at(1_699_000_000.0)),
                            resource_count_by_status: None,
                        },
                        targets: counts(&[("Success", "Success", "ManagedInstance")]),
                        filters: Vec::new(),
                        read_at: at(1_699_500_000.0),
                        failed: None,
                        pinned: false,
                    })),
                    running: None,
                    last_successful_execution: LastSuccess::Unknown,
                    timing: Timing::Unscheduled,
                    poll_ok: false,
                    last_good_poll: Some(at(1_699_500_000.0)),
                    error_kind: None,
                },
                AssociationState::unknown("44444444-4444-4444-4444-444444444444"),
            ],
            region_associations: None,
            listing_refused: None,
        };
        let got = String::from_utf8(render(&[(None, &snapshot)], Vec::new()).expect("renders"))
            .expect("utf-8");
        let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/snapshot.prom");
        // UPDATE_GOLDEN=1 rewrites the file; review its diff before committing it.
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden, &got).expect("write golden file");
        }
        let expected = std::fs::read_to_string(golden).expect("read golden file");
        assert_eq!(got, expected, "rendered:\n{got}");
    }

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

    #[test]
    fn places_add_account_and_region_to_every_series() {
        let place = Place {
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
        };
        let mut snapshot = Snapshot::default();
        let mut a = AssociationState::unknown("11111111-1111-1111-1111-111111111111");
        a.poll_ok = true;
        a.last_good_poll = Some(at(1_700_000_000.0));
        a.association.association_name = Some("patch".into());
        snapshot.associations.push(a);
        let got = render(&[(Some(&place), &snapshot)], Vec::new()).expect("renders");
        let series: Vec<String> = String::from_utf8(got)
            .expect("utf-8")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            series,
            [
                r#"ssm_association_exporter_unparsed_schedules{account_id="111111111111",region="eu-west-1"} 0"#,
                r#"ssm_association_info{account_id="111111111111",association_id="11111111-1111-1111-1111-111111111111",association_name="patch",association_version="",document_name="",document_version="",region="eu-west-1",schedule_expression=""} 1"#,
                r#"ssm_association_poll_success{account_id="111111111111",association_id="11111111-1111-1111-1111-111111111111",region="eu-west-1"} 1"#,
            ]
        );
    }

    #[test]
    fn empty_snapshot_renders_only_extra() {
        let got = render(&[(None, &Snapshot::default())], Vec::new()).expect("renders");
        assert_eq!(String::from_utf8(got).expect("utf-8"), "");
    }

    /// Three pairs, two of them in one account with interleaving association IDs, one with
    /// nothing; failed targets named in one.
    fn pairs() -> Vec<(Option<Place>, Snapshot)> {
        let place = |account: &str, region: &str| Place {
            account_id: account.into(),
            region: region.into(),
        };
        let association = |id: &str, status: &str, name: Option<&str>| {
            let mut targets = counts(&[
                (status, status, "ManagedInstance"),
                ("Success", "Success", "ManagedInstance"),
            ]);
            targets.add(&Target {
                resource_id: None,
                status: Some("Success".into()),
                detailed_status: Some("Success".into()),
                resource_type: Some("AWS::EC2::Instance".into()),
            });
            let mut failed = crate::snapshot::FailedTargets::new(1);
            for resource in ["i-2", "i-1"] {
                failed.add(&Target {
                    resource_id: Some(resource.into()),
                    status: Some("Failed".into()),
                    detailed_status: Some("Failed".into()),
                    resource_type: Some("ManagedInstance".into()),
                });
            }
            AssociationState {
                association: Association {
                    association_id: id.into(),
                    association_name: name.map(Into::into),
                    document_name: Some("AWS-RunPatchBaseline".into()),
                    document_version: Some("$DEFAULT".into()),
                    association_version: Some("1".into()),
                    last_execution_date: Some(at(1_700_000_100.0)),
                    overview: None,
                    ..Association::default()
                },
                finished: Some(Arc::new(ExecutionState {
                    execution: Execution {
                        execution_id: format!("e{id}"),
                        status: Some(status.into()),
                        detailed_status: Some(status.into()),
                        created_time: Some(at(1_700_000_000.5)),
                        resource_count_by_status: None,
                    },
                    targets,
                    filters: Vec::new(),
                    read_at: at(1_700_000_200.0),
                    failed: (status == "Failed").then_some(failed),
                    pinned: false,
                })),
                running: None,
                last_successful_execution: LastSuccess::Unknown,
                timing: Timing::Unscheduled,
                poll_ok: status != "Pending",
                last_good_poll: Some(at(1_700_000_200.0)),
                error_kind: None,
            }
        };
        let snapshot = |associations: Vec<AssociationState>| Snapshot {
            associations,
            region_associations: None,
            listing_refused: None,
        };
        vec![
            (
                Some(place("222222222222", "us-east-1")),
                snapshot(vec![
                    association("a1", "Success", Some("patch")),
                    association("a3", "Failed", Some("quote \"x\"")),
                ]),
            ),
            (
                Some(place("111111111111", "us-east-1")),
                snapshot(vec![
                    association("a0", "Pending", None),
                    association("a2", "TimedOut", Some("inventory")),
                ]),
            ),
            (
                Some(place("111111111111", "eu-west-1")),
                Snapshot::default(),
            ),
            (
                Some(place("111111111111", "ap-south-1")),
                snapshot(vec![
                    association("a1", "Failed", Some("other")),
                    AssociationState::unknown("a4"),
                ]),
            ),
        ]
    }

    fn joined(pairs: &[(Option<Place>, Snapshot)], own: Vec<MetricFamily>) -> Joined {
        let placed = pairs.iter().any(|(p, _)| p.is_some());
        let mut parts: Vec<Part> = pairs
            .iter()
            .map(|(place, snapshot)| Part::render(place.as_ref(), placed, snapshot))
            .collect();
        let mut parts: Vec<&mut Part> = parts.iter_mut().collect();
        join(&Headers::default(), &mut parts, own).expect("joins")
    }

    /// The exporter's own families, whose names sort among the snapshot's.
    fn own() -> Vec<MetricFamily> {
        let telemetry = crate::telemetry::Telemetry::new(true);
        let place = Place {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
        };
        // A pair's share, so that its families have series; then one rendering.
        telemetry.source(Some(&place));
        telemetry.record_render(Some(&place), 0.25);
        telemetry.gather()
    }

    /// Parts rendered pair by pair and joined are, byte for byte, the whole board rendered at
    /// once; their gzip members, read as one stream, are the same bytes.
    #[test]
    fn joined_parts_equal_a_whole_render() {
        let pairs = pairs();
        let sources: Vec<(Option<&Place>, &Snapshot)> =
            pairs.iter().map(|(p, s)| (p.as_ref(), s)).collect();
        let own = own();
        let whole = render(&sources, own.clone()).expect("renders");
        let all = joined(&pairs, own.clone());
        assert_eq!(
            String::from_utf8(gunzip(&all.gzip)).expect("utf-8"),
            String::from_utf8(whole.clone()).expect("utf-8")
        );
        assert!(all.complete());
        assert_eq!(all.plain_len, whole.len());

        // One pair without places, as an exporter without `accounts` has it.
        let single = vec![(None, pairs[0].1.clone())];
        let whole = render(&[(None, &single[0].1)], own.clone()).expect("renders");
        let one = joined(&single, own);
        assert_eq!(gunzip(&one.gzip), whole);
        assert_eq!(one.plain_len, whole.len());
    }

    /// After a join, each part's gzip members are slices of the exposition's gzip buffer: held
    /// once. A second join of the same parts makes the same bytes.
    #[test]
    fn gzip_members_are_held_once() {
        let pairs = pairs();
        let mut parts: Vec<Part> = pairs
            .iter()
            .map(|(place, snapshot)| Part::render(place.as_ref(), true, snapshot))
            .collect();
        let own = own();
        let first = {
            let mut refs: Vec<&mut Part> = parts.iter_mut().collect();
            join(&Headers::default(), &mut refs, own.clone()).expect("joins")
        };
        let inside = first.gzip.as_ptr_range();
        let members: Vec<&Bytes> = parts
            .iter()
            .flat_map(|p| &p.families)
            .filter(|c| !c.is_empty())
            .map(|c| &c.gzip)
            .collect();
        // Three pairs with series, in 8 to 10 families each.
        assert_eq!(members.len(), 26);
        for member in members {
            assert!(inside.contains(&member.as_ptr()));
        }
        let mut refs: Vec<&mut Part> = parts.iter_mut().collect();
        let second = join(&Headers::default(), &mut refs, own).expect("joins");
        assert_eq!(second.gzip, first.gzip);
        assert_eq!(second.plain_len, first.plain_len);
    }

    /// Every family's lines are together, its HELP and TYPE once, in the order of the
    /// families' names; within a family, pair after pair in the board's order.
    #[test]
    fn families_do_not_interleave() {
        let text = String::from_utf8(gunzip(&joined(&pairs(), own()).gzip)).expect("utf-8");
        let mut blocks: Vec<&str> = Vec::new();
        let mut headers: Vec<(&str, &str)> = Vec::new();
        for line in text.lines() {
            let name = match line.strip_prefix("# ") {
                Some(comment) => {
                    let mut words = comment.split(' ');
                    let kind = words.next().unwrap_or_default();
                    let name = words.next().unwrap_or_default();
                    headers.push((kind, name));
                    name
                }
                None => line.split(['{', ' ']).next().unwrap_or_default(),
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                })
                .unwrap_or(name);
            if blocks.last() != Some(&family) {
                assert!(
                    !blocks.contains(&family),
                    "{family} comes back after another family"
                );
                blocks.push(family);
            }
        }
        let mut sorted = blocks.clone();
        sorted.sort_unstable();
        assert_eq!(blocks, sorted);
        for family in &blocks {
            assert_eq!(
                headers
                    .iter()
                    .filter(|(k, n)| *k == "HELP" && n == family)
                    .count(),
                1,
                "{family}"
            );
            assert_eq!(
                headers
                    .iter()
                    .filter(|(k, n)| *k == "TYPE" && n == family)
                    .count(),
                1,
                "{family}"
            );
        }
        // The pairs' series follow the board's order, not the labels' (account 2 first).
        let regions: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ssm_association_info{"))
            .map(|l| {
                l.split("region=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            regions,
            [
                "us-east-1",
                "us-east-1",
                "us-east-1",
                "us-east-1",
                "ap-south-1"
            ]
        );
        assert!(blocks.contains(&"ssm_association_exporter_renders_total"));
        assert_eq!(blocks.len(), 10 + own().len());
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

    /// The time of a successful poll is not rendered: it moves every cycle. A failed poll's
    /// last success is, for as long as the association's series are that old.
    #[test]
    fn only_a_failed_poll_renders_its_last_success() {
        let pairs = pairs();
        let text = String::from_utf8(gunzip(&joined(&pairs, Vec::new()).gzip)).expect("utf-8");
        let polled: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ssm_association_last_successful_poll_timestamp_seconds{"))
            .collect();
        assert_eq!(
            polled,
            [
                r#"ssm_association_last_successful_poll_timestamp_seconds{account_id="111111111111",association_id="a0",region="us-east-1"} 1700000200"#
            ]
        );
        let mut later = pairs[1].1.clone();
        for a in &mut later.associations {
            a.last_good_poll = Some(at(1_700_000_260.0));
        }
        // a0's poll failed: its last success is rendered, so a later one is a change.
        assert!(!renders_same(&pairs[1].1, &later));
        later.associations[0].last_good_poll = Some(at(1_700_000_200.0));
        assert!(renders_same(&pairs[1].1, &later));
    }
}
