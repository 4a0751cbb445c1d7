//! Sessions: the access/refresh token pair handed out at sign-in and on refresh, and
//! the refresh-token cookie.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use longin_store::StoreError;
use longin_store::refresh_tokens::NewRefreshToken;
use longin_store::users::UserRecord;

use crate::context::ApiContext;
use crate::error::AppError;
use crate::users::UserView;

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "refreshToken";
/// The cookie is only ever sent to the auth routes.
const COOKIE_PATH: &str = "/api/auth";

/// What sign-in, registration and refresh answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; also set as the HttpOnly `refreshToken` cookie.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    pub user: UserView,
}

/// A fresh random refresh token (256 bits) and the hash it is stored under.
fn new_refresh_token() -> (String, String) {
    let token = random_secret();
    let hash = hash_token(&token);
    (token, hash)
}

/// 256 random bits, base64url without padding: the secret part of every opaque token
/// (refresh tokens, API tokens).
#[must_use]
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Opaque tokens (refresh tokens, API tokens) are stored only as SHA-256 hashes: a
/// leaked table grants nothing. (They are 256 random bits, so a fast hash is enough; no
/// salt or stretching needed.)
#[must_use]
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues an access token and a refresh token in `family` (a new family when `None`).
///
/// # Errors
/// 401 when the family was revoked meanwhile; 500 on store failures.
pub async fn issue(
    ctx: &ApiContext,
    user: &UserRecord,
    family: Option<&str>,
) -> Result<TokenResponse, AppError> {
    let now = chrono::Utc::now();
    let access_token = ctx
        .jwt
        .issue(&user.id, user.role, now.timestamp())
        .map_err(AppError::internal)?;
    let (refresh_token, token_hash) = new_refresh_token();
    let family_id = family.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let lifetime = ctx.config.refresh_token_lifetime;
    let expires_at =
        now.timestamp_millis() + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2);
    match ctx
        .refresh_tokens
        .insert(&NewRefreshToken {
            token_hash: &token_hash,
            family_id: &family_id,
            user_id: &user.id,
            expires_at,
        })
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(AppError::Unauthorized(
                "session has been revoked".to_owned(),
            ));
        }
        Err(err) => return Err(AppError::internal(err)),
    }
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ctx.jwt.lifetime().as_secs(),
        refresh_token,
        refresh_expires_in: lifetime.as_secs(),
        user: UserView::from(user),
    })
}

/// The `Set-Cookie` value carrying a refresh token, or clearing it when `token` is None.
///
/// `Secure` is left out only for plain-HTTP requests to a loopback host, where a
/// browser would otherwise drop the cookie during local development.
#[must_use]
pub fn refresh_cookie(token: Option<&str>, max_age_secs: u64, request: &HeaderMap) -> HeaderValue {
    let (value, max_age) = match token {
        Some(token) => (token, max_age_secs),
        None => ("", 0),
    };
    let mut cookie = format!(
        "{REFRESH_COOKIE}={value}; HttpOnly; SameSite=Strict; Path={COOKIE_PATH}; Max-Age={max_age}"
    );
    if !is_plain_http_localhost(request) {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn is_plain_http_localhost(request: &HeaderMap) -> bool {
    let forwarded_https = request
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let host = request
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let hostname = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default().to_owned()
    };
    !forwarded_https
        && (hostname == "localhost" || hostname == "[::1]" || hostname.starts_with("127."))
}

/// The refresh token from the `refreshToken` cookie, if the request has one.
#[must_use]
pub fn refresh_token_from_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == REFRESH_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn cookie_is_secure_except_on_plain_http_localhost() {
        let local = refresh_cookie(Some("t"), 60, &headers(&[("host", "127.0.0.1:3001")]));
        let local = local.to_str().expect("ascii");
        assert!(
            local.starts_with(
                "refreshToken=t; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age=60"
            )
        );
        assert!(!local.contains("Secure"));
        for h in [
            headers(&[("host", "longin.example.com")]),
            headers(&[("host", "localhost:3001"), ("x-forwarded-proto", "https")]),
            headers(&[]),
        ] {
            assert!(
                refresh_cookie(Some("t"), 60, &h)
                    .to_str()
                    .expect("ascii")
                    .ends_with("; Secure")
            );
        }
    }

    #[test]
    fn cleared_cookie_expires_at_once() {
        let cleared = refresh_cookie(None, 60, &headers(&[("host", "localhost")]));
        assert!(
            cleared
                .to_str()
                .expect("ascii")
                .contains("refreshToken=; HttpOnly")
        );
        assert!(cleared.to_str().expect("ascii").contains("Max-Age=0"));
    }

    #[test]
    fn refresh_token_is_read_from_among_other_cookies() {
        let h = headers(&[("cookie", "theme=dark; refreshToken=abc123; other=1")]);
        assert_eq!(refresh_token_from_cookie(&h).as_deref(), Some("abc123"));
        assert_eq!(
            refresh_token_from_cookie(&headers(&[("cookie", "refreshToken=")])),
            None
        );
    }

    #[test]
    fn token_hash_is_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
