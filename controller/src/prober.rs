//! Health probes: HTTP GET or TCP connect to each replica's host port, on its own
//! period. A replica is Ready after its first success; `failureThreshold` consecutive
//! failures make it Unhealthy (reconcile restarts it). A change of verdict asks for a
//! reconcile of the app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::plan::Health;

/// How to probe one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub app_id: String,
    pub host_port: u16,
    /// `Some(path)` for HTTP, `None` for TCP.
    pub http_path: Option<String>,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone)]
struct State {
    target: Target,
    health: Health,
    failures: u32,
    next_probe: Instant,
    in_flight: bool,
}

/// Probes every registered container and remembers the verdicts.
#[derive(Debug, Clone)]
pub struct Prober {
    states: Arc<Mutex<HashMap<String, State>>>,
    changed: mpsc::UnboundedSender<String>,
    http: reqwest::Client,
}

/// Probes in flight at once.
const CONCURRENCY: usize = 64;

impl Prober {
    /// A prober that sends the app id on `changed` whenever a verdict changes.
    #[must_use]
    pub fn new(changed: mpsc::UnboundedSender<String>) -> Self {
        Self {
            states: Arc::default(),
            changed,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The verdict on a container (Unknown if not probed or not registered).
    #[must_use]
    pub fn health(&self, container_id: &str) -> Health {
        self.lock()
            .get(container_id)
            .map_or(Health::Unknown, |s| s.health)
    }

    /// Makes `targets` the app's probed containers: new ones start probing after their
    /// initial delay, gone ones are forgotten, unchanged ones keep their verdicts.
    pub fn set_targets(&self, app_id: &str, targets: Vec<(String, Target)>) {
        let mut states = self.lock();
        states.retain(|id, s| s.target.app_id != app_id || targets.iter().any(|(t, _)| t == id));
        for (id, target) in targets {
            match states.get_mut(&id) {
                Some(state) if state.target == target => {}
                _ => {
                    let next_probe = Instant::now() + target.initial_delay;
                    states.insert(
                        id,
                        State {
                            target,
                            health: Health::Unknown,
                            failures: 0,
                            next_probe,
                            in_flight: false,
                        },
                    );
                }
            }
        }
    }

    /// Forgets a container's verdict (it was restarted: probe it afresh).
    pub fn reset(&self, container_id: &str) {
        if let Some(state) = self.lock().get_mut(container_id) {
            state.health = Health::Unknown;
            state.failures = 0;
            state.next_probe = Instant::now() + state.target.initial_delay;
        }
    }

    /// Probes due containers until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            let due: Vec<(String, Target)> = {
                let mut states = self.lock();
                states
                    .iter_mut()
                    .filter(|(_, s)| !s.in_flight && s.next_probe <= now)
                    .map(|(id, s)| {
                        s.in_flight = true;
                        (id.clone(), s.target.clone())
                    })
                    .collect()
            };
            metrics::gauge!("longin_probe_targets").set(self.lock().len() as f64);
            for (id, target) in due {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let prober = self.clone();
                tokio::spawn(async move {
                    let ok = probe(&prober.http, &target).await;
                    drop(permit);
                    prober.record(&id, ok);
                });
            }
        }
        tracing::info!("prober stopped");
    }

    fn record(&self, id: &str, ok: bool) {
        metrics::counter!("longin_probes_total", "result" => if ok { "success" } else { "failure" }).increment(1);
        let changed_app = {
            let mut states = self.lock();
            let Some(state) = states.get_mut(id) else {
                return;
            };
            state.in_flight = false;
            state.next_probe = Instant::now() + state.target.period;
            let before = state.health;
            if ok {
                state.failures = 0;
                state.health = Health::Ready;
            } else {
                state.failures += 1;
                if state.failures >= state.target.failure_threshold {
                    state.health = Health::Unhealthy;
                } else if state.health == Health::Ready {
                    // Still within the threshold: keep serving, as Kubernetes does.
                }
            }
            (state.health != before).then(|| state.target.app_id.clone())
        };
        if let Some(app) = changed_app {
            tracing::debug!(container = id, app = %app, ok, "probe verdict changed");
            let _ = self.changed.send(app);
        }
    }
}

/// One probe: HTTP 2xx/3xx, or a TCP connection, within the timeout.
async fn probe(http: &reqwest::Client, target: &Target) -> bool {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], target.host_port));
    match &target.http_path {
        Some(path) => {
            let url = format!("http://{address}{path}");
            match http.get(&url).timeout(target.timeout).send().await {
                Ok(res) => res.status().is_success() || res.status().is_redirection(),
                Err(_) => false,
            }
        }
        None => tokio::time::timeout(target.timeout, tokio::net::TcpStream::connect(address))
            .await
            .is_ok_and(|r| r.is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(port: u16, threshold: u32) -> Target {
        Target {
            app_id: "app".into(),
            host_port: port,
            http_path: None,
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(10),
            timeout: Duration::from_millis(200),
            failure_threshold: threshold,
        }
    }

    #[tokio::test]
    async fn verdicts_follow_successes_and_the_failure_threshold() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let prober = Prober::new(tx);
        prober.set_targets("app", vec![("c1".into(), target(1, 2))]);
        assert_eq!(prober.health("c1"), Health::Unknown);
        prober.record("c1", true);
        assert_eq!(prober.health("c1"), Health::Ready);
        assert_eq!(rx.try_recv().ok().as_deref(), Some("app"));
        prober.record("c1", false);
        assert_eq!(
            prober.health("c1"),
            Health::Ready,
            "one failure is within the threshold"
        );
        prober.record("c1", false);
        assert_eq!(prober.health("c1"), Health::Unhealthy);
        prober.reset("c1");
        assert_eq!(prober.health("c1"), Health::Unknown);
        prober.set_targets("app", vec![]);
        assert_eq!(prober.health("c1"), Health::Unknown);
    }

    #[tokio::test]
    async fn tcp_probe_sees_a_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let http = reqwest::Client::new();
        assert!(probe(&http, &target(port, 1)).await);
        drop(listener);
        assert!(!probe(&http, &target(port, 1)).await);
    }
}
