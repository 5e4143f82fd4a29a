//! The README documents what the code does: every metric family and every config key.

use ssm_association_exporter::render::SNAPSHOT_FAMILIES;
use ssm_association_exporter::telemetry::Telemetry;

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../../config.example.yaml");

#[test]
fn every_metric_family_is_in_the_readme() {
    let own: Vec<String> = Telemetry::new()
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(own.len(), 9);
    for name in SNAPSHOT_FAMILIES.iter().map(|n| (*n).to_owned()).chain(own) {
        assert!(
            README.contains(&format!("| `{name}` |")),
            "README's metric table lacks {name}"
        );
    }
}

#[test]
fn every_config_key_of_the_example_is_in_the_readme() {
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
            README.contains(&format!("`{key}")) || README.contains(&format!(".{key}`")),
            "README lacks config key {key}"
        );
    }
}
