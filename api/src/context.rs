//! The state every handler shares: cheap handles, cloned per request.

use std::sync::Arc;

use longin_store::Store;
use longin_store::bus::Bus;
use longin_store::refresh_tokens::RefreshTokenStore;

use crate::audit::AuditLog;
use crate::auth::jwt::JwtKeys;
use crate::auth::limiter::FailureCounter;
use crate::auth::password::PasswordHasher;
use crate::config::ApiConfig;
use crate::logs::LogHub;

/// Handles to everything the API talks to.
#[derive(Debug, Clone)]
pub struct ApiContext {
    pub store: Store,
    pub jwt: Arc<JwtKeys>,
    pub passwords: PasswordHasher,
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    pub login_failures: Arc<dyn FailureCounter>,
    pub audit: AuditLog,
    /// Live events (metrics cycles, status changes) for the WebSocket streams.
    pub bus: Bus,
    /// Shared engine log streams.
    pub logs: LogHub,
    /// Kubernetes watches each user holds open (`kube::watch`).
    pub kube_watches: crate::slots::PerUserSlots,
    pub config: Arc<ApiConfig>,
    /// Applications' JSON, kept per resourceVersion.
    pub rendered: crate::rendered::RenderedApplications,
}
