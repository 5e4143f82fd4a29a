//! Wiring: SSM source → scheduler → published exposition ← HTTP server. An [`Exporter`] owns
//! its tasks and its metrics, so several can run in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::board::{Board, Exposition, Renderer, Served};
use crate::config::{Config, PairSpec, Place, RetryMode, Shard};
use crate::hints::Hints;
use crate::listener::{Listener, Route};
use crate::reload::{Applier, Outcome, Reloader, Reloads};
use crate::scheduler::{Control, PairSettings, Scheduler};
use crate::server::{self, ServerOptions};
use crate::sqs::Queue;
use crate::sqs::aws::AwsQueue;
use crate::ssm::Ssm;
use crate::ssm::aws::{AwsSsm, ClientError, ClientOptions};
use crate::telemetry::{EventsTelemetry, Telemetry};

/// One (account, region) pair to poll: its client and, when `accounts` are configured, its
/// place, which its series carry as labels.
#[derive(Debug)]
pub struct Pair<S> {
    pub place: Option<Place>,
    pub ssm: S,
}

/// One client per (account, region) pair of `config`, each built from the pair's options as
/// `adjust` changes them (the demo's endpoint, a test's fixed credentials).
///
/// # Errors
///
/// [`ClientError`] of the first pair whose client cannot be built.
pub async fn aws_pairs(
    config: &Config,
    adjust: impl Fn(ClientOptions) -> ClientOptions,
) -> Result<Vec<Pair<AwsSsm>>, ClientError> {
    let mut pairs = Vec::new();
    for spec in config.pairs() {
        let ssm = AwsSsm::connect(&adjust(client_options(config, &spec))).await?;
        pairs.push(Pair {
            place: spec.place,
            ssm,
        });
    }
    Ok(pairs)
}

/// The client options of one (account, region) pair: its region, endpoint and role, and a
/// retry partition of its own, so that throttling in one pair never spends another's retries.
/// Here, not at the AWS boundary, which knows nothing of the configuration.
pub fn client_options(config: &Config, pair: &PairSpec) -> ClientOptions {
    let retry_partition = match &pair.place {
        Some(place) => format!("ssm-{}-{}", place.account_id, place.region),
        None => ClientOptions::default().retry_partition,
    };
    ClientOptions {
        region: pair.region.clone(),
        endpoint_url: pair.endpoint_url.clone(),
        max_attempts: config.api.max_attempts,
        operation_timeout: config.api.timeout,
        adaptive: config.api.retry_mode == RetryMode::Adaptive,
        retry_partition,
        role: pair.role.clone(),
        sts_endpoint_url: config.sts_endpoint_url.clone(),
        ..ClientOptions::default()
    }
}

/// What an exporter runs: a configuration, this replica's shard beside it, and the file that
/// reloads read again.
#[derive(Debug, Clone)]
pub struct Setup {
    pub config: Config,
    pub shard: Shard,
    /// `None`: nothing to reload.
    pub file: Option<PathBuf>,
}

/// A configuration alone: every association is this replica's, and nothing reloads.
impl From<&Config> for Setup {
    fn from(config: &Config) -> Self {
        Setup {
            config: config.clone(),
            shard: Shard::ALL,
            file: None,
        }
    }
}

/// The client of the events queue of `config`, if it has one: with the credentials of the
/// pair whose account and region the queue's URL names, or else the default chain in the
/// queue's region; `adjust` changes the options as [`aws_pairs`] does.
///
/// # Errors
///
/// [`ClientError`] if the client cannot be built.
pub async fn aws_queue(
    config: &Config,
    adjust: impl Fn(ClientOptions) -> ClientOptions,
) -> Result<Option<AwsQueue>, ClientError> {
    let Some(events) = &config.events else {
        return Ok(None);
    };
    let pairs = config.pairs();
    let pair = pairs
        .iter()
        .find(|s| s.place.is_some() && s.place == events.queue_place);
    let options = match pair {
        Some(spec) => client_options(config, spec),
        None => {
            let spec = PairSpec {
                place: None,
                region: events
                    .queue_place
                    .as_ref()
                    .map(|p| p.region.clone())
                    .or_else(|| config.region.clone()),
                endpoint_url: None,
                role: None,
            };
            client_options(config, &spec)
        }
    };
    let options = adjust(options);
    AwsQueue::connect(&options, events.endpoint_url.clone())
        .await
        .map(Some)
}

/// What the events queue's reader is started with.
#[derive(Debug, Clone)]
struct EventsSetup {
    telemetry: EventsTelemetry,
    /// The region a pair without a place takes the events of: the queue's, else the
    /// configuration's; `None`: every region's.
    region: Option<String>,
    queue_url: String,
}

/// A running exporter: polling in the background, serving on its listener.
#[derive(Debug)]
pub struct Exporter {
    local_addr: SocketAddr,
    /// One per pair, in the order of the pairs.
    controls: Vec<mpsc::Sender<Control>>,
    board: Board,
    /// Each pair's place and the associations events named for it, for the queue's reader.
    hints: Vec<(Option<Place>, Arc<Hints>)>,
    /// With events configured: what the queue's reader needs.
    events: Option<EventsSetup>,
    stop: watch::Receiver<bool>,
    applier: Applier,
    reloads: Reloads,
    exposition: watch::Receiver<Arc<Exposition>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: std::thread::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("the exporter has stopped")]
    Stopped,
    #[error("cannot serve on the listener: {0}")]
    Listener(#[source] std::io::Error),
    /// The server's own runtime or thread could not be started.
    #[error("cannot start the server's threads: {0}")]
    Threads(#[source] std::io::Error),
    #[error("no account and region to poll")]
    NoPairs,
    #[error("no pair polls {0}")]
    UnknownPlace(Place),
    #[error("the configuration has no events queue")]
    NoEvents,
}

impl Exporter {
    /// Starts polling with `ssm` per `config` and serving on `listener`: one pair, with no
    /// account or region labels.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Listener`] if the listener has no local address.
    pub fn start<S: Ssm + 'static>(
        ssm: S,
        setup: impl Into<Setup>,
        listener: TcpListener,
        options: ServerOptions,
    ) -> Result<Exporter, ExporterError> {
        Exporter::start_pairs(vec![Pair { place: None, ssm }], setup, listener, options)
    }

    /// Starts one scheduler per source, each with its own limit, and serving on `listener`.
    /// Each pair's first cycle starts at once; `/metrics` serves what is known so far, and
    /// `/-/ready` says ready once any pair has finished a cycle.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Listener`] if the listener has no local address,
    /// [`ExporterError::NoPairs`] for an empty list.
    pub fn start_pairs<S: Ssm + 'static>(
        pairs: Vec<Pair<S>>,
        setup: impl Into<Setup>,
        listener: TcpListener,
        options: ServerOptions,
    ) -> Result<Exporter, ExporterError> {
        let Setup {
            config,
            shard,
            file,
        } = setup.into();
        if pairs.is_empty() {
            return Err(ExporterError::NoPairs);
        }
        let local_addr = listener.local_addr().map_err(ExporterError::Listener)?;
        let places: Vec<Option<Place>> = pairs.iter().map(|s| s.place.clone()).collect();
        let telemetry = Telemetry::new(places.iter().any(Option::is_some));
        let board = Board::new(places, &format!("{}{}", config.summary(), shard.summary()));
        let (publish, exposition) = watch::channel(Arc::new(Exposition::default()));
        let (serve, served) = Served::channel();
        let (shutdown, stop) = watch::channel(false);
        let (configs, configs_rx) = watch::channel(Arc::new(config.clone()));
        let mut controls = Vec::new();
        let mut tasks = Vec::new();
        let mut hints = Vec::new();
        let events_telemetry = config.events.as_ref().map(|_| telemetry.events());
        for (slot, given) in pairs.into_iter().enumerate() {
            let (control, control_rx) = mpsc::channel(16);
            let pair = PairSettings::new(&config, shard, given.place.as_ref());
            let pair_hints = Arc::new(Hints::new(pair.poll.clone()));
            hints.push((given.place.clone(), pair_hints.clone()));
            let scheduler = Scheduler {
                ssm: given.ssm,
                slot,
                shard,
                pair,
                hints: pair_hints,
                events: events_telemetry.clone(),
                telemetry: telemetry.pair(given.place.as_ref()),
                place: given.place,
                board: board.clone(),
                served: served.clone(),
                configs: configs_rx.clone(),
            };
            tasks.push(tokio::spawn(scheduler.run(control_rx, stop.clone())));
            controls.push(control);
        }
        let renderer = Renderer {
            board: board.subscribe(),
            telemetry: telemetry.clone(),
            publish,
            served: serve,
        };
        tasks.push(tokio::spawn(renderer.run(stop.clone())));
        let applier = Applier {
            configs: Arc::new(configs),
            telemetry,
            board: board.clone(),
            served,
            shard,
        };
        let events = config.events.as_ref().zip(events_telemetry).map(|(e, t)| {
            let region = e
                .queue_place
                .as_ref()
                .map(|p| p.region.clone())
                .or_else(|| config.region.clone());
            EventsSetup {
                telemetry: t,
                region,
                queue_url: e.queue_url.clone(),
            }
        });
        let (reloader, reloads) = Reloader::new(file, config, applier.clone());
        if let Some((reloader, queue)) = reloader {
            tasks.push(tokio::spawn(reloader.run(queue, stop.clone())));
        }
        let server = serve_apart(
            listener,
            exposition.clone(),
            options,
            reloads.clone(),
            stop.clone(),
        )?;
        Ok(Exporter {
            local_addr,
            controls,
            board,
            hints,
            events,
            stop,
            applier,
            reloads,
            exposition,
            shutdown,
            tasks,
            server,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts reading the configuration's events queue through `queue`: each event's pair
    /// polls its association between cycles.
    ///
    /// # Errors
    ///
    /// [`ExporterError::NoEvents`] if the configuration names no queue.
    pub fn listen<Q: Queue + 'static>(&mut self, queue: Q) -> Result<(), ExporterError> {
        let Some(EventsSetup {
            telemetry,
            region,
            queue_url,
        }) = self.events.clone()
        else {
            return Err(ExporterError::NoEvents);
        };
        let routes = self
            .hints
            .iter()
            .map(|(place, hints)| Route {
                place: place.clone(),
                hints: hints.clone(),
            })
            .collect();
        let listener = Listener {
            queue,
            queue_url,
            routes,
            region,
            telemetry,
            board: self.board.clone(),
        };
        self.tasks
            .push(tokio::spawn(listener.run(self.stop.clone())));
        Ok(())
    }

    /// Waits until the pairs have published targeted polls of `n` associations in all, and
    /// they are served.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Stopped`] if the schedulers are gone first.
    pub async fn wait_for_targeted(&self, n: u64) -> Result<(), ExporterError> {
        let generation = self
            .board
            .subscribe()
            .wait_for(|b| b.pairs().iter().map(|s| s.targeted).sum::<u64>() >= n)
            .await
            .map(|b| b.generation())
            .map_err(|_| ExporterError::Stopped)?;
        self.served(generation).await.map(drop)
    }

    /// Runs a cycle of every pair that starts after this call and waits until their results
    /// are served; returns the number of cycles every pair has finished.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Stopped`] if a scheduler is gone.
    pub async fn poll_now(&self) -> Result<u64, ExporterError> {
        let mut answers = Vec::new();
        for control in &self.controls {
            let (reply, answer) = oneshot::channel();
            control
                .send(Control::Poll(reply))
                .await
                .map_err(|_| ExporterError::Stopped)?;
            answers.push(answer);
        }
        for answer in answers {
            answer.await.map_err(|_| ExporterError::Stopped)?;
        }
        // Each answer came once its pair's result was served.
        Ok(self.exposition.borrow().cycles)
    }

    /// Hands a configuration to the cycles that start after this call, every pair's next one,
    /// or with `None` records that a reload was refused; returns once the outcome is served.
    /// Accounts, regions, endpoints and the SDK's retry and timeout settings belong to the
    /// clients, built at start: they need a restart.
    ///
    /// # Errors
    ///
    /// [`ReloadError::AccountsChanged`](crate::reload::ReloadError::AccountsChanged) for a
    /// configuration that lists other accounts than the running one;
    /// [`ReloadError::Stopped`](crate::reload::ReloadError::Stopped) if the renderer is gone.
    pub async fn reload(&self, config: Option<Config>) -> Outcome {
        self.applier.apply(config).await
    }

    /// Reads the configuration file again and applies it: the one entry that SIGHUP and
    /// `POST /-/reload` share. One reload runs at a time; the calls made while one runs
    /// share the next, which reads the file after each of them was made.
    ///
    /// # Errors
    ///
    /// [`ReloadError`](crate::reload::ReloadError): no file, a refused one, or a stopped exporter.
    pub async fn reload_file(&self) -> Outcome {
        self.reloads.reload().await
    }

    /// Waits until the board's `generation` is served; returns the cycles every pair finished.
    async fn served(&self, generation: u64) -> Result<u64, ExporterError> {
        let mut exposition = self.exposition.clone();
        exposition
            .wait_for(|e| e.generation >= generation)
            .await
            .map(|e| e.cycles)
            .map_err(|_| ExporterError::Stopped)
    }

    /// Waits until every pair has finished `n` cycles and their result is served.
    ///
    /// # Errors
    ///
    /// [`ExporterError::Stopped`] if the schedulers are gone first.
    pub async fn wait_for_cycle(&self, n: u64) -> Result<(), ExporterError> {
        let mut exposition = self.exposition.clone();
        exposition
            .wait_for(|e| e.cycles >= n)
            .await
            .map(drop)
            .map_err(|_| ExporterError::Stopped)
    }

    /// Waits until the pair at `place` has finished `n` cycles and their result is served,
    /// whatever the other pairs are doing.
    ///
    /// # Errors
    ///
    /// [`ExporterError::UnknownPlace`] if no pair polls `place`.
    pub async fn wait_for_place(&self, place: &Place, n: u64) -> Result<(), ExporterError> {
        let mut board = self.board.subscribe();
        let polled = board
            .borrow()
            .pairs()
            .iter()
            .any(|s| s.place.as_ref() == Some(place));
        if !polled {
            return Err(ExporterError::UnknownPlace(place.clone()));
        }
        let generation = board
            .wait_for(|b| {
                b.pairs()
                    .iter()
                    .any(|s| s.place.as_ref() == Some(place) && s.cycles >= n)
            })
            .await
            .map(|b| b.generation())
            .map_err(|_| ExporterError::Stopped)?;
        self.served(generation).await.map(drop)
    }

    /// Stops polling and serving; returns once in-flight requests are answered.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        // A task that panicked has nothing left to clean up.
        for task in self.tasks {
            let _ = task.await;
        }
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
    reloads: Reloads,
    mut stop: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, ExporterError> {
    // A tokio listener belongs to the runtime that made it; hand it over as a std one.
    let listener = listener.into_std().map_err(ExporterError::Listener)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_THREADS)
        .thread_name("http")
        .enable_all()
        .build()
        .map_err(ExporterError::Threads)?;
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
                server::serve(listener, exposition, options, reloads, async move {
                    // An error means the sender is gone, which is a stop too.
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await;
            });
        })
        .map_err(ExporterError::Threads)
}

/// Worker threads of the server's runtime: as many as a small machine has cores.
const SERVER_THREADS: usize = 2;
