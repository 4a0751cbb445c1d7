//! `GET /api/applications/{name}/logs`: an application's output across its
//! containers — their recent lines merged in time order, or followed across restarts,
//! replacements and rollouts until the application is deleted.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use longin_store::containers::ContainerRecord;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::RequestAudit;
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody};
use crate::extract::AppQuery;
use crate::logs::body::{self, Format, Selection, log_error, wants_ndjson};
use crate::logs::merge::{Source, merge_histories};
use crate::logs::{AppFollower, History};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(logs))
}

/// The response header saying how many replicas' containers the lines come from at
/// the start: a reader prefixes lines with their replica when there are several.
pub const REPLICAS_HEADER: HeaderName = HeaderName::from_static("longin-replicas");

/// Which lines, and how.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
struct AppLogsQuery {
    /// Admins only: this user's application.
    owner: Option<String>,
    /// The last N lines of each container (default 100).
    #[param(maximum = 10000, minimum = 0)]
    tail: usize,
    /// Only lines since then: RFC 3339 or Unix seconds.
    #[param(value_type = Option<crate::openapi::InstantSecs>, inline)]
    since: Option<String>,
    /// Keep the response open: new lines, new containers (replacements, rollouts,
    /// scale-ups) from their first line and restarted ones from where they stopped,
    /// until the application is deleted.
    follow: bool,
    /// Only this replica's containers.
    #[param(minimum = 0)]
    replica: Option<i64>,
    /// Prefix text lines with the engine's RFC 3339 time.
    timestamps: bool,
    /// Only this stream: `stdout` or `stderr`.
    #[param(pattern = "^(stdout|stderr)$")]
    stream: Option<String>,
}

impl Default for AppLogsQuery {
    fn default() -> Self {
        Self {
            owner: None,
            tail: 100,
            since: None,
            follow: false,
            replica: None,
            timestamps: false,
            stream: None,
        }
    }
}

/// The application's containers of `replica` (all with `None`) that exist in the
/// engine, by replica.
///
/// # Errors
/// Not found: the application has no such replica.
fn selected(
    name: &str,
    containers: Vec<ContainerRecord>,
    replica: Option<i64>,
) -> Result<Vec<ContainerRecord>, AppError> {
    let mut created: Vec<ContainerRecord> = containers
        .into_iter()
        .filter(|c| c.docker_id.is_some())
        .collect();
    created.sort_by_key(|c| c.replica_index);
    let Some(r) = replica else {
        return Ok(created);
    };
    let all: BTreeSet<i64> = created.iter().map(|c| c.replica_index).collect();
    if !all.contains(&r) {
        let all: Vec<String> = all.iter().map(i64::to_string).collect();
        return Err(AppError::NotFound(format!(
            "{name} has no replica {r} (replicas: {})",
            all.join(", ")
        )));
    }
    created.retain(|c| c.replica_index == r);
    Ok(created)
}

/// The application's output. Plain text (lines of several replicas after `[rN] `),
/// or JSON lines `{containerId, replica, stream, line, timestamp}` with
/// `Accept: application/x-ndjson`, and notices `{type: "end" | "lagged", message}`.
/// Without `follow`, the containers' last lines merged in time order.
#[utoipa::path(
    get, path = "/api/applications/{name}/logs", tag = "applications",
    security(("bearer" = [])),
    params(("name" = String, Path), AppLogsQuery),
    responses(
        (status = 200, description = "text/plain or application/x-ndjson", body = String,
            headers(("longin-replicas" = u32, description = "How many replicas' containers the lines come from at the start"))),
        (status = 400, description = "A bad query parameter, named", body = ErrorBody),
        (status = 401, description = "No access token, or not a valid one", body = ErrorBody),
        (status = 403, description = "`owner` given by someone not an admin", body = ErrorBody),
        (status = 404, description = "No such application of this owner, or no such replica", body = ErrorBody),
        (status = 429, description = "The user has the most log streams open at once already", body = ErrorBody),
        (status = 503, description = "The Docker engine is unreachable", body = ErrorBody),
    )
)]
async fn logs(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    Path(name): Path<String>,
    AppQuery(query): AppQuery<AppLogsQuery>,
    headers: HeaderMap,
    audit: Option<axum::Extension<RequestAudit>>,
) -> Result<Response, AppError> {
    let Selection { since, only } =
        Selection::parse(query.tail, query.since.as_deref(), query.stream.as_deref())?;
    let app =
        crate::access::find(&ctx, &user, query.owner.as_deref(), &name, audit.as_deref()).await?;
    let containers = ctx.store.application_containers(&app.id).await?;
    let containers = selected(&name, containers, query.replica)?;
    let replicas = containers
        .iter()
        .map(|c| c.replica_index)
        .collect::<BTreeSet<_>>()
        .len();
    let permit = ctx.logs.admit(&user.id).ok_or(AppError::TooManyRequests {
        retry_after_secs: 1,
    })?;
    let format = Format {
        ndjson: wants_ndjson(&headers),
        timestamps: query.timestamps,
        only,
        replica_prefix: query.replica.is_none() && replicas > 1,
    };
    let mut response = if query.follow {
        let follower = AppFollower::start(
            ctx.logs.clone(),
            ctx.store.clone(),
            app.id,
            &containers,
            query.replica,
            query.tail,
            since,
        )
        .await
        .map_err(|e| log_error(e, &name))?;
        let (sink, response) = body::streaming(format);
        tokio::spawn(async move {
            // The user's stream permit is held until the body ends.
            let _permit = permit;
            follower.run(sink).await;
        });
        response
    } else {
        let mut sources = Vec::new();
        for c in containers {
            let Some(docker_id) = c.docker_id else {
                continue;
            };
            let history = History::open(&ctx.logs, &docker_id, query.tail, since)
                .await
                .map_err(|e| log_error(e, &docker_id))?;
            sources.push(Source {
                docker_id,
                replica: Some(c.replica_index),
                history,
            });
        }
        let (sink, response) = body::streaming(format);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = merge_histories(sources, &sink).await;
        });
        response
    };
    response
        .headers_mut()
        .insert(REPLICAS_HEADER, HeaderValue::from(replicas));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(replica: i64, docker_id: Option<&str>) -> ContainerRecord {
        ContainerRecord {
            id: format!("id{replica}"),
            docker_id: docker_id.map(str::to_owned),
            replica_index: replica,
            host_port: None,
            status: "running".to_owned(),
            restart_count: 0,
            started_at: None,
        }
    }

    #[test]
    fn containers_are_those_created_by_replica_and_an_unknown_replica_is_named() {
        let all = vec![
            container(1, Some("b")),
            container(0, Some("a")),
            container(2, None),
        ];
        let ids = |v: Vec<ContainerRecord>| -> Vec<String> {
            v.into_iter().filter_map(|c| c.docker_id).collect()
        };
        assert_eq!(ids(selected("web", all.clone(), None).unwrap()), ["a", "b"]);
        assert_eq!(ids(selected("web", all.clone(), Some(1)).unwrap()), ["b"]);
        let Err(AppError::NotFound(message)) = selected("web", all, Some(7)) else {
            panic!("found replica 7");
        };
        assert_eq!(message, "web has no replica 7 (replicas: 0, 1)");
    }
}
