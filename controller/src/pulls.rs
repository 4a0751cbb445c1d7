//! Image pulls off the reconcile workers. A pull can take as long as the registry
//! takes (bounded only by `--engine-timeout` without progress); done inside a
//! reconcile it held one of the controller's few workers all that time, so one user's
//! apps on a slow or silent registry stalled everyone else's. A pull now runs in a
//! task of its own, one per image however many apps want it; reconciles that need the
//! image come back shortly and find it done, or failed with the engine's message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use longin_crds::application::ImagePullPolicy;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::runtime::RuntimeError;
use longin_crds::limits::Image;

/// How long a finished pull stands for a pull of the same image: the reconciles of one
/// rollout (or of many apps of one image) share it.
const FRESH: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum State {
    Running,
    Pulled(Instant),
    Failed(RuntimeError),
}

/// Where an image stands for a reconcile that needs it.
#[derive(Debug)]
pub enum PullStatus {
    /// On the engine, pulled just now (or present, for `IfNotPresent`): go on.
    Ready,
    /// Being pulled: look again shortly.
    Pending,
    /// The last attempt failed; the next call starts another.
    Failed(RuntimeError),
}

/// The pulls of this controller, by image.
#[derive(Debug, Clone, Default)]
pub struct Pulls {
    state: Arc<Mutex<HashMap<(String, bool), State>>>,
}

impl Pulls {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, bool), State>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `image` is ready under `policy`, starting its pull in the background if
    /// none is running or fresh. A failure is reported once, then forgotten.
    pub fn ensure(
        &self,
        runtime: &Engine,
        image: &Image,
        policy: ImagePullPolicy,
        cancel: &CancellationToken,
    ) -> PullStatus {
        let key = (image.as_str().to_owned(), policy == ImagePullPolicy::Always);
        {
            let mut map = self.map();
            match map.remove(&key) {
                Some(State::Running) => {
                    map.insert(key, State::Running);
                    return PullStatus::Pending;
                }
                Some(State::Pulled(at)) if at.elapsed() < FRESH => {
                    map.insert(key, State::Pulled(at));
                    return PullStatus::Ready;
                }
                Some(State::Failed(err)) => return PullStatus::Failed(err),
                Some(State::Pulled(_)) | None => {}
            }
            map.insert(key.clone(), State::Running);
            metrics::gauge!("longin_image_pulls_in_flight").increment(1.0);
        }
        let (pulls, runtime, cancel, image) =
            (self.clone(), runtime.clone(), cancel.clone(), image.clone());
        tokio::spawn(async move {
            let result = runtime.ensure_image(&image, policy, &cancel).await;
            metrics::gauge!("longin_image_pulls_in_flight").decrement(1.0);
            let mut map = pulls.map();
            match result {
                Ok(_) => {
                    map.insert(key, State::Pulled(Instant::now()));
                }
                // The controller is stopping: nobody waits for it.
                Err(RuntimeError::PullCancelled { .. }) => {
                    map.remove(&key);
                }
                Err(err) => {
                    map.insert(key, State::Failed(err));
                }
            }
        });
        PullStatus::Pending
    }
}
