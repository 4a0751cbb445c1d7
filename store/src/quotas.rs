//! Per-user quotas: how many applications, replicas and how much memory one owner's
//! applications may ask for. Checked inside the apply transaction (under the write
//! lock), so concurrent applies cannot together pass a limit.

use sqlx::{Any, Transaction};

use crate::StoreError;

/// One owner's limits; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub apps: Option<u64>,
    pub replicas: Option<u64>,
    pub memory_bytes: Option<u64>,
}

/// What one owner's applications ask for (those being deleted no longer count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub apps: u64,
    pub replicas: u64,
    /// Replicas × their memory limit.
    pub memory_bytes: u64,
}

/// A limit an apply would pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quota exceeded: {resource} would be {requested}, the limit is {limit}")]
pub struct QuotaExceeded {
    /// `apps`, `replicas` or `memory`.
    pub resource: &'static str,
    pub limit: u64,
    pub requested: u64,
}

impl Quota {
    /// Whether going from `before` to `after` is allowed: a figure may not rise above
    /// its limit. One already above it (a limit lowered later) may stay, or fall.
    ///
    /// # Errors
    /// The first limit passed.
    pub fn check(&self, before: Usage, after: Usage) -> Result<(), QuotaExceeded> {
        let figures = [
            ("apps", self.apps, before.apps, after.apps),
            ("replicas", self.replicas, before.replicas, after.replicas),
            (
                "memory",
                self.memory_bytes,
                before.memory_bytes,
                after.memory_bytes,
            ),
        ];
        for (resource, limit, before, after) in figures {
            if let Some(limit) = limit
                && after > limit
                && after > before
            {
                return Err(QuotaExceeded {
                    resource,
                    limit,
                    requested: after,
                });
            }
        }
        Ok(())
    }
}

/// What `owner_id`'s applications ask for, read inside `tx`.
pub(crate) async fn usage(
    tx: &mut Transaction<'_, Any>,
    owner_id: &str,
) -> Result<Usage, StoreError> {
    let specs: Vec<String> = sqlx::query_scalar(
        "SELECT spec FROM applications WHERE owner_id = $1 AND deletion_timestamp IS NULL",
    )
    .bind(owner_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut usage = Usage::default();
    for spec in specs {
        let spec: longin_crds::application::ApplicationSpec =
            serde_json::from_str(&spec).map_err(|e| crate::applications::corrupt("spec", &e))?;
        let memory = spec.resources.memory.bytes();
        usage.apps += 1;
        usage.replicas += u64::from(spec.replicas);
        usage.memory_bytes = usage
            .memory_bytes
            .saturating_add(memory.saturating_mul(u64::from(spec.replicas)));
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Quota = Quota {
        apps: Some(2),
        replicas: Some(4),
        memory_bytes: Some(1024),
    };

    fn usage(apps: u64, replicas: u64, memory_bytes: u64) -> Usage {
        Usage {
            apps,
            replicas,
            memory_bytes,
        }
    }

    #[test]
    fn a_figure_may_reach_its_limit_but_not_pass_it() {
        assert_eq!(QUOTA.check(usage(0, 0, 0), usage(2, 4, 1024)), Ok(()));
        let err = QUOTA
            .check(usage(2, 4, 1024), usage(3, 4, 1024))
            .expect_err("a third app");
        assert_eq!((err.resource, err.limit, err.requested), ("apps", 2, 3));
        let err = QUOTA
            .check(usage(1, 1, 0), usage(1, 5, 0))
            .expect_err("five replicas");
        assert_eq!(err.resource, "replicas");
        let err = QUOTA
            .check(usage(1, 1, 0), usage(1, 2, 2048))
            .expect_err("memory");
        assert_eq!(err.resource, "memory");
    }

    #[test]
    fn usage_above_a_lowered_limit_may_stay_or_fall() {
        assert_eq!(QUOTA.check(usage(5, 9, 4096), usage(5, 9, 4096)), Ok(()));
        assert_eq!(QUOTA.check(usage(5, 9, 4096), usage(4, 3, 100)), Ok(()));
        assert!(QUOTA.check(usage(5, 9, 4096), usage(5, 10, 4096)).is_err());
    }

    #[test]
    fn no_quota_limits_nothing() {
        let none = Quota::default();
        assert_eq!(
            none.check(usage(0, 0, 0), usage(1000, 1000, u64::MAX)),
            Ok(())
        );
    }
}
