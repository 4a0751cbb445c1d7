-- Metrics outlive the containers they were read from: a replaced container's row goes
-- (sync_containers deletes rows of containers that are gone), but the application's
-- history must not. The link is cleared instead of cascading. SQLite cannot alter a
-- constraint: the table is rebuilt.
CREATE TABLE metrics_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id     TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    container_id       TEXT REFERENCES containers (id) ON DELETE SET NULL,
    recorded_at        BIGINT NOT NULL,
    cpu_percent        DOUBLE PRECISION NOT NULL,
    memory_bytes       BIGINT NOT NULL,
    memory_limit_bytes BIGINT NOT NULL,
    net_rx_bytes       BIGINT NOT NULL,
    net_tx_bytes       BIGINT NOT NULL,
    block_read_bytes   BIGINT NOT NULL,
    block_write_bytes  BIGINT NOT NULL
);
INSERT INTO metrics_new (id, application_id, container_id, recorded_at, cpu_percent, memory_bytes,
    memory_limit_bytes, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes)
SELECT id, application_id, container_id, recorded_at, cpu_percent, memory_bytes,
    memory_limit_bytes, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes
FROM metrics;
DROP TABLE metrics;
ALTER TABLE metrics_new RENAME TO metrics;
CREATE INDEX metrics_application_time_idx ON metrics (application_id, recorded_at);
CREATE INDEX metrics_container_idx ON metrics (container_id);
CREATE INDEX metrics_time_idx ON metrics (recorded_at);
