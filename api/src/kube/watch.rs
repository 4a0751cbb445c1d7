//! `?watch=true`: newline-delimited `{"type": "ADDED|MODIFIED|DELETED", "object": …}`,
//! one chunk per event, from a resourceVersion on.
//!
//! The store numbers every application write across the installation and keeps
//! tombstones of deletions (`longin_store::resource_versions`), so a watch asks it for
//! "what changed after N" whenever something may have: an in-process change, an event
//! on the bus (which carries the controller's status changes across processes), or a
//! one-second tick, which bounds the delay of a change made by another API process.
//! Changes are coalesced: an application written twice between two looks is sent
//! once, as it is now, which is what clients that list-then-watch rely on anyway.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use longin_store::applications::ApplicationRecord;
use longin_store::resource_versions::ChangesError;

use crate::context::ApiContext;

use super::GROUP_VERSION;
use super::applications::Scope;
use super::object::to_object;
use super::query::ListOptions;
use super::status::KubeError;
use super::table::table;

/// A watch without `timeoutSeconds` ends after this; kubectl and informers watch
/// again from where they were.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const MAX_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The longest a change goes unnoticed when nothing wakes the watch.
const POLL: Duration = Duration::from_secs(1);
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// Events queued for a client that reads slowly; then the watch waits for it.
const QUEUE: usize = 64;

/// Starts a watch and answers with its stream.
/// `slot` is the user's place for it, held until the watch ends.
pub(super) async fn watch(
    ctx: ApiContext,
    scope: Scope,
    options: ListOptions,
    as_table: bool,
    slot: crate::slots::Slot,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    // Subscribed before the first read, so nothing falls between the read and them.
    let bus = ctx.bus.subscribe();
    let changes = ctx.store.changes().subscribe();
    let mut watcher = Watcher {
        ctx,
        scope,
        options,
        as_table,
        columns_sent: false,
        tx,
    };
    tokio::spawn(async move {
        metrics::gauge!("longin_kube_watches").increment(1.0);
        let ended = watcher.run(bus, changes).await;
        drop(slot);
        metrics::gauge!("longin_kube_watches").decrement(1.0);
        tracing::debug!(?ended, "kubernetes watch ended");
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    }));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

struct Watcher {
    ctx: ApiContext,
    scope: Scope,
    options: ListOptions,
    as_table: bool,
    columns_sent: bool,
    tx: mpsc::Sender<Bytes>,
}

/// Why a watch ended.
#[derive(Debug)]
enum Ended {
    ClientGone,
    TimedOut,
    Expired,
    StoreFailed,
}

impl Watcher {
    async fn run(
        &mut self,
        mut bus: broadcast::Receiver<std::sync::Arc<longin_store::bus::Event>>,
        mut changes: broadcast::Receiver<String>,
    ) -> Ended {
        let timeout = self
            .options
            .timeout
            .unwrap_or(DEFAULT_TIMEOUT)
            .min(MAX_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = match self.options.resource_version {
            Some(version) => version,
            None => match self.send_current().await {
                Ok(version) => version,
                Err(ended) => return ended,
            },
        };
        let mut tick = tokio::time::interval(POLL);
        let mut bookmark = tokio::time::interval(BOOKMARK_EVERY);
        bookmark.reset();
        // A closed channel answers at once forever: stop listening to it.
        let (mut bus_open, mut changes_open) = (true, true);
        loop {
            match self.send_changes(last).await {
                Ok(through) => last = through,
                Err(ended) => return ended,
            }
            tokio::select! {
                () = self.tx.closed() => return Ended::ClientGone,
                () = tokio::time::sleep_until(deadline) => return Ended::TimedOut,
                got = bus.recv(), if bus_open => {
                    bus_open = !matches!(got, Err(broadcast::error::RecvError::Closed));
                    // Metrics cycles and build logs change no object, and another
                    // owner's status is not this watch's: no look for them. (A lag
                    // may have dropped a status: look.)
                    if let Ok(event) = &got
                        && !self.concerns(event)
                    {
                        continue;
                    }
                }
                got = changes.recv(), if changes_open => {
                    changes_open = !matches!(got, Err(broadcast::error::RecvError::Closed));
                }
                _ = tick.tick() => {}
                _ = bookmark.tick(), if self.options.bookmarks => {
                    let event = json!({"type": "BOOKMARK", "object": {
                        "kind": "Application", "apiVersion": GROUP_VERSION,
                        "metadata": {"resourceVersion": last.to_string()},
                    }});
                    if !self.send(&event).await {
                        return Ended::ClientGone;
                    }
                }
            }
        }
    }

    /// The synthetic ADDED events of a watch from no version: what exists now.
    async fn send_current(&mut self) -> Result<i64, Ended> {
        let version = self
            .ctx
            .store
            .resource_version()
            .await
            .map_err(|err| self.failed(&err))?;
        let records = self
            .ctx
            .store
            .list_applications(self.scope.owner_id())
            .await
            .map_err(|err| self.failed(&err))?;
        for record in &records {
            if self.selected(record) && !self.send_event("ADDED", record).await {
                return Err(Ended::ClientGone);
            }
        }
        Ok(version)
    }

    async fn send_changes(&mut self, after: i64) -> Result<i64, Ended> {
        let changes = match self
            .ctx
            .store
            .changes_since(after, self.scope.owner_id())
            .await
        {
            Ok(changes) => changes,
            Err(ChangesError::Expired { asked, oldest }) => {
                let status =
                    KubeError::expired(format!("too old resource version: {asked} ({oldest})"))
                        .to_status();
                let _ = self.send(&json!({"type": "ERROR", "object": status})).await;
                return Err(Ended::Expired);
            }
            Err(ChangesError::Store(err)) => return Err(self.failed(&err)),
        };
        // In version order across writes and deletions.
        let mut events: Vec<(i64, &'static str, &ApplicationRecord)> = changes
            .written
            .iter()
            .map(|w| {
                let kind = if w.created { "ADDED" } else { "MODIFIED" };
                (w.record.resource_version, kind, &w.record)
            })
            .chain(
                changes
                    .deleted
                    .iter()
                    .map(|r| (r.resource_version, "DELETED", r)),
            )
            .collect();
        events.sort_by_key(|(version, _, _)| *version);
        for (_, kind, record) in events {
            if self.selected(record) && !self.send_event(kind, record).await {
                return Err(Ended::ClientGone);
            }
        }
        Ok(changes.through)
    }

    /// Whether a bus event may have changed an object this watch shows.
    fn concerns(&self, event: &longin_store::bus::Event) -> bool {
        match event {
            longin_store::bus::Event::Status { app, .. } => self
                .scope
                .owner_id()
                .is_none_or(|owner| owner == app.owner_id),
            _ => false,
        }
    }

    fn selected(&self, record: &ApplicationRecord) -> bool {
        self.options.labels.matches(&record.labels)
            && self
                .options
                .fields
                .matches(&record.name, &record.owner_username)
    }

    async fn send_event(&mut self, kind: &str, record: &ApplicationRecord) -> bool {
        let object = if self.as_table {
            let t = table(
                &[record],
                self.options.include,
                Some(record.resource_version),
                !self.columns_sent,
            );
            self.columns_sent = true;
            t
        } else {
            to_object(record)
        };
        metrics::counter!("longin_kube_watch_events_total", "type" => kind.to_owned()).increment(1);
        self.send(&json!({"type": kind, "object": object})).await
    }

    /// Queues one line; false once the client is gone.
    async fn send(&self, event: &Value) -> bool {
        let mut line = event.to_string().into_bytes();
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.is_ok()
    }

    /// Tells the client the store failed (if it still reads) and ends the watch.
    fn failed(&self, err: &dyn std::fmt::Display) -> Ended {
        tracing::warn!(error = %err, "a kubernetes watch could not read the store");
        let status =
            KubeError::from(crate::error::AppError::internal(anyhow::anyhow!("{err}"))).to_status();
        let mut line = json!({"type": "ERROR", "object": status})
            .to_string()
            .into_bytes();
        line.push(b'\n');
        // The last line: a full queue means a client that stopped reading anyway.
        let _ = self.tx.try_send(Bytes::from(line));
        Ended::StoreFailed
    }
}
