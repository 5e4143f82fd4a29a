//! The result of one poll cycle: what is known of every watched association, counts included.
//! A snapshot is built whole by a cycle and never changed after; it holds no target records,
//! only their counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::ssm::TargetFilter;
use crate::ssm::{self, Association, Execution, Label, Target};

/// Every watched association, sorted by ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub associations: Vec<AssociationState>,
    /// How many associations the region had at the last full ListAssociations, if one ran:
    /// what listing them would cost, against describing each watched one.
    pub region_associations: Option<usize>,
    /// When ListAssociations was last refused (explicit mode), while it is not tried again.
    pub listing_refused: Option<SystemTime>,
}

impl Snapshot {
    pub fn get(&self, association_id: &str) -> Option<&AssociationState> {
        self.associations
            .binary_search_by(|a| a.id().cmp(association_id))
            .ok()
            .map(|i| &self.associations[i])
    }
}

/// What is known of one association: SSM's own record of it, of its latest finished (or
/// pinned) execution and of the one in progress, as last read, and how its last poll went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationState {
    /// As SSM last reported it, under our own spelling of its ID. Its last execution date and
    /// overview are what tell a new run.
    pub association: Association,
    /// The latest finished execution, or the pinned one; `None` when none finished yet. Its
    /// counts are what alerts read: a run that starts does not replace them, one that
    /// finishes does. Shared with the snapshots before and after for as long as it stands,
    /// not copied by each cycle.
    pub finished: Option<Arc<ExecutionState>>,
    /// The newest execution while it has not finished (never with a pin).
    pub running: Option<Arc<ExecutionState>>,
    /// When the newest successful execution was created, as far as it was found.
    pub last_successful_execution: LastSuccess,
    /// The schedule's next run, from the association's schedule and its last start.
    pub timing: Timing,
    /// Whether every call about this association succeeded in the last cycle. When one failed,
    /// the fields above are those of the last cycle that succeeded.
    pub poll_ok: bool,
    pub last_good_poll: Option<SystemTime>,
    /// Why the last poll failed, from [`crate::ssm::SsmError::kind`]'s closed set; `None`
    /// when it succeeded.
    pub error_kind: Option<&'static str>,
}

impl AssociationState {
    /// An association known only by its ID: nothing about it has been read yet.
    pub fn unknown(association_id: &str) -> Self {
        AssociationState {
            association: Association {
                association_id: association_id.to_owned(),
                ..Association::default()
            },
            finished: None,
            running: None,
            last_successful_execution: LastSuccess::Unknown,
            timing: Timing::Unscheduled,
            poll_ok: false,
            last_good_poll: None,
            error_kind: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.association.association_id
    }

    /// The newest execution known: the one running, else the latest finished.
    pub fn newest(&self) -> Option<&ExecutionState> {
        self.running.as_deref().or(self.finished.as_deref())
    }
}

/// What is known of an association's newest successful execution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LastSuccess {
    /// Not looked for yet.
    #[default]
    Unknown,
    /// Looked for: SSM had none then.
    None,
    /// When it was created.
    At(SystemTime),
}

impl LastSuccess {
    pub fn time(self) -> Option<SystemTime> {
        match self {
            LastSuccess::At(t) => Some(t),
            LastSuccess::Unknown | LastSuccess::None => None,
        }
    }
}

/// An association's schedule as the exporter understands it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Timing {
    /// No schedule: it runs only when created or updated.
    #[default]
    Unscheduled,
    /// An expression the exporter cannot parse: polled as any other, with no next run.
    Unparsed,
    Scheduled {
        /// The first time the schedule fires after the last run started (or, never run, after
        /// its creation); `None` when neither is known, or a one-time schedule has run.
        next_run: Option<SystemTime>,
        /// The schedule's period as of that run; `None` for a one-time schedule.
        interval: Option<Duration>,
    },
}

/// An execution as SSM last reported it, and its targets as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionState {
    /// As SSM last reported it. Its status, detailed status and `ResourceCountByStatus` are
    /// the execution's own summary of its targets: a change means the counts are stale.
    pub execution: Execution,
    pub targets: TargetCounts,
    /// The filters the targets were counted with.
    pub filters: Vec<TargetFilter>,
    /// When the targets were last read, for the full-refresh safety valve.
    pub read_at: SystemTime,
    /// The failed targets by name, when the configuration asks for them.
    pub failed: Option<FailedTargets>,
    /// Read because the configuration pinned it, not because it was the latest: once the pin
    /// is gone, it must not pass for the latest.
    pub pinned: bool,
}

/// Failed and timed-out targets by resource ID, at most `limit` of them (the first by ID, so
/// that the same execution always names the same ones), and how many the cap left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTargets {
    pub limit: usize,
    named: BTreeMap<String, FailedTarget>,
    pub omitted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTarget {
    pub resource_type: String,
    pub detailed_status: String,
}

impl FailedTargets {
    pub fn new(limit: usize) -> Self {
        FailedTargets {
            limit,
            named: BTreeMap::new(),
            omitted: 0,
        }
    }

    /// Names `target` if it failed, keeping the `limit` smallest resource IDs.
    pub fn add(&mut self, target: &Target) {
        if !ssm::target_failed(target.status.as_deref()) {
            return;
        }
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        self.named.insert(
            field(&target.resource_id),
            FailedTarget {
                resource_type: field(&target.resource_type),
                detailed_status: field(&target.detailed_status),
            },
        );
        if self.named.len() > self.limit {
            self.named.pop_last();
            self.omitted += 1;
        }
    }

    /// Resource ID and details of each named target, by resource ID.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &FailedTarget)> {
        self.named.iter()
    }
}

/// The three labels targets are counted by. A field the API left out counts as `""`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    pub status: Label,
    pub detailed_status: Label,
    pub resource_type: Label,
}

/// Targets counted per [`TargetKey`], sorted by key: a handful of keys per execution, so a
/// sorted list holds them in a quarter of a map's room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetCounts(Vec<(TargetKey, u64)>);

impl TargetCounts {
    pub fn add(&mut self, target: &Target) {
        let field = |v: &Option<String>| Label::new(v.as_deref().unwrap_or_default());
        let key = TargetKey {
            status: field(&target.status),
            detailed_status: field(&target.detailed_status),
            resource_type: field(&target.resource_type),
        };
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.0[i].1 += 1,
            Err(i) => self.0.insert(i, (key, 1)),
        }
    }

    /// Gives back the room kept for more keys, once counting is done.
    pub fn shrink(&mut self) {
        self.0.shrink_to_fit();
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TargetKey, u64)> {
        self.0.iter().map(|(k, v)| (k, *v))
    }

    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, v)| v).sum()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(status: &str, detailed: Option<&str>, resource_type: &str) -> Target {
        Target {
            resource_id: None,
            status: Some(status.into()),
            detailed_status: detailed.map(Into::into),
            resource_type: Some(resource_type.into()),
        }
    }

    fn key(s: &str, d: &str, r: &str) -> TargetKey {
        TargetKey {
            status: s.into(),
            detailed_status: d.into(),
            resource_type: r.into(),
        }
    }

    #[test]
    fn counts_group_by_all_three_fields() {
        let mut counts = TargetCounts::default();
        for t in [
            target("Success", Some("Success"), "ManagedInstance"),
            target("Failed", Some("Failed"), "ManagedInstance"),
            target("Success", Some("Success"), "ManagedInstance"),
            target("Failed", Some("Undeliverable"), "ManagedInstance"),
            target("Success", Some("Success"), "AWS::EC2::Instance"),
            target("Quarantined", None, "ManagedInstance"),
            Target {
                resource_id: None,
                status: None,
                detailed_status: None,
                resource_type: None,
            },
        ] {
            counts.add(&t);
        }
        let got: Vec<(TargetKey, u64)> = counts.iter().map(|(k, v)| (k.clone(), v)).collect();
        assert_eq!(
            got,
            vec![
                (key("", "", ""), 1),
                (key("Failed", "Failed", "ManagedInstance"), 1),
                (key("Failed", "Undeliverable", "ManagedInstance"), 1),
                (key("Quarantined", "", "ManagedInstance"), 1),
                (key("Success", "Success", "AWS::EC2::Instance"), 1),
                (key("Success", "Success", "ManagedInstance"), 2),
            ]
        );
        assert_eq!(counts.total(), 7);
        assert_eq!(counts.len(), 6);
    }

    #[test]
    fn failed_targets_keep_the_first_ids_and_count_the_rest() {
        let mut failed = FailedTargets::new(2);
        for (id, status) in [
            ("i-4", "Failed"),
            ("i-1", "Success"),
            ("i-3", "TimedOut"),
            ("i-2", "Failed"),
            ("i-5", "InProgress"),
            ("i-0", "Failed"),
        ] {
            failed.add(&Target {
                resource_id: Some(id.into()),
                status: Some(status.into()),
                detailed_status: Some(status.into()),
                resource_type: Some("ManagedInstance".into()),
            });
        }
        let named: Vec<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(named, ["i-0", "i-2"]);
        assert_eq!(failed.omitted, 2);
    }

    #[test]
    fn get_finds_by_id() {
        let snapshot = Snapshot {
            associations: vec![
                AssociationState::unknown("a"),
                AssociationState::unknown("c"),
            ],
            region_associations: None,
            listing_refused: None,
        };
        assert_eq!(snapshot.get("c").map(AssociationState::id), Some("c"));
        assert_eq!(snapshot.get("b"), None);
    }
}
