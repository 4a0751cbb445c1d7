//! What the controller writes back: status, the `containers` rows, port releases and
//! the end of a deletion.

use longin_crds::application::ApplicationStatus;
use sqlx::Row;

use crate::applications::{ApplicationRecord, COLUMNS, from_row, release_ports_beyond, to_json};
use crate::{Store, StoreError, now_ms};

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
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM applications a JOIN users u ON u.id = a.owner_id WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every application's uid, for periodic resyncs.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn application_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM applications ORDER BY id")
                .fetch_all(self.pool())
                .await?,
        )
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
        let done = sqlx::query(
            "UPDATE applications SET status = $1, resource_version = resource_version + 1, updated_at = $2
             WHERE id = $3 AND status <> $1",
        )
        .bind(&json)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes the application's `containers` rows exactly `observed`, then releases the
    /// ports of replicas beyond `replicas` that no container holds any more.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn sync_containers(
        &self,
        app_id: &str,
        observed: &[ObservedContainer],
        replicas: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
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
        let now = now_ms();
        for (row_id, docker_id) in &existing {
            if !observed.iter().any(|c| &c.docker_id == docker_id) {
                sqlx::query("DELETE FROM containers WHERE id = $1")
                    .bind(row_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for c in observed {
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
            .execute(&mut *tx)
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
                .execute(&mut *tx)
                .await?;
            }
        }
        release_ports_beyond(&mut tx, app_id, replicas).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a deletion once its containers are gone: the application and every row of
    /// it (containers, ports, metrics, deployments, webhook) go.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn finalize_deletion(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM applications WHERE id = $1 AND deletion_timestamp IS NOT NULL",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
