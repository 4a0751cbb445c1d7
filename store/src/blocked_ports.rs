//! Host ports of the pool that something other than Longin holds: a replica whose port
//! the engine cannot bind is moved to another port at once, and the held one is set
//! aside (skipped by allocation) for a while, then looked at again.

use std::time::Duration;

use crate::applications::{ApplicationError, PortRange, allocate, lock};
use crate::{Store, StoreError, now_ms};

/// A port set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedPort {
    pub port: u16,
    pub reason: String,
}

impl Store {
    /// Sets `port` aside for `hold` with `reason`, and gives `replica` of the
    /// application (which held `port`) another port from the pool, which it returns.
    /// A port the application no longer holds (a concurrent reconcile moved it
    /// already) is set aside all the same, and the replica's current port returned.
    ///
    /// # Errors
    /// [`ApplicationError::PoolExhausted`] when no other port is free.
    pub async fn move_off_port(
        &self,
        app_id: &str,
        replica: u32,
        port: u16,
        reason: &str,
        hold: Duration,
        range: PortRange,
    ) -> Result<u16, ApplicationError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let until = now_ms().saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX));
        sqlx::query(
            "INSERT INTO blocked_ports (port, reason, until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (port) DO UPDATE SET reason = excluded.reason, until_ms = excluded.until_ms",
        )
        .bind(i64::from(port))
        .bind(reason)
        .bind(until)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM port_allocations WHERE port = $1 AND application_id = $2 AND replica_index = $3 AND surge = 0",
        )
        .bind(i64::from(port))
        .bind(app_id)
        .bind(i64::from(replica))
        .execute(&mut *tx)
        .await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT port FROM port_allocations WHERE application_id = $1 AND replica_index = $2 AND surge = 0",
        )
        .bind(app_id)
        .bind(i64::from(replica))
        .fetch_optional(&mut *tx)
        .await?;
        let new_port = match current {
            Some(port) => {
                u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?
            }
            None => allocate(&mut tx, app_id, &[i64::from(replica)], range, false).await?[0],
        };
        tx.commit().await?;
        Ok(new_port)
    }

    /// The ports set aside now.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn blocked_ports(&self) -> Result<Vec<BlockedPort>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT port, reason FROM blocked_ports WHERE until_ms > $1 ORDER BY port",
        )
        .bind(now_ms())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(port, reason)| {
                Some(BlockedPort {
                    port: u16::try_from(port).ok()?,
                    reason,
                })
            })
            .collect())
    }
}
