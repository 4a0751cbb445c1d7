//! The work queue: one slot per application (a key scheduled twice runs once, at the
//! earlier time), never two reconciles of one key at once (a key scheduled while it runs
//! runs again after), bounded concurrency, and per-key exponential backoff with jitter
//! on errors, reset by a success. After kube-runtime's scheduler and runner.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::time::{DelayQueue, delay_queue};

/// Schedules keys for reconciliation.
#[derive(Debug, Clone)]
pub struct WorkQueue {
    tx: mpsc::UnboundedSender<(String, Duration)>,
}

/// The receiving end, consumed by [`run`].
#[derive(Debug)]
pub struct WorkQueueReceiver {
    rx: mpsc::UnboundedReceiver<(String, Duration)>,
}

impl WorkQueue {
    #[must_use]
    pub fn new() -> (Self, WorkQueueReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, WorkQueueReceiver { rx })
    }

    /// Asks for `key` to be reconciled after `delay` (or sooner if already scheduled
    /// sooner).
    pub fn schedule(&self, key: &str, delay: Duration) {
        let _ = self.tx.send((key.to_owned(), delay));
    }
}

/// The delay after the `failures`-th consecutive error: 1 s doubling to 5 min, ±20 %
/// jitter so that many failing keys do not retry in lockstep.
#[must_use]
pub fn error_backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1 << failures.saturating_sub(1).min(9));
    let capped = base.min(Duration::from_secs(300));
    let jitter = rand::rng().random_range(0.8..1.2);
    capped.mul_f64(jitter)
}

/// Runs reconciles until `cancel` fires. `reconcile(key)` returns how soon to look
/// again (`None`: only when something changes), or an error, which backs off.
pub async fn run<F, Fut, E>(
    mut queue: WorkQueueReceiver,
    concurrency: usize,
    reconcile: F,
    cancel: CancellationToken,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Option<Duration>, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let mut delays: DelayQueue<String> = DelayQueue::new();
    let mut scheduled: HashMap<String, (delay_queue::Key, Instant)> = HashMap::new();
    let mut running: HashSet<String> = HashSet::new();
    let mut again: HashSet<String> = HashSet::new();
    let mut failures: HashMap<String, u32> = HashMap::new();
    let mut tasks: JoinSet<Result<Option<Duration>, String>> = JoinSet::new();
    // Which key each task reconciles, so that a task that panicked still frees its key
    // (otherwise the key would count as running forever and never reconcile again).
    let mut task_keys: HashMap<tokio::task::Id, String> = HashMap::new();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));

    let schedule = |delays: &mut DelayQueue<String>,
                    scheduled: &mut HashMap<String, (delay_queue::Key, Instant)>,
                    key: String,
                    delay: Duration| {
        let at = Instant::now() + delay;
        match scheduled.get_mut(&key) {
            Some((_, when)) if *when <= at => {}
            Some((dq_key, when)) => {
                delays.reset_at(dq_key, at);
                *when = at;
            }
            None => {
                let dq_key = delays.insert_at(key.clone(), at);
                scheduled.insert(key, (dq_key, at));
            }
        }
    };

    loop {
        metrics::gauge!("longin_controller_queue_depth").set(scheduled.len() as f64);
        metrics::gauge!("longin_controller_reconciles_running").set(running.len() as f64);
        tokio::select! {
            () = cancel.cancelled() => break,
            Some((key, delay)) = queue.rx.recv() => {
                if running.contains(&key) && delay.is_zero() {
                    again.insert(key);
                } else {
                    schedule(&mut delays, &mut scheduled, key, delay);
                }
            }
            Some(expired) = delays.next(), if !delays.is_empty() => {
                let key = expired.into_inner();
                scheduled.remove(&key);
                if running.contains(&key) {
                    again.insert(key);
                    continue;
                }
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                running.insert(key.clone());
                tracing::debug!(app = %key, "reconcile starting");
                let work = reconcile(key.clone());
                let task = tasks.spawn(async move {
                    let result = work.await.map_err(|e| e.to_string());
                    drop(permit);
                    result
                });
                task_keys.insert(task.id(), key);
            }
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, result) = match done {
                    Ok((id, result)) => (id, result),
                    Err(err) => (err.id(), Err(format!("reconcile panicked: {err}"))),
                };
                let Some(key) = task_keys.remove(&id) else { continue };
                running.remove(&key);
                match result {
                    Ok(next) => {
                        failures.remove(&key);
                        if let Some(next) = next {
                            schedule(&mut delays, &mut scheduled, key.clone(), next);
                        }
                    }
                    Err(error) => {
                        let n = failures.entry(key.clone()).or_insert(0);
                        *n += 1;
                        let wait = error_backoff(*n);
                        tracing::warn!(app = %key, %error, failures = *n, retry_in_ms = wait.as_millis() as u64, "reconcile failed");
                        schedule(&mut delays, &mut scheduled, key.clone(), wait);
                    }
                }
                if again.remove(&key) {
                    schedule(&mut delays, &mut scheduled, key, Duration::ZERO);
                }
            }
        }
    }
    // Let reconciles in flight finish their current step rather than cut them mid-way.
    while tasks.join_next().await.is_some() {}
    tracing::info!("work queue stopped");
}

/// The queue running a reconcile function in the background, for tests.
#[cfg(test)]
struct Harness {
    queue: WorkQueue,
    cancel: CancellationToken,
    runner: tokio::task::JoinHandle<()>,
}

#[cfg(test)]
impl Harness {
    fn start<F, Fut>(concurrency: usize, reconcile: F) -> Self
    where
        F: Fn(String) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<Duration>, String>> + Send + 'static,
    {
        let (queue, rx) = WorkQueue::new();
        let cancel = CancellationToken::new();
        let runner = tokio::spawn(run(rx, concurrency, reconcile, cancel.clone()));
        Self {
            queue,
            cancel,
            runner,
        }
    }

    fn schedule(&self, key: &str, delay: Duration) {
        self.queue.schedule(key, delay);
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.runner.await.expect("runner");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_to_five_minutes() {
        for (n, base) in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 300.0), (30, 300.0)] {
            let d = error_backoff(n).as_secs_f64();
            assert!(d >= base * 0.8 && d <= base * 1.2, "failure {n}: {d}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_runs_once_per_schedule_burst_and_never_concurrently() {
        let log = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));
        let active = Arc::new(Mutex::new(HashSet::<String>::new()));
        let queue = Harness::start(4, {
            let (log, active) = (log.clone(), active.clone());
            move |key: String| {
                let (log, active) = (log.clone(), active.clone());
                async move {
                    let overlapping = !active.lock().expect("lock").insert(key.clone());
                    log.lock().expect("lock").push((key.clone(), overlapping));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    active.lock().expect("lock").remove(&key);
                    Ok(None)
                }
            }
        });
        for _ in 0..5 {
            queue.schedule("a", Duration::from_millis(10));
        }
        queue.schedule("b", Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // While "a" runs, a new request queues exactly one more run.
        queue.schedule("a", Duration::ZERO);
        queue.schedule("a", Duration::ZERO);
        tokio::time::sleep(Duration::from_secs(1)).await;
        queue.stop().await;
        let log = log.lock().expect("lock").clone();
        let a_runs = log.iter().filter(|(k, _)| k == "a").count();
        assert_eq!(a_runs, 2, "{log:?}");
        assert_eq!(log.iter().filter(|(k, _)| k == "b").count(), 1);
        assert!(log.iter().all(|(_, overlapping)| !overlapping), "{log:?}");
    }

    type Outcome = Result<Option<Duration>, String>;

    /// A reconcile that records when it is called and answers its n-th call (from 1)
    /// with `outcome(n)`, inside its future as a real reconcile would.
    fn counting(
        outcome: impl Fn(usize) -> Outcome + Send + Sync + 'static,
    ) -> (
        Arc<Mutex<Vec<Instant>>>,
        impl Fn(String) -> futures::future::BoxFuture<'static, Outcome> + Send + 'static,
    ) {
        let calls = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let outcome = Arc::new(outcome);
        let reconcile = {
            let calls = calls.clone();
            move |_key: String| {
                let (calls, outcome) = (calls.clone(), outcome.clone());
                Box::pin(async move {
                    let n = {
                        let mut calls = calls.lock().expect("lock");
                        calls.push(Instant::now());
                        calls.len()
                    };
                    outcome(n)
                }) as futures::future::BoxFuture<'static, Outcome>
            }
        };
        (calls, reconcile)
    }

    #[tokio::test(start_paused = true)]
    async fn errors_back_off_and_success_requeues_as_asked() {
        let start = Instant::now();
        let (times, reconcile) = counting(|n| {
            if n <= 3 {
                Err("boom".to_owned())
            } else {
                Ok(Some(Duration::from_secs(30)))
            }
        });
        let queue = Harness::start(1, reconcile);
        queue.schedule("k", Duration::ZERO);
        tokio::time::sleep(Duration::from_secs(45)).await;
        queue.stop().await;
        let gaps: Vec<f64> = times
            .lock()
            .expect("lock")
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        assert!(gaps.len() >= 4, "{gaps:?} since {start:?}");
        assert!(
            (0.8..1.2).contains(&gaps[0])
                && (1.6..2.4).contains(&gaps[1])
                && (3.2..4.8).contains(&gaps[2]),
            "{gaps:?}"
        );
        assert!(
            (29.0..31.0).contains(&gaps[3]),
            "success requeues after 30 s: {gaps:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconcile_that_panics_is_retried_like_an_error() {
        let (runs, reconcile) = counting(|n| {
            assert!(n > 1, "the first reconcile panics");
            Ok(None)
        });
        let queue = Harness::start(1, reconcile);
        queue.schedule("k", Duration::ZERO);
        tokio::time::sleep(Duration::from_secs(5)).await;
        // A new request for the key is served too: it is not stuck as "running".
        queue.schedule("k", Duration::ZERO);
        tokio::time::sleep(Duration::from_secs(1)).await;
        queue.stop().await;
        assert_eq!(runs.lock().expect("lock").len(), 3);
    }
}

#[cfg(test)]
mod real_time_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn requeue_fires_in_real_time() {
        let runs = Arc::new(AtomicUsize::new(0));
        let queue = Harness::start(2, {
            let runs = runs.clone();
            move |_key: String| {
                runs.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok(Some(Duration::from_millis(200))))
            }
        });
        queue.schedule("k", Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        queue.stop().await;
        let n = runs.load(Ordering::SeqCst);
        assert!(n >= 4, "ran {n} times in 1.1 s with a 200 ms requeue");
    }
}
