//! The request audit log: every API request becomes an `api_logs` row, written off the
//! request path in batches. Also records the route-labelled request metrics.
//!
//! A request only queues its record (a bounded channel, never awaited); a writer task
//! flushes the queue every interval. If the queue is full the record is dropped and
//! counted, so a slow database never slows requests.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use longin_store::Store;
use longin_store::api_logs::ApiLogEntry;

/// Records waiting to be written; beyond this, new ones are dropped.
const QUEUE_CAPACITY: usize = 10_000;
/// Records per write.
const BATCH: usize = 1_000;

/// Queues request records for the writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<ApiLogEntry>,
}

/// The writer's end of the queue.
#[derive(Debug)]
pub struct AuditWriter {
    queue: mpsc::Receiver<ApiLogEntry>,
}

impl AuditLog {
    /// A queue and the writer that drains it (start it with [`AuditWriter::run`]).
    #[must_use]
    pub fn new() -> (Self, AuditWriter) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        (Self { queue: tx }, AuditWriter { queue: rx })
    }

    fn record(&self, entry: ApiLogEntry) {
        if self.queue.try_send(entry).is_err() {
            metrics::counter!("longin_api_logs_dropped_total").increment(1);
        }
    }
}

impl AuditWriter {
    /// Writes queued records every `interval` until `cancel` fires, then writes what is
    /// left and returns.
    pub async fn run(mut self, store: Store, interval: Duration, cancel: CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            while batch.len() < BATCH {
                match self.queue.try_recv() {
                    Ok(entry) => batch.push(entry),
                    Err(_) => break,
                }
            }
            write(&store, &mut batch).await;
        }
        self.queue.close();
        while let Some(entry) = self.queue.recv().await {
            batch.push(entry);
            if batch.len() >= BATCH {
                write(&store, &mut batch).await;
            }
        }
        write(&store, &mut batch).await;
        tracing::info!("audit log writer stopped");
    }
}

async fn write(store: &Store, batch: &mut Vec<ApiLogEntry>) {
    if batch.is_empty() {
        return;
    }
    metrics::gauge!("longin_api_logs_last_flush_timestamp_seconds")
        .set(longin_store::now_ms() as f64 / 1000.0);
    let written = match store.insert_api_logs(batch).await {
        Ok(()) => batch.len(),
        // One row can sink the batch: a record of a request on an application (or by a
        // user) deleted since refers to a row that is gone. Row by row, such a row is
        // written without the reference, as the foreign key's ON DELETE SET NULL would
        // have left it.
        Err(err) => {
            tracing::debug!(error = ?err, rows = batch.len(), "api log batch refused; writing row by row");
            write_one_by_one(store, batch).await
        }
    };
    metrics::counter!("longin_api_logs_written_total").increment(written as u64);
    let dropped = batch.len() - written;
    if dropped > 0 {
        // Dropped rather than retried forever: audit rows must not pile up in memory
        // while the database is down.
        tracing::warn!(rows = dropped, "could not write api logs; dropped");
        metrics::counter!("longin_api_logs_dropped_total").increment(dropped as u64);
    }
    batch.clear();
}

/// Writes each entry alone, without its references where they are refused; returns how
/// many were written.
async fn write_one_by_one(store: &Store, batch: &[ApiLogEntry]) -> usize {
    let mut written = 0;
    for entry in batch {
        let alone = std::slice::from_ref(entry);
        let ok = match store.insert_api_logs(alone).await {
            Ok(()) => true,
            Err(_) => {
                let unreferenced = ApiLogEntry {
                    user_id: None,
                    application_id: None,
                    ..entry.clone()
                };
                store
                    .insert_api_logs(std::slice::from_ref(&unreferenced))
                    .await
                    .is_ok()
            }
        };
        written += usize::from(ok);
    }
    written
}

/// What handlers learn about a request that the audit row needs: who made it and which
/// application it concerned. Filled by the auth extractor and resource handlers.
#[derive(Debug, Clone, Default)]
pub struct RequestAudit(Arc<AuditSlots>);

#[derive(Debug, Default)]
struct AuditSlots {
    user_id: OnceLock<String>,
    application_id: OnceLock<String>,
}

impl RequestAudit {
    pub fn set_user(&self, id: &str) {
        let _ = self.0.user_id.set(id.to_owned());
    }

    pub fn set_application(&self, id: &str) {
        let _ = self.0.application_id.set(id.to_owned());
    }
}

/// A request method as a metric label and audit value: the standard methods by name,
/// anything else `OTHER`, so made-up methods cannot mint label values (each would be
/// a series kept for the life of the process).
#[must_use]
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Middleware: times the request and queues its audit record and metrics.
pub async fn record_request(
    State(audit_log): State<AuditLog>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(req.method()).to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let audit = RequestAudit::default();
    req.extensions_mut().insert(audit.clone());

    let response = next.run(req).await;

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics::histogram!(
        "longin_http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.to_string(),
    )
    .record(elapsed.as_secs_f64());
    audit_log.record(ApiLogEntry {
        method,
        route,
        status,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        user_id: audit.0.user_id.get().cloned(),
        application_id: audit.0.application_id.get().cloned(),
        created_at: longin_store::now_ms(),
    });
    response
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::method_label;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["XMETHOD1", "XMETHOD2", "get"] {
            let method = Method::from_bytes(made_up.as_bytes()).expect("token");
            assert_eq!(method_label(&method), "OTHER", "{made_up}");
        }
    }
}
