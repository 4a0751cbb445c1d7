//! The `/api/admin` routes: managing users and reading the request audit log.
//! Admins only; everyone else gets 403.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use longin_store::StoreError;
use longin_store::api_logs::{ApiLogFilter, ApiLogRecord};
use longin_store::users::{Role, UserChange};

use crate::auth::AdminUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::extract::{AppJson, AppQuery};
use crate::pagination::{Page, PageQuery};
use crate::users::{QuotaView, UserView};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(update_user))
        .routes(routes!(list_api_logs))
}

/// Lists every user, oldest first.
#[utoipa::path(
    get, path = "/api/admin/users", tag = "admin",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of users", body = Page<UserView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
async fn list_users(
    State(ctx): State<ApiContext>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<PageQuery>,
) -> Result<axum::Json<Page<UserView>>, AppError> {
    let (limit, offset) = query.limit_offset()?;
    let (users, total) = ctx.store.list_users(limit, offset).await?;
    Ok(axum::Json(
        query.page(users.iter().map(UserView::from).collect(), total),
    ))
}

/// An admin's change to an account.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
struct UserPatch {
    /// `admin` or `user`.
    #[schema(pattern = "^(admin|user)$")]
    role: Option<String>,
    /// A disabled user cannot sign in, and their tokens stop working at once.
    disabled: Option<bool>,
    /// The account's own limits, replacing any it had; a `null` figure is the
    /// server's default.
    quota: Option<QuotaView>,
}

/// Changes a user's role, disables (enables) the account, or sets its quota.
#[utoipa::path(
    patch, path = "/api/admin/users/{id}", tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id (a UUID)")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user as changed (an empty patch changes nothing)", body = UserView),
        (status = 400, description = "Invalid change", body = ErrorBody),
        (status = 403, description = "Not an admin, or an admin disabling or demoting themselves", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn update_user(
    State(ctx): State<ApiContext>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    AppJson(patch): AppJson<UserPatch>,
) -> Result<axum::Json<UserView>, AppError> {
    let mut errors = FieldErrors::new();
    let role = match patch.role.as_deref() {
        None => None,
        Some(name) => match Role::parse(name) {
            Some(role) => Some(role),
            None => {
                errors.insert(
                    "role".to_owned(),
                    "must be \"admin\" or \"user\"".to_owned(),
                );
                None
            }
        },
    };
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(AppError::NotFound(format!(
            "no user with id {}",
            id.escape_debug()
        )));
    }
    for field in patch
        .quota
        .as_ref()
        .map(QuotaView::out_of_range)
        .unwrap_or_default()
    {
        errors.insert(field.to_owned(), format!("must be at most {}", i64::MAX));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    // An admin locking themselves out would leave nobody to undo it. The request is
    // well-formed; who makes it is what is refused.
    if id == admin.id && (patch.disabled == Some(true) || role == Some(Role::User)) {
        return Err(AppError::Forbidden(
            "an admin cannot disable or demote themselves".to_owned(),
        ));
    }
    let user = match ctx
        .store
        .update_user(
            &id,
            UserChange {
                role,
                disabled: patch.disabled,
                quota: patch.quota.map(Into::into),
            },
        )
        .await
    {
        Ok(user) => user,
        Err(StoreError::NotFound) => {
            return Err(AppError::NotFound(format!("no user with id {id}")));
        }
        Err(err) => return Err(AppError::internal(err)),
    };
    if user.disabled {
        ctx.refresh_tokens
            .revoke_user(&user.id)
            .await
            .map_err(AppError::internal)?;
    }
    tracing::info!(admin = %admin.username, user_id = %user.id, role = user.role.as_str(), disabled = user.disabled, quota = ?user.quota, "user changed by admin");
    Ok(axum::Json(UserView::from(&user)))
}

/// Filters of the audit log listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
struct ApiLogQuery {
    /// 1-based page number; default 1.
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<i64>,
    /// Items per page, 1–500; default 50.
    #[param(minimum = 1, maximum = 500)]
    per_page: Option<i64>,
    /// HTTP method, e.g. `POST`.
    #[param(pattern = "^[A-Za-z]+$")]
    method: Option<String>,
    /// Matched route template, e.g. `/api/auth/login`.
    #[param(pattern = "^[^\\u0000]*$")]
    route: Option<String>,
    #[param(minimum = 0, maximum = 65535)]
    status: Option<u16>,
    #[param(pattern = "^[^\\u0000]*$")]
    user_id: Option<String>,
    #[param(pattern = "^[^\\u0000]*$")]
    application_id: Option<String>,
    /// RFC 3339 time or milliseconds since the epoch; inclusive.
    #[param(value_type = Option<crate::openapi::InstantMillis>, inline)]
    since: Option<String>,
    /// RFC 3339 time or milliseconds since the epoch; exclusive.
    #[param(value_type = Option<crate::openapi::InstantMillis>, inline)]
    until: Option<String>,
}

/// A stored request record.
#[derive(Debug, Serialize, ToSchema)]
struct ApiLogView {
    id: i64,
    method: String,
    route: String,
    status: u16,
    duration_ms: f64,
    user_id: Option<String>,
    application_id: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<ApiLogRecord> for ApiLogView {
    fn from(r: ApiLogRecord) -> Self {
        Self {
            id: r.id,
            method: r.entry.method,
            route: r.entry.route,
            status: r.entry.status,
            duration_ms: r.entry.duration_ms,
            user_id: r.entry.user_id,
            application_id: r.entry.application_id,
            created_at: crate::users::time_from_ms(r.entry.created_at),
        }
    }
}

fn parse_time(field: &str, value: Option<&str>, errors: &mut FieldErrors) -> Option<i64> {
    let value = value?;
    if let Ok(ms) = value.parse::<i64>() {
        return Some(ms);
    }
    match chrono::DateTime::parse_from_rfc3339(value) {
        Ok(time) => Some(time.timestamp_millis()),
        Err(_) => {
            errors.insert(
                field.to_owned(),
                "must be an RFC 3339 time or milliseconds since the epoch".to_owned(),
            );
            None
        }
    }
}

/// Lists request records, newest first. Query strings and bodies are never recorded.
#[utoipa::path(
    get, path = "/api/admin/api-logs", tag = "admin",
    security(("bearer" = [])),
    params(ApiLogQuery),
    responses(
        (status = 200, description = "One page of request records", body = Page<ApiLogView>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
async fn list_api_logs(
    State(ctx): State<ApiContext>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<ApiLogQuery>,
) -> Result<axum::Json<Page<ApiLogView>>, AppError> {
    let paging = PageQuery {
        page: query.page,
        per_page: query.per_page,
    };
    let mut errors = FieldErrors::new();
    let since = parse_time("since", query.since.as_deref(), &mut errors);
    let until = parse_time("until", query.until.as_deref(), &mut errors);
    if let Some(method) = &query.method
        && (method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        errors.insert("method".to_owned(), "must be an HTTP method".to_owned());
    }
    for (field, value) in [
        ("route", &query.route),
        ("user_id", &query.user_id),
        ("application_id", &query.application_id),
    ] {
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            errors.insert(field.to_owned(), "must not contain NUL bytes".to_owned());
        }
    }
    let (limit, offset) = match paging.limit_offset() {
        Ok(bounds) => bounds,
        Err(AppError::Validation(more)) => {
            errors.extend(more);
            (0, 0)
        }
        Err(other) => return Err(other),
    };
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let filter = ApiLogFilter {
        method: query.method.map(|m| m.to_ascii_uppercase()),
        route: query.route,
        status: query.status,
        user_id: query.user_id,
        application_id: query.application_id,
        since,
        until,
    };
    let (records, total) = ctx.store.list_api_logs(&filter, limit, offset).await?;
    Ok(axum::Json(paging.page(
        records.into_iter().map(ApiLogView::from).collect(),
        total,
    )))
}
