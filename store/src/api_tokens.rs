//! Personal API tokens: long-lived bearer tokens for kubectl and CI, which cannot
//! refresh a session. Only a token's SHA-256 hash is stored (the API makes and hashes
//! the token and shows it once); tokens are named per user, so a user can tell them
//! apart and revoke one.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms};

/// Tokens one user may hold: plenty for every machine and pipeline, few enough that a
/// script creating them in a loop is stopped early.
pub const MAX_TOKENS_PER_USER: i64 = 50;

/// How old `last_used_at` must be before a request writes it again: a busy token costs
/// one write a minute, not one per request.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

/// The declared name of the `(user_id, name)` constraint (see `error.rs`).
const NAME_KEY: &str = "api_tokens_user_name_key";

/// A token as stored: never its value, which only its creator saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created_at: i64,
    /// `None`: never expires.
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiTokenRecord {
    /// Whether the token no longer grants anything at `now_ms`.
    #[must_use]
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_ms)
    }

    /// Whether a use at `now_ms` should be written (see [`TOUCH_INTERVAL_MS`]).
    #[must_use]
    pub fn touch_due(&self, now_ms: i64) -> bool {
        self.last_used_at
            .is_none_or(|at| at < touch_threshold(now_ms))
    }
}

/// Uses recorded before this are stale enough to write again.
fn touch_threshold(now_ms: i64) -> i64 {
    now_ms.saturating_sub(TOUCH_INTERVAL_MS)
}

/// A token to store.
#[derive(Debug, Clone, Copy)]
pub struct NewApiToken<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    /// Hex SHA-256 of the token.
    pub token_hash: &'a str,
    /// Milliseconds from its creation until it expires; `None`: never.
    pub lifetime_ms: Option<i64>,
}

/// Why a token was not created.
#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    #[error("a token named {name} already exists")]
    DuplicateName { name: String },
    #[error("at most {limit} tokens per user; revoke one first")]
    TooMany { limit: i64 },
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ApiTokenError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

const COLUMNS: &str = "id, user_id, name, created_at, expires_at, last_used_at";

fn from_row(row: &AnyRow) -> Result<ApiTokenRecord, StoreError> {
    Ok(ApiTokenRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

impl Store {
    /// Stores a new token.
    ///
    /// # Errors
    /// The user already has a token of that name, or [`MAX_TOKENS_PER_USER`] tokens;
    /// the user does not exist; database failures.
    pub async fn create_api_token(
        &self,
        new: &NewApiToken<'_>,
    ) -> Result<ApiTokenRecord, ApiTokenError> {
        let created_at = now_ms();
        let record = ApiTokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: new.user_id.to_owned(),
            name: new.name.to_owned(),
            created_at,
            expires_at: new.lifetime_ms.map(|ms| created_at.saturating_add(ms)),
            last_used_at: None,
        };
        let mut tx = self.pool().begin().await?;
        // A write to the user's row first, changing nothing: on PostgreSQL it locks
        // the row, on SQLite it makes the transaction the writer. Two creations for
        // one user then take turns, so neither can count 49 while the other inserts
        // the 50th.
        let user = sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
            .bind(new.user_id)
            .execute(&mut *tx)
            .await?;
        if user.rows_affected() == 0 {
            return Err(ApiTokenError::UnknownUser);
        }
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5, $6
             WHERE (SELECT COUNT(*) FROM api_tokens WHERE user_id = $2) < $7",
        )
        .bind(&record.id)
        .bind(&record.user_id)
        .bind(&record.name)
        .bind(new.token_hash)
        .bind(record.created_at)
        .bind(record.expires_at)
        .bind(MAX_TOKENS_PER_USER)
        .execute(&mut *tx)
        .await
        .map_err(|err| match StoreError::from(err) {
            StoreError::Conflict { constraint } if constraint == NAME_KEY => {
                ApiTokenError::DuplicateName {
                    name: new.name.to_owned(),
                }
            }
            other => ApiTokenError::Store(other),
        })?;
        if inserted.rows_affected() == 0 {
            return Err(ApiTokenError::TooMany {
                limit: MAX_TOKENS_PER_USER,
            });
        }
        tx.commit().await?;
        Ok(record)
    }

    /// The user's tokens, by name.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn api_tokens_of(&self, user_id: &str) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        let mut tokens = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        // Sorted here rather than by ORDER BY: PostgreSQL's collation may order `-`
        // unlike SQLite's bytewise one, and both stores must answer alike.
        tokens.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tokens)
    }

    /// Deletes the user's token `name`; whether there was one. The token is refused
    /// from the next request on.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn revoke_api_token(&self, user_id: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The token stored under `token_hash`, expired or not (the caller decides).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        self.find_api_token("token_hash", token_hash).await
    }

    /// Token `id`, expired or not; `None` once revoked.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn api_token(&self, id: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        self.find_api_token("id", id).await
    }

    async fn find_api_token(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE {column} = $1"
        ))
        .bind(value)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records a use of token `id` at `now_ms`, unless one within the last
    /// [`TOUCH_INTERVAL_MS`] already was (by this or another process).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn touch_api_token(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now_ms)
        .bind(id)
        .bind(touch_threshold(now_ms))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: Option<i64>, last_used_at: Option<i64>) -> ApiTokenRecord {
        ApiTokenRecord {
            id: "id".to_owned(),
            user_id: "user".to_owned(),
            name: "ci".to_owned(),
            created_at: 0,
            expires_at,
            last_used_at,
        }
    }

    #[test]
    fn a_token_expires_at_its_expiry_and_one_without_never_does() {
        assert!(!token(Some(1_000), None).is_expired(999));
        assert!(token(Some(1_000), None).is_expired(1_000));
        assert!(!token(None, None).is_expired(i64::MAX));
    }

    #[test]
    fn a_use_is_written_once_a_minute_at_most() {
        let now = 10 * TOUCH_INTERVAL_MS;
        assert!(token(None, None).touch_due(now), "never used");
        assert!(!token(None, Some(now - 1_000)).touch_due(now));
        assert!(!token(None, Some(now - TOUCH_INTERVAL_MS)).touch_due(now));
        assert!(token(None, Some(now - TOUCH_INTERVAL_MS - 1)).touch_due(now));
        assert!(
            !token(None, Some(now + 5_000)).touch_due(now),
            "clock went back"
        );
    }

    #[test]
    fn the_threshold_does_not_overflow_near_the_start_of_time() {
        assert_eq!(touch_threshold(i64::MIN), i64::MIN);
    }
}
