-- Rolling updates start a replica's new container on a second port before the old one
-- stops. Such a port is a surge port (surge = 1) until the new container is Ready and
-- the port is promoted to be the replica's port (surge = 0) and the old one released.
ALTER TABLE port_allocations ADD COLUMN surge BIGINT NOT NULL DEFAULT 0;
