-- Issue 14: one resourceVersion across the installation, as Kubernetes clients expect
-- (a watch resumes "after version N" whichever application changed), and tombstones
-- of deleted applications so a watch can tell a client what went away.
--
-- `resource_version` stays the per-row write counter that every write bumps (0007's
-- guard); `change_version` is what clients see as metadata.resourceVersion. It is
-- drawn from application_write_lock.version, the row every application transaction
-- locks first, so versions are handed out in commit order: a watcher that has seen
-- version N never later finds a committed change below N (a sequence would not give
-- that). Triggers set it, so no write can forget to.
ALTER TABLE applications ADD COLUMN change_version BIGINT NOT NULL DEFAULT 0;
-- The version of its creation: a watch tells ADDED from MODIFIED by it.
ALTER TABLE applications ADD COLUMN created_version BIGINT NOT NULL DEFAULT 0;
-- Tombstones at or below this version were pruned: a watch from below it is told its
-- version expired (410) and lists again.
ALTER TABLE application_write_lock ADD COLUMN compacted BIGINT NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION applications_resource_version_grows() RETURNS trigger AS $$
BEGIN
    IF NEW.resource_version <= OLD.resource_version
        AND NEW.change_version = OLD.change_version THEN
        RAISE EXCEPTION 'applications.resource_version must grow with every write';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

UPDATE application_write_lock
SET version = GREATEST(version, COALESCE((SELECT MAX(resource_version) FROM applications), 0))
WHERE id = 1;
UPDATE applications SET change_version = resource_version;
CREATE INDEX applications_change_version_idx ON applications (change_version);

-- Runs before the guard (triggers of one kind fire in name order).
CREATE FUNCTION applications_change_version() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.resource_version <> OLD.resource_version THEN
        UPDATE application_write_lock SET version = version + 1 WHERE id = 1
        RETURNING version INTO NEW.change_version;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.created_version := NEW.change_version;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER applications_change_version
BEFORE INSERT OR UPDATE ON applications
FOR EACH ROW EXECUTE FUNCTION applications_change_version();

-- The last state of each deleted application, under the version of its deletion.
-- Pruned by age (see Store::prune_tombstones).
CREATE TABLE application_tombstones (
    change_version     BIGINT PRIMARY KEY,
    id                 TEXT NOT NULL,
    owner_id           TEXT NOT NULL,
    name               TEXT NOT NULL,
    labels             TEXT NOT NULL,
    annotations        TEXT NOT NULL,
    spec               TEXT NOT NULL,
    status             TEXT NOT NULL,
    generation         BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    deletion_timestamp BIGINT,
    deleted_at         BIGINT NOT NULL
);
CREATE INDEX application_tombstones_owner_idx ON application_tombstones (owner_id, change_version);
CREATE INDEX application_tombstones_time_idx ON application_tombstones (deleted_at);

CREATE FUNCTION applications_tombstone() RETURNS trigger AS $$
DECLARE
    v BIGINT;
BEGIN
    UPDATE application_write_lock SET version = version + 1 WHERE id = 1
    RETURNING version INTO v;
    INSERT INTO application_tombstones (change_version, id, owner_id, name, labels, annotations,
        spec, status, generation, created_at, deletion_timestamp, deleted_at)
    VALUES (v, OLD.id, OLD.owner_id, OLD.name, OLD.labels, OLD.annotations, OLD.spec,
        OLD.status, OLD.generation, OLD.created_at, OLD.deletion_timestamp,
        (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT);
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER applications_tombstone
AFTER DELETE ON applications
FOR EACH ROW EXECUTE FUNCTION applications_tombstone();
