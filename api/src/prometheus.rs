//! `GET /metrics` in Prometheus' text format: everything recorded through the
//! `metrics` facade (controller, HTTP, auth), plus per-application gauges read from the
//! store at scrape time, plus the data directory's free space.
//!
//! Why per-application gauges come from the store: an application can be served by
//! another process's controller, and a gauge set through the facade lives forever —
//! a deleted application would keep its last values and keep alerts firing. Read at
//! scrape time, a deleted application simply has no series.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use longin_crds::application::Phase;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};

use crate::context::ApiContext;
use crate::error::AppError;

/// Histogram buckets for every `*_duration_seconds`: 1 ms to 5 min.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Builds run for minutes (up to `--build-timeout`, 15 min by default, at most 1 h).
const BUILD_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same
/// handle). `None` if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            // Counters idle for an hour are dropped: the one labelled by application
            // (restarts) would otherwise keep a series for every app ever deleted.
            let builder = PrometheusBuilder::new()
                .idle_timeout(
                    metrics_util::MetricKindMask::COUNTER,
                    Some(std::time::Duration::from_secs(3600)),
                )
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".to_owned()),
                    DURATION_BUCKETS,
                )
                .ok()?
                // A full name is matched before any suffix.
                .set_buckets_for_metric(
                    Matcher::Full("longin_build_duration_seconds".to_owned()),
                    BUILD_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    metrics::gauge!("longin_build_info", "version" => env!("CARGO_PKG_VERSION"))
                        .set(1.0);
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "a metrics recorder is already installed; /metrics shows only what Longin reads at scrape time");
                    None
                }
            }
        })
        .as_ref()
}

/// The help text of every metric recorded through the facade (Prometheus' linter,
/// `promtool check metrics`, wants one for each). Keep in step with the recording sites.
fn describe() {
    metrics::describe_gauge!(
        "longin_build_info",
        "Longin's version, as a label; always 1."
    );
    describe_controller();
    describe_collection();
    describe_builds();
    describe_api();
}

/// The reconcile controller's metrics.
fn describe_controller() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "longin_reconciles_total",
        "Reconciles by result (success, error, cancelled: a pull cut short by a stopping controller)."
    );
    describe_histogram!(
        "longin_reconcile_duration_seconds",
        Unit::Seconds,
        "Time one reconcile takes."
    );
    describe_gauge!(
        "longin_controller_queue_depth",
        "Applications waiting in the work queue."
    );
    describe_counter!(
        "longin_account_cache_total",
        "Account reads answered from memory (hit) or the database (miss)."
    );
    describe_counter!(
        "longin_api_rendered_applications_total",
        "Application renderings reused at their resourceVersion (hit) or made (miss)."
    );
    describe_gauge!(
        "longin_controller_queue_ready",
        "Applications due now and waiting for a worker."
    );
    describe_gauge!(
        "longin_controller_reconciles_running",
        "Reconciles running now."
    );
    describe_gauge!(
        "longin_controller_leader",
        "1 while this process holds the controller's leader lease."
    );
    describe_gauge!(
        "longin_controller_last_resync_timestamp_seconds",
        "When the last periodic resync ran (Unix time)."
    );
    describe_counter!(
        "longin_controller_resync_scheduled_total",
        "Applications the periodic resync scheduled."
    );
    describe_counter!(
        "longin_docker_events_total",
        "Container events from the engine that triggered a reconcile."
    );
    describe_counter!(
        "longin_container_restarts_total",
        "Container restarts by application (owner/name)."
    );
    describe_counter!("longin_image_pulls_total", "Image pulls by result.");
    describe_gauge!(
        "longin_image_pulls_in_flight",
        "Image pulls running off the reconcile workers."
    );
    describe_gauge!(
        "longin_controller_stops_in_flight",
        "Graceful container stops running off the reconcile workers."
    );
    describe_counter!(
        "longin_log_streams_refused_total",
        "Log reads and follows refused: the user had the most open already."
    );
    describe_counter!(
        "longin_ws_write_timeouts_total",
        "WebSocket connections closed because the client stopped reading."
    );
    describe_counter!("longin_backups_total", "Scheduled backups by result.");
    describe_gauge!(
        "longin_backup_last_success_timestamp_seconds",
        "When the last scheduled backup was written (Unix time)."
    );
    describe_counter!(
        "longin_host_ports_skipped_total",
        "Replicas moved off a host port held outside Longin."
    );
    describe_gauge!(
        "longin_http_connections",
        "HTTP connections open (or being accepted), by scheme (http, https)."
    );
    describe_histogram!(
        "longin_image_pull_duration_seconds",
        Unit::Seconds,
        "Time one image pull takes."
    );
    describe_counter!("longin_probes_total", "Health probes by result.");
    describe_gauge!("longin_probe_targets", "Containers being health-checked.");
}

/// Stats collection and live events.
fn describe_builds() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "longin_deployments_total",
        "Revisions that ended, by what started them and how they ended (succeeded, failed, cancelled, superseded)."
    );
    describe_histogram!(
        "longin_build_duration_seconds",
        Unit::Seconds,
        "Time from a build's start to its image rolled out or its end, by result."
    );
    describe_gauge!("longin_builds_running", "Image builds running now.");
    describe_gauge!(
        "longin_build_oldest_running_seconds",
        Unit::Seconds,
        "Age of the oldest build running now (0 when none)."
    );
    describe_gauge!(
        "longin_built_image_bytes",
        Unit::Bytes,
        "Bytes of the images this installation built, after the last clean-up."
    );
    describe_counter!(
        "longin_webhook_deliveries_total",
        "Webhook deliveries received, by result (queued, duplicate, pong, ignored, unauthorized, invalid, unknown_hook)."
    );
}

fn describe_collection() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "longin_metrics_collection_duration_seconds",
        Unit::Seconds,
        "Time one stats cycle over every running container takes."
    );
    describe_counter!(
        "longin_metrics_collection_errors_total",
        "Stats cycles that failed."
    );
    describe_counter!(
        "longin_bus_publish_failures_total",
        "Events that could not be published to Redis (delivered locally only)."
    );
    describe_counter!(
        "longin_metrics_scrape_store_errors_total",
        "Scrapes of /metrics served without per-application gauges because the store failed."
    );
    describe_counter!(
        "longin_ws_dropped_messages_total",
        "Log lines dropped for WebSocket clients that fell behind."
    );
    describe_gauge!(
        "longin_ws_connections",
        "Open WebSocket connections by stream."
    );
    describe_gauge!(
        "longin_log_streams_open",
        "Engine log streams open, shared by every follower of a container."
    );
}

/// The API's metrics.
fn describe_api() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "longin_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP requests by method, matched route and status."
    );
    describe_counter!("longin_login_failures_total", "Failed sign-ins.");
    describe_counter!(
        "longin_login_rate_limited_total",
        "Sign-ins refused by the failure limits."
    );
    describe_counter!(
        "longin_refresh_token_reuse_total",
        "Reused (stolen or replayed) refresh tokens detected."
    );
    describe_counter!(
        "longin_api_token_authentications_total",
        "Requests that presented a personal API token, by outcome (accepted, refused)."
    );
    describe_gauge!(
        "longin_kube_watches",
        "Kubernetes API watches open (kubectl get -w, kubectl delete's wait, informers)."
    );
    describe_counter!(
        "longin_kube_watch_events_total",
        "Events sent to Kubernetes API watches, by type (ADDED, MODIFIED, DELETED)."
    );
    describe_counter!(
        "longin_kube_watches_refused_total",
        "Kubernetes API watches refused with 429: the user had the most open already."
    );
    describe_counter!(
        "longin_tls_handshake_failures_total",
        "Connections to the HTTPS listener that failed or did not finish their TLS handshake in time."
    );
    describe_counter!(
        "longin_api_logs_written_total",
        "Request audit rows written."
    );
    describe_counter!(
        "longin_api_logs_dropped_total",
        "Request audit rows dropped (queue full or store down)."
    );
    describe_gauge!(
        "longin_api_logs_last_flush_timestamp_seconds",
        "When the audit log was last written (Unix time)."
    );
    describe_counter!(
        "longin_pruned_rows_total",
        "Rows deleted by retention, by table."
    );
    describe_gauge!(
        "longin_retention_last_run_timestamp_seconds",
        "When retention last ran (Unix time)."
    );
}

/// Prometheus' text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Refuses a scrape without the configured token.
fn check_token(token: Option<&str>, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(token) = token else { return Ok(()) };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compared as digests: equal length, so the time taken says nothing.
    if Sha256::digest(presented.as_bytes()) == Sha256::digest(token.as_bytes()) {
        Ok(())
    } else {
        Err(AppError::Unauthorized(
            "/metrics needs the bearer token set in LONGIN_METRICS_TOKEN".to_owned(),
        ))
    }
}

/// What the facade recorded in this process, then `extra`, as a scrape response.
fn exposition(extra: &str, data_dir: &std::path::Path) -> Response {
    let mut body = String::new();
    if let Some(handle) = install() {
        handle.run_upkeep();
        body.push_str(&handle.render());
    }
    body.push_str(extra);
    body.push_str(&disk_section(data_dir));
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// The scrape endpoint.
pub async fn scrape(
    State(ctx): State<ApiContext>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_token(ctx.config.metrics_token.as_deref(), &headers)?;
    // Without the store, the process's own metrics still matter most: the scrape goes
    // on without the per-application gauges.
    let apps = app_section(&ctx).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "/metrics without per-application gauges: the store failed");
        metrics::counter!("longin_metrics_scrape_store_errors_total").increment(1);
        String::new()
    });
    Ok(exposition(&apps, &ctx.config.data_dir))
}

/// `/metrics` and `/healthz` of a process without the API (`longin controller`): what
/// it records (reconciles, queue, leadership, collection) and the data dir's space.
/// The per-application gauges come from the API processes.
pub fn standalone_router(data_dir: std::path::PathBuf, token: Option<String>) -> axum::Router {
    install();
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let (data_dir, token) = (data_dir.clone(), token.clone());
                async move {
                    check_token(token.as_deref(), &headers)?;
                    Ok::<_, AppError>(exposition("", &data_dir))
                }
            }),
        )
        .route(
            "/healthz",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(crate::error::not_found)
}

/// One gauge family: its samples by `app`.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

async fn app_section(ctx: &ApiContext) -> Result<String, longin_store::StoreError> {
    let apps = ctx.store.all_applications().await?;
    // A cycle older than two intervals (and a bit) is stale: its app runs nothing now.
    let window = i64::try_from(ctx.config.metrics_interval.as_millis() * 5 / 2).unwrap_or(i64::MAX);
    let usage: std::collections::HashMap<String, _> = ctx
        .store
        .latest_usage(longin_store::now_ms().saturating_sub(window))
        .await?
        .into_iter()
        .map(|u| (u.application_id.clone(), u))
        .collect();
    let mut families = [
        Family {
            name: "longin_app_desired_replicas",
            help: "Replicas the application asks for.",
            samples: vec![],
        },
        Family {
            name: "longin_app_ready_replicas",
            help: "Replicas ready to serve.",
            samples: vec![],
        },
        Family {
            name: "longin_app_failed",
            help: "1 when the application exhausted its restarts (phase Failed).",
            samples: vec![],
        },
        Family {
            name: "longin_app_cpu_usage_ratio",
            help: "CPU used by the application's containers, in cores (1 = one core busy).",
            samples: vec![],
        },
        Family {
            name: "longin_app_memory_usage_bytes",
            help: "Memory used by the application's containers.",
            samples: vec![],
        },
        Family {
            name: "longin_app_memory_limit_bytes",
            help: "Sum of the memory limits of the application's containers.",
            samples: vec![],
        },
        Family {
            name: "longin_app_containers",
            help: "Running containers of the application in the latest metrics cycle.",
            samples: vec![],
        },
    ];
    for app in &apps {
        let label = format!("{}/{}", app.owner_username, app.name);
        let desired = if app.deletion_timestamp.is_some() {
            0
        } else {
            app.spec.replicas
        };
        let u = usage.get(&app.id);
        #[allow(clippy::cast_precision_loss)]
        let values = [
            f64::from(desired),
            f64::from(app.status.ready_replicas),
            if app.status.phase == Phase::Failed {
                1.0
            } else {
                0.0
            },
            u.map_or(0.0, |u| u.cpu_percent / 100.0),
            u.map_or(0.0, |u| u.memory_bytes),
            u.map_or(0.0, |u| u.memory_limit_bytes),
            u.map_or(0.0, |u| u.containers as f64),
        ];
        for (family, value) in families.iter_mut().zip(values) {
            family.samples.push((label.clone(), value));
        }
    }
    let mut out = String::new();
    for family in &families {
        render_gauge(&mut out, family.name, family.help, "app", &family.samples);
    }
    Ok(out)
}

fn disk_section(data_dir: &std::path::Path) -> String {
    let mut out = String::new();
    match rustix::fs::statvfs(data_dir) {
        Ok(fs) => {
            #[allow(clippy::cast_precision_loss)]
            let (available, size) = (
                (fs.f_bavail * fs.f_frsize) as f64,
                (fs.f_blocks * fs.f_frsize) as f64,
            );
            render_gauge(
                &mut out,
                "longin_data_disk_available_bytes",
                "Space left for Longin on the data directory's filesystem.",
                "",
                &[(String::new(), available)],
            );
            render_gauge(
                &mut out,
                "longin_data_disk_size_bytes",
                "Size of the data directory's filesystem.",
                "",
                &[(String::new(), size)],
            );
        }
        Err(err) => {
            tracing::warn!(error = %err, dir = %data_dir.display(), "cannot read the data directory's free space")
        }
    }
    out
}

/// Writes one gauge family; `label` names the samples' label (none when empty).
fn render_gauge(out: &mut String, name: &str, help: &str, label: &str, samples: &[(String, f64)]) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (value_of_label, value) in samples {
        if label.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(
                out,
                "{name}{{{label}=\"{}\"}} {value}",
                escape(value_of_label)
            );
        }
    }
}

/// A label value as the text format wants it: backslash, double quote and newline
/// escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_rendered_with_escaped_labels() {
        let mut out = String::new();
        render_gauge(
            &mut out,
            "longin_app_ready_replicas",
            "Ready.",
            "app",
            &[("alice/web".into(), 2.0), ("b\"o\\b/x\ny".into(), 0.5)],
        );
        assert_eq!(
            out,
            "# HELP longin_app_ready_replicas Ready.\n# TYPE longin_app_ready_replicas gauge\n\
             longin_app_ready_replicas{app=\"alice/web\"} 2\n\
             longin_app_ready_replicas{app=\"b\\\"o\\\\b/x\\ny\"} 0.5\n"
        );
    }

    #[test]
    fn an_empty_family_is_left_out_and_unlabelled_gauges_have_no_braces() {
        let mut out = String::new();
        render_gauge(&mut out, "x", "X.", "app", &[]);
        assert!(out.is_empty());
        render_gauge(
            &mut out,
            "longin_data_disk_size_bytes",
            "Size.",
            "",
            &[(String::new(), 1024.0)],
        );
        assert!(
            out.ends_with("\nlongin_data_disk_size_bytes 1024\n"),
            "{out}"
        );
    }
}
