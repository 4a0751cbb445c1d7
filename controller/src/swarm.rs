//! Docker Swarm behind the controller's seam: an application is one replicated
//! service on a manager (`DOCKER_HOST`), which schedules its replicas over the nodes,
//! restarts them, and rolls updates out (and back) itself. Owner networks are overlay
//! networks; everything else about networks goes through the manager's engine as on
//! the local one.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, NetworkAttachmentConfig,
    ResourceObject, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum,
    ServiceUpdateStatusStateEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState as EngineTaskState,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListServicesOptions, ListTasksOptions, UpdateServiceOptions,
};
use futures::StreamExt;
use longin_crds::application::ImagePullPolicy;
use longin_crds::limits::Image;
use tokio_util::sync::CancellationToken;

use crate::agent::{self, AgentClient, AgentSettings};
use crate::engine::{Capabilities, EngineEvent};
use crate::labels;
use crate::plan::Observed;
use crate::runtime::{ContainerPlan, DockerRuntime, NetworkPlan, RuntimeError};
use crate::services::{
    self, NodeInfo, PublishMode, RestartCondition, ServiceObserved, ServicePlan, ServiceState,
    TaskObserved, TaskState, UpdateState,
};
use crate::stats::Sample;

fn engine(operation: &'static str) -> impl FnOnce(bollard::errors::Error) -> RuntimeError {
    move |source| RuntimeError::Engine { operation, source }
}

fn not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

const NANOS: i64 = 1_000_000_000;

/// A Swarm manager's engine.
#[derive(Debug, Clone)]
pub struct SwarmRuntime {
    /// The manager as a plain engine: networks, and the stats of what runs on it.
    local: DockerRuntime,
    publish: PublishMode,
    /// The node agents, when `--agent-image` has Longin deploy them.
    agent: Option<Agent>,
}

/// The node agents as the runtime deploys and reads them.
#[derive(Debug, Clone)]
struct Agent {
    settings: AgentSettings,
    token: String,
    client: AgentClient,
}

/// How long one agent may take to answer: well inside a metrics cycle.
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

impl SwarmRuntime {
    /// Connects to the manager `DOCKER_HOST` names (the local engine by default) and
    /// checks that it is one.
    ///
    /// # Errors
    /// The engine does not answer, or is not a Swarm manager.
    pub async fn connect(
        instance: &str,
        timeout: Duration,
        publish: PublishMode,
    ) -> Result<Self, RuntimeError> {
        let local = DockerRuntime::connect(instance, timeout)
            .await?
            .with_overlay_networks();
        let info = local.docker().info().await.map_err(engine("info"))?;
        let manager = info
            .swarm
            .as_ref()
            .and_then(|s| s.control_available)
            .unwrap_or(false);
        if !manager {
            return Err(RuntimeError::NotAManager);
        }
        Ok(Self {
            local,
            publish,
            agent: None,
        })
    }

    /// This runtime, managing only the services of installation `id`.
    #[must_use]
    pub fn with_installation(mut self, id: &str) -> Self {
        self.local = self.local.with_installation(id);
        self
    }

    /// This runtime, deploying a node agent on every node (a global service) and
    /// reading the stats of every task through them; `token` authenticates it to them.
    #[must_use]
    pub fn with_agent(mut self, settings: AgentSettings, token: &str) -> Self {
        self.agent = Some(Agent {
            client: AgentClient::new(settings.port, token, AGENT_TIMEOUT),
            settings,
            token: token.to_owned(),
        });
        self
    }

    fn docker(&self) -> &Docker {
        self.local.docker()
    }

    /// Updates service `name` (as `current` is) to `spec`.
    async fn update_to(
        &self,
        name: &str,
        current: &bollard::models::Service,
        spec: ServiceSpec,
    ) -> Result<(), RuntimeError> {
        let version = current
            .version
            .as_ref()
            .and_then(|v| v.index)
            .and_then(|i| i32::try_from(i).ok())
            .unwrap_or(0);
        self.docker()
            .update_service(
                name,
                spec,
                UpdateServiceOptions {
                    version,
                    ..Default::default()
                },
                None,
            )
            .await
            .map_err(engine("update service"))?;
        Ok(())
    }

    /// Every ready node's agent report, by task id; unreadable agents are logged and
    /// counted, and their tasks left to the manager's engine.
    async fn agent_samples(&self, agent: &Agent) -> HashMap<String, Sample> {
        let nodes = match list_nodes(self.docker()).await {
            Ok(nodes) => nodes,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list nodes for their agents");
                return HashMap::new();
            }
        };
        // Where the manager placed each task: a node's report counts only for its own.
        let placed = match self.placements().await {
            Ok(placed) => placed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list tasks for their nodes");
                return HashMap::new();
            }
        };
        let reports: Vec<_> =
            futures::stream::iter(nodes.into_iter().filter(|n| n.state == "ready"))
                .map(|node| async move {
                    let report = agent.client.report(&node.address).await;
                    (node, report)
                })
                .buffer_unordered(crate::collector::CONCURRENCY)
                .collect()
                .await;
        let mut samples = HashMap::new();
        let mut reporting = 0_u32;
        for (node, report) in reports {
            let (node_id, node) = (node.id, node.hostname);
            match report {
                Ok(report) => {
                    reporting += 1;
                    metrics::counter!("longin_agent_reports_total", "outcome" => "ok").increment(1);
                    samples.extend(agent::placed_here(report, &node_id, &placed));
                }
                Err(err) => {
                    metrics::counter!("longin_agent_reports_total", "outcome" => "error")
                        .increment(1);
                    tracing::warn!(node = %node, error = %err, "node agent unreadable");
                }
            }
        }
        metrics::gauge!("longin_agent_nodes_reporting").set(f64::from(reporting));
        samples
    }

    /// This installation's services.
    async fn managed_services(&self) -> Result<Vec<bollard::models::Service>, RuntimeError> {
        let filters = HashMap::from([("label".to_owned(), self.local.managed_filter())]);
        self.docker()
            .list_services(Some(ListServicesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(engine("list services"))
    }

    /// The node each task of this installation's services is placed on.
    async fn placements(&self) -> Result<HashMap<String, String>, RuntimeError> {
        let ids: Vec<String> = self
            .managed_services()
            .await?
            .into_iter()
            .filter_map(|s| s.id)
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .tasks(HashMap::from([("service".to_owned(), ids)]))
            .await?
            .into_iter()
            .filter_map(|t| Some((t.id?, t.node_id?)))
            .collect())
    }

    async fn tasks(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::Task>, RuntimeError> {
        self.docker()
            .list_tasks(Some(ListTasksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(engine("list tasks"))
    }

    async fn inspect(
        &self,
        app_uid: &str,
    ) -> Result<Option<bollard::models::Service>, RuntimeError> {
        self.inspect_named(&services::service_name(app_uid)).await
    }

    async fn inspect_named(
        &self,
        name: &str,
    ) -> Result<Option<bollard::models::Service>, RuntimeError> {
        match self
            .docker()
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
        {
            Ok(service) => Ok(Some(service)),
            Err(err) if not_found(&err) => Ok(None),
            Err(err) => Err(engine("inspect service")(err)),
        }
    }
}

/// A service's label `key`.
fn service_label<'a>(service: &'a bollard::models::Service, key: &str) -> Option<&'a str> {
    service
        .spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn millis(date: Option<&String>) -> i64 {
    date.and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        .map_or(0, |d| d.timestamp_millis())
}

/// A task as the controller reads it.
fn task_observed(task: &bollard::models::Task) -> TaskObserved {
    let status = task.status.as_ref();
    let state = match status.and_then(|s| s.state) {
        Some(EngineTaskState::RUNNING) => TaskState::Running,
        Some(EngineTaskState::PENDING) => TaskState::Pending,
        Some(
            EngineTaskState::NEW
            | EngineTaskState::ALLOCATED
            | EngineTaskState::ASSIGNED
            | EngineTaskState::ACCEPTED
            | EngineTaskState::PREPARING
            | EngineTaskState::READY
            | EngineTaskState::STARTING,
        ) => TaskState::Starting,
        Some(EngineTaskState::FAILED | EngineTaskState::REJECTED) => {
            TaskState::Ended { failed: true }
        }
        _ => TaskState::Ended { failed: false },
    };
    let container = status.and_then(|s| s.container_status.as_ref());
    TaskObserved {
        id: task.id.clone().unwrap_or_default(),
        slot: u32::try_from(task.slot.unwrap_or(0)).unwrap_or(0),
        node_id: task.node_id.clone().unwrap_or_default(),
        container_id: container.and_then(|c| c.container_id.clone()),
        spec_hash: task
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(labels::SPEC_HASH))
            .cloned()
            .unwrap_or_default(),
        state,
        desired_running: task.desired_state == Some(EngineTaskState::RUNNING),
        exit_code: container.and_then(|c| c.exit_code),
        error: status.and_then(|s| s.err.clone()).filter(|e| !e.is_empty()),
        updated: millis(status.and_then(|s| s.timestamp.as_ref())),
        created: millis(task.created_at.as_ref()),
    }
}

fn service_state(service: &bollard::models::Service) -> ServiceState {
    let spec = service.spec.as_ref();
    let replicas = spec
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(0);
    let published_port = spec
        .and_then(|s| s.endpoint_spec.as_ref())
        .and_then(|e| e.ports.as_ref())
        .and_then(|p| p.first())
        .and_then(|p| p.published_port)
        .unwrap_or(0);
    let update = service.update_status.as_ref().and_then(|u| {
        let state = match u.state? {
            ServiceUpdateStatusStateEnum::UPDATING => UpdateState::Updating,
            ServiceUpdateStatusStateEnum::PAUSED => UpdateState::Paused,
            ServiceUpdateStatusStateEnum::COMPLETED => UpdateState::Completed,
            ServiceUpdateStatusStateEnum::ROLLBACK_STARTED => UpdateState::RollbackStarted,
            ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED => UpdateState::RollbackPaused,
            ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED => UpdateState::RollbackCompleted,
            ServiceUpdateStatusStateEnum::EMPTY => return None,
        };
        Some((state, u.message.clone().unwrap_or_default()))
    });
    ServiceState {
        id: service.id.clone().unwrap_or_default(),
        spec_hash: service_label(service, labels::SPEC_HASH)
            .unwrap_or_default()
            .to_owned(),
        replicas: u32::try_from(replicas).unwrap_or(0),
        published_port: u16::try_from(published_port).unwrap_or(0),
        update,
    }
}

/// The engine's node as Longin reports it.
fn node_info(node: &bollard::models::Node) -> NodeInfo {
    let status = node.status.as_ref();
    let manager = node.manager_status.as_ref();
    // A manager may report 0.0.0.0 as its address; its advertised one is in its
    // manager status (`host:2377`).
    let address = status
        .and_then(|s| s.addr.clone())
        .filter(|a| !a.is_empty() && a != "0.0.0.0")
        .or_else(|| {
            manager
                .and_then(|m| m.addr.as_deref())
                .and_then(|a| a.rsplit_once(':'))
                .map(|(host, _)| host.to_owned())
        })
        .unwrap_or_default();
    let spec = node.spec.as_ref();
    let lower = |s: String| s.to_lowercase();
    NodeInfo {
        id: node.id.clone().unwrap_or_default(),
        hostname: node
            .description
            .as_ref()
            .and_then(|d| d.hostname.clone())
            .unwrap_or_default(),
        address,
        role: spec
            .and_then(|s| s.role)
            .map(|r| lower(r.to_string()))
            .unwrap_or_default(),
        state: status
            .and_then(|s| s.state)
            .map_or_else(|| "unknown".to_owned(), |s| lower(s.to_string())),
        availability: spec
            .and_then(|s| s.availability)
            .map(|a| lower(a.to_string()))
            .unwrap_or_default(),
        engine_version: node
            .description
            .as_ref()
            .and_then(|d| d.engine.as_ref())
            .and_then(|e| e.engine_version.clone())
            .unwrap_or_default(),
        leader: manager.and_then(|m| m.leader).unwrap_or(false),
    }
}

/// The nodes of the swarm `docker` manages.
///
/// # Errors
/// The engine is not a manager, or fails.
pub async fn list_nodes(docker: &Docker) -> Result<Vec<NodeInfo>, RuntimeError> {
    let nodes = docker
        .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
        .await
        .map_err(engine("list nodes"))?;
    let mut nodes: Vec<NodeInfo> = nodes.iter().map(node_info).collect();
    nodes.sort_by(|a, b| a.hostname.cmp(&b.hostname).then(a.id.cmp(&b.id)));
    Ok(nodes)
}

/// The engine's service spec for `plan` (pure: what `ensure_service` sends).
#[must_use]
pub fn service_spec(plan: &ServicePlan) -> ServiceSpec {
    let secs = |s: u32| i64::from(s) * NANOS;
    let order = if plan.start_first {
        ServiceSpecUpdateConfigOrderEnum::START_FIRST
    } else {
        ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
    };
    let rollback_order = if plan.start_first {
        ServiceSpecRollbackConfigOrderEnum::START_FIRST
    } else {
        ServiceSpecRollbackConfigOrderEnum::STOP_FIRST
    };
    let nano_cpus = i64::try_from(plan.cpu_millis)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000);
    let publish_mode = match plan.publish {
        PublishMode::Host => EndpointPortConfigPublishModeEnum::HOST,
        PublishMode::Ingress => EndpointPortConfigPublishModeEnum::INGRESS,
    };
    ServiceSpec {
        name: Some(plan.name.clone()),
        labels: Some(plan.labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(plan.image.clone()),
                labels: Some(plan.labels.clone()),
                command: (!plan.command.is_empty()).then(|| plan.command.clone()),
                args: (!plan.args.is_empty()).then(|| plan.args.clone()),
                env: Some(plan.env.clone()),
                stop_grace_period: Some(secs(plan.grace_period_secs)),
                health_check: plan.health.as_ref().map(|h| HealthConfig {
                    test: Some(h.test.clone()),
                    interval: Some(secs(h.interval_secs.max(1))),
                    timeout: Some(secs(h.timeout_secs.max(1))),
                    retries: Some(i64::from(h.retries.max(1))),
                    start_period: Some(secs(h.start_period_secs)),
                    ..Default::default()
                }),
                // As on the local engine: only what a web server needs.
                capability_drop: Some(vec!["ALL".to_owned()]),
                capability_add: Some(
                    crate::runtime::KEPT_CAPABILITIES
                        .iter()
                        .map(|c| format!("CAP_{c}"))
                        .collect(),
                ),
                // tini as PID 1, as on the local engine: signals reach the app and
                // zombies are reaped.
                init: Some(true),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: Some(nano_cpus),
                    memory_bytes: Some(plan.memory_bytes),
                    pids: Some(crate::runtime::PIDS_LIMIT),
                }),
                reservations: Some(ResourceObject {
                    nano_cpus: Some(nano_cpus),
                    memory_bytes: Some(plan.memory_bytes),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(match plan.restart {
                    RestartCondition::Any => TaskSpecRestartPolicyConditionEnum::ANY,
                    RestartCondition::OnFailure => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
                    RestartCondition::None => TaskSpecRestartPolicyConditionEnum::NONE,
                }),
                delay: Some(secs(plan.restart_delay_secs)),
                max_attempts: Some(i64::from(plan.max_restarts)),
                window: Some(secs(plan.restart_window_secs)),
            }),
            placement: Some(TaskSpecPlacement {
                // Host-mode publishing: one replica per node, or their ports collide.
                max_replicas: (plan.publish == PublishMode::Host).then_some(1),
                preferences: Some(vec![TaskSpecPlacementPreferences {
                    spread: Some(TaskSpecPlacementSpread {
                        spread_descriptor: Some("node.id".to_owned()),
                    }),
                }]),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(plan.network.name.clone()),
                aliases: Some(plan.aliases.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(plan.replicas)),
            }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(secs(plan.monitor_secs)),
            max_failure_ratio: Some(0.0),
            order: Some(order),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(secs(plan.monitor_secs)),
            max_failure_ratio: Some(0.0),
            order: Some(rollback_order),
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(match plan.publish {
                PublishMode::Host => EndpointSpecModeEnum::DNSRR,
                PublishMode::Ingress => EndpointSpecModeEnum::VIP,
            }),
            ports: Some(vec![EndpointPortConfig {
                protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                target_port: Some(i64::from(plan.container_port)),
                published_port: Some(i64::from(plan.published_port)),
                publish_mode: Some(publish_mode),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    }
}

#[async_trait::async_trait]
impl crate::engine::ContainerRuntime for SwarmRuntime {
    fn capabilities(&self) -> Capabilities {
        Capabilities::SWARM
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.local.ping().await
    }

    /// Every task of this installation's services, as replicas.
    async fn managed_containers(&self) -> Result<Vec<(String, Observed)>, RuntimeError> {
        let services = self.managed_services().await?;
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let nodes = list_nodes(self.docker()).await?;
        let ids: Vec<String> = services.iter().filter_map(|s| s.id.clone()).collect();
        let tasks = self
            .tasks(HashMap::from([("service".to_owned(), ids)]))
            .await?;
        let mut found = Vec::new();
        for service in &services {
            let Some(app) = service_label(service, labels::APP_UID) else {
                continue;
            };
            let observed = ServiceObserved {
                service: Some(service_state(service)),
                tasks: tasks
                    .iter()
                    .filter(|t| t.service_id == service.id)
                    .map(task_observed)
                    .collect(),
            };
            let port = observed.service.as_ref().map_or(0, |s| s.published_port);
            let (replicas, _) = services::replicas(&observed, &nodes, port, self.publish);
            found.extend(replicas.into_iter().map(|r| (app.to_owned(), r)));
        }
        Ok(found)
    }

    async fn containers_of(&self, app_uid: &str) -> Result<Vec<Observed>, RuntimeError> {
        let observed = self.service_of(app_uid).await?;
        let nodes = list_nodes(self.docker()).await?;
        let port = observed.service.as_ref().map_or(0, |s| s.published_port);
        Ok(services::replicas(&observed, &nodes, port, self.publish).0)
    }

    async fn unlabelled_containers(&self) -> Result<Vec<(String, String)>, RuntimeError> {
        Ok(Vec::new())
    }

    /// Every node pulls for itself when it starts a task; the manager pulls nothing.
    async fn ensure_image(
        &self,
        _image: &Image,
        _policy: ImagePullPolicy,
        _cancel: &CancellationToken,
    ) -> Result<bool, RuntimeError> {
        Ok(false)
    }

    async fn ensure_network(&self, plan: &NetworkPlan) -> Result<(), RuntimeError> {
        self.local.ensure_network(plan).await
    }

    async fn network_subnets(&self) -> Result<Vec<String>, RuntimeError> {
        self.local.network_subnets().await
    }

    /// The manager refuses to remove an overlay network a service still uses.
    async fn remove_unused_networks(&self) -> Result<usize, RuntimeError> {
        self.local.remove_unused_networks().await
    }

    async fn create_and_start(&self, _plan: &ContainerPlan) -> Result<String, RuntimeError> {
        Err(RuntimeError::Unsupported {
            operation: "single containers",
        })
    }

    async fn restart(&self, _id: &str, _grace: u32) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported {
            operation: "single containers",
        })
    }

    async fn stop_and_remove(&self, _id: &str, _grace: u32) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported {
            operation: "single containers",
        })
    }

    async fn remove_by_name(&self, _name: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn port_is_ours(&self, _port: u16) -> Result<bool, RuntimeError> {
        Ok(false)
    }

    fn host_port_held(&self, _address: std::net::IpAddr, _port: u16) -> Option<String> {
        None
    }

    /// A task's container's stats, when it runs on the manager itself: the manager's
    /// engine cannot read another node's (that needs an agent on each node).
    async fn one_shot_stats(&self, id: &str) -> Result<Sample, RuntimeError> {
        let task = self
            .docker()
            .inspect_task(id)
            .await
            .map_err(engine("inspect task"))?;
        let container = task
            .status
            .and_then(|s| s.container_status)
            .and_then(|c| c.container_id)
            .ok_or(RuntimeError::Unsupported {
                operation: "stats of a task without a container",
            })?;
        self.local.one_shot_stats(&container).await
    }

    /// Through the node agents when there are any (one request per node), else (and
    /// for whatever they did not report) through the manager's engine, which reads
    /// the tasks running on the manager.
    async fn stats_of(&self, ids: Vec<String>) -> Vec<(String, Result<Sample, RuntimeError>)> {
        let mut from_agents = match &self.agent {
            Some(agent) => self.agent_samples(agent).await,
            None => HashMap::new(),
        };
        let (read, unread): (Vec<_>, Vec<_>) =
            ids.into_iter().partition(|id| from_agents.contains_key(id));
        let mut samples: Vec<_> = read
            .into_iter()
            .filter_map(|id| {
                let sample = from_agents.remove(&id)?;
                Some((id, Ok(sample)))
            })
            .collect();
        samples.extend(crate::engine::each_stats(self, unread).await);
        samples
    }

    /// Deploys the node agents' global service, or brings it to this version's spec.
    async fn upkeep(&self) -> Result<(), RuntimeError> {
        let Some(agent) = &self.agent else {
            return Ok(());
        };
        let installation = self.local.installation();
        let spec = agent::service_spec(
            &agent.settings,
            self.local.instance(),
            installation,
            &agent.token,
        );
        let name = agent::service_name(installation);
        match self.inspect_named(&name).await? {
            None => {
                self.docker()
                    .create_service(spec, None)
                    .await
                    .map_err(engine("create service"))?;
                tracing::info!(service = %name, image = %agent.settings.image, port = agent.settings.port, "node agents deployed");
            }
            Some(current) => {
                let labels = current.spec.as_ref().and_then(|s| s.labels.as_ref());
                if !agent::is_current(labels, &spec) {
                    self.update_to(&name, &current, spec).await?;
                    tracing::info!(service = %name, image = %agent.settings.image, "node agents updated");
                }
            }
        }
        Ok(())
    }

    /// The manager's service events, by the app the service name carries.
    fn events(&self) -> futures::stream::BoxStream<'static, Result<EngineEvent, RuntimeError>> {
        let filters = HashMap::from([("type".to_owned(), vec!["service".to_owned()])]);
        self.docker()
            .events(Some(bollard::query_parameters::EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .filter_map(|event| async move {
                match event {
                    Err(err) => Some(Err(engine("events")(err))),
                    Ok(event) => {
                        let action = event.action.unwrap_or_default();
                        let name = event
                            .actor
                            .and_then(|a| a.attributes)
                            .and_then(|mut a| a.remove("name"))?;
                        let app_uid = services::app_of_service(&name)?.to_owned();
                        Some(Ok(EngineEvent {
                            app_uid,
                            action: format!("service:{action}"),
                        }))
                    }
                }
            })
            .boxed()
    }

    async fn service_of(&self, app_uid: &str) -> Result<ServiceObserved, RuntimeError> {
        let service = self.inspect(app_uid).await?;
        let tasks = match &service {
            Some(service) => {
                let id = service.id.clone().unwrap_or_default();
                self.tasks(HashMap::from([("service".to_owned(), vec![id])]))
                    .await?
                    .iter()
                    .map(task_observed)
                    .collect()
            }
            // Removed: its tasks linger until their containers are gone, found by the
            // app label each task's container carries.
            None => self
                .tasks(HashMap::new())
                .await?
                .iter()
                .filter(|t| {
                    t.spec
                        .as_ref()
                        .and_then(|s| s.container_spec.as_ref())
                        .and_then(|c| c.labels.as_ref())
                        .and_then(|l| l.get(labels::APP_UID))
                        .is_some_and(|a| a == app_uid)
                })
                .map(task_observed)
                .collect(),
        };
        Ok(ServiceObserved {
            service: service.as_ref().map(service_state),
            tasks,
        })
    }

    async fn ensure_service(&self, plan: &ServicePlan) -> Result<bool, RuntimeError> {
        let spec = service_spec(plan);
        let Some(current) = self.inspect(&plan.app_uid).await? else {
            self.docker()
                .create_service(spec, None)
                .await
                .map_err(engine("create service"))?;
            tracing::info!(service = %plan.name, replicas = plan.replicas, port = plan.published_port, "service created");
            return Ok(true);
        };
        let state = service_state(&current);
        if state.spec_hash == plan.spec_hash
            && state.replicas == plan.replicas
            && state.published_port == plan.published_port
        {
            return Ok(false);
        }
        self.update_to(&plan.name, &current, spec).await?;
        tracing::info!(service = %plan.name, from = %state.spec_hash, to = %plan.spec_hash, replicas = plan.replicas, "service updated");
        Ok(true)
    }

    async fn remove_service(&self, app_uid: &str) -> Result<bool, RuntimeError> {
        match self
            .docker()
            .delete_service(&services::service_name(app_uid))
            .await
        {
            Ok(()) => {
                tracing::info!(app = app_uid, "service removed");
                Ok(true)
            }
            Err(err) if not_found(&err) => Ok(false),
            Err(err) => Err(engine("remove service")(err)),
        }
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, RuntimeError> {
        list_nodes(self.docker()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ServiceHealth;

    fn plan(publish: PublishMode, start_first: bool) -> ServicePlan {
        ServicePlan {
            app_uid: "u".to_owned(),
            name: services::service_name("u"),
            image: "127.0.0.1:5000/longin/httpd:1.0".to_owned(),
            command: Vec::new(),
            args: vec!["-v".to_owned()],
            env: vec!["A=1".to_owned()],
            labels: HashMap::from([(labels::SPEC_HASH.to_owned(), "h".to_owned())]),
            spec_hash: "h".to_owned(),
            replicas: 3,
            container_port: 8080,
            published_port: 3100,
            publish,
            memory_bytes: 64 << 20,
            cpu_millis: 250,
            grace_period_secs: 5,
            health: Some(ServiceHealth {
                test: services::probe_command(8080, Some("/"), 1),
                interval_secs: 2,
                timeout_secs: 1,
                retries: 3,
                start_period_secs: 0,
            }),
            restart: RestartCondition::Any,
            restart_delay_secs: 10,
            max_restarts: 5,
            restart_window_secs: 600,
            start_first,
            monitor_secs: 5,
            network: NetworkPlan {
                name: "net".to_owned(),
                owner_id: "o".to_owned(),
                subnet: "10.0.0.0/24".to_owned(),
                gateway: "10.0.0.1".to_owned(),
            },
            aliases: vec!["web".to_owned()],
        }
    }

    #[test]
    fn a_plan_becomes_a_replicated_service_published_on_its_node() {
        let spec = service_spec(&plan(PublishMode::Host, false));
        let task = spec.task_template.as_ref().unwrap();
        let container = task.container_spec.as_ref().unwrap();
        assert_eq!(container.command, None, "no command: the image's own");
        assert_eq!(container.stop_grace_period, Some(5 * NANOS));
        assert_eq!(
            container.health_check.as_ref().unwrap().interval,
            Some(2 * NANOS)
        );
        let limits = task.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits.nano_cpus, Some(250_000_000));
        assert_eq!(limits.memory_bytes, Some(64 << 20));
        assert_eq!(task.placement.as_ref().unwrap().max_replicas, Some(1));
        let restart = task.restart_policy.as_ref().unwrap();
        assert_eq!(restart.max_attempts, Some(5));
        assert_eq!(restart.window, Some(600 * NANOS));
        assert_eq!(spec.mode.unwrap().replicated.unwrap().replicas, Some(3));
        let update = spec.update_config.unwrap();
        assert_eq!(
            update.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
        assert_eq!(
            update.order,
            Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST)
        );
        let endpoint = spec.endpoint_spec.unwrap();
        assert_eq!(endpoint.mode, Some(EndpointSpecModeEnum::DNSRR));
        let port = &endpoint.ports.unwrap()[0];
        assert_eq!(
            port.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
        assert_eq!(
            (port.target_port, port.published_port),
            (Some(8080), Some(3100))
        );
    }

    #[test]
    fn the_routing_mesh_has_no_per_node_limit_and_start_first_is_kept() {
        let spec = service_spec(&plan(PublishMode::Ingress, true));
        let task = spec.task_template.unwrap();
        assert_eq!(task.placement.unwrap().max_replicas, None);
        assert_eq!(
            spec.update_config.unwrap().order,
            Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
        );
        assert_eq!(
            spec.endpoint_spec.unwrap().mode,
            Some(EndpointSpecModeEnum::VIP)
        );
    }
}
