//! The server's answers the CLI reads that are not resources: tokens, errors, apply
//! and delete outcomes, containers, rollouts and metrics. Applications are read as
//! `longin_crds` types.
//!
//! Unknown fields are ignored, so a newer server that adds some still answers an
//! older CLI.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The tokens of a login or a refresh.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// An error answer: `{"error": {"code", "message", "fields"}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorAnswer {
    #[serde(default)]
    pub error: ErrorDetail,
}

/// What went wrong, with each bad field's reason.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// The outcome of an apply: one result per document.
#[derive(Debug, Clone, Deserialize)]
pub struct ApplyAnswer {
    pub results: Vec<ApplyResult>,
}

/// What an apply did to one application.
#[derive(Debug, Clone, Deserialize)]
pub struct ApplyResult {
    pub name: String,
    /// `created`, `configured` or `unchanged`.
    pub action: String,
}

/// The outcome of a delete.
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteAnswer {
    /// `Deleted`, or `Terminating` while the containers are being removed.
    pub status: String,
}

/// A replica's container as the controller last observed it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSummary {
    pub replica: i64,
    /// The engine's id; none until the container is created.
    #[serde(default)]
    pub docker_id: Option<String>,
    #[serde(default)]
    pub host_port: Option<i64>,
    /// The engine's state, e.g. `running`, `exited`.
    pub status: String,
    #[serde(default)]
    pub restart_count: i64,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
}

/// A revision of an application: what rolled out, why, and how it went.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub revision: i64,
    /// `create`, `apply`, `stop`, `start`, `restart`, `webhook`, `redeploy`, `rollback`.
    pub triggered_by: String,
    pub image: String,
    #[serde(default)]
    pub commit_sha: Option<String>,
    #[serde(default)]
    pub commit_message: Option<String>,
    /// `queued`, `building`, `deploying`, `succeeded`, `failed`, `cancelled`, `superseded`.
    pub status: String,
    #[serde(default)]
    pub message: String,
    pub created_at: DateTime<Utc>,
}

/// A revision queued by a rollback or redeploy.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Queued {
    pub revision: i64,
}

/// An application's webhook, as created or rotated.
#[derive(Debug, Clone, Deserialize)]
pub struct NewWebhook {
    pub url: String,
    pub secret: String,
}

/// An application's webhook, as shown.
#[derive(Debug, Clone, Deserialize)]
pub struct Webhook {
    pub url: String,
    pub deliveries: Vec<WebhookDelivery>,
}

/// One delivery a webhook received.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub delivery_id: String,
    pub event: String,
    pub result: String,
    #[serde(default)]
    pub revision: Option<i64>,
    pub received_at: DateTime<Utc>,
}

/// An application's metrics over a window, one point per step.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSeries {
    pub points: Vec<MetricsPoint>,
}

/// An application's totals over one step.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsPoint {
    /// Percent of one core, summed over the containers.
    pub cpu_percent: f64,
    pub memory_bytes: f64,
    pub memory_limit_bytes: f64,
    pub containers: f64,
}

/// One object of an NDJSON log stream: a line of output, or a notice (`type`
/// `lagged` or `end`, with a `message`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogEvent {
    /// `lagged` or `end` for a notice; absent for a line.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The replica whose container printed it (an application's logs).
    #[serde(default)]
    pub replica: Option<i64>,
    /// The Swarm node it ran on (`--engine swarm`).
    #[serde(default)]
    pub node: Option<String>,
    /// `stdout` or `stderr`.
    #[serde(default)]
    pub stream: String,
    #[serde(default)]
    pub line: String,
    /// RFC 3339, as the engine stamped the line.
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}
