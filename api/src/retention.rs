//! Retention: periodically deletes audit rows and container metrics past their
//! retention, expired refresh tokens and old tombstones of deleted applications, so the store does not grow without bound.

use tokio_util::sync::CancellationToken;

use crate::context::ApiContext;

/// How long a deleted application's tombstone is kept for watches to replay. A
/// Kubernetes client watching from an older version is told to list again (410), as
/// against an etcd compacted after five minutes; an hour covers a laptop asleep.
const TOMBSTONE_RETENTION_MS: i64 = 60 * 60 * 1000;

/// Prunes every `ctx.config.prune_interval` until `cancel` fires.
pub async fn run(ctx: ApiContext, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.config.prune_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => prune_once(&ctx).await,
        }
    }
    tracing::info!("retention task stopped");
}

async fn prune_once(ctx: &ApiContext) {
    let now = longin_store::now_ms();
    let retention = i64::try_from(ctx.config.audit_retention.as_millis()).unwrap_or(i64::MAX);
    match ctx
        .store
        .prune_api_logs(now.saturating_sub(retention))
        .await
    {
        Ok(rows) => {
            metrics::counter!("longin_pruned_rows_total", "table" => "api_logs").increment(rows);
            if rows > 0 {
                tracing::info!(rows, "pruned old api logs");
            }
        }
        Err(err) => tracing::warn!(error = ?err, "could not prune api logs"),
    }
    let keep = i64::try_from(ctx.config.metrics_retention.as_millis()).unwrap_or(i64::MAX);
    match ctx.store.prune_usage(now.saturating_sub(keep)).await {
        Ok(rows) => {
            metrics::counter!("longin_pruned_rows_total", "table" => "metrics").increment(rows);
            if rows > 0 {
                tracing::info!(rows, "pruned old container metrics");
            }
        }
        Err(err) => tracing::warn!(error = ?err, "could not prune container metrics"),
    }
    match ctx
        .store
        .prune_tombstones(now.saturating_sub(TOMBSTONE_RETENTION_MS))
        .await
    {
        Ok(rows) => {
            metrics::counter!("longin_pruned_rows_total", "table" => "application_tombstones")
                .increment(rows);
        }
        Err(err) => tracing::warn!(error = ?err, "could not prune application tombstones"),
    }
    match ctx.refresh_tokens.prune_expired(now).await {
        Ok(rows) => {
            metrics::counter!("longin_pruned_rows_total", "table" => "refresh_tokens")
                .increment(rows);
        }
        Err(err) => tracing::warn!(error = ?err, "could not prune refresh tokens"),
    }
    metrics::gauge!("longin_retention_last_run_timestamp_seconds").set(now as f64 / 1000.0);
}
