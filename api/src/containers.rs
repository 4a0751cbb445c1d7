//! `/api/containers`: the caller's containers across applications, one container, and
//! its logs (recent lines, or followed as they come).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use longin_store::containers::OwnedContainer;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::applications::{ContainerView, owner_id};
use crate::audit::RequestAudit;
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::extract::AppQuery;
use crate::logs::{LogError, LogEvent, LogLine, Stream};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(logs))
}

/// A container with its application.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OwnedContainerView {
    #[serde(flatten)]
    container: ContainerView,
    application: String,
    owner: String,
}

impl From<OwnedContainer> for OwnedContainerView {
    fn from(c: OwnedContainer) -> Self {
        Self {
            container: c.container.into(),
            application: c.application_name,
            owner: c.owner_username,
        }
    }
}

/// Whose containers to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Admins only: this user's containers.
    owner: Option<String>,
    /// Admins only: every user's containers.
    all: bool,
}

/// The caller's containers, by application and replica.
#[utoipa::path(
    get, path = "/api/containers", tag = "containers", operation_id = "list_containers",
    security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = Vec<OwnedContainerView>), (status = 403, body = ErrorBody))
)]
async fn list(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<axum::Json<Vec<OwnedContainerView>>, AppError> {
    let owner = if query.all {
        if !user.is_admin() {
            return Err(AppError::Forbidden(
                "only admins may list every user's containers".to_owned(),
            ));
        }
        None
    } else {
        Some(owner_id(&ctx, &user, query.owner.as_deref()).await?)
    };
    let containers = ctx.store.owned_containers(owner.as_deref()).await?;
    Ok(axum::Json(containers.into_iter().map(Into::into).collect()))
}

/// The container `id` if the caller may see it (its owner, or an admin). Someone
/// else's container is "not found": its existence is not revealed.
pub(crate) async fn visible_container(
    ctx: &ApiContext,
    user: &AuthUser,
    id: &str,
    audit: Option<&RequestAudit>,
) -> Result<OwnedContainer, AppError> {
    let not_found = || AppError::NotFound(format!("container {} not found", id.escape_debug()));
    if id.is_empty() || id.len() > 128 {
        return Err(not_found());
    }
    let c = ctx
        .store
        .owned_container(id)
        .await?
        .filter(|c| c.owner_id == user.id || user.is_admin())
        .ok_or_else(not_found)?;
    if let Some(audit) = audit {
        audit.set_application(&c.application_id);
    }
    Ok(c)
}

/// One container: by its id, its engine id, or a unique prefix of 12+ characters of it.
#[utoipa::path(
    get, path = "/api/containers/{id}", tag = "containers", operation_id = "get_container",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OwnedContainerView), (status = 404, body = ErrorBody))
)]
async fn get_one(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    Path(id): Path<String>,
    audit: Option<axum::Extension<RequestAudit>>,
) -> Result<axum::Json<OwnedContainerView>, AppError> {
    Ok(axum::Json(
        visible_container(&ctx, &user, &id, audit.as_deref())
            .await?
            .into(),
    ))
}

/// Most lines `tail` may ask for: history is read whole before it is sent, and an
/// engine line can be 16 KiB.
const MAX_TAIL: usize = 10_000;

/// Which lines, and how.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
struct LogsQuery {
    /// The last N lines (default 100, at most 10000).
    #[param(minimum = 0, maximum = 10_000)]
    tail: usize,
    /// Only lines since then: RFC 3339 or Unix seconds.
    #[param(value_type = Option<crate::openapi::InstantSecs>, inline)]
    since: Option<String>,
    /// Prefix text lines with the engine's RFC 3339 time.
    timestamps: bool,
    /// Keep the response open and stream new lines until the container stops.
    follow: bool,
    /// Only this stream: `stdout` or `stderr`.
    #[param(pattern = "^(stdout|stderr)$")]
    stream: Option<String>,
}

impl Default for LogsQuery {
    fn default() -> Self {
        Self {
            tail: 100,
            since: None,
            timestamps: false,
            follow: false,
            stream: None,
        }
    }
}

/// How lines are written.
#[derive(Debug, Clone, Copy)]
struct Format {
    ndjson: bool,
    timestamps: bool,
    only: Option<Stream>,
}

impl Format {
    fn render(self, line: &LogLine) -> Option<String> {
        if self.only.is_some_and(|s| s != line.stream) {
            return None;
        }
        Some(if self.ndjson {
            let mut json = serde_json::to_string(line).unwrap_or_default();
            json.push('\n');
            json
        } else if self.timestamps {
            format!("{} {}\n", line.timestamp, line.line)
        } else {
            format!("{}\n", line.line)
        })
    }

    fn notice(self, kind: &str, text: &str) -> String {
        if self.ndjson {
            format!("{}\n", serde_json::json!({"type": kind, "message": text}))
        } else {
            format!("[longin: {text}]\n")
        }
    }
}

fn log_error(err: LogError, id: &str) -> AppError {
    match err {
        LogError::Engine(_) => AppError::Unavailable(err.to_string()),
        // Gone, or going: the engine answers 409 for a container being removed or dead.
        LogError::Read(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => AppError::NotFound(format!("container {id} is gone from the engine")),
        LogError::Read(other) => AppError::internal(other),
    }
}

/// The container's output. Plain text, or JSON lines `{containerId, stream, line,
/// timestamp}` with `Accept: application/x-ndjson` (which tells stdout and stderr
/// apart). With `follow=true` the response stays open and new lines follow.
#[utoipa::path(
    get, path = "/api/containers/{id}/logs", tag = "containers", operation_id = "container_logs",
    security(("bearer" = [])),
    params(("id" = String, Path), LogsQuery),
    responses(
        (status = 200, description = "The lines: text, or JSON lines with Accept: application/x-ndjson",
            content((String = "text/plain"), (String = "application/x-ndjson"))),
        (status = 404, description = "No such container of the caller's, not created yet, or gone from the engine", body = ErrorBody),
        (status = 429, description = "The user has the most log streams open at once already", body = ErrorBody),
        (status = 503, description = "The Docker engine is unreachable", body = ErrorBody),
    )
)]
async fn logs(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    Path(id): Path<String>,
    AppQuery(query): AppQuery<LogsQuery>,
    headers: HeaderMap,
    audit: Option<axum::Extension<RequestAudit>>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::new();
    if query.tail > MAX_TAIL {
        errors.insert("tail".to_owned(), format!("at most {MAX_TAIL}"));
    }
    let since = query
        .since
        .as_deref()
        .and_then(|s| crate::usage::instant("since", s, &mut errors))
        .map(|ms| ms.div_euclid(1000));
    let only = match query.stream.as_deref() {
        None => None,
        Some("stdout") => Some(Stream::Stdout),
        Some("stderr") => Some(Stream::Stderr),
        Some(_) => {
            errors.insert("stream".to_owned(), "stdout or stderr".to_owned());
            None
        }
    };
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let c = visible_container(&ctx, &user, &id, audit.as_deref()).await?;
    let docker_id = c
        .container
        .docker_id
        .ok_or_else(|| AppError::NotFound(format!("container {id} has not been created yet")))?;
    let format = Format {
        ndjson: headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/x-ndjson")),
        timestamps: query.timestamps,
        only,
    };
    let permit = ctx
        .logs
        .admit(&user.id)
        .ok_or_else(|| AppError::TooManyRequests {
            retry_after_secs: 1,
        })?;
    // Subscribed before the history is read: nothing falls between the two.
    let subscribed_at = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MIN);
    let follower = if query.follow {
        Some(
            ctx.logs
                .follow(&docker_id)
                .await
                .map_err(|e| log_error(e, &id))?,
        )
    } else {
        None
    };
    let mut history = ctx
        .logs
        .history(&docker_id, Some(query.tail), since)
        .await
        .map_err(|e| log_error(e, &id))?;
    // The first line (or the error) decides the status; the rest streams after it.
    let first = history
        .recv()
        .await
        .transpose()
        .map_err(|e| log_error(e, &id))?;
    let content_type = if format.ndjson {
        "application/x-ndjson"
    } else {
        "text/plain; charset=utf-8"
    };
    let (tx, rx) = mpsc::channel::<String>(CHUNKS_AHEAD);
    tokio::spawn(forward(
        History {
            first,
            rest: history,
        },
        follower,
        tx,
        subscribed_at,
        format,
        permit,
    ));
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    }));
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Rendered lines waiting for a slow client: with the history's read-ahead, what one
/// log request can hold in memory (a line is at most 16 KiB).
const CHUNKS_AHEAD: usize = 16;

/// A container's history as it is read: the first line, then the rest.
struct History {
    first: Option<LogLine>,
    rest: mpsc::Receiver<Result<LogLine, crate::logs::LogError>>,
}

/// Writes the history, then (when following) the followed lines newer than it, until
/// the stream ends or the client goes away (dropping the subscription, which closes an
/// unshared stream). Holds the user's stream permit all along.
async fn forward(
    mut history: History,
    follower: Option<broadcast::Receiver<LogEvent>>,
    tx: mpsc::Sender<String>,
    subscribed_at: i64,
    format: Format,
    _permit: crate::logs::StreamPermit,
) {
    // Without history, only lines from now on (the shared stream starts at a whole
    // second, so it can carry a few older ones).
    let mut last_seen = subscribed_at;
    let mut next = history.first.take().map(Ok);
    loop {
        let line = match next.take() {
            Some(line) => line,
            None => match history.rest.recv().await {
                Some(line) => line,
                None => break,
            },
        };
        let chunk = match line {
            Ok(line) => {
                last_seen = line.at_ns;
                format.render(&line)
            }
            Err(err) => {
                let _ = tx.send(format.notice("end", &err.to_string())).await;
                return;
            }
        };
        if let Some(chunk) = chunk
            && tx.send(chunk).await.is_err()
        {
            return;
        }
    }
    let Some(mut follower) = follower else {
        return;
    };
    loop {
        // The client leaving is noticed even while no line passes: a quiet container
        // or a filtered stream must not keep the task and the engine stream alive.
        let received = tokio::select! {
            () = tx.closed() => return,
            received = follower.recv() => received,
        };
        let chunk = match received {
            Ok(LogEvent::Line(line)) if line.at_ns > last_seen => format.render(&line),
            Ok(LogEvent::Line(_)) => None,
            Ok(LogEvent::End(why)) => {
                let _ = tx.send(format.notice("end", &why)).await;
                return;
            }
            Err(broadcast::error::RecvError::Lagged(n)) => Some(format.notice(
                "lagged",
                &format!("{n} lines dropped: the client fell behind"),
            )),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Some(chunk) = chunk
            && tx.send(chunk).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_answer(status_code: u16) -> LogError {
        LogError::Read(bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: "can not get logs from container which is dead or marked for removal"
                .to_owned(),
        })
    }

    #[test]
    fn logs_of_a_container_gone_or_going_are_not_found_not_an_internal_error() {
        for status in [404, 409] {
            assert!(
                matches!(
                    log_error(engine_answer(status), "c1"),
                    AppError::NotFound(_)
                ),
                "{status}"
            );
        }
        assert!(matches!(
            log_error(engine_answer(500), "c1"),
            AppError::Internal(_)
        ));
    }
}
