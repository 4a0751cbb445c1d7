//! Personal API tokens: long-lived bearer tokens for kubectl and CI scripts, which
//! cannot refresh a session. Created, listed and revoked by the signed-in user with a
//! session's access token only: an API token that leaks must not be able to mint its
//! own successors. The token is shown once, at creation; only its hash is kept.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use longin_store::api_tokens::{ApiTokenError, ApiTokenRecord, NewApiToken};

use crate::auth::{SessionUser, api_token};
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::extract::AppJson;
use crate::users::time_from_ms;

/// A token's lifetime when the request does not say.
const DEFAULT_DAYS: i64 = 90;
/// Ten years: long enough for any pipeline, short of forever.
const MAX_DAYS: i64 = 3650;
const MS_PER_DAY: i64 = 86_400_000;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

/// A new token's name and lifetime. Every field is optional in the type so that a
/// missing name is reported as a field, like a bad one; the document says it is
/// required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct NewTokenRequest {
    /// 1–63 of `a-z 0-9 -`, a letter or digit at both ends; unique among the caller's
    /// tokens.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 63, pattern = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    name: Option<String>,
    /// Days until the token stops working, 1–3650; 90 when left out (or `null`).
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<i64>,
}

/// A request that passed every rule.
#[derive(Debug, PartialEq, Eq)]
struct ValidRequest {
    name: String,
    days: i64,
}

/// Checks a new token's request. Pure.
fn validate(form: NewTokenRequest) -> Result<ValidRequest, FieldErrors> {
    let mut errors = FieldErrors::new();
    let name = form.name.unwrap_or_default();
    if name.is_empty() {
        errors.insert("name".to_owned(), "is required".to_owned());
    } else if let Err(err) = longin_crds::validate_dns1123_label(&name) {
        errors.insert("name".to_owned(), err.to_string());
    }
    let days = form.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        errors.insert(
            "expiresInDays".to_owned(),
            format!("must be from 1 to {MAX_DAYS}"),
        );
    }
    if errors.is_empty() {
        Ok(ValidRequest { name, days })
    } else {
        Err(errors)
    }
}

/// A token just created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewToken {
    name: String,
    /// Shown this once: only its hash is kept. Send it as `Authorization: Bearer …`.
    token: String,
    created_at: DateTime<Utc>,
    /// `null`: never expires.
    expires_at: Option<DateTime<Utc>>,
}

/// A token as its owner sees it later: never its value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TokenView {
    name: String,
    created_at: DateTime<Utc>,
    /// To the minute: uses within a minute of the last one recorded are not written.
    last_used_at: Option<DateTime<Utc>>,
    /// `null`: never expires.
    expires_at: Option<DateTime<Utc>>,
}

impl From<ApiTokenRecord> for TokenView {
    fn from(t: ApiTokenRecord) -> Self {
        Self {
            name: t.name,
            created_at: time_from_ms(t.created_at),
            last_used_at: t.last_used_at.map(time_from_ms),
            expires_at: t.expires_at.map(time_from_ms),
        }
    }
}

/// The caller's tokens.
#[derive(Debug, Serialize, ToSchema)]
struct TokenList {
    /// By name.
    items: Vec<TokenView>,
}

/// Creates a personal API token for kubectl or CI (`Authorization: Bearer lgn_…`). It
/// acts as its owner on every route but these three.
#[utoipa::path(
    post, path = "/api/tokens", tag = "auth",
    security(("bearer" = [])),
    request_body(content = NewTokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the token is shown this once", body = NewToken),
        (status = 400, description = "Invalid fields, each named", body = ErrorBody),
        (status = 403, description = "Called with an API token: tokens are managed with a session's access token", body = ErrorBody),
        (status = 409, description = "A token of that name exists, or the caller has 50 already", body = ErrorBody),
    )
)]
async fn create_token(
    State(ctx): State<ApiContext>,
    SessionUser(user): SessionUser,
    AppJson(form): AppJson<NewTokenRequest>,
) -> Result<Response, AppError> {
    let request = validate(form).map_err(AppError::Validation)?;
    let (token, token_hash) = api_token::mint();
    let record = ctx
        .store
        .create_api_token(&NewApiToken {
            user_id: &user.id,
            name: &request.name,
            token_hash: &token_hash,
            lifetime_ms: Some(request.days * MS_PER_DAY),
        })
        .await
        .map_err(refusal)?;
    tracing::info!(
        user_id = %user.id,
        username = %user.username,
        token = %record.name,
        days = request.days,
        "API token created"
    );
    let created = NewToken {
        name: record.name,
        token,
        created_at: time_from_ms(record.created_at),
        expires_at: record.expires_at.map(time_from_ms),
    };
    // The token must not sit in any cache (OWASP ASVS 8.2.1).
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(created),
    )
        .into_response())
}

fn refusal(err: ApiTokenError) -> AppError {
    match err {
        ApiTokenError::DuplicateName { name } => AppError::Conflict {
            code: "already_exists",
            message: format!("an API token named {name} already exists"),
            fields: FieldErrors::from([("name".to_owned(), "is already taken".to_owned())]),
        },
        err @ ApiTokenError::TooMany { .. } => AppError::Conflict {
            code: "too_many_tokens",
            message: err.to_string(),
            fields: FieldErrors::new(),
        },
        ApiTokenError::UnknownUser => {
            AppError::Unauthorized("the account no longer exists".to_owned())
        }
        ApiTokenError::Store(err) => AppError::internal(err),
    }
}

/// The caller's API tokens, by name: when each was made, last used and expires. Never
/// a token itself.
#[utoipa::path(
    get, path = "/api/tokens", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's tokens", body = TokenList),
        (status = 403, description = "Called with an API token: tokens are managed with a session's access token", body = ErrorBody),
    )
)]
async fn list_tokens(
    State(ctx): State<ApiContext>,
    SessionUser(user): SessionUser,
) -> Result<axum::Json<TokenList>, AppError> {
    let tokens = ctx.store.api_tokens_of(&user.id).await?;
    Ok(axum::Json(TokenList {
        items: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

/// Revokes one of the caller's API tokens: the next request with it is refused.
#[utoipa::path(
    delete, path = "/api/tokens/{name}", tag = "auth",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Called with an API token: tokens are managed with a session's access token", body = ErrorBody),
        (status = 404, description = "The caller has no token of that name", body = ErrorBody),
    )
)]
async fn revoke_token(
    State(ctx): State<ApiContext>,
    SessionUser(user): SessionUser,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    let not_found = || AppError::NotFound(format!("no API token named {}", name.escape_debug()));
    // A name no token can have is not looked for (PostgreSQL refuses some, NUL bytes).
    if longin_crds::validate_dns1123_label(&name).is_err()
        || !ctx.store.revoke_api_token(&user.id, &name).await?
    {
        return Err(not_found());
    }
    tracing::info!(
        user_id = %user.id,
        username = %user.username,
        token = %name,
        "API token revoked"
    );
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: Option<&str>, days: Option<i64>) -> NewTokenRequest {
        NewTokenRequest {
            name: name.map(str::to_owned),
            expires_in_days: days,
        }
    }

    #[test]
    fn a_token_lasts_ninety_days_unless_asked_otherwise() {
        assert_eq!(
            validate(request(Some("ci"), None)),
            Ok(ValidRequest {
                name: "ci".to_owned(),
                days: 90
            })
        );
        assert_eq!(
            validate(request(Some("ci"), Some(1))).map(|r| r.days),
            Ok(1)
        );
        assert_eq!(
            validate(request(Some("ci"), Some(MAX_DAYS))).map(|r| r.days),
            Ok(MAX_DAYS)
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = validate(request(None, Some(0))).expect_err("invalid");
        assert_eq!(errors["name"], "is required");
        assert!(errors.contains_key("expiresInDays"), "{errors:?}");
        for name in ["CI", "-ci", "ci-", "c i", "ci_1", &"x".repeat(64)] {
            let errors = validate(request(Some(name), None)).expect_err(name);
            assert!(errors.contains_key("name"), "{name}: {errors:?}");
        }
        for days in [-1, 0, MAX_DAYS + 1, i64::MAX] {
            let errors = validate(request(Some("ci"), Some(days))).expect_err("days");
            assert_eq!(errors.keys().collect::<Vec<_>>(), ["expiresInDays"]);
        }
    }

    #[test]
    fn the_longest_lifetime_fits_in_milliseconds() {
        assert!(MAX_DAYS.checked_mul(MS_PER_DAY).is_some());
    }
}
