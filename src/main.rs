//! The binary: flags, logging, exit codes. Exit code 2 means the configuration or the flags
//! were wrong, and nothing was started.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ssm_association_exporter::app::Exporter;
use ssm_association_exporter::config::{self, Config};
use ssm_association_exporter::server::{ServerOptions, valid_telemetry_path};
use ssm_association_exporter::sim::{self, Sim};
use ssm_association_exporter::ssm::aws::{AwsSsm, ClientOptions};
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// The port: outside the 9100–9999 range where most exporters sit.
const DEFAULT_LISTEN_ADDRESS: &str = ":8467";

#[derive(Debug, Parser)]
#[command(
    name = "ssm-association-exporter",
    version,
    about = "Prometheus exporter for AWS Systems Manager State Manager association executions: counts each watched execution's targets by status."
)]
struct Flags {
    /// Configuration file (YAML). Without one, every association in the region is discovered.
    #[arg(
        long = "config.file",
        value_name = "PATH",
        env = "SSM_EXPORTER_CONFIG_FILE"
    )]
    config_file: Option<PathBuf>,

    /// Validate the configuration, print a one-line summary and exit.
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

    /// Log level: error, warn, info, debug or trace.
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info")]
    log_level: tracing::Level,

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

fn main() -> ExitCode {
    let flags = Flags::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(flags.log_level.as_str()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
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
    let config = match &flags.config_file {
        Some(path) => config::load(path).map_err(|e| Usage(e.to_string()))?,
        None if flags.demo => demo_config()?,
        None => config::parse("").map_err(Usage)?,
    };
    if !valid_telemetry_path(&flags.telemetry_path) {
        return Err(Usage(format!(
            "--web.telemetry-path {:?}: must be an absolute path of letters, digits and / - _ . ~, not under /-/",
            flags.telemetry_path
        ))
        .into());
    }
    let listen_address = match flags.listen_address.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => flags.listen_address.clone(),
    };
    if flags.config_check {
        println!("configuration OK: {}", config.summary());
        return Ok(());
    }

    let mut options = ClientOptions::for_config(&config);
    let demo = if flags.demo {
        let sim = Sim::new(42);
        sim::demo::seed(&sim);
        let server = sim
            .start()
            .await
            .context("cannot start the simulated SSM endpoint")?;
        info!(endpoint = %server.endpoint_url(), "demo: simulated SSM endpoint started");
        options.region = options.region.or_else(|| Some("us-east-2".to_owned()));
        options.endpoint_url = Some(server.endpoint_url());
        options.static_credentials = Some(("AKIDDEMO".to_owned(), "demo-secret".to_owned()));
        options.initial_backoff = Duration::from_millis(100);
        Some((sim, server))
    } else {
        None
    };
    let ssm = AwsSsm::connect(&options)
        .await
        .map_err(|e| Usage(e.to_string()))?;
    let listener = TcpListener::bind(&listen_address)
        .await
        .with_context(|| format!("cannot listen on {listen_address}"))?;
    let exporter = Exporter::start(
        ssm,
        &config,
        listener,
        ServerOptions {
            telemetry_path: flags.telemetry_path.clone(),
        },
    )?;
    info!(
        address = %exporter.local_addr(),
        telemetry_path = %flags.telemetry_path,
        config = %config.summary(),
        "listening"
    );

    let (stop_demo, demo_task) = match demo {
        Some((sim, server)) => {
            let (stop, mut stopped) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(async move {
                sim::demo::run(sim, Duration::from_secs(3), async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
                server.stop().await;
            });
            (Some(stop), Some(task))
        }
        None => (None, None),
    };

    shutdown_signal().await?;
    info!("shutting down");
    exporter.shutdown().await;
    if let (Some(stop), Some(task)) = (stop_demo, demo_task) {
        stop.send_replace(true);
        let _ = task.await;
    }
    Ok(())
}

/// The demo watches everything, polling often enough to see runs evolve, at a rate the
/// simulator does not mind.
fn demo_config() -> Result<Config, Usage> {
    config::parse("poll_interval: 5s\napi:\n  requests_per_second: 50\n").map_err(Usage)
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
    }
    Ok(())
}
