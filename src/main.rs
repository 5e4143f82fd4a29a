//! The binary: flags, logging, signals, exit codes. Exit code 2 means the configuration or the
//! flags were wrong, and nothing was started.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ssm_association_exporter::app::{Exporter, Setup, aws_pairs, aws_queue};
use ssm_association_exporter::config::{self, Shard};
use ssm_association_exporter::demo::Demo;
use ssm_association_exporter::http::Limits;
use ssm_association_exporter::logging::{self, LogFormat};
use ssm_association_exporter::server::{ServerOptions, valid_telemetry_path};
use ssm_association_exporter::web::{self, WebConfig};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

/// The port: outside the 9100–9999 range where most exporters sit.
const DEFAULT_LISTEN_ADDRESS: &str = ":8467";

#[derive(Debug, Parser)]
#[command(
    name = "ssm-association-exporter",
    version = env!("SAE_LONG_VERSION"),
    about = "Prometheus exporter for AWS Systems Manager State Manager association executions: counts each watched execution's targets by status."
)]
struct Flags {
    /// Configuration file (YAML). Without one, every association in the region is discovered.
    /// SIGHUP or POST /-/reload reads it again.
    #[arg(
        long = "config.file",
        value_name = "PATH",
        env = "SSM_EXPORTER_CONFIG_FILE"
    )]
    config_file: Option<PathBuf>,

    /// Validate the configuration (and the web configuration), print a summary and exit.
    #[arg(long = "config.check")]
    config_check: bool,

    /// Address to listen on, host:port; ":port" listens on every interface.
    #[arg(long = "web.listen-address", value_name = "ADDRESS", default_value = DEFAULT_LISTEN_ADDRESS)]
    listen_address: String,

    /// Path under which metrics are served.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    telemetry_path: String,

    /// Web configuration file in the exporter-toolkit format: TLS, basic auth, headers.
    #[arg(long = "web.config.file", value_name = "PATH")]
    web_config_file: Option<PathBuf>,

    /// Connections open at once. At the cap, a new one closes the connection idle longest
    /// (silent, between requests, or not reading its answer); if every one is being answered,
    /// the newcomer gets 503.
    #[arg(
        long = "web.max-connections",
        value_name = "N",
        default_value_t = 256,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_connections: usize,

    /// This replica's shard, from 0: it polls only the associations whose ID hashes to it.
    /// In a StatefulSet, take it from the pod's apps.kubernetes.io/pod-index label.
    #[arg(
        long = "shard",
        value_name = "N",
        env = "SSM_EXPORTER_SHARD",
        default_value_t = 0
    )]
    shard: u32,

    /// How many replicas share the associations.
    #[arg(
        long = "total-shards",
        value_name = "M",
        env = "SSM_EXPORTER_TOTAL_SHARDS",
        default_value_t = 1
    )]
    total_shards: u32,

    /// Log level: error, warn, info, debug or trace.
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info")]
    log_level: tracing::Level,

    /// Log format.
    #[arg(long = "log.format", value_name = "FORMAT", value_enum, default_value_t = LogFormat::Logfmt)]
    log_format: LogFormat,

    /// Run against a built-in simulated SSM endpoint with an evolving demo fleet; no AWS
    /// account needed. With --config.file, that file's settings apply except the endpoint.
    #[arg(long)]
    demo: bool,
}

/// An error of the flags or the configuration: reported with exit code 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// With `--features dhat-heap`: every allocation counted by site, written to dhat-heap.json
/// at exit (docs/benchmarks.md). The profiler must see every allocation, so it is the
/// process-wide allocator: the one global, and only in that build.
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let flags = Flags::parse();
    logging::init(flags.log_level, flags.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Usage>() => {
            error!("{e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let mut config = match &flags.config_file {
        Some(path) => config::load(path).map_err(|e| Usage(e.to_string()))?,
        None if flags.demo => Demo::config().map_err(|e| Usage(e.to_string()))?,
        None => config::parse("").map_err(|e| Usage(e.to_string()))?,
    };
    let shard = Shard::new(flags.shard, flags.total_shards).map_err(Usage)?;
    let web = match &flags.web_config_file {
        Some(path) => web::load(path).map_err(|e| Usage(e.to_string()))?,
        None => WebConfig::default(),
    };
    if !valid_telemetry_path(&flags.telemetry_path) {
        return Err(Usage(format!(
            "--web.telemetry-path {:?}: must be an absolute path of letters, digits and / - _ . ~, not under /-/",
            flags.telemetry_path
        ))
        .into());
    }
    let listen_address = listen_address(&flags.listen_address).map_err(|message| {
        Usage(format!(
            "--web.listen-address {:?}: {message}",
            flags.listen_address
        ))
    })?;
    // The demo starts before the check too: the check builds the clients start builds, and
    // the demo's point at its simulator.
    let demo = if flags.demo {
        let demo = Demo::start()
            .await
            .context("cannot start the simulated SSM endpoint")?;
        demo.configure(&mut config);
        Some(demo)
    } else {
        None
    };
    let adjust = |options| match &demo {
        Some(demo) => demo.client_options(options),
        None => options,
    };
    // Every check that start makes before it calls AWS: each pair's client is built, a region
    // found for it, and the queue's client too.
    let mut pairs = aws_pairs(&config, adjust)
        .await
        .map_err(|e| Usage(e.to_string()))?;
    let queue = aws_queue(&config, adjust)
        .await
        .map_err(|e| Usage(e.to_string()))?;
    if demo.is_some() {
        // The demo has one simulated endpoint: one pair.
        pairs.truncate(1);
    }
    let found = pairs.first().and_then(|s| s.ssm.region());
    let summary = format!("{}{}", config.summary_in(found.as_deref()), shard.summary());
    if flags.config_check {
        println!("configuration OK: {summary}");
        for warning in config.warnings() {
            println!("warning: {warning}");
        }
        if flags.web_config_file.is_some() {
            println!("web configuration OK: {}", web.summary());
        }
        if let Some(demo) = demo {
            demo.stop().await;
        }
        return Ok(());
    }
    for warning in config.warnings() {
        warn!("{warning}");
    }
    let listener = TcpListener::bind(&listen_address)
        .await
        .with_context(|| format!("cannot listen on {listen_address}"))?;
    let mut exporter = Exporter::start_pairs(
        pairs,
        Setup {
            config,
            shard,
            file: flags.config_file.clone(),
        },
        listener,
        ServerOptions {
            telemetry_path: flags.telemetry_path.clone(),
            limits: Limits {
                max_connections: flags.max_connections,
                ..Limits::default()
            },
            web: web.clone(),
        },
    )?;
    if let Some(queue) = queue {
        exporter.listen(queue)?;
    }
    // Before the line that says it listens: a SIGTERM sent on reading it must stop the
    // exporter gracefully, not kill it.
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    info!(
        address = %exporter.local_addr(),
        tls = web.tls.is_some(),
        basic_auth = web.basic_auth.is_some(),
        telemetry_path = %flags.telemetry_path,
        config = %summary,
        "listening"
    );
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            // The reloader logs the outcome; a signal has no one to answer.
            _ = hangup.recv() => {
                let _ = exporter.reload_file().await;
            }
        }
    }
    info!("shutting down");
    exporter.shutdown().await;
    if let Some(demo) = demo {
        demo.stop().await;
    }
    info!("stopped: polling ended and every in-flight request was answered");
    Ok(())
}

/// `host:port` (a name, an IPv4 address, or an IPv6 one in brackets) or `:port` for every
/// interface, as the address to bind.
fn listen_address(flag: &str) -> Result<String, String> {
    let Some((host, port)) = flag.rsplit_once(':') else {
        return Err("must be host:port or :port".to_owned());
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("{port:?} is not a port number (0 to 65535)"));
    }
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            host.is_empty()
                || host.parse::<std::net::Ipv4Addr>().is_ok()
                || (host.len() <= 253
                    && host.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    }))
        }
    };
    if !host_ok {
        return Err(format!(
            "{host:?} is not a host name, an IPv4 address or an IPv6 address in brackets"
        ));
    }
    Ok(if host.is_empty() {
        format!("0.0.0.0:{port}")
    } else {
        flag.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn listen_addresses_are_checked_before_anything_starts() {
        for (flag, want) in [
            (":8467", Ok("0.0.0.0:8467")),
            ("127.0.0.1:0", Ok("127.0.0.1:0")),
            ("[::1]:9000", Ok("[::1]:9000")),
            ("exporter.local:80", Ok("exporter.local:80")),
            ("8467", Err("must be host:port or :port")),
            (
                "localhost:http",
                Err("\"http\" is not a port number (0 to 65535)"),
            ),
            (":65536", Err("\"65536\" is not a port number (0 to 65535)")),
            (
                "::1:80",
                Err("\"::1\" is not a host name, an IPv4 address or an IPv6 address in brackets"),
            ),
            (
                "a b:80",
                Err("\"a b\" is not a host name, an IPv4 address or an IPv6 address in brackets"),
            ),
        ] {
            assert_eq!(
                listen_address(flag),
                want.map(str::to_owned).map_err(str::to_owned),
                "{flag}"
            );
        }
    }
}
