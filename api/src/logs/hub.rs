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
use tokio::sync::{OnceCell, broadcast, mpsc};

use super::line::{LogLine, parse_frame};
use crate::slots::PerUserSlots;

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

#[derive(Debug)]
struct Inner {
    docker: OnceCell<Docker>,
    /// Log ids are Swarm task ids, read through the manager.
    tasks: bool,
    streams: Mutex<HashMap<String, broadcast::Sender<LogEvent>>>,
    /// Swarm node ids by hostname, as the lines of a task are tagged (a node's
    /// hostname does not change while it is in the swarm).
    hostnames: Mutex<HashMap<String, Arc<str>>>,
    /// Log reads and follows open per user (see [`LogHub::admit`]).
    open_per_user: PerUserSlots,
}

/// Log reads and follows one user may have open at once in one process by default
/// (REST reads, REST follows and WebSocket log subscriptions together): each holds an
/// engine stream and buffers, so one user must not be able to open thousands.
pub const DEFAULT_STREAMS_PER_USER: usize = 64;

/// History lines read ahead of a slow client: the engine stream waits beyond this, so
/// a read costs a bounded amount of memory however many lines it asks for.
const HISTORY_AHEAD: usize = 32;

/// One of a user's open log streams; dropping it gives the place back.
pub type StreamPermit = crate::slots::Slot;

/// The shared log streams of this process.
#[derive(Debug, Clone)]
pub struct LogHub {
    inner: Arc<Inner>,
}

impl Default for LogHub {
    fn default() -> Self {
        Self::new(DEFAULT_STREAMS_PER_USER)
    }
}

impl LogHub {
    /// A hub that lets each user have `per_user` log streams open at once.
    #[must_use]
    pub fn new(per_user: usize) -> Self {
        Self::with(per_user, false)
    }

    fn with(per_user: usize, tasks: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                docker: OnceCell::new(),
                tasks,
                streams: Mutex::default(),
                hostnames: Mutex::default(),
                open_per_user: PerUserSlots::new(per_user, "longin_log_streams_refused_total"),
            }),
        }
    }

    /// A hub whose log ids are Swarm tasks (`--engine swarm`): each is read through the
    /// manager, wherever the task runs.
    #[must_use]
    pub fn of_swarm_tasks(per_user: usize) -> Self {
        Self::with(per_user, true)
    }

    /// The engine's log stream of container (or, on Swarm, task) `id`.
    fn engine_logs(
        &self,
        docker: &Docker,
        id: &str,
        options: LogsOptions,
    ) -> futures::stream::BoxStream<
        'static,
        Result<bollard::container::LogOutput, bollard::errors::Error>,
    > {
        if self.inner.tasks {
            docker.task_logs(id, Some(options)).boxed()
        } else {
            docker.logs(id, Some(options)).boxed()
        }
    }

    /// The hostname of the node Swarm task `id` runs on, to tag its lines with; `None`
    /// on one engine, or when the manager cannot say (the lines come untagged).
    async fn node_of(&self, docker: &Docker, id: &str) -> Option<Arc<str>> {
        if !self.inner.tasks {
            return None;
        }
        let node_id = docker.inspect_task(id).await.ok()?.node_id?;
        let known = self
            .inner
            .hostnames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&node_id)
            .cloned();
        if known.is_some() {
            return known;
        }
        let hostname: Arc<str> = docker
            .inspect_node(&node_id)
            .await
            .ok()?
            .description?
            .hostname?
            .into();
        self.inner
            .hostnames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node_id, hostname.clone());
        Some(hostname)
    }

    async fn docker(&self) -> Result<&Docker, LogError> {
        self.inner
            .docker
            .get_or_try_init(|| async {
                Docker::connect_with_defaults()
                    .map_err(LogError::Engine)?
                    .negotiate_version()
                    .await
                    .map_err(LogError::Engine)
            })
            .await
    }

    /// A place for one more log stream of `user_id`, or `None` when the user has as
    /// many open as the hub allows.
    #[must_use]
    pub fn admit(&self, user_id: &str) -> Option<StreamPermit> {
        self.inner.open_per_user.admit(user_id)
    }

    /// The container's last `tail` lines (all with `None`) since `since` (Unix
    /// seconds), oldest first, as they come from the engine: read ahead by at most a
    /// few lines, so a slow reader holds the engine stream back instead of the whole
    /// history piling up in memory. A read error ends the lines with it; dropping the
    /// receiver stops the read.
    ///
    /// # Errors
    /// The engine is unreachable.
    pub async fn history(
        &self,
        docker_id: &str,
        tail: Option<usize>,
        since: Option<i64>,
    ) -> Result<mpsc::Receiver<Result<LogLine, LogError>>, LogError> {
        let docker = self.docker().await?.clone();
        let docker_id = docker_id.to_owned();
        let node = self.node_of(&docker, &docker_id).await;
        let (tx, rx) = mpsc::channel(HISTORY_AHEAD);
        let mut frames = self.engine_logs(
            &docker,
            &docker_id,
            LogsOptions {
                follow: false,
                stdout: true,
                stderr: true,
                timestamps: true,
                since: since.map_or(0, |s| i32::try_from(s.max(0)).unwrap_or(i32::MAX)),
                tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
                ..Default::default()
            },
        );
        tokio::spawn(async move {
            while let Some(frame) = frames.next().await {
                let item = match frame {
                    Ok(frame) => match parse_frame(&docker_id, node.as_ref(), &frame) {
                        Some(line) => Ok(line),
                        None => continue,
                    },
                    Err(err) => Err(LogError::Read(err)),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(rx)
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
    let node = hub.node_of(&docker, &docker_id).await;
    let mut frames = hub.engine_logs(
        &docker,
        &docker_id,
        LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            since,
            ..Default::default()
        },
    );
    let mut idle_check = tokio::time::interval(Duration::from_millis(500));
    tracing::debug!(container = %docker_id, "log stream opened");
    let end = loop {
        tokio::select! {
            frame = frames.next() => match frame {
                Some(Ok(frame)) => {
                    if let Some(line) = parse_frame(&docker_id, node.as_ref(), &frame) {
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
