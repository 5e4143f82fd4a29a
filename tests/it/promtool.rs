//! The exposition as Prometheus' own linter sees it.

use std::io::Write;
use std::process::{Command, Stdio};

use ssm_association_exporter::sim::{Sim, fleet};

use crate::harness::{Rig, get};

/// Runs `promtool check metrics` on `text`; `None` when promtool is not installed outside CI.
fn promtool_check(text: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "promtool not runnable ({e}); install Debian's prometheus package to lint, as .ci/run does"
            );
            return None;
        }
        Err(e) => panic!("promtool is required in CI: {e}"),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), report))
}

#[test]
fn the_golden_exposition_passes_promtool() {
    let golden = include_str!("../golden/snapshot.prom");
    if let Some((ok, report)) = promtool_check(golden) {
        assert!(ok, "{report}");
        assert_eq!(report, "");
    }
}

#[tokio::test]
async fn the_live_exposition_passes_promtool() {
    let sim = Sim::new(51);
    fleet::seed(&sim);
    let rig = Rig::start(sim, "").await;
    let body = get(rig.exporter.local_addr(), "/metrics").await.body;
    assert!(body.contains("ssm_association_targets{"), "{body}");
    if let Some((ok, report)) = promtool_check(&body) {
        assert!(ok, "{report}\n{body}");
        assert_eq!(report, "");
    }
    rig.stop().await;
}
