//! Refresh-token sessions: opaque tokens stored only as hashes, grouped in families.
//!
//! A family is one sign-in. Each refresh spends the presented token and adds a new one
//! to its family (rotation). Presenting a token that was already spent means it was
//! stolen or replayed, so the whole family is revoked, the newest token included (the
//! OAuth 2.0 Security BCP's refresh-token reuse detection).
//!
//! Two backends: the database (default) and Redis (when `REDIS_URL` is set, so several
//! API processes share sessions without loading the database).

mod redis_store;
mod sql_store;

pub use redis_store::RedisRefreshTokens;
pub use sql_store::SqlRefreshTokens;

use async_trait::async_trait;

use crate::StoreError;

/// A new token to remember.
#[derive(Debug, Clone)]
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub expires_at: i64,
}

/// The outcome of spending a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spend {
    /// The token was live and is now spent; issue its successor in `family_id`.
    Spent { user_id: String, family_id: String },
    /// The token had been spent before: its family is now revoked.
    Reused { family_id: String },
    /// Unknown, expired or revoked.
    Invalid,
}

/// Where refresh tokens live.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync + std::fmt::Debug {
    /// Remembers a new token.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if its family has been revoked meanwhile (a rotation
    /// racing a reuse), so no token outlives its revoked family.
    async fn insert(&self, token: &NewRefreshToken<'_>) -> Result<(), StoreError>;

    /// Spends a token atomically: of two concurrent spends of one token, one gets
    /// [`Spend::Spent`] and the other [`Spend::Reused`].
    ///
    /// # Errors
    /// Only backend failures.
    async fn spend(&self, token_hash: &str, now_ms: i64) -> Result<Spend, StoreError>;

    /// Revokes the family the token belongs to (sign-out). Unknown tokens are ignored.
    ///
    /// # Errors
    /// Only backend failures.
    async fn revoke_family_of(&self, token_hash: &str) -> Result<(), StoreError>;

    /// Revokes every session of a user (the account was disabled).
    ///
    /// # Errors
    /// Only backend failures.
    async fn revoke_user(&self, user_id: &str) -> Result<(), StoreError>;

    /// Forgets tokens that expired before `now_ms`; returns how many.
    ///
    /// # Errors
    /// Only backend failures.
    async fn prune_expired(&self, now_ms: i64) -> Result<u64, StoreError>;
}
