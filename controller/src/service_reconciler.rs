//! `reconcile(app)` on an engine that schedules replicas itself (Docker Swarm): the
//! application is one service, made or updated to match the spec; the engine places,
//! restarts and rolls out its replicas, and this reads its tasks back into the same
//! status as on the local engine (through `plan::count`/`plan::status`), with where
//! each replica answers (`status.endpoints`).
//!
//! Level-triggered as the local path: each pass reads the service and its tasks
//! afresh, so a missed event costs latency, never correctness.

use std::time::Duration;

use longin_crds::application::RestartPolicy;
use longin_store::applications::ApplicationRecord;
use longin_store::status::ObservedContainer;

use crate::labels;
use crate::plan::{self, Desired, Facts, Health, Observed, RunState};
use crate::reconciler::{
    Context, ReconcileError, container_row, count_rollout, now_pair, owner_network, past_deadline,
    write_status,
};
use crate::services::{
    self, NodeInfo, PublishMode, RestartCondition, ServiceHealth, ServiceObserved, ServicePlan,
};

/// How long Swarm watches a new replica before it updates the next; a failure in that
/// time rolls the update back.
pub const UPDATE_MONITOR_SECS: u32 = 5;

/// How soon an application whose replicas are not all settled is looked at again.
const UNSETTLED_RECHECK: Duration = Duration::from_secs(2);

/// Reconciles one application on a service engine.
///
/// # Errors
/// The engine or the store failed; the queue retries with backoff.
pub async fn reconcile(ctx: &Context, app_id: &str) -> Result<Option<Duration>, ReconcileError> {
    ctx.prober.set_targets(app_id, Vec::new());
    let Some(app) = ctx.store.application_by_id(app_id).await? else {
        // An orphan: its application is gone.
        if ctx.runtime.remove_service(app_id).await? {
            tracing::info!(app = app_id, "removed an orphan service");
        }
        ctx.owners.forget(app_id);
        return Ok(None);
    };
    ctx.owners.record(app_id, &app.owner_id);
    if app.deletion_timestamp.is_some() {
        return cleanup(ctx, &app).await;
    }
    apply(ctx, &app).await
}

/// The deletion path: the service goes; once no task of it is left on any node, the
/// application's row goes, and with it its port.
async fn cleanup(
    ctx: &Context,
    app: &ApplicationRecord,
) -> Result<Option<Duration>, ReconcileError> {
    ctx.runtime.remove_service(&app.id).await?;
    let left = ctx.runtime.service_of(&app.id).await?;
    // Each task goes with its container, stopped or not; one on a node that is down
    // cannot go before the node is back (the engine then removes it): not waited for.
    let nodes = ctx.runtime.nodes().await?;
    let up = |id: &str| nodes.iter().any(|n| n.id == id && n.state == "ready");
    let waiting = left
        .tasks
        .iter()
        .filter(|t| t.node_id.is_empty() || up(&t.node_id))
        .count();
    if left.service.is_some() || waiting > 0 {
        tracing::debug!(app = %app.name, waiting, "waiting for the service's tasks to go");
        return Ok(Some(Duration::from_secs(1)));
    }
    ctx.store.sync_containers(&app.id, &[], 0).await?;
    if ctx.store.finalize_deletion(&app.id).await? {
        tracing::info!(app = %app.name, "application deleted");
    }
    Ok(None)
}

/// The service `app` should be.
/// The image as the nodes pull it: a built one from `--registry`, where the builder
/// pushed it.
fn node_image(ctx: &Context, app: &ApplicationRecord) -> String {
    let image = crate::reconciler::image_of(&app.spec);
    let built = app
        .spec
        .image
        .as_ref()
        .is_some_and(|i| longin_crds::source::is_built_image(i, &app.id));
    match ctx.config.builds.registry.as_deref() {
        Some(registry) if built => crate::builds::in_registry(registry, &image),
        _ => image,
    }
}

fn service_plan(
    ctx: &Context,
    app: &ApplicationRecord,
    hash: &str,
    port: u16,
    network: crate::runtime::NetworkPlan,
    start_first: bool,
) -> ServicePlan {
    let spec = &app.spec;
    let mut labels = labels::container_labels(&labels::ReplicaIdentity {
        instance: &ctx.config.instance,
        installation: &ctx.config.installation,
        app_uid: &app.id,
        app_name: &app.name,
        owner: &app.owner_username,
        spec_hash: hash,
        replica: 0,
        host_port: port,
        generation: app.generation,
    });
    // The replica is the task's slot, not a label.
    labels.remove(labels::REPLICA);
    // Not in the spec hash: a new generation alone (a scale) must not roll replicas.
    labels.remove(labels::GENERATION);
    let limit = ctx.config.restart_limit;
    ServicePlan {
        app_uid: app.id.clone(),
        name: services::service_name(&app.id),
        image: node_image(ctx, app),
        command: spec.command.clone(),
        args: spec.args.clone(),
        env: crate::reconciler::env_of(spec),
        labels,
        spec_hash: hash.to_owned(),
        replicas: spec.replicas,
        container_port: spec.container_port,
        published_port: port,
        publish: ctx.config.publish,
        memory_bytes: i64::try_from(spec.resources.memory.bytes()).unwrap_or(i64::MAX),
        cpu_millis: spec.resources.cpu.millicores(),
        grace_period_secs: spec.termination_grace_period_seconds,
        health: spec.health_check.as_ref().map(|check| ServiceHealth {
            test: services::probe_command(
                spec.container_port,
                check.http.as_ref().map(|h| h.path.as_str()),
                check.timeout_seconds,
            ),
            interval_secs: check.period_seconds.max(1),
            timeout_secs: check.timeout_seconds.max(1),
            retries: check.failure_threshold.max(1),
            start_period_secs: check.initial_delay_seconds,
        }),
        restart: match spec.restart_policy {
            RestartPolicy::Always => RestartCondition::Any,
            RestartPolicy::OnFailure => RestartCondition::OnFailure,
            RestartPolicy::Never => RestartCondition::None,
        },
        restart_delay_secs: u32::try_from(limit.backoff_start_secs).unwrap_or(10),
        max_restarts: u32::try_from(limit.max_restarts).unwrap_or(u32::MAX),
        restart_window_secs: u32::try_from(limit.window_secs).unwrap_or(600),
        start_first,
        monitor_secs: UPDATE_MONITOR_SECS,
        network,
        aliases: vec![app.name.clone()],
    }
}

/// Whether a new replica can start before the old one stops: through the mesh
/// always; with host ports, only when a node is free to take it.
fn start_first(publish: PublishMode, nodes: &[NodeInfo], replicas: u32) -> bool {
    let schedulable = nodes.iter().filter(|n| n.schedulable()).count();
    publish == PublishMode::Ingress || schedulable > replicas as usize
}

/// The wanted path: the service made to match the spec (unless the engine rolled this
/// very spec back: then it stays as the engine left it until the spec changes), its
/// tasks read back, the status written.
async fn apply(ctx: &Context, app: &ApplicationRecord) -> Result<Option<Duration>, ReconcileError> {
    let (_, now_text) = now_pair(ctx);
    let hash = labels::spec_hash(&app.spec, &app.annotations, ctx.store.sealer());
    let mut facts = Facts {
        generation: app.generation,
        now: now_text,
        ..Facts::default()
    };
    let mut current = app.status.clone();
    let port = match ctx
        .store
        .host_ports(&app.id, app.spec.replicas.max(1))
        .await?
        .first()
    {
        Some(&port) => port,
        None => *ctx
            .store
            .ensure_ports(&app.id, ctx.config.port_range)
            .await?
            .first()
            .unwrap_or(&0),
    };
    let ports = vec![port; app.spec.replicas as usize];
    let desired = Desired {
        replicas: app.spec.replicas,
        spec_hash: &hash,
        host_ports: &ports,
        surge_ports: &[],
        max_surge: 1,
        restart_policy: app.spec.restart_policy,
        // Swarm holds a replica in `starting` until its health check passes: a
        // running task is a ready one.
        has_health_check: false,
        deleting: false,
        restarts_allowed: true,
    };
    if app.spec.image.is_none() {
        facts.pull_error = Some(
            "no image yet: waiting for the first build of spec.source (longin rollout history)"
                .to_owned(),
        );
        facts.awaiting_build = true;
        write_status(ctx, app, &mut current, &desired, &[], &facts).await?;
        return Ok(Some(Duration::from_secs(30)));
    }

    let before = ctx.runtime.service_of(&app.id).await?;
    let nodes = ctx.runtime.nodes().await?;
    // The engine went back from this very spec: it stays as the engine left it until
    // the spec changes (a new apply, `longin restart`). Known from the spec last sent
    // or, after a controller restart, from the status already saying so.
    let sent = ctx
        .sent_specs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&app.id)
        .cloned();
    let said = app.status.observed_generation == app.generation
        && app
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason == "RolledBack");
    let rolled_back = before.service.as_ref().is_some_and(|s| {
        s.update
            .as_ref()
            .is_some_and(|(state, _)| state.rolled_back())
            && s.spec_hash != hash
            && (sent.as_deref() == Some(hash.as_str()) || said)
    });
    let acted = if rolled_back {
        false
    } else {
        let network = owner_network(ctx, app).await?;
        let plan = service_plan(
            ctx,
            app,
            &hash,
            port,
            network,
            start_first(ctx.config.publish, &nodes, app.spec.replicas),
        );
        match ctx.runtime.ensure_service(&plan).await {
            Ok(acted) => {
                ctx.sent_specs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(app.id.clone(), hash.clone());
                acted
            }
            Err(err) => {
                tracing::warn!(app = %app.name, error = %err, "the engine refused the service");
                facts.replica_failure = Some(err.to_string());
                if let Err(status_err) =
                    write_status(ctx, app, &mut current, &desired, &[], &facts).await
                {
                    tracing::warn!(app = %app.name, error = %status_err, "could not report it in the status");
                }
                return Err(err.into());
            }
        }
    };
    let observed = if acted {
        ctx.runtime.service_of(&app.id).await?
    } else {
        before
    };
    report(
        ctx,
        app,
        &desired,
        &observed,
        &nodes,
        facts,
        current,
        rolled_back,
    )
    .await
}

/// Writes what the tasks say and when to look again.
#[allow(clippy::too_many_arguments)]
async fn report(
    ctx: &Context,
    app: &ApplicationRecord,
    desired: &Desired<'_>,
    observed: &ServiceObserved,
    nodes: &[NodeInfo],
    mut facts: Facts,
    mut current: longin_crds::application::ApplicationStatus,
    rolled_back: bool,
) -> Result<Option<Duration>, ReconcileError> {
    let port = desired.host_ports.first().copied().unwrap_or(0);
    let (replicas, endpoints) = services::replicas(observed, nodes, port, ctx.config.publish);
    let tasks = services::task_facts(observed, desired.replicas, ctx.clock.now());
    facts.backing_off = tasks.backing_off;
    facts.replica_failure = facts.replica_failure.or(tasks.replica_failure);
    facts.pull_error = tasks.pull_error;
    facts.failed = tasks.failed;
    if rolled_back {
        let message = observed
            .service
            .as_ref()
            .and_then(|s| s.update.as_ref())
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        facts.failed = Some(format!(
            "the update to generation {} failed and the engine rolled it back ({message}); the previous spec keeps serving",
            app.generation
        ));
        facts.rolled_back = true;
    }
    facts.endpoints = Some(endpoints);
    let ready = |_: &str| Health::Ready;
    let settled = plan::count(desired, &replicas, &ready).settled(desired.replicas);
    if let Some(why) = &facts.failed {
        let ended = ctx
            .store
            .finish_rollout(&app.id, app.generation, false, why)
            .await?;
        count_rollout(ended.as_deref(), "failed");
    } else if !settled {
        facts.deadline_exceeded = past_deadline(ctx, app).await?;
    }
    let rows: Vec<ObservedContainer> = replicas
        .iter()
        .filter(|c| c.state != RunState::Gone)
        .map(|c: &Observed| container_row(ctx, &app.id, c))
        .collect();
    ctx.store
        .sync_containers(&app.id, &rows, app.spec.replicas)
        .await?;
    write_status(ctx, app, &mut current, desired, &replicas, &facts).await?;
    Ok((!settled || facts.backing_off.is_some()).then_some(UNSETTLED_RECHECK))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(state: &str, availability: &str) -> NodeInfo {
        NodeInfo {
            id: String::new(),
            hostname: String::new(),
            address: String::new(),
            role: "worker".to_owned(),
            state: state.to_owned(),
            availability: availability.to_owned(),
            engine_version: String::new(),
            leader: false,
        }
    }

    #[test]
    fn start_first_needs_a_spare_node_unless_through_the_mesh() {
        let nodes = [
            node("ready", "active"),
            node("ready", "active"),
            node("down", "active"),
            node("ready", "drain"),
        ];
        assert!(start_first(PublishMode::Host, &nodes, 1));
        assert!(!start_first(PublishMode::Host, &nodes, 2));
        assert!(start_first(PublishMode::Ingress, &nodes, 5));
    }
}
