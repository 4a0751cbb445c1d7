//! The `/api/auth` routes.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use longin_store::StoreError;
use longin_store::refresh_tokens::Spend;
use longin_store::users::{NewUser, Role};

use super::principal::AuthUser;
use super::registration::{self, RegisterRequest};
use super::session::{self, TokenResponse, hash_token, refresh_cookie};
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::extract::{AppBytes, AppJson, ClientAddr};
use crate::users::UserView;

/// The auth routes, with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(registration_state))
}

/// Creates an account and signs it in. The installation's first account is its admin;
/// after it, registration is closed unless the server runs with `--registration open`.
#[utoipa::path(
    post, path = "/api/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created and signed in", body = TokenResponse),
        (status = 400, description = "Invalid fields, each listed", body = ErrorBody),
        (status = 403, description = "Registration is closed", body = ErrorBody),
        (status = 409, description = "Username or email taken", body = ErrorBody),
    )
)]
async fn register(
    State(ctx): State<ApiContext>,
    headers: HeaderMap,
    AppJson(form): AppJson<RegisterRequest>,
) -> Result<Response, AppError> {
    let open = ctx.config.open_registration;
    // Closed registration still admits the installation's first account; this early
    // check spares a hash for everyone after it (the store decides again, atomically).
    if !open && ctx.store.has_users().await? {
        return Err(registration_closed());
    }
    let registration = registration::validate(form).map_err(AppError::Validation)?;
    // The unique constraints decide; this early check only spares a hash for the
    // common case of a name that is plainly taken.
    if ctx
        .store
        .user_by_username(&registration.username)
        .await?
        .is_some()
    {
        return Err(taken("username"));
    }
    let password_hash = ctx
        .passwords
        .hash(&registration.password)
        .await
        .map_err(AppError::internal)?;
    let registered = ctx
        .store
        .register_user(
            &NewUser {
                username: &registration.username,
                email: &registration.email,
                password_hash: &password_hash,
                role: Role::User,
            },
            open,
        )
        .await
        .map_err(conflict_to_field)?;
    let user = match registered {
        longin_store::users::Registration::Created(user) => user,
        longin_store::users::Registration::Closed => return Err(registration_closed()),
    };
    if user.role == Role::Admin {
        tracing::warn!(user_id = %user.id, username = %user.username, "first account registered: it is the admin");
    }
    tracing::info!(user_id = %user.id, username = %user.username, "user registered");
    let tokens = session::issue(&ctx, &user, None).await?;
    Ok(with_refresh_cookie(StatusCode::CREATED, tokens, &headers))
}

/// Whether the sign-in page should offer registration.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RegistrationState {
    /// Registering an account would be accepted now.
    open: bool,
    /// No account exists: the next one registered becomes the admin.
    first_account: bool,
}

/// Whether registration is open, and whether the next account is the first (the
/// admin). Public: the sign-in page asks before anyone is signed in.
#[utoipa::path(
    get, path = "/api/auth/registration", tag = "auth",
    responses((status = 200, description = "Registration now", body = RegistrationState))
)]
async fn registration_state(
    State(ctx): State<ApiContext>,
) -> Result<axum::Json<RegistrationState>, AppError> {
    let first_account = !ctx.store.has_users().await?;
    Ok(axum::Json(RegistrationState {
        open: first_account || ctx.config.open_registration,
        first_account,
    }))
}

/// Reserves one sign-in attempt under every key, or refuses with 429 when a key is
/// at its limit (taking back what was reserved under the keys before it).
async fn reserve_attempts(
    ctx: &ApiContext,
    limits: &[(&str, crate::auth::limiter::Limit)],
) -> Result<(), AppError> {
    for (i, &(key, limit)) in limits.iter().enumerate() {
        let refused = ctx
            .login_failures
            .reserve(key, limit)
            .await
            .map_err(AppError::internal)?;
        if let Some(wait) = refused {
            for &(reserved, _) in &limits[..i] {
                ctx.login_failures
                    .release(reserved)
                    .await
                    .map_err(AppError::internal)?;
            }
            metrics::counter!("longin_login_rate_limited_total").increment(1);
            return Err(AppError::TooManyRequests {
                retry_after_secs: wait.as_secs() + 1,
            });
        }
    }
    Ok(())
}

fn registration_closed() -> AppError {
    AppError::Forbidden("registration is closed; ask an admin for an account".to_owned())
}

fn taken(field: &str) -> AppError {
    AppError::Conflict {
        code: "conflict",
        message: format!("{field} is already taken"),
        fields: FieldErrors::from([(field.to_owned(), "is already taken".to_owned())]),
    }
}

fn conflict_to_field(err: StoreError) -> AppError {
    match err {
        StoreError::Conflict { constraint } if constraint == "users_username_key" => {
            taken("username")
        }
        StoreError::Conflict { constraint } if constraint == "users_email_key" => taken("email"),
        other => AppError::internal(other),
    }
}

fn with_refresh_cookie(status: StatusCode, tokens: TokenResponse, request: &HeaderMap) -> Response {
    let cookie = refresh_cookie(
        Some(&tokens.refresh_token),
        tokens.refresh_expires_in,
        request,
    );
    // Tokens must not sit in any cache (OWASP ASVS 8.2.1).
    (
        status,
        [
            (header::SET_COOKIE, cookie),
            (
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            ),
        ],
        axum::Json(tokens),
    )
        .into_response()
}

/// Sign-in form.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
struct LoginRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 32)]
    username: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 1024)]
    password: Option<String>,
}

/// Signs in with username and password.
#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the refresh token is also set as an HttpOnly cookie", body = TokenResponse),
        (status = 400, description = "Missing fields", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 403, description = "Account disabled", body = ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody),
    )
)]
async fn login(
    State(ctx): State<ApiContext>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    AppJson(form): AppJson<LoginRequest>,
) -> Result<Response, AppError> {
    let mut missing = FieldErrors::new();
    let username = form.username.filter(|u| !u.is_empty());
    let password = form.password.filter(|p| !p.is_empty());
    if username.is_none() {
        missing.insert("username".to_owned(), "is required".to_owned());
    }
    if password.is_none() {
        missing.insert("password".to_owned(), "is required".to_owned());
    }
    let (Some(username), Some(password)) = (username, password) else {
        return Err(AppError::Validation(missing));
    };
    if password.chars().count() > registration::MAX_PASSWORD_CHARS {
        return Err(AppError::field("password", "is too long"));
    }

    // Keys are bounded: a name longer than any that can be registered is refused
    // before anything is keyed by it (counted in characters, as the document's
    // maxLength is; registered names are ASCII, so no name that exists is refused).
    if username.chars().count() > registration::MAX_USERNAME_BYTES {
        return Err(AppError::field("username", "is too long"));
    }
    let account_key = format!("account:{}", username.to_lowercase());
    let client_key = format!(
        "client:{}",
        client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    );
    let limits = [
        (account_key.as_str(), ctx.config.account_limit),
        (client_key.as_str(), ctx.config.client_limit),
    ];
    reserve_attempts(&ctx, &limits).await?;

    // A name that cannot be registered cannot exist (and PostgreSQL refuses NUL bytes).
    let user = if registration::check_username(&username).is_ok() {
        ctx.store.user_by_username(&username).await?
    } else {
        None
    };
    let verified = match &user {
        Some(user) => ctx.passwords.verify(&password, &user.password_hash).await,
        None => ctx.passwords.verify_decoy(&password).await,
    }
    .map_err(AppError::internal)?;
    let Some(user) = user.filter(|_| verified) else {
        // The reservations stand: they were this failure's count.
        metrics::counter!("longin_login_failures_total").increment(1);
        return Err(AppError::Unauthorized(
            "invalid username or password".to_owned(),
        ));
    };
    // A right password is no failure: the account starts over, the client's
    // reservation is taken back.
    ctx.login_failures
        .reset(&account_key)
        .await
        .map_err(AppError::internal)?;
    ctx.login_failures
        .release(&client_key)
        .await
        .map_err(AppError::internal)?;
    if user.disabled {
        return Err(AppError::Forbidden("account is disabled".to_owned()));
    }
    let last_login = ctx.store.record_login(&user.id).await?;
    let user = longin_store::users::UserRecord {
        last_login: Some(last_login),
        ..user
    };
    let tokens = session::issue(&ctx, &user, None).await?;
    Ok(with_refresh_cookie(StatusCode::OK, tokens, &headers))
}

/// The refresh token, as a JSON body when not sent as the cookie.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct RefreshRequest {
    refresh_token: Option<String>,
}

/// The refresh token of a request: the JSON body's, else the cookie's.
fn presented_refresh_token(headers: &HeaderMap, body: &Bytes) -> Result<Option<String>, AppError> {
    if !body.is_empty() {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if !is_json {
            return Err(AppError::UnsupportedMediaType(
                "expected a body with content-type application/json".to_owned(),
            ));
        }
        let invalid = |message: String| AppError::BadRequest {
            code: "malformed_json",
            message,
        };
        // An object, or `null` for none (as the document allows); serde alone would
        // read a struct from a list too.
        let form = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Null) => None,
            Ok(value @ serde_json::Value::Object(_)) => Some(
                serde_json::from_value::<RefreshRequest>(value)
                    .map_err(|err| invalid(err.to_string()))?,
            ),
            Ok(_) => return Err(invalid("expected a JSON object".to_owned())),
            Err(err) => return Err(invalid(err.to_string())),
        };
        if let Some(token) = form.and_then(|f| f.refresh_token).filter(|t| !t.is_empty()) {
            return Ok(Some(token));
        }
    }
    Ok(session::refresh_token_from_cookie(headers))
}

/// Trades a refresh token for a new access token and a new refresh token.
///
/// The presented token is spent. Presenting a spent token again revokes its whole
/// session, the newest token included.
#[utoipa::path(
    post, path = "/api/auth/refresh", tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Optional when the refreshToken cookie is sent"),
    responses(
        (status = 200, description = "New token pair", body = TokenResponse),
        (status = 401, description = "Missing, unknown, expired, revoked or reused refresh token", body = ErrorBody),
    )
)]
async fn refresh(
    State(ctx): State<ApiContext>,
    headers: HeaderMap,
    AppBytes(body): AppBytes,
) -> Result<Response, AppError> {
    let token = presented_refresh_token(&headers, &body)?
        .ok_or_else(|| AppError::Unauthorized("missing refresh token".to_owned()))?;
    let now = longin_store::now_ms();
    let spend = ctx
        .refresh_tokens
        .spend(&hash_token(&token), now)
        .await
        .map_err(AppError::internal)?;
    let (user_id, family_id) = match spend {
        Spend::Spent { user_id, family_id } => (user_id, family_id),
        Spend::Reused { family_id } => {
            tracing::warn!(%family_id, "refresh token reused; session revoked");
            metrics::counter!("longin_refresh_token_reuse_total").increment(1);
            return Err(AppError::Unauthorized(
                "refresh token was already used; the session has been revoked".to_owned(),
            ));
        }
        Spend::Invalid => {
            return Err(AppError::Unauthorized(
                "invalid or expired refresh token".to_owned(),
            ));
        }
    };
    let user = match ctx.store.user_by_id(&user_id).await {
        Ok(user) if !user.disabled => user,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(AppError::Unauthorized("account is disabled".to_owned()));
        }
        Err(err) => return Err(AppError::internal(err)),
    };
    let tokens = session::issue(&ctx, &user, Some(&family_id)).await?;
    Ok(with_refresh_cookie(StatusCode::OK, tokens, &headers))
}

/// Signs out: revokes the session of the presented refresh token and clears the cookie.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Optional when the refreshToken cookie is sent"),
    responses((status = 204, description = "Signed out (also when there was no session)"))
)]
async fn logout(
    State(ctx): State<ApiContext>,
    headers: HeaderMap,
    AppBytes(body): AppBytes,
) -> Result<Response, AppError> {
    if let Some(token) = presented_refresh_token(&headers, &body)? {
        ctx.refresh_tokens
            .revoke_family_of(&hash_token(&token))
            .await
            .map_err(AppError::internal)?;
    }
    let cleared = refresh_cookie(None, 0, &headers);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cleared)]).into_response())
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/api/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
async fn me(
    State(ctx): State<ApiContext>,
    user: AuthUser,
) -> Result<axum::Json<UserView>, AppError> {
    let record = ctx.store.user_by_id(&user.id).await?;
    Ok(axum::Json(UserView::from(&record)))
}
