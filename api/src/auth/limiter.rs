//! Brute-force protection: sign-in attempts counted per account and per client in fixed
//! windows; past the limit, sign-in is refused until the window ends.
//!
//! An attempt is *reserved* (counted) atomically before the password is verified, and
//! a success takes its reservation back. Checking first and counting after the ~50 ms
//! verification let 100 concurrent guesses all through a limit of 10; a reservation
//! cannot be raced past, in memory and in Redis alike.
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

/// Counts attempts per key.
#[async_trait]
pub trait FailureCounter: Send + Sync + std::fmt::Debug {
    /// Counts one attempt of `key`, unless `key` has reached `limit`: then nothing is
    /// counted and the answer is how long until it may try again. Check and count are
    /// one atomic step.
    ///
    /// # Errors
    /// Only backend failures.
    async fn reserve(&self, key: &str, limit: Limit)
    -> Result<Option<Duration>, redis::RedisError>;

    /// Takes back one reserved attempt of `key` (one that must not count: a success,
    /// or an attempt refused by another key's limit).
    ///
    /// # Errors
    /// Only backend failures.
    async fn release(&self, key: &str) -> Result<(), redis::RedisError>;

    /// Forgets `key`'s attempts (after a success).
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

impl MemoryFailureCounter {
    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl FailureCounter for MemoryFailureCounter {
    async fn reserve(
        &self,
        key: &str,
        limit: Limit,
    ) -> Result<Option<Duration>, redis::RedisError> {
        let now = Instant::now();
        let mut windows = self.windows();
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (_, ends)| *ends > now);
        }
        let entry = windows
            .entry(key.to_owned())
            .or_insert((0, now + limit.window));
        if entry.1 <= now {
            *entry = (0, now + limit.window);
        }
        if entry.0 >= limit.max_failures {
            return Ok(Some(entry.1 - now));
        }
        entry.0 += 1;
        Ok(None)
    }

    async fn release(&self, key: &str) -> Result<(), redis::RedisError> {
        if let Some(entry) = self.windows().get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), redis::RedisError> {
        self.windows().remove(key);
        Ok(())
    }
}

/// Counts in Redis: one Lua script checks and counts (`INCR` plus an expiry set by
/// the window's first attempt), so concurrent API processes cannot race past a limit.
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

/// KEYS[1] the counter, ARGV[1] the limit, ARGV[2] the window in ms. Returns -1 when
/// the attempt was counted, else the window's remaining milliseconds.
const RESERVE: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then return ttl end
  redis.call('DEL', KEYS[1])
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2], 'NX')
return -1
";

/// Decrements a counter that exists and is above zero; never creates one.
const RELEASE: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0
";

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
    async fn reserve(
        &self,
        key: &str,
        limit: Limit,
    ) -> Result<Option<Duration>, redis::RedisError> {
        let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX);
        let remaining: i64 = redis::Script::new(RESERVE)
            .key(self.key(key))
            .arg(limit.max_failures)
            .arg(window_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(u64::try_from(remaining).ok().map(Duration::from_millis))
    }

    async fn release(&self, key: &str) -> Result<(), redis::RedisError> {
        let _: i64 = redis::Script::new(RELEASE)
            .key(self.key(key))
            .invoke_async(&mut self.conn.clone())
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
    async fn key_is_refused_at_the_limit_until_its_window_ends() {
        let counter = MemoryFailureCounter::default();
        for _ in 0..3 {
            assert_eq!(
                counter.reserve("acct:bob", LIMIT).await.expect("reserve"),
                None
            );
        }
        let refused = counter.reserve("acct:bob", LIMIT).await.expect("reserve");
        assert_eq!(refused, Some(Duration::from_secs(60)));
        assert_eq!(
            counter.reserve("acct:alice", LIMIT).await.expect("reserve"),
            None
        );

        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            counter.reserve("acct:bob", LIMIT).await.expect("reserve"),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_attempt_does_not_count() {
        let counter = MemoryFailureCounter::default();
        for _ in 0..10 {
            assert_eq!(counter.reserve("k", LIMIT).await.expect("reserve"), None);
            counter.release("k").await.expect("release");
        }
        counter.release("absent").await.expect("release of nothing");
        assert_eq!(
            counter.reserve("absent", LIMIT).await.expect("reserve"),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reset_forgets_attempts() {
        let counter = MemoryFailureCounter::default();
        for _ in 0..3 {
            counter.reserve("k", LIMIT).await.expect("reserve");
        }
        counter.reset("k").await.expect("reset");
        assert_eq!(counter.reserve("k", LIMIT).await.expect("reserve"), None);
    }
}
