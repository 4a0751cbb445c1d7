//! An application as one service on an engine that schedules replicas itself (Docker
//! Swarm): what the controller asks of it (`ServicePlan`), what it reads back
//! (`ServiceObserved`, `NodeInfo`), and the pure reading of the one in terms of the
//! other — each slot's task as an `Observed` replica, where each replica answers, and
//! what went wrong — so the status is made by the same `plan::count`/`plan::status` as
//! on the local engine.

use std::collections::HashMap;

use longin_crds::application::Endpoint;

use crate::plan::{Observed, RunState};
use crate::runtime::NetworkPlan;

/// The service name of application `app_uid`: the uid alone names it, so an engine
/// event's service name is the app it is about.
#[must_use]
pub fn service_name(app_uid: &str) -> String {
    format!("lgn-{app_uid}")
}

/// The app uid of a service named by [`service_name`].
#[must_use]
pub fn app_of_service(name: &str) -> Option<&str> {
    name.strip_prefix("lgn-")
}

/// How replicas are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishMode {
    /// On each node that runs a replica, at most one replica per node (works without
    /// IPVS). Each replica is an endpoint of its own.
    #[default]
    Host,
    /// Swarm's routing mesh: the port on every node, balanced over every replica
    /// (needs IPVS in the nodes' kernels).
    Ingress,
}

impl PublishMode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Ingress => "ingress",
        }
    }
}

impl std::str::FromStr for PublishMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(Self::Host),
            "ingress" => Ok(Self::Ingress),
            other => Err(format!("unknown publish mode {other:?}: host or ingress")),
        }
    }
}

/// The health check the engine runs inside each replica (the service's HEALTHCHECK):
/// Swarm holds a task in `starting` until it passes, so a rollout waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    /// The command, as Docker's `Test` (`["CMD-SHELL", "…"]`).
    pub test: Vec<String>,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub retries: u32,
    pub start_period_secs: u32,
}

/// The probe command of a health check on `port`: an HTTP GET of `path` when there is
/// one, else a TCP connect. Uses the image's `wget`/`nc` (busybox has both): Swarm runs
/// the check inside the container, where Longin's own prober cannot be. The engine's
/// own health timeout bounds it (busybox's `wget -T` crashes in its static build).
#[must_use]
pub fn probe_command(port: u16, http_path: Option<&str>, timeout_secs: u32) -> Vec<String> {
    let timeout = timeout_secs.max(1);
    let script = match http_path {
        Some(path) => {
            // The path was validated as an absolute URL path; quoted for the shell.
            let path = path.replace('\'', "");
            format!("wget -q -O /dev/null 'http://127.0.0.1:{port}{path}'")
        }
        None => format!("nc -w {timeout} 127.0.0.1 {port} </dev/null"),
    };
    vec!["CMD-SHELL".to_owned(), script]
}

/// What the engine does with a replica that exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCondition {
    Any,
    OnFailure,
    None,
}

/// Everything needed to create or update one application's service.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub app_uid: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// On the service and on each task's container (the spec hash among them).
    pub labels: HashMap<String, String>,
    pub spec_hash: String,
    pub replicas: u32,
    pub container_port: u16,
    /// The application's one pool port.
    pub published_port: u16,
    pub publish: PublishMode,
    pub memory_bytes: i64,
    pub cpu_millis: u64,
    pub grace_period_secs: u32,
    pub health: Option<ServiceHealth>,
    pub restart: RestartCondition,
    /// The wait before a replica is restarted, and how many restarts within
    /// `restart_window_secs` before the engine gives up (CrashLoopBackOff's budget).
    pub restart_delay_secs: u32,
    pub max_restarts: u32,
    pub restart_window_secs: u32,
    /// Start a new replica before stopping the old one (only when a spare node can
    /// take it: host-mode publishing allows one replica per node).
    pub start_first: bool,
    /// How long a new replica is watched after it starts before the next is updated;
    /// a failure in that time rolls the update back.
    pub monitor_secs: u32,
    pub network: NetworkPlan,
    pub aliases: Vec<String>,
}

/// A rollout as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    Updating,
    Paused,
    Completed,
    RollbackStarted,
    RollbackPaused,
    RollbackCompleted,
}

impl UpdateState {
    /// The engine gave up on the update and went (or goes) back.
    #[must_use]
    pub fn rolled_back(self) -> bool {
        matches!(
            self,
            Self::RollbackStarted | Self::RollbackPaused | Self::RollbackCompleted
        )
    }
}

/// A service as the engine has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    pub id: String,
    pub spec_hash: String,
    pub replicas: u32,
    pub published_port: u16,
    pub update: Option<(UpdateState, String)>,
}

/// Where a task is in its life, as the engine names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// new … starting: on its way (a health-checked task stays here until it passes).
    Starting,
    /// Waiting for a node that can take it (`pending`): nothing was started.
    Pending,
    Running,
    /// complete, shutdown, failed, rejected, orphaned, remove.
    Ended {
        failed: bool,
    },
}

/// One task of a service: a replica's run on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskObserved {
    pub id: String,
    /// 1-based, as Swarm numbers them.
    pub slot: u32,
    pub node_id: String,
    pub container_id: Option<String>,
    pub spec_hash: String,
    pub state: TaskState,
    /// Whether the engine still wants it running.
    pub desired_running: bool,
    pub exit_code: Option<i64>,
    /// The engine's error, when it failed or cannot be placed.
    pub error: Option<String>,
    /// Unix milliseconds of its last state change.
    pub updated: i64,
    pub created: i64,
}

/// A machine of the engine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    pub address: String,
    /// `manager` or `worker` (`standalone` for the local engine).
    pub role: String,
    /// `ready`, `down`, `disconnected`, `unknown`.
    pub state: String,
    /// `active`, `pause`, `drain`.
    pub availability: String,
    pub engine_version: String,
    pub leader: bool,
}

impl NodeInfo {
    /// Up and taking work.
    #[must_use]
    pub fn schedulable(&self) -> bool {
        self.state == "ready" && self.availability == "active"
    }
}

/// The service of one application and its tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceObserved {
    pub service: Option<ServiceState>,
    pub tasks: Vec<TaskObserved>,
}

/// What the tasks say beyond the replicas themselves, for the status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFacts {
    /// A replica the engine stopped restarting (its restart budget is spent).
    pub failed: Option<String>,
    /// A replica that failed and is being restarted.
    pub backing_off: Option<String>,
    /// A replica that cannot be placed or started (no suitable node, a bad command).
    pub replica_failure: Option<String>,
    /// A replica whose image no node could pull.
    pub pull_error: Option<String>,
}

/// Whether a task error is about pulling its image.
fn is_pull_error(error: &str) -> bool {
    error.contains("No such image") || error.contains("pull access denied")
}

/// Each wanted slot's replica as an `Observed` (replica = slot − 1), and where each
/// answers. Per slot, the task the engine wants running; a task still running beside
/// it (an old one during a rollout) is listed too, as is the last ended one when
/// nothing else is there. A task on a node that is down is not running, whatever the
/// engine last heard from it.
#[must_use]
pub fn replicas(
    observed: &ServiceObserved,
    nodes: &[NodeInfo],
    port: u16,
    publish: PublishMode,
) -> (Vec<Observed>, Vec<Endpoint>) {
    let node_by_id: HashMap<&str, &NodeInfo> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let node_up = |id: &str| node_by_id.get(id).is_some_and(|n| n.state == "ready");
    let mut by_slot: std::collections::BTreeMap<u32, Vec<&TaskObserved>> =
        std::collections::BTreeMap::new();
    for task in &observed.tasks {
        by_slot.entry(task.slot).or_default().push(task);
    }
    let mut replicas = Vec::new();
    let mut endpoints = Vec::new();
    for (slot, mut tasks) in by_slot {
        tasks.sort_by_key(|t| std::cmp::Reverse(t.created));
        let live: Vec<&&TaskObserved> = tasks
            .iter()
            // A replaced task still running is an old one on its way out; one on a
            // node that is down is gone with it.
            .filter(|t| t.desired_running || (t.state == TaskState::Running && node_up(&t.node_id)))
            .collect();
        let shown: Vec<&TaskObserved> = if live.is_empty() {
            tasks.first().copied().into_iter().collect()
        } else {
            live.into_iter().copied().collect()
        };
        for task in shown {
            let up = node_up(&task.node_id);
            let state = match task.state {
                TaskState::Running if up => RunState::Running,
                TaskState::Running => RunState::Exited { code: -1 },
                TaskState::Starting if up || task.node_id.is_empty() => RunState::Starting,
                TaskState::Pending => RunState::Starting,
                TaskState::Starting => RunState::Exited { code: -1 },
                TaskState::Ended { .. } => RunState::Exited {
                    code: task.exit_code.unwrap_or(-1),
                },
            };
            let replica = slot.saturating_sub(1);
            if let Some(node) = node_by_id.get(task.node_id.as_str())
                && matches!(task.state, TaskState::Running | TaskState::Starting)
            {
                endpoints.push(Endpoint {
                    replica,
                    node: node.hostname.clone(),
                    address: node.address.clone(),
                    port,
                    ready: state == RunState::Running,
                });
            }
            replicas.push(Observed {
                // The task, not its container: the manager reads a task's logs
                // wherever it runs, a container's only on its own node.
                id: task.id.clone(),
                replica,
                spec_hash: task.spec_hash.clone(),
                host_port: port,
                state,
                created: task.created,
            });
        }
    }
    // Through the routing mesh every node answers for every replica: one endpoint per
    // node, not per replica.
    if publish == PublishMode::Ingress {
        let any_ready = endpoints.iter().any(|e| e.ready);
        endpoints = nodes
            .iter()
            .filter(|n| n.state == "ready")
            .enumerate()
            .map(|(i, n)| Endpoint {
                replica: u32::try_from(i).unwrap_or(u32::MAX),
                node: n.hostname.clone(),
                address: n.address.clone(),
                port,
                ready: any_ready,
            })
            .collect();
    }
    endpoints.sort_by(|a, b| (a.replica, &a.node).cmp(&(b.replica, &b.node)));
    (replicas, endpoints)
}

/// What the tasks of the wanted slots say went wrong. `now` in Unix milliseconds.
#[must_use]
pub fn task_facts(observed: &ServiceObserved, wanted: u32, now: i64) -> TaskFacts {
    let mut facts = TaskFacts::default();
    for slot in 1..=wanted {
        let mut tasks: Vec<&TaskObserved> =
            observed.tasks.iter().filter(|t| t.slot == slot).collect();
        tasks.sort_by_key(|t| std::cmp::Reverse(t.created));
        let replica = slot - 1;
        let running = tasks
            .iter()
            .any(|t| t.desired_running && t.state == TaskState::Running);
        if running {
            continue;
        }
        let last_failure = tasks
            .iter()
            .find(|t| matches!(t.state, TaskState::Ended { failed: true }));
        if let Some(task) = tasks
            .iter()
            .find(|t| t.desired_running && t.state == TaskState::Pending)
            && let Some(error) = &task.error
        {
            facts
                .replica_failure
                .get_or_insert_with(|| format!("replica {replica}: {error}"));
        }
        let Some(failure) = last_failure else {
            continue;
        };
        let error = failure
            .error
            .clone()
            .unwrap_or_else(|| match failure.exit_code {
                Some(code) => format!("exited with code {code}"),
                None => "failed".to_owned(),
            });
        if is_pull_error(&error) {
            facts.pull_error.get_or_insert(error);
            continue;
        }
        if tasks.iter().any(|t| t.desired_running) {
            // A replacement is on its way: the engine is restarting the replica.
            let ago = (now - failure.updated).max(0) / 1000;
            facts.backing_off.get_or_insert_with(|| {
                format!("back-off restarting replica {replica}: {error} ({ago}s ago)")
            });
        } else if observed.service.is_some() {
            // No task wants to run in a slot the service wants: the engine gave up.
            let failures = tasks
                .iter()
                .filter(|t| matches!(t.state, TaskState::Ended { failed: true }))
                .count();
            facts.failed.get_or_insert_with(|| {
                format!("replica {replica} failed {failures} times and the engine stopped restarting it: {error}")
            });
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, state: &str) -> NodeInfo {
        NodeInfo {
            id: id.to_owned(),
            hostname: format!("host-{id}"),
            address: format!("10.0.0.{}", id.len()),
            role: "worker".to_owned(),
            state: state.to_owned(),
            availability: "active".to_owned(),
            engine_version: "20.10".to_owned(),
            leader: false,
        }
    }

    fn task(
        id: &str,
        slot: u32,
        node: &str,
        state: TaskState,
        desired: bool,
        created: i64,
    ) -> TaskObserved {
        TaskObserved {
            id: id.to_owned(),
            slot,
            node_id: node.to_owned(),
            container_id: Some(format!("c-{id}")),
            spec_hash: "h1".to_owned(),
            state,
            desired_running: desired,
            exit_code: None,
            error: None,
            updated: created,
            created,
        }
    }

    fn service() -> Option<ServiceState> {
        Some(ServiceState {
            id: "s".to_owned(),
            spec_hash: "h1".to_owned(),
            replicas: 2,
            published_port: 3100,
            update: None,
        })
    }

    #[test]
    fn each_slot_is_a_replica_and_an_endpoint_on_its_node() {
        let nodes = [node("a", "ready"), node("bb", "ready")];
        let observed = ServiceObserved {
            service: service(),
            tasks: vec![
                task("t1", 1, "a", TaskState::Running, true, 1),
                task("t2", 2, "bb", TaskState::Starting, true, 1),
                // An earlier run of slot 1, shut down: not shown beside the live one.
                task("t0", 1, "bb", TaskState::Ended { failed: false }, false, 0),
            ],
        };
        let (replicas, endpoints) = replicas(&observed, &nodes, 3100, PublishMode::Host);
        assert_eq!(replicas.len(), 2);
        assert_eq!(replicas[0].replica, 0);
        assert_eq!(replicas[0].state, RunState::Running);
        assert_eq!(replicas[0].id, "t1");
        assert_eq!(replicas[1].state, RunState::Starting);
        assert_eq!(
            endpoints,
            vec![
                Endpoint {
                    replica: 0,
                    node: "host-a".into(),
                    address: "10.0.0.1".into(),
                    port: 3100,
                    ready: true
                },
                Endpoint {
                    replica: 1,
                    node: "host-bb".into(),
                    address: "10.0.0.2".into(),
                    port: 3100,
                    ready: false
                },
            ]
        );
    }

    #[test]
    fn a_task_on_a_node_that_is_down_is_not_running() {
        let nodes = [node("a", "down")];
        let observed = ServiceObserved {
            service: service(),
            tasks: vec![task("t1", 1, "a", TaskState::Running, true, 1)],
        };
        let (replicas, endpoints) = replicas(&observed, &nodes, 3100, PublishMode::Host);
        assert_eq!(replicas[0].state, RunState::Exited { code: -1 });
        assert!(!endpoints[0].ready);
    }

    #[test]
    fn a_replaced_task_on_a_dead_node_is_no_replica_any_more() {
        let nodes = [node("a", "down"), node("bb", "ready")];
        let observed = ServiceObserved {
            service: service(),
            tasks: vec![
                task("dead", 1, "a", TaskState::Running, false, 1),
                task("new", 1, "bb", TaskState::Running, true, 2),
            ],
        };
        let (replicas, endpoints) = replicas(&observed, &nodes, 3100, PublishMode::Host);
        assert_eq!(replicas.len(), 1);
        assert_eq!(replicas[0].id, "new");
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints[0].node, "host-bb");
    }

    #[test]
    fn an_old_task_still_running_beside_its_replacement_is_listed_too() {
        let nodes = [node("a", "ready"), node("bb", "ready")];
        let mut old = task("old", 1, "a", TaskState::Running, false, 1);
        old.spec_hash = "h0".to_owned();
        let observed = ServiceObserved {
            service: service(),
            tasks: vec![old, task("new", 1, "bb", TaskState::Starting, true, 2)],
        };
        let (replicas, _) = replicas(&observed, &nodes, 3100, PublishMode::Host);
        let hashes: Vec<_> = replicas.iter().map(|r| r.spec_hash.as_str()).collect();
        assert_eq!(hashes, ["h1", "h0"]);
    }

    #[test]
    fn the_routing_mesh_answers_on_every_node() {
        let nodes = [node("a", "ready"), node("bb", "ready"), node("ccc", "down")];
        let observed = ServiceObserved {
            service: service(),
            tasks: vec![task("t1", 1, "a", TaskState::Running, true, 1)],
        };
        let (_, endpoints) = replicas(&observed, &nodes, 3100, PublishMode::Ingress);
        let on: Vec<_> = endpoints.iter().map(|e| e.node.as_str()).collect();
        assert_eq!(on, ["host-a", "host-bb"]);
        assert!(endpoints.iter().all(|e| e.ready));
    }

    #[test]
    fn a_failed_replica_with_a_replacement_is_backing_off_and_without_one_failed() {
        let mut failed = task("f", 1, "a", TaskState::Ended { failed: true }, false, 1_000);
        failed.error = Some("task: non-zero exit (3)".to_owned());
        let restarting = ServiceObserved {
            service: service(),
            tasks: vec![
                failed.clone(),
                task("n", 1, "", TaskState::Starting, true, 2_000),
            ],
        };
        let facts = task_facts(&restarting, 1, 6_000);
        assert_eq!(
            facts.backing_off.as_deref(),
            Some("back-off restarting replica 0: task: non-zero exit (3) (5s ago)")
        );
        assert_eq!(facts.failed, None);

        let given_up = ServiceObserved {
            service: service(),
            tasks: vec![failed],
        };
        let facts = task_facts(&given_up, 1, 6_000);
        assert!(
            facts
                .failed
                .as_deref()
                .is_some_and(|f| f.starts_with("replica 0 failed 1 times")),
            "{facts:?}"
        );
    }

    #[test]
    fn an_unplaceable_replica_and_an_unpullable_image_are_told_apart() {
        let mut pending = task("p", 1, "", TaskState::Pending, true, 1);
        pending.error = Some("no suitable node (max replicas per node limit exceed)".to_owned());
        let mut rejected = task("r", 2, "a", TaskState::Ended { failed: true }, false, 1);
        rejected.error = Some("No such image: 127.0.0.1:5000/nope:1".to_owned());
        let observed = ServiceObserved {
            service: service(),
            tasks: vec![pending, rejected],
        };
        let facts = task_facts(&observed, 2, 2);
        assert_eq!(
            facts.replica_failure.as_deref(),
            Some("replica 0: no suitable node (max replicas per node limit exceed)")
        );
        assert_eq!(
            facts.pull_error.as_deref(),
            Some("No such image: 127.0.0.1:5000/nope:1")
        );
        assert_eq!(facts.failed, None);
    }

    #[test]
    fn a_running_replica_has_nothing_to_report() {
        let observed = ServiceObserved {
            service: service(),
            tasks: vec![task("t", 1, "a", TaskState::Running, true, 1)],
        };
        assert_eq!(task_facts(&observed, 1, 2), TaskFacts::default());
    }

    #[test]
    fn probes_are_http_or_tcp() {
        assert_eq!(
            probe_command(8080, Some("/healthz"), 2),
            [
                "CMD-SHELL",
                "wget -q -O /dev/null 'http://127.0.0.1:8080/healthz'"
            ]
        );
        assert_eq!(
            probe_command(80, None, 0),
            ["CMD-SHELL", "nc -w 1 127.0.0.1 80 </dev/null"]
        );
    }

    #[test]
    fn service_names_carry_the_app() {
        assert_eq!(app_of_service(&service_name("abc")), Some("abc"));
        assert_eq!(app_of_service("other"), None);
    }
}
