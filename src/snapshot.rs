//! The result of one poll cycle: what is known of every watched association, counts included.
//! A snapshot is built whole by a cycle and never changed after; it holds no target records,
//! only their counts.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::config::TargetFilter;
use crate::ssm::{Overview, Target};

/// Every watched association, sorted by ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub associations: Vec<AssociationState>,
    /// How many associations the region had at the last full ListAssociations, if one ran:
    /// what listing them would cost, against describing each watched one.
    pub region_associations: Option<usize>,
}

impl Snapshot {
    pub fn get(&self, association_id: &str) -> Option<&AssociationState> {
        self.associations
            .binary_search_by(|a| a.association_id.as_str().cmp(association_id))
            .ok()
            .map(|i| &self.associations[i])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationState {
    pub association_id: String,
    pub name: Option<String>,
    pub document_name: Option<String>,
    pub document_version: Option<String>,
    pub association_version: Option<String>,
    pub last_execution_date: Option<SystemTime>,
    /// As SSM last reported it; with `last_execution_date`, what tells a new run.
    pub overview: Option<Overview>,
    /// The latest (or pinned) execution; `None` when the association never ran.
    pub execution: Option<ExecutionState>,
    /// Whether every call about this association succeeded in the last cycle. When one failed,
    /// the fields above are those of the last cycle that succeeded.
    pub poll_ok: bool,
    pub last_success: Option<SystemTime>,
}

impl AssociationState {
    /// An association known only by its ID: nothing about it has been read yet.
    pub fn unknown(association_id: &str) -> Self {
        AssociationState {
            association_id: association_id.to_owned(),
            name: None,
            document_name: None,
            document_version: None,
            association_version: None,
            last_execution_date: None,
            overview: None,
            execution: None,
            poll_ok: false,
            last_success: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionState {
    pub execution_id: String,
    pub status: Option<String>,
    pub detailed_status: Option<String>,
    pub created_time: Option<SystemTime>,
    pub last_execution_date: Option<SystemTime>,
    /// The execution's own summary of its targets; a change means the counts are stale.
    pub resource_count_by_status: Option<String>,
    pub targets: TargetCounts,
    /// The filters the targets were counted with.
    pub filters: Vec<TargetFilter>,
    /// When the targets were last read, for the full-refresh safety valve.
    pub read_at: SystemTime,
}

/// The three labels targets are counted by. A field the API left out counts as `""`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    pub status: String,
    pub detailed_status: String,
    pub resource_type: String,
}

/// Targets counted per [`TargetKey`], in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetCounts(BTreeMap<TargetKey, u64>);

impl TargetCounts {
    pub fn add(&mut self, target: &Target) {
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        let key = TargetKey {
            status: field(&target.status),
            detailed_status: field(&target.detailed_status),
            resource_type: field(&target.resource_type),
        };
        *self.0.entry(key).or_insert(0) += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TargetKey, u64)> {
        self.0.iter().map(|(k, v)| (k, *v))
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(status: &str, detailed: Option<&str>, resource_type: &str) -> Target {
        Target {
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
    fn get_finds_by_id() {
        let snapshot = Snapshot {
            associations: vec![
                AssociationState::unknown("a"),
                AssociationState::unknown("c"),
            ],
            region_associations: None,
        };
        assert_eq!(
            snapshot.get("c").map(|a| a.association_id.as_str()),
            Some("c")
        );
        assert_eq!(snapshot.get("b"), None);
    }
}
