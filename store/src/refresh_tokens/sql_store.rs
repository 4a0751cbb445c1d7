//! Refresh tokens in the `refresh_tokens` table.

use async_trait::async_trait;
use sqlx::Row;

use super::{NewRefreshToken, RefreshTokenStore, Spend};
use crate::{Store, StoreError};

/// Refresh tokens kept in the database.
#[derive(Debug, Clone)]
pub struct SqlRefreshTokens {
    store: Store,
}

impl SqlRefreshTokens {
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl RefreshTokenStore for SqlRefreshTokens {
    async fn insert(&self, token: &NewRefreshToken<'_>) -> Result<(), StoreError> {
        // Insert only while no token of the family is revoked: a rotation that races a
        // reuse detection must not leave a live token in a revoked family.
        let inserted = sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at, revoked)
             SELECT $1, $2, $3, $4, $5, 0
             WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $2 AND revoked = 1)",
        )
        .bind(token.token_hash)
        .bind(token.family_id)
        .bind(token.user_id)
        .bind(crate::now_ms())
        .bind(token.expires_at)
        .execute(self.store.pool())
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn spend(&self, token_hash: &str, now_ms: i64) -> Result<Spend, StoreError> {
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND revoked = 0 AND expires_at > $1
             RETURNING user_id, family_id",
        )
        .bind(now_ms)
        .bind(token_hash)
        .fetch_optional(self.store.pool())
        .await?;
        if let Some(row) = spent {
            return Ok(Spend::Spent {
                user_id: row.try_get("user_id")?,
                family_id: row.try_get("family_id")?,
            });
        }
        let previous =
            sqlx::query("SELECT family_id, used_at FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(self.store.pool())
                .await?;
        let Some(row) = previous else {
            return Ok(Spend::Invalid);
        };
        let family_id: String = row.try_get("family_id")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_none() {
            // Expired or revoked, never spent: nothing to raise the alarm about.
            return Ok(Spend::Invalid);
        }
        self.revoke_family(&family_id).await?;
        Ok(Spend::Reused { family_id })
    }

    async fn revoke_family_of(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked = 1
             WHERE family_id IN (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
        )
        .bind(token_hash)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    async fn revoke_user(&self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1")
            .bind(user_id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    async fn prune_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

impl SqlRefreshTokens {
    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1")
            .bind(family_id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}
