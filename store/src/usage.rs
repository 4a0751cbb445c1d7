//! Resource use of the containers over time: the `metrics` table the collector fills
//! every cycle, the series charts read (downsampled here, in SQL), the latest totals
//! per application, and pruning past the retention.

use sqlx::Row;

use crate::{Store, StoreError};

/// One container's figures in one collection cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub application_id: String,
    /// The engine's id; the row links to the container's row when there is one.
    pub docker_id: String,
    /// Unix milliseconds of the cycle (the same for every row of a cycle).
    pub recorded_at: i64,
    /// Percent of one core.
    pub cpu_percent: f64,
    pub memory_bytes: i64,
    pub memory_limit_bytes: i64,
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
    pub block_read_bytes: i64,
    pub block_write_bytes: i64,
}

/// An application's totals over one step of a series (averaged over the cycles in it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsagePoint {
    /// Start of the step, Unix milliseconds.
    pub at: i64,
    /// Percent of one core, summed over the containers.
    pub cpu_percent: f64,
    pub memory_bytes: f64,
    pub memory_limit_bytes: f64,
    pub containers: f64,
    /// Cumulative counters: the highest value seen in the step.
    pub net_rx_bytes: f64,
    pub net_tx_bytes: f64,
    pub block_read_bytes: f64,
    pub block_write_bytes: f64,
}

/// An application's totals in its latest cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct AppUsage {
    pub application_id: String,
    pub recorded_at: i64,
    pub cpu_percent: f64,
    pub memory_bytes: f64,
    pub memory_limit_bytes: f64,
    pub containers: i64,
}

impl Store {
    /// Saves one cycle's rows in one transaction.
    ///
    /// # Errors
    /// The database failed; nothing of the cycle is saved.
    pub async fn record_usage(&self, rows: &[UsageRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        for r in rows {
            // Only applications that still exist: one deleted mid-cycle is skipped
            // rather than failing the whole cycle on the foreign key.
            sqlx::query(
                "INSERT INTO metrics (application_id, container_id, recorded_at, cpu_percent, memory_bytes,
                   memory_limit_bytes, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes)
                 SELECT $1, (SELECT id FROM containers WHERE docker_id = $2), $3, $4, $5, $6, $7, $8, $9, $10
                 WHERE EXISTS (SELECT 1 FROM applications WHERE id = $1)",
            )
            .bind(&r.application_id)
            .bind(&r.docker_id)
            .bind(r.recorded_at)
            .bind(r.cpu_percent)
            .bind(r.memory_bytes)
            .bind(r.memory_limit_bytes)
            .bind(r.net_rx_bytes)
            .bind(r.net_tx_bytes)
            .bind(r.block_read_bytes)
            .bind(r.block_write_bytes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An application's totals from `since` to `until` (Unix ms, inclusive), one point
    /// per `step_ms`, averaged over the cycles in each step.
    ///
    /// # Errors
    /// The database failed.
    pub async fn usage_series(
        &self,
        application_id: &str,
        since: i64,
        until: i64,
        step_ms: i64,
    ) -> Result<Vec<UsagePoint>, StoreError> {
        // Sums per cycle first (a cycle is one `recorded_at`), then averages per step.
        // Every aggregate is cast: PostgreSQL sums BIGINT into NUMERIC.
        let rows = sqlx::query(
            "SELECT bucket,
                    CAST(AVG(cpu) AS DOUBLE PRECISION) AS cpu,
                    CAST(AVG(mem) AS DOUBLE PRECISION) AS mem,
                    CAST(AVG(mem_limit) AS DOUBLE PRECISION) AS mem_limit,
                    CAST(AVG(n) AS DOUBLE PRECISION) AS n,
                    CAST(MAX(rx) AS DOUBLE PRECISION) AS rx,
                    CAST(MAX(tx) AS DOUBLE PRECISION) AS tx,
                    CAST(MAX(br) AS DOUBLE PRECISION) AS br,
                    CAST(MAX(bw) AS DOUBLE PRECISION) AS bw
             FROM (SELECT recorded_at - (recorded_at % $4) AS bucket,
                          SUM(cpu_percent) AS cpu, SUM(memory_bytes) AS mem,
                          SUM(memory_limit_bytes) AS mem_limit, COUNT(*) AS n,
                          SUM(net_rx_bytes) AS rx, SUM(net_tx_bytes) AS tx,
                          SUM(block_read_bytes) AS br, SUM(block_write_bytes) AS bw
                   FROM metrics
                   WHERE application_id = $1 AND recorded_at >= $2 AND recorded_at <= $3
                   GROUP BY recorded_at) AS cycles
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(application_id)
        .bind(since)
        .bind(until)
        .bind(step_ms.max(1))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsagePoint {
                    at: r.try_get("bucket")?,
                    cpu_percent: r.try_get("cpu")?,
                    memory_bytes: r.try_get("mem")?,
                    memory_limit_bytes: r.try_get("mem_limit")?,
                    containers: r.try_get("n")?,
                    net_rx_bytes: r.try_get("rx")?,
                    net_tx_bytes: r.try_get("tx")?,
                    block_read_bytes: r.try_get("br")?,
                    block_write_bytes: r.try_get("bw")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Every application's totals in its latest cycle, for cycles after `fresh_after`
    /// (Unix ms): an application with no recent cycle has no running containers.
    ///
    /// # Errors
    /// The database failed.
    pub async fn latest_usage(&self, fresh_after: i64) -> Result<Vec<AppUsage>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.application_id, m.recorded_at,
                    CAST(SUM(m.cpu_percent) AS DOUBLE PRECISION) AS cpu,
                    CAST(SUM(m.memory_bytes) AS DOUBLE PRECISION) AS mem,
                    CAST(SUM(m.memory_limit_bytes) AS DOUBLE PRECISION) AS mem_limit,
                    COUNT(*) AS n
             FROM metrics m
             JOIN (SELECT application_id, MAX(recorded_at) AS latest FROM metrics
                   WHERE recorded_at > $1 GROUP BY application_id) l
               ON l.application_id = m.application_id AND l.latest = m.recorded_at
             GROUP BY m.application_id, m.recorded_at",
        )
        .bind(fresh_after)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AppUsage {
                    application_id: r.try_get("application_id")?,
                    recorded_at: r.try_get("recorded_at")?,
                    cpu_percent: r.try_get("cpu")?,
                    memory_bytes: r.try_get("mem")?,
                    memory_limit_bytes: r.try_get("mem_limit")?,
                    containers: r.try_get("n")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Deletes rows recorded before `before` (Unix ms); returns how many.
    ///
    /// # Errors
    /// The database failed.
    pub async fn prune_usage(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM metrics WHERE recorded_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
