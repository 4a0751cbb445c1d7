//! What the builder needs to fetch a private repository: an HTTPS token the user gave
//! and an SSH deploy key Longin generated. Sealed at rest like secret env values;
//! only the builder reads them in clear, and the API shows only whether a token is
//! set and the key's public half.

use sqlx::Row;

use crate::{Store, StoreError, now_ms};

/// An application's credentials, in clear.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SourceCredentials {
    pub https_token: Option<String>,
    pub ssh_private_key: Option<String>,
    pub ssh_public_key: Option<String>,
}

impl std::fmt::Debug for SourceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceCredentials")
            .field("https_token", &self.https_token.as_ref().map(|_| "<set>"))
            .field(
                "ssh_private_key",
                &self.ssh_private_key.as_ref().map(|_| "<set>"),
            )
            .field("ssh_public_key", &self.ssh_public_key)
            .finish()
    }
}

impl Store {
    fn seal(&self, clear: &str) -> String {
        self.sealer()
            .map_or_else(|| clear.to_owned(), |s| s.seal(clear))
    }

    fn open_sealed(&self, value: Option<String>) -> Result<Option<String>, StoreError> {
        value
            .map(|v| match self.sealer() {
                Some(sealer) => sealer.open(&v),
                None => Ok(v),
            })
            .transpose()
    }

    async fn ensure_credentials_row(&self, app_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO source_credentials (application_id, updated_at) VALUES ($1, $2)
             ON CONFLICT (application_id) DO NOTHING",
        )
        .bind(app_id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets (or with `None` clears) the application's HTTPS token.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn set_git_token(&self, app_id: &str, token: Option<&str>) -> Result<(), StoreError> {
        self.ensure_credentials_row(app_id).await?;
        sqlx::query(
            "UPDATE source_credentials SET https_token = $1, updated_at = $2 WHERE application_id = $3",
        )
        .bind(token.map(|t| self.seal(t)))
        .bind(now_ms())
        .bind(app_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets (or with `None` clears) the application's SSH deploy key.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn set_deploy_key(
        &self,
        app_id: &str,
        key: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        self.ensure_credentials_row(app_id).await?;
        sqlx::query(
            "UPDATE source_credentials SET ssh_private_key = $1, ssh_public_key = $2, updated_at = $3
             WHERE application_id = $4",
        )
        .bind(key.map(|(private, _)| self.seal(private)))
        .bind(key.map(|(_, public)| public.to_owned()))
        .bind(now_ms())
        .bind(app_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The application's credentials, in clear (empty when none were given).
    ///
    /// # Errors
    /// Database failures; a sealed value that does not open.
    pub async fn source_credentials(&self, app_id: &str) -> Result<SourceCredentials, StoreError> {
        let row = sqlx::query(
            "SELECT https_token, ssh_private_key, ssh_public_key FROM source_credentials WHERE application_id = $1",
        )
        .bind(app_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(SourceCredentials::default());
        };
        Ok(SourceCredentials {
            https_token: self.open_sealed(row.try_get("https_token")?)?,
            ssh_private_key: self.open_sealed(row.try_get("ssh_private_key")?)?,
            ssh_public_key: row.try_get("ssh_public_key")?,
        })
    }
}
