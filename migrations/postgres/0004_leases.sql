-- Leader election: one row per lease; its holder renews it before it expires, and
-- anyone may take an expired lease. One active controller per instance.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    renewed_at BIGINT NOT NULL
);
