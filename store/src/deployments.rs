//! An application's revisions (the `deployments` table): every change that rolls out
//! is one, numbered per application. A revision built from git starts `queued`, is
//! claimed `building` by the controller's builder, and becomes `deploying` when its
//! image is set on the application (a new generation); the controller ends it
//! `succeeded` or `failed`. A newer revision replaces an older one that is still
//! waiting or rolling out (`superseded`); a user may cancel one still queued or
//! building.
//!
//! Every write here takes the application write lock, like the writes of
//! applications: a revision number, the image it sets and the generation it makes are
//! decided together, so an older build finishing late can never replace a newer image.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use longin_crds::application::RESTARTED_AT_ANNOTATION;
use longin_crds::limits::Image;
use longin_crds::source::GitSource;

use crate::applications::{
    ApplicationError, ApplicationRecord, from_row, lock, rfc3339_millis, select_applications,
    to_json,
};
use crate::{Store, StoreError, now_ms};

/// Where a revision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    Queued,
    Building,
    Deploying,
    Succeeded,
    Failed,
    Cancelled,
    Superseded,
}

impl DeploymentStatus {
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Building,
        Self::Deploying,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::Superseded,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Building => "building",
            Self::Deploying => "deploying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Superseded => "superseded",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("deployment status {text:?}")))
    }

    /// Whether nothing more happens to it.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Superseded
        )
    }
}

/// One revision as stored (without its build log: see [`Store::deployment_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    pub id: String,
    pub application_id: String,
    pub revision: i64,
    /// The generation that rolls it out, once it does.
    pub generation: Option<i64>,
    /// `create`, `apply`, `stop`, `start`, `restart`, `webhook`, `redeploy`, `rollback`.
    pub triggered_by: String,
    /// What to build from (a snapshot of `spec.source.git` when it was queued).
    pub source: Option<GitSource>,
    pub commit_sha: Option<String>,
    pub commit_message: Option<String>,
    pub commit_author: Option<String>,
    /// The image it rolls out; empty until a build made it.
    pub image: String,
    pub image_digest: Option<String>,
    /// Pull the image and roll out only if its digest changed.
    pub repull: bool,
    pub status: DeploymentStatus,
    pub message: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "id, application_id, revision, generation, triggered_by, source, commit_sha, \
    commit_message, commit_author, image, image_digest, repull, status, message, created_at, started_at, finished_at";

fn deployment_from_row(row: &AnyRow) -> Result<DeploymentRecord, StoreError> {
    let source: Option<String> = row.try_get("source")?;
    Ok(DeploymentRecord {
        id: row.try_get("id")?,
        application_id: row.try_get("application_id")?,
        revision: row.try_get("revision")?,
        generation: row.try_get("generation")?,
        triggered_by: row.try_get("triggered_by")?,
        source: source
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| crate::applications::corrupt("deployment source", &e))?,
        commit_sha: row.try_get("commit_sha")?,
        commit_message: row.try_get("commit_message")?,
        commit_author: row.try_get("commit_author")?,
        image: row.try_get("image")?,
        image_digest: row.try_get("image_digest")?,
        repull: row.try_get::<i64, _>("repull")? != 0,
        status: DeploymentStatus::parse(&row.try_get::<String, _>("status")?)?,
        message: row.try_get("message")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// A revision to queue for the builder.
#[derive(Debug, Clone, Default)]
pub struct NewRevision {
    pub trigger: String,
    pub source: Option<GitSource>,
    /// The commit to build; `None`: the branch's head when the build starts.
    pub commit: Option<String>,
    /// The image to roll out when no build is needed (a rollback, a redeploy of a
    /// pulled image); empty to build one.
    pub image: String,
    pub repull: bool,
}

/// What a finished build did to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollOutcome {
    /// The image is set: the controller rolls out `generation`.
    RolledOut { generation: i64 },
    /// A newer revision set an image meanwhile; this one is `superseded`.
    Superseded,
    /// It ended meanwhile (cancelled, or the application is being deleted).
    Ended(DeploymentStatus),
}

/// The image a build made, and the commit it came from.
#[derive(Debug, Clone, Default)]
pub struct Built {
    pub image: String,
    pub digest: Option<String>,
    pub commit_sha: Option<String>,
    pub commit_message: Option<String>,
    pub commit_author: Option<String>,
    /// Replace every replica even if the image reference did not change (a re-pulled
    /// tag that points elsewhere now).
    pub replace_replicas: bool,
}

/// Why a request about revisions was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("revision {revision} not found")]
    NotFound { revision: i64 },
    #[error("revision {revision} is {status} and can no longer be cancelled", status = .status.as_str())]
    NotCancellable {
        revision: i64,
        status: DeploymentStatus,
    },
    #[error("no earlier succeeded revision with another image to roll back to")]
    NothingToRollBack,
    #[error("revision {revision} has no image to roll back to (its build never finished)")]
    NoImage { revision: i64 },
    #[error(transparent)]
    Application(#[from] ApplicationError),
}

impl From<StoreError> for DeploymentError {
    fn from(err: StoreError) -> Self {
        Self::Application(err.into())
    }
}

impl From<sqlx::Error> for DeploymentError {
    fn from(err: sqlx::Error) -> Self {
        Self::Application(err.into())
    }
}

async fn next_revision(tx: &mut Transaction<'_, Any>, app_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(MAX(revision), 0) + 1 FROM deployments WHERE application_id = $1",
    )
    .bind(app_id)
    .fetch_one(&mut **tx)
    .await
}

/// Ends the application's unfinished revisions in `statuses` older than `revision`
/// as superseded by it.
async fn supersede(
    tx: &mut Transaction<'_, Any>,
    app_id: &str,
    revision: i64,
    status: DeploymentStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deployments SET status = 'superseded', finished_at = $1, message = $2
         WHERE application_id = $3 AND status = $4 AND revision < $5",
    )
    .bind(now_ms())
    .bind(format!("replaced by revision {revision}"))
    .bind(app_id)
    .bind(status.as_str())
    .bind(revision)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues a revision for the builder, replacing any still queued. Returns its number.
pub(crate) async fn queue(
    tx: &mut Transaction<'_, Any>,
    app_id: &str,
    new: &NewRevision,
) -> Result<i64, ApplicationError> {
    let revision = next_revision(tx, app_id).await?;
    supersede(tx, app_id, revision, DeploymentStatus::Queued).await?;
    let source = new.source.as_ref().map(to_json).transpose()?;
    sqlx::query(
        "INSERT INTO deployments (id, application_id, revision, triggered_by, source, commit_sha, image, sets_image, repull, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, 'queued', $9)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(app_id)
    .bind(revision)
    .bind(&new.trigger)
    .bind(source)
    .bind(new.commit.as_deref())
    .bind(&new.image)
    .bind(i64::from(new.repull))
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(revision)
}

/// Notes a new generation rolled out by `trigger` (an apply, a verb) as a revision.
pub(crate) async fn record_rollout(
    tx: &mut Transaction<'_, Any>,
    app_id: &str,
    generation: i64,
    trigger: &str,
    image: Option<&Image>,
    sets_image: bool,
) -> Result<i64, ApplicationError> {
    let revision = next_revision(tx, app_id).await?;
    supersede(tx, app_id, revision, DeploymentStatus::Deploying).await?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO deployments (id, application_id, revision, generation, triggered_by, image, sets_image, status, created_at, started_at, deploying_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'deploying', $8, $8, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(app_id)
    .bind(revision)
    .bind(generation)
    .bind(trigger)
    .bind(image.map_or("", Image::as_str))
    .bind(i64::from(sets_image))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(revision)
}

async fn find_revision(
    tx: &mut Transaction<'_, Any>,
    app_id: &str,
    revision: i64,
) -> Result<DeploymentRecord, DeploymentError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM deployments WHERE application_id = $1 AND revision = $2"
    ))
    .bind(app_id)
    .bind(revision)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(DeploymentError::NotFound { revision })?;
    Ok(deployment_from_row(&row)?)
}

async fn app_by_id(
    tx: &mut Transaction<'_, Any>,
    store: &Store,
    app_id: &str,
) -> Result<Option<ApplicationRecord>, StoreError> {
    let row = sqlx::query(&select_applications("WHERE a.id = $1"))
        .bind(app_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref()
        .map(|r| from_row(r, store.sealer()))
        .transpose()
}

/// What a rollback to `target` (default: the newest succeeded revision whose image is
/// not the one running) queues.
async fn rollback_revision(
    tx: &mut Transaction<'_, Any>,
    app: &ApplicationRecord,
    target: Option<i64>,
) -> Result<NewRevision, DeploymentError> {
    let current = app.spec.image.as_ref().map_or("", Image::as_str);
    let chosen = match target {
        Some(revision) => find_revision(tx, &app.id, revision).await?,
        None => {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM deployments WHERE application_id = $1 AND status = 'succeeded'
                 AND image <> '' AND image <> $2 ORDER BY revision DESC LIMIT 1"
            ))
            .bind(&app.id)
            .bind(current)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(DeploymentError::NothingToRollBack)?;
            deployment_from_row(&row)?
        }
    };
    if chosen.image.is_empty() && chosen.commit_sha.is_none() {
        return Err(DeploymentError::NoImage {
            revision: chosen.revision,
        });
    }
    Ok(NewRevision {
        trigger: "rollback".to_owned(),
        source: chosen.source.or_else(|| {
            app.spec
                .source
                .as_ref()
                .filter(|_| chosen.commit_sha.is_some())
                .map(|s| s.git.clone())
        }),
        commit: chosen.commit_sha,
        image: chosen.image,
        repull: false,
    })
}

impl Store {
    async fn locked_app(
        &self,
        tx: &mut Transaction<'_, Any>,
        app_id: &str,
    ) -> Result<ApplicationRecord, ApplicationError> {
        lock(tx).await?;
        let app = app_by_id(tx, self, app_id)
            .await?
            .ok_or_else(|| ApplicationError::NotFound {
                name: app_id.to_owned(),
            })?;
        if app.deletion_timestamp.is_some() {
            return Err(ApplicationError::Terminating { name: app.name });
        }
        Ok(app)
    }

    /// Queues a revision of the application for the builder. Returns its number.
    ///
    /// # Errors
    /// The application is gone or being deleted; database failures.
    pub async fn queue_deployment(
        &self,
        app_id: &str,
        new: &NewRevision,
    ) -> Result<i64, ApplicationError> {
        let mut tx = self.pool().begin().await?;
        self.locked_app(&mut tx, app_id).await?;
        let revision = queue(&mut tx, app_id, new).await?;
        tx.commit().await?;
        // Wakes the builder (in whichever process leads) at once.
        self.announce(app_id).await;
        Ok(revision)
    }

    /// Queues a rollback to `target` (default: the newest succeeded revision with
    /// another image than the running one). Returns the new revision's number.
    ///
    /// # Errors
    /// No such revision, nothing to roll back to, or the application is gone.
    pub async fn queue_rollback(
        &self,
        app_id: &str,
        target: Option<i64>,
    ) -> Result<i64, DeploymentError> {
        let mut tx = self.pool().begin().await?;
        let app = self.locked_app(&mut tx, app_id).await?;
        let new = rollback_revision(&mut tx, &app, target).await?;
        let revision = queue(&mut tx, app_id, &new).await?;
        tx.commit().await?;
        self.announce(app_id).await;
        Ok(revision)
    }

    /// The application's revisions, newest first.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn application_deployments(
        &self,
        app_id: &str,
        limit: i64,
    ) -> Result<Vec<DeploymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE application_id = $1 ORDER BY revision DESC LIMIT $2"
        ))
        .bind(app_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(deployment_from_row).collect()
    }

    /// One revision of the application.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn deployment(
        &self,
        app_id: &str,
        revision: i64,
    ) -> Result<Option<DeploymentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE application_id = $1 AND revision = $2"
        ))
        .bind(app_id)
        .bind(revision)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(deployment_from_row).transpose()
    }

    /// The build log of a revision, as stored so far.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn deployment_log(
        &self,
        app_id: &str,
        revision: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT build_log FROM deployments WHERE application_id = $1 AND revision = $2",
        )
        .bind(app_id)
        .bind(revision)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Cancels a revision still queued or building (the builder sees it and stops).
    ///
    /// # Errors
    /// No such revision, or it is past building.
    pub async fn cancel_deployment(
        &self,
        app_id: &str,
        revision: i64,
        by: &str,
    ) -> Result<DeploymentRecord, DeploymentError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let found = find_revision(&mut tx, app_id, revision).await?;
        if !matches!(
            found.status,
            DeploymentStatus::Queued | DeploymentStatus::Building
        ) {
            return Err(DeploymentError::NotCancellable {
                revision,
                status: found.status,
            });
        }
        sqlx::query(
            "UPDATE deployments SET status = 'cancelled', message = $1, finished_at = $2 WHERE id = $3",
        )
        .bind(format!("cancelled by {by}"))
        .bind(now_ms())
        .bind(&found.id)
        .execute(&mut *tx)
        .await?;
        let cancelled = find_revision(&mut tx, app_id, revision).await?;
        tx.commit().await?;
        Ok(cancelled)
    }

    /// Claims the oldest queued revision of each application not in `busy`, up to
    /// `limit`, turning them `building`.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn claim_queued_deployments(
        &self,
        busy: &[String],
        limit: usize,
    ) -> Result<Vec<DeploymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE status = 'queued' ORDER BY created_at, revision"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut claimed: Vec<DeploymentRecord> = Vec::new();
        for row in &rows {
            if claimed.len() >= limit {
                break;
            }
            let mut found = deployment_from_row(row)?;
            if busy.contains(&found.application_id)
                || claimed
                    .iter()
                    .any(|c| c.application_id == found.application_id)
            {
                continue;
            }
            let now = now_ms();
            let done = sqlx::query(
                "UPDATE deployments SET status = 'building', started_at = $1 WHERE id = $2 AND status = 'queued'",
            )
            .bind(now)
            .bind(&found.id)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                found.status = DeploymentStatus::Building;
                found.started_at = Some(now);
                claimed.push(found);
            }
        }
        Ok(claimed)
    }

    /// The statuses of revisions by id (the builder's check for cancellations).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn deployment_status(
        &self,
        id: &str,
    ) -> Result<Option<DeploymentStatus>, StoreError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM deployments WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        status.as_deref().map(DeploymentStatus::parse).transpose()
    }

    /// Stores the build log so far.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn set_build_log(&self, id: &str, log: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE deployments SET build_log = $1 WHERE id = $2")
            .bind(log)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends a revision that is still `building` (failed, cancelled, superseded, or
    /// succeeded when there was nothing to roll out). Returns whether it was.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn end_build(
        &self,
        id: &str,
        status: DeploymentStatus,
        message: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE deployments SET status = $1, message = $2, finished_at = $3 WHERE id = $4 AND status = 'building'",
        )
        .bind(status.as_str())
        .bind(message)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks builds that were running when the server stopped as failed: nothing will
    /// finish them, and the application still runs its previous image. Returns the
    /// triggers of those it marked.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn interrupt_builds(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE deployments SET status = 'failed', finished_at = $1,
             message = 'interrupted: the server stopped during the build; the previous revision kept serving'
             WHERE status = 'building' RETURNING triggered_by",
        )
        .bind(now_ms())
        .fetch_all(self.pool())
        .await?)
    }

    /// Sets a built (or re-pulled, or rolled back) image on the application: a new
    /// generation the controller rolls out, recorded on the revision, which turns
    /// `deploying`. Unless the revision ended meanwhile, or a newer one set an image.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn roll_out_build(
        &self,
        id: &str,
        built: &Built,
    ) -> Result<RollOutcome, DeploymentError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM deployments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(found) = row.as_ref().map(deployment_from_row).transpose()? else {
            return Ok(RollOutcome::Ended(DeploymentStatus::Cancelled));
        };
        if found.status != DeploymentStatus::Building {
            return Ok(RollOutcome::Ended(found.status));
        }
        let newer: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deployments WHERE application_id = $1 AND revision > $2 AND sets_image = 1
             AND status IN ('deploying', 'succeeded', 'failed')",
        )
        .bind(&found.application_id)
        .bind(found.revision)
        .fetch_one(&mut *tx)
        .await?;
        let app = app_by_id(&mut tx, self, &found.application_id).await?;
        let Some(app) = app.filter(|a| a.deletion_timestamp.is_none()) else {
            end_in(
                &mut tx,
                &found.id,
                DeploymentStatus::Cancelled,
                "the application is being deleted",
            )
            .await?;
            tx.commit().await?;
            return Ok(RollOutcome::Ended(DeploymentStatus::Cancelled));
        };
        if newer > 0 {
            end_in(
                &mut tx,
                &found.id,
                DeploymentStatus::Superseded,
                "a newer revision set another image first",
            )
            .await?;
            tx.commit().await?;
            return Ok(RollOutcome::Superseded);
        }
        let generation = set_image(&mut tx, self, &app, built).await?;
        supersede(
            &mut tx,
            &app.id,
            found.revision,
            DeploymentStatus::Deploying,
        )
        .await?;
        sqlx::query(
            "UPDATE deployments SET status = 'deploying', generation = $1, image = $2, image_digest = $3,
             commit_sha = COALESCE($4, commit_sha), commit_message = $5, commit_author = $6, deploying_at = $7
             WHERE id = $8",
        )
        .bind(generation)
        .bind(&built.image)
        .bind(built.digest.as_deref())
        .bind(built.commit_sha.as_deref())
        .bind(built.commit_message.as_deref())
        .bind(built.commit_author.as_deref())
        .bind(now_ms())
        .bind(&found.id)
        .execute(&mut *tx)
        .await?;
        let committed = tx.commit().await;
        self.applications_changed();
        committed?;
        self.announce(&app.id).await;
        Ok(RollOutcome::RolledOut { generation })
    }

    /// Marks the rollout of `generation` finished once (`succeeded` or `failed`);
    /// the trigger of the revision it ended, if it ended one. A failed one of an
    /// application with `autoRollback` queues a rollback to the last succeeded
    /// revision (never for a failed rollback: that would loop).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn finish_rollout(
        &self,
        app_id: &str,
        generation: i64,
        succeeded: bool,
        message: &str,
    ) -> Result<Option<String>, StoreError> {
        let status = if succeeded {
            DeploymentStatus::Succeeded
        } else {
            DeploymentStatus::Failed
        };
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let trigger: Option<String> = sqlx::query_scalar(
            "UPDATE deployments SET status = $1, finished_at = $2, message = $3
             WHERE application_id = $4 AND generation = $5 AND status = 'deploying' RETURNING triggered_by",
        )
        .bind(status.as_str())
        .bind(now_ms())
        .bind(message)
        .bind(app_id)
        .bind(generation)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(trigger) = trigger else {
            return Ok(None);
        };
        if !succeeded
            && trigger != "rollback"
            && let Some(app) = app_by_id(&mut tx, self, app_id).await?
            && app.spec.auto_rollback
            && app.deletion_timestamp.is_none()
        {
            match rollback_revision(&mut tx, &app, None).await {
                Ok(new) => {
                    let revision = queue(&mut tx, app_id, &new).await.map_err(|e| match e {
                        ApplicationError::Store(e) => e,
                        other => StoreError::Corrupt(other.to_string()),
                    })?;
                    tracing::warn!(app = %app.name, revision, "rollout failed: rolling back by itself (autoRollback)");
                }
                Err(DeploymentError::Application(ApplicationError::Store(e))) => return Err(e),
                Err(why) => {
                    tracing::warn!(app = %app.name, %why, "rollout failed; nothing to roll back to")
                }
            }
        }
        tx.commit().await?;
        Ok(Some(trigger))
    }

    /// The images the application's revisions still need: those of its newest `keep`
    /// succeeded revisions, and of every revision not finished.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn images_to_keep(&self, app_id: &str, keep: i64) -> Result<Vec<String>, StoreError> {
        let mut images: Vec<String> = sqlx::query_scalar(
            "SELECT image FROM deployments WHERE application_id = $1 AND status = 'succeeded' AND image <> ''
             ORDER BY revision DESC LIMIT $2",
        )
        .bind(app_id)
        .bind(keep)
        .fetch_all(self.pool())
        .await?;
        let unfinished: Vec<String> = sqlx::query_scalar(
            "SELECT image FROM deployments WHERE application_id = $1 AND image <> ''
             AND status IN ('queued', 'building', 'deploying')",
        )
        .bind(app_id)
        .fetch_all(self.pool())
        .await?;
        images.extend(unfinished);
        Ok(images)
    }
}

async fn end_in(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    status: DeploymentStatus,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE deployments SET status = $1, message = $2, finished_at = $3 WHERE id = $4")
        .bind(status.as_str())
        .bind(message)
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes `built.image` into the application's spec as a new generation.
async fn set_image(
    tx: &mut Transaction<'_, Any>,
    store: &Store,
    app: &ApplicationRecord,
    built: &Built,
) -> Result<i64, DeploymentError> {
    let image = Image::parse(&built.image).map_err(|e| {
        StoreError::Corrupt(format!("a build produced an invalid image reference: {e}"))
    })?;
    let mut spec = app.spec.clone();
    spec.image = Some(image);
    let mut annotations = app.annotations.clone();
    if built.replace_replicas || spec == app.spec {
        // The same reference (a re-pulled tag, a rebuild of the same commit): only a
        // new restart stamp makes the controller replace the replicas.
        annotations.insert(RESTARTED_AT_ANNOTATION.to_owned(), rfc3339_millis(now_ms()));
    }
    let generation = app.generation + 1;
    sqlx::query(
        "UPDATE applications SET spec = $1, annotations = $2, generation = $3,
         resource_version = resource_version + 1, updated_at = $4 WHERE id = $5",
    )
    .bind(to_json(&crate::secrets::seal_spec(store.sealer(), &spec))?)
    .bind(to_json(&annotations)?)
    .bind(generation)
    .bind(now_ms())
    .bind(&app.id)
    .execute(&mut **tx)
    .await?;
    Ok(generation)
}
