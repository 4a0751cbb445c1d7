//! Which applications are quiet: their last reconcile found nothing to do and asked to
//! be looked at again only on an event. The periodic resync skips a quiet application
//! whose containers, as one engine listing shows them, and whose revision (generation,
//! being deleted) are exactly as that reconcile saw them; every few passes it skips
//! nothing, as a safety net.
//!
//! Why: a resync that reconciles every application reads each one's containers and rows
//! again, which kept an idle controller with 100 apps above 1 % of a core. One listing
//! of all managed containers per pass answers "did anything change?" for all of them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use longin_store::status::Revision;

use crate::plan::{Observed, RunState};

/// A digest of an application's revision and its containers (identity, replica, spec,
/// port and state). Independent of listing order.
#[must_use]
pub fn fingerprint(revision: Revision, containers: &[&Observed]) -> u64 {
    let mut keys: Vec<_> = containers
        .iter()
        .map(|c| {
            let state = match c.state {
                RunState::Running => 0,
                RunState::Created => 1,
                RunState::Starting => 2,
                RunState::Exited { code } => 3 + code.unsigned_abs(),
                RunState::Gone => u64::MAX,
            };
            (&c.id, c.replica, &c.spec_hash, c.host_port, state)
        })
        .collect();
    keys.sort_unstable();
    let mut hasher = DefaultHasher::new();
    revision.hash(&mut hasher);
    keys.hash(&mut hasher);
    hasher.finish()
}

/// Quiet applications with the fingerprint their last reconcile saw.
#[derive(Debug, Clone, Default)]
pub struct QuietApps(Arc<Mutex<HashMap<String, u64>>>);

impl QuietApps {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reconcile of `app` at `revision` found nothing to do with these containers.
    pub fn settle(&self, app: &str, revision: Revision, containers: &[Observed]) {
        let fp = fingerprint(revision, &containers.iter().collect::<Vec<_>>());
        self.map().insert(app.to_owned(), fp);
    }

    /// `app` is being reconciled (or failed to be): no longer known quiet.
    pub fn forget(&self, app: &str) {
        self.map().remove(app);
    }

    /// Whether `app` is quiet, and its revision and containers are still the ones it
    /// settled with. The revision matters when a change notification was lost (the
    /// feed lagged, LISTEN reconnected): the resync then still sees the new spec.
    #[must_use]
    pub fn unchanged(&self, app: &str, revision: Revision, containers: &[&Observed]) -> bool {
        self.map()
            .get(app)
            .is_some_and(|fp| *fp == fingerprint(revision, containers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Revision = Revision {
        generation: 1,
        deleting: false,
    };

    fn c(id: &str, state: RunState) -> Observed {
        Observed {
            id: id.into(),
            replica: 0,
            spec_hash: "h".into(),
            host_port: 3100,
            state,
            created: 0,
        }
    }

    #[test]
    fn unchanged_only_while_the_containers_are_as_settled() {
        let quiet = QuietApps::default();
        let a = c("a", RunState::Running);
        let b = c("b", RunState::Running);
        assert!(!quiet.unchanged("app", R, &[&a, &b]), "never settled");
        quiet.settle("app", R, &[a.clone(), b.clone()]);
        assert!(
            quiet.unchanged("app", R, &[&b, &a]),
            "order does not matter"
        );
        assert!(!quiet.unchanged("app", R, &[&a]), "a container went away");
        let exited = c("b", RunState::Exited { code: 1 });
        assert!(
            !quiet.unchanged("app", R, &[&a, &exited]),
            "a container died"
        );
        let mut moved = b.clone();
        moved.host_port = 3101;
        assert!(!quiet.unchanged("app", R, &[&a, &moved]));
        assert!(!quiet.unchanged("other", R, &[&a, &b]));
        // A new generation (a spec change whose notification was lost) or a deletion.
        let next = Revision { generation: 2, ..R };
        assert!(!quiet.unchanged("app", next, &[&a, &b]));
        let deleting = Revision {
            deleting: true,
            ..R
        };
        assert!(!quiet.unchanged("app", deleting, &[&a, &b]));
        quiet.forget("app");
        assert!(!quiet.unchanged("app", R, &[&a, &b]));
    }

    #[test]
    fn an_app_with_no_containers_can_be_quiet() {
        let quiet = QuietApps::default();
        quiet.settle("stopped", R, &[]);
        assert!(quiet.unchanged("stopped", R, &[]));
        let a = c("a", RunState::Created);
        assert!(!quiet.unchanged("stopped", R, &[&a]));
    }
}
