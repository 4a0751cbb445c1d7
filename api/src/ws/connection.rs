//! One WebSocket client: authenticate, then serve its subscriptions until it leaves.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use longin_store::bus::Event;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::outbox::{IntoText, Outbox};
use super::protocol::{self, ClientMessage, ServerMessage, Topic};
use crate::auth::{AuthUser, Credential};
use crate::context::ApiContext;
use crate::error::AppError;
use crate::logs::attach::Start;
use crate::logs::{AppFollower, ContainerLogs, follow, follow_container};

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

fn text(message: ServerMessage<'_>) -> Message {
    Message::Text(message.into_text().into())
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
            let _ = written(sink.send(text(reply))).await;
            let _ = written(sink.close()).await;
            return;
        }
    };
    if !written(sink.send(text(ServerMessage::Ready))).await {
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
                    let _ = written(sink.send(text(reply))).await;
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
                    Some(Ok(Message::Binary(_))) => session.outbox.push_always(ServerMessage::error("bad_request", "send text (JSON) messages")),
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
) -> Result<AuthUser, ServerMessage<'static>> {
    let unauthorized = |message: String| ServerMessage::error("unauthorized", message);
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
        return Err(ServerMessage::error(
            "unauthorized",
            "authenticate first: {\"type\":\"auth\",\"token\":\"<access token>\"} within 10 s",
        ));
    };
    let Ok(ClientMessage::Auth { token }) = protocol::parse(&first) else {
        return Err(ServerMessage::error(
            "unauthorized",
            "the first message must be {\"type\":\"auth\",\"token\":\"<access token>\"}",
        ));
    };
    let user = AuthUser::from_token(ctx, &token, None)
        .await
        .map_err(|err| match err {
            AppError::Unauthorized(message) => unauthorized(message),
            other => {
                tracing::warn!(error = %other, "websocket authentication failed");
                ServerMessage::error("internal", "could not check the token; try again")
            }
        })?;
    if kind == Kind::Admin && !user.is_admin() {
        return Err(ServerMessage::error(
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
    /// Logs: the task following each subscription (an app's runs its containers').
    followers: HashMap<String, JoinHandle<()>>,
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
        for (_, task) in self.followers.drain() {
            task.abort();
        }
    }

    /// Whether the user may still hold this connection: the account still exists and
    /// is enabled, and one that signed in as an admin still is (its subscriptions may
    /// be to other users' apps, on any stream); an API token it was opened with is
    /// neither revoked nor expired. A store error keeps it (the next check decides).
    async fn still_allowed(&self) -> Result<(), ServerMessage<'static>> {
        self.api_token_still_valid().await?;
        match self.ctx.store.user_by_id(&self.user.id).await {
            Ok(user) if user.disabled => {
                Err(ServerMessage::error("unauthorized", "account is disabled"))
            }
            Ok(user)
                if (self.kind == Kind::Admin || self.user.is_admin())
                    && user.role != longin_store::users::Role::Admin =>
            {
                Err(ServerMessage::error(
                    "forbidden",
                    "the admin role was withdrawn",
                ))
            }
            Ok(_) => Ok(()),
            Err(longin_store::StoreError::NotFound) => Err(ServerMessage::error(
                "unauthorized",
                "the account no longer exists",
            )),
            Err(err) => {
                tracing::warn!(error = %err, "cannot re-check a websocket user");
                Ok(())
            }
        }
    }

    /// A connection opened with an API token ends once the token is revoked or
    /// expires, as a request with it would then be refused.
    async fn api_token_still_valid(&self) -> Result<(), ServerMessage<'static>> {
        let Credential::ApiToken { id } = &self.user.credential else {
            return Ok(());
        };
        match self.ctx.store.api_token(id).await {
            Ok(Some(token)) if token.is_expired(longin_store::now_ms()) => Err(
                ServerMessage::error("unauthorized", "API token has expired"),
            ),
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ServerMessage::error(
                "unauthorized",
                "the API token was revoked",
            )),
            Err(err) => {
                tracing::warn!(error = %err, "cannot re-check a websocket's API token");
                Ok(())
            }
        }
    }

    fn reply_error(&self, code: &str, message: &str) {
        self.outbox.push_always(ServerMessage::error(code, message));
    }

    async fn handle(&mut self, text: &str) {
        let message = match protocol::parse(text) {
            Ok(message) => message,
            Err(why) => return self.reply_error("bad_request", &why),
        };
        match message {
            ClientMessage::Ping => self.outbox.push_always(ServerMessage::Pong),
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
                app: Some(app),
                container_id: None,
                revision: Some(revision),
                ..
            } if self.kind == Kind::Logs => self.subscribe_build(app, revision).await,
            ClientMessage::Subscribe {
                revision: Some(_), ..
            } => self.reply_error(
                "bad_request",
                "`revision` goes with `app` alone, on /ws/logs (a build log)",
            ),
            ClientMessage::Subscribe {
                app,
                container_id,
                tail,
                revision: None,
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
        if let Some(task) = key.and_then(|key| self.followers.remove(&key)) {
            task.abort();
        }
        self.outbox.push_always(ServerMessage::Unsubscribed(topic));
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
        crate::access::find(&self.ctx, &self.user, owner, name, None).await
    }

    async fn subscribe_metrics(&mut self, name: &str) -> Result<(), AppError> {
        let app = self.app(name).await?;
        self.apps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(app.id.clone());
        self.outbox
            .push_always(ServerMessage::Subscribed(&Topic::App(name.to_owned())));
        // Where it stands now, read after subscribing: a change published meanwhile is
        // either in this read or pending in the outbox already (and then kept).
        let status = match self.ctx.store.application_by_id(&app.id).await? {
            Some(fresh) => fresh.status,
            None => app.status,
        };
        self.outbox.put_if_absent(
            format!("status:{}", app.id),
            ServerMessage::Status {
                app_id: &app.id,
                app: &app.name,
                status: &status,
            },
        );
        Ok(())
    }

    /// A revision's build log (see `build_log.rs`).
    async fn subscribe_build(&mut self, name: String, revision: i64) {
        let app = match self.app(&name).await {
            Ok(app) => app,
            Err(err) => {
                let (code, message) = describe(&err);
                return self.reply_error(code, &message);
            }
        };
        match self.ctx.store.deployment(&app.id, revision).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return self.reply_error("not_found", &format!("revision {revision} not found"));
            }
            Err(err) => {
                let (code, message) = describe(&AppError::internal(err));
                return self.reply_error(code, &message);
            }
        }
        let Some(permit) = self.ctx.logs.admit(&self.user.id) else {
            return self.reply_error("too_many_requests", "too many log streams open");
        };
        let topic = Topic::App(name.clone());
        self.outbox.push_always(ServerMessage::Subscribed(&topic));
        let follow = super::build_log::follow_build(
            self.ctx.clone(),
            app.id,
            name.clone(),
            revision,
            self.outbox.clone(),
        );
        let task = tokio::spawn(async move {
            let _permit = permit;
            follow.await;
        });
        if let Some(old) = self
            .followers
            .insert(format!("build:{name}:{revision}"), task)
        {
            old.abort();
        }
    }

    async fn subscribe_logs(&mut self, topic: &Topic, tail: usize) -> Result<(), AppError> {
        let permit = self
            .ctx
            .logs
            .admit(&self.user.id)
            .ok_or(AppError::TooManyRequests {
                retry_after_secs: 1,
            })?;
        let unavailable = |e: crate::logs::LogError| AppError::Unavailable(e.to_string());
        let sink = self.outbox.clone();
        let hub = self.ctx.logs.clone();
        // Built here, started once `subscribed` is queued: no line before it.
        let (key, follow): (String, futures::future::BoxFuture<'static, ()>) = match topic {
            Topic::Container(id) => {
                let c = crate::access::visible_container(&self.ctx, &self.user, id, None).await?;
                let docker_id = c.container.docker_id.ok_or_else(|| {
                    AppError::NotFound(format!("container {id} has not been created yet"))
                })?;
                // Followed before history is read, so nothing falls between the two.
                let start = Start::at_subscription(tail, None, follow::now_ns());
                let live = hub.follow(&docker_id).await.map_err(unavailable)?;
                let logs = ContainerLogs {
                    docker_id,
                    replica: None,
                    start,
                    history: None,
                    live: Some(live),
                };
                (
                    format!("container:{id}"),
                    Box::pin(async move {
                        follow_container(hub, logs, sink).await;
                    }),
                )
            }
            Topic::App(name) => {
                let app = self.app(name).await?;
                let containers = self.ctx.store.application_containers(&app.id).await?;
                let store = self.ctx.store.clone();
                let follower =
                    AppFollower::start(hub, store, app.id, &containers, None, tail, None)
                        .await
                        .map_err(unavailable)?;
                (format!("app:{name}"), Box::pin(follower.run(sink)))
            }
        };
        self.outbox.push_always(ServerMessage::Subscribed(topic));
        let task = tokio::spawn(async move {
            // Held by the subscription's task: the place goes back when it ends.
            let _permit = permit;
            follow.await;
        });
        if let Some(old) = self.followers.insert(key, task) {
            old.abort();
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
                ServerMessage::Metrics {
                    app_id: &app.app_id,
                    app: &app.name,
                    container_metrics: containers,
                    aggregated,
                    timestamp,
                },
            ),
            Event::Status { app, status } if wanted(&app.app_id) => outbox.put_latest(
                format!("status:{}", app.app_id),
                ServerMessage::Status {
                    app_id: &app.app_id,
                    app: &app.name,
                    status,
                },
            ),
            Event::ReconcileError {
                app_id,
                message,
                timestamp,
            } if apps.is_none() => outbox.push(ServerMessage::ReconcileError {
                app_id,
                message,
                timestamp,
            }),
            _ => {}
        }
    }
}
