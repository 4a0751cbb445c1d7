//! The change feed: which applications were written, so the controller reconciles them
//! at once instead of at the next resync. In process (a broadcast channel); a missed
//! message only costs latency, because the controller also resyncs periodically.

use tokio::sync::broadcast;

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
