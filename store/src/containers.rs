//! Containers across applications, with whose they are: what the containers API and
//! the log streams check ownership on.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// A replica's container as last observed by the controller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerRecord {
    pub id: String,
    pub docker_id: Option<String>,
    pub replica_index: i64,
    pub host_port: Option<i64>,
    pub status: String,
    pub restart_count: i64,
    pub started_at: Option<i64>,
}

/// A container with its application and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedContainer {
    pub container: ContainerRecord,
    pub application_id: String,
    pub application_name: String,
    pub owner_id: String,
    pub owner_username: String,
}

const COLUMNS: &str =
    "c.id, c.docker_id, c.replica_index, c.host_port, c.status, c.restart_count, c.started_at,
     a.id AS application_id, a.name AS application_name, a.owner_id, u.username AS owner_username";
const FROM: &str = "FROM containers c JOIN applications a ON a.id = c.application_id JOIN users u ON u.id = a.owner_id";

pub(crate) fn container_from_row(row: &AnyRow) -> Result<ContainerRecord, sqlx::Error> {
    Ok(ContainerRecord {
        id: row.try_get("id")?,
        docker_id: row.try_get("docker_id")?,
        replica_index: row.try_get("replica_index")?,
        host_port: row.try_get("host_port")?,
        status: row.try_get("status")?,
        restart_count: row.try_get("restart_count")?,
        started_at: row.try_get("started_at")?,
    })
}

fn owned_from_row(row: &AnyRow) -> Result<OwnedContainer, sqlx::Error> {
    Ok(OwnedContainer {
        container: container_from_row(row)?,
        application_id: row.try_get("application_id")?,
        application_name: row.try_get("application_name")?,
        owner_id: row.try_get("owner_id")?,
        owner_username: row.try_get("owner_username")?,
    })
}

/// Shortest docker id prefix accepted (what `docker ps` shows).
pub const SHORT_ID_LEN: usize = 12;

impl Store {
    /// The containers of `owner_id`'s applications (every user's with `None`), by
    /// application and replica.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn owned_containers(
        &self,
        owner_id: Option<&str>,
    ) -> Result<Vec<OwnedContainer>, StoreError> {
        let rows = match owner_id {
            Some(owner) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} {FROM} WHERE a.owner_id = $1 ORDER BY a.name, c.replica_index, c.created_at"
                ))
                .bind(owner)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} {FROM} ORDER BY u.username, a.name, c.replica_index, c.created_at"
                ))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter()
            .map(|r| owned_from_row(r).map_err(Into::into))
            .collect()
    }

    /// A container by its row id, its docker id, or a docker id prefix of at least
    /// [`SHORT_ID_LEN`] characters that only one container has.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn owned_container(&self, id: &str) -> Result<Option<OwnedContainer>, StoreError> {
        let exact = sqlx::query(&format!(
            "SELECT {COLUMNS} {FROM} WHERE c.id = $1 OR c.docker_id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = exact {
            return Ok(Some(owned_from_row(&row)?));
        }
        if id.len() < SHORT_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} {FROM} WHERE c.docker_id LIKE $1 LIMIT 2"
        ))
        .bind(format!("{}%", id.to_ascii_lowercase()))
        .fetch_all(self.pool())
        .await?;
        Ok(match rows.as_slice() {
            [row] => Some(owned_from_row(row)?),
            _ => None, // none, or ambiguous
        })
    }

    /// The application's containers, by replica.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn application_containers(
        &self,
        app_id: &str,
    ) -> Result<Vec<ContainerRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, docker_id, replica_index, host_port, status, restart_count, started_at
             FROM containers WHERE application_id = $1 ORDER BY replica_index, created_at",
        )
        .bind(app_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| container_from_row(row).map_err(Into::into))
            .collect()
    }
}
