//! `reconcile(app)`: read the desired state from the store and the actual state from
//! Docker, act on the difference, write the status. Level-triggered and idempotent:
//! running it twice in a row does nothing the second time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use longin_crds::application::{ApplicationSpec, ImagePullPolicy, Phase};
use longin_store::Store;
use longin_store::applications::ApplicationRecord;
use longin_store::bus::{AppRef, Bus, Event};
use longin_store::status::ObservedContainer;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::engine::Engine;
use crate::labels;
use crate::plan::{self, Desired, Facts, Observed, RestartLimit, RunState, Step};
use crate::prober::{Prober, Target};
use crate::pulls::PullStatus;
use crate::quiet::QuietApps;
use crate::restarts::{RestartDecision, RestartTracker};
use crate::runtime::{ContainerPlan, NetworkPlan, RuntimeError};

/// Why a reconcile failed; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] longin_store::StoreError),
    /// No host port for a replica (the pool is exhausted).
    #[error(transparent)]
    Ports(longin_store::applications::ApplicationError),
    /// No subnet for the owner's network (the network pool is full).
    #[error(transparent)]
    Network(#[from] longin_store::networks::NetworkSlotError),
}

impl From<longin_store::applications::ApplicationError> for ReconcileError {
    fn from(err: longin_store::applications::ApplicationError) -> Self {
        match err {
            longin_store::applications::ApplicationError::Store(err) => Self::Store(err),
            other => Self::Ports(other),
        }
    }
}

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Which installation this is (labels its containers; see `labels::INSTANCE`).
    pub instance: String,
    /// The installation's generated id (`labels::INSTALLATION`); read from the store
    /// when the controller starts.
    pub installation: String,
    /// Host address the replicas' ports are published on.
    pub bind_address: String,
    /// How often every application is reconciled even without events.
    pub resync: Duration,
    /// Reconciles at once.
    pub concurrency: usize,
    /// The host-port pool, for rollouts' surge ports.
    pub port_range: longin_store::applications::PortRange,
    /// How long a rollout may take before it is reported stuck.
    pub progress_deadline: Duration,
    /// How often containers' stats are collected.
    pub metrics_interval: Duration,
    pub restart_limit: RestartLimit,
    /// How long one engine call may take (a stop: plus the grace period).
    pub engine_timeout: Duration,
    /// When images are pulled, unless an app says otherwise (`imagePullPolicy`).
    pub pull_policy: ImagePullPolicy,
    /// This process alone can act on the store (it holds its data dir's lock and the
    /// store is SQLite inside it): it takes the leader lease at once instead of waiting
    /// for a dead predecessor's to expire.
    pub sole_controller: bool,
    /// Where owners' network subnets come from (a /24 each).
    pub network_pool: crate::networks::NetworkPool,
    /// How images are built from git (`spec.source`).
    pub builds: crate::builds::BuildConfig,
    /// Which engine runs the replicas.
    pub engine: EngineKind,
    /// How a Swarm engine publishes replicas (the local engine: always per replica).
    pub publish: crate::services::PublishMode,
    /// The node agents a Swarm engine deploys to read every node's stats (none: only
    /// the manager's tasks have metrics).
    pub agent: Option<crate::agent::AgentSettings>,
}

/// The engine the controller drives (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// The local Docker engine: Longin places, restarts and rolls out each replica.
    #[default]
    Docker,
    /// A Docker Swarm manager (`DOCKER_HOST`): one service per application.
    Swarm,
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker" => Ok(Self::Docker),
            "swarm" => Ok(Self::Swarm),
            other => Err(format!("unknown engine {other:?}: docker or swarm")),
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            instance: "longin".to_owned(),
            installation: String::new(),
            bind_address: "0.0.0.0".to_owned(),
            resync: Duration::from_secs(30),
            concurrency: 8,
            port_range: longin_store::applications::PortRange::default(),
            progress_deadline: Duration::from_secs(600),
            metrics_interval: Duration::from_secs(30),
            restart_limit: RestartLimit::default(),
            engine_timeout: crate::runtime::DEFAULT_ENGINE_TIMEOUT,
            // As Kubernetes' AlwaysPullImages admission: on a shared engine, a copy
            // someone else pulled must not let a user run an image they cannot pull.
            pull_policy: ImagePullPolicy::Always,
            sole_controller: false,
            network_pool: crate::networks::NetworkPool::default(),
            builds: crate::builds::BuildConfig::default(),
            engine: EngineKind::Docker,
            publish: crate::services::PublishMode::Host,
            agent: None,
        }
    }
}

/// What reconciles share.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    pub runtime: Engine,
    pub prober: Prober,
    /// Where status changes and reconcile errors are published.
    pub bus: Bus,
    pub config: ControllerConfig,
    /// CrashLoopBackOff counters and Failed verdicts.
    pub(crate) restarts: RestartTracker,
    /// Apps whose last reconcile found nothing to do (the resync may skip them).
    pub quiet: QuietApps,
    /// Per app, the spec hash its service was last updated to (Swarm): a rollback away
    /// from it is this spec's failure, not a new spec to roll out.
    pub(crate) sent_specs: Arc<Mutex<HashMap<String, String>>>,
    /// Per app, the last host port it was moved off (held outside Longin), for status.
    skipped_ports: Arc<Mutex<HashMap<String, String>>>,
    /// Graceful stops running off the workers.
    pub stops: crate::stops::Stops,
    /// Image pulls running off the workers.
    pub pulls: crate::pulls::Pulls,
    /// Each app's owner, for the queue's fairness between owners.
    pub owners: crate::queue::Owners,
    /// Fires when the controller stops: cuts short the steps that can take long
    /// (pulls); the others finish, so no container is left half made.
    pub cancel: CancellationToken,
    /// The wall clock (restart back-off, rollout deadlines); tests move it.
    pub clock: Clock,
}

impl Context {
    #[must_use]
    pub fn new(
        store: Store,
        runtime: Engine,
        prober: Prober,
        bus: Bus,
        config: ControllerConfig,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            cancel,
            store,
            runtime,
            prober,
            bus,
            config,
            restarts: RestartTracker::default(),
            quiet: QuietApps::default(),
            skipped_ports: Arc::default(),
            sent_specs: Arc::default(),
            stops: crate::stops::Stops::default(),
            pulls: crate::pulls::Pulls::default(),
            owners: crate::queue::Owners::default(),
            clock: Clock::default(),
        }
    }
}

/// How soon a reconcile waiting for its image looks again.
const PULL_RECHECK: Duration = Duration::from_millis(500);

/// How soon an app with containers being stopped is looked at again (the engine's
/// `destroy` event usually comes first).
const STOPPING_RECHECK: Duration = Duration::from_secs(2);

/// What reconciles read the time from: the wall clock, which a test can move ahead
/// (restart back-off and rollout deadlines are then checked without waiting).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    ahead_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    /// Unix milliseconds.
    #[must_use]
    pub fn now(&self) -> i64 {
        longin_store::now_ms() + self.ahead_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves this clock (and every clone) `ms` ahead.
    pub fn advance(&self, ms: i64) {
        self.ahead_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// (Unix milliseconds, RFC 3339) of now.
pub(crate) fn now_pair(ctx: &Context) -> (i64, String) {
    let ms = ctx.clock.now();
    (ms, longin_store::time::rfc3339(ms))
}

/// The spec's image reference (empty while a git source has built none).
pub(crate) fn image_of(spec: &ApplicationSpec) -> String {
    spec.image
        .as_ref()
        .map_or_else(String::new, |i| i.as_str().to_owned())
}

/// The spec's environment as the engine takes it (`NAME=value`).
pub(crate) fn env_of(spec: &ApplicationSpec) -> Vec<String> {
    spec.env
        .iter()
        .map(|v| format!("{}={}", v.name, v.value.clone().unwrap_or_default()))
        .collect()
}

fn container_plan(
    app: &ApplicationRecord,
    hash: &str,
    replica: u32,
    host_port: u16,
    config: &ControllerConfig,
    network: &NetworkPlan,
) -> ContainerPlan {
    let spec: &ApplicationSpec = &app.spec;
    ContainerPlan {
        name: labels::container_name(&app.name, &app.id, replica, hash),
        image: image_of(spec),
        command: spec.command.clone(),
        args: spec.args.clone(),
        env: env_of(spec),
        labels: labels::container_labels(&labels::ReplicaIdentity {
            instance: &config.instance,
            installation: &config.installation,
            app_uid: &app.id,
            app_name: &app.name,
            owner: &app.owner_username,
            spec_hash: hash,
            replica,
            host_port,
            generation: app.generation,
        }),
        container_port: spec.container_port,
        host_port,
        bind_address: config.bind_address.clone(),
        memory_bytes: i64::try_from(spec.resources.memory.bytes()).unwrap_or(i64::MAX),
        cpu_millis: spec.resources.cpu.millicores(),
        grace_period_secs: spec.termination_grace_period_seconds,
        network: network.clone(),
        aliases: vec![app.name.clone()],
    }
}

/// The owner's network, created if it is missing; its subnet is the owner's slot in
/// the pool, given once and kept in the store.
pub(crate) async fn owner_network(
    ctx: &Context,
    app: &ApplicationRecord,
) -> Result<NetworkPlan, ReconcileError> {
    let pool = ctx.config.network_pool;
    let mut slot = ctx
        .store
        .owner_network_slot(&app.owner_id, pool.slots())
        .await?;
    let name = crate::networks::network_name(&ctx.config.installation, &app.owner_id);
    loop {
        let (subnet, gateway) =
            pool.subnet(slot)
                .ok_or(longin_store::networks::NetworkSlotError::PoolFull {
                    slots: pool.slots(),
                })?;
        let plan = NetworkPlan {
            name: name.clone(),
            owner_id: app.owner_id.clone(),
            subnet,
            gateway,
        };
        match ctx.runtime.ensure_network(&plan).await {
            Ok(()) => return Ok(plan),
            // Another installation or the operator uses that subnet: give the owner
            // one that nothing on the engine overlaps.
            Err(err) if err.to_string().contains("overlaps") => {
                let taken = pool.overlapping_slots(&ctx.runtime.network_subnets().await?);
                let moved = ctx
                    .store
                    .move_owner_network(&app.owner_id, pool.slots(), &taken)
                    .await?;
                tracing::warn!(owner = %app.owner_id, slot, moved, "owner network subnet taken on the engine; moved");
                if moved == slot {
                    return Err(err.into());
                }
                slot = moved;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

async fn observe(ctx: &Context, app_id: &str) -> Result<Vec<Observed>, ReconcileError> {
    Ok(ctx.runtime.containers_of(app_id).await?)
}

/// Reconciles one application; returns when to look again (`None`: on the next event
/// or resync).
///
/// # Errors
/// The engine or the store failed; the queue retries with backoff.
pub async fn reconcile(app_id: String, ctx: Context) -> Result<Option<Duration>, ReconcileError> {
    let started = Instant::now();
    let span = tracing::info_span!("reconcile", app = %app_id);
    let result = reconcile_inner(&app_id, &ctx).instrument(span).await;
    // Cut short by a stopping controller: not a failure of the app.
    let cancelled = matches!(
        &result,
        Err(ReconcileError::Runtime(RuntimeError::PullCancelled { .. }))
    );
    let outcome = match &result {
        Ok(_) => "success",
        Err(_) if cancelled => "cancelled",
        Err(_) => "error",
    };
    tracing::debug!(app = %app_id, outcome, elapsed_ms = started.elapsed().as_millis() as u64, requeue_ms = ?result.as_ref().ok().and_then(|r| r.map(|d| d.as_millis())), "reconciled");
    if let (Err(err), false) = (&result, cancelled) {
        ctx.bus
            .publish(Event::ReconcileError {
                app_id: app_id.clone(),
                message: err.to_string(),
                timestamp: longin_store::time::rfc3339(longin_store::now_ms()),
            })
            .await;
    }
    metrics::counter!("longin_reconciles_total", "result" => outcome).increment(1);
    metrics::histogram!("longin_reconcile_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    result
}

/// Observe, then take the path the application is on: gone (orphans), being deleted
/// (cleanup, the finalizer's side), or wanted (apply).
async fn reconcile_inner(app_id: &str, ctx: &Context) -> Result<Option<Duration>, ReconcileError> {
    // Known quiet again only if this reconcile ends with nothing done and nothing due.
    ctx.quiet.forget(app_id);
    if ctx.runtime.capabilities().native_rollout {
        return crate::service_reconciler::reconcile(ctx, app_id).await;
    }
    let observed = observe(ctx, app_id).await?;
    let Some(app) = ctx.store.application_by_id(app_id).await? else {
        remove_orphans(ctx, app_id, &observed);
        return Ok(None);
    };
    ctx.owners.record(app_id, &app.owner_id);
    if app.deletion_timestamp.is_some() {
        return cleanup(ctx, &app, observed).await;
    }
    apply(ctx, &app, observed).await
}

/// Managed containers whose application is gone are stopped and removed.
fn remove_orphans(ctx: &Context, app_id: &str, observed: &[Observed]) {
    for c in observed {
        if !ctx.stops.is_stopping(&c.id) {
            tracing::info!(app = app_id, container = %c.id, "removing orphan container");
            ctx.stops.begin(&ctx.runtime, &c.id, 10, &ctx.cancel);
        }
    }
    ctx.prober.set_targets(app_id, Vec::new());
    ctx.owners.forget(app_id);
}

/// The deletion path: every container is stopped (off the workers) and removed; once
/// none is left, the application's row goes, and with it its ports.
async fn cleanup(
    ctx: &Context,
    app: &ApplicationRecord,
    observed: Vec<Observed>,
) -> Result<Option<Duration>, ReconcileError> {
    ctx.prober.set_targets(&app.id, Vec::new());
    let observed = if observed.is_empty() {
        observed
    } else {
        for c in &observed {
            stop_replica(ctx, app, &c.id);
        }
        observe(ctx, &app.id).await?
    };
    if !observed.iter().all(|c| c.state == RunState::Gone) {
        return Ok(Some(Duration::from_secs(1)));
    }
    ctx.store.sync_containers(&app.id, &[], 0).await?;
    if ctx.store.finalize_deletion(&app.id).await? {
        tracing::info!(app = %app.name, "application deleted");
    }
    Ok(None)
}

/// Starts stopping and removing container `id` in the background, unless under way.
fn stop_replica(ctx: &Context, app: &ApplicationRecord, id: &str) {
    if !ctx.stops.is_stopping(id) {
        tracing::info!(app = %app.name, container = %id, "stopping and removing container");
        let grace = app.spec.termination_grace_period_seconds;
        ctx.stops.begin(&ctx.runtime, id, grace, &ctx.cancel);
    }
}

/// One reconcile of a wanted application: what it found out and when to come back.
struct Pass<'a> {
    ctx: &'a Context,
    app: &'a ApplicationRecord,
    hash: &'a str,
    /// Unix milliseconds.
    now: i64,
    facts: Facts,
    requeue: Option<Duration>,
    /// The status as last written: the app's when the pass began, then each write's
    /// (a pass may write twice: what it saw before acting, and what runs after).
    status: longin_crds::application::ApplicationStatus,
}

impl Pass<'_> {
    /// Come back within `after`.
    fn soon(&mut self, after: Duration) {
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }
}

/// The apply path: plan the steps from what runs, make sure the image is there, take
/// the steps, then report what runs now.
async fn apply(
    ctx: &Context,
    app: &ApplicationRecord,
    observed: Vec<Observed>,
) -> Result<Option<Duration>, ReconcileError> {
    let (now, now_text) = now_pair(ctx);
    // A new generation clears a Failed verdict (that is what `longin restart` is for).
    let failed = ctx.restarts.verdict(&app.id, app.generation, &app.status);
    let hash = labels::spec_hash(&app.spec, &app.annotations, ctx.store.sealer());
    let mut pass = Pass {
        ctx,
        app,
        hash: &hash,
        now,
        facts: Facts {
            generation: app.generation,
            failed,
            now: now_text,
            ..Facts::default()
        },
        requeue: None,
        status: app.status.clone(),
    };
    let host_ports = replica_ports(ctx, app).await?;
    let surge_ports = ctx.store.surge_ports(&app.id).await?;
    let replicas = app.spec.replicas;
    let desired = Desired {
        replicas,
        spec_hash: &hash,
        host_ports: &host_ports,
        surge_ports: &surge_ports,
        max_surge: (replicas / 4).max(1),
        restart_policy: app.spec.restart_policy,
        has_health_check: app.spec.health_check.is_some(),
        deleting: false,
        restarts_allowed: pass.facts.failed.is_none(),
    };
    let health = |id: &str| ctx.prober.health(id);
    let steps = plan::plan(&desired, &observed, &health);

    // A rollout's new containers (Surge) are pulled like new replicas: under the
    // Always policy no container is ever made from an unpulled copy. The pull runs off
    // the workers; this reconcile comes back when it may be done.
    if steps
        .iter()
        .any(|s| matches!(s, Step::Create { .. } | Step::Surge { .. }))
        && let Some(wait) = ensure_image(&mut pass, &desired, &observed).await?
    {
        return Ok(Some(wait));
    }

    let acted = !steps.is_empty();
    if acted {
        // What runs now, before the engine is asked to change it: a restart or a start
        // can take half a second, and a replica that died is down meanwhile.
        write_status(ctx, app, &mut pass.status, &desired, &observed, &pass.facts).await?;
    }
    for step in steps {
        if let Err(err) = execute(&mut pass, step).await {
            return Err(match err {
                ReconcileError::Runtime(err) => {
                    refused(ctx, app, &mut pass, &desired, &observed, err).await
                }
                other => other,
            });
        }
    }
    // Look again only if something was done; an idle resync reuses what it saw.
    let observed = if acted {
        observe(ctx, &app.id).await?
    } else {
        observed
    };
    set_probe_targets(ctx, app, &hash, &observed);
    let host_ports = ctx.store.host_ports(&app.id, replicas).await?;
    let desired = Desired {
        host_ports: &host_ports,
        ..desired
    };
    report(pass, &desired, &observed, acted).await
}

/// The host port of each replica. An apply gives every replica its port; should one be
/// missing all the same, it is given now: waiting for it would leave the app short of
/// replicas for good.
async fn replica_ports(ctx: &Context, app: &ApplicationRecord) -> Result<Vec<u16>, ReconcileError> {
    let replicas = app.spec.replicas;
    let host_ports = ctx.store.host_ports(&app.id, replicas).await?;
    if host_ports.len() >= replicas as usize {
        return Ok(host_ports);
    }
    tracing::warn!(app = %app.name, have = host_ports.len(), want = replicas, "replicas without a host port; allocating them");
    let mut host_ports = ctx
        .store
        .ensure_ports(&app.id, ctx.config.port_range)
        .await?;
    host_ports.truncate(replicas as usize);
    Ok(host_ports)
}

/// Whether the app's image is ready for new containers: `None` when it is, else when
/// to look again. A failed pull is reported in the status and fails the reconcile.
async fn ensure_image(
    pass: &mut Pass<'_>,
    desired: &Desired<'_>,
    observed: &[Observed],
) -> Result<Option<Duration>, ReconcileError> {
    let (ctx, app) = (pass.ctx, pass.app);
    let Some(image) = &app.spec.image else {
        pass.facts.pull_error = Some(
            "no image yet: waiting for the first build of spec.source (longin rollout history)"
                .to_owned(),
        );
        pass.facts.awaiting_build = true;
        write_status(ctx, app, &mut pass.status, desired, observed, &pass.facts).await?;
        return Ok(Some(Duration::from_secs(30)));
    };
    let policy = match longin_crds::source::built_for(image) {
        // Built here, never on a registry: the engine's copy is the image.
        Some(uid) if uid == app.id => ImagePullPolicy::Never,
        // Another application's build: only a pull (which fails) may provide it, so
        // nobody runs an image built from someone else's repository.
        Some(_) => ImagePullPolicy::Always,
        None => app.spec.image_pull_policy.unwrap_or(ctx.config.pull_policy),
    };
    let status = if policy == ImagePullPolicy::Never {
        // One look at the engine, never a pull: no need to wait for it off the worker.
        match ctx.runtime.ensure_image(image, policy, &ctx.cancel).await {
            Ok(_) => PullStatus::Ready,
            Err(err) => PullStatus::Failed(err),
        }
    } else {
        ctx.pulls.ensure(&ctx.runtime, image, policy, &ctx.cancel)
    };
    match status {
        PullStatus::Ready => Ok(None),
        PullStatus::Pending => Ok(Some(PULL_RECHECK)),
        PullStatus::Failed(err) => {
            if let RuntimeError::Pull { message, .. } = &err {
                pass.facts.pull_error = Some(message.clone());
                write_status(ctx, app, &mut pass.status, desired, observed, &pass.facts).await?;
            }
            Err(err.into())
        }
    }
}

/// Takes one step on the engine. An engine refusal comes back as
/// `ReconcileError::Runtime`, for the caller to report.
async fn execute(pass: &mut Pass<'_>, step: Step) -> Result<(), ReconcileError> {
    let (ctx, app) = (pass.ctx, pass.app);
    match step {
        // Off the workers: a stop may wait out a long grace period.
        Step::Remove { id } => {
            stop_replica(ctx, app, &id);
            pass.soon(STOPPING_RECHECK);
        }
        // A container being stopped is not started again.
        Step::Restart { id, .. } if ctx.stops.is_stopping(&id) => {}
        Step::Create { replica, host_port } => {
            let (id, host_port) =
                start_on_a_free_port(ctx, app, pass.hash, replica, host_port).await?;
            tracing::info!(app = %app.name, replica, host_port, container = %id, "container started");
        }
        Step::Surge { replica } => {
            let host_port = ctx
                .store
                .allocate_surge_port(&app.id, replica, ctx.config.port_range)
                .await?;
            let network = owner_network(ctx, app).await?;
            let plan = container_plan(app, pass.hash, replica, host_port, &ctx.config, &network);
            let id = ctx.runtime.create_and_start(&plan).await?;
            tracing::info!(app = %app.name, replica, host_port, container = %id, "rolling: new container started beside the old");
        }
        Step::Promote { replica, host_port } => {
            ctx.store
                .promote_surge_port(&app.id, replica, host_port)
                .await?;
            tracing::info!(app = %app.name, replica, host_port, "rolling: replica moved to its new container");
        }
        Step::Restart { id, replica } => restart_replica(pass, &id, replica).await?,
    }
    Ok(())
}

/// Starts an exited replica again, unless CrashLoopBackOff says wait or the restart
/// budget is spent (then the app is Failed).
async fn restart_replica(
    pass: &mut Pass<'_>,
    id: &str,
    replica: u32,
) -> Result<(), ReconcileError> {
    let (ctx, app) = (pass.ctx, pass.app);
    let limit = ctx.config.restart_limit;
    match ctx
        .restarts
        .may_restart(&app.id, &app.name, app.generation, replica, pass.now, limit)
    {
        RestartDecision::Go => {}
        RestartDecision::Failed(why) => {
            tracing::warn!(app = %app.name, replica, "restart limit reached; application failed");
            pass.facts.failed = Some(why);
            return Ok(());
        }
        RestartDecision::Wait(wait) => {
            pass.facts.backing_off = Some(format!(
                "back-off {}s restarting replica {replica}",
                (wait + 999) / 1000
            ));
            pass.soon(Duration::from_millis(u64::try_from(wait).unwrap_or(1000)));
            return Ok(());
        }
    }
    tracing::info!(app = %app.name, replica, container = %id, "restarting container");
    // A refused start is not a crash: it is reported (ReplicaFailure) and retried with
    // the queue's back-off, and spends no crash-loop budget — a port still held by a
    // container just removed would otherwise make a healthy app Failed.
    ctx.runtime
        .restart(id, app.spec.termination_grace_period_seconds)
        .await?;
    ctx.prober.reset(id);
    ctx.restarts
        .record_restart(&app.id, replica, pass.now, limit);
    metrics::counter!("longin_container_restarts_total", "app" => format!("{}/{}", app.owner_username, app.name))
        .increment(1);
    Ok(())
}

/// Probes the running replicas of the current spec (none when the app has no check).
fn set_probe_targets(ctx: &Context, app: &ApplicationRecord, hash: &str, observed: &[Observed]) {
    let Some(check) = &app.spec.health_check else {
        ctx.prober.set_targets(&app.id, Vec::new());
        return;
    };
    let targets = observed
        .iter()
        .filter(|c| c.state == RunState::Running && c.spec_hash == hash)
        .map(|c| {
            (
                c.id.clone(),
                Target {
                    app_id: app.id.clone(),
                    host_port: c.host_port,
                    http_path: check.http.as_ref().map(|h| h.path.clone()),
                    initial_delay: Duration::from_secs(u64::from(check.initial_delay_seconds)),
                    period: Duration::from_secs(u64::from(check.period_seconds.max(1))),
                    timeout: Duration::from_secs(u64::from(check.timeout_seconds.max(1))),
                    failure_threshold: check.failure_threshold.max(1),
                },
            )
        })
        .collect();
    ctx.prober.set_targets(&app.id, targets);
}

/// Records what runs (the rollout's end or deadline, the container rows, the status)
/// and says when to look again.
async fn report(
    mut pass: Pass<'_>,
    desired: &Desired<'_>,
    observed: &[Observed],
    acted: bool,
) -> Result<Option<Duration>, ReconcileError> {
    let (ctx, app) = (pass.ctx, pass.app);
    let health = |id: &str| ctx.prober.health(id);
    let settled = plan::count(desired, observed, &health).settled(desired.replicas);
    // Success is recorded by `write_status`, on the status that says so: a count taken
    // here and another there could disagree (the prober runs meanwhile), and a status
    // written Running without its revision finished left the revision `deploying`.
    if let Some(why) = &pass.facts.failed {
        // CrashLoopBackOff gave up: the revision failed (autoRollback acts on this).
        let ended = ctx
            .store
            .finish_rollout(&app.id, app.generation, false, why)
            .await?;
        count_rollout(ended.as_deref(), "failed");
    } else if !settled {
        pass.facts.deadline_exceeded = past_deadline(ctx, app).await?;
    }
    let rows: Vec<ObservedContainer> = observed
        .iter()
        .filter(|c| c.state != RunState::Gone)
        .map(|c| container_row(ctx, &app.id, c))
        .collect();
    ctx.store
        .sync_containers(&app.id, &rows, app.spec.replicas)
        .await?;
    // After the rows: a client that sees the new status finds the containers it
    // describes in /api/containers.
    write_status(ctx, app, &mut pass.status, desired, observed, &pass.facts).await?;

    // Not settled yet (starting, probing, backing off): look again soon.
    if !settled && pass.facts.failed.is_none() {
        pass.soon(Duration::from_secs(2));
    }
    if !acted && pass.requeue.is_none() {
        let revision = longin_store::status::Revision {
            generation: app.generation,
            deleting: false,
        };
        ctx.quiet.settle(&app.id, revision, observed);
    }
    Ok(pass.requeue)
}

/// Counts a revision whose rollout just ended (`trigger` is what started it).
pub(crate) fn count_rollout(trigger: Option<&str>, result: &'static str) {
    if let Some(trigger) = trigger {
        metrics::counter!("longin_deployments_total",
            "trigger" => crate::builds::trigger_label(trigger), "result" => result)
        .increment(1);
    }
}

pub(crate) fn container_row(ctx: &Context, app_id: &str, c: &Observed) -> ObservedContainer {
    ObservedContainer {
        docker_id: c.id.clone(),
        replica_index: i64::from(c.replica),
        host_port: i64::from(c.host_port),
        spec_hash: c.spec_hash.clone(),
        status: match c.state {
            RunState::Running => "running".to_owned(),
            RunState::Created => "created".to_owned(),
            RunState::Starting => "starting".to_owned(),
            RunState::Exited { code } => format!("exited({code})"),
            RunState::Gone => "gone".to_owned(),
        },
        restart_count: ctx.restarts.restart_count(app_id, c.replica),
    }
}

/// Whether the rollout of the app's generation has run past its progress deadline;
/// records it as failed the first time.
pub(crate) async fn past_deadline(
    ctx: &Context,
    app: &ApplicationRecord,
) -> Result<bool, ReconcileError> {
    let Some(started_ms) = ctx.store.rollout_started(&app.id, app.generation).await? else {
        return Ok(false);
    };
    let deadline_ms = i64::try_from(ctx.config.progress_deadline.as_millis()).unwrap_or(i64::MAX);
    if ctx.clock.now() - started_ms <= deadline_ms {
        return Ok(false);
    }
    let ended = ctx
        .store
        .finish_rollout(
            &app.id,
            app.generation,
            false,
            "the rollout did not finish within its progress deadline",
        )
        .await?;
    count_rollout(ended.as_deref(), "failed");
    if ended.is_some() {
        tracing::warn!(app = %app.name, generation = app.generation, "rollout exceeded its progress deadline");
    }
    Ok(true)
}

/// Starts `replica` on `host_port`, or, when something other than this installation
/// holds that port, on another one from the pool (the held port is set aside). Returns
/// the container and the port it got.
async fn start_on_a_free_port(
    ctx: &Context,
    app: &ApplicationRecord,
    hash: &str,
    replica: u32,
    mut host_port: u16,
) -> Result<(String, u16), ReconcileError> {
    use crate::host_ports;
    let address: std::net::IpAddr = ctx
        .config
        .bind_address
        .parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let network = owner_network(ctx, app).await?;
    // A few moves at most in one reconcile: beyond, back off like any refusal.
    for _ in 0..3 {
        let plan = container_plan(app, hash, replica, host_port, &ctx.config, &network);
        let held = match ctx.runtime.host_port_held(address, host_port) {
            Some(why) => Some(why),
            None => match ctx.runtime.create_and_start(&plan).await {
                Ok(id) => return Ok((id, host_port)),
                Err(err) if host_ports::is_port_conflict(&err) => Some(err.to_string()),
                Err(err) => return Err(err.into()),
            },
        };
        let reason = held.unwrap_or_default();
        // Our own container on it (one being replaced) frees it soon: wait for that.
        if ctx.runtime.port_is_ours(host_port).await? {
            return Err(ReconcileError::Runtime(RuntimeError::PortBusy {
                port: host_port,
                reason,
            }));
        }
        // A container created on the held port must not be started later.
        ctx.runtime.remove_by_name(&plan.name).await?;
        let moved = match ctx
            .store
            .move_off_port(
                &app.id,
                replica,
                host_port,
                &reason,
                host_ports::SET_ASIDE,
                ctx.config.port_range,
            )
            .await
        {
            Ok(moved) => moved,
            // Nowhere to go: nothing was set aside; report it and retry with back-off.
            Err(longin_store::applications::ApplicationError::PoolExhausted { .. }) => {
                return Err(ReconcileError::Runtime(RuntimeError::PortBusy {
                    port: host_port,
                    reason: format!("{reason}; no other port of the pool is free"),
                }));
            }
            Err(err) => return Err(err.into()),
        };
        tracing::warn!(app = %app.name, replica, skipped = host_port, port = moved, %reason, "host port held outside Longin; replica moved");
        metrics::counter!("longin_host_ports_skipped_total").increment(1);
        ctx.skipped_ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                app.id.clone(),
                format!("host port {host_port} skipped for replica {replica} ({reason}); it now uses {moved}"),
            );
        host_port = moved;
    }
    Err(ReconcileError::Runtime(RuntimeError::PortBusy {
        port: host_port,
        reason: "every port tried was held outside Longin".to_owned(),
    }))
}

/// The engine refused to create or start a replica: the status says so (condition
/// `ReplicaFailure`, reason `FailedCreate`, the engine's message), and the reconcile
/// fails, so the queue backs off and tries again. The next reconcile that gets past it
/// clears the condition.
async fn refused(
    ctx: &Context,
    app: &ApplicationRecord,
    pass: &mut Pass<'_>,
    desired: &Desired<'_>,
    observed: &[Observed],
    err: RuntimeError,
) -> ReconcileError {
    tracing::warn!(app = %app.name, error = %err, "the engine refused a replica");
    pass.facts.replica_failure = Some(err.to_string());
    // A rollout whose new replica is refused still runs against its deadline.
    match past_deadline(ctx, app).await {
        Ok(past) => pass.facts.deadline_exceeded = past,
        Err(deadline_err) => {
            tracing::warn!(app = %app.name, error = %deadline_err, "could not check the rollout deadline")
        }
    }
    if let Err(status_err) =
        write_status(ctx, app, &mut pass.status, desired, observed, &pass.facts).await
    {
        tracing::warn!(app = %app.name, error = %status_err, "could not report it in the status");
    }
    err.into()
}

/// Writes the status that describes `observed`, unless `current` (the status as last
/// written) says it already; a first Running of the generation finishes its rollout.
pub(crate) async fn write_status(
    ctx: &Context,
    app: &ApplicationRecord,
    current: &mut longin_crds::application::ApplicationStatus,
    desired: &Desired<'_>,
    observed: &[Observed],
    facts: &Facts,
) -> Result<(), ReconcileError> {
    let health = |id: &str| ctx.prober.health(id);
    let counts = plan::count(desired, observed, &health);
    let facts = &Facts {
        port_skipped: ctx
            .skipped_ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&app.id)
            .cloned(),
        ..facts.clone()
    };
    let status = plan::status(desired, counts, facts, current);
    // Compared here first: an unchanged status costs no statement at all.
    if status == *current {
        return Ok(());
    }
    let was_running =
        current.phase == Phase::Running && current.observed_generation == app.generation;
    if status.phase == Phase::Running && !was_running {
        // Before the status: should this fail, the next pass sees the edge again.
        let ended = ctx
            .store
            .finish_rollout(
                &app.id,
                app.generation,
                true,
                "every replica runs it and is ready",
            )
            .await?;
        count_rollout(ended.as_deref(), "succeeded");
    }
    if ctx.store.write_status(&app.id, &status).await? {
        tracing::debug!(app = %app.name, phase = status.phase.as_str(), ready = status.ready_replicas, "status changed");
        ctx.bus
            .publish(Event::Status {
                app: AppRef {
                    app_id: app.id.clone(),
                    owner_id: app.owner_id.clone(),
                    name: app.name.clone(),
                },
                status: status.clone(),
            })
            .await;
    }
    *current = status;
    Ok(())
}

#[cfg(test)]
#[path = "reconciler_tests.rs"]
mod tests;
