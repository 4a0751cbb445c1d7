//! The host-port pool: each replica of an application holds one port of the range
//! (`port_allocations`), a rollout's surge replica one more; ports held by other
//! programs are skipped (`blocked_ports`). Every function runs inside the caller's
//! transaction, under the application write lock.

use sqlx::{Any, Row, Transaction};

use crate::applications::ApplicationError;
use crate::{StoreError, now_ms};

/// The host ports Longin hands out, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    #[must_use]
    pub fn size(self) -> usize {
        usize::from(self.last.saturating_sub(self.first)) + 1
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self {
            first: 3100,
            last: 4000,
        }
    }
}

/// Ports of the application by replica index.
pub(crate) async fn allocations(
    tx: &mut Transaction<'_, Any>,
    app_id: &str,
) -> Result<Vec<(i64, u16)>, StoreError> {
    let rows = sqlx::query("SELECT replica_index, port FROM port_allocations WHERE application_id = $1 AND surge = 0 ORDER BY replica_index")
        .bind(app_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|row| {
            let port: i64 = row.try_get("port")?;
            let port =
                u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?;
            Ok((row.try_get("replica_index")?, port))
        })
        .collect()
}

/// Releases the ports of replicas at or beyond `replicas`, except those a container
/// still holds (the controller calls this again once it removed them).
pub(crate) async fn release_ports_beyond(
    conn: &mut sqlx::AnyConnection,
    app_id: &str,
    replicas: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM port_allocations WHERE application_id = $1 AND replica_index >= $2
         AND port NOT IN (SELECT host_port FROM containers WHERE application_id = $1 AND host_port IS NOT NULL)",
    )
    .bind(app_id)
    .bind(replicas)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Gives replica indices `wanted` of the application ports from the pool (as surge
/// ports when `surge`); returns them in order.
pub(crate) async fn allocate(
    tx: &mut Transaction<'_, Any>,
    app_id: &str,
    wanted: &[i64],
    range: PortRange,
    surge: bool,
) -> Result<Vec<u16>, ApplicationError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let free: Vec<i64> = sqlx::query_scalar(
        "WITH RECURSIVE candidates(port) AS (
             SELECT CAST($1 AS BIGINT)
             UNION ALL SELECT port + 1 FROM candidates WHERE port < CAST($2 AS BIGINT))
         SELECT port FROM candidates WHERE port NOT IN (SELECT port FROM port_allocations)
             AND port NOT IN (SELECT port FROM blocked_ports WHERE until_ms > $4)
         ORDER BY port LIMIT $3",
    )
    .bind(i64::from(range.first))
    .bind(i64::from(range.last))
    .bind(i64::try_from(wanted.len()).unwrap_or(i64::MAX))
    .bind(now_ms())
    .fetch_all(&mut **tx)
    .await?;
    if free.len() < wanted.len() {
        return Err(ApplicationError::PoolExhausted {
            needed: wanted.len(),
            free: free.len(),
            first: range.first,
            last: range.last,
        });
    }
    let now = now_ms();
    let mut given = Vec::with_capacity(wanted.len());
    for (index, port) in wanted.iter().zip(free) {
        sqlx::query("INSERT INTO port_allocations (port, application_id, replica_index, allocated_at, surge) VALUES ($1, $2, $3, $4, $5)")
            .bind(port)
            .bind(app_id)
            .bind(index)
            .bind(now)
            .bind(i64::from(surge))
            .execute(&mut **tx)
            .await?;
        given.push(u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?);
    }
    Ok(given)
}

/// Makes the application hold exactly one port per desired replica: allocates the
/// missing ones and releases those of replicas beyond the count, unless a container
/// still holds them (the controller releases those once it removed the container).
/// Returns the desired replicas' ports in replica order.
pub(crate) async fn fit_ports(
    tx: &mut Transaction<'_, Any>,
    app_id: &str,
    replicas: u32,
    range: PortRange,
) -> Result<Vec<u16>, ApplicationError> {
    let replicas = i64::from(replicas);
    let held = allocations(tx, app_id).await?;
    let missing: Vec<i64> = (0..replicas)
        .filter(|i| !held.iter().any(|(r, _)| r == i))
        .collect();
    allocate(tx, app_id, &missing, range, false).await?;
    release_ports_beyond(tx, app_id, replicas).await?;
    Ok(allocations(tx, app_id)
        .await?
        .into_iter()
        .filter(|(r, _)| *r < replicas)
        .map(|(_, port)| port)
        .collect())
}
