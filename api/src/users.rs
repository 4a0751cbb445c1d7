//! How a user is shown to clients: never with the password hash.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use longin_store::quotas::Quota;
use longin_store::users::{Role, UserRecord};

/// A user as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: String,
    #[schema(value_type = String, example = "user")]
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    /// Limits an admin set for this account (`null`: the server's default).
    pub quota: QuotaView,
}

/// A user's own limits; each `null` is the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaView {
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub apps: Option<u64>,
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub replicas: Option<u64>,
    /// Sum over the user's apps of replicas × memory limit, in bytes.
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub memory_bytes: Option<u64>,
}

impl QuotaView {
    /// The figures the store cannot hold (it keeps signed 64-bit integers), by field.
    #[must_use]
    pub fn out_of_range(&self) -> Vec<&'static str> {
        [
            ("quota.apps", self.apps),
            ("quota.replicas", self.replicas),
            ("quota.memoryBytes", self.memory_bytes),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some_and(|v| i64::try_from(v).is_err()))
        .map(|(field, _)| field)
        .collect()
    }
}

impl From<QuotaView> for Quota {
    fn from(q: QuotaView) -> Self {
        Self {
            apps: q.apps,
            replicas: q.replicas,
            memory_bytes: q.memory_bytes,
        }
    }
}

impl From<Quota> for QuotaView {
    fn from(q: Quota) -> Self {
        Self {
            apps: q.apps,
            replicas: q.replicas,
            memory_bytes: q.memory_bytes,
        }
    }
}

/// Milliseconds since the epoch as a UTC time.
#[must_use]
pub fn time_from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id.clone(),
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role,
            disabled: user.disabled,
            created_at: time_from_ms(user.created_at),
            last_login: user.last_login.map(time_from_ms),
            quota: user.quota.into(),
        }
    }
}
