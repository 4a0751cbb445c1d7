//! Log streams from the engine, shared: however many clients follow a container, the
//! engine streams its logs once; the stream closes when the last follower leaves.
//!
//! A follower first subscribes, then reads the recent history, then drops every
//! followed line not newer than the last history line: nothing is lost between the two
//! and nothing is shown twice (the engine's `since` has one-second resolution, so the
//! shared stream starts at the second it was opened).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::LogsOptions;
use futures::StreamExt;
use tokio::sync::{OnceCell, broadcast};

use super::line::{LogLine, parse_frame};

/// Lines a follower may fall behind by before it is told it lagged.
const BUFFER: usize = 1024;

/// What a follower receives.
#[derive(Debug, Clone)]
pub enum LogEvent {
    Line(Arc<LogLine>),
    /// The stream ended (the container stopped, or the engine failed): why.
    End(String),
}

/// Why logs cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("the Docker engine is unreachable: {0}")]
    Engine(bollard::errors::Error),
    #[error("reading logs failed: {0}")]
    Read(bollard::errors::Error),
}

#[derive(Debug, Default)]
struct Inner {
    docker: OnceCell<Docker>,
    streams: Mutex<HashMap<String, broadcast::Sender<LogEvent>>>,
}

/// The shared log streams of this process.
#[derive(Debug, Clone, Default)]
pub struct LogHub {
    inner: Arc<Inner>,
}

impl LogHub {
    async fn docker(&self) -> Result<&Docker, LogError> {
        self.inner
            .docker
            .get_or_try_init(|| async {
                Docker::connect_with_local_defaults()
                    .map_err(LogError::Engine)?
                    .negotiate_version()
                    .await
                    .map_err(LogError::Engine)
            })
            .await
    }

    /// The container's last `tail` lines (all with `None`) since `since` (Unix
    /// seconds), oldest first.
    ///
    /// # Errors
    /// The engine is unreachable or the container is gone.
    pub async fn history(
        &self,
        docker_id: &str,
        tail: Option<usize>,
        since: Option<i64>,
    ) -> Result<Vec<LogLine>, LogError> {
        let docker = self.docker().await?;
        let mut frames = docker.logs(
            docker_id,
            Some(LogsOptions {
                follow: false,
                stdout: true,
                stderr: true,
                timestamps: true,
                since: since.map_or(0, |s| i32::try_from(s.max(0)).unwrap_or(i32::MAX)),
                tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
                ..Default::default()
            }),
        );
        let mut lines = Vec::new();
        while let Some(frame) = frames.next().await {
            let frame = frame.map_err(LogError::Read)?;
            lines.extend(parse_frame(docker_id, &frame));
        }
        Ok(lines)
    }

    /// Follows the container's output from now on, sharing the engine stream with
    /// every other follower of it.
    ///
    /// # Errors
    /// The engine is unreachable.
    pub async fn follow(&self, docker_id: &str) -> Result<broadcast::Receiver<LogEvent>, LogError> {
        let docker = self.docker().await?.clone();
        let mut streams = self
            .inner
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = streams.get(docker_id) {
            return Ok(tx.subscribe());
        }
        let (tx, rx) = broadcast::channel(BUFFER);
        streams.insert(docker_id.to_owned(), tx.clone());
        metrics::gauge!("longin_log_streams_open").set(streams.len() as f64);
        tokio::spawn(pump(self.clone(), docker, docker_id.to_owned(), tx));
        Ok(rx)
    }

    /// Forgets `tx`'s stream if nobody follows it (or `force`); true if forgotten.
    fn close(&self, docker_id: &str, tx: &broadcast::Sender<LogEvent>, force: bool) -> bool {
        let mut streams = self
            .inner
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !force && tx.receiver_count() > 0 {
            return false;
        }
        if streams.get(docker_id).is_some_and(|t| t.same_channel(tx)) {
            streams.remove(docker_id);
        }
        metrics::gauge!("longin_log_streams_open").set(streams.len() as f64);
        true
    }
}

/// Copies the engine's stream into `tx` until the container's output ends or nobody
/// follows any more.
async fn pump(hub: LogHub, docker: Docker, docker_id: String, tx: broadcast::Sender<LogEvent>) {
    let since = i32::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let mut frames = docker.logs(
        &docker_id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            since,
            ..Default::default()
        }),
    );
    let mut idle_check = tokio::time::interval(Duration::from_millis(500));
    tracing::debug!(container = %docker_id, "log stream opened");
    let end = loop {
        tokio::select! {
            frame = frames.next() => match frame {
                Some(Ok(frame)) => {
                    if let Some(line) = parse_frame(&docker_id, &frame) {
                        let _ = tx.send(LogEvent::Line(Arc::new(line)));
                    }
                }
                Some(Err(err)) => break format!("log stream failed: {err}"),
                None => break "the container stopped".to_owned(),
            },
            _ = idle_check.tick() => {
                if hub.close(&docker_id, &tx, false) {
                    tracing::debug!(container = %docker_id, "log stream closed: no followers");
                    return;
                }
            }
        }
    };
    hub.close(&docker_id, &tx, true);
    tracing::debug!(container = %docker_id, reason = %end, "log stream ended");
    let _ = tx.send(LogEvent::End(end));
}
