//! The `users` table: accounts, their roles and whether they may sign in.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::quotas::Quota;
use crate::{Store, StoreError, now_ms};

/// What a user may do: an admin sees and manages everything, a user only their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    /// Parses the stored or submitted name of a role.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

/// A user as stored, password hash included: never serialize this to a client.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login: Option<i64>,
    /// Limits an admin set for this account; each `None` is the server's default.
    pub quota: Quota,
}

/// The fields of a new account.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

/// What a registration came to.
#[derive(Debug, Clone)]
pub enum Registration {
    Created(UserRecord),
    /// Registration is closed and the installation already has accounts.
    Closed,
}

/// A change an admin makes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// Replaces the account's own limits (each `None`: back to the default).
    pub quota: Option<Quota>,
}

const COLUMNS: &str = "id, username, email, password_hash, role, disabled, created_at, updated_at, last_login, \
    quota_apps, quota_replicas, quota_memory_bytes";

fn quota_column(row: &AnyRow, column: &str) -> Result<Option<u64>, StoreError> {
    let value: Option<i64> = row.try_get(column)?;
    Ok(value.map(|v| u64::try_from(v).unwrap_or(0)))
}

fn to_column(value: Option<u64>) -> Option<i64> {
    value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_login: row.try_get("last_login")?,
        quota: Quota {
            apps: quota_column(row, "quota_apps")?,
            replicas: quota_column(row, "quota_replicas")?,
            memory_bytes: quota_column(row, "quota_memory_bytes")?,
        },
    })
}

impl Store {
    /// Creates an account.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming `users_username_key` or `users_email_key` when
    /// either is taken; the database's uniqueness check decides, so concurrent
    /// registrations of one name let exactly one through.
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<UserRecord, StoreError> {
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, username, email, password_hash, role, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6) RETURNING {COLUMNS}"
        ))
        .bind(&id)
        .bind(new.username)
        .bind(new.email)
        .bind(new.password_hash)
        .bind(new.role.as_str())
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        from_row(&row)
    }

    /// Creates an account through registration: the first account of an installation
    /// becomes its admin (as self-hosted panels do, so a fresh install is claimed by
    /// whoever sets it up); later ones are users, or refused with
    /// [`Registration::Closed`] when `open` is false. `new.role` is ignored.
    ///
    /// # Errors
    /// As [`Store::create_user`]. The count and the insert run under the application
    /// write lock, so two concurrent first registrations cannot both become admin.
    pub async fn register_user(
        &self,
        new: &NewUser<'_>,
        open: bool,
    ) -> Result<Registration, StoreError> {
        let mut tx = self.pool().begin().await?;
        crate::applications::lock(&mut tx).await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?;
        let role = match (users, open) {
            (0, _) => Role::Admin,
            (_, true) => Role::User,
            (_, false) => return Ok(Registration::Closed),
        };
        let now = now_ms();
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, username, email, password_hash, role, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6) RETURNING {COLUMNS}"
        ))
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(new.username)
        .bind(new.email)
        .bind(new.password_hash)
        .bind(role.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let user = from_row(&row)?;
        tx.commit().await?;
        Ok(Registration::Created(user))
    }

    /// Whether any account exists (registration is open to the first one).
    ///
    /// # Errors
    /// Only database failures.
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM users LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// The user with this id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if there is none.
    pub async fn user_by_id(&self, id: &str) -> Result<UserRecord, StoreError> {
        if let Some(user) = self.accounts().get(id) {
            return Ok(user);
        }
        let epoch = self.accounts().epoch();
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        let user = from_row(&row)?;
        self.accounts().keep(epoch, &user);
        Ok(user)
    }

    /// Commits `tx`, a write of account `id`, so that no process keeps a stale copy:
    /// on PostgreSQL the NOTIFY goes in the same transaction (sent on commit, never
    /// lost to a crash between the two), and this process drops its copy once the
    /// write is in.
    async fn commit_account_write(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        id: &str,
    ) -> Result<(), StoreError> {
        if self.backend() == crate::Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::account_cache::CHANNEL)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.accounts().forget(id);
        Ok(())
    }

    /// The user with this username, if any.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// One page of users, oldest first, and the total count.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn list_users(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<UserRecord>, i64), StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, COUNT(*) OVER () AS total FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        // The total comes with the page (one snapshot); only a page past the end needs
        // its own count.
        let total: i64 = match rows.first() {
            Some(row) => row.try_get("total")?,
            None if offset == 0 => 0,
            None => {
                sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(self.pool())
                    .await?
            }
        };
        let users = rows.iter().map(from_row).collect::<Result<_, _>>()?;
        Ok((users, total))
    }

    /// Applies an admin's change to an account and returns it as it now is.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if there is no such user.
    pub async fn update_user(
        &self,
        id: &str,
        change: UserChange,
    ) -> Result<UserRecord, StoreError> {
        let quota = change.quota.unwrap_or_default();
        let sql = format!(
            "UPDATE users SET role = COALESCE($1, role), disabled = COALESCE($2, disabled), updated_at = $3,
                 quota_apps = CASE WHEN $5 = 1 THEN $6 ELSE quota_apps END,
                 quota_replicas = CASE WHEN $5 = 1 THEN $7 ELSE quota_replicas END,
                 quota_memory_bytes = CASE WHEN $5 = 1 THEN $8 ELSE quota_memory_bytes END
             WHERE id = $4 RETURNING {COLUMNS}"
        );
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(&sql)
            .bind(change.role.map(Role::as_str))
            .bind(change.disabled.map(i64::from))
            .bind(now_ms())
            .bind(id)
            .bind(i64::from(change.quota.is_some()))
            .bind(to_column(quota.apps))
            .bind(to_column(quota.replicas))
            .bind(to_column(quota.memory_bytes))
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let user = from_row(&row)?;
        self.commit_account_write(tx, id).await?;
        Ok(user)
    }

    /// Notes a successful sign-in.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn record_login(&self, id: &str) -> Result<i64, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE users SET last_login = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit_account_write(tx, id).await?;
        Ok(now)
    }
}
