-- Issue 13: the deployments history becomes the application's revisions (numbered per
-- application, with the git commit they were built from, a status that runs
-- queued → building → deploying → succeeded | failed | cancelled | superseded, and
-- the build log), and the seed's github_webhooks (never written) gives way to hooks
-- addressed by an unguessable id, with their deliveries.
--
-- SQLite cannot drop NOT NULL from `generation` (a queued build has none yet), so the
-- table is rebuilt; nothing references it.
CREATE TABLE deployments_v2 (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    revision       BIGINT NOT NULL,
    -- The generation that rolls it out, once it does.
    generation     BIGINT,
    triggered_by   TEXT NOT NULL,
    -- JSON of spec.source.git when it was queued (a rollback rebuilds from it).
    source         TEXT,
    commit_sha     TEXT,
    commit_message TEXT,
    commit_author  TEXT,
    -- The image it rolls out; '' until a build made it.
    image          TEXT NOT NULL DEFAULT '',
    image_digest   TEXT,
    -- 1 when it changes the image (a build, a rollback, a redeploy, an apply of a new
    -- image): an older one finishing later must not replace it.
    sets_image     BIGINT NOT NULL DEFAULT 0 CHECK (sets_image IN (0, 1)),
    -- Whether to pull the image and roll out only if its digest changed.
    repull         BIGINT NOT NULL DEFAULT 0 CHECK (repull IN (0, 1)),
    status         TEXT NOT NULL,
    message        TEXT NOT NULL DEFAULT '',
    build_log      TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    -- When its build (or, without one, its rollout) started.
    started_at     BIGINT,
    -- When its image was set on the application: the rollout's progress deadline
    -- counts from here, not from the queue or the build.
    deploying_at   BIGINT,
    finished_at    BIGINT,
    CONSTRAINT deployments_revision_key UNIQUE (application_id, revision)
);
INSERT INTO deployments_v2 (id, application_id, revision, generation, triggered_by, commit_sha,
                            image, status, build_log, created_at, started_at, deploying_at, finished_at)
SELECT d.id, d.application_id,
       (SELECT COUNT(*) FROM deployments e
         WHERE e.application_id = d.application_id
           AND (e.created_at < d.created_at OR (e.created_at = d.created_at AND e.id <= d.id))),
       d.generation, d.triggered_by, d.commit_sha, d.image,
       CASE d.status WHEN 'Complete' THEN 'succeeded' WHEN 'Failed' THEN 'failed'
                     ELSE 'deploying' END,
       d.build_log, d.created_at, d.created_at, d.created_at, d.finished_at
  FROM deployments d;
DROP TABLE deployments;
ALTER TABLE deployments_v2 RENAME TO deployments;
-- Only the newest unfinished one is still rolling out.
UPDATE deployments SET status = 'superseded', finished_at = created_at
 WHERE status = 'deploying'
   AND revision < (SELECT MAX(revision) FROM deployments e WHERE e.application_id = deployments.application_id);
CREATE INDEX deployments_application_time_idx ON deployments (application_id, created_at);
CREATE INDEX deployments_status_idx ON deployments (status);

DROP TABLE github_webhooks;
CREATE TABLE webhooks (
    -- In the hook's URL: 128 random bits, hex; names neither the owner nor the app.
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    -- Sealed like secret env values: the HMAC needs it in clear.
    secret         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    rotated_at     BIGINT NOT NULL,
    CONSTRAINT webhooks_application_key UNIQUE (application_id)
);
CREATE TABLE webhook_deliveries (
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- X-GitHub-Delivery: a redelivery carries the same id.
    delivery_id TEXT NOT NULL,
    event       TEXT NOT NULL,
    result      TEXT NOT NULL,
    revision    BIGINT,
    received_at BIGINT NOT NULL,
    CONSTRAINT webhook_deliveries_key PRIMARY KEY (webhook_id, delivery_id)
);
CREATE INDEX webhook_deliveries_time_idx ON webhook_deliveries (webhook_id, received_at);

-- How the builder reaches a private repository: an HTTPS token and/or an SSH deploy
-- key Longin generated (its public half is shown to the user). Both sealed.
CREATE TABLE source_credentials (
    application_id  TEXT PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    https_token     TEXT,
    ssh_private_key TEXT,
    ssh_public_key  TEXT,
    updated_at      BIGINT NOT NULL
);
