-- Installation-wide settings, such as the installation id generated at first start
-- (it labels every container and network, so two installations on one engine never
-- take each other's for orphans).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Per-user quotas; NULL means the server's default (`--quota-*`).
ALTER TABLE users ADD COLUMN quota_apps BIGINT;
ALTER TABLE users ADD COLUMN quota_replicas BIGINT;
ALTER TABLE users ADD COLUMN quota_memory_bytes BIGINT;

-- Host ports of the pool found held by something else on the host (another program,
-- not Longin): skipped by allocation until `until_ms`, then looked at again.
CREATE TABLE blocked_ports (
    port       BIGINT PRIMARY KEY,
    reason     TEXT NOT NULL,
    until_ms   BIGINT NOT NULL
);

-- Each owner's bridge network gets a subnet of its own out of `--network-pool`: the
-- slot is that subnet's index in the pool, unique so no two owners share one.
CREATE TABLE owner_networks (
    owner_id   TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    slot       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT owner_networks_slot_key UNIQUE (slot)
);
