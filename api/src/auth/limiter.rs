//! Brute-force protection: failed sign-ins counted per account and per client in fixed
//! windows; past the limit, sign-in is refused until the window ends.
//!
//! In process by default; in Redis when configured, so that several API processes
//! share the counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

/// How many failures a key may have in a window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max_failures: u32,
    pub window: Duration,
}

/// Counts failures per key.
#[async_trait]
pub trait FailureCounter: Send + Sync + std::fmt::Debug {
    /// If `key` has reached `limit`, how long until it may try again.
    ///
    /// # Errors
    /// Only backend failures.
    async fn blocked_for(
        &self,
        key: &str,
        limit: Limit,
    ) -> Result<Option<Duration>, redis::RedisError>;

    /// Counts one failure of `key`.
    ///
    /// # Errors
    /// Only backend failures.
    async fn record_failure(&self, key: &str, limit: Limit) -> Result<(), redis::RedisError>;

    /// Forgets `key`'s failures (after a success).
    ///
    /// # Errors
    /// Only backend failures.
    async fn reset(&self, key: &str) -> Result<(), redis::RedisError>;
}

/// Counts in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryFailureCounter {
    windows: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Past this many keys, expired windows are swept on the next write.
const SWEEP_AT: usize = 10_000;

#[async_trait]
impl FailureCounter for MemoryFailureCounter {
    async fn blocked_for(
        &self,
        key: &str,
        limit: Limit,
    ) -> Result<Option<Duration>, redis::RedisError> {
        let now = Instant::now();
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(windows.get(key).and_then(|&(count, ends)| {
            (ends > now && count >= limit.max_failures).then(|| ends - now)
        }))
    }

    async fn record_failure(&self, key: &str, limit: Limit) -> Result<(), redis::RedisError> {
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (_, ends)| *ends > now);
        }
        let entry = windows
            .entry(key.to_owned())
            .or_insert((0, now + limit.window));
        if entry.1 <= now {
            *entry = (0, now + limit.window);
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), redis::RedisError> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
        Ok(())
    }
}

/// Counts in Redis: `INCR` plus an expiry set by the first failure of a window.
#[derive(Clone)]
pub struct RedisFailureCounter {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisFailureCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFailureCounter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisFailureCounter {
    #[must_use]
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}loginfail:{key}", self.prefix)
    }
}

#[async_trait]
impl FailureCounter for RedisFailureCounter {
    async fn blocked_for(
        &self,
        key: &str,
        limit: Limit,
    ) -> Result<Option<Duration>, redis::RedisError> {
        let (count, ttl_ms): (Option<u32>, i64) = redis::pipe()
            .get(self.key(key))
            .pttl(self.key(key))
            .query_async(&mut self.conn.clone())
            .await?;
        let remaining = u64::try_from(ttl_ms).ok().map(Duration::from_millis);
        Ok(match (count, remaining) {
            (Some(count), Some(remaining)) if count >= limit.max_failures => Some(remaining),
            _ => None,
        })
    }

    async fn record_failure(&self, key: &str, limit: Limit) -> Result<(), redis::RedisError> {
        let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX);
        // NX: only the first failure of a window sets its end.
        let _: (i64, i64) = redis::pipe()
            .incr(self.key(key), 1)
            .cmd("PEXPIRE")
            .arg(self.key(key))
            .arg(window_ms)
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), redis::RedisError> {
        let _: i64 = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        max_failures: 3,
        window: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn key_is_blocked_at_the_limit_until_its_window_ends() {
        let counter = MemoryFailureCounter::default();
        for _ in 0..2 {
            counter
                .record_failure("acct:bob", LIMIT)
                .await
                .expect("record");
        }
        assert_eq!(
            counter.blocked_for("acct:bob", LIMIT).await.expect("check"),
            None
        );
        counter
            .record_failure("acct:bob", LIMIT)
            .await
            .expect("record");
        let blocked = counter.blocked_for("acct:bob", LIMIT).await.expect("check");
        assert_eq!(blocked, Some(Duration::from_secs(60)));
        assert_eq!(
            counter
                .blocked_for("acct:alice", LIMIT)
                .await
                .expect("check"),
            None
        );

        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            counter.blocked_for("acct:bob", LIMIT).await.expect("check"),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reset_forgets_failures() {
        let counter = MemoryFailureCounter::default();
        for _ in 0..3 {
            counter.record_failure("k", LIMIT).await.expect("record");
        }
        counter.reset("k").await.expect("reset");
        assert_eq!(counter.blocked_for("k", LIMIT).await.expect("check"), None);
    }
}
