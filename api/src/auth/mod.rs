//! Authentication: registration, sign-in, token refresh with rotation, sign-out,
//! personal API tokens, and the extractors that tell handlers who is calling.

pub mod api_token;
mod handlers;
pub mod jwt;
pub mod limiter;
pub mod password;
pub mod principal;
pub mod registration;
pub mod secret;
pub mod session;

pub use handlers::router;
pub use principal::{AdminUser, AuthUser, Credential, SessionUser};
