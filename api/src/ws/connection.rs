//! One WebSocket client: authenticate, then serve its subscriptions until it leaves.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use longin_store::bus::Event;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::outbox::Outbox;
use super::protocol::{self, ClientMessage, Topic};
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::AppError;
use crate::logs::LogEvent;

/// Which stream a connection serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Metrics,
    Logs,
    Admin,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Logs => "logs",
            Self::Admin => "admin",
        }
    }
}

/// How long a client has to authenticate.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines a client may have pending before lines are dropped.
const LOG_QUEUE: usize = 512;
/// History lines a log subscription starts with by default, and at most.
const DEFAULT_TAIL: usize = 100;
const MAX_TAIL: usize = 1_000;

fn text(value: &Value) -> Message {
    Message::Text(value.to_string().into())
}

/// Serves one client until it leaves or the connection fails.
/// How long one write to a client may take: a client that stops reading fills its
/// socket's buffers, and the connection is closed rather than held (with its
/// keepalive, which cannot run while a write waits) for ever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a write finished within [`WRITE_TIMEOUT`].
async fn written(write: impl std::future::Future<Output = Result<(), axum::Error>>) -> bool {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            metrics::counter!("longin_ws_write_timeouts_total").increment(1);
            tracing::debug!("websocket client stopped reading; closing");
            false
        }
    }
}

pub async fn run(socket: WebSocket, ctx: ApiContext, kind: Kind) {
    let (mut sink, mut stream) = socket.split();
    let user = match authenticate(&ctx, &mut stream, kind).await {
        Ok(user) => user,
        Err(reply) => {
            let _ = written(sink.send(text(&reply))).await;
            let _ = written(sink.close()).await;
            return;
        }
    };
    if !written(sink.send(text(&protocol::ready()))).await {
        return;
    }
    metrics::gauge!("longin_ws_connections", "stream" => kind.as_str()).increment(1.0);
    tracing::debug!(user = %user.username, stream = kind.as_str(), "websocket client ready");
    let keepalive = ctx.config.ws_keepalive;
    let mut session = Session::new(ctx, user, kind);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let mut last_heard = tokio::time::Instant::now();
    'serve: loop {
        tokio::select! {
            _ = tick.tick() => {
                // A peer silent for three periods (not even a pong) is gone.
                if last_heard.elapsed() > keepalive * 3 {
                    break 'serve;
                }
                if let Err(reply) = session.still_allowed().await {
                    let _ = written(sink.send(text(&reply))).await;
                    let _ = written(sink.close()).await;
                    break 'serve;
                }
                if !written(sink.send(Message::Ping(Vec::new().into()))).await {
                    break 'serve;
                }
            }
            incoming = stream.next() => {
                if matches!(incoming, Some(Ok(_))) {
                    last_heard = tokio::time::Instant::now();
                }
                match incoming {
                    Some(Ok(Message::Text(t))) => session.handle(&t).await,
                    Some(Ok(Message::Binary(_))) => session.outbox.push_always(protocol::error("bad_request", "send text (JSON) messages")),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break 'serve,
                }
            }
            batch = session.outbox.next_batch() => {
                // Queued, then flushed once: a flush per message cost a write per line.
                // One deadline for the whole batch: a timer per line cost log
                // throughput (observability bench (a): 0.55 with one per line, 0.71
                // with one per batch).
                let write = async {
                    for value in batch {
                        sink.feed(Message::Text(value.into())).await?;
                    }
                    sink.flush().await
                };
                if !written(write).await {
                    break 'serve;
                }
            }
        }
    }
    session.stop();
    metrics::gauge!("longin_ws_connections", "stream" => kind.as_str()).decrement(1.0);
}

/// Waits for the `auth` message; the error message to send otherwise.
async fn authenticate(
    ctx: &ApiContext,
    stream: &mut futures::stream::SplitStream<WebSocket>,
    kind: Kind,
) -> Result<AuthUser, Value> {
    let unauthorized = |message: &str| protocol::error("unauthorized", message);
    let first = tokio::time::timeout(AUTH_TIMEOUT, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) => return Some(t),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return None,
            }
        }
    })
    .await;
    let Ok(Some(first)) = first else {
        return Err(unauthorized(
            "authenticate first: {\"type\":\"auth\",\"token\":\"<access token>\"} within 10 s",
        ));
    };
    let Ok(ClientMessage::Auth { token }) = protocol::parse(&first) else {
        return Err(unauthorized(
            "the first message must be {\"type\":\"auth\",\"token\":\"<access token>\"}",
        ));
    };
    let user = AuthUser::from_token(ctx, &token, None)
        .await
        .map_err(|err| match err {
            AppError::Unauthorized(message) => unauthorized(&message),
            other => {
                tracing::warn!(error = %other, "websocket authentication failed");
                protocol::error("internal", "could not check the token; try again")
            }
        })?;
    if kind == Kind::Admin && !user.is_admin() {
        return Err(protocol::error(
            "forbidden",
            "the admin stream is for admins only",
        ));
    }
    Ok(user)
}

/// A connection's subscriptions and the tasks feeding its outbox.
struct Session {
    ctx: ApiContext,
    user: AuthUser,
    kind: Kind,
    outbox: Arc<Outbox>,
    /// Metrics: the app ids followed (read by the bus task).
    apps: Arc<Mutex<HashSet<String>>>,
    /// Logs: the tasks following each subscription.
    followers: HashMap<String, Vec<JoinHandle<()>>>,
    bus_task: Option<JoinHandle<()>>,
}

impl Session {
    fn new(ctx: ApiContext, user: AuthUser, kind: Kind) -> Self {
        let outbox = Arc::new(Outbox::new(LOG_QUEUE));
        let apps = Arc::new(Mutex::new(HashSet::new()));
        let bus_task = match kind {
            Kind::Metrics => Some(tokio::spawn(follow_bus(
                ctx.bus.subscribe(),
                outbox.clone(),
                Some(apps.clone()),
            ))),
            Kind::Admin => Some(tokio::spawn(follow_bus(
                ctx.bus.subscribe(),
                outbox.clone(),
                None,
            ))),
            Kind::Logs => None,
        };
        Self {
            ctx,
            user,
            kind,
            outbox,
            apps,
            followers: HashMap::new(),
            bus_task,
        }
    }

    fn stop(&mut self) {
        if let Some(task) = self.bus_task.take() {
            task.abort();
        }
        for task in self.followers.drain().flat_map(|(_, tasks)| tasks) {
            task.abort();
        }
    }

    /// Whether the user may still hold this connection: the account still exists and
    /// is enabled, and one that signed in as an admin still is (its subscriptions may
    /// be to other users' apps, on any stream). A store error keeps it (the next check
    /// decides).
    async fn still_allowed(&self) -> Result<(), Value> {
        match self.ctx.store.user_by_id(&self.user.id).await {
            Ok(user) if user.disabled => {
                Err(protocol::error("unauthorized", "account is disabled"))
            }
            Ok(user)
                if (self.kind == Kind::Admin || self.user.is_admin())
                    && user.role != longin_store::users::Role::Admin =>
            {
                Err(protocol::error("forbidden", "the admin role was withdrawn"))
            }
            Ok(_) => Ok(()),
            Err(longin_store::StoreError::NotFound) => Err(protocol::error(
                "unauthorized",
                "the account no longer exists",
            )),
            Err(err) => {
                tracing::warn!(error = %err, "cannot re-check a websocket user");
                Ok(())
            }
        }
    }

    fn reply_error(&self, code: &str, message: &str) {
        self.outbox.push_always(protocol::error(code, message));
    }

    async fn handle(&mut self, text: &str) {
        let message = match protocol::parse(text) {
            Ok(message) => message,
            Err(why) => return self.reply_error("bad_request", &why),
        };
        match message {
            ClientMessage::Ping => self.outbox.push_always(protocol::pong()),
            ClientMessage::Auth { .. } => self.reply_error("bad_request", "already authenticated"),
            ClientMessage::Subscribe { .. } | ClientMessage::Unsubscribe { .. }
                if self.kind == Kind::Admin =>
            {
                self.reply_error(
                    "bad_request",
                    "the admin stream needs no subscription: it carries every application",
                );
            }
            ClientMessage::Subscribe {
                app,
                container_id,
                tail,
            } => match Topic::from_fields(app, container_id) {
                Ok(topic) => self.subscribe(topic, tail).await,
                Err(why) => self.reply_error("bad_request", &why),
            },
            ClientMessage::Unsubscribe { app, container_id } => {
                match Topic::from_fields(app, container_id) {
                    Ok(topic) => self.unsubscribe(&topic).await,
                    Err(why) => self.reply_error("bad_request", &why),
                }
            }
        }
    }

    async fn subscribe(&mut self, topic: Topic, tail: Option<usize>) {
        let tail = tail.unwrap_or(DEFAULT_TAIL);
        if tail > MAX_TAIL {
            return self.reply_error("bad_request", &format!("tail: at most {MAX_TAIL}"));
        }
        let result = match (&topic, self.kind) {
            (Topic::Container(_), Kind::Metrics) => Err(AppError::BadRequest {
                code: "bad_request",
                message: "metrics are per application: subscribe with `app`".to_owned(),
            }),
            (Topic::App(name), Kind::Metrics) => self.subscribe_metrics(name).await,
            (_, _) => self.subscribe_logs(&topic, tail).await,
        };
        match result {
            Ok(()) => {}
            Err(err) => {
                let (code, message) = describe(&err);
                self.reply_error(code, &message);
            }
        }
    }

    async fn unsubscribe(&mut self, topic: &Topic) {
        let key = match (topic, self.kind) {
            (Topic::App(name), Kind::Metrics) => match self.app(name).await {
                Ok(app) => {
                    self.apps
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&app.id);
                    // Nothing of it after the `unsubscribed` reply.
                    self.outbox.forget(&format!("metrics:{}", app.id));
                    self.outbox.forget(&format!("status:{}", app.id));
                    None
                }
                Err(err) => {
                    let (code, message) = describe(&err);
                    return self.reply_error(code, &message);
                }
            },
            (Topic::App(name), _) => Some(format!("app:{name}")),
            (Topic::Container(id), _) => Some(format!("container:{id}")),
        };
        if let Some(key) = key {
            for task in self.followers.remove(&key).into_iter().flatten() {
                task.abort();
            }
        }
        self.outbox.push_always(protocol::unsubscribed(topic));
    }

    /// The caller's application `name`, or `owner/name` for admins.
    async fn app(
        &self,
        name: &str,
    ) -> Result<longin_store::applications::ApplicationRecord, AppError> {
        let (owner, name) = match name.split_once('/') {
            Some((owner, name)) => (Some(owner), name),
            None => (None, name),
        };
        crate::applications::find(&self.ctx, &self.user, owner, name, None).await
    }

    async fn subscribe_metrics(&mut self, name: &str) -> Result<(), AppError> {
        let app = self.app(name).await?;
        self.apps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(app.id.clone());
        self.outbox
            .push_always(protocol::subscribed(&Topic::App(name.to_owned())));
        // Where it stands now, read after subscribing: a change published meanwhile is
        // either in this read or pending in the outbox already (and then kept).
        let status = match self.ctx.store.application_by_id(&app.id).await? {
            Some(fresh) => fresh.status,
            None => app.status,
        };
        self.outbox.put_if_absent(
            format!("status:{}", app.id),
            status_message(&app.id, &app.name, &status),
        );
        Ok(())
    }

    async fn subscribe_logs(&mut self, topic: &Topic, tail: usize) -> Result<(), AppError> {
        let permit = self
            .ctx
            .logs
            .admit(&self.user.id)
            .ok_or(AppError::TooManyRequests {
                retry_after_secs: 1,
            })?;
        let mut app_id = None;
        let (key, docker_ids) = match topic {
            Topic::Container(id) => {
                let c =
                    crate::containers::visible_container(&self.ctx, &self.user, id, None).await?;
                let docker_id = c.container.docker_id.ok_or_else(|| {
                    AppError::NotFound(format!("container {id} has not been created yet"))
                })?;
                (format!("container:{id}"), vec![docker_id])
            }
            Topic::App(name) => {
                let app = self.app(name).await?;
                app_id = Some(app.id.clone());
                let ids = self
                    .ctx
                    .store
                    .application_containers(&app.id)
                    .await?
                    .into_iter()
                    .filter_map(|c| c.docker_id)
                    .collect();
                (format!("app:{name}"), ids)
            }
        };
        // Followed before history is read, so nothing falls between the two.
        let subscribed_at = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MIN);
        let mut followers = Vec::new();
        for docker_id in &docker_ids {
            let rx = self
                .ctx
                .logs
                .follow(docker_id)
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            followers.push((docker_id.clone(), rx));
        }
        self.outbox.push_always(protocol::subscribed(topic));
        // Held by the subscription's tasks: the place goes back when they end.
        let permit = Arc::new(permit);
        let tasks: Vec<JoinHandle<()>> = match app_id {
            // The app's supervisor runs these followers and those of containers to come.
            Some(app_id) => {
                let follow = follow_app(
                    self.ctx.clone(),
                    app_id,
                    followers,
                    subscribed_at,
                    tail,
                    self.outbox.clone(),
                );
                vec![tokio::spawn(async move {
                    let _permit = permit;
                    follow.await;
                })]
            }
            None => followers
                .into_iter()
                .map(|(docker_id, rx)| {
                    let follow = follow_logs(
                        self.ctx.logs.clone(),
                        docker_id,
                        rx,
                        subscribed_at,
                        tail,
                        None,
                        self.outbox.clone(),
                    );
                    let permit = permit.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        follow.await;
                    })
                })
                .collect(),
        };
        if let Some(old) = self.followers.insert(key, tasks) {
            old.into_iter().for_each(|t| t.abort());
        }
        Ok(())
    }
}

/// The code and message an error becomes on the socket.
fn describe(err: &AppError) -> (&'static str, String) {
    match err {
        AppError::NotFound(m) => ("not_found", m.clone()),
        AppError::Forbidden(m) => ("forbidden", m.clone()),
        AppError::Unavailable(m) => ("unavailable", m.clone()),
        AppError::BadRequest { message, .. } => ("bad_request", message.clone()),
        other => {
            tracing::warn!(error = %other, "websocket subscription failed");
            ("internal", "the subscription failed; try again".to_owned())
        }
    }
}

fn status_message(
    app_id: &str,
    name: &str,
    status: &longin_crds::application::ApplicationStatus,
) -> Value {
    let mut message = json!({"type": "status", "appId": app_id, "app": name});
    if let (Some(m), Ok(Value::Object(s))) = (message.as_object_mut(), serde_json::to_value(status))
    {
        m.extend(s);
    }
    message
}

/// Copies bus events into the outbox: those of `apps` (every app when `None`, and then
/// reconcile errors too). Only the newest value per app waits for a slow client.
async fn follow_bus(
    mut events: broadcast::Receiver<Arc<Event>>,
    outbox: Arc<Outbox>,
    apps: Option<Arc<Mutex<HashSet<String>>>>,
) {
    let wanted = |app_id: &str| {
        apps.as_ref().is_none_or(|a| {
            a.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(app_id)
        })
    };
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            // Newer values follow; what was skipped is superseded.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match event.as_ref() {
            Event::Metrics {
                app,
                containers,
                aggregated,
                timestamp,
            } if apps.is_some() && wanted(&app.app_id) => outbox.put_latest(
                format!("metrics:{}", app.app_id),
                json!({
                    "type": "metrics",
                    "appId": app.app_id,
                    "app": app.name,
                    "containerMetrics": containers,
                    "aggregated": aggregated,
                    "timestamp": timestamp,
                }),
            ),
            Event::Status { app, status } if wanted(&app.app_id) => outbox.put_latest(
                format!("status:{}", app.app_id),
                status_message(&app.app_id, &app.name, status),
            ),
            Event::ReconcileError {
                app_id,
                message,
                timestamp,
            } if apps.is_none() => outbox.push(json!({
                "type": "reconcileError",
                "appId": app_id,
                "message": message,
                "timestamp": timestamp,
            })),
            _ => {}
        }
    }
}

/// How often an application's log subscription looks for new containers.
const NEW_CONTAINERS_EVERY: Duration = Duration::from_secs(2);

/// Follows an application's logs: its containers at subscription (`initial`, already
/// subscribed at `subscribed_at`, from their last `tail` lines), then containers it
/// gains (replacements, rollouts, scale-ups) from their first lines, and containers
/// restarted in place (same id, more restarts) from where their previous follower
/// stopped — as `heroku logs --tail` does. Stops when the application is gone. Its
/// followers live in its own set: aborting it stops them too.
async fn follow_app(
    ctx: ApiContext,
    app_id: String,
    initial: Vec<(String, broadcast::Receiver<LogEvent>)>,
    subscribed_at: i64,
    tail: usize,
    outbox: Arc<Outbox>,
) {
    let mut followers = tokio::task::JoinSet::new();
    // Followed now: no need to look at them until they end.
    let mut following: HashSet<String> = HashSet::new();
    // Where each ended follower stopped (last line's time), and the container's restart
    // count then: more restarts later mean it runs again.
    let mut stopped: HashMap<String, (i64, i64)> = HashMap::new();
    let mut restarts: HashMap<String, i64> = HashMap::new();
    for (docker_id, rx) in initial {
        following.insert(docker_id.clone());
        followers.spawn(follow_logs(
            ctx.logs.clone(),
            docker_id,
            rx,
            subscribed_at,
            tail,
            None,
            outbox.clone(),
        ));
    }
    let mut tick = tokio::time::interval(NEW_CONTAINERS_EVERY);
    loop {
        tick.tick().await;
        while let Some(done) = followers.try_join_next() {
            if let Ok((docker_id, last_seen)) = done {
                following.remove(&docker_id);
                let count = restarts.get(&docker_id).copied().unwrap_or(0);
                stopped.insert(docker_id, (last_seen, count));
            }
        }
        let containers = match ctx.store.application_containers(&app_id).await {
            Ok(containers) => containers,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list an application's containers for its log followers");
                continue;
            }
        };
        // A deleted app has no container rows left; only then is it worth asking
        // whether the app itself is gone.
        if containers.is_empty() {
            match ctx.store.application_by_id(&app_id).await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read an application for its log followers");
                    continue;
                }
            }
        }
        let listed: HashSet<String> = containers
            .iter()
            .filter_map(|c| c.docker_id.clone())
            .collect();
        stopped.retain(|id, _| listed.contains(id));
        for c in containers {
            let Some(docker_id) = c.docker_id else {
                continue;
            };
            restarts.insert(docker_id.clone(), c.restart_count);
            if following.contains(&docker_id) {
                continue;
            }
            let (from_ns, tail, since) = match stopped.get(&docker_id) {
                // New: its first lines.
                None => (i64::MIN, DEFAULT_TAIL, None),
                // Running again after it stopped (its restart count moved: it also
                // drops when the crash-loop window starts over): from where its
                // follower stopped, or from its start if it had printed nothing.
                Some(&(last_seen, count)) if c.restart_count != count && c.status == "running" => (
                    last_seen,
                    MAX_TAIL,
                    (last_seen > i64::MIN).then(|| last_seen.div_euclid(1_000_000_000)),
                ),
                Some(_) => continue,
            };
            match ctx.logs.follow(&docker_id).await {
                Ok(rx) => {
                    following.insert(docker_id.clone());
                    stopped.remove(&docker_id);
                    followers.spawn(follow_logs(
                        ctx.logs.clone(),
                        docker_id,
                        rx,
                        from_ns,
                        tail,
                        since,
                        outbox.clone(),
                    ));
                }
                Err(err) => {
                    outbox.push_always(protocol::end(&docker_id, &err.to_string()));
                    // Said once: tried again only once it restarts.
                    stopped.insert(docker_id, (from_ns, c.restart_count));
                }
            }
        }
    }
}

/// Sends a container's last `tail` lines (since `since`, Unix seconds), then its new
/// lines, until its output ends.
async fn follow_logs(
    hub: crate::logs::LogHub,
    docker_id: String,
    mut rx: broadcast::Receiver<LogEvent>,
    subscribed_at: i64,
    tail: usize,
    since: Option<i64>,
    outbox: Arc<Outbox>,
) -> (String, i64) {
    // Without history, only lines from the subscription on (the shared stream starts
    // at a whole second, so it can carry a few older ones).
    let mut last_seen = subscribed_at;
    if tail > 0 {
        let mut history = match hub.history(&docker_id, Some(tail), since).await {
            Ok(history) => history,
            Err(err) => {
                outbox.push_always(protocol::end(&docker_id, &err.to_string()));
                return (docker_id, last_seen);
            }
        };
        while let Some(line) = history.recv().await {
            match line {
                // From a point in time (a restart): only lines after the last one
                // sent, as `since` has one-second resolution.
                Ok(line) if since.is_some() && line.at_ns <= subscribed_at => {}
                Ok(line) => {
                    last_seen = line.at_ns;
                    // All of it (the client asked for it), but no faster than the
                    // client reads: history waits for room instead of piling up.
                    outbox.push_when_room(line.to_ws_message()).await;
                }
                Err(err) => {
                    outbox.push_always(protocol::end(&docker_id, &err.to_string()));
                    return (docker_id, last_seen);
                }
            }
        }
    }
    loop {
        match rx.recv().await {
            Ok(LogEvent::Line(line)) if line.at_ns > last_seen => {
                last_seen = line.at_ns;
                outbox.push(line.to_ws_message());
            }
            Ok(LogEvent::Line(_)) => {}
            Ok(LogEvent::End(reason)) => {
                outbox.push_always(protocol::end(&docker_id, &reason));
                return (docker_id, last_seen);
            }
            Err(broadcast::error::RecvError::Lagged(n)) => outbox.add_dropped(n),
            Err(broadcast::error::RecvError::Closed) => return (docker_id, last_seen),
        }
    }
}
