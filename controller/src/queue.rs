//! The work queue: one slot per application (a key scheduled twice runs once, at the
//! earlier time), never two reconciles of one key at once (a key scheduled while it runs
//! runs again after), bounded concurrency, and per-key exponential backoff with jitter
//! on errors, reset by a success. After kube-runtime's scheduler and runner.
//!
//! Keys whose time has come wait in [`Ready`], which hands out workers round-robin
//! between owners and never gives one owner the last free worker: a user who applies
//! a hundred apps at once does not delay another user's one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use tokio::sync::mpsc;
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

/// Who owns each key, as far as reconciles have seen: the queue's fairness groups.
/// A key not seen yet is a group of its own (fair too: it is one key).
#[derive(Debug, Clone, Default)]
pub struct Owners(Arc<Mutex<HashMap<String, String>>>);

impl Owners {
    /// Records that `key` belongs to `owner` (called by a reconcile that loaded it).
    pub fn record(&self, key: &str, owner: &str) {
        let mut owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if owners.get(key).is_none_or(|o| o != owner) {
            owners.insert(key.to_owned(), owner.to_owned());
        }
    }

    /// Forgets `key` (its application is gone).
    pub fn forget(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn group_of(&self, key: &str) -> String {
        let owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        owners
            .get(key)
            .map_or_else(|| format!("key:{key}"), |o| format!("owner:{o}"))
    }
}

/// Keys due now, waiting for a worker, per group; handed out round-robin.
#[derive(Debug, Default)]
struct Ready {
    waiting: HashMap<String, VecDeque<String>>,
    /// Groups with waiting keys, in the order they get their next turn.
    turns: VecDeque<String>,
    queued: HashSet<String>,
    running: HashMap<String, usize>,
}

impl Ready {
    fn len(&self) -> usize {
        self.queued.len()
    }

    fn contains(&self, key: &str) -> bool {
        self.queued.contains(key)
    }

    fn push(&mut self, group: String, key: String) {
        if !self.queued.insert(key.clone()) {
            return;
        }
        let waiting = self.waiting.entry(group.clone()).or_default();
        if waiting.is_empty() {
            self.turns.push_back(group);
        }
        waiting.push_back(key);
    }

    /// The next key to run, given `free` workers of `total`: the first group in turn
    /// under its cap. While other groups wait too, a group may not take the last
    /// worker, so a newcomer waits for one reconcile at most, not for a backlog.
    fn pop(&mut self, free: usize, total: usize) -> Option<(String, String)> {
        if free == 0 {
            return None;
        }
        let cap = if self.turns.len() > 1 {
            total.saturating_sub(1).max(1)
        } else {
            total
        };
        let position = self
            .turns
            .iter()
            .position(|g| self.running.get(g).copied().unwrap_or(0) < cap)?;
        let group = self.turns.remove(position)?;
        let waiting = self.waiting.get_mut(&group)?;
        let key = waiting.pop_front()?;
        if waiting.is_empty() {
            self.waiting.remove(&group);
        } else {
            self.turns.push_back(group.clone());
        }
        self.queued.remove(&key);
        *self.running.entry(group.clone()).or_insert(0) += 1;
        Some((group, key))
    }

    fn finished(&mut self, group: &str) {
        if let Some(n) = self.running.get_mut(group) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(group);
            }
        }
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
/// `owners` groups keys for fairness. The loop never waits on a worker: schedule
/// requests and cancellation are served while every worker is busy.
pub async fn run<F, Fut, E>(
    mut queue: WorkQueueReceiver,
    concurrency: usize,
    owners: Owners,
    reconcile: F,
    cancel: CancellationToken,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Option<Duration>, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let workers = concurrency.max(1);
    let mut keys = Keys::default();
    let mut tasks: JoinSet<Result<Option<Duration>, String>> = JoinSet::new();
    loop {
        while let Some((group, key)) = keys.ready.pop(workers - keys.running.len(), workers) {
            keys.running.insert(key.clone());
            tracing::debug!(app = %key, "reconcile starting");
            let work = reconcile(key.clone());
            let task = tasks.spawn(async move { work.await.map_err(|e| e.to_string()) });
            keys.task_keys.insert(task.id(), (key, group));
        }
        keys.gauges();
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some((key, delay)) = queue.rx.recv() => keys.requested(key, delay),
            Some(expired) = keys.state.delays.next(), if !keys.state.delays.is_empty() => {
                keys.expired(expired.into_inner(), &owners);
            }
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => keys.done(done),
        }
    }
    // Let reconciles in flight finish their current step rather than cut them mid-way;
    // the keys still waiting are dropped (the next leader resyncs everything).
    while tasks.join_next().await.is_some() {}
    tracing::info!(
        dropped = keys.state.len() + keys.ready.len(),
        "work queue stopped"
    );
}

/// Where every key of the running queue is: waiting for its time, ready, or running
/// (and then whether it is wanted again once done).
#[derive(Default)]
struct Keys {
    state: Scheduled,
    ready: Ready,
    running: HashSet<String>,
    again: HashSet<String>,
    failures: HashMap<String, u32>,
    /// Which key and group each task has, so that a task that panicked still frees
    /// its key (otherwise the key would count as running forever and never reconcile
    /// again).
    task_keys: HashMap<tokio::task::Id, (String, String)>,
}

type Done = Result<(tokio::task::Id, Result<Option<Duration>, String>), tokio::task::JoinError>;

impl Keys {
    #[allow(clippy::cast_precision_loss)]
    fn gauges(&self) {
        metrics::gauge!("longin_controller_queue_depth")
            .set((self.state.len() + self.ready.len()) as f64);
        metrics::gauge!("longin_controller_queue_ready").set(self.ready.len() as f64);
        metrics::gauge!("longin_controller_reconciles_running").set(self.running.len() as f64);
    }

    fn requested(&mut self, key: String, delay: Duration) {
        if self.running.contains(&key) && delay.is_zero() {
            self.again.insert(key);
        } else if !self.ready.contains(&key) {
            self.state.schedule(key, delay);
        }
    }

    fn expired(&mut self, key: String, owners: &Owners) {
        self.state.at.remove(&key);
        if self.running.contains(&key) {
            self.again.insert(key);
        } else {
            self.ready.push(owners.group_of(&key), key);
        }
    }

    fn done(&mut self, done: Done) {
        let (id, result) = match done {
            Ok((id, result)) => (id, result),
            Err(err) => (err.id(), Err(format!("reconcile panicked: {err}"))),
        };
        let Some((key, group)) = self.task_keys.remove(&id) else {
            return;
        };
        self.running.remove(&key);
        self.ready.finished(&group);
        match result {
            Ok(next) => {
                self.failures.remove(&key);
                if let Some(next) = next {
                    self.state.schedule(key.clone(), next);
                }
            }
            Err(error) => {
                let n = self.failures.entry(key.clone()).or_insert(0);
                *n += 1;
                let wait = error_backoff(*n);
                tracing::warn!(app = %key, %error, failures = *n, retry_in_ms = wait.as_millis() as u64, "reconcile failed");
                self.state.schedule(key.clone(), wait);
            }
        }
        if self.again.remove(&key) {
            self.state.schedule(key, Duration::ZERO);
        }
    }
}

/// Keys waiting for their time, each once, at its earliest requested time.
#[derive(Default)]
struct Scheduled {
    delays: DelayQueue<String>,
    at: HashMap<String, (delay_queue::Key, Instant)>,
}

impl Scheduled {
    fn len(&self) -> usize {
        self.at.len()
    }

    fn schedule(&mut self, key: String, delay: Duration) {
        let at = Instant::now() + delay;
        match self.at.get_mut(&key) {
            Some((_, when)) if *when <= at => {}
            Some((dq_key, when)) => {
                self.delays.reset_at(dq_key, at);
                *when = at;
            }
            None => {
                let dq_key = self.delays.insert_at(key.clone(), at);
                self.at.insert(key, (dq_key, at));
            }
        }
    }
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
        Self::start_with(concurrency, Owners::default(), reconcile)
    }

    fn start_with<F, Fut>(concurrency: usize, owners: Owners, reconcile: F) -> Self
    where
        F: Fn(String) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<Duration>, String>> + Send + 'static,
    {
        let (queue, rx) = WorkQueue::new();
        let cancel = CancellationToken::new();
        let runner = tokio::spawn(run(rx, concurrency, owners, reconcile, cancel.clone()));
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

    #[test]
    fn ready_keys_take_turns_between_owners_and_keep_a_worker_for_others() {
        let mut ready = Ready::default();
        for i in 0..5 {
            ready.push("a".into(), format!("a{i}"));
        }
        ready.push("a".into(), "a0".into());
        assert_eq!(ready.len(), 5, "a key waits once");
        // Alone, an owner may use every worker.
        let mut got = Vec::new();
        for free in (1..=3).rev() {
            got.push(ready.pop(free, 3).expect("a key").1);
        }
        assert_eq!(got, ["a0", "a1", "a2"]);
        assert_eq!(ready.pop(0, 3), None, "no free worker");
        // Another owner arrives: when a worker frees, the newcomer gets it.
        ready.push("b".into(), "b0".into());
        ready.push("b".into(), "b1".into());
        ready.finished("a");
        assert_eq!(ready.pop(1, 3).map(|(_, k)| k).as_deref(), Some("b0"));
        // a runs 2 of 3 with b waiting: a may not take the last worker; b may.
        ready.finished("b");
        assert_eq!(ready.pop(1, 3).map(|(_, k)| k).as_deref(), Some("b1"));
        ready.finished("a");
        assert_eq!(ready.pop(1, 3).map(|(_, k)| k).as_deref(), Some("a3"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_of_one_owner_does_not_delay_another() {
        let owners = Owners::default();
        for i in 0..40 {
            owners.record(&format!("a{i}"), "alice");
        }
        owners.record("b0", "bob");
        let started = Arc::new(Mutex::new(HashMap::<String, Instant>::new()));
        let queue = Harness::start_with(4, owners, {
            let started = started.clone();
            move |key: String| {
                let started = started.clone();
                async move {
                    started.lock().expect("lock").insert(key, Instant::now());
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok(None)
                }
            }
        });
        let t0 = Instant::now();
        for i in 0..40 {
            queue.schedule(&format!("a{i}"), Duration::ZERO);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        queue.schedule("b0", Duration::ZERO);
        tokio::time::sleep(Duration::from_secs(25)).await;
        let started = started.lock().expect("lock").clone();
        queue.stop().await;
        // Alice's 40 take 100 s on 4 workers; Bob's one starts at the first free worker.
        let bob = started.get("b0").expect("bob's app ran").duration_since(t0);
        assert!(bob <= Duration::from_secs(11), "bob waited {bob:?}");
        // First come, first served, Bob would have waited for all 40 (100 s).
        assert!(started.len() <= 12, "4 workers, 25 s: {}", started.len());
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_is_served_while_every_worker_is_busy() {
        let runs = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = CancellationToken::new();
        let queue = Harness::start(1, {
            let (runs, stop) = (runs.clone(), stop.clone());
            move |key: String| {
                let (runs, stop) = (runs.clone(), stop.clone());
                async move {
                    runs.lock().expect("lock").push(key.clone());
                    if key == "slow" {
                        // As a real reconcile's long step, cut short by the stop.
                        tokio::select! {
                            () = stop.cancelled() => {}
                            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                        }
                    }
                    Ok(None)
                }
            }
        });
        queue.schedule("slow", Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Due while the only worker is busy: it waits for a worker, not the loop.
        for _ in 0..1000 {
            queue.schedule("other", Duration::ZERO);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let cancelled_at = Instant::now();
        stop.cancel();
        queue.stop().await;
        assert!(cancelled_at.elapsed() < Duration::from_secs(1));
        // Nothing new starts once the queue is told to stop.
        assert_eq!(*runs.lock().expect("lock"), ["slow"]);
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
