//! Following logs: one container's history then its live lines, without gaps or
//! repeats; and an application's containers across restarts and rollouts — its
//! containers at subscription from their last lines, containers it gains from their
//! first, containers restarted in place from where their follower stopped — until the
//! application is gone. The one implementation behind `/ws/logs` and the HTTP log
//! routes: what differs between them is the [`LogSink`].

use std::time::Duration;

use longin_store::Store;
use longin_store::containers::ContainerRecord;
use tokio::sync::{broadcast, mpsc};

use super::attach::{Attach, Listed, Start, Tracker};
use super::hub::{LogError, LogEvent, LogHub};
use super::line::LogLine;
use super::sink::{Gone, LogSink, Output};

/// How often an application's follower looks for new and restarted containers.
const NEW_CONTAINERS_EVERY: Duration = Duration::from_secs(2);

/// Now, in Unix nanoseconds.
#[must_use]
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MIN)
}

/// A container's history as it is read from the engine, with the first line
/// readable before the rest (a route decides its status on it).
#[derive(Debug)]
pub struct History {
    peeked: Option<Option<Result<LogLine, LogError>>>,
    rest: mpsc::Receiver<Result<LogLine, LogError>>,
    since_ns: Option<i64>,
}

impl History {
    /// Opens the container's last `tail` lines at or after `since_ns`.
    ///
    /// # Errors
    /// The engine is unreachable.
    pub async fn open(
        hub: &LogHub,
        docker_id: &str,
        tail: usize,
        since_ns: Option<i64>,
    ) -> Result<Self, LogError> {
        // The engine counts `since` in whole seconds; the rest is filtered here.
        let since_s = since_ns.map(|ns| ns.div_euclid(1_000_000_000));
        let rest = hub.history(docker_id, Some(tail), since_s).await?;
        Ok(Self::from_channel(rest, since_ns))
    }

    /// History read from `rest` (the engine's reader, or a test's lines).
    #[must_use]
    pub fn from_channel(
        rest: mpsc::Receiver<Result<LogLine, LogError>>,
        since_ns: Option<i64>,
    ) -> Self {
        Self {
            peeked: None,
            rest,
            since_ns,
        }
    }

    async fn read(&mut self) -> Option<Result<LogLine, LogError>> {
        loop {
            match self.rest.recv().await {
                Some(Ok(line)) if self.since_ns.is_some_and(|s| line.at_ns < s) => {}
                other => return other,
            }
        }
    }

    /// The next line (or read error), left to be read again by [`next`](Self::next).
    pub async fn peek(&mut self) -> Option<&Result<LogLine, LogError>> {
        if self.peeked.is_none() {
            self.peeked = Some(self.read().await);
        }
        self.peeked.as_ref().and_then(Option::as_ref)
    }

    /// The next line, oldest first; `None` at the end. A read error ends the history.
    pub async fn next(&mut self) -> Option<Result<LogLine, LogError>> {
        match self.peeked.take() {
            Some(item) => item,
            None => self.read().await,
        }
    }
}

/// One container's lines to follow: history (if any) from `start`, then the live
/// stream (if any) subscribed before the history was read.
#[derive(Debug)]
pub struct ContainerLogs {
    pub docker_id: String,
    /// The replica it runs, written with each line of an application's logs.
    pub replica: Option<i64>,
    pub start: Start,
    pub history: Option<History>,
    pub live: Option<broadcast::Receiver<LogEvent>>,
}

/// How a container's follower ended.
#[derive(Debug)]
pub struct Stopped {
    pub docker_id: String,
    /// The time of the last line it sent (or where it started).
    pub last_seen_ns: i64,
    pub client_gone: bool,
}

/// Sends `c`'s history, then its live lines newer than the history's last one,
/// until its output ends or the client goes.
pub async fn follow_container<S: LogSink>(hub: LogHub, mut c: ContainerLogs, sink: S) -> Stopped {
    let mut last_seen = c.start.live_after_ns;
    let result = follow_inner(&hub, &mut c, &sink, &mut last_seen).await;
    Stopped {
        docker_id: c.docker_id,
        last_seen_ns: last_seen,
        client_gone: result.is_err(),
    }
}

async fn follow_inner<S: LogSink>(
    hub: &LogHub,
    c: &mut ContainerLogs,
    sink: &S,
    last_seen: &mut i64,
) -> Result<(), Gone> {
    let ContainerLogs {
        docker_id,
        replica,
        start,
        history,
        live,
    } = c;
    let replica = *replica;
    if history.is_none() && start.tail > 0 {
        match History::open(hub, docker_id, start.tail, start.since_ns).await {
            Ok(opened) => *history = Some(opened),
            Err(err) => return sink.send(end(docker_id, replica, &err.to_string())).await,
        }
    }
    if let Some(history) = history.as_mut() {
        while let Some(line) = history.next().await {
            match line {
                Ok(line) => {
                    *last_seen = line.at_ns;
                    sink.send(Output::History {
                        line: &line,
                        replica,
                    })
                    .await?;
                }
                Err(err) => return sink.send(end(docker_id, replica, &err.to_string())).await,
            }
        }
    }
    let Some(live) = live.as_mut() else {
        return Ok(());
    };
    loop {
        let received = tokio::select! {
            () = sink.closed() => return Err(Gone),
            received = live.recv() => received,
        };
        match received {
            Ok(LogEvent::Line(line)) if line.at_ns > *last_seen => {
                *last_seen = line.at_ns;
                sink.send(Output::Live {
                    line: &line,
                    replica,
                })
                .await?;
            }
            Ok(LogEvent::Line(_)) => {}
            Ok(LogEvent::End(reason)) => return sink.send(end(docker_id, replica, &reason)).await,
            Err(broadcast::error::RecvError::Lagged(n)) => sink.send(Output::Lagged(n)).await?,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

fn end<'a>(container_id: &'a str, replica: Option<i64>, reason: &'a str) -> Output<'a> {
    Output::End {
        container_id,
        replica,
        reason,
    }
}

/// The follower of one application's logs, subscribed to its containers at the start.
#[derive(Debug)]
pub struct AppFollower {
    hub: LogHub,
    store: Store,
    app_id: String,
    tracker: Tracker,
    initial: Vec<ContainerLogs>,
}

impl AppFollower {
    /// Subscribes to the live streams of `containers` (the application's, as just
    /// listed) of replica `replica` (all with `None`) before anything is read, so
    /// nothing falls between their history (the last `tail` lines at or after
    /// `since_ns`) and what follows.
    ///
    /// # Errors
    /// The engine is unreachable.
    pub async fn start(
        hub: LogHub,
        store: Store,
        app_id: String,
        containers: &[ContainerRecord],
        replica: Option<i64>,
        tail: usize,
        since_ns: Option<i64>,
    ) -> Result<Self, LogError> {
        let mut tracker = Tracker::new(replica);
        let listing: Vec<Listed> = containers.iter().filter_map(Listed::from_record).collect();
        // Remembers the restart counts; what it would attach is attached right here.
        tracker.plan(&listing);
        let now = now_ns();
        let mut initial = Vec::new();
        for c in listing
            .iter()
            .filter(|c| replica.is_none_or(|r| r == c.replica))
        {
            let live = hub.follow(&c.docker_id).await?;
            tracker.attached(&c.docker_id);
            initial.push(ContainerLogs {
                docker_id: c.docker_id.clone(),
                replica: Some(c.replica),
                start: Start::at_subscription(tail, since_ns, now),
                history: None,
                live: Some(live),
            });
        }
        Ok(Self {
            hub,
            store,
            app_id,
            tracker,
            initial,
        })
    }

    /// Follows until the application is gone or the client goes. Its container
    /// followers run in its own task set: dropping (aborting) it stops them too.
    pub async fn run<S: LogSink>(mut self, sink: S) {
        let mut followers = tokio::task::JoinSet::new();
        for c in std::mem::take(&mut self.initial) {
            followers.spawn(follow_container(self.hub.clone(), c, sink.clone()));
        }
        let mut tick = tokio::time::interval(NEW_CONTAINERS_EVERY);
        loop {
            tokio::select! {
                () = sink.closed() => return,
                _ = tick.tick() => {}
            }
            while let Some(done) = followers.try_join_next() {
                match done {
                    Ok(stopped) if stopped.client_gone => return,
                    Ok(stopped) => self.tracker.ended(&stopped.docker_id, stopped.last_seen_ns),
                    Err(err) => tracing::warn!(error = %err, "a container log follower failed"),
                }
            }
            let Some(listing) = self.listing().await else {
                continue;
            };
            let Some(listing) = listing else {
                let _ = sink.send(Output::AppGone).await;
                return;
            };
            for attach in self.tracker.plan(&listing) {
                match self.hub.follow(&attach.docker_id).await {
                    Ok(live) => {
                        self.tracker.attached(&attach.docker_id);
                        followers.spawn(follow_container(
                            self.hub.clone(),
                            attached(attach, live),
                            sink.clone(),
                        ));
                    }
                    Err(err) => {
                        self.tracker.refused(&attach);
                        let reason = err.to_string();
                        let end = Output::End {
                            container_id: &attach.docker_id,
                            replica: Some(attach.replica),
                            reason: &reason,
                        };
                        if sink.send(end).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The application's containers now: `Some(None)` once it is gone, `None` when
    /// the store cannot say (asked again at the next tick).
    async fn listing(&self) -> Option<Option<Vec<Listed>>> {
        let containers = match self.store.application_containers(&self.app_id).await {
            Ok(containers) => containers,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list an application's containers for its log follower");
                return None;
            }
        };
        // A deleted app has no container rows left; only then is it worth asking
        // whether the app itself is gone.
        if containers.is_empty() {
            match self.store.application_by_id(&self.app_id).await {
                Ok(Some(_)) => {}
                Ok(None) => return Some(None),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read an application for its log follower");
                    return None;
                }
            }
        }
        Some(Some(
            containers.iter().filter_map(Listed::from_record).collect(),
        ))
    }
}

fn attached(attach: Attach, live: broadcast::Receiver<LogEvent>) -> ContainerLogs {
    ContainerLogs {
        docker_id: attach.docker_id,
        replica: Some(attach.replica),
        start: attach.start,
        history: None,
        live: Some(live),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::logs::Stream;
    use crate::logs::sink::testing::Recorder;

    fn line(text: &str, at_ns: i64) -> LogLine {
        LogLine {
            container_id: "c1".to_owned(),
            node: None,
            stream: Stream::Stdout,
            line: text.to_owned(),
            timestamp: String::new(),
            at_ns,
        }
    }

    /// A container with history `h`, and a live stream that already carries `live`.
    fn container(h: &[(&str, i64)], live: Vec<LogEvent>, start: Start) -> ContainerLogs {
        let (htx, hrx) = mpsc::channel(16);
        for (text, at) in h {
            htx.try_send(Ok(line(text, *at))).unwrap();
        }
        let (ltx, lrx) = broadcast::channel(16);
        for event in live {
            ltx.send(event).unwrap();
        }
        ContainerLogs {
            docker_id: "c1".to_owned(),
            replica: Some(0),
            start,
            history: Some(History::from_channel(hrx, start.since_ns)),
            live: Some(lrx),
        }
    }

    fn live(text: &str, at_ns: i64) -> LogEvent {
        LogEvent::Line(Arc::new(line(text, at_ns)))
    }

    #[tokio::test]
    async fn history_then_only_newer_live_lines_then_the_end() {
        let sink = Recorder::default();
        let c = container(
            &[("a", 1), ("b", 2)],
            vec![
                live("a", 1),
                live("b", 2),
                live("c", 3),
                LogEvent::End("stopped".into()),
            ],
            Start::at_subscription(10, None, 5),
        );
        let stopped = follow_container(LogHub::default(), c, sink.clone()).await;
        assert_eq!(sink.seen(), ["0:a", "0:b", "0:c", "end c1"]);
        assert_eq!((stopped.last_seen_ns, stopped.client_gone), (3, false));
    }

    #[tokio::test]
    async fn without_history_only_lines_after_the_subscription() {
        let sink = Recorder::default();
        let c = container(
            &[],
            vec![
                live("old", 4),
                live("new", 6),
                LogEvent::End("stopped".into()),
            ],
            Start::at_subscription(0, None, 5),
        );
        follow_container(LogHub::default(), c, sink.clone()).await;
        assert_eq!(sink.seen(), ["0:new", "end c1"]);
    }

    #[tokio::test]
    async fn a_restarted_container_goes_on_after_the_last_line_sent() {
        let sink = Recorder::default();
        // The engine's `since` is whole seconds: it hands back lines already sent.
        let c = container(
            &[("sent", 7), ("after", 8)],
            vec![
                live("after", 8),
                live("later", 9),
                LogEvent::End("stopped".into()),
            ],
            Start::after(7),
        );
        follow_container(LogHub::default(), c, sink.clone()).await;
        assert_eq!(sink.seen(), ["0:after", "0:later", "end c1"]);
    }
}
