//! Reloading the configuration: one path for SIGHUP and `POST /-/reload`. The reloader owns
//! the file; one reload runs at a time, and the asks that wait for it share the next reading.
//! A refused file changes nothing but the reload gauge. The shard is the schedulers': no file
//! sets it.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::board::{Board, Served};
use crate::config::{self, Config, Shard};
use crate::telemetry::Telemetry;

/// Why a reload changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    #[error("the exporter runs without --config.file")]
    NoFile,
    /// The file could not be read or is not a valid configuration; the message names why.
    #[error("{0}")]
    Refused(String),
    #[error("accounts changed: restart to apply them; the previous configuration keeps running")]
    AccountsChanged,
    #[error("the exporter has stopped")]
    Stopped,
}

pub type Outcome = Result<(), ReloadError>;

/// Asks for reloads: the server's `POST /-/reload` and the binary's SIGHUP hold one each.
#[derive(Debug, Clone, Default)]
pub struct Reloads {
    /// `None` when there is no file to reload.
    requests: Option<mpsc::Sender<oneshot::Sender<Outcome>>>,
}

impl Reloads {
    /// Whether there is a file to reload.
    pub fn configured(&self) -> bool {
        self.requests.is_some()
    }

    /// Reads the file again and applies it. Asks waiting together share one reading that
    /// starts after each was made.
    ///
    /// # Errors
    ///
    /// [`ReloadError`]: the file is refused, there is none, or the exporter has stopped.
    pub async fn reload(&self) -> Outcome {
        let Some(requests) = &self.requests else {
            return Err(ReloadError::NoFile);
        };
        let (reply, outcome) = oneshot::channel();
        requests
            .send(reply)
            .await
            .map_err(|_| ReloadError::Stopped)?;
        outcome.await.unwrap_or(Err(ReloadError::Stopped))
    }
}

/// Hands a configuration to every pair's next cycle, or records a refusal, and waits until the
/// outcome is served.
#[derive(Debug, Clone)]
pub(crate) struct Applier {
    pub(crate) configs: Arc<watch::Sender<Arc<Config>>>,
    pub(crate) telemetry: Telemetry,
    pub(crate) board: Board,
    pub(crate) served: Served,
    /// This replica's shard, for the summary the status page shows.
    pub(crate) shard: Shard,
}

impl Applier {
    /// Applies `config`, or with `None` records that a reload was refused. A configuration that
    /// lists other accounts than the running one is refused as an invalid one is: the pairs
    /// are fixed at start, and half a change would leave explicit associations with no pair.
    pub(crate) async fn apply(&self, config: Option<Config>) -> Outcome {
        let changes_pairs = config
            .as_ref()
            .is_some_and(|new| new.accounts != self.configs.borrow().accounts);
        let config = config.filter(|_| !changes_pairs);
        let summary = config.as_ref().map(Config::summary);
        match config {
            Some(config) => {
                self.configs.send_replace(Arc::new(config));
                self.telemetry.record_reload(true);
            }
            None => self.telemetry.record_reload(false),
        }
        let generation = match &summary {
            Some(summary) => self
                .board
                .reconfigure(&format!("{summary}{}", self.shard.summary())),
            None => self.board.bump(),
        };
        self.served
            .reach(generation)
            .await
            .map_err(|_| ReloadError::Stopped)?;
        if changes_pairs {
            return Err(ReloadError::AccountsChanged);
        }
        // Logged once the outcome is served: whoever reads the log can scrape it.
        if let Some(summary) = summary {
            info!(config = %summary, "configuration reloaded");
        }
        Ok(())
    }
}

/// The task that reads the file when asked.
#[derive(Debug)]
pub(crate) struct Reloader {
    file: PathBuf,
    /// The configuration running now, to say which changes need a restart.
    running: Config,
    applier: Applier,
}

impl Reloader {
    /// A reloader for `file`, and the handle that asks it; with no file, only the handle, which
    /// answers [`ReloadError::NoFile`].
    pub(crate) fn new(
        file: Option<PathBuf>,
        running: Config,
        applier: Applier,
    ) -> (Option<(Reloader, ReloadQueue)>, Reloads) {
        let Some(file) = file else {
            return (None, Reloads::default());
        };
        let (requests, queue) = mpsc::channel(16);
        let reloader = Reloader {
            file,
            running,
            applier,
        };
        (
            Some((reloader, ReloadQueue(queue))),
            Reloads {
                requests: Some(requests),
            },
        )
    }

    /// Serves reload requests until `shutdown` turns true.
    pub(crate) async fn run(mut self, mut queue: ReloadQueue, mut shutdown: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                Some(reply) = queue.0.recv() => reply,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            // Whoever asked before this reading starts shares it. Whoever asks while it runs
            // may have written the file since it was read, and waits for the next reading.
            let askers: Vec<_> = std::iter::once(first)
                .chain(std::iter::from_fn(|| queue.0.try_recv().ok()))
                .collect();
            let outcome = self.reload_once().await;
            for reply in askers {
                // The asker may have given up waiting; nothing to do then.
                let _ = reply.send(outcome.clone());
            }
        }
    }

    async fn reload_once(&mut self) -> Outcome {
        let loaded = config::load_with(&self.file, |text| {
            // A file caught mid-write reads empty, and empty means "discover everything at the
            // defaults": too large a change to take from what may be an accident.
            if text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                return Err(config::Invalid::new(
                    "the file is empty; a reload keeps the running configuration (write {} for the defaults)",
                ));
            }
            config::parse(text)
        });
        let new = match loaded {
            Ok(new) => new,
            Err(e) => {
                let _ = self.applier.apply(None).await;
                error!(error = %e, "configuration reload refused; the previous configuration keeps running");
                return Err(ReloadError::Refused(e.to_string()));
            }
        };
        match self.applier.apply(Some(new.clone())).await {
            Ok(()) => {}
            Err(e @ ReloadError::AccountsChanged) => {
                error!(file = %self.file.display(), "configuration reload refused: {e}");
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        for warning in new.warnings() {
            warn!("{warning}");
        }
        let restart = self.running.needs_restart(&new);
        if !restart.is_empty() {
            warn!(keys = ?restart, "these settings take effect only after a restart");
        }
        self.running = new;
        Ok(())
    }
}

/// The reloader's end of the requests.
#[derive(Debug)]
pub(crate) struct ReloadQueue(mpsc::Receiver<oneshot::Sender<Outcome>>);

#[cfg(test)]
mod tests {
    use super::*;

    /// A reload that read the file before an ask was made cannot answer that ask: the asker
    /// may have written the file just before asking.
    #[tokio::test]
    async fn an_ask_made_while_a_reload_runs_gets_a_reading_of_its_own() {
        let file = std::env::temp_dir().join(format!("sae-reload-{}.yaml", std::process::id()));
        std::fs::write(&file, "poll_interval: often\n").expect("write");
        let running = config::parse("{}").expect("defaults");
        let board = Board::new([None], "");
        let (serve, served) = Served::channel();
        let applier = Applier {
            configs: Arc::new(watch::channel(Arc::new(running.clone())).0),
            telemetry: Telemetry::new(false),
            board: board.clone(),
            served,
            shard: Shard::ALL,
        };
        let (Some((reloader, queue)), reloads) =
            Reloader::new(Some(file.clone()), running, applier)
        else {
            panic!("a file gives a reloader");
        };
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(reloader.run(queue, shutdown));

        let mut posts = board.subscribe();
        let first = tokio::spawn({
            let reloads = reloads.clone();
            async move { reloads.reload().await }
        });
        // The first reload has read the file once it records its refusal on the board; it
        // then waits for that to be served.
        posts.changed().await.expect("board");
        std::fs::write(&file, "{}\n").expect("rewrite");
        let (reply, second) = oneshot::channel();
        reloads
            .requests
            .as_ref()
            .expect("a file")
            .send(reply)
            .await
            .expect("queued");
        serve.send_replace(u64::MAX);

        assert!(
            matches!(first.await.expect("task"), Err(ReloadError::Refused(_))),
            "the first read the bad file"
        );
        assert_eq!(second.await.expect("answer"), Ok(()));
        let _ = std::fs::remove_file(&file);
    }
}
