//! Access tokens: HS256 JWTs, short-lived, checked strictly.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use longin_store::users::Role;

/// Who a token is issued by and for; a token of another service is refused.
const ISSUER: &str = "longin";
const AUDIENCE: &str = "longin-api";
/// The one token type that grants API access.
const ACCESS: &str = "access";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The role when issued; the server re-reads the user on each request, so a change
    /// of role or a disabled account takes effect at once.
    pub role: Role,
    pub typ: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is invalid")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("token has expired")]
    Expired,
    #[error("token is not an access token")]
    WrongType,
    #[error("could not sign token")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Signs and checks access tokens with one secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys for `secret`, issuing tokens valid for `lifetime`.
    #[must_use]
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        // Exactly one algorithm: a token whose header names another (or `none`) fails.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    /// How long an access token lives.
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Issues an access token for a user.
    ///
    /// # Errors
    /// Signing failed (it does not with an HMAC key).
    pub fn issue(&self, user_id: &str, role: Role, now_secs: i64) -> Result<String, TokenError> {
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            role,
            typ: ACCESS.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now_secs,
            exp: now_secs + i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims with this key (tests forge expired tokens with it).
    ///
    /// # Errors
    /// Signing failed.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(TokenError::Sign)
    }

    /// Checks signature, algorithm, expiry, issuer, audience and token type.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(err),
            })?;
        if data.claims.typ != ACCESS {
            return Err(TokenError::WrongType);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(900),
        )
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn issued_token_verifies_with_its_claims() {
        let keys = keys();
        let token = keys.issue("u1", Role::Admin, now()).expect("issue");
        let claims = keys.verify(&token).expect("verify");
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn token_signed_with_another_secret_is_refused() {
        let other = JwtKeys::new(
            b"another-secret-another-secret-00",
            Duration::from_secs(900),
        );
        let token = other.issue("u1", Role::User, now()).expect("issue");
        assert!(matches!(keys().verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn expired_token_is_refused() {
        let keys = keys();
        let token = keys.issue("u1", Role::User, now() - 3600).expect("issue");
        assert!(matches!(keys.verify(&token), Err(TokenError::Expired)));
    }

    #[test]
    fn alg_none_token_is_refused() {
        let keys = keys();
        let token = keys.issue("u1", Role::User, now()).expect("issue");
        let payload = token.split('.').nth(1).expect("payload");
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(keys.verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn token_of_another_type_or_audience_is_refused() {
        let keys = keys();
        let mut claims = keys
            .verify(&keys.issue("u1", Role::User, now()).expect("issue"))
            .expect("ok");
        claims.typ = "refresh".to_owned();
        assert!(matches!(
            keys.verify(&keys.sign(&claims).expect("sign")),
            Err(TokenError::WrongType)
        ));
        claims.typ = "access".to_owned();
        claims.aud = "someone-else".to_owned();
        assert!(matches!(
            keys.verify(&keys.sign(&claims).expect("sign")),
            Err(TokenError::Invalid(_))
        ));
    }
}
