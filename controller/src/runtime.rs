//! The Docker engine through bollard: the only place Longin talks to it. Every step is
//! "look, else act" and tolerates the container already being in the wanted state, so
//! reconcile can run any number of times.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, InspectNetworkOptions,
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions, StartContainerOptions,
    StatsOptions, StopContainerOptions,
};
use futures::StreamExt;
use longin_crds::application::ImagePullPolicy;
use longin_crds::limits::Image;
use tokio_util::sync::CancellationToken;

use crate::labels;
use crate::plan::{Observed, RunState};
use crate::stats::Sample;

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot connect to the Docker engine: {0}")]
    Connect(#[source] bollard::errors::Error),
    #[error("pulling {image} failed: {message}")]
    Pull { image: String, message: String },
    #[error("pulling {image} was cut short: the controller is stopping")]
    PullCancelled { image: String },
    #[error("host port {port} is busy: {reason}")]
    PortBusy { port: u16, reason: String },
    #[error("the image build failed: {message}")]
    Build { message: String },
    #[error("pushing {image} failed: {message}")]
    Push { image: String, message: String },
    #[error(
        "the engine is not a Docker Swarm manager (run `docker swarm init`, or point DOCKER_HOST at a manager)"
    )]
    NotAManager,
    #[error("this engine has no {operation}")]
    Unsupported { operation: &'static str },
    #[error("docker {operation} failed: {source}")]
    Engine {
        operation: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
}

fn engine(operation: &'static str) -> impl FnOnce(bollard::errors::Error) -> RuntimeError {
    move |source| RuntimeError::Engine { operation, source }
}

fn status_code(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Everything needed to create one replica's container.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    pub container_port: u16,
    pub host_port: u16,
    pub bind_address: String,
    pub memory_bytes: i64,
    pub cpu_millis: u64,
    pub grace_period_secs: u32,
    /// The owner's network, and the names the container answers to on it.
    pub network: NetworkPlan,
    pub aliases: Vec<String>,
}

/// One owner's bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    pub name: String,
    pub owner_id: String,
    /// `A.B.C.0/24`.
    pub subnet: String,
    pub gateway: String,
}

/// Capabilities a tenant's container keeps: what a web server that binds a port and
/// drops privileges needs. Everything else (NET_RAW for spoofing, MKNOD, SYS_CHROOT,
/// AUDIT_WRITE, SETFCAP, …) goes, as in Kubernetes' restricted profile spirit.
pub const KEPT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
    "KILL",
];
/// Processes per container: stops a fork bomb from taking the host down.
pub const PIDS_LIMIT: i64 = 512;

/// How long one engine call may take by default before it counts as failed (bollard's
/// own default too). A stop also gets the container's grace period on top.
pub const DEFAULT_ENGINE_TIMEOUT: Duration = Duration::from_secs(120);

/// The local Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    instance: String,
    /// Empty until [`DockerRuntime::with_installation`]: then every listing is limited
    /// to that installation's containers.
    installation: String,
    timeout: Duration,
    /// Owner networks are Swarm overlays (attachable), not bridges.
    overlay: bool,
}

impl DockerRuntime {
    /// The installation id this runtime was narrowed to (empty when it was not).
    #[must_use]
    pub fn installation(&self) -> &str {
        &self.installation
    }

    /// Connects with the local defaults (`DOCKER_HOST` honoured) and agrees on an API
    /// version with the engine. `timeout` bounds each call (see [`DEFAULT_ENGINE_TIMEOUT`]).
    ///
    /// # Errors
    /// The engine does not answer.
    pub async fn connect(instance: &str, timeout: Duration) -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_defaults()
            .map_err(RuntimeError::Connect)?
            .with_timeout(timeout);
        let docker = docker
            .negotiate_version()
            .await
            .map_err(RuntimeError::Connect)?;
        Ok(Self {
            docker,
            instance: instance.to_owned(),
            installation: String::new(),
            timeout,
            overlay: false,
        })
    }

    /// This runtime, making owner networks as Swarm overlays.
    #[must_use]
    pub fn with_overlay_networks(mut self) -> Self {
        self.overlay = true;
        self
    }

    /// This runtime, managing only the containers of installation `id`.
    #[must_use]
    pub fn with_installation(mut self, id: &str) -> Self {
        id.clone_into(&mut self.installation);
        self
    }

    /// The installation whose containers this runtime manages.
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The label filters that select this installation's managed containers.
    #[must_use]
    pub fn managed_filter(&self) -> Vec<String> {
        let mut filter = vec![
            format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
            format!("{}={}", labels::INSTANCE, self.instance),
        ];
        if !self.installation.is_empty() {
            filter.push(format!("{}={}", labels::INSTALLATION, self.installation));
        }
        filter
    }

    /// Whether the engine answers.
    ///
    /// # Errors
    /// It does not.
    pub async fn ping(&self) -> Result<(), RuntimeError> {
        self.docker.ping().await.map_err(engine("ping"))?;
        Ok(())
    }

    #[must_use]
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Every container carrying Longin's managed label, with the app uid it belongs to.
    /// Containers without the label are never listed, so never touched.
    ///
    /// # Errors
    /// The engine fails.
    pub async fn managed_containers(&self) -> Result<Vec<(String, Observed)>, RuntimeError> {
        self.list(self.managed_filter()).await
    }

    /// Containers of this instance made before installations had ids (no
    /// installation label), with their app uids.
    ///
    /// # Errors
    /// The engine fails.
    pub async fn unlabelled_containers(&self) -> Result<Vec<(String, String)>, RuntimeError> {
        let instance = vec![
            format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
            format!("{}={}", labels::INSTANCE, self.instance),
        ];
        Ok(self
            .summaries(instance)
            .await?
            .into_iter()
            .filter_map(|s| {
                let labels = s.labels?;
                if labels.contains_key(labels::INSTALLATION) {
                    return None;
                }
                Some((labels.get(labels::APP_UID)?.clone(), s.id?))
            })
            .collect())
    }

    /// Creates the bridge network `plan` describes unless it exists. Idempotent, and
    /// safe against a concurrent creation of the same network.
    ///
    /// # Errors
    /// The engine refuses (for example the subnet overlaps another network).
    pub async fn ensure_network(&self, plan: &NetworkPlan) -> Result<(), RuntimeError> {
        if self
            .docker
            .inspect_network(&plan.name, None::<InspectNetworkOptions>)
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut labels = HashMap::from([
            (
                labels::MANAGED_BY.to_owned(),
                labels::MANAGED_BY_VALUE.to_owned(),
            ),
            (labels::INSTANCE.to_owned(), self.instance.clone()),
            (labels::OWNER_ID.to_owned(), plan.owner_id.clone()),
        ]);
        if !self.installation.is_empty() {
            labels.insert(labels::INSTALLATION.to_owned(), self.installation.clone());
        }
        let request = NetworkCreateRequest {
            name: plan.name.clone(),
            driver: Some(if self.overlay { "overlay" } else { "bridge" }.to_owned()),
            attachable: self.overlay.then_some(true),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(plan.subnet.clone()),
                    gateway: Some(plan.gateway.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(labels),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => {
                tracing::info!(network = %plan.name, subnet = %plan.subnet, "owner network created");
                Ok(())
            }
            // Created meanwhile by another reconcile of the same owner.
            Err(err) if status_code(&err) == Some(409) => Ok(()),
            Err(err) => Err(engine("create network")(err)),
        }
    }

    /// The subnets of every network on the engine (ours and anyone's).
    ///
    /// # Errors
    /// The networks cannot be listed.
    pub async fn network_subnets(&self) -> Result<Vec<String>, RuntimeError> {
        let networks = self
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(engine("list networks"))?;
        Ok(networks
            .into_iter()
            .filter_map(|n| n.ipam?.config)
            .flatten()
            .filter_map(|c| c.subnet)
            .collect())
    }

    /// Removes this installation's owner networks that no container uses (an owner's
    /// last app deleted); the engine refuses to remove one still in use, which is
    /// left for the next pass.
    ///
    /// # Errors
    /// The networks cannot be listed.
    pub async fn remove_unused_networks(&self) -> Result<usize, RuntimeError> {
        let filters = HashMap::from([("label".to_owned(), self.managed_filter())]);
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(engine("list networks"))?;
        let mut removed = 0;
        for name in networks.into_iter().filter_map(|n| n.name) {
            let in_use = self
                .docker
                .inspect_network(&name, None::<InspectNetworkOptions>)
                .await
                .ok()
                .and_then(|n| n.containers)
                .is_some_and(|c| !c.is_empty());
            if in_use {
                continue;
            }
            match self.docker.remove_network(&name).await {
                Ok(()) => {
                    removed += 1;
                    tracing::info!(network = %name, "unused owner network removed");
                }
                Err(err) => {
                    tracing::debug!(network = %name, error = %err, "owner network not removed")
                }
            }
        }
        Ok(removed)
    }

    /// Whether a container of this installation is published on host port `port`.
    ///
    /// # Errors
    /// The engine fails.
    pub async fn port_is_ours(&self, port: u16) -> Result<bool, RuntimeError> {
        let mut labels = self.managed_filter();
        labels.push(format!("{}={port}", labels::HOST_PORT));
        Ok(!self.summaries(labels).await?.is_empty())
    }

    /// Removes the container called `name`, if there is one.
    ///
    /// # Errors
    /// The engine fails.
    pub async fn remove_by_name(&self, name: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if status_code(&err) == Some(404) => Ok(()),
            Err(err) => Err(engine("remove container")(err)),
        }
    }

    /// The managed containers of one application (the engine filters by label, so a
    /// reconcile does not parse every other app's containers).
    ///
    /// # Errors
    /// The engine fails.
    pub async fn containers_of(&self, app_uid: &str) -> Result<Vec<Observed>, RuntimeError> {
        let mut labels = self.managed_filter();
        labels.push(format!("{}={app_uid}", labels::APP_UID));
        Ok(self
            .list(labels)
            .await?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    /// Every container, running or not, carrying all of `labels`.
    async fn summaries(
        &self,
        labels: Vec<String>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, RuntimeError> {
        let filters = HashMap::from([("label".to_owned(), labels)]);
        self.docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(engine("list containers"))
    }

    async fn list(&self, labels: Vec<String>) -> Result<Vec<(String, Observed)>, RuntimeError> {
        let summaries = self.summaries(labels).await?;
        let mut out = Vec::with_capacity(summaries.len());
        for s in summaries {
            let (Some(id), Some(l)) = (s.id, s.labels) else {
                continue;
            };
            let state = match s.state {
                Some(ContainerSummaryStateEnum::RUNNING) => RunState::Running,
                Some(ContainerSummaryStateEnum::CREATED) => RunState::Created,
                Some(ContainerSummaryStateEnum::EXITED) => RunState::Exited {
                    code: self.exit_code(&id).await,
                },
                Some(ContainerSummaryStateEnum::REMOVING | ContainerSummaryStateEnum::DEAD) => {
                    RunState::Gone
                }
                _ => RunState::Starting,
            };
            out.extend(labels::observed(id, &l, state, s.created.unwrap_or(0)));
        }
        Ok(out)
    }

    async fn exit_code(&self, id: &str) -> i64 {
        self.docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.exit_code)
            .unwrap_or(-1)
    }

    /// Pulls the image: always under [`ImagePullPolicy::Always`] (for an image the
    /// engine has, the registry only confirms its manifest), else unless the engine
    /// has it. A pull can take long; `cancel` cuts it short (closing the request makes
    /// the engine abandon it), so that a stopping controller does not wait for it.
    ///
    /// # Errors
    /// [`RuntimeError::Pull`] with the engine's message; [`RuntimeError::PullCancelled`].
    pub async fn ensure_image(
        &self,
        image: &Image,
        policy: ImagePullPolicy,
        cancel: &CancellationToken,
    ) -> Result<bool, RuntimeError> {
        let (reference, image) = (image.reference(), image.as_str());
        if policy != ImagePullPolicy::Always && self.docker.inspect_image(image).await.is_ok() {
            return Ok(false);
        }
        if policy == ImagePullPolicy::Never {
            return Err(RuntimeError::Pull {
                image: image.to_owned(),
                message: "a built image that is no longer on the engine (it is never pulled); `longin redeploy` or `longin rollout undo` rebuilds it".to_owned(),
            });
        }
        // Without a tag or digest Docker would pull every tag; ask for `latest` as `docker pull` does.
        let (from_image, tag) = match (&reference.tag, &reference.digest) {
            (_, Some(_)) => (image.to_owned(), None),
            (Some(tag), None) => (
                image[..image.len() - tag.len() - 1].to_owned(),
                Some(tag.clone()),
            ),
            (None, None) => (image.to_owned(), Some("latest".to_owned())),
        };
        let started = std::time::Instant::now();
        let mut progress = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(from_image),
                tag,
                ..Default::default()
            }),
            None,
            None,
        );
        let stalled = || {
            format!(
                "no progress from the registry for {} s; giving up this attempt",
                self.timeout.as_secs()
            )
        };
        loop {
            // The engine answers a pull with its first progress message and then
            // streams more; a registry that stops sending would hang the reconcile
            // forever without a bound on each (kubelet's image-pull-progress-deadline).
            let next = tokio::select! {
                () = cancel.cancelled() => {
                    return Err(RuntimeError::PullCancelled { image: image.to_owned() });
                }
                next = tokio::time::timeout(self.timeout, progress.next()) => next,
            };
            let item = match next {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(_) => Err(bollard::errors::Error::RequestTimeoutError),
            };
            if let Err(err) = item {
                metrics::counter!("longin_image_pulls_total", "result" => "error").increment(1);
                let message = match err {
                    bollard::errors::Error::DockerResponseServerError { message, .. } => message,
                    bollard::errors::Error::DockerStreamError { error } => error,
                    bollard::errors::Error::RequestTimeoutError => stalled(),
                    other => other.to_string(),
                };
                return Err(RuntimeError::Pull {
                    image: image.to_owned(),
                    message,
                });
            }
        }
        metrics::counter!("longin_image_pulls_total", "result" => "success").increment(1);
        metrics::histogram!("longin_image_pull_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::info!(
            image,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "image pulled"
        );
        Ok(true)
    }

    /// Creates and starts a container; an existing one of the same name (a crash
    /// between create and start) is started instead.
    ///
    /// # Errors
    /// The engine refuses (for example the host port is taken).
    pub async fn create_and_start(&self, plan: &ContainerPlan) -> Result<String, RuntimeError> {
        let body = container_body(plan);
        let id = match self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(plan.name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
        {
            Ok(created) => created.id,
            Err(err) if status_code(&err) == Some(409) => plan.name.clone(),
            Err(err) => {
                return Err(RuntimeError::Engine {
                    operation: "create container",
                    source: err,
                });
            }
        };
        self.start(&id).await?;
        Ok(id)
    }

    /// Starts a container; one already running is fine.
    ///
    /// # Errors
    /// The engine refuses.
    pub async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        match self
            .docker
            .start_container(id, None::<StartContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if status_code(&err) == Some(304) => Ok(()),
            Err(err) => Err(RuntimeError::Engine {
                operation: "start container",
                source: err,
            }),
        }
    }

    /// Stops a container: SIGTERM, `grace` seconds, SIGKILL. One already stopped is
    /// fine, and so is one already gone when `gone_ok`.
    async fn stop(&self, id: &str, grace: u32, gone_ok: bool) -> Result<(), RuntimeError> {
        let options = StopContainerOptions {
            t: Some(i32::try_from(grace).unwrap_or(i32::MAX)),
            signal: None,
        };
        // The engine answers a stop only once the container is down, which may be the
        // whole grace period: the call gets that on top of the usual bound, or a slow
        // shutdown would be reported as a failed one.
        let docker = self
            .docker
            .clone()
            .with_timeout(self.timeout + Duration::from_secs(u64::from(grace)));
        match docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if status_code(&err) == Some(304) => Ok(()),
            Err(err) if gone_ok && status_code(&err) == Some(404) => Ok(()),
            Err(err) => Err(RuntimeError::Engine {
                operation: "stop container",
                source: err,
            }),
        }
    }

    /// Stops (SIGTERM, `grace` seconds, SIGKILL) then removes; one already gone is fine.
    ///
    /// # Errors
    /// The engine refuses.
    pub async fn stop_and_remove(&self, id: &str, grace: u32) -> Result<(), RuntimeError> {
        self.stop(id, grace, true).await?;
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if matches!(status_code(&err), Some(404 | 409)) => Ok(()),
            Err(err) => Err(RuntimeError::Engine {
                operation: "remove container",
                source: err,
            }),
        }
    }

    /// Restarts a container in place (stop with grace, then start).
    ///
    /// # Errors
    /// The engine refuses.
    pub async fn restart(&self, id: &str, grace: u32) -> Result<(), RuntimeError> {
        self.stop(id, grace, false).await?;
        self.start(id).await
    }

    /// One reading of a container's stats, without the engine's second sample (see
    /// `collector`).
    ///
    /// # Errors
    /// The engine failed or the container is gone.
    pub async fn one_shot_stats(&self, id: &str) -> Result<Sample, RuntimeError> {
        let mut stream = self.docker.stats(
            id,
            Some(StatsOptions {
                stream: false,
                one_shot: true,
            }),
        );
        match stream.next().await {
            Some(Ok(stats)) => Ok(Sample::from_stats(&stats)),
            Some(Err(err)) => Err(engine("stats")(err)),
            None => Err(engine("stats")(bollard::errors::Error::DockerStreamError {
                error: format!("no stats for {id}"),
            })),
        }
    }
}

/// The engine's create request for one replica.
fn container_body(plan: &ContainerPlan) -> ContainerCreateBody {
    let port_key = format!("{}/tcp", plan.container_port);
    let cmd = (!plan.args.is_empty()).then(|| plan.args.clone());
    let entrypoint = (!plan.command.is_empty()).then(|| plan.command.clone());
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        entrypoint,
        cmd,
        env: Some(plan.env.clone()),
        labels: Some(plan.labels.clone()),
        exposed_ports: Some(vec![port_key.clone()]),
        stop_timeout: Some(i64::from(plan.grace_period_secs)),
        host_config: Some(host_config(plan, port_key.clone())),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                plan.network.name.clone(),
                EndpointSettings {
                    aliases: Some(plan.aliases.clone()),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

/// Limits, ports, restart policy, network and confinement of one replica.
fn host_config(plan: &ContainerPlan, port_key: String) -> HostConfig {
    HostConfig {
        memory: Some(plan.memory_bytes),
        // No swap beyond the memory limit: the limit means what it says.
        memory_swap: Some(plan.memory_bytes),
        // CPU is both a weight under contention ("1" = 1024 shares) and a hard
        // cap (CFS quota through NanoCpus): an app never takes more cores than
        // it asked for, however idle the host.
        cpu_shares: Some(
            i64::try_from(longin_crds::quantity::cpu_shares(plan.cpu_millis)).unwrap_or(1024),
        ),
        nano_cpus: Some(
            i64::try_from(plan.cpu_millis)
                .unwrap_or(i64::MAX / 1_000_000)
                .saturating_mul(1_000_000),
        ),
        port_bindings: Some(HashMap::from([(
            port_key,
            Some(vec![PortBinding {
                host_ip: Some(plan.bind_address.clone()),
                host_port: Some(plan.host_port.to_string()),
            }]),
        )])),
        // Longin owns restarts (probes, backoff); Docker must not race it.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        // The owner's own bridge: other owners' containers are unreachable.
        network_mode: Some(plan.network.name.clone()),
        security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
        cap_drop: Some(vec!["ALL".to_owned()]),
        cap_add: Some(KEPT_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect()),
        pids_limit: Some(PIDS_LIMIT),
        privileged: Some(false),
        // tini as PID 1: forwards SIGTERM to the program (a shell or busybox
        // httpd as PID 1 ignores it, turning every stop into a SIGKILL after
        // the grace period) and reaps zombies.
        init: Some(true),
        ..Default::default()
    }
}

/// The local engine behind the controller's seam. Each call is the inherent method of
/// the same name (kept, so the engine can be driven without the trait in tests).
#[async_trait::async_trait]
impl crate::engine::ContainerRuntime for DockerRuntime {
    fn capabilities(&self) -> crate::engine::Capabilities {
        crate::engine::Capabilities::LOCAL
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        DockerRuntime::ping(self).await
    }

    async fn managed_containers(&self) -> Result<Vec<(String, Observed)>, RuntimeError> {
        DockerRuntime::managed_containers(self).await
    }

    async fn containers_of(&self, app_uid: &str) -> Result<Vec<Observed>, RuntimeError> {
        DockerRuntime::containers_of(self, app_uid).await
    }

    async fn unlabelled_containers(&self) -> Result<Vec<(String, String)>, RuntimeError> {
        DockerRuntime::unlabelled_containers(self).await
    }

    async fn ensure_image(
        &self,
        image: &Image,
        policy: ImagePullPolicy,
        cancel: &CancellationToken,
    ) -> Result<bool, RuntimeError> {
        DockerRuntime::ensure_image(self, image, policy, cancel).await
    }

    async fn ensure_network(&self, plan: &NetworkPlan) -> Result<(), RuntimeError> {
        DockerRuntime::ensure_network(self, plan).await
    }

    async fn network_subnets(&self) -> Result<Vec<String>, RuntimeError> {
        DockerRuntime::network_subnets(self).await
    }

    async fn remove_unused_networks(&self) -> Result<usize, RuntimeError> {
        DockerRuntime::remove_unused_networks(self).await
    }

    async fn create_and_start(&self, plan: &ContainerPlan) -> Result<String, RuntimeError> {
        DockerRuntime::create_and_start(self, plan).await
    }

    async fn restart(&self, id: &str, grace: u32) -> Result<(), RuntimeError> {
        DockerRuntime::restart(self, id, grace).await
    }

    async fn stop_and_remove(&self, id: &str, grace: u32) -> Result<(), RuntimeError> {
        DockerRuntime::stop_and_remove(self, id, grace).await
    }

    async fn remove_by_name(&self, name: &str) -> Result<(), RuntimeError> {
        DockerRuntime::remove_by_name(self, name).await
    }

    async fn port_is_ours(&self, port: u16) -> Result<bool, RuntimeError> {
        DockerRuntime::port_is_ours(self, port).await
    }

    fn host_port_held(&self, address: std::net::IpAddr, port: u16) -> Option<String> {
        crate::host_ports::probe(address, port)
    }

    async fn one_shot_stats(&self, id: &str) -> Result<Sample, RuntimeError> {
        DockerRuntime::one_shot_stats(self, id).await
    }

    fn events(
        &self,
    ) -> futures::stream::BoxStream<'static, Result<crate::engine::EngineEvent, RuntimeError>> {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("label".to_owned(), self.managed_filter()),
        ]);
        self.docker
            .events(Some(bollard::query_parameters::EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .filter_map(|event| async move {
                match event {
                    Err(err) => Some(Err(engine("events")(err))),
                    Ok(event) => {
                        let action = event.action.unwrap_or_default();
                        let app_uid = event
                            .actor
                            .and_then(|a| a.attributes)
                            .and_then(|mut a| a.remove(labels::APP_UID))?;
                        Some(Ok(crate::engine::EngineEvent { app_uid, action }))
                    }
                }
            })
            .boxed()
    }
}
