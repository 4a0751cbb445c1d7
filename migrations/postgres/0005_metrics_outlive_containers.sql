-- Metrics outlive the containers they were read from: a replaced container's row goes
-- (sync_containers deletes rows of containers that are gone), but the application's
-- history must not. The link is cleared instead of cascading.
ALTER TABLE metrics DROP CONSTRAINT metrics_container_id_fkey;
ALTER TABLE metrics ADD CONSTRAINT metrics_container_id_fkey
    FOREIGN KEY (container_id) REFERENCES containers (id) ON DELETE SET NULL;
