// Each benchmark uses its own part of these helpers.
#![allow(dead_code)]

//! What the benchmarks share: running the exporter binary as a child process against a
//! simulator, reading its log, and measuring it from /proc.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_ssm-association-exporter");

/// The exporter with `config`, on an ephemeral loopback port, with fixed credentials and no
/// access to the host's AWS settings; returns it with its log lines and its address.
pub fn spawn_exporter(config: &Path) -> (Child, mpsc::Receiver<String>, String) {
    spawn_exporter_with(config, &[])
}

/// [`spawn_exporter`] with more flags (`--shard`, say).
pub fn spawn_exporter_with(
    config: &Path,
    flags: &[&str],
) -> (Child, mpsc::Receiver<String>, String) {
    let mut child = Command::new(BIN)
        .args([
            "--config.file",
            config.to_str().expect("utf-8 path"),
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .args(flags)
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        // As the container image sets it (deploy/docker/Dockerfile says why).
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exporter starts");
    let lines = log_lines(&mut child);
    let addr = field(&wait_for(&lines, "listening"), "address");
    (child, lines, addr)
}

/// The first argument that parses as a number (`cargo bench --bench scrape -- 10000`).
pub fn number_arg<T: std::str::FromStr>() -> Option<T> {
    std::env::args().skip(1).find_map(|a| a.parse().ok())
}

/// SIGTERM, and wait for the exit.
pub fn stop(mut child: Child) {
    signal(child.id(), "TERM");
    let _ = child.wait();
}

/// `kill -SIG pid`.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

pub fn log_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

pub fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        match lines.recv_timeout(Duration::from_secs(600)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) if line.contains(" WARN ") || line.contains(" ERROR ") => eprintln!("{line}"),
            Ok(_) => {}
            Err(e) => panic!("the exporter logged no {needle:?}: {e}"),
        }
    }
}

/// The value of `key=value` in a log line.
pub fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_default()
        .to_owned()
}

/// User plus system CPU time of a process so far, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The peak resident set (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> f64 {
    status_kib(pid, "VmHWM:")
}

/// The resident set (VmRSS) of a process now, in KiB.
pub fn rss_kib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

pub async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to exporter");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    body
}

/// One GET over a fresh loopback connection with extra header lines (each ending in
/// `\r\n`), read to the end: the response's head, lowercased, and its body as sent.
pub async fn get(addr: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to exporter");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    (head, raw[split + 4..].to_vec())
}

/// The length of `/metrics`' body, plain or as gzip.
pub async fn scrape_len(addr: &str, gzip: bool) -> usize {
    let encoding = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    get(addr, "/metrics", encoding).await.1.len()
}
