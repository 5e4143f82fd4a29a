//! The reference docs say what the code does: docs/metrics.md every metric family,
//! docs/configuration.md every config key.

use ssm_association_exporter::render::snapshot_family_names;
use ssm_association_exporter::telemetry::{CycleOutcome, Telemetry};

/// Every family of the exporter's own, each with a series: a pair has had a cycle.
fn own_families() -> Vec<String> {
    let telemetry = Telemetry::new(false);
    let source = telemetry.pair(None);
    source.record_interval(std::time::Duration::from_secs(60));
    let events = telemetry.events();
    events.record_targeted(&[], 1);
    events.record_queue_up(true);
    source.record_cycle(&CycleOutcome {
        finished: std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1),
        duration: std::time::Duration::from_secs(1),
        watched: 1,
        calls: 1,
        throttled: 0,
        failures: 0,
        error_kind: None,
        listed: true,
    });
    telemetry
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect()
}

const METRICS_DOC: &str = include_str!("../../docs/metrics.md");
const CONFIGURATION_DOC: &str = include_str!("../../docs/configuration.md");
const EXAMPLE: &str = include_str!("../../config.example.yaml");

#[test]
fn every_metric_family_is_in_the_metrics_reference() {
    let own = own_families();
    assert_eq!(own.len(), 18);
    for name in snapshot_family_names().map(str::to_owned).chain(own) {
        assert!(
            METRICS_DOC.contains(&format!("| `{name}` |")),
            "docs/metrics.md's metric table lacks {name}"
        );
    }
}

#[test]
fn every_config_key_of_the_example_is_in_the_configuration_reference() {
    let keys: Vec<&str> = EXAMPLE
        .lines()
        .map(|l| l.trim_start_matches(['#', ' ', '-']))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    for key in [
        "region",
        "poll_interval",
        "association_id",
        "execution_id",
        "filters",
        "name_prefix",
        "document_name",
    ] {
        assert!(keys.contains(&key), "config.example.yaml lacks {key}");
    }
    for key in keys {
        assert!(
            CONFIGURATION_DOC.contains(&format!("`{key}"))
                || CONFIGURATION_DOC.contains(&format!(".{key}`")),
            "docs/configuration.md lacks config key {key}"
        );
    }
}

/// The Grafana dashboard keeps its promises: a fixed uid for provisioning, a `datasource`
/// variable that every panel and query uses, and queries that name only metrics the exporter
/// really exports.
#[test]
fn the_dashboard_queries_only_real_metrics_through_its_datasource_variable() {
    let text = include_str!("../../deploy/grafana/dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(text).expect("dashboard is JSON");
    assert_eq!(dashboard["uid"], "ssm-association-exporter");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "{variables:?}"
    );
    let mut exported: Vec<String> = snapshot_family_names().map(str::to_owned).collect();
    exported.extend(own_families());
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries = 0;
    let mut named = std::collections::BTreeSet::new();
    for panel in panels {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {}",
            panel["title"]
        );
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "panel {}",
                panel["title"]
            );
            let expr = target["expr"].as_str().expect("a PromQL expression");
            queries += 1;
            let mut rest = expr;
            while let Some(at) = rest.find("ssm_association_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                assert!(
                    exported.contains(&name),
                    "panel {} queries {name}, which is not exported",
                    panel["title"]
                );
                named.insert(name.clone());
                rest = &rest[at + name.len()..];
            }
        }
    }
    assert!(queries >= 15, "{queries} queries");
    for needed in [
        "ssm_association_targets",
        "ssm_association_running_targets",
        "ssm_association_failed_target",
        "ssm_association_execution_info",
        "ssm_association_next_run_timestamp_seconds",
        "ssm_association_last_successful_execution_timestamp_seconds",
        "ssm_association_exporter_api_requests_total",
        "ssm_association_exporter_last_cycle_duration_seconds",
    ] {
        assert!(named.contains(needed), "no panel shows {needed}");
    }
}

/// `build_info` carries the revision and branch the build recorded.
#[test]
fn build_info_names_the_revision() {
    let telemetry = Telemetry::new(false);
    let families = telemetry.gather();
    let info = families
        .iter()
        .find(|f| f.name() == "ssm_association_exporter_build_info")
        .expect("build_info");
    let labels: std::collections::BTreeMap<&str, &str> = info.get_metric()[0]
        .get_label()
        .iter()
        .map(|l| (l.name(), l.value()))
        .collect();
    let revision = crate::cli::git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let branch = crate::cli::git(&["rev-parse", "--abbrev-ref", "HEAD"])
        .unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(labels.get("revision"), Some(&revision.as_str()));
    assert_eq!(labels.get("branch"), Some(&branch.as_str()));
    assert_eq!(labels.get("version"), Some(&env!("CARGO_PKG_VERSION")));
}
