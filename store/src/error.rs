//! Errors of the storage layer.

/// What went wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write; `constraint` names it (for example
    /// `users_username_key`), so callers can say which field clashed.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The database URL is not one Longin can use.
    #[error("unsupported database url: {0}")]
    UnsupportedUrl(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("redis error")]
    Redis(#[source] redis::RedisError),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// The operation exists for the other backend only.
    #[error("{0}")]
    WrongBackend(&'static str),
}

/// Constraint names as declared in the migrations. SQLite does not report the name of a
/// violated constraint, only `UNIQUE constraint failed: table.column`, so both forms are
/// mapped to the declared name here.
const UNIQUE_CONSTRAINTS: &[(&str, &str)] = &[
    ("users_username_key", "users.username"),
    ("users_email_key", "users.email"),
    (
        "applications_owner_name_key",
        "applications.owner_id, applications.name",
    ),
    ("containers_docker_id_key", "containers.docker_id"),
    (
        "github_webhooks_application_key",
        "github_webhooks.application_id",
    ),
    ("refresh_tokens_pkey", "refresh_tokens.token_hash"),
    (
        "api_tokens_user_name_key",
        "api_tokens.user_id, api_tokens.name",
    ),
    ("api_tokens_token_hash_key", "api_tokens.token_hash"),
];

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            let constraint = db.constraint().map(str::to_owned).or_else(|| {
                let message = db.message();
                UNIQUE_CONSTRAINTS
                    .iter()
                    .find(|(_, columns)| message.ends_with(columns))
                    .map(|(name, _)| (*name).to_owned())
            });
            return Self::Conflict {
                constraint: constraint.unwrap_or_else(|| "unknown".to_owned()),
            };
        }
        if matches!(err, sqlx::Error::RowNotFound) {
            return Self::NotFound;
        }
        Self::Database(err)
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        Self::Redis(err)
    }
}
