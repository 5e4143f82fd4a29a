//! Test fixtures: a simulator on loopback, an exporter in-process with the real aws-sdk-ssm
//! client pointed at it, and a scraper that parses the exposition into exact values.

use std::collections::BTreeMap;
use std::time::Duration;

use ssm_association_exporter::app::{Exporter, Setup};
use ssm_association_exporter::config;
use ssm_association_exporter::server::ServerOptions;
use ssm_association_exporter::sim::{Sim, SimServer, SimTarget};
use ssm_association_exporter::ssm;
use ssm_association_exporter::ssm::aws::{AwsSsm, ClientOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Client options for talking to the simulator: fixed credentials, quick retries.
pub fn client_options(endpoint_url: String) -> ClientOptions {
    ClientOptions {
        region: Some("us-east-2".to_owned()),
        static_credentials: Some(("AKIDTEST".to_owned(), "secret".to_owned())),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        operation_timeout: Duration::from_secs(10),
        // Tests run side by side in one process: each keeps its own retry quota.
        retry_partition: format!("test-{endpoint_url}"),
        endpoint_url: Some(endpoint_url),
        ..ClientOptions::default()
    }
}

/// A simulator, and an exporter polling it with the given YAML config.
pub struct Rig {
    pub sim: Sim,
    pub server: SimServer,
    pub exporter: Exporter,
}

impl Rig {
    /// Starts an exporter whose interval is an hour, so that only [`Rig::cycle`] runs cycles
    /// after the first; returns once the first has finished, with the simulator's request log
    /// cleared.
    pub async fn start(sim: Sim, yaml: &str) -> Rig {
        let rig = Rig::launch(sim, yaml).await;
        rig.exporter.wait_for_cycle(1).await.expect("first cycle");
        rig.sim.clear_requests();
        rig
    }

    /// Starts as [`Rig::start`] does, without waiting for the first cycle.
    pub async fn launch(sim: Sim, yaml: &str) -> Rig {
        Rig::launch_with(sim, yaml, |options| options).await
    }

    /// [`Rig::launch`] with the client options changed by `adjust`.
    pub async fn launch_with(
        sim: Sim,
        yaml: &str,
        adjust: impl FnOnce(ClientOptions) -> ClientOptions,
    ) -> Rig {
        Rig::launch_serving(sim, yaml, adjust, ServerOptions::default()).await
    }

    /// [`Rig::launch_with`], serving with `server` options (TLS, auth, reload).
    pub async fn launch_serving(
        sim: Sim,
        yaml: &str,
        adjust: impl FnOnce(ClientOptions) -> ClientOptions,
        serving: ServerOptions,
    ) -> Rig {
        // No client-side rate limit to speak of, unless the test sets its own.
        let api = if yaml.contains("api:") {
            ""
        } else {
            "api:\n  requests_per_second: 100000\n  burst: 1000\n"
        };
        let config = config::parse(&format!("poll_interval: 1h\n{api}{yaml}"))
            .expect("test config is valid");
        Rig::launch_config(sim, &config, adjust, serving).await
    }

    /// Starts an exporter with a prepared configuration (a shard, say), waiting for nothing.
    pub async fn launch_config(
        sim: Sim,
        setup: impl Into<Setup>,
        adjust: impl FnOnce(ClientOptions) -> ClientOptions,
        serving: ServerOptions,
    ) -> Rig {
        let server = sim.start().await.expect("simulator starts");
        let ssm = AwsSsm::connect(&adjust(client_options(server.endpoint_url())))
            .await
            .expect("client builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let exporter = Exporter::start(ssm, setup, listener, serving).expect("exporter starts");
        Rig {
            sim,
            server,
            exporter,
        }
    }

    /// Runs a full cycle that starts now, then scrapes.
    pub async fn cycle(&self) -> Metrics {
        self.exporter.poll_now().await.expect("cycle runs");
        self.scrape().await
    }

    pub async fn scrape(&self) -> Metrics {
        let response = get(self.exporter.local_addr(), "/metrics").await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        Metrics::parse(&response.body)
    }

    pub async fn stop(self) {
        self.exporter.shutdown().await;
        self.server.stop().await;
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), and its bytes (joined when it came in chunks).
    pub body: String,
    pub raw_body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh loopback connection.
pub async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> HttpResponse {
    send(addr, method, path, &[], "").await
}

/// A request with extra headers and a body; the connection closes after the response.
pub async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    exchange(stream, method, path, headers, body)
        .await
        .expect("an HTTP response")
}

/// Writes one request on `stream` (plain or TLS) and reads the response to the end.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<HttpResponse> {
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_response(&raw)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let raw_body = if chunked {
        dechunk(&raw[split + 4..])?
    } else {
        raw[split + 4..].to_vec()
    };
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&raw_body).into_owned(),
        raw_body,
    })
}

/// A chunked body's chunks joined; `None` when it is malformed or ends before its last chunk.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

pub async fn get(addr: std::net::SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path).await
}

/// A parsed exposition: series text (`name{a="x",b="y"}`, labels as rendered) → value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(|l| {
                    let (series, value) = l.rsplit_once(' ').expect("series and value");
                    (series.to_owned(), value.parse().expect("numeric value"))
                })
                .collect(),
        )
    }

    /// Every series of one family, with its labels as a map.
    pub fn family(&self, name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
        self.0
            .iter()
            .filter_map(|(series, value)| {
                let labels = match series.strip_prefix(name)? {
                    "" => "",
                    rest => rest.strip_prefix('{')?.strip_suffix('}')?,
                };
                Some((parse_labels(labels), *value))
            })
            .collect()
    }

    /// The value of the one series of `name` with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.family(name).get(&label_map(labels)).copied()
    }

    /// Targets of one association: (execution, status, detailed status, type) → count, those
    /// of its latest finished execution and of the one running, each under the ID that
    /// `ssm_association_execution_info` gives it.
    pub fn targets(&self, association_id: &str) -> BTreeMap<(String, String, String, String), f64> {
        let mut targets = self.finished_targets(association_id);
        targets.extend(self.running_targets(association_id));
        targets
    }

    /// Targets of the association's latest finished (or pinned) execution.
    pub fn finished_targets(
        &self,
        association_id: &str,
    ) -> BTreeMap<(String, String, String, String), f64> {
        self.counts("ssm_association_targets", association_id, true)
    }

    /// Targets of the association's running execution.
    pub fn running_targets(
        &self,
        association_id: &str,
    ) -> BTreeMap<(String, String, String, String), f64> {
        self.counts("ssm_association_running_targets", association_id, false)
    }

    /// The ID of the association's execution that `ssm_association_execution_info` says has
    /// finished (`true`) or not.
    pub fn execution_id(&self, association_id: &str, done: bool) -> Option<String> {
        let ids: Vec<String> = self
            .family("ssm_association_execution_info")
            .into_iter()
            .filter(|(l, _)| {
                l["association_id"] == association_id
                    && ssm::finished(Some(l["status"].as_str())) == done
            })
            .map(|(l, _)| l["execution_id"].clone())
            .collect();
        assert!(
            ids.len() <= 1,
            "{association_id}: several executions {ids:?}"
        );
        ids.into_iter().next()
    }

    fn counts(
        &self,
        family: &str,
        association_id: &str,
        done: bool,
    ) -> BTreeMap<(String, String, String, String), f64> {
        let rows: Vec<_> = self
            .family(family)
            .into_iter()
            .filter(|(l, _)| l["association_id"] == association_id)
            .collect();
        if rows.is_empty() {
            return BTreeMap::new();
        }
        let execution = self
            .execution_id(association_id, done)
            .expect("counts come with their execution's info series");
        rows.into_iter()
            .map(|(l, v)| {
                (
                    (
                        execution.clone(),
                        l["status"].clone(),
                        l["detailed_status"].clone(),
                        l["resource_type"].clone(),
                    ),
                    v,
                )
            })
            .collect()
    }

    /// Association IDs that have any series of `name`.
    pub fn associations_in(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .family(name)
            .keys()
            .filter_map(|l| l.get("association_id").cloned())
            .collect();
        ids.dedup();
        ids
    }
}

pub fn label_map(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Parses `a="x",b="y\"z"` (the exposition's escaping) into a map.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
    }
    labels
}

/// The truth, counted from the simulator's own state: what the exporter must show.
pub fn expected_targets(
    sim: &Sim,
    association_id: &str,
    execution_id: &str,
    keep: impl Fn(&SimTarget) -> bool,
) -> BTreeMap<(String, String, String, String), f64> {
    let mut counts = BTreeMap::new();
    for t in sim
        .targets(association_id, execution_id)
        .expect("execution exists in the simulator")
        .iter()
        .filter(|t| keep(t))
    {
        *counts
            .entry((
                execution_id.to_owned(),
                t.status.clone(),
                t.detailed_status.clone(),
                t.resource_type.clone(),
            ))
            .or_insert(0.0) += 1.0;
    }
    counts
}

/// `n` managed instances named from `prefix`, with statuses cycling through `statuses`.
pub fn fleet(prefix: &str, n: usize, statuses: &[&str]) -> Vec<SimTarget> {
    (0..n)
        .map(|i| SimTarget::instance(format!("{prefix}{i:05}"), statuses[i % statuses.len()]))
        .collect()
}
