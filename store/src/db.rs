//! The connection pool, backend selection and migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Connection};

use crate::StoreError;
use crate::changes::ChangeFeed;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database engine sits behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend from a database URL's scheme.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for anything but `sqlite:` and `postgres(ql):`.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    /// A short name for logs and metrics.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// Pool size; SQLite has one writer at a time anyway, so it needs few.
    pub max_connections: u32,
}

impl StoreOptions {
    /// Options for a database URL with a pool size suited to its backend.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let max_connections = match Backend::from_url(&url) {
            Ok(Backend::Postgres) => 16,
            _ => 8,
        };
        Self {
            url,
            max_connections,
        }
    }

    /// The URL of a SQLite file, created if missing.
    #[must_use]
    pub fn sqlite_file(path: &Path) -> Self {
        Self::new(format!("sqlite://{}?mode=rwc", path.display()))
    }
}

/// A handle to the database: cheap to clone, shared by every part of Longin.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    changes: ChangeFeed,
    /// Kept for PostgreSQL's LISTEN connection; never logged.
    url: std::sync::Arc<str>,
    /// Seals secret values written, opens those read (see [`crate::secrets`]).
    sealer: Option<std::sync::Arc<crate::secrets::Sealer>>,
    /// Accounts kept in memory (see [`crate::account_cache`]); off unless enabled.
    accounts: std::sync::Arc<crate::account_cache::AccountCache>,
    /// Applications' versions kept in memory (see [`crate::application_index`]).
    application_index: std::sync::Arc<crate::application_index::ApplicationIndex>,
}

impl Store {
    /// Opens a pool on the database. Does not migrate; call [`Store::migrate`].
    ///
    /// # Errors
    /// An unsupported URL, or the database cannot be reached.
    pub async fn connect(options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(&options.url)?;
        let connect = AnyConnectOptions::from_str(&options.url)
            .map_err(|_| StoreError::UnsupportedUrl(redact_url(&options.url)))?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // A ping before each use catches a connection the network broke; an
            // embedded database's connection cannot break that way, and the ping is a
            // second trip to its worker thread on every query.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; busy_timeout makes
                        // concurrent writers wait their turn instead of failing at once;
                        // foreign keys are off by default in SQLite.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            backend,
            changes: ChangeFeed::new(),
            url: options.url.as_str().into(),
            sealer: None,
            accounts: std::sync::Arc::default(),
            application_index: std::sync::Arc::default(),
        })
    }

    /// Applies the embedded migrations of this backend that have not run yet.
    ///
    /// # Errors
    /// A migration fails, or one that ran before was changed since.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        conn.ping().await?;
        Ok(())
    }

    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Application changes written through this handle (and its clones).
    #[must_use]
    pub fn changes(&self) -> &ChangeFeed {
        &self.changes
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn accounts(&self) -> &crate::account_cache::AccountCache {
        &self.accounts
    }

    pub(crate) fn application_index(&self) -> &crate::application_index::ApplicationIndex {
        &self.application_index
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// This store, sealing secret values with `sealer` from now on.
    #[must_use]
    pub fn with_sealer(mut self, sealer: crate::secrets::Sealer) -> Self {
        self.sealer = Some(std::sync::Arc::new(sealer));
        self
    }

    /// The sealer of secret values, when the store has one.
    #[must_use]
    pub fn sealer(&self) -> Option<&crate::secrets::Sealer> {
        self.sealer.as_deref()
    }

    /// Closes every connection; waits for the ones in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A URL fit for logs: the password, if any, replaced.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_url_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://h/db").is_err());
    }

    #[test]
    fn redacted_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://longin:s3cret@db:5432/longin"),
            "postgres://longin:***@db:5432/longin"
        );
        assert_eq!(
            redact_url("sqlite://data/longin.db"),
            "sqlite://data/longin.db"
        );
    }
}
