//! What a backup needs from the store itself: a consistent copy of an embedded
//! database taken while it serves, and whether a database is still empty (the only
//! kind a backup is restored into).

use std::path::Path;

use crate::{Backend, Store, StoreError};

impl Store {
    /// Writes a consistent copy of the SQLite database to `path` (`VACUUM INTO`: one
    /// read transaction, so writes going on meanwhile are in it entirely or not at
    /// all). `path` must not exist.
    ///
    /// # Errors
    /// The store is not SQLite, or the copy fails.
    pub async fn copy_sqlite_to(&self, path: &Path) -> Result<(), StoreError> {
        if self.backend() != Backend::Sqlite {
            return Err(StoreError::WrongBackend(
                "only an embedded SQLite store is copied with VACUUM INTO",
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_string_lossy().into_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether the database holds no tables of its own yet (a restore's target).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        let query = match self.backend() {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
            }
        };
        let tables: i64 = sqlx::query_scalar(query).fetch_one(self.pool()).await?;
        Ok(tables == 0)
    }
}
