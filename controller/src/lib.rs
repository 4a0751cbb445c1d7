//! The reconcile controller: keeps the Docker engine matching the Application
//! resources and reports the truth in their status.
//!
//! Triggers (store changes, Docker events, probe verdicts, a periodic resync) only
//! schedule work; `reconcile(app)` always reads both sides afresh, so a missed event
//! costs latency, never correctness.

pub mod agent;
pub mod builds;
pub mod collector;
pub mod engine;
#[cfg(test)]
mod fake_engine;
pub mod host_ports;
pub mod labels;
pub mod networks;
pub mod plan;
pub mod prober;
pub mod pulls;
pub mod queue;
pub mod quiet;
pub mod reconciler;
pub mod restarts;
pub mod runtime;
pub mod service_reconciler;
pub mod services;
pub mod stats;
pub mod stops;
pub mod swarm;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use longin_store::Store;
use longin_store::bus::Bus;

pub use engine::{ContainerRuntime, Engine};
use reconciler::Context;
pub use reconciler::{ControllerConfig, EngineKind};
pub use runtime::DockerRuntime;

/// Whether the Docker engine answers (for readiness probes).
///
/// # Errors
/// The engine cannot be reached or refuses.
pub async fn engine_reachable() -> Result<(), runtime::RuntimeError> {
    DockerRuntime::connect("readiness", runtime::DEFAULT_ENGINE_TIMEOUT)
        .await?
        .ping()
        .await
}

/// The name of an instance's leader lease.
#[must_use]
pub fn lease_name(instance: &str) -> String {
    format!("controller:{instance}")
}

/// How long a leader's lease lasts without renewal: a dead leader is replaced within
/// about this long.
pub const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often the leader renews, and others try to take over.
pub const LEASE_RENEW: Duration = Duration::from_secs(5);

/// Runs the controller until `cancel` fires. Only the holder of the instance's leader
/// lease acts; the others wait, trying every few seconds, and take over within about
/// [`LEASE_TTL`] of the leader's death. A leader that cannot renew stops acting.
pub async fn run(store: Store, bus: Bus, config: ControllerConfig, cancel: CancellationToken) {
    let lease = lease_name(&config.instance);
    let holder = format!(
        "{}:{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned()),
        std::process::id(),
        &uuid_like()
    );
    loop {
        metrics::gauge!("longin_controller_leader").set(0.0);
        // Wait for the lease.
        loop {
            let acquired = if config.sole_controller {
                store
                    .take_lease(&lease, &holder, LEASE_TTL)
                    .await
                    .map(|()| true)
            } else {
                store.try_acquire_lease(&lease, &holder, LEASE_TTL).await
            };
            match acquired {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot reach the store for the leader lease")
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(LEASE_RENEW) => {}
            }
        }
        tracing::info!(%holder, lease = %lease, "became the leader");
        metrics::gauge!("longin_controller_leader").set(1.0);
        let leading = cancel.child_token();
        let renewer = tokio::spawn(renew(
            store.clone(),
            lease.clone(),
            holder.clone(),
            leading.clone(),
        ));
        run_engine(store.clone(), bus.clone(), config.clone(), leading.clone()).await;
        leading.cancel();
        let _ = renewer.await;
        if cancel.is_cancelled() {
            if let Err(err) = store.release_lease(&lease, &holder).await {
                tracing::warn!(error = %err, "could not release the leader lease");
            }
            tracing::info!("gave up the leader lease");
            return;
        }
        tracing::warn!("lost the leader lease; standing by");
    }
}

/// A short random id, so a restarted process with a reused pid is a new holder.
fn uuid_like() -> String {
    use rand::Rng;
    format!("{:08x}", rand::rng().random::<u32>())
}

/// Renews the lease until `leading` is cancelled; cancels it when the lease is lost or
/// cannot be renewed before it would expire.
async fn renew(store: Store, lease: String, holder: String, leading: CancellationToken) {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = leading.cancelled() => return,
            () = tokio::time::sleep(LEASE_RENEW) => {}
        }
        match store.try_acquire_lease(&lease, &holder, LEASE_TTL).await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::error!("leader lease taken by another controller");
                leading.cancel();
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot renew the leader lease");
                // Stop acting before the lease could have expired and passed on.
                if last_renewed.elapsed() + LEASE_RENEW >= LEASE_TTL {
                    leading.cancel();
                    return;
                }
            }
        }
    }
}

/// Connects to Docker (retrying while it is down), then reconciles until `cancel`.
async fn run_engine(
    store: Store,
    bus: Bus,
    mut config: ControllerConfig,
    cancel: CancellationToken,
) {
    let mut wait = Duration::from_millis(500);
    let Some(installation) = setting(&cancel, "installation id", || store.installation_id()).await
    else {
        return;
    };
    config.installation = installation;
    let runtime = loop {
        match DockerRuntime::connect(&config.instance, config.engine_timeout).await {
            Ok(runtime) => break runtime.with_installation(&config.installation),
            Err(err) => {
                tracing::error!(error = %err, retry_in_s = wait.as_secs_f64(), "Docker engine unreachable; controller waiting");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    };
    let runtime = std::sync::Arc::new(runtime);
    // Images are built on the engine the controller talks to (on Swarm: the manager).
    let images: std::sync::Arc<dyn builds::images::ImageBuilds> = runtime.clone();
    let runtime: Engine = match config.engine {
        reconciler::EngineKind::Docker => runtime,
        reconciler::EngineKind::Swarm => loop {
            match swarm::SwarmRuntime::connect(
                &config.instance,
                config.engine_timeout,
                config.publish,
            )
            .await
            {
                Ok(swarm) => {
                    tracing::info!(publish = config.publish.as_str(), "driving a Docker Swarm");
                    let mut swarm = swarm.with_installation(&config.installation);
                    if let Some(agent) = &config.agent {
                        let Some(token) =
                            setting(&cancel, "agent token", || store.agent_token()).await
                        else {
                            return;
                        };
                        swarm = swarm.with_agent(agent.clone(), &token);
                    } else {
                        tracing::warn!("no --agent-image: metrics only of replicas on the manager");
                    }
                    break std::sync::Arc::new(swarm);
                }
                Err(err) => {
                    tracing::error!(error = %err, retry_in_s = wait.as_secs_f64(), "no Swarm manager; controller waiting");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        },
    };
    replace_unlabelled(&store, &runtime).await;
    run_with(store, runtime, Some(images), bus, config, cancel).await;
}

/// An installation setting (`what`) read by `read`, retried with back-off while the
/// store fails; `None` once `cancel` fires.
async fn setting<F, Fut>(cancel: &CancellationToken, what: &str, read: F) -> Option<String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<String, longin_store::StoreError>>,
{
    let mut wait = Duration::from_millis(500);
    loop {
        match read().await {
            Ok(value) => return Some(value),
            Err(err) => {
                tracing::error!(error = %err, setting = what, "cannot read a setting; controller waiting");
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Containers made before installations had ids carry no installation label, so the
/// controller no longer sees them. Those of this installation's apps are removed (the
/// reconcile recreates them, labelled, on the same ports); any other is left alone: it
/// may be another installation's.
async fn replace_unlabelled(store: &Store, runtime: &Engine) {
    let unlabelled = match runtime.unlabelled_containers().await {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(error = %err, "cannot list containers without an installation label");
            return;
        }
    };
    for (app_uid, id) in unlabelled {
        match store.application_by_id(&app_uid).await {
            Ok(Some(app)) => {
                tracing::warn!(app = %app.name, container = %id, "replacing a container made before installation ids");
                if let Err(err) = runtime
                    .stop_and_remove(&id, app.spec.termination_grace_period_seconds)
                    .await
                {
                    tracing::warn!(error = %err, container = %id, "could not remove an unlabelled container");
                }
            }
            Ok(None) => {
                tracing::info!(container = %id, "leaving alone a container of another installation");
            }
            Err(err) => tracing::warn!(error = %err, "cannot read an application"),
        }
    }
}

/// Runs the controller on an engine connection until `cancel` fires.
pub async fn run_with(
    store: Store,
    runtime: Engine,
    images: Option<std::sync::Arc<dyn builds::images::ImageBuilds>>,
    bus: Bus,
    config: ControllerConfig,
    cancel: CancellationToken,
) {
    tracing::info!(
        backend = store.backend().name(),
        resync_s = config.resync.as_secs(),
        "controller started"
    );
    let (queue, queue_rx) = queue::WorkQueue::new();
    let (probe_tx, probe_rx) = mpsc::unbounded_channel();
    let prober = prober::Prober::new(probe_tx);
    let ctx = Context::new(
        store.clone(),
        runtime.clone(),
        prober.clone(),
        bus.clone(),
        config.clone(),
        cancel.clone(),
    );

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(prober.run(cancel.clone()));
    tasks.spawn(watch_store(
        store.changes().subscribe(),
        queue.clone(),
        cancel.clone(),
    ));
    tasks.spawn({
        let (store, cancel) = (store.clone(), cancel.clone());
        async move { store.forward_remote_changes(cancel).await }
    });
    tasks.spawn(watch_probes(probe_rx, queue.clone(), cancel.clone()));
    tasks.spawn(watch_docker(
        store.clone(),
        runtime.clone(),
        queue.clone(),
        cancel.clone(),
    ));
    tasks.spawn(collector::run(
        store.clone(),
        runtime.clone(),
        bus.clone(),
        config.metrics_interval,
        cancel.clone(),
    ));
    if let Some(images) = images {
        tasks.spawn(builds::run(
            store.clone(),
            runtime.clone(),
            images,
            bus.clone(),
            config.builds.clone(),
            cancel.clone(),
        ));
    }
    tasks.spawn(resync(
        store.clone(),
        runtime.clone(),
        queue.clone(),
        ctx.quiet.clone(),
        config.resync,
        cancel.clone(),
    ));

    queue::run(
        queue_rx,
        config.concurrency,
        ctx.owners.clone(),
        move |app: String| reconciler::reconcile(app, ctx.clone()),
        cancel.clone(),
    )
    .await;
    while tasks.join_next().await.is_some() {}
    tracing::info!("controller stopped");
}

async fn watch_store(
    mut changes: broadcast::Receiver<String>,
    queue: queue::WorkQueue,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            change = changes.recv() => match change {
                Ok(app) => queue.schedule(&app, Duration::ZERO),
                // Fell behind: the periodic resync covers what was missed.
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "store change feed lagged"),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

async fn watch_probes(
    mut verdicts: mpsc::UnboundedReceiver<String>,
    queue: queue::WorkQueue,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            Some(app) = verdicts.recv() => queue.schedule(&app, Duration::ZERO),
            else => return,
        }
    }
}

/// Follows the engine's container events for managed containers; reconnects with
/// backoff when the stream breaks and then resyncs, since events may have been missed.
async fn watch_docker(
    store: Store,
    runtime: Engine,
    queue: queue::WorkQueue,
    cancel: CancellationToken,
) {
    let mut wait = Duration::from_millis(500);
    loop {
        let mut events = runtime.events();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        wait = Duration::from_millis(500);
                        if !event.matters() {
                            continue;
                        }
                        metrics::counter!("longin_docker_events_total").increment(1);
                        queue.schedule(&event.app_uid, Duration::ZERO);
                        // The engine sends `die` a moment before a container lists as
                        // exited; a reconcile run at once can still see it running.
                        // Look again shortly after, so a crash is seen without waiting
                        // for the resync. Several times (a pass that finds nothing
                        // new costs a few milliseconds): it may list as exited after
                        // 100 ms or after 500, and the status should say so at once.
                        if event.look_again() {
                            let queue = queue.clone();
                            tokio::spawn(async move {
                                for wait in [100, 100, 100, 200, 500].map(Duration::from_millis) {
                                    tokio::time::sleep(wait).await;
                                    queue.schedule(&event.app_uid, Duration::ZERO);
                                }
                            });
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "engine event stream failed; reconnecting");
                        break;
                    }
                    None => {
                        tracing::warn!("engine event stream ended; reconnecting");
                        break;
                    }
                },
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(30));
        // Whatever happened while the stream was down is picked up by a full pass.
        schedule_everything(&store, &runtime, &queue, None).await;
    }
}

/// Schedules every application the store knows and every app uid Docker has managed
/// containers for (so orphans get cleaned up) — except, given `quiet`, the quiet ones
/// whose containers and revision have not changed since they settled.
async fn schedule_everything(
    store: &Store,
    runtime: &Engine,
    queue: &queue::WorkQueue,
    quiet: Option<&quiet::QuietApps>,
) {
    let containers = match runtime.managed_containers().await {
        Ok(containers) => containers,
        Err(err) => {
            tracing::warn!(error = %err, "resync could not list containers");
            Vec::new()
        }
    };
    let mut by_app: HashMap<&str, Vec<&plan::Observed>> = HashMap::new();
    for (app, c) in &containers {
        by_app.entry(app.as_str()).or_default().push(c);
    }
    let revisions: HashMap<String, longin_store::status::Revision> =
        match store.application_revisions().await {
            Ok(revisions) => revisions.into_iter().collect(),
            Err(err) => {
                tracing::warn!(error = %err, "resync could not list applications");
                HashMap::new()
            }
        };
    let apps = revisions
        .keys()
        .map(String::as_str)
        .chain(by_app.keys().copied())
        .collect::<std::collections::HashSet<_>>();
    let mut scheduled = 0_u64;
    for app in apps {
        let mine = by_app.get(app).map_or(&[][..], Vec::as_slice);
        // An app the store does not know (orphans) is never quiet under its revision.
        let revision = revisions.get(app).copied();
        if quiet.is_some_and(|q| revision.is_some_and(|r| q.unchanged(app, r, mine))) {
            continue;
        }
        scheduled += 1;
        queue.schedule(app, Duration::ZERO);
    }
    metrics::counter!("longin_controller_resync_scheduled_total").increment(scheduled);
}

/// Every this many resync passes, quiet applications are reconciled too.
const FULL_RESYNC_EVERY: u64 = 10;

async fn resync(
    store: Store,
    runtime: Engine,
    queue: queue::WorkQueue,
    quiet: quiet::QuietApps,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pass = 0_u64;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {
                metrics::gauge!("longin_controller_last_resync_timestamp_seconds").set(longin_store::now_ms() as f64 / 1000.0);
                let full = pass.is_multiple_of(FULL_RESYNC_EVERY);
                pass += 1;
                // First pass too: a Swarm's node agents are deployed as the controller
                // starts leading, and put back by the next pass if someone removes them.
                if let Err(err) = runtime.upkeep().await {
                    tracing::warn!(error = %err, "engine upkeep failed");
                }
                schedule_everything(&store, &runtime, &queue, (!full).then_some(&quiet)).await;
                // Level-triggered like containers: an owner whose last app went
                // leaves a network nothing uses, removed on a full pass.
                if full && let Err(err) = runtime.remove_unused_networks().await {
                    tracing::warn!(error = %err, "could not list owner networks");
                }
            }
        }
    }
}
