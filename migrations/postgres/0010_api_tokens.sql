-- Personal API tokens: long-lived bearer tokens for kubectl and CI scripts, which
-- cannot refresh a session. Keep in step with migrations/sqlite/0010_api_tokens.sql.
--
-- Like refresh tokens, a token is stored only as its SHA-256 hash (hex): a leaked table
-- grants nothing. Each has a name unique to its user, so that the user can tell their
-- tokens apart and revoke one without knowing its value.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- NULL: the token never expires.
    expires_at   BIGINT,
    -- Written at most once a minute per token, not on every request.
    last_used_at BIGINT,
    CONSTRAINT api_tokens_user_name_key UNIQUE (user_id, name),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);
