//! The restart bookkeeping of every application: CrashLoopBackOff counters per replica
//! and the Failed verdict of an application that spent its restarts. One owner for
//! what six lock sites in the reconciler used to share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use longin_crds::application::ApplicationStatus;

use crate::plan::{self, CrashLoop, RestartLimit};

/// What a replica that needs restarting may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart it.
    Go,
    /// Back off this many milliseconds first.
    Wait(i64),
    /// The replica spent its restarts: the application is Failed, for this reason.
    Failed(String),
}

#[derive(Debug, Default)]
struct Books {
    loops: HashMap<(String, u32), CrashLoop>,
    /// Failed applications, with the generation that failed and why.
    failed: HashMap<String, (i64, String)>,
}

/// Restart counters and verdicts, shared by every reconcile.
#[derive(Debug, Clone, Default)]
pub struct RestartTracker(Arc<Mutex<Books>>);

impl RestartTracker {
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Failed verdict standing for `app_id` at `generation`, if any. A newer
    /// generation clears it and the app's counters (that is what `longin restart` is
    /// for); a verdict this controller never saw (it started after) stands if the
    /// stored status says Failed for this generation.
    pub fn verdict(
        &self,
        app_id: &str,
        generation: i64,
        status: &ApplicationStatus,
    ) -> Option<String> {
        let mut books = self.books();
        match books.failed.get(app_id) {
            Some((failed_at, _)) if *failed_at < generation => {
                books.failed.remove(app_id);
                books.loops.retain(|(a, _), _| a != app_id);
                None
            }
            Some((_, why)) => Some(why.clone()),
            None => plan::stored_failure(status, generation).inspect(|why| {
                books
                    .failed
                    .insert(app_id.to_owned(), (generation, why.clone()));
            }),
        }
    }

    /// Whether `replica` of `app_id` (named `app_name`, at `generation`) may restart
    /// at `now` (Unix ms); a [`RestartDecision::Failed`] is recorded as the app's
    /// verdict.
    pub fn may_restart(
        &self,
        app_id: &str,
        app_name: &str,
        generation: i64,
        replica: u32,
        now: i64,
        limit: RestartLimit,
    ) -> RestartDecision {
        let mut books = self.books();
        let cl = books
            .loops
            .get(&(app_id.to_owned(), replica))
            .cloned()
            .unwrap_or_default();
        if cl.exhausted(now, limit) {
            let why = format!(
                "replica {replica} restarted {} times within {} s; run `longin restart {app_name}` after fixing it",
                limit.max_restarts, limit.window_secs,
            );
            books
                .failed
                .insert(app_id.to_owned(), (generation, why.clone()));
            return RestartDecision::Failed(why);
        }
        match cl.wait(now) {
            0 => RestartDecision::Go,
            wait => RestartDecision::Wait(wait),
        }
    }

    /// Counts a restart of `replica` made at `now`.
    pub fn record_restart(&self, app_id: &str, replica: u32, now: i64, limit: RestartLimit) {
        self.books()
            .loops
            .entry((app_id.to_owned(), replica))
            .or_default()
            .record_restart(now, limit);
    }

    /// Restarts of `replica` counted so far.
    #[must_use]
    pub fn restart_count(&self, app_id: &str, replica: u32) -> i64 {
        self.books()
            .loops
            .get(&(app_id.to_owned(), replica))
            .map_or(0, |cl| {
                i64::try_from(cl.restart_count()).unwrap_or(i64::MAX)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit() -> RestartLimit {
        RestartLimit::default()
    }

    #[test]
    fn restarts_back_off_then_fail_until_a_new_generation() {
        let tracker = RestartTracker::default();
        let status = ApplicationStatus::default();
        let mut now = 1_000_000;
        assert_eq!(
            tracker.may_restart("a", "web", 1, 0, now, limit()),
            RestartDecision::Go
        );
        tracker.record_restart("a", 0, now, limit());
        assert_eq!(tracker.restart_count("a", 0), 1);
        assert!(matches!(
            tracker.may_restart("a", "web", 1, 0, now, limit()),
            RestartDecision::Wait(ms) if ms > 0
        ));
        // Restart as soon as allowed until the budget is spent.
        let mut decision = RestartDecision::Go;
        for _ in 0..100 {
            decision = loop {
                match tracker.may_restart("a", "web", 1, 0, now, limit()) {
                    RestartDecision::Wait(ms) => now += ms,
                    other => break other,
                }
            };
            if decision != RestartDecision::Go {
                break;
            }
            tracker.record_restart("a", 0, now, limit());
        }
        let RestartDecision::Failed(why) = decision else {
            panic!("never failed: {decision:?}")
        };
        assert!(why.contains("longin restart web"), "{why}");
        assert_eq!(tracker.verdict("a", 1, &status), Some(why));
        // Another app is untouched; a new generation clears the verdict and counters.
        assert_eq!(tracker.verdict("b", 1, &status), None);
        assert_eq!(tracker.verdict("a", 2, &status), None);
        assert_eq!(tracker.restart_count("a", 0), 0);
    }

    #[test]
    fn a_stored_failed_status_stands_after_a_controller_restart() {
        let tracker = RestartTracker::default();
        let failed = ApplicationStatus {
            phase: longin_crds::application::Phase::Failed,
            observed_generation: 3,
            message: Some("replica 0 restarted 5 times".to_owned()),
            ..ApplicationStatus::default()
        };
        assert!(tracker.verdict("a", 3, &failed).is_some());
        // Remembered: the next reconcile sees it even if the status was rewritten.
        assert!(
            tracker
                .verdict("a", 3, &ApplicationStatus::default())
                .is_some()
        );
        assert_eq!(
            tracker.verdict("a", 4, &failed),
            None,
            "a new generation clears it"
        );
    }
}
