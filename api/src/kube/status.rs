//! Errors as Kubernetes `Status` objects, the form kubectl reads: it prints `message`,
//! picks its wording by `reason`, and lists `details.causes` for an Invalid object
//! (`The Application "web" is invalid: * spec.replicas: …`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::AppError;

use super::GROUP;

/// A failed Kubernetes API request.
#[derive(Debug)]
pub struct KubeError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    /// `details`: the object's name and kind, and an Invalid object's causes.
    pub name: Option<String>,
    pub causes: Vec<(String, String)>,
    /// 429's and 503's `Retry-After`.
    pub retry_after_secs: Option<u64>,
}

impl KubeError {
    pub(crate) fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            name: None,
            causes: Vec::new(),
            retry_after_secs: None,
        }
    }

    #[must_use]
    pub fn not_found(name: &str) -> Self {
        Self {
            name: Some(name.to_owned()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("applications.{GROUP} \"{name}\" not found"),
            )
        }
    }

    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    #[must_use]
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            message,
        )
    }

    #[must_use]
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message)
    }

    /// A watch from a version older than the kept history: the client lists again.
    #[must_use]
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    /// An object that breaks the schema's rules, one cause per field.
    #[must_use]
    pub fn invalid(name: &str, causes: Vec<(String, String)>) -> Self {
        let list = causes
            .iter()
            .map(|(field, message)| format!("{field}: Invalid value: {message}"))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            name: Some(name.to_owned()),
            causes,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("Application.{GROUP} \"{name}\" is invalid: [{list}]"),
            )
        }
    }

    /// Names the object the request was about, where the error did not.
    #[must_use]
    pub fn about(mut self, name: &str) -> Self {
        if self.name.is_none() {
            self.name = Some(name.to_owned());
        }
        self
    }

    /// The `Status` object.
    #[must_use]
    pub fn to_status(&self) -> Value {
        let mut details = json!({"group": GROUP, "kind": "applications"});
        if let Some(name) = &self.name {
            details["name"] = json!(name);
        }
        if self.reason == "Invalid" {
            details["kind"] = json!("Application");
            details["causes"] = self
                .causes
                .iter()
                .map(|(field, message)| {
                    json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: {message}"), "field": field})
                })
                .collect();
        }
        if let Some(secs) = self.retry_after_secs {
            details["retryAfterSeconds"] = json!(secs);
        }
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": details,
            "code": self.code.as_u16(),
        })
    }
}

impl IntoResponse for KubeError {
    fn into_response(self) -> Response {
        if self.code.is_server_error() {
            tracing::warn!(code = self.code.as_u16(), message = %self.message, "kubernetes API request failed");
        }
        let mut response = (self.code, axum::Json(self.to_status())).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = secs.to_string().parse()
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// Longin's own errors in Kubernetes' words. Field errors become an Invalid object's
/// causes; a conflict keeps its message ("is stale; read the application again").
impl From<AppError> for KubeError {
    fn from(err: AppError) -> Self {
        let message = err.to_string();
        match err {
            AppError::Validation(fields) => Self::invalid("", fields.into_iter().collect()),
            AppError::BadRequest { .. } | AppError::Syntax { .. } => Self::bad_request(message),
            // kubectl shows it as "You must be logged in to the server (MESSAGE)".
            AppError::Unauthorized(_) => Self::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                format!("Unauthorized: {message}"),
            ),
            AppError::Forbidden(_) => Self::forbidden(message),
            AppError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "NotFound", message),
            AppError::MethodNotAllowed => Self::method_not_allowed(message),
            AppError::Conflict { code, .. } => Self::new(
                StatusCode::CONFLICT,
                if code == "already_exists" {
                    "AlreadyExists"
                } else {
                    "Conflict"
                },
                message,
            ),
            AppError::PayloadTooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                message,
            ),
            AppError::UnsupportedMediaType(_) => Self::unsupported_media_type(message),
            AppError::TooManyRequests { retry_after_secs } => Self {
                retry_after_secs: Some(retry_after_secs),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message)
            },
            AppError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                message,
            ),
            AppError::QuotaExceeded(_) => Self::forbidden(message),
            AppError::Internal(source) => {
                tracing::error!(error = ?source, "kubernetes API request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "internal error",
                )
            }
        }
    }
}

impl From<longin_store::StoreError> for KubeError {
    fn from(err: longin_store::StoreError) -> Self {
        AppError::internal(err).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_object_lists_each_field_as_a_cause() {
        let status = KubeError::invalid(
            "web",
            vec![
                ("spec.replicas".to_owned(), "must be at least 0".to_owned()),
                ("spec.image".to_owned(), "is required".to_owned()),
            ],
        )
        .to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["details"]["kind"], "Application");
        assert_eq!(status["details"]["name"], "web");
        assert_eq!(status["details"]["causes"][0]["field"], "spec.replicas");
        assert_eq!(status["details"]["causes"][1]["field"], "spec.image");
        assert!(status["message"].as_str().is_some_and(|m| {
            m.starts_with("Application.longin.io \"web\" is invalid: [spec.replicas")
        }));
    }

    #[test]
    fn longin_errors_keep_their_meaning() {
        let conflict: KubeError = AppError::Conflict {
            code: "already_exists",
            message: "exists".to_owned(),
            fields: crate::error::FieldErrors::new(),
        }
        .into();
        assert_eq!(
            (conflict.code, conflict.reason),
            (StatusCode::CONFLICT, "AlreadyExists")
        );
        let stale: KubeError = AppError::Conflict {
            code: "stale_resource_version",
            message: "stale".to_owned(),
            fields: crate::error::FieldErrors::new(),
        }
        .into();
        assert_eq!(stale.reason, "Conflict");
        let internal: KubeError = AppError::internal(anyhow::anyhow!("secret detail")).into();
        assert_eq!(internal.code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.message.contains("secret detail"));
    }
}
