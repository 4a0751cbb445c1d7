//! Who is calling: the `AuthUser` and `AdminUser` extractors.
//!
//! The token only names the user; the account is read on every request so that a
//! disabled user or a changed role takes effect at once, not when the token expires.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use longin_store::StoreError;
use longin_store::users::Role;

use super::jwt::TokenError;
use crate::audit::RequestAudit;
use crate::context::ApiContext;
use crate::error::AppError;

/// A signed-in, enabled user.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
    pub role: Role,
}

impl AuthUser {
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl FromRequestParts<ApiContext> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, AppError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| AppError::Unauthorized("missing bearer token".to_owned()))?;
        Self::from_token(ctx, token, parts.extensions.get::<RequestAudit>()).await
    }
}

impl AuthUser {
    /// The user an access token belongs to, if it is valid and the account enabled.
    ///
    /// # Errors
    /// Unauthorized for a bad, expired or disabled user's token; Internal if the store
    /// fails.
    pub async fn from_token(
        ctx: &ApiContext,
        token: &str,
        audit: Option<&RequestAudit>,
    ) -> Result<Self, AppError> {
        let claims = ctx.jwt.verify(token).map_err(|err| match err {
            TokenError::Expired => AppError::Unauthorized("access token has expired".to_owned()),
            _ => AppError::Unauthorized("invalid access token".to_owned()),
        })?;
        let user = match ctx.store.user_by_id(&claims.sub).await {
            Ok(user) => user,
            Err(StoreError::NotFound) => {
                return Err(AppError::Unauthorized("invalid access token".to_owned()));
            }
            Err(err) => return Err(AppError::internal(err)),
        };
        if user.disabled {
            return Err(AppError::Unauthorized("account is disabled".to_owned()));
        }
        if let Some(audit) = audit {
            audit.set_user(&user.id);
        }
        Ok(Self {
            id: user.id,
            username: user.username,
            role: user.role,
        })
    }
}

/// A signed-in admin; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<ApiContext> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, AppError> {
        let user = AuthUser::from_request_parts(parts, ctx).await?;
        if !user.is_admin() {
            return Err(AppError::Forbidden("admin role required".to_owned()));
        }
        Ok(Self(user))
    }
}
