//! Wiring: SSM source → scheduler → published exposition ← HTTP server. An [`Exporter`] owns
//! its tasks and its metrics, so several can run in one process.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::limit::Limiter;
use crate::poll::PollSettings;
use crate::scheduler::{Control, Scheduler};
use crate::server::{self, Exposition, ServerOptions};
use crate::ssm::Ssm;
use crate::telemetry::Telemetry;

/// How long a reload waits for the scheduler before returning with the reload queued.
const RELOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A running exporter: polling in the background, serving on its listener.
#[derive(Debug)]
pub struct Exporter {
    local_addr: SocketAddr,
    controls: mpsc::Sender<Control>,
    exposition: watch::Receiver<Arc<Exposition>>,
    shutdown: watch::Sender<bool>,
    scheduler: JoinHandle<()>,
    server: std::thread::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("the exporter has stopped")]
    Stopped,
    #[error("cannot serve on the listener: {0}")]
    Listener(#[source] std::io::Error),
}

impl Exporter {
    /// Starts polling with `ssm` per `config` and serving on `listener`. The first cycle starts
    /// at once; until it finishes, `/metrics` serves only the exporter's own series.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Listener`] if the listener has no local address.
    pub fn start<S: Ssm + 'static>(
        ssm: S,
        config: &Config,
        listener: TcpListener,
        options: ServerOptions,
    ) -> Result<Exporter, ExporterError> {
        let local_addr = listener.local_addr().map_err(ExporterError::Listener)?;
        let (publish, exposition) = watch::channel(Arc::new(Exposition::default()));
        let (shutdown, stop) = watch::channel(false);
        let (controls, control_rx) = mpsc::channel(16);
        let scheduler = Scheduler {
            ssm,
            limiter: Limiter::for_api(&config.api),
            settings: PollSettings::from(config),
            interval: config.poll_interval,
            telemetry: Telemetry::new(),
            publish,
        };
        let scheduler = tokio::spawn(scheduler.run(control_rx, stop.clone()));
        let server = serve_apart(listener, exposition.clone(), options, stop)?;
        Ok(Exporter {
            local_addr,
            controls,
            exposition,
            shutdown,
            scheduler,
            server,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs a cycle that starts after this call and waits until its result is served.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Stopped`] if the scheduler is gone.
    pub async fn poll_now(&self) -> Result<u64, ExporterError> {
        let (reply, answer) = oneshot::channel();
        self.controls
            .send(Control::Poll(reply))
            .await
            .map_err(|_| ExporterError::Stopped)?;
        answer.await.map_err(|_| ExporterError::Stopped)
    }

    /// Hands a reloaded configuration to the cycles that start after this call, or with
    /// `None` records that a reload was refused; returns once the outcome is served, or after
    /// a moment if a cycle is under way. Region, endpoint and the SDK's retry and timeout
    /// settings belong to the client, built at start: they need a restart.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Stopped`] if the scheduler is gone.
    pub async fn reload(&self, config: Option<Config>) -> Result<(), ExporterError> {
        let (done, applied) = oneshot::channel();
        // Mid-cycle the scheduler takes it when the cycle ends; the caller need not wait, nor
        // block on a queue that a long cycle has filled.
        let delivered = tokio::time::timeout(RELOAD_WAIT, async {
            self.controls
                .send(Control::Reload(config.map(Box::new), done))
                .await
                .map_err(|_| ExporterError::Stopped)?;
            applied.await.map_err(|_| ExporterError::Stopped)
        })
        .await;
        match delivered {
            Ok(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Waits until `n` cycles have finished and their result is served.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Stopped`] if the scheduler is gone first.
    pub async fn wait_for_cycle(&self, n: u64) -> Result<(), ExporterError> {
        let mut exposition = self.exposition.clone();
        exposition
            .wait_for(|e| e.cycles >= n)
            .await
            .map(drop)
            .map_err(|_| ExporterError::Stopped)
    }

    /// Stops polling and serving; returns once in-flight requests are answered.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        // A task that panicked has nothing left to clean up.
        let _ = self.scheduler.await;
        let server = self.server;
        let _ = tokio::task::spawn_blocking(move || server.join()).await;
    }
}

/// Scrapers are served by threads of their own: a poll cycle's work (the SDK's signing and
/// parsing, rendering) then never sits between a scrape and the worker that would answer it,
/// and the operating system shares the cores between the two.
fn serve_apart(
    listener: TcpListener,
    exposition: watch::Receiver<Arc<Exposition>>,
    options: ServerOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, ExporterError> {
    // A tokio listener belongs to the runtime that made it; hand it over as a std one.
    let listener = listener.into_std().map_err(ExporterError::Listener)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_THREADS)
        .thread_name("http")
        .enable_all()
        .build()
        .map_err(ExporterError::Listener)?;
    std::thread::Builder::new()
        .name("http-server".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot serve on the listener");
                        return;
                    }
                };
                server::serve(listener, exposition, options, async move {
                    // An error means the sender is gone, which is a stop too.
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await;
            });
        })
        .map_err(ExporterError::Listener)
}

/// Worker threads of the server's runtime: as many as a small machine has cores.
const SERVER_THREADS: usize = 2;
