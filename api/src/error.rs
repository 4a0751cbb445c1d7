//! The one error type of the API and its JSON form:
//! `{"error": {"code": "...", "message": "...", "fields": {...}?}}`.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Field path → what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

/// Everything a handler can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("request validation failed")]
    Validation(FieldErrors),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        fields: FieldErrors,
    },
    /// A document that is not well-formed, with where.
    #[error("{message}")]
    Syntax {
        code: &'static str,
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// A per-user quota would be passed; nothing was written.
    #[error("{0}")]
    QuotaExceeded(longin_store::quotas::QuotaExceeded),
    /// Anything the client could not have caused. Its details are logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case identifier, e.g. `validation_failed`, `not_found`.
    pub code: String,
    pub message: String,
    /// Per-field problems, keyed by the field's path in the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
    /// Where a malformed document breaks (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The quota a refused write would pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaFigures>,
}

/// Which quota, its limit, and what the write would have made of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaFigures {
    /// `apps`, `replicas` or `memory` (bytes).
    pub resource: String,
    pub limit: u64,
    pub requested: u64,
}

impl AppError {
    /// One bad field.
    #[must_use]
    pub fn field(path: &str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(path.to_owned(), message.into())]))
    }

    /// Wraps an unexpected failure.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::Syntax { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::QuotaExceeded(_) => (StatusCode::FORBIDDEN, "quota_exceeded"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(err) = &self {
            tracing::error!(error = %format_args!("{err:#}"), "request failed");
        }
        let fields = match &self {
            Self::Validation(fields) => Some(fields.clone()),
            Self::Conflict { fields, .. } if !fields.is_empty() => Some(fields.clone()),
            _ => None,
        };
        let (line, column) = match &self {
            Self::Syntax { line, column, .. } => (*line, *column),
            _ => (None, None),
        };
        let quota = match &self {
            Self::QuotaExceeded(q) => Some(QuotaFigures {
                resource: q.resource.to_owned(),
                limit: q.limit,
                requested: q.requested,
            }),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
                fields,
                line,
                column,
                quota,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::TooManyRequests { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
    }
}

impl From<longin_store::StoreError> for AppError {
    fn from(err: longin_store::StoreError) -> Self {
        match err {
            longin_store::StoreError::NotFound => Self::NotFound("not found".to_owned()),
            other => Self::Internal(other.into()),
        }
    }
}

/// The answer for a path no route matches.
pub async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("no route for {}", uri.path()))
}

/// The answer for a known path asked with the wrong method.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(err: AppError) -> (StatusCode, serde_json::Value, Option<HeaderValue>) {
        let response = err.into_response();
        let status = response.status();
        let retry = response.headers().get(header::RETRY_AFTER).cloned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"), retry)
    }

    #[tokio::test]
    async fn validation_errors_list_their_fields() {
        let (status, body, _) = body_json(AppError::field("email", "must be a valid email")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["fields"]["email"], "must be a valid email");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let (status, body, _) = body_json(AppError::internal(anyhow::anyhow!(
            "password=hunter2 leaked"
        )))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["message"], "internal error");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn rate_limit_errors_carry_retry_after() {
        let (status, _, retry) = body_json(AppError::TooManyRequests {
            retry_after_secs: 42,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry, Some(HeaderValue::from(42u64)));
    }
}
