//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::ApiContext;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// `ok`, `ready` or `unavailable`.
    status: &'static str,
    /// Each dependency and whether it answers (`ok` or what failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<std::collections::BTreeMap<&'static str, String>>,
}

/// The process is alive and serving.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        checks: None,
    })
}

/// The process can do its work: the store answers (and the Docker engine, where the
/// controller runs).
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, description = "A dependency is down", body = Health))
)]
async fn readyz(State(ctx): State<ApiContext>) -> (StatusCode, axum::Json<Health>) {
    let store =
        match tokio::time::timeout(std::time::Duration::from_secs(3), ctx.store.ping()).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(err)) => {
                tracing::warn!(error = ?err, "readiness: store unreachable");
                "unreachable".to_owned()
            }
            Err(_) => "timed out".to_owned(),
        };
    let mut checks = std::collections::BTreeMap::from([("store", store)]);
    if ctx.config.check_docker {
        let docker = match tokio::time::timeout(
            std::time::Duration::from_secs(3),
            longin_controller::engine_reachable(),
        )
        .await
        {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness: Docker engine unreachable");
                "unreachable".to_owned()
            }
            Err(_) => "timed out".to_owned(),
        };
        checks.insert("docker", docker);
    }
    let ready = checks.values().all(|v| v == "ok");
    let (status, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        axum::Json(Health {
            status: word,
            checks: Some(checks),
        }),
    )
}
