//! The change feed: which applications were written, so the controller reconciles them
//! at once instead of at the next resync. In process it is a broadcast channel; on
//! PostgreSQL every change is also sent with NOTIFY, and a controller in another
//! process (`longin api` + `longin controller`) forwards what it hears with LISTEN into
//! its own feed. A missed message only costs latency: the controller also resyncs.

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{Backend, Store};

/// The PostgreSQL NOTIFY channel of application changes; the payload is the app's uid.
pub const CHANNEL: &str = "longin_applications";

/// Capacity of the feed; a slow subscriber that falls further behind is told it lagged
/// and resyncs.
const CAPACITY: usize = 4096;

/// Publishes application ids after their writes commit.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    tx: broadcast::Sender<String>,
}

impl ChangeFeed {
    #[must_use]
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    /// Announces that application `id` changed. Nobody listening is fine.
    pub fn publish(&self, id: &str) {
        let _ = self.tx.send(id.to_owned());
    }

    /// A new subscription, receiving changes from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// Announces a committed change of application `id`: in process, and to other
    /// processes through NOTIFY on PostgreSQL. Failing to notify is logged, not fatal.
    pub async fn announce(&self, id: &str) {
        self.changes().publish(id);
        if self.backend() == Backend::Postgres
            && let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(id)
                .execute(self.pool())
                .await
        {
            tracing::warn!(error = %err, "could not NOTIFY an application change");
        }
    }

    /// On PostgreSQL, LISTENs for changes made by other processes and republishes them
    /// on this store's feed until `cancel` fires, reconnecting with backoff. Returns at
    /// once on SQLite, whose single process already shares the in-process feed.
    pub async fn forward_remote_changes(&self, cancel: CancellationToken) {
        if self.backend() != Backend::Postgres {
            return;
        }
        crate::listen::listen(
            self.url(),
            CHANNEL,
            &cancel,
            |id| self.changes().publish(id),
            |_| {},
        )
        .await;
    }
}
