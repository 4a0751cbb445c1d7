//! Who is calling: the `AuthUser`, `SessionUser` and `AdminUser` extractors.
//!
//! The token only names the user; the account is read on every request so that a
//! disabled user or a changed role takes effect at once, not when the token expires.
//! A bearer token is either a session's access token (a JWT) or a personal API token
//! (`lgn_…`), which is looked up on every request too, so a revoked one stops at once.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use longin_store::StoreError;
use longin_store::users::{Role, UserRecord};

use super::api_token;
use super::jwt::TokenError;
use super::session::hash_token;
use crate::audit::RequestAudit;
use crate::context::ApiContext;
use crate::error::AppError;

/// A signed-in, enabled user.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub credential: Credential,
}

/// What the caller signed in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A session's access token (a JWT).
    Session,
    /// A personal API token, by its id: it may not manage API tokens (see
    /// [`SessionUser`]), and a connection it opened ends when it is revoked.
    ApiToken { id: String },
}

impl AuthUser {
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    #[must_use]
    pub fn via_api_token(&self) -> bool {
        matches!(self.credential, Credential::ApiToken { .. })
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
    /// The user a bearer token belongs to, if it is valid and the account enabled: an
    /// access token (JWT) or a personal API token.
    ///
    /// # Errors
    /// Unauthorized for a bad, expired, revoked or disabled user's token; Internal if
    /// the store fails.
    pub async fn from_token(
        ctx: &ApiContext,
        token: &str,
        audit: Option<&RequestAudit>,
    ) -> Result<Self, AppError> {
        let user = if api_token::is_api_token(token) {
            let found = Self::from_api_token(ctx, token).await;
            count_api_token_authentication(&found);
            found?
        } else {
            Self::from_access_token(ctx, token).await?
        };
        if let Some(audit) = audit {
            audit.set_user(&user.id);
        }
        Ok(user)
    }

    async fn from_access_token(ctx: &ApiContext, token: &str) -> Result<Self, AppError> {
        let claims = ctx.jwt.verify(token).map_err(|err| match err {
            TokenError::Expired => AppError::Unauthorized("access token has expired".to_owned()),
            _ => AppError::Unauthorized("invalid access token".to_owned()),
        })?;
        let user = enabled_account(ctx, &claims.sub, "invalid access token").await?;
        Ok(Self::signed_in(user, Credential::Session))
    }

    /// Read from the store on every request, never cached: a revoked token must be
    /// refused by the very next request, on every API process.
    async fn from_api_token(ctx: &ApiContext, token: &str) -> Result<Self, AppError> {
        let invalid = "invalid or revoked API token";
        let record = ctx
            .store
            .api_token_by_hash(&hash_token(token))
            .await
            .map_err(AppError::internal)?
            .ok_or_else(|| AppError::Unauthorized(invalid.to_owned()))?;
        let now = longin_store::now_ms();
        if record.is_expired(now) {
            return Err(AppError::Unauthorized("API token has expired".to_owned()));
        }
        let user = enabled_account(ctx, &record.user_id, invalid).await?;
        if record.touch_due(now) {
            // When a token was last used is for its owner's eyes; a failure to note it
            // should not fail the request it was noted for.
            if let Err(err) = ctx.store.touch_api_token(&record.id, now).await {
                tracing::warn!(error = %err, token = %record.name, "API token use not recorded");
            }
        }
        Ok(Self::signed_in(
            user,
            Credential::ApiToken { id: record.id },
        ))
    }

    fn signed_in(user: UserRecord, credential: Credential) -> Self {
        Self {
            id: user.id,
            username: user.username,
            role: user.role,
            credential,
        }
    }
}

/// The account `user_id`, if it exists and is enabled; `unknown` is the refusal's
/// message when it does not exist.
async fn enabled_account(
    ctx: &ApiContext,
    user_id: &str,
    unknown: &str,
) -> Result<UserRecord, AppError> {
    let user = match ctx.store.user_by_id(user_id).await {
        Ok(user) => user,
        Err(StoreError::NotFound) => {
            return Err(AppError::Unauthorized(unknown.to_owned()));
        }
        Err(err) => return Err(AppError::internal(err)),
    };
    if user.disabled {
        return Err(AppError::Unauthorized("account is disabled".to_owned()));
    }
    Ok(user)
}

/// Counts an API token's acceptance or refusal; a store failure is neither.
fn count_api_token_authentication(found: &Result<AuthUser, AppError>) {
    let outcome = match found {
        Ok(_) => "accepted",
        Err(AppError::Unauthorized(_)) => "refused",
        Err(_) => return,
    };
    metrics::counter!("longin_api_token_authentications_total", "outcome" => outcome).increment(1);
}

/// A user signed in with a session's access token, not an API token: what managing
/// API tokens takes, so that a leaked API token cannot mint itself successors or
/// outlive its revocation. An API token gets 403.
#[derive(Debug, Clone)]
pub struct SessionUser(pub AuthUser);

impl FromRequestParts<ApiContext> for SessionUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, AppError> {
        let user = AuthUser::from_request_parts(parts, ctx).await?;
        if user.via_api_token() {
            return Err(AppError::Forbidden(
                "API tokens cannot manage API tokens; use a session's access token (longin login)"
                    .to_owned(),
            ));
        }
        Ok(Self(user))
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
