//! The node agent of a Swarm (`longin agent`). A manager's engine cannot read the
//! stats of a container on another node, so Longin runs one agent per node — a global
//! service it deploys itself — that reads its node's engine and answers the
//! collector.
//!
//! Pull, not push: every cycle the collector asks each ready node's agent for the
//! readings of the tasks on it (one request per node). CPU is then computed from two
//! consecutive readings exactly as on one engine, a node that is down simply has
//! nothing to say, and the API grows no endpoint a node (or a tenant) could feed
//! figures into. Every request carries the installation's agent token (a random
//! secret kept in the store's settings); the agent compares it in constant time and
//! answers 401 without it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    Mount, MountType, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, TaskSpec,
    TaskSpecContainerSpec, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::ListContainersOptions;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::runtime::{DockerRuntime, RuntimeError};
use crate::stats::Sample;

/// The port agents listen on unless `--agent-port` says otherwise: outside the
/// applications' pool (3100–4000) so no replica can be given it.
pub const DEFAULT_PORT: u16 = 4040;

/// The engine label Swarm puts on a task's container.
const TASK_LABEL: &str = "com.docker.swarm.task.id";

/// The label that marks an installation's agent service (not `io.longin.installation`:
/// the agent is no application, and nothing that sweeps the installation's services
/// may take it for one).
pub const AGENT_LABEL: &str = "io.longin.agent";

/// The label holding the hash of the agent service's spec, to tell when it changed.
const SPEC_LABEL: &str = "io.longin.agent-spec";

/// A report is one node's readings; more than this is no agent of ours.
const MAX_REPORT_BYTES: usize = 8 << 20;

/// How the controller deploys and reaches its agents (`--agent-image` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// An image whose entrypoint is `longin` (the repository's Dockerfile builds one);
    /// every node must be able to pull it.
    pub image: String,
    /// The port each agent listens on, on its node's addresses (host networking).
    pub port: u16,
    /// The node's engine as seen from inside the agent: `unix:///var/run/docker.sock`
    /// (bind-mounted) or a `tcp://127.0.0.1:…` the node's engine listens on.
    pub docker_host: String,
}

/// One task's reading on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSample {
    pub task_id: String,
    pub container_id: String,
    pub sample: Sample,
}

/// What an agent answers: its node's hostname and a reading of every running task of
/// the installation there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AgentReport {
    pub node: String,
    pub tasks: Vec<TaskSample>,
}

/// Why an agent could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent at {address}: {source}")]
    Http {
        address: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("agent at {address} answered {status}")]
    Status {
        address: String,
        status: reqwest::StatusCode,
    },
    #[error("agent at {address} sent more than {MAX_REPORT_BYTES} bytes")]
    TooLarge { address: String },
    #[error("agent at {address} sent no report: {source}")]
    Body {
        address: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The name of installation `installation`'s agent service.
#[must_use]
pub fn service_name(installation: &str) -> String {
    let short: String = installation.chars().take(12).collect();
    format!("longin-agent-{short}")
}

/// Whether `header` (an `Authorization` value) carries `token`. Constant time in the
/// token's bytes, so a caller cannot find it a byte at a time.
#[must_use]
pub fn authorized(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (given, token) = (given.as_bytes(), token.as_bytes());
    if given.len() != token.len() || token.is_empty() {
        return false;
    }
    given
        .iter()
        .zip(token)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The agent's global service (pure: what `SwarmRuntime::upkeep` sends). Host
/// networking, so the agent answers on its node's own addresses and a `tcp://127.0.0.1`
/// engine is the node's; small limits, as it only reads.
#[must_use]
pub fn service_spec(
    settings: &AgentSettings,
    instance: &str,
    installation: &str,
    token: &str,
) -> ServiceSpec {
    let mounts = settings.docker_host.strip_prefix("unix://").map(|path| {
        vec![Mount {
            target: Some(path.to_owned()),
            source: Some(path.to_owned()),
            typ: Some(MountType::BIND),
            ..Default::default()
        }]
    });
    let mut spec = ServiceSpec {
        name: Some(service_name(installation)),
        labels: Some(HashMap::from([(
            AGENT_LABEL.to_owned(),
            installation.to_owned(),
        )])),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(settings.image.clone()),
                args: Some(vec![
                    "agent".to_owned(),
                    "--listen".to_owned(),
                    format!("0.0.0.0:{}", settings.port),
                    "--instance".to_owned(),
                    instance.to_owned(),
                    "--installation".to_owned(),
                    installation.to_owned(),
                ]),
                env: Some(vec![
                    format!("LONGIN_AGENT_TOKEN={token}"),
                    format!("DOCKER_HOST={}", settings.docker_host),
                ]),
                labels: Some(HashMap::from([(
                    AGENT_LABEL.to_owned(),
                    installation.to_owned(),
                )])),
                mounts,
                init: Some(true),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(bollard::models::Limit {
                    nano_cpus: Some(250_000_000),
                    memory_bytes: Some(64 << 20),
                    pids: Some(64),
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(5_000_000_000),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some("host".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let hash = spec_hash(settings, instance, installation, token);
    if let Some(labels) = spec.labels.as_mut() {
        labels.insert(SPEC_LABEL.to_owned(), hash);
    }
    spec
}

/// The hash of what the spec is made from, and of this version's way of making it
/// (the token included, so a new token redeploys the agents).
fn spec_hash(settings: &AgentSettings, instance: &str, installation: &str, token: &str) -> String {
    let mut digest = Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION"),
        &settings.image,
        &settings.port.to_string(),
        &settings.docker_host,
        instance,
        installation,
        token,
    ] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    digest
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the running agent service (its labels) is the one `wanted` describes.
#[must_use]
pub fn is_current(running: Option<&HashMap<String, String>>, wanted: &ServiceSpec) -> bool {
    let hash =
        |labels: Option<&HashMap<String, String>>| labels.and_then(|l| l.get(SPEC_LABEL)).cloned();
    hash(running).is_some() && hash(running) == hash(wanted.labels.as_ref())
}

/// The agent's side: the node's hostname, read once when the agent starts (it does
/// not change while the node is in the swarm).
///
/// # Errors
/// The engine does not answer.
pub async fn node_name(engine: &DockerRuntime) -> Result<String, RuntimeError> {
    let info = engine
        .docker()
        .info()
        .await
        .map_err(|source| RuntimeError::Engine {
            operation: "info",
            source,
        })?;
    Ok(info.name.unwrap_or_default())
}

/// The agent's side: a reading of every running task container of the installation
/// on this node's engine (read all at once, as the collector does).
///
/// # Errors
/// The engine cannot list its containers.
pub async fn node_report(engine: &DockerRuntime, node: &str) -> Result<AgentReport, RuntimeError> {
    let mut filter = engine.managed_filter();
    filter.push(TASK_LABEL.to_owned());
    let containers = engine
        .docker()
        .list_containers(Some(ListContainersOptions {
            filters: Some(HashMap::from([
                ("label".to_owned(), filter),
                ("status".to_owned(), vec!["running".to_owned()]),
            ])),
            ..Default::default()
        }))
        .await
        .map_err(|source| RuntimeError::Engine {
            operation: "list containers",
            source,
        })?;
    let tasks: Vec<(String, String)> = containers
        .into_iter()
        .filter_map(|c| {
            let task = c.labels.as_ref()?.get(TASK_LABEL)?.clone();
            Some((task, c.id?))
        })
        .collect();
    let tasks = futures::stream::iter(tasks)
        .map(|(task_id, container_id)| async move {
            let sample = engine.one_shot_stats(&container_id).await;
            (task_id, container_id, sample)
        })
        .buffer_unordered(crate::collector::CONCURRENCY)
        .filter_map(|(task_id, container_id, sample)| async move {
            // Gone between the listing and the read: nothing to report.
            let sample = sample.ok()?;
            Some(TaskSample {
                task_id,
                container_id,
                sample,
            })
        })
        .collect()
        .await;
    Ok(AgentReport {
        node: node.to_owned(),
        tasks,
    })
}

/// The readings of a report from node `node_id` that the controller believes: those of
/// tasks the manager has placed on that node (`placed`: task id → node id). An agent
/// speaks for its own node only, so a compromised node, or whatever answers on a
/// node's agent port after the agent died, cannot write figures for replicas elsewhere.
pub fn placed_here<'a>(
    report: AgentReport,
    node_id: &'a str,
    placed: &'a HashMap<String, String>,
) -> impl Iterator<Item = (String, Sample)> + 'a {
    report
        .tasks
        .into_iter()
        .filter(move |t| placed.get(&t.task_id).is_some_and(|n| n == node_id))
        .map(|t| (t.task_id, t.sample))
}

/// The controller's side: asks agents for their reports.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    port: u16,
    token: String,
}

impl AgentClient {
    /// A client for agents on `port`, authenticating with `token`.
    ///
    /// # Panics
    /// Never in practice: a plain HTTP client with a timeout always builds.
    #[must_use]
    pub fn new(port: u16, token: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client builds");
        Self {
            http,
            port,
            token: token.to_owned(),
        }
    }

    /// The report of the agent on the node at `address`.
    ///
    /// # Errors
    /// It does not answer, answers other than 200, or with something that is no report.
    pub async fn report(&self, address: &str) -> Result<AgentReport, AgentError> {
        let url = format!("http://{address}:{}/v1/report", self.port);
        let http = |source| AgentError::Http {
            address: address.to_owned(),
            source,
        };
        let mut response = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(http)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(AgentError::Status {
                address: address.to_owned(),
                status: response.status(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_REPORT_BYTES {
                return Err(AgentError::TooLarge {
                    address: address.to_owned(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|source| AgentError::Body {
            address: address.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(docker_host: &str) -> AgentSettings {
        AgentSettings {
            image: "registry.example:5000/longin:1".to_owned(),
            port: 4040,
            docker_host: docker_host.to_owned(),
        }
    }

    #[test]
    fn only_the_exact_bearer_token_is_let_in() {
        let token = "a".repeat(64);
        assert!(authorized(Some(&format!("Bearer {token}")), &token));
        assert!(!authorized(None, &token));
        assert!(!authorized(Some(&token), &token), "no scheme");
        assert!(!authorized(Some(&format!("Basic {token}")), &token));
        assert!(!authorized(Some(&format!("Bearer {token}x")), &token));
        assert!(!authorized(
            Some(&format!("Bearer {}b", "a".repeat(63))),
            &token
        ));
        assert!(
            !authorized(Some("Bearer "), ""),
            "an empty token admits no one"
        );
    }

    #[test]
    fn the_agent_is_a_global_host_networked_service_of_its_installation() {
        let spec = service_spec(
            &settings("unix:///var/run/docker.sock"),
            "longin",
            "0123456789abcdef",
            "t0k",
        );
        assert_eq!(spec.name.as_deref(), Some("longin-agent-0123456789ab"));
        assert!(spec.mode.as_ref().unwrap().global.is_some());
        let labels = spec.labels.as_ref().unwrap();
        assert_eq!(labels[AGENT_LABEL], "0123456789abcdef");
        assert!(
            !labels.contains_key(crate::labels::INSTALLATION),
            "the agent is not one of the installation's applications"
        );
        let task = spec.task_template.as_ref().unwrap();
        let container = task.container_spec.as_ref().unwrap();
        assert_eq!(
            container.args.as_ref().unwrap(),
            &[
                "agent",
                "--listen",
                "0.0.0.0:4040",
                "--instance",
                "longin",
                "--installation",
                "0123456789abcdef"
            ]
        );
        let env = container.env.as_ref().unwrap();
        assert!(env.contains(&"LONGIN_AGENT_TOKEN=t0k".to_owned()));
        assert!(env.contains(&"DOCKER_HOST=unix:///var/run/docker.sock".to_owned()));
        let mounts = container.mounts.as_ref().unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("/var/run/docker.sock"));
        assert_eq!(mounts[0].target.as_deref(), Some("/var/run/docker.sock"));
        assert_eq!(
            task.networks.as_ref().unwrap()[0].target.as_deref(),
            Some("host")
        );
        let limits = task.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits.memory_bytes, Some(64 << 20));
    }

    #[test]
    fn an_engine_over_tcp_mounts_nothing() {
        let spec = service_spec(&settings("tcp://127.0.0.1:2375"), "longin", "i", "t");
        let container = spec.task_template.unwrap().container_spec.unwrap();
        assert_eq!(container.mounts, None);
    }

    #[test]
    fn a_changed_image_or_token_is_not_current() {
        let s = settings("unix:///var/run/docker.sock");
        let wanted = service_spec(&s, "longin", "i", "t");
        assert!(is_current(wanted.labels.as_ref(), &wanted));
        assert!(is_current(
            service_spec(&s, "longin", "i", "t").labels.as_ref(),
            &wanted
        ));
        let new_token = service_spec(&s, "longin", "i", "t2");
        assert!(!is_current(new_token.labels.as_ref(), &wanted));
        let mut other = s.clone();
        other.image.push('2');
        let new_image = service_spec(&other, "longin", "i", "t");
        assert!(!is_current(new_image.labels.as_ref(), &wanted));
        assert!(!is_current(None, &wanted));
        assert!(!is_current(Some(&HashMap::new()), &wanted));
    }

    #[test]
    fn a_node_speaks_only_for_the_tasks_placed_on_it() {
        let sample = |n: u64| Sample {
            memory_bytes: n,
            ..Sample::default()
        };
        let task = |id: &str, n: u64| TaskSample {
            task_id: id.to_owned(),
            container_id: format!("c-{id}"),
            sample: sample(n),
        };
        let placed = HashMap::from([
            ("mine".to_owned(), "node-a".to_owned()),
            ("theirs".to_owned(), "node-b".to_owned()),
        ]);
        // Node a's report also claims node b's task and a task nobody placed.
        let forged = AgentReport {
            node: "node-a".to_owned(),
            tasks: vec![task("mine", 1), task("theirs", 999), task("ghost", 999)],
        };
        let kept: Vec<_> = placed_here(forged, "node-a", &placed).collect();
        assert_eq!(kept, vec![("mine".to_owned(), sample(1))]);
    }

    #[test]
    fn reports_travel_as_json() {
        let report = AgentReport {
            node: "n1".to_owned(),
            tasks: vec![TaskSample {
                task_id: "t".to_owned(),
                container_id: "c".to_owned(),
                sample: Sample {
                    cpu_total_ns: 5,
                    memory_bytes: 7,
                    ..Sample::default()
                },
            }],
        };
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<AgentReport>(&json).unwrap(), report);
    }
}
