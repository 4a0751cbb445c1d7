//! The event bus: what live views follow — metrics cycles, status changes, reconcile
//! errors. In one process it is a broadcast channel; with Redis every process publishes
//! to one pub/sub channel and delivers what it hears to its own subscribers, so several
//! `longin api` processes serve the same streams as the controller that produces them.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Events a subscriber may fall behind by before it is told it lagged.
const CAPACITY: usize = 4096;

/// One container's figures in a metrics cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerMetrics {
    pub container_id: String,
    pub replica: u32,
    /// Percent of one core.
    pub cpu_percent: f64,
    /// Percent of what the container may use.
    pub cpu_percent_of_limit: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
}

/// An application's totals in a metrics cycle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregate {
    /// Percent of one core, summed over the containers.
    pub total_cpu: f64,
    /// Bytes, summed over the containers.
    pub total_memory: u64,
    pub container_count: u32,
}

/// Whose application an event is about: subscribers check ownership on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRef {
    pub app_id: String,
    pub owner_id: String,
    pub name: String,
}

/// Something live views show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Event {
    /// One collection cycle of an application.
    #[serde(rename_all = "camelCase")]
    Metrics {
        app: AppRef,
        containers: Vec<ContainerMetrics>,
        aggregated: Aggregate,
        /// RFC 3339.
        timestamp: String,
    },
    /// The controller wrote a new status.
    #[serde(rename_all = "camelCase")]
    Status {
        app: AppRef,
        status: longin_crds::application::ApplicationStatus,
    },
    /// New lines of a build's log (a batch per second), and whether it ended.
    /// `first` is the number of lines the log had before these: a reader that
    /// started from the stored log (which held `first + k` lines) skips `k`.
    #[serde(rename_all = "camelCase")]
    BuildLog {
        app_id: String,
        revision: i64,
        first: usize,
        lines: Vec<String>,
        done: bool,
    },
    /// A reconcile failed (admins see these).
    #[serde(rename_all = "camelCase")]
    ReconcileError {
        app_id: String,
        message: String,
        timestamp: String,
    },
}

#[derive(Clone)]
struct RedisSide {
    conn: redis::aio::ConnectionManager,
    client: redis::Client,
    channel: String,
}

/// Publishes events and hands them to subscribers.
#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<Arc<Event>>,
    redis: Option<RedisSide>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("subscribers", &self.local.receiver_count())
            .field("redis_channel", &self.redis.as_ref().map(|r| &r.channel))
            .finish()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Self::in_process()
    }
}

impl Bus {
    /// A bus for this process only.
    #[must_use]
    pub fn in_process() -> Self {
        Self {
            local: broadcast::channel(CAPACITY).0,
            redis: None,
        }
    }

    /// A bus shared through Redis pub/sub on `<prefix>events`. Run
    /// [`Bus::run_redis_listener`] to receive.
    #[must_use]
    pub fn with_redis(
        client: redis::Client,
        conn: redis::aio::ConnectionManager,
        prefix: &str,
    ) -> Self {
        Self {
            local: broadcast::channel(CAPACITY).0,
            redis: Some(RedisSide {
                conn,
                client,
                channel: format!("{prefix}events"),
            }),
        }
    }

    /// Every event published from now on (by any process, with Redis).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.local.subscribe()
    }

    /// Publishes `event`. Never fails the caller: with Redis down, the event reaches
    /// this process's subscribers only, and the failure is logged and counted.
    pub async fn publish(&self, event: Event) {
        if let Some(redis) = &self.redis {
            let payload = match serde_json::to_string(&event) {
                Ok(payload) => payload,
                Err(err) => {
                    tracing::error!(error = %err, "cannot encode an event");
                    return;
                }
            };
            let mut conn = redis.conn.clone();
            match conn.publish::<_, _, i64>(&redis.channel, payload).await {
                Ok(_) => return,
                Err(err) => {
                    metrics::counter!("longin_bus_publish_failures_total").increment(1);
                    tracing::warn!(error = %err, "cannot publish to Redis; delivering locally only");
                }
            }
        }
        // No subscriber is not an error.
        let _ = self.local.send(Arc::new(event));
    }

    /// With Redis: subscribes to the channel and delivers what arrives to this
    /// process's subscribers, reconnecting with backoff, until `cancel`. Without Redis
    /// it returns at once.
    pub async fn run_redis_listener(&self, cancel: CancellationToken) {
        let Some(redis) = &self.redis else { return };
        let mut wait = Duration::from_millis(200);
        loop {
            match redis.client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&redis.channel).await {
                    Ok(()) => {
                        tracing::info!(channel = %redis.channel, "following the event bus in Redis");
                        wait = Duration::from_millis(200);
                        let mut messages = pubsub.on_message();
                        loop {
                            tokio::select! {
                                () = cancel.cancelled() => return,
                                msg = messages.next() => match msg {
                                    Some(msg) => self.deliver(msg.get_payload_bytes()),
                                    None => break,
                                },
                            }
                        }
                        tracing::warn!("Redis event subscription ended; reconnecting");
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot subscribe to Redis events"),
                },
                Err(err) => tracing::warn!(error = %err, "cannot connect to Redis for events"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    fn deliver(&self, payload: &[u8]) {
        match serde_json::from_slice::<Event>(payload) {
            Ok(event) => {
                let _ = self.local.send(Arc::new(event));
            }
            Err(err) => tracing::warn!(error = %err, "ignoring an undecodable event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_subscribers_get_what_is_published_after_they_subscribe() {
        let bus = Bus::in_process();
        bus.publish(Event::ReconcileError {
            app_id: "early".into(),
            message: "nobody listens".into(),
            timestamp: "t".into(),
        })
        .await;
        let mut rx = bus.subscribe();
        let event = Event::ReconcileError {
            app_id: "a".into(),
            message: "boom".into(),
            timestamp: "t".into(),
        };
        bus.publish(event.clone()).await;
        assert_eq!(*rx.recv().await.unwrap(), event);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn events_survive_the_wire() {
        let event = Event::Metrics {
            app: AppRef {
                app_id: "id".into(),
                owner_id: "o".into(),
                name: "web".into(),
            },
            containers: vec![],
            aggregated: Aggregate {
                total_cpu: 12.5,
                total_memory: 1024,
                container_count: 0,
            },
            timestamp: "2026-11-26T00:00:00Z".into(),
        };
        let bus = Bus::in_process();
        let mut rx = bus.subscribe();
        bus.deliver(&serde_json::to_vec(&event).unwrap());
        assert_eq!(*rx.try_recv().unwrap(), event);
        bus.deliver(b"not json");
        assert!(rx.try_recv().is_err());
    }
}
