//! The proof against a real Prometheus server (Debian's `prometheus` package; `.ci/run`
//! installs it): it scrapes the exporter over TLS with basic auth, the exporter polls the
//! simulator where targets failed, Prometheus loads the shipped alert rules, and must show the
//! right values and fire the failed-targets alert.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use ssm_association_exporter::sim::{Sim, SimSchedule, SimTarget};

use ssm_association_exporter::server::ServerOptions;

use crate::harness::{Rig, exchange};
use crate::serving::{make_pki, web_config};

const PASSWORD: &str = "scrape-s3cret";

const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";
const B: &str = "5b7c0a1e-2f3d-4a4b-8c5d-6e7f8a9b0c1d";
const E2: &str = "e2e2e2e2-2f3d-4a4b-8c5d-6e7f8a9b0c1d";
/// How long Prometheus gets to scrape and evaluate; it does so every second here.
const PATIENCE: Duration = Duration::from_secs(90);

struct Prometheus {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus scraping `target` over HTTPS with basic auth, trusting the CA in `dir`;
/// `None` when it is not installed outside CI.
fn start_prometheus(dir: &Path, target: std::net::SocketAddr) -> Option<Prometheus> {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/alerts.yaml");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\nscrape_configs:\n  - job_name: ssm-association-exporter\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n      server_name: localhost\n    basic_auth:\n      username: prometheus\n      password: {PASSWORD}\n    static_configs:\n      - targets: ['{target}']\n",
            ca = dir.join("ca.crt").display(),
        ),
    )
    .expect("write prometheus.yml");
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("address")
    };
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(child) => Some(Prometheus { child, addr }),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "prometheus not runnable ({e}); install Debian's prometheus package, as .ci/run does"
            );
            None
        }
        Err(e) => panic!("prometheus is required in CI: {e}"),
    }
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asks Prometheus until `check` accepts its answer to `path`; panics with the last answer
/// after [`PATIENCE`]. Prometheus scrapes and evaluates on its own clock, so asking again is
/// the only way to learn that it has.
async fn until(prometheus: &Prometheus, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        // Until Prometheus listens, connecting fails: that is one more reason to ask again.
        let answer = match tokio::net::TcpStream::connect(prometheus.addr).await {
            Ok(stream) => exchange(stream, "GET", path, &[], "").await.ok(),
            Err(_) => None,
        };
        let body: Value = answer
            .as_ref()
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_str(&r.body).ok())
            .unwrap_or(Value::Null);
        if check(&body) {
            return body;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{path} never passed; last answer: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn scalar(body: &Value) -> Option<f64> {
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_the_exporter_and_fires_the_failed_targets_alert() {
    let sim = Sim::new(91);
    sim.insert_association(A, Some("patch-linux"), "AWS-RunPatchBaseline");
    // A minute ago: on schedule (rate(30 minutes)).
    let started = now().floor() - 60.0;
    sim.insert_execution(
        A,
        E1,
        started,
        vec![
            SimTarget::instance("i-0aaaaaaaaaaaaaaa1", "Failed"),
            SimTarget::instance("i-0aaaaaaaaaaaaaaa2", "TimedOut").detailed("ExecutionTimedOut"),
            SimTarget::instance("i-0aaaaaaaaaaaaaaa3", "Success"),
        ],
    );
    // An hourly association whose schedule stopped firing three and a half hours ago: overdue,
    // and without a success for more than three of its intervals.
    sim.insert_association(B, Some("backup-hourly"), "AWS-RunShellScript");
    sim.set_schedule(B, SimSchedule::every("rate(1 hour)"));
    sim.insert_execution(
        B,
        E2,
        now().floor() - 3.5 * 3600.0,
        vec![SimTarget::instance("i-0bbbbbbbbbbbbbbb1", "Success")],
    );
    // Served as an operator would: TLS and basic auth from an exporter-toolkit web config.
    let pki = make_pki("prometheus");
    let hash = bcrypt::hash(PASSWORD, 4).expect("hash");
    let web = web_config(
        &pki.dir,
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"
        ),
    );
    let rig = Rig::launch_serving(
        sim,
        "failed_targets:\n  enabled: true\n",
        |o| o,
        ServerOptions {
            web,
            ..ServerOptions::default()
        },
    )
    .await;
    rig.exporter.wait_for_cycle(1).await.expect("first cycle");
    let dir = pki.dir.clone();
    let Some(prometheus) = start_prometheus(&dir, rig.exporter.local_addr()) else {
        rig.stop().await;
        return;
    };

    let query = |q: &str| format!("/api/v1/query?query={}", encode(q));
    let failed = until(
        &prometheus,
        &query(&format!(
            "sum(ssm_association_targets{{association_id=\"{A}\",status=~\"Failed|TimedOut\"}})"
        )),
        |b| scalar(b).is_some(),
    )
    .await;
    assert_eq!(scalar(&failed), Some(2.0));
    let named = until(
        &prometheus,
        &query("count(ssm_association_failed_target)"),
        |b| scalar(b).is_some(),
    )
    .await;
    assert_eq!(scalar(&named), Some(2.0));
    let up = until(
        &prometheus,
        &query("up{job=\"ssm-association-exporter\"}"),
        |b| scalar(b).is_some(),
    )
    .await;
    assert_eq!(scalar(&up), Some(1.0));
    // The exposition comes gzip-compressed as one member per buffer: Prometheus reads them
    // all, the first family's, the exporter's own and the last family's.
    for (q, want) in [
        (
            format!(
                "ssm_association_execution_created_timestamp_seconds{{association_id=\"{A}\"}}"
            ),
            started,
        ),
        (
            "ssm_association_exporter_renders_total > 0".to_owned(),
            f64::NAN,
        ),
        (
            format!("ssm_association_poll_success{{association_id=\"{A}\"}}"),
            1.0,
        ),
    ] {
        let got = until(&prometheus, &query(&q), |b| scalar(b).is_some()).await;
        let value = scalar(&got).expect("a value");
        assert!(want.is_nan() || value == want, "{q}: {value}");
    }

    let alerts = until(&prometheus, "/api/v1/alerts", |b| {
        b["data"]["alerts"]
            .as_array()
            .is_some_and(|alerts| alerts.iter().filter(|a| a["state"] == "firing").count() == 3)
    })
    .await;
    let alert = alerts["data"]["alerts"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|a| a["labels"]["alertname"] == "SSMAssociationTargetsFailed")
        })
        .expect("the alert");
    assert_eq!(alert["labels"]["association_id"], A);
    assert_eq!(alert["labels"]["association_name"], "patch-linux");
    assert_eq!(alert["labels"]["execution_id"], Value::Null);
    assert_eq!(
        alert["value"].as_str().and_then(|v| v.parse::<f64>().ok()),
        Some(2.0)
    );
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("patch-linux") && s.contains("2 targets failed")),
        "{alert}"
    );
    // Only that alert fires: the exporter is up, fresh and unthrottled.
    let mut firing: Vec<&str> = alerts["data"]["alerts"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|a| a["state"] == "firing")
                .filter_map(|a| a["labels"]["alertname"].as_str())
                .collect()
        })
        .unwrap_or_default();
    firing.sort_unstable();
    assert_eq!(
        firing,
        [
            "SSMAssociationMissedSchedule",
            "SSMAssociationNoRecentSuccess",
            "SSMAssociationTargetsFailed",
        ]
    );
    let missed = |alerts: &Value| -> Vec<Value> {
        alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] != "SSMAssociationTargetsFailed")
            .map(|a| a["labels"]["association_id"].clone())
            .collect()
    };
    assert_eq!(
        missed(&alerts),
        [B, B],
        "only the stopped schedule is overdue"
    );

    // The next run starts: the alert stays firing, with the same labels, since it started.
    let running = rig
        .sim
        .start_execution(
            A,
            vec![
                SimTarget::instance("i-0aaaaaaaaaaaaaaa1", "InProgress"),
                SimTarget::instance("i-0aaaaaaaaaaaaaaa2", "Pending"),
                SimTarget::instance("i-0aaaaaaaaaaaaaaa3", "InProgress"),
            ],
        )
        .expect("association exists");
    rig.exporter.poll_now().await.expect("cycle runs");
    until(
        &prometheus,
        &query(&format!(
            "ssm_association_running_targets{{association_id=\"{A}\",status=\"Pending\"}}"
        )),
        |b| scalar(b) == Some(1.0),
    )
    .await;
    // Two evaluations later, for the rule to have seen the running execution.
    let evaluated = Instant::now();
    let alerts = until(&prometheus, "/api/v1/alerts", |b| {
        evaluated.elapsed() > Duration::from_secs(2) && b["data"]["alerts"].is_array()
    })
    .await;
    let still = targets_failed(&alerts).expect("the alert still fires while the next run runs");
    assert_eq!(still["state"], "firing");
    assert_eq!(still["labels"], alert["labels"]);
    assert_eq!(still["activeAt"], alert["activeAt"]);

    // The run finishes clean: the alert resolves.
    for id in [
        "i-0aaaaaaaaaaaaaaa1",
        "i-0aaaaaaaaaaaaaaa2",
        "i-0aaaaaaaaaaaaaaa3",
    ] {
        rig.sim.set_target(A, &running, id, "Success", "Success");
    }
    rig.exporter.poll_now().await.expect("cycle runs");
    until(&prometheus, "/api/v1/alerts", |b| {
        b["data"]["alerts"].is_array() && targets_failed(b).is_none()
    })
    .await;
    let clean = until(
        &prometheus,
        &query(&format!(
            "sum(ssm_association_targets{{association_id=\"{A}\",status=\"Success\"}})"
        )),
        |b| scalar(b).is_some(),
    )
    .await;
    assert_eq!(scalar(&clean), Some(3.0));

    drop(prometheus);
    rig.stop().await;
}

/// The failed-targets alert among Prometheus' alerts, if it is there.
fn targets_failed(alerts: &Value) -> Option<Value> {
    alerts["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == "SSMAssociationTargetsFailed")
        .cloned()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}
