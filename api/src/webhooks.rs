//! GitHub webhooks: an application's hook (create or rotate, show, remove) and the
//! endpoint GitHub delivers to. A delivery is verified against the hook's secret over
//! the raw bytes before anything in it is read; a push to the application's branch
//! queues a revision built at the pushed commit, and the answer (202 with the
//! revision) goes out before any of the work is done.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use longin_store::deployments::NewRevision;
use longin_store::webhooks::{DeliveryOutcome, DeliveryRecord, WebhookRecord};

use crate::access::{OwnedApp, OwnerQuery};
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody};
use crate::github::{Delivery, PushVerdict, judge_push, parse_delivery, verify_signature};
use crate::users::time_from_ms;

/// GitHub's own limit on a delivery's payload.
const MAX_DELIVERY_BYTES: usize = 25 << 20;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(set_webhook, get_webhook, delete_webhook))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(receive))
                .layer(DefaultBodyLimit::max(MAX_DELIVERY_BYTES)),
        )
}

/// Where GitHub delivers, as this request reached the server.
fn hook_url(headers: &HeaderMap, id: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:3001");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}/hooks/github/{id}")
}

/// A new hook, or a new secret for the existing one (its URL stays).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewWebhook {
    /// Give GitHub this as the payload URL, content type JSON (or form).
    url: String,
    /// Shown this once: give GitHub this as the secret.
    secret: String,
}

/// One delivery received.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryView {
    /// `X-GitHub-Delivery`.
    delivery_id: String,
    event: String,
    /// `queued`, `pong`, `ignored: …`.
    result: String,
    revision: Option<i64>,
    received_at: chrono::DateTime<chrono::Utc>,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            delivery_id: d.delivery_id,
            event: d.event,
            result: d.result,
            revision: d.revision,
            received_at: time_from_ms(d.received_at),
        }
    }
}

/// The application's hook, without its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WebhookView {
    url: String,
    created_at: chrono::DateTime<chrono::Utc>,
    rotated_at: chrono::DateTime<chrono::Utc>,
    /// The newest first, at most 20.
    deliveries: Vec<DeliveryView>,
}

/// Creates the application's GitHub webhook, or rotates its secret.
#[utoipa::path(
    put, path = "/api/applications/{name}/webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 200, body = NewWebhook), (status = 404, body = ErrorBody))
)]
async fn set_webhook(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
    headers: HeaderMap,
) -> Result<axum::Json<NewWebhook>, AppError> {
    let (hook, secret) = ctx.store.set_webhook(&record.id).await?;
    tracing::info!(app = %record.name, "webhook secret set");
    Ok(axum::Json(NewWebhook {
        url: hook_url(&headers, &hook.id),
        secret,
    }))
}

/// The application's GitHub webhook and its last deliveries.
#[utoipa::path(
    get, path = "/api/applications/{name}/webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 200, body = WebhookView), (status = 404, description = "No such application, or it has no webhook", body = ErrorBody))
)]
async fn get_webhook(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
    headers: HeaderMap,
) -> Result<axum::Json<WebhookView>, AppError> {
    let WebhookRecord {
        id,
        created_at,
        rotated_at,
        ..
    } =
        ctx.store.webhook_of(&record.id).await?.ok_or_else(|| {
            AppError::NotFound(format!("application {} has no webhook", record.name))
        })?;
    let deliveries = ctx.store.deliveries(&id, 20).await?;
    Ok(axum::Json(WebhookView {
        url: hook_url(&headers, &id),
        created_at: time_from_ms(created_at),
        rotated_at: time_from_ms(rotated_at),
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    }))
}

/// Removes the application's GitHub webhook (deliveries to it then answer 404).
#[utoipa::path(
    delete, path = "/api/applications/{name}/webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody))
)]
async fn delete_webhook(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<StatusCode, AppError> {
    if ctx.store.delete_webhook(&record.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound(format!(
            "application {} has no webhook",
            record.name
        )))
    }
}

/// What a delivery got.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryAnswer {
    /// `queued`, `duplicate`, `pong`, `ignored`.
    result: &'static str,
    /// Why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The revision it queued (for a duplicate: the first delivery's).
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<i64>,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn answer(status: StatusCode, answer: DeliveryAnswer) -> Response {
    metrics::counter!("longin_webhook_deliveries_total", "result" => answer.result).increment(1);
    (status, axum::Json(answer)).into_response()
}

/// GitHub's deliveries: `ping` and `push` (JSON or form-encoded), signed with the
/// hook's secret (`X-Hub-Signature-256`, HMAC-SHA256 of the raw body).
#[utoipa::path(
    post, path = "/hooks/github/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The hook's id, from its URL")),
    request_body(content = String, description = "GitHub's payload", content_type = "application/json"),
    responses(
        (status = 200, description = "A ping, or a delivery received before", body = DeliveryAnswer),
        (status = 202, description = "Queued, or ignored (another branch, a tag, a deletion, another event)", body = DeliveryAnswer),
        (status = 400, description = "Signed but unreadable", body = ErrorBody),
        (status = 401, description = "No signature, or a wrong one", body = ErrorBody),
        (status = 404, description = "No such hook", body = ErrorBody),
        (status = 413, body = ErrorBody),
    )
)]
async fn receive(
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, AppError> {
    // The hook first, the body after: anyone may post here, and up to 25 MiB each
    // would otherwise be read (and held) for ids that name nothing.
    let Some((app_id, secret)) = ctx.store.webhook_secret(&id).await? else {
        metrics::counter!("longin_webhook_deliveries_total", "result" => "unknown_hook")
            .increment(1);
        return Err(AppError::NotFound("no such webhook".to_owned()));
    };
    let body = axum::body::to_bytes(body, MAX_DELIVERY_BYTES)
        .await
        .map_err(|_| AppError::PayloadTooLarge)?;
    if let Err(err) = verify_signature(
        secret.as_bytes(),
        &body,
        header_text(&headers, "x-hub-signature-256"),
    ) {
        metrics::counter!("longin_webhook_deliveries_total", "result" => "unauthorized")
            .increment(1);
        tracing::warn!(hook = %id, error = %err, "webhook delivery refused: bad signature");
        return Err(AppError::Unauthorized(format!(
            "X-Hub-Signature-256: {err}"
        )));
    }
    let event = header_text(&headers, "x-github-event").unwrap_or_default();
    let delivery_id = header_text(&headers, "x-github-delivery")
        .filter(|d| !d.is_empty() && d.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let content_type = header_text(&headers, header::CONTENT_TYPE.as_str());
    let delivery = parse_delivery(event, content_type, &body).map_err(|err| {
        metrics::counter!("longin_webhook_deliveries_total", "result" => "invalid").increment(1);
        AppError::field("body", err.to_string())
    })?;
    let app = ctx
        .store
        .application_by_id(&app_id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such webhook".to_owned()))?;
    let (result, reason, new) = what_it_asks(delivery, &app);
    let recorded = reason
        .as_ref()
        .map_or_else(|| result.to_owned(), |r| format!("{result}: {r}"));
    let outcome = ctx
        .store
        .record_delivery(&id, &app.id, &delivery_id, event, &recorded, new.as_ref())
        .await?;
    tracing::info!(app = %app.name, %event, delivery = %delivery_id, result = %recorded, ?outcome, "webhook delivery");
    Ok(match outcome {
        DeliveryOutcome::Duplicate { revision } => answer(
            StatusCode::OK,
            DeliveryAnswer {
                result: "duplicate",
                reason: None,
                revision,
            },
        ),
        DeliveryOutcome::Recorded { revision } => answer(
            if result == "pong" {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            },
            DeliveryAnswer {
                result,
                reason,
                revision,
            },
        ),
    })
}

/// What a verified delivery asks of `app`: its result, why it is ignored, and the
/// revision to queue. Pure.
fn what_it_asks(
    delivery: Delivery,
    app: &longin_store::applications::ApplicationRecord,
) -> (&'static str, Option<String>, Option<NewRevision>) {
    match delivery {
        Delivery::Ping { .. } => ("pong", None, None),
        Delivery::Other { event } => (
            "ignored",
            Some(format!("event {event:?} is not handled")),
            None,
        ),
        Delivery::Push(push) => match &app.spec.source {
            Some(source) => match judge_push(&push, &source.git.url, &source.git.branch) {
                PushVerdict::Deploy { commit } => (
                    "queued",
                    None,
                    Some(NewRevision {
                        trigger: "webhook".to_owned(),
                        source: Some(source.git.clone()),
                        commit: Some(commit),
                        ..NewRevision::default()
                    }),
                ),
                PushVerdict::Ignored(why) => ("ignored", Some(why.as_str().to_owned()), None),
            },
            // No source: the user's own CI pushed an image; pull it again.
            None if push.deleted || push.after.bytes().all(|b| b == b'0') => {
                ("ignored", Some("branch_deleted".to_owned()), None)
            }
            None => (
                "queued",
                None,
                Some(crate::deployments::redeploy_of(app, "webhook")),
            ),
        },
    }
}
