//! The `--demo` wiring: the simulated SSM endpoint seeded with the demo fleet, its runs
//! evolving in the background, the client options that point at it and the configuration the
//! demo runs without a file. Nothing here reaches beyond loopback.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::config::{self, Config, Events, Invalid};
use crate::sim::{self, Sim, SimServer};
use crate::ssm::aws::ClientOptions;

/// How often the demo fleet's runs move on.
const STEP: Duration = Duration::from_secs(3);

/// A running demo endpoint.
#[derive(Debug)]
pub struct Demo {
    endpoint_url: String,
    /// The simulated queue the demo's State Manager events arrive on.
    queue_url: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Demo {
    /// Seeds the demo fleet, serves it on loopback and lets its runs evolve.
    ///
    /// # Errors
    ///
    /// The bind error of the simulated endpoint.
    pub async fn start() -> std::io::Result<Demo> {
        let sim = Sim::new(42);
        sim::fleet::seed(&sim);
        let server: SimServer = sim.start().await?;
        let endpoint_url = server.endpoint_url();
        let queue_url = sim.create_queue(sim::DEFAULT_ACCOUNT, "ssm-association-events");
        sim.subscribe(&queue_url, sim::DEFAULT_ACCOUNT, sim::DEFAULT_REGION);
        info!(endpoint = %endpoint_url, "demo: simulated SSM endpoint started");
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            sim::fleet::run(sim, STEP, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
            server.stop().await;
        });
        Ok(Demo {
            endpoint_url,
            queue_url,
            stop,
            task,
        })
    }

    /// `config` pointed at the simulator: its endpoint and, when the file names none, its
    /// region, and its events queue. What the summary and the status page say is then what
    /// the demo polls.
    pub fn configure(&self, config: &mut Config) {
        if config.accounts.is_empty() {
            config.endpoint_url = Some(self.endpoint_url.clone());
            config
                .region
                .get_or_insert_with(|| sim::DEFAULT_REGION.to_owned());
        }
        config.events = Some(self.events());
    }

    /// `options` pointed at the simulated endpoint, with the simulator's credentials.
    pub fn client_options(&self, options: ClientOptions) -> ClientOptions {
        ClientOptions {
            region: options
                .region
                .or_else(|| Some(sim::DEFAULT_REGION.to_owned())),
            endpoint_url: Some(self.endpoint_url.clone()),
            static_credentials: Some(("AKIDDEMO".to_owned(), "demo-secret".to_owned())),
            // The simulator is the one account there is.
            role: None,
            initial_backoff: Duration::from_millis(100),
            ..options
        }
    }

    /// The simulated events queue: the demo reads State Manager's events, so that a run's end
    /// reaches `/metrics` within about a second.
    pub fn events(&self) -> Events {
        Events {
            queue_url: self.queue_url.clone(),
            queue_place: None,
            endpoint_url: Some(self.endpoint_url.clone()),
        }
    }

    /// The demo watches everything, polling often enough to see runs evolve, at a rate the
    /// simulator does not mind.
    ///
    /// # Errors
    ///
    /// None in practice: the text is fixed and valid.
    pub fn config() -> Result<Config, Invalid> {
        config::parse("poll_interval: 5s\napi:\n  requests_per_second: 50\n")
    }

    /// Stops the runs and the endpoint.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        // A task that panicked has nothing left to stop.
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary names what the demo polls: the simulator's endpoint and its region, not
    /// the default endpoint of a region left to the environment.
    #[tokio::test]
    async fn the_summary_names_the_simulator_and_its_region() {
        let demo = Demo::start().await.expect("simulator");
        let mut config = Demo::config().expect("the demo's configuration");
        demo.configure(&mut config);
        assert_eq!(
            config.summary(),
            format!(
                "discovery of every association, poll interval 5s, region us-east-2, endpoint {}, at most 50 calls/s, events from {}",
                demo.endpoint_url, demo.queue_url
            )
        );
        // A file's region stays: only the endpoint is the demo's.
        let mut config = config::parse("region: eu-west-1\n").expect("valid");
        demo.configure(&mut config);
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            config.endpoint_url.as_deref(),
            Some(demo.endpoint_url.as_str())
        );
        demo.stop().await;
    }
}
