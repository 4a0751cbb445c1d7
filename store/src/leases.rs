//! Leases for leader election: a row per lease name, taken with one atomic upsert that
//! succeeds only for the current holder or when the lease has expired. The same SQL
//! works on SQLite and PostgreSQL (`ON CONFLICT … DO UPDATE … WHERE`).

use std::time::Duration;

use sqlx::Row;

use crate::{Store, StoreError, now_ms};

/// Who holds a lease and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

impl Store {
    /// Takes or renews lease `name` for `holder` for `ttl`; returns whether `holder`
    /// holds it now. Atomic: of several contenders for an expired lease, one wins.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let expires = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at, renewed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, renewed_at = excluded.renewed_at
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(expires)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes lease `name` for `holder` for `ttl` whoever holds it: for a process that
    /// knows no other can be acting (it holds the exclusive lock of the data dir of
    /// its SQLite store), so a restart after a crash need not wait out its own dead
    /// predecessor's lease.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let expires = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        sqlx::query(
            "INSERT INTO leases (name, holder, expires_at, renewed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, renewed_at = excluded.renewed_at",
        )
        .bind(name)
        .bind(holder)
        .bind(expires)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives the lease up at once (a clean shutdown), if `holder` has it.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether someone holds lease `name` now (it exists and has not expired).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn lease_held(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .lease(name)
            .await?
            .is_some_and(|l| l.expires_at > now_ms()))
    }

    /// The lease's current holder, if any.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(Lease {
                holder: r.try_get("holder")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }
}
