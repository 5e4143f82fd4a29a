//! The real binary as a process: exit codes, `--config.check`, `--demo`, and the standard AWS
//! environment (credentials, `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`) against the simulator.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ssm_association_exporter::sim::{Sim, SimTarget, fleet};

use crate::harness::{Metrics, fleet, get};

const BIN: &str = env!("CARGO_BIN_EXE_ssm-association-exporter");
const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";
const E2: &str = "7abb6378-a4a5-4f10-8312-0123456789ab";
/// Only a bound for a child that misbehaves; every wait ends on an event before it.
const PATIENCE: Duration = Duration::from_secs(60);

/// A command for the binary with the host's AWS settings hidden, so nothing reaches beyond
/// loopback: no profile files, no instance metadata, no ambient credentials.
pub(crate) fn exporter(args: &[&str]) -> Command {
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

/// The exporter with `config`, on an ephemeral loopback port, and `extra` flags.
fn on_loopback(config: &std::path::Path, extra: &[&str]) -> Command {
    let mut args = vec![
        "--config.file",
        config.to_str().expect("utf-8 path"),
        "--web.listen-address",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    exporter(&args)
}

/// `command` with static credentials in the standard AWS environment variables.
fn with_env_credentials(mut command: Command) -> Command {
    command
        .env("AWS_ACCESS_KEY_ID", "AKIDENVTEST")
        .env("AWS_SECRET_ACCESS_KEY", "env-secret");
    command
}

pub(crate) fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sae-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// How a message reads inside a logfmt value: quotes and backslashes escaped.
pub(crate) fn logfmt(message: &str) -> String {
    message.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Exit code 0 and exactly this standard output.
fn succeeds_with(out: &Output, stdout: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
}

pub(crate) fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("binary runs")
}

/// A running exporter process whose log lines arrive on a channel.
pub(crate) struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, for tests that look at the whole log.
    seen: std::cell::RefCell<Vec<String>>,
}

impl Process {
    pub(crate) fn spawn(mut command: Command) -> Process {
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
        Process {
            child,
            lines,
            seen: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The next log line containing `needle`; panics with what was seen if the log ends first.
    pub(crate) fn wait_for(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => {
                    self.seen.borrow_mut().push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no log line with {needle:?} ({e}); saw:\n{}",
                    self.seen.borrow().join("\n")
                ),
            }
        }
    }

    /// The address from the "listening" log line.
    pub(crate) fn address(&self) -> std::net::SocketAddr {
        let line = self.wait_for("listening");
        line.split_whitespace()
            .find_map(|field| field.strip_prefix("address="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// SIGTERM, then the exit code.
    pub(crate) fn terminate(self) -> Option<i32> {
        self.finish().0
    }

    /// SIGTERM, then the exit code and every line the process logged.
    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let code = self.child.wait().expect("child exits").code();
        // The reader ends at the pipe's end, after the last line.
        let mut all = self.seen.into_inner();
        all.extend(self.lines.iter());
        (code, all)
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

/// `git` in this checkout: what the build recorded, or `None` outside a git checkout.
pub fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// `--version` names the revision and branch it was built from, as node_exporter does, or
/// says plainly that it was not built from a git checkout.
#[test]
fn the_version_names_the_revision_it_was_built_from() {
    let out = Command::new(BIN).arg("--version").output().expect("runs");
    assert!(out.status.success());
    let described = match (
        git(&["rev-parse", "HEAD"]),
        git(&["rev-parse", "--abbrev-ref", "HEAD"]),
    ) {
        (Some(revision), Some(branch)) => format!("revision {revision}, branch {branch}"),
        _ => "not built from a git checkout: revision unknown".to_owned(),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = format!(
        "ssm-association-exporter {} ({described}, rustc ",
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        text.starts_with(&prefix),
        "{text:?} does not start with {prefix:?}"
    );
}

#[test]
fn a_bad_config_exits_2_before_anything_starts() {
    let cases = [
        (
            "poll_interval: 60\n",
            "poll_interval: expected a duration of at least 1s, such as 30s, 5m or 1h30m (units ms, s, m, h, d), got \"60\" at line 1",
        ),
        (
            "api:\n  max_in_flight: -5\n",
            "api.max_in_flight: expected a whole number from 1 to 64, got -5 at line 2",
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
    assert!(String::from_utf8_lossy(&out.stderr).contains(&logfmt(
        "--web.telemetry-path \"metrics\": must be an absolute path"
    )));
    let out = run(&mut exporter(&["--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
    // The listen address is checked with the rest, before anything starts.
    let out = run(&mut exporter(&[
        "--web.listen-address",
        "8467",
        "--config.check",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&logfmt(
            "--web.listen-address \"8467\": must be host:port or :port"
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&mut exporter(&["--web.listen-address", "localhost:http"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&mut exporter(&["--web.max-connections", "0"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--web.max-connections"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&mut exporter(&["--log.level", "loud"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&mut exporter(&[
        "--shard",
        "3",
        "--total-shards",
        "3",
        "--config.check",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--shard 3 is not below --total-shards 3")
    );
    let out = run(exporter(&["--config.check"])
        .env("AWS_REGION", "eu-west-1")
        .env("SSM_EXPORTER_SHARD", "1")
        .env("SSM_EXPORTER_TOTAL_SHARDS", "4"));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with(", shard 1 of 4\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn config_check_prints_a_summary_and_exits_0() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = run(&mut exporter(&["--config.file", example, "--config.check"]));
    succeeds_with(
        &out,
        "configuration OK: 3 explicit associations (1 pinned), poll interval 1m, region us-east-2, endpoint default, at most 5 calls/s\n",
    );
}

/// A well-formed region the exporter does not know is a warning, printed by the check and
/// logged at start, and the exporter starts.
#[test]
fn an_unknown_region_is_warned_about_and_started_with() {
    let warning =
        "region: \"us-est-1\" is not a region this exporter knows; did you mean \"us-east-1\"?";
    let path = temp_file("unknown-region.yaml", "region: us-est-1\n");
    let file = path.to_str().expect("utf-8 path");
    let out = run(&mut exporter(&["--config.file", file, "--config.check"]));
    succeeds_with(
        &out,
        &format!(
            "configuration OK: discovery of every association, poll interval 1m, region us-est-1, endpoint default, at most 5 calls/s\nwarning: {warning}\n"
        ),
    );
    // The demo's simulator stands in for the region, so that nothing leaves loopback.
    let process = Process::spawn(exporter(&[
        "--demo",
        "--config.file",
        file,
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    let line = process.wait_for(&logfmt(warning));
    assert!(line.contains("level=warn"), "{line}");
    process.address();
    assert_eq!(process.terminate(), Some(0));
}

/// The demo's summary names the simulator's endpoint and the region the demo uses, at the
/// check (which needs no region from the environment, as start needs none) and at start.
#[test]
fn the_demo_summary_names_the_simulator_and_its_region() {
    let out = run(&mut exporter(&["--demo", "--config.check"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rest = stdout
        .strip_prefix("configuration OK: discovery of every association, poll interval 5s, region us-east-2, endpoint http://127.0.0.1:")
        .unwrap_or_else(|| panic!("{stdout}"));
    let (port, rest) = rest.split_once(',').unwrap_or_else(|| panic!("{stdout}"));
    assert!(port.parse::<u16>().is_ok(), "{stdout}");
    assert_eq!(
        rest,
        format!(
            " at most 50 calls/s, events from http://127.0.0.1:{port}/123456789012/ssm-association-events\n"
        )
    );
    let process = Process::spawn(exporter(&["--demo", "--web.listen-address", "127.0.0.1:0"]));
    let listening = process.wait_for("listening");
    assert!(
        listening.contains("region us-east-2, endpoint http://127.0.0.1:"),
        "{listening}"
    );
    assert!(!listening.contains("endpoint default"), "{listening}");
    assert_eq!(process.terminate(), Some(0));
}

#[test]
fn no_region_anywhere_is_a_configuration_error() {
    // `--config.check` refuses what start refuses.
    for extra in [&[][..], &["--config.check"][..]] {
        let mut args = vec!["--web.listen-address", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let out = run(&mut exporter(&args));
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no AWS region"),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{extra:?}");
    }
}

#[test]
fn demo_serves_the_reference_sample_and_stops_on_sigterm() {
    let process = Process::spawn(exporter(&["--demo", "--web.listen-address", "127.0.0.1:0"]));
    let addr = process.address();
    process.wait_for("poll cycle finished");
    let metrics = scrape(addr);
    assert_eq!(
        metrics.targets(fleet::SAMPLE_ASSOCIATION_ID),
        [(
            (
                fleet::SAMPLE_EXECUTION_ID.to_owned(),
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
        6
    );
    // The demo's stopped hourly schedule is overdue from the start.
    let stopped = fleet::STOPPED_ASSOCIATION_ID;
    let next = metrics
        .get(
            "ssm_association_next_run_timestamp_seconds",
            &[("association_id", stopped)],
        )
        .expect("the stopped association has a next run");
    let last = metrics
        .get(
            "ssm_association_execution_created_timestamp_seconds",
            &[("association_id", stopped)],
        )
        .expect("and a last run");
    assert_eq!(next - last, 3600.0);
    assert!(
        next < std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64()
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
        let mut command = with_env_credentials(on_loopback(&config, &[]));
        command.env(variable, server.endpoint_url());
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

/// The binary with `accounts`: both regions of one account on their own endpoints, the role
/// assumed through the STS stub with the environment's base credentials; series carry the pair.
/// A second account's role is denied: its warning names its pair and the STS error.
#[test]
fn the_binary_polls_each_account_and_region_through_its_role() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let role = "arn:aws:iam::333333333333:role/reader";
    let sts = Sim::new(31);
    sts.add_role(role, Some("ext"));
    let sts_server = runtime.block_on(sts.start()).expect("STS stub");
    let mut regions = Vec::new();
    for (n, region) in ["us-east-1", "eu-west-1"].into_iter().enumerate() {
        let sim = Sim::new(32 + n as u64);
        sim.expect_caller("333333333333", region);
        let id = sim.create_association(Some(region), "AWS-RunPatchBaseline");
        sim.start_execution(&id, fleet(&format!("i-0{n}33333333a"), 4 + n, &["Success"]))
            .expect("association exists");
        let server = runtime.block_on(sim.start()).expect("simulator");
        regions.push((region, id, sim, server));
    }
    let config = temp_file(
        "accounts.yaml",
        &format!(
            "sts_endpoint_url: {}\naccounts:\n  - role_arn: {role}\n    external_id: ext\n    regions: [us-east-1, eu-west-1]\n    endpoint_urls:\n{}  - role_arn: arn:aws:iam::444444444444:role/unknown\n    regions: [us-east-1]\n    endpoint_urls:\n      us-east-1: {}\n",
            sts_server.endpoint_url(),
            regions
                .iter()
                .map(|(r, _, _, server)| format!("      {r}: {}\n", server.endpoint_url()))
                .collect::<String>(),
            regions[0].3.endpoint_url(),
        ),
    );
    let mut command = on_loopback(&config, &[]);
    command
        .env("AWS_ACCESS_KEY_ID", "AKIDBASE")
        .env("AWS_SECRET_ACCESS_KEY", "base-secret");
    let process = Process::spawn(command);
    let addr = process.address();
    let mut finished: Vec<String> = (0..3)
        .map(|_| {
            let line = process.wait_for("poll cycle finished");
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(key))
                    .unwrap_or_default()
                    .to_owned()
            };
            format!("{}/{}", field("account_id="), field("region="))
        })
        .collect();
    finished.sort();
    assert_eq!(
        finished,
        [
            "333333333333/eu-west-1",
            "333333333333/us-east-1",
            "444444444444/us-east-1"
        ]
    );
    let denied: Vec<String> = process
        .seen
        .borrow()
        .iter()
        .filter(|l| {
            l.contains("level=warn target=ssm_association_exporter")
                && l.contains("account_id=444444444444")
        })
        .cloned()
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert!(
        denied[0].contains("region=us-east-1")
            && denied[0].contains("listing associations failed")
            && denied[0].contains("AccessDenied"),
        "{}",
        denied[0]
    );
    let metrics = scrape(addr);
    for (n, (region, id, sim, _)) in regions.iter().enumerate() {
        let total: f64 = metrics
            .family("ssm_association_targets")
            .iter()
            .filter(|(l, _)| {
                l["association_id"] == *id
                    && l["account_id"] == "333333333333"
                    && l["region"] == *region
            })
            .map(|(_, v)| v)
            .sum();
        assert_eq!(total, (4 + n) as f64, "{region}");
        assert!(sim.requests().iter().all(|r| r.status == 200), "{region}");
    }
    assert_eq!(
        sts.requests()
            .iter()
            .filter(|r| r.operation == "AssumeRole" && r.status == 200)
            .count(),
        2
    );
    assert_eq!(
        metrics.get(
            "ssm_association_exporter_last_cycle_success",
            &[("account_id", "444444444444"), ("region", "us-east-1")]
        ),
        Some(0.0)
    );
    // A reload that drops an account is refused: the pairs are fixed at start.
    let text = std::fs::read_to_string(&config).expect("read config");
    let cut = text
        .find("  - role_arn: arn:aws:iam::444444444444")
        .expect("second account");
    std::fs::write(&config, &text[..cut]).expect("rewrite");
    signal(&process, "HUP");
    let refused = process.wait_for("configuration reload refused");
    assert!(
        refused.contains("accounts changed: restart to apply them"),
        "{refused}"
    );
    let after = scrape(addr);
    assert_eq!(
        after.get(
            "ssm_association_exporter_config_last_reload_successful",
            &[]
        ),
        Some(0.0)
    );
    assert_eq!(
        after.get(
            "ssm_association_exporter_last_cycle_success",
            &[("account_id", "444444444444"), ("region", "us-east-1")]
        ),
        Some(0.0),
        "the refused file changed nothing"
    );
    assert_eq!(process.terminate(), Some(0));
    runtime.block_on(async {
        for (_, _, _, server) in regions {
            server.stop().await;
        }
        sts_server.stop().await;
    });
}

/// Signals a running process.
fn signal(process: &Process, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &process.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn post(addr: std::net::SocketAddr, path: &str) -> crate::harness::HttpResponse {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(crate::harness::send(addr, "POST", path, &[], ""))
}

#[test]
fn reload_by_signal_and_by_http_takes_good_files_and_refuses_bad_ones() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = Sim::new(22);
    let b = "0b7e1a52-3c0d-4c1e-9f43-5a1d2c3b4e5f";
    sim.insert_association(A, Some("first"), "AWS-RunPatchBaseline");
    sim.insert_association(b, Some("second"), "AWS-RunPatchBaseline");
    let server = runtime.block_on(sim.start()).expect("simulator");
    let config = temp_file(
        "reload.yaml",
        &format!(
            "region: eu-west-1\nendpoint_url: {}\n",
            server.endpoint_url()
        ),
    );
    let process = Process::spawn(with_env_credentials(on_loopback(&config, &[])));
    let addr = process.address();
    process.wait_for("poll cycle finished");
    assert_eq!(scrape(addr).associations_in("ssm_association_info"), [b, A]);

    // A good file by SIGHUP: the next cycle watches only A.
    std::fs::write(
        &config,
        format!(
            "region: eu-west-1\nendpoint_url: {}\nassociations:\n  - association_id: {A}\n",
            server.endpoint_url()
        ),
    )
    .expect("rewrite");
    signal(&process, "HUP");
    process.wait_for("configuration reloaded");
    let reloaded = |m: &Metrics| {
        m.get(
            "ssm_association_exporter_config_last_reload_successful",
            &[],
        )
    };
    assert_eq!(reloaded(&scrape(addr)), Some(1.0));

    // A bad file by HTTP: refused with the reason, and reported.
    std::fs::write(&config, "poll_interval: often\n").expect("rewrite");
    let answer = post(addr, "/-/reload");
    assert_eq!(answer.status, 500);
    assert!(
        answer
            .body
            .contains("poll_interval: expected a duration of at least 1s, such as 30s, 5m or 1h30m (units ms, s, m, h, d), got \"often\""),
        "{}",
        answer.body
    );
    process.wait_for("configuration reload refused");
    assert_eq!(reloaded(&scrape(addr)), Some(0.0));

    // A bad file by SIGHUP too; then a good one by HTTP.
    signal(&process, "HUP");
    process.wait_for("configuration reload refused");
    std::fs::write(
        &config,
        format!(
            "region: eu-west-1\nendpoint_url: {}\n",
            server.endpoint_url()
        ),
    )
    .expect("rewrite");
    let answer = post(addr, "/-/reload");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(reloaded(&scrape(addr)), Some(1.0));
    assert_eq!(process.terminate(), Some(0));
    runtime.block_on(server.stop());
}

#[test]
fn a_bad_web_config_exits_2_and_a_good_one_is_summarised() {
    let bad = temp_file("bad-web.yml", "basic_auth_users:\n  alice: plaintext\n");
    let out = run(&mut exporter(&[
        "--web.config.file",
        bad.to_str().expect("utf-8"),
        "--config.check",
    ]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad-web.yml: basic_auth_users.alice: is not a bcrypt hash"),
        "{stderr}"
    );

    let hash = bcrypt::hash("pw", 4).expect("hash");
    let good = temp_file(
        "good-web.yml",
        &format!("basic_auth_users:\n  alice: {hash}\n"),
    );
    let out = run(exporter(&[
        "--web.config.file",
        good.to_str().expect("utf-8"),
        "--config.check",
    ])
    .env("AWS_REGION", "eu-west-1"));
    succeeds_with(
        &out,
        "configuration OK: discovery of every association, poll interval 1m, region eu-west-1 (from the environment), endpoint default, at most 5 calls/s\nweb configuration OK: plain HTTP, 1 basic-auth user, 0 extra headers\n",
    );
}

/// Secrets never reach the log, at any level: not the AWS secret key, not a password, not an
/// Authorization header. JSON lines are JSON.
#[test]
fn no_secret_in_any_log_line_even_at_trace() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = Sim::new(23);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        fleet("i-05555555555a", 60, &["Success"]),
    );
    let server = runtime.block_on(sim.start()).expect("simulator");
    let hash = bcrypt::hash("hunter2-password", 4).expect("hash");
    let web = temp_file(
        "secret-web.yml",
        &format!("basic_auth_users:\n  prometheus: {hash}\n"),
    );
    let config = temp_file(
        "secret.yaml",
        &format!(
            "region: eu-west-1\nendpoint_url: {}\n",
            server.endpoint_url()
        ),
    );
    let mut command = on_loopback(
        &config,
        &[
            "--web.config.file",
            web.to_str().expect("utf-8"),
            "--log.level",
            "trace",
            "--log.format",
            "json",
        ],
    );
    command
        .env("AWS_ACCESS_KEY_ID", "AKIDNOTSECRET")
        .env("AWS_SECRET_ACCESS_KEY", "aws-secret-key-value")
        .env("AWS_SESSION_TOKEN", "aws-session-token-value");
    let process = Process::spawn(command);
    let listening = process.wait_for("listening");
    let addr: std::net::SocketAddr = serde_json::from_str::<serde_json::Value>(&listening)
        .expect("JSON log line")["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("address field");
    process.wait_for("poll cycle finished");
    use base64::Engine;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("prometheus:hunter2-password")
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("prometheus:wrong-password")
    );
    for header in [&good, &bad] {
        runtime.block_on(crate::harness::send(
            addr,
            "GET",
            "/metrics",
            &[("Authorization", header)],
            "",
        ));
    }
    let (code, lines) = process.finish();
    assert_eq!(code, Some(0));
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(parsed["level"].is_string(), "{line}");
        for secret in [
            "aws-secret-key-value",
            "aws-session-token-value",
            "hunter2-password",
            "wrong-password",
            good.as_str(),
            bad.as_str(),
            &good[6..],
            &bad[6..],
            "AWS4-HMAC-SHA256",
        ] {
            assert!(!line.contains(secret), "{secret:?} in {line}");
        }
    }
    runtime.block_on(server.stop());
}

/// A reload that reads an empty file (one caught mid-write) is refused, and the running
/// configuration stays; reloads asked for at once share one run.
#[test]
fn an_empty_file_is_refused_on_reload_and_reloads_coalesce() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = Sim::new(23);
    sim.insert_association(A, Some("watched"), "AWS-RunPatchBaseline");
    let server = runtime.block_on(sim.start()).expect("simulator");
    let good = format!(
        "region: eu-west-1\nendpoint_url: {}\nassociations:\n  - association_id: {A}\n",
        server.endpoint_url()
    );
    let config = temp_file("empty-reload.yaml", &good);
    let process = Process::spawn(with_env_credentials(on_loopback(&config, &[])));
    let addr = process.address();
    process.wait_for("poll cycle finished");
    let reloaded = |m: &Metrics| {
        m.get(
            "ssm_association_exporter_config_last_reload_successful",
            &[],
        )
    };

    for empty in ["", "\n  \n", "# nothing yet\n"] {
        std::fs::write(&config, empty).expect("rewrite");
        let answer = post(addr, "/-/reload");
        assert_eq!(answer.status, 500);
        assert!(
            answer.body.contains(
                "the file is empty; a reload keeps the running configuration (write {} for the defaults)"
            ),
            "{}",
            answer.body
        );
        assert_eq!(reloaded(&scrape(addr)), Some(0.0));
    }

    std::fs::write(&config, &good).expect("rewrite");
    const AT_ONCE: usize = 64;
    let answers = runtime.block_on(async {
        let posts: Vec<_> = (0..AT_ONCE)
            .map(|_| tokio::spawn(crate::harness::send(addr, "POST", "/-/reload", &[], "")))
            .collect();
        let mut statuses = Vec::new();
        for post in posts {
            statuses.push(post.await.expect("request task").status);
        }
        statuses
    });
    assert_eq!(answers, vec![200; AT_ONCE]);
    assert_eq!(reloaded(&scrape(addr)), Some(1.0));
    let (code, lines) = process.finish();
    assert_eq!(code, Some(0));
    let runs = lines
        .iter()
        .filter(|l| l.contains("configuration reloaded"))
        .count();
    // The figure, for `-- --nocapture`.
    eprintln!("{runs} reloads ran for {AT_ONCE} requests");
    assert!(
        (1..AT_ONCE).contains(&runs),
        "{runs} reloads ran for {AT_ONCE} requests"
    );
    runtime.block_on(server.stop());
}
