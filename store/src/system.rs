//! Figures about the whole installation, for the admin's system page.

use sqlx::Row;

use crate::{Store, StoreError};

/// How much work is waiting, across every owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub applications: i64,
    /// Applications the controller has not caught up with: a generation it has not
    /// observed yet, or a deletion it has not finished.
    pub unreconciled: i64,
    pub builds_queued: i64,
    pub builds_running: i64,
    pub users: i64,
}

impl Store {
    /// The installation's backlog, counted now.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        let rows = sqlx::query("SELECT generation, status, deletion_timestamp FROM applications")
            .fetch_all(self.pool())
            .await?;
        let mut backlog = Backlog {
            applications: i64::try_from(rows.len()).unwrap_or(i64::MAX),
            ..Backlog::default()
        };
        for row in &rows {
            let generation: i64 = row.try_get("generation")?;
            let status: String = row.try_get("status")?;
            let deleting: Option<i64> = row.try_get("deletion_timestamp")?;
            let observed = serde_json::from_str::<serde_json::Value>(&status)
                .ok()
                .and_then(|s| s["observedGeneration"].as_i64());
            if deleting.is_some() || observed != Some(generation) {
                backlog.unreconciled += 1;
            }
        }
        let builds = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM deployments WHERE status IN ('queued', 'building') GROUP BY status",
        )
        .fetch_all(self.pool())
        .await?;
        for row in &builds {
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            match status.as_str() {
                "queued" => backlog.builds_queued = n,
                _ => backlog.builds_running = n,
            }
        }
        backlog.users = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(backlog)
    }
}
