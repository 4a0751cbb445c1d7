-- Longin schema, PostgreSQL dialect. Keep in step with migrations/sqlite/0001_init.sql:
-- the same tables, columns, constraints and indexes, so both stores behave alike.
-- Times are integer milliseconds since the Unix epoch (UTC) in both dialects, and flags
-- are BIGINT 0/1: sqlx's Any driver cannot decode SQLite's BOOLEAN affinity.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    disabled      BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_login    BIGINT,
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE applications (
    id                 TEXT PRIMARY KEY,
    owner_id           TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    name               TEXT NOT NULL,
    labels             TEXT NOT NULL DEFAULT '{}',
    annotations        TEXT NOT NULL DEFAULT '{}',
    spec               TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT '{}',
    generation         BIGINT NOT NULL DEFAULT 1,
    resource_version   BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    deletion_timestamp BIGINT,
    CONSTRAINT applications_owner_name_key UNIQUE (owner_id, name)
);

CREATE TABLE containers (
    id            TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    docker_id     TEXT,
    replica_index BIGINT NOT NULL,
    host_port     BIGINT,
    spec_hash     TEXT NOT NULL,
    status        TEXT NOT NULL,
    restart_count BIGINT NOT NULL DEFAULT 0,
    started_at    BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT containers_docker_id_key UNIQUE (docker_id)
);
CREATE INDEX containers_application_idx ON containers (application_id);

CREATE TABLE metrics (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id     TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    container_id       TEXT REFERENCES containers (id) ON DELETE CASCADE,
    recorded_at        BIGINT NOT NULL,
    cpu_percent        DOUBLE PRECISION NOT NULL,
    memory_bytes       BIGINT NOT NULL,
    memory_limit_bytes BIGINT NOT NULL,
    net_rx_bytes       BIGINT NOT NULL,
    net_tx_bytes       BIGINT NOT NULL,
    block_read_bytes   BIGINT NOT NULL,
    block_write_bytes  BIGINT NOT NULL
);
CREATE INDEX metrics_application_time_idx ON metrics (application_id, recorded_at);
CREATE INDEX metrics_container_idx ON metrics (container_id);
CREATE INDEX metrics_time_idx ON metrics (recorded_at);

CREATE TABLE api_logs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    method         TEXT NOT NULL,
    route          TEXT NOT NULL,
    status         BIGINT NOT NULL,
    duration_ms    DOUBLE PRECISION NOT NULL,
    user_id        TEXT REFERENCES users (id) ON DELETE SET NULL,
    application_id TEXT REFERENCES applications (id) ON DELETE SET NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX api_logs_time_idx ON api_logs (created_at);
CREATE INDEX api_logs_user_time_idx ON api_logs (user_id, created_at);
CREATE INDEX api_logs_application_idx ON api_logs (application_id);

CREATE TABLE github_webhooks (
    id               TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    repository       TEXT NOT NULL,
    branch           TEXT NOT NULL DEFAULT 'main',
    secret           TEXT NOT NULL,
    enabled          BIGINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    last_delivery_at BIGINT,
    created_at       BIGINT NOT NULL,
    CONSTRAINT github_webhooks_application_key UNIQUE (application_id)
);

CREATE TABLE deployments (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    generation     BIGINT NOT NULL,
    triggered_by   TEXT NOT NULL,
    commit_sha     TEXT,
    image          TEXT NOT NULL,
    status         TEXT NOT NULL,
    build_log      TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    finished_at    BIGINT
);
CREATE INDEX deployments_application_time_idx ON deployments (application_id, created_at);

-- Refresh tokens are stored only as SHA-256 hashes. A family is one login session:
-- every rotation adds a row to it, and reuse of a spent token revokes all of it.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked    BIGINT NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expiry_idx ON refresh_tokens (expires_at);
