-- Host ports handed to application replicas, one row per port in use. The primary key
-- makes a port impossible to give out twice; rows go with their application.
CREATE TABLE port_allocations (
    port           BIGINT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    replica_index  BIGINT NOT NULL,
    allocated_at   BIGINT NOT NULL
);
CREATE INDEX port_allocations_application_idx ON port_allocations (application_id);

-- One row whose update serialises writers of applications and ports: on PostgreSQL a
-- row lock until commit, on SQLite it makes the transaction a writer from its first
-- statement (a deferred transaction that reads first can fail to upgrade in WAL mode).
CREATE TABLE application_write_lock (
    id      BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO application_write_lock (id, version) VALUES (1, 0);
