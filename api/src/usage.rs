//! `GET /api/applications/{name}/metrics`: an application's CPU, memory and network
//! over a time window, downsampled to a step, for charts.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::find;
use crate::audit::RequestAudit;
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::extract::AppQuery;
use crate::instant::instant;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(app_metrics))
}

/// Points a series may have at most.
const MAX_POINTS: i64 = 11_000;
/// Points a series has when no step is given.
const DEFAULT_POINTS: i64 = 120;
/// The longest window: the longest retention worth charting at once.
const MAX_WINDOW_MS: i64 = 31 * 24 * 3600 * 1000;

/// The window and resolution of a series.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct WindowQuery {
    /// Start: RFC 3339 or Unix seconds. Default: one hour before `until`. A window
    /// that ends before it starts is empty; one longer than 31 days is its last 31.
    #[param(value_type = Option<crate::openapi::InstantSecs>, inline)]
    since: Option<String>,
    /// End: RFC 3339 or Unix seconds. Default: now.
    #[param(value_type = Option<crate::openapi::InstantSecs>, inline)]
    until: Option<String>,
    /// Seconds per point. Default: the window over 120, at least the collection
    /// interval; never finer than a window's 11 000th.
    #[param(minimum = 1)]
    step: Option<i64>,
    /// Admins only: another user's application.
    owner: Option<String>,
}

/// A resolved window, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    since: i64,
    until: i64,
    step: i64,
}

/// Unix milliseconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z.
const RFC3339_MS: (i64, i64) = (-62_167_219_200_000, 253_402_300_799_999);

/// Checks and completes the query; every problem is named by its field. Each
/// parameter is checked alone (as the document can say); a window that does not fit
/// the bounds is brought within them: one that ends before it starts is empty, one
/// longer than 31 days is its last 31 days, and a step too fine for the window is
/// coarsened to the finest that gives at most 11 000 points.
pub(crate) fn resolve(q: &WindowQuery, now_ms: i64, interval_ms: i64) -> Result<Window, AppError> {
    let mut errors = FieldErrors::new();
    let until = q
        .until
        .as_deref()
        .map_or(Some(now_ms), |t| instant("until", t, &mut errors));
    let since = q.since.as_deref().map_or_else(
        || until.map(|u| u - 3_600_000),
        |t| instant("since", t, &mut errors),
    );
    if let Some(step) = q.step
        && step < 1
    {
        errors.insert("step".to_owned(), "must be at least 1 (seconds)".to_owned());
    }
    let (Some(since), Some(until), true) = (since, until, errors.is_empty()) else {
        return Err(AppError::Validation(errors));
    };
    // Answered as RFC 3339, whose years are 0000 to 9999: a window beyond (which has
    // no data) is brought within them.
    let (since, until) = (
        since.clamp(RFC3339_MS.0, RFC3339_MS.1),
        until.clamp(RFC3339_MS.0, RFC3339_MS.1),
    );
    let since = since.clamp(until.saturating_sub(MAX_WINDOW_MS), until);
    let window = until - since;
    let step = q
        .step
        .map_or_else(
            || (window / DEFAULT_POINTS).max(interval_ms).max(1000),
            |s| s.saturating_mul(1000),
        )
        // The finest step within the most points, in whole seconds.
        .max(((window + MAX_POINTS - 1) / MAX_POINTS + 999) / 1000 * 1000);
    Ok(Window { since, until, step })
}

/// An application's series.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Series {
    app: String,
    since: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
    /// Seconds per point.
    step: i64,
    points: Vec<Point>,
}

/// The application's totals over one step (averaged over the collection cycles in it).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Point {
    /// Start of the step.
    timestamp: chrono::DateTime<chrono::Utc>,
    /// Percent of one core, summed over the containers.
    cpu_percent: f64,
    memory_bytes: f64,
    memory_limit_bytes: f64,
    containers: f64,
    /// Cumulative bytes received by the containers (highest in the step).
    net_rx_bytes: f64,
    net_tx_bytes: f64,
    /// Cumulative bytes read from and written to block devices (highest in the step).
    block_read_bytes: f64,
    block_write_bytes: f64,
}

/// CPU, memory and network of one application over time.
#[utoipa::path(
    get, path = "/api/applications/{name}/metrics", tag = "applications",
    security(("bearer" = [])),
    params(("name" = String, Path), WindowQuery),
    responses(
        (status = 200, body = Series),
        (status = 400, description = "A bad window, named by field", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn app_metrics(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    Path(name): Path<String>,
    AppQuery(query): AppQuery<WindowQuery>,
    audit: Option<axum::Extension<RequestAudit>>,
) -> Result<axum::Json<Series>, AppError> {
    let interval = i64::try_from(ctx.config.metrics_interval.as_millis()).unwrap_or(30_000);
    let window = resolve(&query, longin_store::now_ms(), interval)?;
    let record = find(&ctx, &user, query.owner.as_deref(), &name, audit.as_deref()).await?;
    let points = ctx
        .store
        .usage_series(&record.id, window.since, window.until, window.step)
        .await?;
    let time = crate::users::time_from_ms;
    Ok(axum::Json(Series {
        app: record.name,
        since: time(window.since),
        until: time(window.until),
        step: window.step / 1000,
        points: points
            .into_iter()
            .map(|p| Point {
                timestamp: time(p.at),
                cpu_percent: p.cpu_percent,
                memory_bytes: p.memory_bytes,
                memory_limit_bytes: p.memory_limit_bytes,
                containers: p.containers,
                net_rx_bytes: p.net_rx_bytes,
                net_tx_bytes: p.net_tx_bytes,
                block_read_bytes: p.block_read_bytes,
                block_write_bytes: p.block_write_bytes,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(since: Option<&str>, until: Option<&str>, step: Option<i64>) -> WindowQuery {
        WindowQuery {
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
            step,
            owner: None,
        }
    }

    fn fields(err: AppError) -> Vec<String> {
        match err {
            AppError::Validation(f) => f.into_keys().collect(),
            other => panic!("{other:?}"),
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn defaults_to_the_last_hour_in_about_120_points() {
        let w = resolve(&q(None, None, None), NOW, 5_000).unwrap();
        assert_eq!(
            w,
            Window {
                since: NOW - 3_600_000,
                until: NOW,
                step: 30_000
            }
        );
        // Never finer than the collection interval.
        let w = resolve(&q(None, None, None), NOW, 60_000).unwrap();
        assert_eq!(w.step, 60_000);
    }

    #[test]
    fn accepts_rfc3339_and_unix_seconds() {
        let w = resolve(
            &q(Some("2026-11-26T09:00:00Z"), Some("1795687200"), Some(60)),
            NOW,
            30_000,
        )
        .unwrap();
        assert_eq!(w.since, 1_795_683_600_000);
        assert_eq!(w.until, 1_795_687_200_000);
        assert_eq!(w.step, 60_000);
    }

    #[test]
    fn bad_parameters_name_their_field() {
        assert_eq!(
            fields(resolve(&q(Some("yesterday"), None, None), NOW, 1000).unwrap_err()),
            ["since"]
        );
        assert_eq!(
            fields(resolve(&q(None, Some("10"), Some(0)), NOW, 1000).unwrap_err()),
            ["step"]
        );
        // Far outside any calendar: refused, not wrapped around.
        let huge = q(Some("-9000000000000000"), Some("9000000000000000"), None);
        assert_eq!(
            fields(resolve(&huge, NOW, 1000).unwrap_err()),
            ["since", "until"]
        );
    }

    #[test]
    fn windows_beyond_the_bounds_are_brought_within_them() {
        // Ends before it starts: empty.
        let w = resolve(&q(Some("20"), Some("10"), None), NOW, 1000).unwrap();
        assert_eq!((w.since, w.until), (10_000, 10_000));
        // Longer than 31 days: its last 31 days.
        let w = resolve(&q(Some("0"), Some("100000000"), None), NOW, 1000).unwrap();
        assert_eq!(w.until - w.since, MAX_WINDOW_MS);
        assert_eq!(w.until, 100_000_000_000);
        // A step too fine: the finest that keeps to the most points.
        let w = resolve(&q(Some("0"), Some("86400"), Some(1)), NOW, 1000).unwrap();
        assert!((w.until - w.since) / w.step <= MAX_POINTS, "{w:?}");
        assert_eq!(w.step, 8_000);
        // Beyond year 9999 (which RFC 3339 cannot write): within it.
        let w = resolve(&q(Some("282"), Some("8210266876799"), None), NOW, 1000).unwrap();
        assert_eq!(w.until, RFC3339_MS.1);
        let shown = crate::users::time_from_ms(w.since).to_rfc3339();
        assert!(shown.starts_with("9999-"), "{shown}");
    }
}
