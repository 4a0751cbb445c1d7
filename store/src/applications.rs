//! The `applications` table and the host-port pool: applying resources, reading them,
//! and the stop/start/restart/delete verbs.
//!
//! Every write runs in one transaction that starts by bumping the single row of
//! `application_write_lock`, so writers of applications and ports take turns on both
//! backends, and a multi-document apply is all or nothing.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use longin_crds::Application;
use longin_crds::application::{
    ApplicationSpec, ApplicationStatus, PREVIOUS_REPLICAS_ANNOTATION, Phase,
    RESTARTED_AT_ANNOTATION,
};

use crate::quotas::Quota;
use crate::secrets::{Sealer, open_spec, seal_spec};
use crate::time::rfc3339;
use crate::{Store, StoreError, now_ms};

pub use crate::containers::ContainerRecord;
pub use crate::port_pool::PortRange;
pub(crate) use crate::port_pool::{allocate, allocations, fit_ports, release_ports_beyond};

/// Annotations under this prefix belong to the server: kept across applies.
pub const SERVER_ANNOTATION_PREFIX: &str = "longin.io/";

/// An application as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationRecord {
    pub id: String,
    pub owner_id: String,
    pub owner_username: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// With secret values in clear: the API redacts them (`api::resource`).
    pub spec: ApplicationSpec,
    pub status: ApplicationStatus,
    pub generation: i64,
    /// The installation-wide version of its last write (see `resource_versions`).
    pub resource_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deletion_timestamp: Option<i64>,
}

/// What an apply did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyAction {
    Created,
    Configured,
    Unchanged,
}

/// Why a write to applications was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    #[error("application {name} already exists")]
    AlreadyExists { name: String },
    #[error("application {name} not found")]
    NotFound { name: String },
    #[error(
        "application {name} was changed since it was read: resourceVersion {given} is stale, the current one is {current}"
    )]
    StaleResourceVersion {
        name: String,
        given: String,
        current: i64,
    },
    #[error("application {name} is being deleted")]
    Terminating { name: String },
    #[error(
        "host port pool exhausted: {needed} more port(s) needed, {free} free in {first}-{last}"
    )]
    PoolExhausted {
        needed: usize,
        free: usize,
        first: u16,
        last: u16,
    },
    #[error("secret variable(s) {vars:?} of application {name} need a value")]
    MissingSecrets { name: String, vars: Vec<String> },
    #[error(transparent)]
    Quota(#[from] crate::quotas::QuotaExceeded),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ApplicationError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

pub(crate) fn corrupt(what: &str, err: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

pub(crate) const COLUMNS: &str = "a.id, a.owner_id, u.username AS owner_username, a.name, a.labels, a.annotations, a.spec, a.status, \
    a.generation, a.change_version AS resource_version, a.created_at, a.updated_at, a.deletion_timestamp";

/// The one query of application records; `filter` is what follows the join (`WHERE …`,
/// `ORDER BY …`). Rows go through [`from_row`].
pub(crate) fn select_applications(filter: &str) -> String {
    format!("SELECT {COLUMNS} FROM applications a JOIN users u ON u.id = a.owner_id {filter}")
}

pub(crate) fn from_row(
    row: &AnyRow,
    sealer: Option<&Sealer>,
) -> Result<ApplicationRecord, StoreError> {
    let json =
        |column: &str| -> Result<String, StoreError> { Ok(row.try_get::<String, _>(column)?) };
    Ok(ApplicationRecord {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        owner_username: row.try_get("owner_username")?,
        name: row.try_get("name")?,
        labels: serde_json::from_str(&json("labels")?).map_err(|e| corrupt("labels", &e))?,
        annotations: serde_json::from_str(&json("annotations")?)
            .map_err(|e| corrupt("annotations", &e))?,
        spec: open_spec(
            sealer,
            serde_json::from_str(&json("spec")?).map_err(|e| corrupt("spec", &e))?,
        )?,
        status: serde_json::from_str(&json("status")?).map_err(|e| corrupt("status", &e))?,
        generation: row.try_get("generation")?,
        resource_version: row.try_get("resource_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deletion_timestamp: row.try_get("deletion_timestamp")?,
    })
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt("serialising", &e))
}

/// How an apply treats an existing resource of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// Create or update (`PUT /apply`).
    Apply,
    /// Create only; an existing name is [`ApplicationError::AlreadyExists`].
    CreateOnly,
}

/// One applied resource and what happened to it.
#[derive(Debug, Clone)]
pub struct Applied {
    pub action: ApplyAction,
    pub record: ApplicationRecord,
}

/// Takes the lock every application write takes first. Its row is also the counter of
/// resourceVersions (migration 0009), which on PostgreSQL hands versions out in commit
/// order only while every writer locks it before any application row: a writer that
/// locked an application row first could deadlock with one holding the counter.
pub(crate) async fn lock(tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
    // A write that changes nothing still takes the row's lock (SQLite: the database's
    // write lock); the version moves only with an application write (migration 0009).
    sqlx::query("UPDATE application_write_lock SET version = version WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn find(
    tx: &mut Transaction<'_, Any>,
    sealer: Option<&Sealer>,
    owner_id: &str,
    name: &str,
) -> Result<Option<ApplicationRecord>, StoreError> {
    let row = sqlx::query(&select_applications(
        "WHERE a.owner_id = $1 AND a.name = $2",
    ))
    .bind(owner_id)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(|r| from_row(r, sealer)).transpose()
}

/// The owner's application `name`, or [`ApplicationError::NotFound`].
async fn find_existing(
    tx: &mut Transaction<'_, Any>,
    sealer: Option<&Sealer>,
    owner_id: &str,
    name: &str,
) -> Result<ApplicationRecord, ApplicationError> {
    find(tx, sealer, owner_id, name)
        .await?
        .ok_or_else(|| ApplicationError::NotFound {
            name: name.to_owned(),
        })
}

fn user_annotations(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(k, _)| !k.starts_with(SERVER_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn insert(
    tx: &mut Transaction<'_, Any>,
    sealer: Option<&Sealer>,
    owner_id: &str,
    doc: &Application,
    range: PortRange,
) -> Result<ApplicationRecord, ApplicationError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let annotations = user_annotations(&doc.metadata.annotations);
    sqlx::query(
        "INSERT INTO applications (id, owner_id, name, labels, annotations, spec, status, generation, resource_version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, '{}', 1, 0, $7, $7)",
    )
    .bind(&id)
    .bind(owner_id)
    .bind(&doc.metadata.name)
    .bind(to_json(&doc.metadata.labels)?)
    .bind(to_json(&annotations)?)
    .bind(to_json(&seal_spec(sealer, &doc.spec))?)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let host_ports = fit_ports(tx, &id, doc.spec.replicas, range).await?;
    let status = ApplicationStatus {
        phase: if doc.spec.replicas == 0 {
            Phase::Stopped
        } else {
            Phase::Pending
        },
        host_ports,
        ..ApplicationStatus::default()
    };
    write_status(tx, &id, &status).await?;
    record_deployment(tx, &id, 1, "create", doc.spec.image.as_ref(), true).await?;
    if let Some(build) = build_for(&doc.spec, None, "create") {
        crate::deployments::queue(tx, &id, &build).await?;
    }
    find(tx, sealer, owner_id, &doc.metadata.name)
        .await?
        .ok_or_else(|| ApplicationError::NotFound {
            name: doc.metadata.name.clone(),
        })
}

async fn write_status(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    status: &ApplicationStatus,
) -> Result<(), ApplicationError> {
    // The first status of a new row: resource_version 0 → 1, as every write must
    // (migration 0007 refuses one that does not).
    sqlx::query(
        "UPDATE applications SET status = $1, resource_version = resource_version + 1 WHERE id = $2",
    )
        .bind(to_json(status)?)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes a new desired state of an existing application, bumping `resourceVersion`,
/// and `generation` when the spec or the restart annotation changed; refits its ports.
#[allow(clippy::too_many_arguments)]
async fn update(
    tx: &mut Transaction<'_, Any>,
    sealer: Option<&Sealer>,
    existing: &ApplicationRecord,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    spec: ApplicationSpec,
    range: PortRange,
    trigger: &str,
) -> Result<(ApplyAction, ApplicationRecord), ApplicationError> {
    let spec_changed = spec != existing.spec
        || annotations.get(RESTARTED_AT_ANNOTATION)
            != existing.annotations.get(RESTARTED_AT_ANNOTATION);
    if !spec_changed && labels == existing.labels && annotations == existing.annotations {
        return Ok((ApplyAction::Unchanged, existing.clone()));
    }
    let generation = existing.generation + i64::from(spec_changed);
    let mut status = existing.status.clone();
    status.host_ports = fit_ports(tx, &existing.id, spec.replicas, range).await?;
    if spec.replicas == 0 && status.phase == Phase::Pending {
        status.phase = Phase::Stopped;
    } else if spec.replicas > 0 && status.phase == Phase::Stopped {
        status.phase = Phase::Pending;
    }
    sqlx::query(
        "UPDATE applications SET labels = $1, annotations = $2, spec = $3, status = $4, generation = $5,
         resource_version = resource_version + 1, updated_at = $6 WHERE id = $7",
    )
    .bind(to_json(&labels)?)
    .bind(to_json(&annotations)?)
    .bind(to_json(&seal_spec(sealer, &spec))?)
    .bind(to_json(&status)?)
    .bind(generation)
    .bind(now_ms())
    .bind(&existing.id)
    .execute(&mut **tx)
    .await?;
    if spec_changed {
        let sets_image = spec.image != existing.spec.image;
        record_deployment(
            tx,
            &existing.id,
            generation,
            trigger,
            spec.image.as_ref(),
            sets_image,
        )
        .await?;
    }
    if trigger == "apply"
        && let Some(build) = build_for(&spec, Some(&existing.spec), trigger)
    {
        crate::deployments::queue(tx, &existing.id, &build).await?;
    }
    let record = find(tx, sealer, &existing.owner_id, &existing.name)
        .await?
        .ok_or_else(|| ApplicationError::NotFound {
            name: existing.name.clone(),
        })?;
    Ok((ApplyAction::Configured, record))
}

/// Records a new generation as a revision; a first generation without an image (an
/// application waiting for its first build) rolls nothing out and has none.
async fn record_deployment(
    tx: &mut Transaction<'_, Any>,
    app_id: &str,
    generation: i64,
    trigger: &str,
    image: Option<&longin_crds::limits::Image>,
    sets_image: bool,
) -> Result<(), ApplicationError> {
    if image.is_some() || generation > 1 {
        crate::deployments::record_rollout(tx, app_id, generation, trigger, image, sets_image)
            .await?;
    }
    Ok(())
}

/// The build an apply asks for: the first of an application built from git, or one
/// whose source changed (the running image stays until the new one is built).
fn build_for(
    spec: &ApplicationSpec,
    before: Option<&ApplicationSpec>,
    trigger: &str,
) -> Option<crate::deployments::NewRevision> {
    let source = spec.source.as_ref()?;
    let unchanged = before.is_some_and(|b| b.source == spec.source && b.image.is_some());
    (!unchanged || spec.image.is_none()).then(|| crate::deployments::NewRevision {
        trigger: trigger.to_owned(),
        source: Some(source.git.clone()),
        ..crate::deployments::NewRevision::default()
    })
}

/// A change of the desired state requested by a verb (stop, start, restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Replicas to 0, remembering the count.
    Stop,
    /// Replicas back to the remembered count (1 if none).
    Start,
    /// A new generation with the same spec: every replica is replaced.
    Restart,
}

/// Applies one document inside the apply's transaction.
async fn apply_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sealer: Option<&crate::secrets::Sealer>,
    owner_id: &str,
    doc: &Application,
    mode: ApplyMode,
    range: PortRange,
) -> Result<Applied, ApplicationError> {
    let name = &doc.metadata.name;
    let existing = find(tx, sealer, owner_id, name).await?;
    let Some(existing) = existing else {
        let mut doc = doc.clone();
        doc.spec
            .fill_secrets_from(None)
            .map_err(|vars| ApplicationError::MissingSecrets {
                name: name.clone(),
                vars,
            })?;
        let record = insert(tx, sealer, owner_id, &doc, range).await?;
        return Ok(Applied {
            action: ApplyAction::Created,
            record,
        });
    };
    if mode == ApplyMode::CreateOnly {
        return Err(ApplicationError::AlreadyExists { name: name.clone() });
    }
    if let Some(given) = &doc.metadata.resource_version
        && *given != existing.resource_version.to_string()
    {
        return Err(ApplicationError::StaleResourceVersion {
            name: name.clone(),
            given: given.clone(),
            current: existing.resource_version,
        });
    }
    if existing.deletion_timestamp.is_some() {
        return Err(ApplicationError::Terminating { name: name.clone() });
    }
    let mut spec = doc.spec.clone();
    if spec.source.is_some() && spec.image.is_none() {
        // As `kubectl set image` leaves it: the image Longin built stays until the
        // next build replaces it.
        spec.image.clone_from(&existing.spec.image);
    }
    spec.fill_secrets_from(Some(&existing.spec))
        .map_err(|vars| ApplicationError::MissingSecrets {
            name: name.clone(),
            vars,
        })?;
    let mut annotations = user_annotations(&doc.metadata.annotations);
    annotations.extend(
        existing
            .annotations
            .iter()
            .filter(|(k, _)| k.starts_with(SERVER_ANNOTATION_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let (action, record) = update(
        tx,
        sealer,
        &existing,
        doc.metadata.labels.clone(),
        annotations,
        spec,
        range,
        "apply",
    )
    .await?;
    Ok(Applied { action, record })
}

impl Store {
    /// Applies documents for `owner_id`, all in one transaction: either every document
    /// is applied or none is.
    ///
    /// # Errors
    /// The first document that cannot be applied, and nothing is written.
    pub async fn apply_applications(
        &self,
        owner_id: &str,
        documents: &[Application],
        mode: ApplyMode,
        range: PortRange,
        quota: &Quota,
    ) -> Result<Vec<Applied>, ApplicationError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let before = crate::quotas::usage(&mut tx, owner_id).await?;
        let mut applied = Vec::with_capacity(documents.len());
        for doc in documents {
            applied.push(apply_one(&mut tx, self.sealer(), owner_id, doc, mode, range).await?);
        }
        quota.check(before, crate::quotas::usage(&mut tx, owner_id).await?)?;
        let committed = tx.commit().await;
        // Forgotten whatever the outcome: a failed commit may still have written.
        self.applications_changed();
        committed?;
        for a in applied
            .iter()
            .filter(|a| a.action != ApplyAction::Unchanged)
        {
            self.announce(&a.record.id).await;
        }
        Ok(applied)
    }

    /// Stops, starts or restarts an application.
    ///
    /// # Errors
    /// [`ApplicationError::NotFound`], [`ApplicationError::Terminating`], or the pool
    /// has no ports for a start.
    pub async fn apply_verb(
        &self,
        owner_id: &str,
        name: &str,
        verb: Verb,
        range: PortRange,
        quota: &Quota,
    ) -> Result<ApplicationRecord, ApplicationError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let before = crate::quotas::usage(&mut tx, owner_id).await?;
        let existing = find_existing(&mut tx, self.sealer(), owner_id, name).await?;
        if existing.deletion_timestamp.is_some() {
            return Err(ApplicationError::Terminating {
                name: name.to_owned(),
            });
        }
        let mut spec = existing.spec.clone();
        let mut annotations = existing.annotations.clone();
        match verb {
            Verb::Stop => {
                if spec.replicas > 0 {
                    annotations.insert(
                        PREVIOUS_REPLICAS_ANNOTATION.to_owned(),
                        spec.replicas.to_string(),
                    );
                }
                spec.replicas = 0;
            }
            Verb::Start => {
                if spec.replicas == 0 {
                    spec.replicas = annotations
                        .remove(PREVIOUS_REPLICAS_ANNOTATION)
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n > 0)
                        .unwrap_or(1);
                }
            }
            Verb::Restart => {
                annotations.insert(RESTARTED_AT_ANNOTATION.to_owned(), rfc3339_millis(now_ms()));
            }
        }
        let trigger = match verb {
            Verb::Stop => "stop",
            Verb::Start => "start",
            Verb::Restart => "restart",
        };
        let (_, record) = update(
            &mut tx,
            self.sealer(),
            &existing,
            existing.labels.clone(),
            annotations,
            spec,
            range,
            trigger,
        )
        .await?;
        quota.check(before, crate::quotas::usage(&mut tx, owner_id).await?)?;
        let committed = tx.commit().await;
        // Forgotten whatever the outcome: a failed commit may still have written.
        self.applications_changed();
        committed?;
        self.announce(&record.id).await;
        Ok(record)
    }

    /// Asks for deletion: the application turns Terminating and the controller removes
    /// its containers, ports and rows. Returns whether it is already gone.
    ///
    /// When no controller is running (`controller_active` false) and no container was
    /// ever recorded, nothing can be running it, so it goes at once. With a controller
    /// alive it always goes through Terminating: the controller may have just started a
    /// container it has not recorded yet, and only it can tell by looking at Docker.
    ///
    /// # Errors
    /// [`ApplicationError::NotFound`].
    pub async fn delete_application(
        &self,
        owner_id: &str,
        name: &str,
        controller_active: bool,
    ) -> Result<bool, ApplicationError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let existing = find_existing(&mut tx, self.sealer(), owner_id, name).await?;
        let containers: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM containers WHERE application_id = $1")
                .bind(&existing.id)
                .fetch_one(&mut *tx)
                .await?;
        let gone = containers == 0 && !controller_active;
        if gone {
            sqlx::query("DELETE FROM applications WHERE id = $1")
                .bind(&existing.id)
                .execute(&mut *tx)
                .await?;
        } else if existing.deletion_timestamp.is_none() {
            let mut status = existing.status.clone();
            status.phase = Phase::Terminating;
            sqlx::query(
                "UPDATE applications SET deletion_timestamp = $1, status = $2, resource_version = resource_version + 1, updated_at = $1 WHERE id = $3",
            )
            .bind(now_ms())
            .bind(to_json(&status)?)
            .bind(&existing.id)
            .execute(&mut *tx)
            .await?;
        }
        let committed = tx.commit().await;
        // Forgotten whatever the outcome: a failed commit may still have written.
        self.applications_changed();
        committed?;
        self.announce(&existing.id).await;
        Ok(gone)
    }

    /// One application of an owner.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn application(
        &self,
        owner_id: &str,
        name: &str,
    ) -> Result<Option<ApplicationRecord>, StoreError> {
        let row = sqlx::query(&select_applications(
            "WHERE a.owner_id = $1 AND a.name = $2",
        ))
        .bind(owner_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(|r| from_row(r, self.sealer())).transpose()
    }

    /// [`Store::application_version`] from the database.
    pub(crate) async fn read_application_version(
        &self,
        owner_id: &str,
        name: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, change_version AS resource_version FROM applications WHERE owner_id = $1 AND name = $2",
        )
        .bind(owner_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("resource_version")?)))
            .transpose()
    }

    /// [`Store::application_versions`] from the database.
    pub(crate) async fn read_application_versions(
        &self,
        owner_id: Option<&str>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = match owner_id {
            Some(owner) => {
                sqlx::query(
                    "SELECT id, change_version AS resource_version FROM applications WHERE owner_id = $1 ORDER BY name",
                )
                .bind(owner)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT a.id, a.change_version AS resource_version FROM applications a JOIN users u ON u.id = a.owner_id ORDER BY u.username, a.name",
                )
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("resource_version")?)))
            .collect()
    }

    /// The applications with these uids (those that still exist), in no order.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn applications_by_ids(
        &self,
        ids: &[String],
    ) -> Result<Vec<ApplicationRecord>, StoreError> {
        // Well below both engines' parameter limits.
        const CHUNK: usize = 256;
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let placeholders = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = select_applications(&format!("WHERE a.id IN ({placeholders})"));
            // Statements for a few ids (the usual miss) and for full chunks are kept.
            let mut query = sqlx::query(&sql).persistent(chunk.len() == CHUNK || chunk.len() <= 8);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(self.pool()).await? {
                records.push(from_row(&row, self.sealer())?);
            }
        }
        Ok(records)
    }

    /// The applications of one owner, or of everyone when `owner_id` is `None`, by name.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn list_applications(
        &self,
        owner_id: Option<&str>,
    ) -> Result<Vec<ApplicationRecord>, StoreError> {
        let rows = match owner_id {
            Some(owner) => {
                sqlx::query(&select_applications(
                    "WHERE a.owner_id = $1 ORDER BY a.name",
                ))
                .bind(owner)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&select_applications("ORDER BY u.username, a.name"))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(|r| from_row(r, self.sealer())).collect()
    }

    /// Every allocated host port, for checks of the pool.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn allocated_ports(&self) -> Result<Vec<u16>, StoreError> {
        let ports: Vec<i64> = sqlx::query_scalar("SELECT port FROM port_allocations ORDER BY port")
            .fetch_all(self.pool())
            .await?;
        Ok(ports
            .into_iter()
            .filter_map(|p| u16::try_from(p).ok())
            .collect())
    }
}

pub(crate) fn rfc3339_millis(ms: i64) -> String {
    let base = rfc3339(ms);
    format!("{}.{:03}Z", base.trim_end_matches('Z'), ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_642_914_569), "2026-11-25T21:41:54Z");
        assert_eq!(
            rfc3339_millis(1_795_642_914_569),
            "2026-11-25T21:41:54.569Z"
        );
    }

    #[test]
    fn port_range_size_is_inclusive() {
        assert_eq!(PortRange::default().size(), 901);
        assert_eq!(PortRange { first: 5, last: 5 }.size(), 1);
    }
}
