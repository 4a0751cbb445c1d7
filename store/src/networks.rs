//! Which subnet of the network pool each owner's bridge network uses: a slot (the
//! subnet's index in the pool), given once and kept, so an owner's network is the same
//! after any restart and no two owners ever share one.

use crate::applications::lock;
use crate::{Store, StoreError, now_ms};

/// Why an owner got no slot.
#[derive(Debug, thiserror::Error)]
pub enum NetworkSlotError {
    #[error("the network pool is full: all {slots} subnets are taken")]
    PoolFull { slots: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for NetworkSlotError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

impl Store {
    /// Gives the owner a new slot, the lowest free one below `slots` that is not in
    /// `avoid` (slots found taken by networks outside this installation).
    ///
    /// # Errors
    /// [`NetworkSlotError::PoolFull`] when no such slot is left.
    pub async fn move_owner_network(
        &self,
        owner_id: &str,
        slots: u32,
        avoid: &[u32],
    ) -> Result<u32, NetworkSlotError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        sqlx::query("DELETE FROM owner_networks WHERE owner_id = $1")
            .bind(owner_id)
            .execute(&mut *tx)
            .await?;
        let used: Vec<i64> = sqlx::query_scalar("SELECT slot FROM owner_networks")
            .fetch_all(&mut *tx)
            .await?;
        let used: std::collections::HashSet<i64> = used.into_iter().collect();
        let slot = (0..slots)
            .find(|s| !avoid.contains(s) && !used.contains(&i64::from(*s)))
            .ok_or(NetworkSlotError::PoolFull { slots })?;
        sqlx::query("INSERT INTO owner_networks (owner_id, slot, created_at) VALUES ($1, $2, $3)")
            .bind(owner_id)
            .bind(i64::from(slot))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(slot)
    }

    /// The owner's slot, given now (the lowest free one below `slots`) if it has none.
    ///
    /// # Errors
    /// [`NetworkSlotError::PoolFull`] when every slot is taken.
    pub async fn owner_network_slot(
        &self,
        owner_id: &str,
        slots: u32,
    ) -> Result<u32, NetworkSlotError> {
        let slot_of = |slot: i64| {
            u32::try_from(slot)
                .map_err(|_| StoreError::Corrupt(format!("network slot {slot}")).into())
        };
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT slot FROM owner_networks WHERE owner_id = $1")
                .bind(owner_id)
                .fetch_optional(self.pool())
                .await?;
        if let Some(slot) = existing {
            return slot_of(slot);
        }
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT slot FROM owner_networks WHERE owner_id = $1")
                .bind(owner_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(slot) = existing {
            return slot_of(slot);
        }
        let free: Option<i64> = sqlx::query_scalar(
            "WITH RECURSIVE candidates(slot) AS (
                 SELECT CAST(0 AS BIGINT)
                 UNION ALL SELECT slot + 1 FROM candidates WHERE slot + 1 < CAST($1 AS BIGINT))
             SELECT slot FROM candidates WHERE slot NOT IN (SELECT slot FROM owner_networks)
             ORDER BY slot LIMIT 1",
        )
        .bind(i64::from(slots))
        .fetch_optional(&mut *tx)
        .await?;
        let slot = free.ok_or(NetworkSlotError::PoolFull { slots })?;
        sqlx::query("INSERT INTO owner_networks (owner_id, slot, created_at) VALUES ($1, $2, $3)")
            .bind(owner_id)
            .bind(slot)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        slot_of(slot)
    }
}
