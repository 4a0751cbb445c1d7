//! Tunables of the API, with the defaults a production server should run with.

use std::time::Duration;

use longin_store::applications::PortRange;
use longin_store::quotas::Quota;
use longin_store::users::{Role, UserRecord};

use crate::auth::limiter::Limit;

/// How the API behaves; `longin serve` fills it from flags and environment.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Lifetime of an access token (JWT).
    pub access_token_lifetime: Duration,
    /// Lifetime of a refresh token; each refresh issues a new one with a fresh lifetime.
    pub refresh_token_lifetime: Duration,
    /// Failed sign-ins allowed per account.
    pub account_limit: Limit,
    /// Failed sign-ins allowed per client address.
    pub client_limit: Limit,
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// How often queued request records are written to `api_logs`.
    pub audit_flush_interval: Duration,
    /// How long `api_logs` rows are kept.
    pub audit_retention: Duration,
    /// How often old audit rows and expired refresh tokens are pruned.
    pub prune_interval: Duration,
    /// Whether anyone may register (else only admins create accounts).
    pub open_registration: bool,
    /// Host ports handed to replicas.
    pub port_range: PortRange,
    /// Whether readiness includes the Docker engine (true where the controller runs).
    pub check_docker: bool,
    /// The controller's leader lease: while someone holds it, deletions are always
    /// finished by the controller.
    pub controller_lease: String,
    /// How often the collector samples containers (a metric older than two intervals
    /// is stale).
    pub metrics_interval: Duration,
    /// How long collected container metrics are kept.
    pub metrics_retention: Duration,
    /// The bearer token /metrics requires, if any.
    pub metrics_token: Option<String>,
    /// The data directory (its filesystem's free space is exported).
    pub data_dir: std::path::PathBuf,
    /// How often a WebSocket connection pings its client and re-checks that the user
    /// may still hold it (disabled, demoted); three silent periods close it.
    pub ws_keepalive: Duration,
    /// What each user's applications may ask for.
    pub quotas: QuotaPolicy,
    /// The HTTPS listener Kubernetes clients reach, when there is one.
    pub kube: Option<KubeEndpoint>,
    /// The engine the controller drives, and how Swarm publishes (`/api/admin/nodes`).
    pub engine: longin_controller::EngineKind,
    pub publish: longin_controller::services::PublishMode,
}

/// Where kubectl reaches this server, for `longin kubeconfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeEndpoint {
    /// The HTTPS listener's bound address.
    pub listen: std::net::SocketAddr,
    /// The CA that issued its certificate (PEM), unless the operator brought one.
    pub ca_pem: Option<String>,
}

/// The server's quotas: defaults for every user, an admin's figures for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// Limits of a user an admin set none for.
    pub default: Quota,
    /// Whether admins without figures of their own are limited by nothing.
    pub admins_exempt: bool,
}

impl Default for QuotaPolicy {
    fn default() -> Self {
        Self {
            default: Quota {
                apps: Some(20),
                replicas: Some(40),
                memory_bytes: Some(20 << 30),
            },
            admins_exempt: true,
        }
    }
}

impl QuotaPolicy {
    /// The limits that hold for `user`: each of the user's own figures, else the
    /// default's; an admin with none of their own is exempt when admins are.
    #[must_use]
    pub fn for_user(&self, user: &UserRecord) -> Quota {
        let own = user.quota;
        if self.admins_exempt && user.role == Role::Admin && own == Quota::default() {
            return Quota::default();
        }
        Quota {
            apps: own.apps.or(self.default.apps),
            replicas: own.replicas.or(self.default.replicas),
            memory_bytes: own.memory_bytes.or(self.default.memory_bytes),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        let fifteen_minutes = Duration::from_secs(15 * 60);
        Self {
            access_token_lifetime: fifteen_minutes,
            refresh_token_lifetime: Duration::from_secs(7 * 24 * 3600),
            account_limit: Limit {
                max_failures: 10,
                window: fifteen_minutes,
            },
            client_limit: Limit {
                max_failures: 50,
                window: fifteen_minutes,
            },
            body_limit_bytes: 1024 * 1024,
            audit_flush_interval: Duration::from_secs(1),
            audit_retention: Duration::from_secs(30 * 24 * 3600),
            prune_interval: Duration::from_secs(3600),
            open_registration: true,
            port_range: PortRange::default(),
            check_docker: false,
            controller_lease: "controller:longin".to_owned(),
            metrics_interval: Duration::from_secs(30),
            metrics_retention: Duration::from_secs(7 * 24 * 3600),
            metrics_token: None,
            data_dir: std::path::PathBuf::from("."),
            ws_keepalive: Duration::from_secs(30),
            quotas: QuotaPolicy::default(),
            kube: None,
            engine: longin_controller::EngineKind::Docker,
            publish: longin_controller::services::PublishMode::Host,
        }
    }
}
