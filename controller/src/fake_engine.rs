//! An engine in memory, for the reconciler's unit tests: containers are records that
//! a test can crash, ports a test can hold, pulls and creates a test can make fail.
//! It keeps the real engine's contract (labels in, the same `Observed` out, "look,
//! else act" calls), so what the reconciler does on it, it does on Docker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::stream::BoxStream;
use longin_crds::application::ImagePullPolicy;
use longin_crds::limits::Image;
use tokio_util::sync::CancellationToken;

use crate::engine::{Capabilities, ContainerRuntime, EngineEvent};
use crate::labels;
use crate::plan::{Observed, RunState};
use crate::runtime::{ContainerPlan, NetworkPlan, RuntimeError};
use crate::stats::Sample;

/// One container as the fake engine keeps it.
#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub name: String,
    pub plan: ContainerPlan,
    pub state: RunState,
    pub created: i64,
}

#[derive(Debug, Default)]
struct State {
    /// By id; ids are `c1`, `c2`, … in creation order.
    containers: BTreeMap<String, FakeContainer>,
    next_id: u64,
    /// Images a pull fails for, with the registry's message.
    missing_images: HashMap<String, String>,
    pulls: Vec<String>,
    /// Host ports held by something outside the engine.
    held_ports: HashSet<u16>,
    /// The next creates are refused with these messages, in order.
    refusals: Vec<String>,
    networks: BTreeMap<String, String>,
    restarts: usize,
    stops: Vec<String>,
}

#[derive(Debug, Default)]
pub struct FakeEngine {
    state: Mutex<State>,
}

fn refused(operation: &'static str, message: String) -> RuntimeError {
    RuntimeError::Engine {
        operation,
        source: bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message,
        },
    }
}

impl FakeEngine {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every container, in creation order.
    pub fn containers(&self) -> Vec<(String, FakeContainer)> {
        self.state()
            .containers
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect()
    }

    /// The containers that run now, as (replica, host port, spec hash), sorted.
    pub fn running(&self) -> Vec<(u32, u16, String)> {
        let mut out: Vec<_> = self
            .state()
            .containers
            .values()
            .filter(|c| c.state == RunState::Running)
            .map(|c| {
                let observed = labels::observed(String::new(), &c.plan.labels, c.state, 0);
                let replica = observed.map_or(u32::MAX, |(_, o)| o.replica);
                (replica, c.plan.host_port, labels_hash(&c.plan))
            })
            .collect();
        out.sort();
        out
    }

    /// Every running container exits with `code` (a crash of all replicas).
    pub fn exit_all(&self, code: i64) {
        for c in self.state().containers.values_mut() {
            if c.state == RunState::Running {
                c.state = RunState::Exited { code };
            }
        }
    }

    /// Container `id` is left created but never started (a controller that died
    /// between the two calls).
    pub fn leave_created(&self, id: &str) {
        if let Some(c) = self.state().containers.get_mut(id) {
            c.state = RunState::Created;
        }
    }

    pub fn fail_pulls_of(&self, image: &str, message: &str) {
        self.state()
            .missing_images
            .insert(image.to_owned(), message.to_owned());
    }

    pub fn pulls(&self) -> Vec<String> {
        self.state().pulls.clone()
    }

    pub fn hold_port(&self, port: u16) {
        self.state().held_ports.insert(port);
    }

    /// The next create is refused with `message`.
    pub fn refuse_next_create(&self, message: &str) {
        self.state().refusals.push(message.to_owned());
    }

    pub fn restarts(&self) -> usize {
        self.state().restarts
    }

    /// Ids stopped and removed, in order.
    pub fn stopped(&self) -> Vec<String> {
        self.state().stops.clone()
    }
}

fn labels_hash(plan: &ContainerPlan) -> String {
    plan.labels
        .get(labels::SPEC_HASH)
        .cloned()
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl ContainerRuntime for FakeEngine {
    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn managed_containers(&self) -> Result<Vec<(String, Observed)>, RuntimeError> {
        Ok(self
            .state()
            .containers
            .iter()
            .filter_map(|(id, c)| labels::observed(id.clone(), &c.plan.labels, c.state, c.created))
            .collect())
    }

    async fn containers_of(&self, app_uid: &str) -> Result<Vec<Observed>, RuntimeError> {
        Ok(self
            .managed_containers()
            .await?
            .into_iter()
            .filter(|(app, _)| app == app_uid)
            .map(|(_, c)| c)
            .collect())
    }

    async fn unlabelled_containers(&self) -> Result<Vec<(String, String)>, RuntimeError> {
        Ok(Vec::new())
    }

    async fn ensure_image(
        &self,
        image: &Image,
        _policy: ImagePullPolicy,
        _cancel: &CancellationToken,
    ) -> Result<bool, RuntimeError> {
        let mut state = self.state();
        state.pulls.push(image.to_string());
        match state.missing_images.get(image.as_str()) {
            Some(message) => Err(RuntimeError::Pull {
                image: image.to_string(),
                message: message.clone(),
            }),
            None => Ok(true),
        }
    }

    async fn ensure_network(&self, plan: &NetworkPlan) -> Result<(), RuntimeError> {
        self.state()
            .networks
            .insert(plan.name.clone(), plan.subnet.clone());
        Ok(())
    }

    async fn network_subnets(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(self.state().networks.values().cloned().collect())
    }

    async fn remove_unused_networks(&self) -> Result<usize, RuntimeError> {
        Ok(0)
    }

    async fn create_and_start(&self, plan: &ContainerPlan) -> Result<String, RuntimeError> {
        let mut state = self.state();
        if !state.refusals.is_empty() {
            let message = state.refusals.remove(0);
            return Err(refused("create container", message));
        }
        if state.containers.values().any(|c| c.name == plan.name) {
            return Err(refused(
                "create container",
                format!(
                    "Conflict. The container name \"/{}\" is already in use",
                    plan.name
                ),
            ));
        }
        let port_taken = state.held_ports.contains(&plan.host_port)
            || state
                .containers
                .values()
                .any(|c| c.state == RunState::Running && c.plan.host_port == plan.host_port);
        if port_taken {
            return Err(refused(
                "start container",
                format!(
                    "driver failed programming external connectivity: Bind for 0.0.0.0:{}: port is already allocated",
                    plan.host_port
                ),
            ));
        }
        state.next_id += 1;
        let id = format!("c{}", state.next_id);
        let created = i64::try_from(state.next_id).unwrap_or(i64::MAX);
        state.containers.insert(
            id.clone(),
            FakeContainer {
                name: plan.name.clone(),
                plan: plan.clone(),
                state: RunState::Running,
                created,
            },
        );
        Ok(id)
    }

    async fn restart(&self, id: &str, _grace: u32) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.restarts += 1;
        match state.containers.get_mut(id) {
            Some(c) => {
                c.state = RunState::Running;
                Ok(())
            }
            None => Err(refused(
                "start container",
                format!("No such container: {id}"),
            )),
        }
    }

    async fn stop_and_remove(&self, id: &str, _grace: u32) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.containers.remove(id);
        state.stops.push(id.to_owned());
        Ok(())
    }

    async fn remove_by_name(&self, name: &str) -> Result<(), RuntimeError> {
        self.state().containers.retain(|_, c| c.name != name);
        Ok(())
    }

    async fn port_is_ours(&self, port: u16) -> Result<bool, RuntimeError> {
        Ok(self
            .state()
            .containers
            .values()
            .any(|c| c.plan.host_port == port))
    }

    fn host_port_held(&self, address: IpAddr, port: u16) -> Option<String> {
        self.state()
            .held_ports
            .contains(&port)
            .then(|| format!("{address}:{port} is in use on the host (held by the test)"))
    }

    async fn one_shot_stats(&self, _id: &str) -> Result<Sample, RuntimeError> {
        Ok(Sample::default())
    }

    fn events(&self) -> BoxStream<'static, Result<EngineEvent, RuntimeError>> {
        Box::pin(futures::stream::pending())
    }
}
