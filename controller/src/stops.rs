//! Graceful stops off the reconcile workers. A stop waits for the program to exit, up
//! to its `terminationGracePeriodSeconds` (300 at most); done inside a reconcile it
//! held one of the controller's few workers that long, so one user deleting a few
//! apps that ignore SIGTERM stalled every other user's apps. A stop now runs in a task
//! of its own; the reconcile goes on, skips containers being stopped, and looks again
//! when the engine reports the container gone (or on its requeue).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::engine::Engine;

/// The containers being stopped and removed now.
#[derive(Debug, Clone, Default)]
pub struct Stops {
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl Stops {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether container `id` is being stopped.
    #[must_use]
    pub fn is_stopping(&self, id: &str) -> bool {
        self.set().contains(id)
    }

    /// Starts stopping (SIGTERM, `grace` seconds, SIGKILL) and removing container `id`
    /// in the background, unless that is under way already; returns at once. A
    /// failure is logged and the container forgotten here, so a later reconcile tries
    /// again. On `cancel` the task ends (the engine finishes the stop by itself; the
    /// next controller removes what is left).
    pub fn begin(&self, runtime: &Engine, id: &str, grace: u32, cancel: &CancellationToken) {
        let count = {
            let mut set = self.set();
            if !set.insert(id.to_owned()) {
                return;
            }
            set.len()
        };
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("longin_controller_stops_in_flight").set(count as f64);
        let (runtime, id, stops, cancel) =
            (runtime.clone(), id.to_owned(), self.clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                stopped = runtime.stop_and_remove(&id, grace) => match stopped {
                    Ok(()) => tracing::debug!(container = %id, "container stopped and removed"),
                    Err(err) => tracing::warn!(container = %id, error = %err, "stopping a container failed; it is tried again"),
                },
            }
            let count = {
                let mut set = stops.set();
                set.remove(&id);
                set.len()
            };
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("longin_controller_stops_in_flight").set(count as f64);
        });
    }
}
