//! Refresh tokens in Redis, for several API processes sharing sessions.
//!
//! Keys (all under a configurable prefix):
//! - `rt:{hash}`: hash {user, family, state = live|spent}, expiring with the token;
//! - `rtf:{family}:revoked`: set when the family is revoked, outliving its tokens;
//! - `rtu:{user}`: set of the user's families, to revoke them all.
//!
//! Each operation is one Lua script, so spending is atomic across processes.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::{NewRefreshToken, RefreshTokenStore, Spend};
use crate::StoreError;

const INSERT: &str = r"
local prefix, user, family, expires_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', prefix .. 'rtf:' .. family .. ':revoked') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'user', user, 'family', family, 'state', 'live')
redis.call('PEXPIREAT', KEYS[1], expires_at)
local families = prefix .. 'rtu:' .. user
redis.call('SADD', families, family)
redis.call('PEXPIREAT', families, expires_at)
return 1
";

const SPEND: &str = r"
local prefix, revoked_ttl_ms = ARGV[1], ARGV[2]
local rec = redis.call('HMGET', KEYS[1], 'user', 'family', 'state')
if not rec[1] then return {'invalid'} end
local revoked = prefix .. 'rtf:' .. rec[2] .. ':revoked'
if redis.call('EXISTS', revoked) == 1 then return {'invalid'} end
if rec[3] == 'spent' then
  redis.call('SET', revoked, '1', 'PX', revoked_ttl_ms)
  return {'reused', rec[2]}
end
redis.call('HSET', KEYS[1], 'state', 'spent')
return {'spent', rec[1], rec[2]}
";

const REVOKE_FAMILY_OF: &str = r"
local prefix, revoked_ttl_ms = ARGV[1], ARGV[2]
local family = redis.call('HGET', KEYS[1], 'family')
if family then redis.call('SET', prefix .. 'rtf:' .. family .. ':revoked', '1', 'PX', revoked_ttl_ms) end
return 1
";

const REVOKE_USER: &str = r"
local prefix, revoked_ttl_ms = ARGV[1], ARGV[2]
for _, family in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('SET', prefix .. 'rtf:' .. family .. ':revoked', '1', 'PX', revoked_ttl_ms)
end
return 1
";

/// Refresh tokens kept in Redis.
#[derive(Clone)]
pub struct RedisRefreshTokens {
    conn: ConnectionManager,
    prefix: String,
    /// How long a revocation mark is kept: at least a token's lifetime, so it outlives
    /// every token of the family.
    revoked_ttl: Duration,
}

impl std::fmt::Debug for RedisRefreshTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRefreshTokens")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRefreshTokens {
    /// Tokens under `prefix` (for example `longin:`); `token_lifetime` bounds how long
    /// a revocation must be remembered.
    #[must_use]
    pub fn new(
        conn: ConnectionManager,
        prefix: impl Into<String>,
        token_lifetime: Duration,
    ) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            revoked_ttl: token_lifetime + Duration::from_secs(60),
        }
    }

    fn token_key(&self, token_hash: &str) -> String {
        format!("{}rt:{token_hash}", self.prefix)
    }

    fn revoked_ttl_ms(&self) -> u64 {
        u64::try_from(self.revoked_ttl.as_millis()).unwrap_or(u64::MAX)
    }
}

#[async_trait]
impl RefreshTokenStore for RedisRefreshTokens {
    async fn insert(&self, token: &NewRefreshToken<'_>) -> Result<(), StoreError> {
        let inserted: i64 = Script::new(INSERT)
            .key(self.token_key(token.token_hash))
            .arg(&self.prefix)
            .arg(token.user_id)
            .arg(token.family_id)
            .arg(token.expires_at)
            .invoke_async(&mut self.conn.clone())
            .await?;
        if inserted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn spend(&self, token_hash: &str, _now_ms: i64) -> Result<Spend, StoreError> {
        // Expiry is Redis' own (PEXPIREAT), so `now_ms` is not needed here.
        let reply: Vec<String> = Script::new(SPEND)
            .key(self.token_key(token_hash))
            .arg(&self.prefix)
            .arg(self.revoked_ttl_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        match reply.as_slice() {
            [state, user_id, family_id] if state == "spent" => Ok(Spend::Spent {
                user_id: user_id.clone(),
                family_id: family_id.clone(),
            }),
            [state, family_id] if state == "reused" => Ok(Spend::Reused {
                family_id: family_id.clone(),
            }),
            [state] if state == "invalid" => Ok(Spend::Invalid),
            other => Err(StoreError::Corrupt(format!(
                "spend script replied {other:?}"
            ))),
        }
    }

    async fn revoke_family_of(&self, token_hash: &str) -> Result<(), StoreError> {
        let _: i64 = Script::new(REVOKE_FAMILY_OF)
            .key(self.token_key(token_hash))
            .arg(&self.prefix)
            .arg(self.revoked_ttl_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn revoke_user(&self, user_id: &str) -> Result<(), StoreError> {
        let _: i64 = Script::new(REVOKE_USER)
            .key(format!("{}rtu:{user_id}", self.prefix))
            .arg(&self.prefix)
            .arg(self.revoked_ttl_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn prune_expired(&self, _now_ms: i64) -> Result<u64, StoreError> {
        // Every key carries its own expiry; Redis prunes them.
        Ok(0)
    }
}
