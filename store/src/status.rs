//! What the controller writes back: status, the `containers` rows, port releases and
//! the end of a deletion.

use longin_crds::application::{ApplicationSpec, ApplicationStatus};
use sqlx::Row;

use crate::applications::{
    ApplicationError, ApplicationRecord, PortRange, allocate, allocations, corrupt, fit_ports,
    from_row, lock, release_ports_beyond, select_applications, to_json,
};
use crate::{Store, StoreError, now_ms};

/// What of an application, besides its containers, decides what a reconcile does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Revision {
    pub generation: i64,
    pub deleting: bool,
}

/// A container as the controller observed it, for the `containers` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub docker_id: String,
    pub replica_index: i64,
    pub host_port: i64,
    pub spec_hash: String,
    pub status: String,
    pub restart_count: i64,
}

impl Store {
    /// An application by its uid, whoever owns it.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn application_by_id(
        &self,
        id: &str,
    ) -> Result<Option<ApplicationRecord>, StoreError> {
        let row = sqlx::query(&select_applications("WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(|r| from_row(r, self.sealer())).transpose()
    }

    /// Every application of every user (for metrics and the collector).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn all_applications(&self) -> Result<Vec<ApplicationRecord>, StoreError> {
        let rows = sqlx::query(&select_applications("ORDER BY u.username, a.name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| from_row(r, self.sealer())).collect()
    }

    /// Every application's uid with what a reconcile acts on besides containers: its
    /// generation (spec changes) and whether it is being deleted.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn application_revisions(&self) -> Result<Vec<(String, Revision)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, generation, deletion_timestamp FROM applications ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    Revision {
                        generation: r.try_get("generation")?,
                        deleting: r.try_get::<Option<i64>, _>("deletion_timestamp")?.is_some(),
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Writes the observed status when it differs from the stored one; returns whether
    /// it wrote. A status change is a change of the resource (resourceVersion moves).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn write_status(
        &self,
        id: &str,
        status: &ApplicationStatus,
    ) -> Result<bool, StoreError> {
        let json = to_json(status)?;
        let done = self
            .locked_write(
                sqlx::query(
                    "UPDATE applications SET status = $1, resource_version = resource_version + 1, updated_at = $2
                     WHERE id = $3 AND status <> $1",
                )
                .bind(&json)
                .bind(now_ms())
                .bind(id),
            )
            .await;
        // Forgotten even if the outcome is unknown (an error after the write).
        if done.as_ref().map_or(true, |d| d.rows_affected() > 0) {
            self.applications_changed();
        }
        Ok(done?.rows_affected() > 0)
    }

    /// Makes the application's `containers` rows exactly `observed`, then releases the
    /// ports of replicas beyond the ones it wants now that no container holds any more.
    ///
    /// "Now" is read here, under the write lock, not taken from the caller: a reconcile
    /// works from the application as it read it, and an apply may have raised the
    /// replica count since (scaling 0 → 2 while the reconcile of 0 runs). Releasing by
    /// the older count took the new replicas' ports, and the app waited for ports that
    /// never came. `replicas_hint`, the count the caller read, only decides cheaply
    /// whether there is anything to do (an idle reconcile then costs two reads): a
    /// stale hint at worst makes it look, under the lock, or leaves a release to the
    /// next sync.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn sync_containers(
        &self,
        app_id: &str,
        observed: &[ObservedContainer],
        replicas_hint: u32,
    ) -> Result<(), StoreError> {
        // Nothing to write in the common case (a resync of a settled app): compare first,
        // so an idle controller reads instead of taking the write lock.
        if self
            .containers_in_sync(app_id, observed, replicas_hint)
            .await?
        {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let replicas = desired_replicas(&mut tx, app_id).await?;
        let existing: Vec<(String, String)> =
            sqlx::query("SELECT id, docker_id FROM containers WHERE application_id = $1")
                .bind(app_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    Ok::<_, sqlx::Error>((
                        r.try_get("id")?,
                        r.try_get::<Option<String>, _>("docker_id")?
                            .unwrap_or_default(),
                    ))
                })
                .collect::<Result<_, _>>()?;
        for (row_id, docker_id) in &existing {
            if !observed.iter().any(|c| &c.docker_id == docker_id) {
                sqlx::query("DELETE FROM containers WHERE id = $1")
                    .bind(row_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let now = now_ms();
        for c in observed {
            upsert_container(&mut tx, app_id, c, now).await?;
        }
        release_ports_beyond(&mut tx, app_id, replicas).await?;
        // Surge ports whose container is gone (a rollout superseded or failed to start).
        sqlx::query(
            "DELETE FROM port_allocations WHERE application_id = $1 AND surge = 1
             AND port NOT IN (SELECT host_port FROM containers WHERE application_id = $1 AND host_port IS NOT NULL)",
        )
        .bind(app_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the rows already say what `observed` says and no port is to be released
    /// (judged by `replicas_hint`).
    async fn containers_in_sync(
        &self,
        app_id: &str,
        observed: &[ObservedContainer],
        replicas_hint: u32,
    ) -> Result<bool, StoreError> {
        let mut current = sqlx::query(
            "SELECT docker_id, replica_index, host_port, spec_hash, status, restart_count FROM containers
             WHERE application_id = $1",
        )
        .bind(app_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok::<_, sqlx::Error>(ObservedContainer {
                docker_id: r.try_get::<Option<String>, _>("docker_id")?.unwrap_or_default(),
                replica_index: r.try_get("replica_index")?,
                host_port: r.try_get::<Option<i64>, _>("host_port")?.unwrap_or_default(),
                spec_hash: r.try_get("spec_hash")?,
                status: r.try_get("status")?,
                restart_count: r.try_get("restart_count")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
        current.sort_by(|a, b| a.docker_id.cmp(&b.docker_id));
        let mut wanted = observed.to_vec();
        wanted.sort_by(|a, b| a.docker_id.cmp(&b.docker_id));
        if current != wanted {
            return Ok(false);
        }
        let surplus_ports: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM port_allocations WHERE application_id = $1 AND (replica_index >= $2 OR surge = 1)",
        )
        .bind(app_id)
        .bind(i64::from(replicas_hint))
        .fetch_one(self.pool())
        .await?;
        Ok(surplus_ports == 0)
    }

    /// The replicas' own ports (not surge ports), in replica order.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn host_ports(&self, app_id: &str, replicas: u32) -> Result<Vec<u16>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let held = allocations(&mut tx, app_id).await?;
        tx.commit().await?;
        Ok(held
            .into_iter()
            .filter(|(r, _)| *r < i64::from(replicas))
            .map(|(_, p)| p)
            .collect())
    }

    /// Surge ports of an ongoing rollout: (replica, port).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn surge_ports(&self, app_id: &str) -> Result<Vec<(u32, u16)>, StoreError> {
        let rows = sqlx::query("SELECT replica_index, port FROM port_allocations WHERE application_id = $1 AND surge = 1 ORDER BY replica_index")
            .bind(app_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let replica: i64 = row.try_get("replica_index")?;
                let port: i64 = row.try_get("port")?;
                match (u32::try_from(replica), u16::try_from(port)) {
                    (Ok(r), Ok(p)) => Ok((r, p)),
                    _ => Err(StoreError::Corrupt(format!(
                        "surge allocation {replica}/{port}"
                    ))),
                }
            })
            .collect()
    }

    /// Gives each replica the stored spec wants a port (an apply does; this is for a
    /// controller that finds one missing all the same, so that the app is not left
    /// waiting for it). Returns their ports in replica order.
    ///
    /// # Errors
    /// [`ApplicationError::PoolExhausted`] when no port is free.
    pub async fn ensure_ports(
        &self,
        app_id: &str,
        range: PortRange,
    ) -> Result<Vec<u16>, ApplicationError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let replicas = desired_replicas(&mut tx, app_id).await?;
        let ports = fit_ports(&mut tx, app_id, u32::try_from(replicas).unwrap_or(0), range).await?;
        tx.commit().await?;
        Ok(ports)
    }

    /// A second port for `replica`'s new container during a rollout (the existing one
    /// if it has one already).
    ///
    /// # Errors
    /// [`ApplicationError::PoolExhausted`] when no port is free.
    pub async fn allocate_surge_port(
        &self,
        app_id: &str,
        replica: u32,
        range: PortRange,
    ) -> Result<u16, ApplicationError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT port FROM port_allocations WHERE application_id = $1 AND replica_index = $2 AND surge = 1",
        )
        .bind(app_id)
        .bind(i64::from(replica))
        .fetch_optional(&mut *tx)
        .await?;
        let port = match existing {
            Some(port) => {
                u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?
            }
            None => allocate(&mut tx, app_id, &[i64::from(replica)], range, true).await?[0],
        };
        tx.commit().await?;
        Ok(port)
    }

    /// Ends a replica's rollout: its surge port becomes its port, the old one is freed.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn promote_surge_port(
        &self,
        app_id: &str,
        replica: u32,
        port: u16,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let promoted = sqlx::query("UPDATE port_allocations SET surge = 0 WHERE application_id = $1 AND port = $2 AND surge = 1")
            .bind(app_id)
            .bind(i64::from(port))
            .execute(&mut *tx)
            .await?;
        if promoted.rows_affected() == 1 {
            sqlx::query(
                "DELETE FROM port_allocations WHERE application_id = $1 AND replica_index = $2 AND surge = 0 AND port <> $3",
            )
            .bind(app_id)
            .bind(i64::from(replica))
            .bind(i64::from(port))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// When the rollout of `generation` started (its deployments row), in ms.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn rollout_started(
        &self,
        app_id: &str,
        generation: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(COALESCE(deploying_at, created_at)) FROM deployments WHERE application_id = $1 AND generation = $2",
        )
        .bind(app_id)
        .bind(generation)
        .fetch_one(self.pool())
        .await?)
    }

    /// Ends a deletion once its containers are gone: the application and every row of
    /// it (containers, ports, metrics, deployments, webhook) go.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn finalize_deletion(&self, id: &str) -> Result<bool, StoreError> {
        let done = self
            .locked_write(
                sqlx::query(
                    "DELETE FROM applications WHERE id = $1 AND deletion_timestamp IS NOT NULL",
                )
                .bind(id),
            )
            .await;
        if done.as_ref().map_or(true, |d| d.rows_affected() > 0) {
            self.applications_changed();
        }
        Ok(done?.rows_affected() > 0)
    }
}

/// How many replicas the application wants as stored: none once it is being deleted
/// or gone.
/// Writes one observed container's row: updated in place, or inserted.
async fn upsert_container(
    conn: &mut sqlx::AnyConnection,
    app_id: &str,
    c: &ObservedContainer,
    now: i64,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE containers SET status = $1, restart_count = $2, host_port = $3, spec_hash = $4, updated_at = $5,
         started_at = CASE WHEN $1 = 'running' AND status <> 'running' THEN $5 ELSE started_at END
         WHERE docker_id = $6",
    )
    .bind(&c.status)
    .bind(c.restart_count)
    .bind(c.host_port)
    .bind(&c.spec_hash)
    .bind(now)
    .bind(&c.docker_id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO containers (id, application_id, docker_id, replica_index, host_port, spec_hash, status, restart_count, started_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $7 = 'running' THEN $9 ELSE NULL END, $9, $9)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(app_id)
        .bind(&c.docker_id)
        .bind(c.replica_index)
        .bind(c.host_port)
        .bind(&c.spec_hash)
        .bind(&c.status)
        .bind(c.restart_count)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn desired_replicas(conn: &mut sqlx::AnyConnection, app_id: &str) -> Result<i64, StoreError> {
    let Some(row) = sqlx::query("SELECT spec, deletion_timestamp FROM applications WHERE id = $1")
        .bind(app_id)
        .fetch_optional(conn)
        .await?
    else {
        return Ok(0);
    };
    if row
        .try_get::<Option<i64>, _>("deletion_timestamp")?
        .is_some()
    {
        return Ok(0);
    }
    let spec: ApplicationSpec = serde_json::from_str(&row.try_get::<String, _>("spec")?)
        .map_err(|e| corrupt("spec", &e))?;
    Ok(i64::from(spec.replicas))
}
