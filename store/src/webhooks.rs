//! Webhooks: one per application, addressed by an unguessable id (the URL names
//! neither owner nor app), with a secret sealed at rest (the HMAC check needs it in
//! clear) and the deliveries received, by GitHub's delivery id, so a redelivery
//! queues nothing twice.

use base64::Engine as _;
use rand::RngCore;
use sqlx::Row;

use crate::applications::{ApplicationError, lock};
use crate::deployments::{NewRevision, queue};
use crate::{Store, StoreError, now_ms};

/// Deliveries kept per hook (the newest).
const KEPT_DELIVERIES: i64 = 50;

/// A hook as its owner sees it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: String,
    pub application_id: String,
    pub created_at: i64,
    pub rotated_at: i64,
}

/// One received delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub delivery_id: String,
    pub event: String,
    pub result: String,
    pub revision: Option<i64>,
    pub received_at: i64,
}

/// What recording a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// New; the revision it queued, if any.
    Recorded { revision: Option<i64> },
    /// Received before: nothing queued again; what the first one queued.
    Duplicate { revision: Option<i64> },
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Creates the application's hook, or gives it a new secret (same URL). Returns
    /// the hook and the secret, shown this once.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn set_webhook(&self, app_id: &str) -> Result<(WebhookRecord, String), StoreError> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let sealed = self
            .sealer()
            .map_or_else(|| secret.clone(), |s| s.seal(&secret));
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE webhooks SET secret = $1, rotated_at = $2 WHERE application_id = $3",
        )
        .bind(&sealed)
        .bind(now)
        .bind(app_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO webhooks (id, application_id, secret, created_at, rotated_at) VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(random_hex(16))
            .bind(app_id)
            .bind(&sealed)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let hook = self.webhook_of(app_id).await?.ok_or_else(|| {
            StoreError::Corrupt("a webhook vanished as it was written".to_owned())
        })?;
        Ok((hook, secret))
    }

    /// The application's hook.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn webhook_of(&self, app_id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, application_id, created_at, rotated_at FROM webhooks WHERE application_id = $1",
        )
        .bind(app_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(WebhookRecord {
                id: r.try_get("id")?,
                application_id: r.try_get("application_id")?,
                created_at: r.try_get("created_at")?,
                rotated_at: r.try_get("rotated_at")?,
            })
        })
        .transpose()
    }

    /// Removes the application's hook; whether there was one.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn delete_webhook(&self, app_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM webhooks WHERE application_id = $1")
            .bind(app_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The application and clear secret of hook `id`.
    ///
    /// # Errors
    /// Database failures; a secret that does not open.
    pub async fn webhook_secret(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT application_id, secret FROM webhooks WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: String = row.try_get("secret")?;
        let secret = match self.sealer() {
            Some(sealer) => sealer.open(&sealed)?,
            None => sealed,
        };
        Ok(Some((row.try_get("application_id")?, secret)))
    }

    /// Records a verified delivery and queues `new` with it, in one transaction, unless
    /// the same delivery id was recorded before.
    ///
    /// # Errors
    /// The application is being deleted; database failures.
    pub async fn record_delivery(
        &self,
        hook_id: &str,
        app_id: &str,
        delivery_id: &str,
        event: &str,
        result: &str,
        new: Option<&NewRevision>,
    ) -> Result<DeliveryOutcome, ApplicationError> {
        let mut tx = self.pool().begin().await?;
        lock(&mut tx).await?;
        let inserted = sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, delivery_id, event, result, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webhook_id, delivery_id) DO NOTHING",
        )
        .bind(hook_id)
        .bind(delivery_id)
        .bind(event)
        .bind(result)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let revision: Option<i64> = sqlx::query_scalar(
                "SELECT revision FROM webhook_deliveries WHERE webhook_id = $1 AND delivery_id = $2",
            )
            .bind(hook_id)
            .bind(delivery_id)
            .fetch_one(&mut *tx)
            .await?;
            return Ok(DeliveryOutcome::Duplicate { revision });
        }
        let revision = match new {
            Some(new) => Some(queue(&mut tx, app_id, new).await?),
            None => None,
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET revision = $1 WHERE webhook_id = $2 AND delivery_id = $3",
        )
        .bind(revision)
        .bind(hook_id)
        .bind(delivery_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND delivery_id NOT IN
             (SELECT delivery_id FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY received_at DESC LIMIT $2)",
        )
        .bind(hook_id)
        .bind(KEPT_DELIVERIES)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if revision.is_some() {
            // Wakes the builder (in whichever process leads) at once.
            self.announce(app_id).await;
        }
        Ok(DeliveryOutcome::Recorded { revision })
    }

    /// The hook's newest deliveries.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn deliveries(
        &self,
        hook_id: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery_id, event, result, revision, received_at FROM webhook_deliveries
             WHERE webhook_id = $1 ORDER BY received_at DESC LIMIT $2",
        )
        .bind(hook_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryRecord {
                    delivery_id: r.try_get("delivery_id")?,
                    event: r.try_get("event")?,
                    result: r.try_get("result")?,
                    revision: r.try_get("revision")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }
}
