//! The real binary as a process: exit codes, `--config.check`, `--demo`, and the standard AWS
//! environment (credentials, `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`) against the simulator.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ssm_association_exporter::sim::{Sim, SimTarget, demo};

use crate::harness::{Metrics, fleet, get};

const BIN: &str = env!("CARGO_BIN_EXE_ssm-association-exporter");
const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";
const E2: &str = "7abb6378-a4a5-4f10-8312-0123456789ab";
/// Only a bound for a child that misbehaves; every wait ends on an event before it.
const PATIENCE: Duration = Duration::from_secs(60);

/// A command for the binary with the host's AWS settings hidden, so nothing reaches beyond
/// loopback: no profile files, no instance metadata, no ambient credentials.
fn exporter(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(&key);
        }
    }
    command
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("SSM_EXPORTER_CONFIG_FILE");
    command
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sae-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// How a message reads inside a logfmt value: quotes and backslashes escaped.
fn logfmt(message: &str) -> String {
    message.replace('\\', "\\\\").replace('"', "\\\"")
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("binary runs")
}

/// A running exporter process whose log lines arrive on a channel.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Process { child, lines }
    }

    /// The next log line containing `needle`; panics with what was seen if the log ends first.
    fn wait_for(&self, needle: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!(
                    "no log line with {needle:?} ({e}); saw:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    /// The address from the "listening" log line.
    fn address(&self) -> std::net::SocketAddr {
        let line = self.wait_for("listening");
        line.split_whitespace()
            .find_map(|field| field.strip_prefix("address="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// SIGTERM, then the exit code.
    fn terminate(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.child.wait().expect("child exits").code()
    }
}

fn scrape(addr: std::net::SocketAddr) -> Metrics {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let response = runtime.block_on(get(addr, "/metrics"));
    assert_eq!(response.status, 200);
    Metrics::parse(&response.body)
}

#[test]
fn a_bad_config_exits_2_before_anything_starts() {
    let cases = [
        (
            "poll_interval: 60\n",
            "poll_interval: \"60\" is not a duration like 500ms, 30s, 5m, 1h30m at line 1",
        ),
        (
            "region: us-east-2\nassociations:\n  - association_id: fa94c678-85c6-4d40-926b-7c791EXAMPLE\n",
            "associations[0].association_id: \"fa94c678-85c6-4d40-926b-7c791EXAMPLE\" is not an ID",
        ),
        ("colour: blue\n", "unknown field `colour`"),
    ];
    for (text, message) in cases {
        let path = temp_file("bad.yaml", text);
        for extra in [&[][..], &["--config.check"][..]] {
            let mut args = vec!["--config.file", path.to_str().expect("utf-8 path")];
            args.extend_from_slice(extra);
            let out = run(&mut exporter(&args));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
            assert!(
                stderr.contains(&logfmt(&format!("{}: {message}", path.display()))),
                "{stderr}"
            );
            assert!(!stderr.contains("listening"), "{stderr}");
        }
    }
    let missing = run(&mut exporter(&[
        "--config.file",
        "/nonexistent/config.yaml",
    ]));
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/config.yaml: cannot read")
    );
}

#[test]
fn bad_flags_exit_2() {
    let out = run(&mut exporter(&["--web.telemetry-path", "metrics"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&logfmt("--web.telemetry-path \"metrics\": must be an absolute path"))
    );
    let out = run(&mut exporter(&["--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&mut exporter(&["--log.level", "loud"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_check_prints_a_summary_and_exits_0() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = run(&mut exporter(&["--config.file", example, "--config.check"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "configuration OK: 3 explicit associations (1 pinned), poll interval 1m, region us-east-2, endpoint default, at most 5 calls/s\n"
    );
}

#[test]
fn no_region_anywhere_is_a_configuration_error() {
    let out = run(&mut exporter(&["--web.listen-address", "127.0.0.1:0"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no AWS region"));
}

#[test]
fn demo_serves_the_reference_sample_and_stops_on_sigterm() {
    let process = Process::spawn(exporter(&["--demo", "--web.listen-address", "127.0.0.1:0"]));
    let addr = process.address();
    process.wait_for("poll cycle finished");
    let metrics = scrape(addr);
    assert_eq!(
        metrics.targets(demo::SAMPLE_ASSOCIATION_ID),
        [(
            (
                demo::SAMPLE_EXECUTION_ID.to_owned(),
                "Success".to_owned(),
                "Success".to_owned(),
                "ManagedInstance".to_owned()
            ),
            3.0
        )]
        .into_iter()
        .collect()
    );
    assert_eq!(
        metrics
            .associations_in("ssm_association_poll_success")
            .len(),
        5
    );
    assert_eq!(process.terminate(), Some(0));
}

/// The standard chain end to end: credentials and endpoint from the environment only.
#[test]
fn the_aws_environment_is_honoured() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = Sim::new(21);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-04444444444a", 130, &["Success", "Failed"]),
    );
    sim.insert_execution(
        A,
        E2,
        1_700_000_500.0,
        vec![SimTarget::instance("i-04444444444a00001", "InProgress")],
    );
    let server = runtime.block_on(sim.start()).expect("simulator");
    let config = temp_file(
        "pinned.yaml",
        &format!(
            "region: eu-west-1\nassociations:\n  - association_id: {A}\n    execution_id: {E1}\n"
        ),
    );

    for variable in ["AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL"] {
        sim.clear_requests();
        let mut command = exporter(&[
            "--config.file",
            config.to_str().expect("utf-8 path"),
            "--web.listen-address",
            "127.0.0.1:0",
        ]);
        command
            .env(variable, server.endpoint_url())
            .env("AWS_ACCESS_KEY_ID", "AKIDENVTEST")
            .env("AWS_SECRET_ACCESS_KEY", "env-secret");
        let process = Process::spawn(command);
        let addr = process.address();
        process.wait_for("poll cycle finished");
        let metrics = scrape(addr);
        let targets: Vec<((String, String, String, String), f64)> =
            metrics.targets(A).into_iter().collect();
        assert_eq!(
            targets,
            [
                (
                    (
                        E1.to_owned(),
                        "Failed".to_owned(),
                        "Failed".to_owned(),
                        "ManagedInstance".to_owned()
                    ),
                    65.0
                ),
                (
                    (
                        E1.to_owned(),
                        "Success".to_owned(),
                        "Success".to_owned(),
                        "ManagedInstance".to_owned()
                    ),
                    65.0
                ),
            ],
            "{variable}"
        );
        assert_eq!(process.terminate(), Some(0));
        assert!(
            sim.requests()
                .iter()
                .any(|r| r.operation == "DescribeAssociationExecutionTargets"),
            "{variable}: the simulator was not called"
        );
    }
    runtime.block_on(server.stop());
}
