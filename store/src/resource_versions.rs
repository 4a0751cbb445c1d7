//! The installation's resourceVersion and what changed after a given one: what a
//! Kubernetes watch replays.
//!
//! Migration 0009 gives every application write a version from one counter
//! (`application_write_lock.version`), handed out in commit order, and keeps a
//! tombstone of every deleted application under the version of its deletion. So
//! "everything after N" is the rows and tombstones with a higher version, and a watch
//! that read up to N and asks again from N misses nothing. Tombstones are kept for a
//! while ([`Store::prune_tombstones`]); a client asking from before the oldest one
//! kept is told its version has expired, as etcd's compaction would.

use sqlx::Row as _;
use sqlx::any::{AnyArguments, AnyQueryResult};

use crate::applications::{ApplicationRecord, COLUMNS, from_row};
use crate::{Backend, Store, StoreError};

/// What changed after a version, up to `through`.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Everything up to this version is in here (or was already seen).
    pub through: i64,
    /// Applications written after the version, oldest first; each as it is now.
    pub written: Vec<Written>,
    /// Applications deleted after the version: their last state, with the version of
    /// their deletion as `resource_version`.
    pub deleted: Vec<ApplicationRecord>,
}

/// An application written after the version asked from.
#[derive(Debug, Clone)]
pub struct Written {
    pub record: ApplicationRecord,
    /// Whether it was created after that version (ADDED rather than MODIFIED).
    pub created: bool,
}

/// Why changes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// Tombstones after the asked version were pruned: the caller must list again.
    #[error("resource version {asked} is too old; the oldest that can be watched from is {oldest}")]
    Expired { asked: i64, oldest: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ChangesError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

impl Store {
    /// Runs one statement that writes applications outside any other transaction. On
    /// PostgreSQL it first locks the version counter's row, as `applications::lock`
    /// does, so that versions keep commit order; SQLite runs one writer at a time.
    pub(crate) async fn locked_write<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, AnyArguments<'q>>,
    ) -> Result<AnyQueryResult, sqlx::Error> {
        if self.backend() != Backend::Postgres {
            return query.execute(self.pool()).await;
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT version FROM application_write_lock WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await?;
        let done = query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// The installation's current resourceVersion: every committed change has one at
    /// most this. Read it before a list, so a watch from it misses nothing.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn resource_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT version FROM application_write_lock WHERE id = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// What changed after version `after`, of one owner's applications or of all.
    ///
    /// # Errors
    /// [`ChangesError::Expired`] when tombstones after `after` were pruned; database
    /// failures.
    pub async fn changes_since(
        &self,
        after: i64,
        owner_id: Option<&str>,
    ) -> Result<Changes, ChangesError> {
        // The bound is read first: every version up to it is committed, so the two
        // queries below see all of them, whatever commits meanwhile.
        let row = sqlx::query("SELECT version, compacted FROM application_write_lock WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        let through: i64 = row.try_get("version")?;
        let compacted: i64 = row.try_get("compacted")?;
        if after < compacted {
            return Err(ChangesError::Expired {
                asked: after,
                oldest: compacted,
            });
        }
        if after >= through {
            return Ok(Changes {
                through: after,
                ..Changes::default()
            });
        }
        let owner_filter = if owner_id.is_some() {
            " AND a.owner_id = $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS}, a.created_version FROM applications a JOIN users u ON u.id = a.owner_id
             WHERE a.change_version > $1 AND a.change_version <= $2{owner_filter} ORDER BY a.change_version"
        );
        let mut query = sqlx::query(&sql).bind(after).bind(through);
        if let Some(owner) = owner_id {
            query = query.bind(owner);
        }
        let written = query
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                let created: i64 = r.try_get("created_version")?;
                Ok(Written {
                    record: from_row(r, self.sealer())?,
                    created: created > after,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        // The tombstone's columns under the names `from_row` reads.
        let columns = COLUMNS
            .replace(
                "u.username AS owner_username",
                "COALESCE(u.username, '') AS owner_username",
            )
            .replace("a.updated_at", "a.deleted_at AS updated_at");
        let sql = format!(
            "SELECT {columns} FROM application_tombstones a LEFT JOIN users u ON u.id = a.owner_id
             WHERE a.change_version > $1 AND a.change_version <= $2{owner_filter} ORDER BY a.change_version"
        );
        let mut query = sqlx::query(&sql).bind(after).bind(through);
        if let Some(owner) = owner_id {
            query = query.bind(owner);
        }
        let deleted = query
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| from_row(r, self.sealer()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Changes {
            through,
            written,
            deleted,
        })
    }

    /// Deletes tombstones of applications deleted before `before_ms` and records the
    /// highest version pruned, below which watches expire. Returns how many went.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn prune_tombstones(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let highest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(change_version) FROM application_tombstones WHERE deleted_at < $1",
        )
        .bind(before_ms)
        .fetch_one(&mut *tx)
        .await?;
        let Some(highest) = highest else {
            return Ok(0);
        };
        let pruned = sqlx::query("DELETE FROM application_tombstones WHERE change_version <= $1")
            .bind(highest)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Not through `lock`: the version must not move for a prune.
        sqlx::query(
            "UPDATE application_write_lock SET compacted = $1 WHERE id = 1 AND compacted < $1",
        )
        .bind(highest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(pruned)
    }
}
