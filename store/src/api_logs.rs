//! The `api_logs` table: one row per API request, for audit and troubleshooting.
//! Query strings and bodies are never stored.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// One request as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ApiLogEntry {
    pub method: String,
    /// The matched route template (`/api/admin/users/{id}`), never the raw path, so
    /// ids and query strings stay out.
    pub route: String,
    pub status: u16,
    pub duration_ms: f64,
    pub user_id: Option<String>,
    pub application_id: Option<String>,
    pub created_at: i64,
}

/// A stored request with its row id.
#[derive(Debug, Clone, Serialize)]
pub struct ApiLogRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: ApiLogEntry,
}

/// Which rows to list; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct ApiLogFilter {
    pub method: Option<String>,
    pub route: Option<String>,
    pub status: Option<u16>,
    pub user_id: Option<String>,
    pub application_id: Option<String>,
    /// Inclusive lower bound, ms.
    pub since: Option<i64>,
    /// Exclusive upper bound, ms.
    pub until: Option<i64>,
}

/// Rows per INSERT. Few enough that binding stays cheap (SQLite finds a parameter's
/// name by a linear scan, so a statement's binds cost the square of its parameters:
/// 500 rows made every request pay for the audit row more than for itself), enough
/// that a batch is a handful of statements.
const INSERT_CHUNK: usize = 32;

fn from_row(row: &AnyRow) -> Result<ApiLogRecord, StoreError> {
    let status: i64 = row.try_get("status")?;
    Ok(ApiLogRecord {
        id: row.try_get("id")?,
        entry: ApiLogEntry {
            method: row.try_get("method")?,
            route: row.try_get("route")?,
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
            duration_ms: row.try_get("duration_ms")?,
            user_id: row.try_get("user_id")?,
            application_id: row.try_get("application_id")?,
            created_at: row.try_get("created_at")?,
        },
    })
}

impl Store {
    /// Writes a batch of request records, a few multi-row INSERTs in one transaction.
    ///
    /// # Errors
    /// Only database failures; then nothing of the batch is written.
    pub async fn insert_api_logs(&self, entries: &[ApiLogEntry]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for chunk in entries.chunks(INSERT_CHUNK) {
            let mut sql = String::from(
                "INSERT INTO api_logs (method, route, status, duration_ms, user_id, application_id, created_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 7;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7
                ));
            }
            // Full chunks share one prepared statement; a last, shorter one would
            // only push useful statements out of the connection's cache.
            let mut query = sqlx::query(&sql).persistent(chunk.len() == INSERT_CHUNK);
            for e in chunk {
                query = query
                    .bind(&e.method)
                    .bind(&e.route)
                    .bind(i64::from(e.status))
                    .bind(e.duration_ms)
                    .bind(&e.user_id)
                    .bind(&e.application_id)
                    .bind(e.created_at);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One page of request records, newest first, and how many match in all.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn list_api_logs(
        &self,
        filter: &ApiLogFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ApiLogRecord>, i64), StoreError> {
        let mut conditions = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        let mut numbers: Vec<i64> = Vec::new();
        let mut next = 1;
        for (column, value) in [
            ("method", filter.method.as_deref()),
            ("route", filter.route.as_deref()),
            ("user_id", filter.user_id.as_deref()),
            ("application_id", filter.application_id.as_deref()),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} = ${next}"));
                texts.push(value);
                next += 1;
            }
        }
        for (condition, value) in [
            ("status =", filter.status.map(i64::from)),
            ("created_at >=", filter.since),
            ("created_at <", filter.until),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{condition} ${next}"));
                numbers.push(value);
                next += 1;
            }
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // Text parameters come first ($1..), then numbers, as numbered above.
        let page_sql = format!(
            "SELECT id, method, route, status, duration_ms, user_id, application_id, created_at,
                    COUNT(*) OVER () AS total
             FROM api_logs {where_clause} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            next,
            next + 1
        );
        let count_sql = format!("SELECT COUNT(*) FROM api_logs {where_clause}");

        let mut page = sqlx::query(&page_sql);
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        for text in &texts {
            page = page.bind(*text);
            count = count.bind(*text);
        }
        for number in &numbers {
            page = page.bind(*number);
            count = count.bind(*number);
        }
        let rows = page.bind(limit).bind(offset).fetch_all(self.pool()).await?;
        // The total comes with the page (one snapshot); only a page past the end needs
        // its own count.
        let total = match rows.first() {
            Some(row) => row.try_get("total")?,
            None if offset == 0 => 0,
            None => count.fetch_one(self.pool()).await?,
        };
        let records = rows.iter().map(from_row).collect::<Result<_, _>>()?;
        Ok((records, total))
    }

    /// Deletes request records older than `before` (ms); returns how many.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn prune_api_logs(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM api_logs WHERE created_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
