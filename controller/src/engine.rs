//! The seam between the controller and whatever runs the containers. The reconciler,
//! the stops, the pulls, the collector and the event watch see only this trait: the
//! local Docker engine implements it (`runtime.rs`), an in-memory engine does in the
//! reconciler's unit tests (`fake_engine.rs`), and an engine that schedules replicas
//! itself (Docker Swarm) is meant to, saying so through its [`Capabilities`].

use std::net::IpAddr;
use std::sync::Arc;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use longin_crds::application::ImagePullPolicy;
use longin_crds::limits::Image;
use tokio_util::sync::CancellationToken;

use crate::plan::Observed;
use crate::runtime::{ContainerPlan, NetworkPlan, RuntimeError};
use crate::services::{NodeInfo, ServiceObserved, ServicePlan};
use crate::stats::Sample;

/// What an engine does by itself, so the controller knows what is left to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Replicas may run on several machines.
    pub multi_node: bool,
    /// The engine replaces replicas of an old spec itself (health-gated, one at a
    /// time); the controller then does not surge, promote or remove them.
    pub native_rollout: bool,
    /// Each replica is published on a host port of its own (else one per
    /// application, on every node).
    pub per_replica_ports: bool,
    /// Every replica's stats can be read through this engine, wherever it runs.
    pub remote_stats: bool,
}

impl Capabilities {
    /// One machine's engine: the controller does rollouts, ports and stats itself.
    pub const LOCAL: Self = Self {
        multi_node: false,
        native_rollout: false,
        per_replica_ports: true,
        remote_stats: true,
    };

    /// Docker Swarm: it schedules, rolls out and restarts replicas itself, on any of
    /// its nodes, all on the application's one published port.
    pub const SWARM: Self = Self {
        multi_node: true,
        native_rollout: true,
        per_replica_ports: false,
        remote_stats: false,
    };
}

/// Something happened to a managed container of `app_uid` (`action` as the engine
/// names it: `die`, `start`, `destroy`, `health_status: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent {
    pub app_uid: String,
    pub action: String,
}

impl EngineEvent {
    /// Whether the event can change what a reconcile sees.
    #[must_use]
    pub fn matters(&self) -> bool {
        matches!(
            self.action.as_str(),
            "die" | "start" | "destroy" | "stop" | "kill" | "oom"
        ) || self.action.starts_with("health_status")
            // A Swarm service created, updated or removed.
            || self.action.starts_with("service:")
    }

    /// Whether the container may still list as running for a moment after the event
    /// (the engine sends `die` before the state changes): worth a second look.
    #[must_use]
    pub fn look_again(&self) -> bool {
        matches!(self.action.as_str(), "die" | "oom" | "kill" | "stop")
    }
}

/// The engine the controller drives. Every call is "look, else act" and tolerates the
/// wanted state being there already, so a reconcile can run any number of times and
/// pick up after a crash at any point.
#[async_trait::async_trait]
pub trait ContainerRuntime: std::fmt::Debug + Send + Sync + 'static {
    fn capabilities(&self) -> Capabilities;

    /// Whether the engine answers.
    async fn ping(&self) -> Result<(), RuntimeError>;

    /// Every managed container of this installation, with its app uid.
    async fn managed_containers(&self) -> Result<Vec<(String, Observed)>, RuntimeError>;

    /// The managed containers of one application.
    async fn containers_of(&self, app_uid: &str) -> Result<Vec<Observed>, RuntimeError>;

    /// Containers of this instance without an installation label (made before
    /// installations had ids): (app uid, container id).
    async fn unlabelled_containers(&self) -> Result<Vec<(String, String)>, RuntimeError>;

    /// Makes `image` available under `policy`; true when it was pulled.
    async fn ensure_image(
        &self,
        image: &Image,
        policy: ImagePullPolicy,
        cancel: &CancellationToken,
    ) -> Result<bool, RuntimeError>;

    /// Creates the owner's network unless it exists.
    async fn ensure_network(&self, plan: &NetworkPlan) -> Result<(), RuntimeError>;

    /// The subnets of every network on the engine.
    async fn network_subnets(&self) -> Result<Vec<String>, RuntimeError>;

    /// Removes owner networks no container uses; returns how many.
    async fn remove_unused_networks(&self) -> Result<usize, RuntimeError>;

    /// Creates and starts one replica; returns its container id.
    async fn create_and_start(&self, plan: &ContainerPlan) -> Result<String, RuntimeError>;

    /// Starts an exited (or never started) container again.
    async fn restart(&self, id: &str, grace: u32) -> Result<(), RuntimeError>;

    /// Stops (SIGTERM, `grace` seconds, SIGKILL) and removes a container.
    async fn stop_and_remove(&self, id: &str, grace: u32) -> Result<(), RuntimeError>;

    /// Removes the container called `name`, if there is one.
    async fn remove_by_name(&self, name: &str) -> Result<(), RuntimeError>;

    /// Whether one of this installation's containers publishes host port `port`.
    async fn port_is_ours(&self, port: u16) -> Result<bool, RuntimeError>;

    /// Why `port` cannot be published on `address` now, if it cannot (something
    /// outside the engine holds it).
    fn host_port_held(&self, address: IpAddr, port: u16) -> Option<String>;

    /// One reading of a container's resource use.
    async fn one_shot_stats(&self, id: &str) -> Result<Sample, RuntimeError>;

    /// One reading of each of `ids` (as `managed_containers` names them), read all at
    /// once. An engine that reads its replicas' stats in bulk (Swarm, through its
    /// node agents) answers this itself.
    async fn stats_of(&self, ids: Vec<String>) -> Vec<(String, Result<Sample, RuntimeError>)> {
        each_stats(self, ids).await
    }

    /// What the engine itself needs kept as it should be, done at every resync (on
    /// Swarm: the node agents' service). Nothing on the local engine.
    async fn upkeep(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// The engine's events about managed containers, until the stream breaks (the
    /// caller reconnects and resyncs).
    fn events(&self) -> BoxStream<'static, Result<EngineEvent, RuntimeError>>;

    // What an engine with `native_rollout` runs an application as: one service. The
    // local engine has none (its defaults), and the controller never asks it.

    /// The application's service and its tasks (also the tasks left of a service just
    /// removed, until they are gone).
    async fn service_of(&self, _app_uid: &str) -> Result<ServiceObserved, RuntimeError> {
        Ok(ServiceObserved::default())
    }

    /// Creates the service, or updates it to `plan` when its spec or replica count
    /// differs; true when it changed anything.
    async fn ensure_service(&self, _plan: &ServicePlan) -> Result<bool, RuntimeError> {
        Err(RuntimeError::Unsupported {
            operation: "services",
        })
    }

    /// Removes the application's service, if there is one; true when it did.
    async fn remove_service(&self, _app_uid: &str) -> Result<bool, RuntimeError> {
        Ok(false)
    }

    /// The machines the engine runs replicas on.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, RuntimeError> {
        Ok(Vec::new())
    }
}

/// A one-shot reading of each of `ids`, all in flight at once (up to the collector's
/// concurrency).
pub(crate) async fn each_stats<R: ContainerRuntime + ?Sized>(
    runtime: &R,
    ids: Vec<String>,
) -> Vec<(String, Result<Sample, RuntimeError>)> {
    futures::stream::iter(ids)
        .map(|id| async move {
            let sample = runtime.one_shot_stats(&id).await;
            (id, sample)
        })
        .buffer_unordered(crate::collector::CONCURRENCY)
        .collect()
        .await
}

/// The engine as the controller holds it.
pub type Engine = Arc<dyn ContainerRuntime>;
