//! `/api/containers`: the caller's containers across applications, one container, and
//! its logs (recent lines, or followed as they come).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use longin_store::containers::OwnedContainer;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{owner_id, visible_container};
use crate::audit::RequestAudit;
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody};
use crate::extract::AppQuery;
use crate::logs::attach::Start;
use crate::logs::body::{self, Format, Selection, log_error, wants_ndjson};
use crate::logs::{ContainerLogs, History, follow, follow_container};
use crate::resource::ContainerView;

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
    let Selection { since, only } =
        Selection::parse(query.tail, query.since.as_deref(), query.stream.as_deref())?;
    let c = visible_container(&ctx, &user, &id, audit.as_deref()).await?;
    let docker_id = c
        .container
        .docker_id
        .ok_or_else(|| AppError::NotFound(format!("container {id} has not been created yet")))?;
    let format = Format {
        ndjson: wants_ndjson(&headers),
        timestamps: query.timestamps,
        only,
        replica_prefix: false,
    };
    let permit = ctx
        .logs
        .admit(&user.id)
        .ok_or_else(|| AppError::TooManyRequests {
            retry_after_secs: 1,
        })?;
    // Subscribed before the history is read: nothing falls between the two.
    let start = Start::at_subscription(query.tail, since, follow::now_ns());
    let live = if query.follow {
        Some(
            ctx.logs
                .follow(&docker_id)
                .await
                .map_err(|e| log_error(e, &id))?,
        )
    } else {
        None
    };
    let mut history = History::open(&ctx.logs, &docker_id, query.tail, since)
        .await
        .map_err(|e| log_error(e, &id))?;
    // The first line (or the error) decides the status; the rest streams after it.
    if let Some(Err(_)) = history.peek().await
        && let Some(Err(err)) = history.next().await
    {
        return Err(log_error(err, &id));
    }
    let (sink, response) = body::streaming(format);
    let hub = ctx.logs.clone();
    let logs = ContainerLogs {
        docker_id,
        replica: None,
        start,
        history: Some(history),
        live,
    };
    tokio::spawn(async move {
        // The user's stream permit is held until the body ends.
        let _permit = permit;
        follow_container(hub, logs, sink).await;
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogError;

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
