//! Who may reach which application or container: the one place a route turns a name
//! (and an admin's `?owner=`) into a record the caller may act on. Someone else's
//! application or container is "not found" to a non-admin: its existence is not
//! revealed. Route modules use this module, never each other.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;

use longin_store::applications::ApplicationRecord;
use longin_store::containers::OwnedContainer;

use crate::audit::RequestAudit;
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::AppError;
use crate::extract::AppQuery;

/// Whose applications a request is about.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct OwnerQuery {
    /// Admins only: act on this user's applications instead of their own.
    pub(crate) owner: Option<String>,
}

/// The owner id the request acts for: the caller's own, or (admins only) the named
/// user's.
pub(crate) async fn owner_id(
    ctx: &ApiContext,
    user: &AuthUser,
    owner: Option<&str>,
) -> Result<String, AppError> {
    match owner {
        None => Ok(user.id.clone()),
        Some(name) if name == user.username => Ok(user.id.clone()),
        Some(name) if crate::auth::registration::check_username(name).is_err() => Err(
            AppError::NotFound(format!("no user named {}", name.escape_debug())),
        ),
        Some(_) if !user.is_admin() => Err(AppError::Forbidden(
            "only admins may act for another owner".to_owned(),
        )),
        Some(name) => match ctx.store.user_by_username(name).await? {
            Some(owner) => Ok(owner.id),
            None => Err(AppError::NotFound(format!("no user named {name}"))),
        },
    }
}

/// A name that cannot be an application's is not found (not a 400: the path names a
/// resource, and there is none by that name).
pub(crate) fn check_name(name: &str) -> Result<(), AppError> {
    if longin_crds::validate_dns1123_label(name).is_err() {
        return Err(app_not_found(name));
    }
    Ok(())
}

pub(crate) fn app_not_found(name: &str) -> AppError {
    AppError::NotFound(format!("application {} not found", name.escape_debug()))
}

/// Application `name` of the owner the request acts for; noted in the audit record.
pub(crate) async fn find(
    ctx: &ApiContext,
    user: &AuthUser,
    owner: Option<&str>,
    name: &str,
    audit: Option<&RequestAudit>,
) -> Result<ApplicationRecord, AppError> {
    check_name(name)?;
    let owner = owner_id(ctx, user, owner).await?;
    let record = ctx
        .store
        .application(&owner, name)
        .await?
        .ok_or_else(|| app_not_found(name))?;
    if let Some(audit) = audit {
        audit.set_application(&record.id);
    }
    Ok(record)
}

/// The container `id` if the caller may see it (its owner, or an admin).
pub(crate) async fn visible_container(
    ctx: &ApiContext,
    user: &AuthUser,
    id: &str,
    audit: Option<&RequestAudit>,
) -> Result<OwnedContainer, AppError> {
    let not_found = || AppError::NotFound(format!("container {} not found", id.escape_debug()));
    if id.is_empty() || id.len() > 128 {
        return Err(not_found());
    }
    let c = ctx
        .store
        .owned_container(id)
        .await?
        .filter(|c| c.owner_id == user.id || user.is_admin())
        .ok_or_else(not_found)?;
    if let Some(audit) = audit {
        audit.set_application(&c.application_id);
    }
    Ok(c)
}

/// The application a `/api/applications/{name}…` route names, for the owner the
/// request acts for (`?owner=`), as [`find`] resolves it: a handler taking it needs no
/// other extractor to reach the app. Rejections: 401, 403, 404 as JSON errors.
#[derive(Debug)]
pub(crate) struct OwnedApp {
    pub(crate) record: ApplicationRecord,
}

impl FromRequestParts<ApiContext> for OwnedApp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, AppError> {
        let user = AuthUser::from_request_parts(parts, ctx).await?;
        // By name: the route may name more than the application (`{revision}`).
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, ctx)
                .await
                .map_err(|_| AppError::NotFound("no such application".to_owned()))?;
        let name = params
            .get("name")
            .cloned()
            .ok_or_else(|| AppError::NotFound("no such application".to_owned()))?;
        let AppQuery(query) = AppQuery::<OwnerQuery>::from_request_parts(parts, ctx).await?;
        let audit = parts.extensions.get::<RequestAudit>().cloned();
        let record = find(ctx, &user, query.owner.as_deref(), &name, audit.as_ref()).await?;
        Ok(Self { record })
    }
}
