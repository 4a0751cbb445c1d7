//! `GET /api/admin/system`: what an admin checks first when something is off — the
//! version, the store, whether the engine answers, who leads the controller, how much
//! work waits, and the data disk's free space.

use std::time::Duration;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(system))
}

/// The installation at a glance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SystemView {
    version: &'static str,
    /// `sqlite` or `postgres`.
    store: &'static str,
    engine: EngineView,
    /// The controller's leader lease; absent when no controller holds it.
    leader: Option<LeaderView>,
    /// Applications the controller has not caught up with yet (a generation it has
    /// not observed, or a deletion it has not finished).
    queue_depth: i64,
    applications: i64,
    users: i64,
    builds: BuildsView,
    data_dir: DiskView,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EngineView {
    reachable: bool,
    /// The engine's version when it answered.
    version: Option<String>,
    /// Why not, when it did not.
    error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LeaderView {
    holder: String,
    expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct BuildsView {
    queued: i64,
    running: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DiskView {
    path: String,
    /// Bytes an unprivileged writer may still use; absent when the disk cannot be read.
    free_bytes: Option<u64>,
    total_bytes: Option<u64>,
}

/// The installation's version, store, engine, leader, backlog and data disk.
#[utoipa::path(
    get, path = "/api/admin/system", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The installation now", body = SystemView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
async fn system(
    State(ctx): State<ApiContext>,
    _admin: AdminUser,
) -> Result<axum::Json<SystemView>, AppError> {
    let backlog = ctx.store.backlog().await?;
    let leader = ctx
        .store
        .lease(&ctx.config.controller_lease)
        .await?
        .filter(|l| l.expires_at > longin_store::now_ms())
        .map(|l| LeaderView {
            holder: l.holder,
            expires_at: chrono::DateTime::from_timestamp_millis(l.expires_at).unwrap_or_default(),
        });
    let data_dir = ctx.config.data_dir.clone();
    let disk = tokio::task::spawn_blocking(move || {
        let stat = rustix::fs::statvfs(&data_dir).ok();
        DiskView {
            path: data_dir.display().to_string(),
            free_bytes: stat.as_ref().map(|s| s.f_bavail.saturating_mul(s.f_frsize)),
            total_bytes: stat.as_ref().map(|s| s.f_blocks.saturating_mul(s.f_frsize)),
        }
    })
    .await
    .map_err(AppError::internal)?;
    Ok(axum::Json(SystemView {
        version: env!("CARGO_PKG_VERSION"),
        store: match ctx.store.backend() {
            longin_store::Backend::Sqlite => "sqlite",
            longin_store::Backend::Postgres => "postgres",
        },
        engine: engine().await,
        leader,
        queue_depth: backlog.unreconciled,
        applications: backlog.applications,
        users: backlog.users,
        builds: BuildsView {
            queued: backlog.builds_queued,
            running: backlog.builds_running,
        },
        data_dir: disk,
    }))
}

/// Asks the local engine its version, within a few seconds.
async fn engine() -> EngineView {
    let asked = async {
        let docker = bollard::Docker::connect_with_defaults()?;
        docker.version().await
    };
    match tokio::time::timeout(Duration::from_secs(3), asked).await {
        Ok(Ok(version)) => EngineView {
            reachable: true,
            version: version.version,
            error: None,
        },
        Ok(Err(err)) => EngineView {
            reachable: false,
            version: None,
            error: Some(err.to_string()),
        },
        Err(_) => EngineView {
            reachable: false,
            version: None,
            error: Some("no answer within 3 s".to_owned()),
        },
    }
}
