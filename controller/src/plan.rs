//! What to do about one application: the pure core of reconcile. It compares the
//! desired replicas with the containers Docker reports and returns the steps that close
//! the gap, and the status that describes what it saw. No I/O, so every rule is
//! unit-tested.

use longin_crds::application::{ApplicationStatus, Condition, Phase, RestartPolicy};

/// What state a container is in, as far as reconcile cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// Created but never started: left so by a controller that died between create
    /// and start (or whose start failed). Nothing else will start it, so reconcile does.
    Created,
    /// Paused or restarting: transient.
    Starting,
    Exited {
        code: i64,
    },
    /// Being removed, dead: gone for our purposes.
    Gone,
}

/// A managed container as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub replica: u32,
    pub spec_hash: String,
    pub host_port: u16,
    pub state: RunState,
    /// Unix seconds.
    pub created: i64,
}

/// Probe verdict of a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// Not probed successfully yet.
    #[default]
    Unknown,
    Ready,
    /// `failureThreshold` consecutive failures: restart it.
    Unhealthy,
}

/// What the user wants, reduced to what planning needs.
#[derive(Debug, Clone)]
pub struct Desired<'a> {
    pub replicas: u32,
    pub spec_hash: &'a str,
    /// Host port of each replica, in replica order.
    pub host_ports: &'a [u16],
    /// Second ports of replicas being rolled out: (replica, port).
    pub surge_ports: &'a [(u32, u16)],
    /// Replicas rolled out at once (their new containers start before the old stop).
    pub max_surge: u32,
    pub restart_policy: RestartPolicy,
    pub has_health_check: bool,
    pub deleting: bool,
    /// Restarts are held back (CrashLoopBackOff or Failed).
    pub restarts_allowed: bool,
}

/// One action on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create and start replica `replica` on `host_port`.
    Create { replica: u32, host_port: u16 },
    /// Take a second port for `replica` and start its new container there, while the
    /// old one keeps serving.
    Surge { replica: u32 },
    /// The new container on `host_port` is Ready and the old ones are gone: make the
    /// surge port the replica's port.
    Promote { replica: u32, host_port: u16 },
    /// Start a container again: an exited one its restart policy asks for, or one left
    /// created but never started (a controller died in between).
    Restart { id: String, replica: u32 },

    /// Stop (SIGTERM, grace, SIGKILL) and remove.
    Remove { id: String },
}

/// Whether an exited container should be started again.
fn wants_restart(policy: RestartPolicy, code: i64) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => code != 0,
        RestartPolicy::Never => false,
    }
}

/// The steps that make `observed` match `desired`.
///
/// A replica whose container is out of date is rolled: its new container starts on a
/// surge port while the old one keeps serving, the old one is removed only once the new
/// one is Ready, and the surge port then becomes the replica's port. At most
/// `max_surge` replicas roll at once. A replica with nothing serving is replaced in
/// place.
#[must_use]
pub fn plan(
    desired: &Desired<'_>,
    observed: &[Observed],
    health: &dyn Fn(&str) -> Health,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if desired.deleting {
        steps.extend(observed.iter().map(|c| Step::Remove { id: c.id.clone() }));
        return steps;
    }
    let mut surging = u32::try_from(
        desired
            .surge_ports
            .iter()
            .filter(|(r, _)| *r < desired.replicas)
            .count(),
    )
    .unwrap_or(u32::MAX);
    for replica in 0..desired.replicas {
        let Some(&host_port) = desired.host_ports.get(replica as usize) else {
            continue; // no port yet: the API allocates it; nothing to run on
        };
        let slot = Slot {
            replica,
            host_port,
            surge_port: desired
                .surge_ports
                .iter()
                .find(|(r, _)| *r == replica)
                .map(|(_, p)| *p),
        };
        plan_replica(desired, observed, health, slot, &mut surging, &mut steps);
    }
    steps.extend(
        observed
            .iter()
            .filter(|c| c.state != RunState::Gone && c.replica >= desired.replicas)
            .map(|c| Step::Remove { id: c.id.clone() }),
    );
    steps
}

/// Where one replica runs: its port, and its second port while it is rolled.
#[derive(Debug, Clone, Copy)]
struct Slot {
    replica: u32,
    host_port: u16,
    surge_port: Option<u16>,
}

fn is_ready(desired: &Desired<'_>, health: &dyn Fn(&str) -> Health, c: &Observed) -> bool {
    c.state == RunState::Running && (!desired.has_health_check || health(&c.id) == Health::Ready)
}

fn remove<'a>(
    containers: impl IntoIterator<Item = &'a &'a Observed>,
) -> impl Iterator<Item = Step> {
    containers
        .into_iter()
        .map(|c| Step::Remove { id: c.id.clone() })
}

/// The steps for one replica: keep its container of the current spec (restarting it
/// as its policy says), or roll or replace what it runs.
fn plan_replica(
    desired: &Desired<'_>,
    observed: &[Observed],
    health: &dyn Fn(&str) -> Health,
    slot: Slot,
    surging: &mut u32,
    steps: &mut Vec<Step>,
) {
    let mut mine: Vec<&Observed> = observed
        .iter()
        .filter(|c| c.state != RunState::Gone && c.replica == slot.replica)
        .collect();
    // Newest first: after a crash there may be two; keep one.
    mine.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let is_new = |c: &Observed| {
        c.spec_hash == desired.spec_hash
            && (c.host_port == slot.host_port || Some(c.host_port) == slot.surge_port)
    };
    let new = mine.iter().position(|c| is_new(c));
    let old: Vec<&Observed> = mine
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new)
        .map(|(_, c)| *c)
        .collect();
    match new.map(|i| mine[i]) {
        Some(current) if is_ready(desired, health, current) => {
            steps.extend(remove(&old));
            if current.host_port != slot.host_port {
                steps.push(Step::Promote {
                    replica: slot.replica,
                    host_port: current.host_port,
                });
            }
        }
        Some(current) => {
            // Not Ready yet: old ones keep serving, except extra copies of the new.
            steps.extend(remove(old.iter().filter(|c| {
                c.spec_hash == desired.spec_hash && c.host_port == current.host_port
            })));
            if wants_start(desired, health, current) {
                steps.push(Step::Restart {
                    id: current.id.clone(),
                    replica: slot.replica,
                });
            }
        }
        None => roll_or_replace(desired, &old, slot, surging, steps),
    }
}

/// Whether the current container of a replica, not Ready, is to be started again. One
/// created but never started (a controller died in between, or the engine refused to
/// start it) is started like a restart; every start is held back while the app is
/// Failed or backing off.
fn wants_start(desired: &Desired<'_>, health: &dyn Fn(&str) -> Health, current: &Observed) -> bool {
    desired.restarts_allowed
        && match current.state {
            RunState::Created => true,
            RunState::Exited { code } => wants_restart(desired.restart_policy, code),
            RunState::Running => {
                desired.has_health_check && health(&current.id) == Health::Unhealthy
            }
            RunState::Starting | RunState::Gone => false,
        }
}

/// A replica without a container of the current spec: rolled (a new container on a
/// surge port beside the serving old one, at most `max_surge` at once) or, with
/// nothing serving, replaced in place.
fn roll_or_replace(
    desired: &Desired<'_>,
    old: &[&Observed],
    slot: Slot,
    surging: &mut u32,
    steps: &mut Vec<Step>,
) {
    let serving = old
        .iter()
        .any(|c| c.host_port == slot.host_port && c.state == RunState::Running);
    if !serving {
        steps.extend(remove(old));
        steps.push(Step::Create {
            replica: slot.replica,
            host_port: slot.host_port,
        });
        return;
    }
    if let Some(port) = slot.surge_port {
        // Whatever sits on the surge port is a superseded attempt.
        steps.extend(remove(old.iter().filter(|c| c.host_port == port)));
        steps.push(Step::Create {
            replica: slot.replica,
            host_port: port,
        });
    } else if *surging < desired.max_surge.max(1) {
        *surging += 1;
        steps.push(Step::Surge {
            replica: slot.replica,
        });
    }
}

/// The Failed verdict a stored status carries for `generation`, if any: the reason
/// restarts stay held after a controller restart (its in-memory counters are gone, and
/// a Failed app must stay Failed until `longin restart` makes a new generation).
#[must_use]
pub fn stored_failure(status: &ApplicationStatus, generation: i64) -> Option<String> {
    if status.phase != Phase::Failed || status.observed_generation != generation {
        return None;
    }
    Some(
        status
            .conditions
            .iter()
            .find(|c| c.reason == "RestartLimitExceeded" && !c.message.is_empty())
            .map(|c| c.message.clone())
            .or_else(|| status.message.clone())
            .unwrap_or_else(|| "restart limit reached".to_owned()),
    )
}

/// Counts of what was observed, for status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Wanted replicas with a live container.
    pub replicas: u32,
    /// Wanted replicas with a container that serves: a Ready one of the current spec, or
    /// a running one of a previous spec still serving through a rollout.
    pub ready: u32,
    /// Wanted replicas with a container of the current spec.
    pub updated: u32,
    /// Wanted replicas that still have a container of a previous spec.
    pub outdated: u32,
    /// Live containers of replicas no longer wanted (a scale-down or stop still under
    /// way): while any runs, the app is not Stopped, whatever it wants.
    pub surplus: u32,
}

impl Counts {
    /// Every wanted replica runs the current spec, Ready, and nothing old is left.
    #[must_use]
    pub fn settled(&self, want: u32) -> bool {
        self.ready == want
            && self.updated == want
            && self.replicas == want
            && self.outdated == 0
            && self.surplus == 0
    }
}

/// Counts the containers of wanted replicas.
#[must_use]
pub fn count(
    desired: &Desired<'_>,
    observed: &[Observed],
    health: &dyn Fn(&str) -> Health,
) -> Counts {
    let mut counts = Counts::default();
    for replica in 0..desired.replicas {
        let mine: Vec<&Observed> = observed
            .iter()
            .filter(|c| {
                c.replica == replica
                    && matches!(
                        c.state,
                        RunState::Running | RunState::Created | RunState::Starting
                    )
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        counts.replicas += 1;
        let current = |c: &&&Observed| c.spec_hash == desired.spec_hash;
        if mine.iter().any(|c| current(&c)) {
            counts.updated += 1;
        }
        if mine.iter().any(|c| !current(&c)) {
            counts.outdated += 1;
        }
        let serving = mine.iter().any(|c| {
            c.state == RunState::Running
                && (!current(&c) || !desired.has_health_check || health(&c.id) == Health::Ready)
        });
        if serving {
            counts.ready += 1;
        }
    }
    let surplus = observed
        .iter()
        .filter(|c| {
            c.replica >= desired.replicas
                && matches!(
                    c.state,
                    RunState::Running | RunState::Created | RunState::Starting
                )
        })
        .count();
    counts.surplus = u32::try_from(surplus).unwrap_or(u32::MAX);
    counts
}

/// What the controller knows beyond the containers when it writes status.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub generation: i64,
    /// The image could not be pulled: the engine's message.
    pub pull_error: Option<String>,
    /// There is no image yet (`pull_error` says so): the first build has not finished.
    pub awaiting_build: bool,
    /// Restarts exhausted (CrashLoopBackOff gave up): why.
    pub failed: Option<String>,
    /// Waiting before the next restart of a crashing replica.
    pub backing_off: Option<String>,
    /// The rollout of this generation has not finished within its deadline.
    pub deadline_exceeded: bool,
    /// The engine refused to create or start a replica (a host port taken by another
    /// program, a bad command…): its message.
    pub replica_failure: Option<String>,
    /// A replica was moved off a host port held outside Longin: which and why.
    pub port_skipped: Option<String>,
    /// `failed` says an update the engine rolled back (Swarm): the previous spec
    /// keeps serving.
    pub rolled_back: bool,
    /// Where each replica answers, on a multi-node engine (`hostPorts` then holds the
    /// application's one port).
    pub endpoints: Option<Vec<longin_crds::application::Endpoint>>,
    /// RFC 3339 now, for condition transition times.
    pub now: String,
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    facts: &Facts,
    previous: &ApplicationStatus,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    // The transition time moves only when the status flips.
    let last_transition_time = previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| facts.now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: facts.generation,
    }
}

/// The status that describes what was observed.
#[must_use]
pub fn status(
    desired: &Desired<'_>,
    counts: Counts,
    facts: &Facts,
    previous: &ApplicationStatus,
) -> ApplicationStatus {
    let want = desired.replicas;
    // Every wanted replica runs the current spec and nothing old is left (ready or not).
    let settled = counts.updated == want
        && counts.replicas == want
        && counts.outdated == 0
        && counts.surplus == 0;
    let mut conditions = replica_conditions(want, counts, settled, facts, previous);
    conditions.extend(engine_conditions(counts, facts, previous));
    ApplicationStatus {
        phase: phase(desired, counts, settled, facts),
        message: message(facts),
        observed_generation: facts.generation,
        replicas: counts.replicas,
        ready_replicas: counts.ready,
        updated_replicas: counts.updated,
        host_ports: match &facts.endpoints {
            Some(_) => desired.host_ports.iter().copied().take(1).collect(),
            None => desired
                .host_ports
                .iter()
                .copied()
                .take(want as usize)
                .collect(),
        },
        endpoints: facts.endpoints.clone().unwrap_or_default(),
        conditions,
    }
}

fn phase(desired: &Desired<'_>, counts: Counts, settled: bool, facts: &Facts) -> Phase {
    let want = desired.replicas;
    if desired.deleting {
        Phase::Terminating
    } else if facts.failed.is_some() {
        Phase::Failed
    } else if want == 0 {
        if counts.replicas == 0 && counts.surplus == 0 {
            Phase::Stopped
        } else {
            Phase::Deploying
        }
    } else if counts.ready == want && settled {
        Phase::Running
    } else if !settled {
        Phase::Deploying
    } else if counts.ready == 0 {
        Phase::Pending
    } else {
        Phase::Degraded
    }
}

/// Ready, Available and Progressing, as a Kubernetes Deployment has them.
fn replica_conditions(
    want: u32,
    counts: Counts,
    settled: bool,
    facts: &Facts,
    previous: &ApplicationStatus,
) -> Vec<Condition> {
    vec![
        condition(
            "Ready",
            counts.ready == want,
            if counts.ready == want {
                "AllReplicasReady"
            } else {
                "ReplicasNotReady"
            },
            format!("{}/{} replicas ready", counts.ready, want),
            facts,
            previous,
        ),
        condition(
            "Available",
            want == 0 || counts.ready > 0,
            if want == 0 || counts.ready > 0 {
                "MinimumReplicasAvailable"
            } else {
                "NoReplicasAvailable"
            },
            String::new(),
            facts,
            previous,
        ),
        condition(
            "Progressing",
            facts.failed.is_none() && (settled || !facts.deadline_exceeded),
            match (&facts.failed, settled) {
                (Some(_), _) if facts.rolled_back => "RolledBack",
                (Some(_), _) => "RestartLimitExceeded",
                (None, true) => "ReplicasUpToDate",
                (None, false) if facts.deadline_exceeded => "ProgressDeadlineExceeded",
                (None, false) => "RollingOut",
            },
            match (&facts.failed, settled) {
                (Some(why), _) => why.clone(),
                (None, false) if facts.deadline_exceeded => {
                    "the rollout did not finish in time; the previous replicas keep serving"
                        .to_owned()
                }
                _ => String::new(),
            },
            facts,
            previous,
        ),
    ]
}

/// What the engine reported: the image pull, a refused replica, a skipped host port.
fn engine_conditions(
    counts: Counts,
    facts: &Facts,
    previous: &ApplicationStatus,
) -> Vec<Condition> {
    let mut conditions = Vec::new();
    if let Some(error) = &facts.pull_error {
        conditions.push(condition(
            "ImagePulled",
            false,
            if facts.awaiting_build {
                "AwaitingBuild"
            } else {
                "PullFailed"
            },
            error.clone(),
            facts,
            previous,
        ));
    } else if counts.replicas > 0 {
        conditions.push(condition(
            "ImagePulled",
            true,
            "Pulled",
            String::new(),
            facts,
            previous,
        ));
    }
    // As a Kubernetes ReplicaSet reports FailedCreate: present while it lasts.
    if let Some(error) = &facts.replica_failure {
        conditions.push(condition(
            "ReplicaFailure",
            true,
            "FailedCreate",
            error.clone(),
            facts,
            previous,
        ));
    }
    if let Some(note) = &facts.port_skipped {
        conditions.push(condition(
            "HostPortSkipped",
            true,
            "HostPortInUse",
            note.clone(),
            facts,
            previous,
        ));
    }
    conditions
}

/// The one line that says what is wrong, most serious first.
fn message(facts: &Facts) -> Option<String> {
    facts
        .failed
        .clone()
        .or_else(|| {
            facts
                .pull_error
                .as_ref()
                .map(|e| format!("image pull failed: {e}"))
        })
        .or_else(|| {
            facts
                .replica_failure
                .as_ref()
                .map(|e| format!("a replica could not be started: {e}"))
        })
        .or_else(|| facts.backing_off.clone())
}

/// Per-key restart bookkeeping for CrashLoopBackOff: 10 s doubling to 5 min, reset after
/// 10 min of running, and a limit of restarts within a window before giving up.
#[derive(Debug, Clone, Default)]
pub struct CrashLoop {
    /// Unix milliseconds of recent restarts.
    restarts: Vec<i64>,
    /// Not before this Unix millisecond.
    next_allowed: i64,
}

pub const BACKOFF_START_SECS: i64 = 10;
pub const BACKOFF_CAP_SECS: i64 = 300;
pub const HEALTHY_RESET_SECS: i64 = 600;

/// Restart limits: CrashLoopBackOff's first delay (doubling to [`BACKOFF_CAP_SECS`]),
/// and how many restarts within a window make the application Failed.
#[derive(Debug, Clone, Copy)]
pub struct RestartLimit {
    pub backoff_start_secs: i64,
    pub max_restarts: usize,
    pub window_secs: i64,
}

impl Default for RestartLimit {
    fn default() -> Self {
        Self {
            backoff_start_secs: BACKOFF_START_SECS,
            max_restarts: 5,
            window_secs: 600,
        }
    }
}

impl CrashLoop {
    /// Milliseconds to wait before the next restart may happen, 0 if it may now
    /// (`now` in Unix milliseconds, as everywhere here).
    #[must_use]
    pub fn wait(&self, now: i64) -> i64 {
        (self.next_allowed - now).max(0)
    }

    /// Whether the restarts in the window have reached the limit.
    #[must_use]
    pub fn exhausted(&self, now: i64, limit: RestartLimit) -> bool {
        self.restarts
            .iter()
            .filter(|t| now - **t < limit.window_secs * 1000)
            .count()
            >= limit.max_restarts
    }

    /// Records a restart now and sets the delay before the next one.
    pub fn record_restart(&mut self, now: i64, limit: RestartLimit) {
        if self
            .restarts
            .last()
            .is_some_and(|last| now - last > HEALTHY_RESET_SECS * 1000)
        {
            self.restarts.clear();
        }
        self.restarts.push(now);
        let doublings = u32::try_from(self.restarts.len().saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(10);
        self.next_allowed = now
            + ((limit.backoff_start_secs.max(1) * 1000) << doublings).min(BACKOFF_CAP_SECS * 1000);
    }

    /// How many restarts are remembered.
    #[must_use]
    pub fn restart_count(&self) -> usize {
        self.restarts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(replicas: u32, ports: &'static [u16]) -> Desired<'static> {
        Desired {
            replicas,
            spec_hash: "h1",
            host_ports: ports,
            restart_policy: RestartPolicy::Always,
            has_health_check: false,
            deleting: false,
            restarts_allowed: true,
            surge_ports: &[],
            max_surge: 1,
        }
    }

    fn c(id: &str, replica: u32, hash: &str, port: u16, state: RunState) -> Observed {
        Observed {
            id: id.into(),
            replica,
            spec_hash: hash.into(),
            host_port: port,
            state,
            created: 0,
        }
    }

    fn unknown(_: &str) -> Health {
        Health::Unknown
    }

    #[test]
    fn creates_missing_replicas_on_their_ports() {
        let steps = plan(&desired(2, &[3100, 3101]), &[], &unknown);
        assert_eq!(
            steps,
            [
                Step::Create {
                    replica: 0,
                    host_port: 3100
                },
                Step::Create {
                    replica: 1,
                    host_port: 3101
                }
            ]
        );
    }

    #[test]
    fn matching_running_containers_need_nothing() {
        let observed = [
            c("a", 0, "h1", 3100, RunState::Running),
            c("b", 1, "h1", 3101, RunState::Running),
        ];
        assert_eq!(plan(&desired(2, &[3100, 3101]), &observed, &unknown), []);
    }

    #[test]
    fn scale_down_removes_higher_replicas() {
        let observed = [
            c("a", 0, "h1", 3100, RunState::Running),
            c("b", 1, "h1", 3101, RunState::Running),
        ];
        assert_eq!(
            plan(&desired(1, &[3100]), &observed, &unknown),
            [Step::Remove { id: "b".into() }]
        );
    }

    #[test]
    fn out_of_date_container_that_is_down_is_replaced_in_place() {
        let observed = [c("old", 0, "h0", 3100, RunState::Exited { code: 1 })];
        assert_eq!(
            plan(&desired(1, &[3100]), &observed, &unknown),
            [
                Step::Remove { id: "old".into() },
                Step::Create {
                    replica: 0,
                    host_port: 3100
                }
            ]
        );
    }

    #[test]
    fn rollout_starts_new_containers_on_surge_ports_before_stopping_old_ones() {
        let old = [
            c("a", 0, "h0", 3100, RunState::Running),
            c("b", 1, "h0", 3101, RunState::Running),
        ];
        // No surge port yet: ask for one, for one replica at a time.
        assert_eq!(
            plan(&desired(2, &[3100, 3101]), &old, &unknown),
            [Step::Surge { replica: 0 }]
        );
        // The surge port is there: start the new container on it; old keeps serving.
        let mut d = desired(2, &[3100, 3101]);
        d.surge_ports = &[(0, 3200)];
        assert_eq!(
            plan(&d, &old, &unknown),
            [Step::Create {
                replica: 0,
                host_port: 3200
            }]
        );
        // New container not Ready: nothing to do but wait.
        d.has_health_check = true;
        let mut rolling = old.to_vec();
        rolling.push(c("a2", 0, "h1", 3200, RunState::Running));
        assert_eq!(plan(&d, &rolling, &unknown), []);
        // Ready: the old one goes and the surge port becomes the replica's port.
        let ready = |id: &str| {
            if id == "a2" {
                Health::Ready
            } else {
                Health::Unknown
            }
        };
        assert_eq!(
            plan(&d, &rolling, &ready),
            [
                Step::Remove { id: "a".into() },
                Step::Promote {
                    replica: 0,
                    host_port: 3200
                }
            ]
        );
    }

    #[test]
    fn a_container_left_created_is_started_like_a_restart() {
        // The controller died between create and start of a rollout's new container.
        let mut d = desired(1, &[3100]);
        d.surge_ports = &[(0, 3200)];
        let observed = [
            c("old", 0, "h0", 3100, RunState::Running),
            c("new", 0, "h1", 3200, RunState::Created),
        ];
        assert_eq!(
            plan(&d, &observed, &unknown),
            [Step::Restart {
                id: "new".into(),
                replica: 0
            }]
        );
        // It counts as a live replica of the current spec, not yet serving.
        let counts = count(&d, &observed[1..], &unknown);
        assert_eq!((counts.replicas, counts.updated, counts.ready), (1, 1, 0));
        // Held back like any restart while the app is Failed or backing off.
        d.restarts_allowed = false;
        assert_eq!(plan(&d, &observed, &unknown), []);
    }

    #[test]
    fn duplicate_replica_keeps_the_newest() {
        let mut older = c("older", 0, "h1", 3100, RunState::Running);
        older.created = 1;
        let mut newer = c("newer", 0, "h1", 3100, RunState::Running);
        newer.created = 2;
        assert_eq!(
            plan(&desired(1, &[3100]), &[older, newer], &unknown),
            [Step::Remove { id: "older".into() }]
        );
    }

    #[test]
    fn exited_containers_follow_the_restart_policy() {
        let crashed = [c("a", 0, "h1", 3100, RunState::Exited { code: 1 })];
        let done = [c("a", 0, "h1", 3100, RunState::Exited { code: 0 })];
        let restart = [Step::Restart {
            id: "a".into(),
            replica: 0,
        }];
        let mut d = desired(1, &[3100]);
        assert_eq!(
            plan(&d, &done, &unknown),
            restart,
            "Always restarts even a clean exit"
        );
        d.restart_policy = RestartPolicy::OnFailure;
        assert_eq!(plan(&d, &crashed, &unknown), restart);
        assert_eq!(plan(&d, &done, &unknown), []);
        d.restart_policy = RestartPolicy::Never;
        assert_eq!(plan(&d, &crashed, &unknown), []);
        d.restart_policy = RestartPolicy::Always;
        d.restarts_allowed = false;
        assert_eq!(
            plan(&d, &crashed, &unknown),
            [],
            "held back by CrashLoopBackOff"
        );
    }

    #[test]
    fn unhealthy_container_is_restarted() {
        let mut d = desired(1, &[3100]);
        d.has_health_check = true;
        let observed = [c("a", 0, "h1", 3100, RunState::Running)];
        assert_eq!(
            plan(&d, &observed, &|_| Health::Unhealthy),
            [Step::Restart {
                id: "a".into(),
                replica: 0
            }]
        );
        assert_eq!(plan(&d, &observed, &|_| Health::Ready), []);
    }

    #[test]
    fn deleting_removes_everything() {
        let mut d = desired(2, &[3100, 3101]);
        d.deleting = true;
        let observed = [
            c("a", 0, "h1", 3100, RunState::Running),
            c("b", 7, "h0", 1, RunState::Exited { code: 0 }),
        ];
        assert_eq!(
            plan(&d, &observed, &unknown),
            [
                Step::Remove { id: "a".into() },
                Step::Remove { id: "b".into() }
            ]
        );
    }

    #[test]
    fn a_stored_failed_status_is_the_verdict_of_its_generation_only() {
        let mut status = ApplicationStatus {
            phase: Phase::Failed,
            observed_generation: 4,
            ..ApplicationStatus::default()
        };
        status.conditions.push(Condition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: "RestartLimitExceeded".into(),
            message: "replica 0 restarted 5 times".into(),
            last_transition_time: String::new(),
            observed_generation: 4,
        });
        assert_eq!(
            stored_failure(&status, 4).as_deref(),
            Some("replica 0 restarted 5 times")
        );
        // `longin restart` made a new generation: not failed any more.
        assert_eq!(stored_failure(&status, 5), None);
        status.phase = Phase::Running;
        assert_eq!(stored_failure(&status, 4), None);
    }

    #[test]
    fn a_refused_replica_is_a_condition_and_the_message() {
        let facts = Facts {
            generation: 1,
            replica_failure: Some("port is already allocated".into()),
            ..Facts::default()
        };
        let s = status(
            &desired(1, &[3100]),
            Counts::default(),
            &facts,
            &ApplicationStatus::default(),
        );
        let c = s
            .conditions
            .iter()
            .find(|c| c.type_ == "ReplicaFailure")
            .unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "FailedCreate")
        );
        assert_eq!(c.message, "port is already allocated");
        assert_eq!(
            s.message.as_deref(),
            Some("a replica could not be started: port is already allocated")
        );
        let clear = status(
            &desired(1, &[3100]),
            Counts::default(),
            &Facts::default(),
            &s,
        );
        assert!(clear.conditions.iter().all(|c| c.type_ != "ReplicaFailure"));
    }

    #[test]
    fn status_phases() {
        let facts = Facts {
            generation: 3,
            now: "t".into(),
            ..Facts::default()
        };
        let prev = ApplicationStatus::default();
        let d = desired(2, &[3100, 3101]);
        let s = status(
            &d,
            Counts {
                replicas: 2,
                ready: 2,
                updated: 2,
                outdated: 0,
                surplus: 0,
            },
            &facts,
            &prev,
        );
        assert_eq!(
            (s.phase, s.observed_generation, s.ready_replicas),
            (Phase::Running, 3, 2)
        );
        assert_eq!(s.conditions[0].reason, "AllReplicasReady");
        assert_eq!(
            status(
                &d,
                Counts {
                    replicas: 2,
                    ready: 1,
                    updated: 2,
                    outdated: 0,
                    surplus: 0,
                },
                &facts,
                &prev
            )
            .phase,
            Phase::Degraded
        );
        assert_eq!(
            status(
                &d,
                Counts {
                    replicas: 1,
                    ready: 1,
                    updated: 1,
                    outdated: 0,
                    surplus: 0,
                },
                &facts,
                &prev
            )
            .phase,
            Phase::Deploying
        );
        assert_eq!(
            status(
                &d,
                Counts {
                    replicas: 2,
                    ready: 0,
                    updated: 2,
                    outdated: 0,
                    surplus: 0,
                },
                &facts,
                &prev
            )
            .phase,
            Phase::Pending
        );
        assert_eq!(
            status(&desired(0, &[]), Counts::default(), &facts, &prev).phase,
            Phase::Stopped
        );
        // Stopping, not stopped, while a container of the replicas let go still runs.
        let stopping = Counts {
            surplus: 1,
            ..Counts::default()
        };
        assert_eq!(
            status(&desired(0, &[]), stopping, &facts, &prev).phase,
            Phase::Deploying
        );
        let failed = Facts {
            failed: Some("crashed 5 times".into()),
            ..facts.clone()
        };
        assert_eq!(
            status(&d, Counts::default(), &failed, &prev).phase,
            Phase::Failed
        );
        let pull = Facts {
            pull_error: Some("not found".into()),
            ..facts
        };
        let s = status(&d, Counts::default(), &pull, &prev);
        assert!(
            s.conditions.iter().any(|c| c.type_ == "ImagePulled"
                && c.status == "False"
                && c.message == "not found")
        );
    }

    #[test]
    fn condition_transition_time_moves_only_on_flips() {
        let d = desired(1, &[3100]);
        let first = status(
            &d,
            Counts {
                replicas: 1,
                ready: 1,
                updated: 1,
                outdated: 0,
                surplus: 0,
            },
            &Facts {
                now: "t1".into(),
                ..Facts::default()
            },
            &ApplicationStatus::default(),
        );
        let same = status(
            &d,
            Counts {
                replicas: 1,
                ready: 1,
                updated: 1,
                outdated: 0,
                surplus: 0,
            },
            &Facts {
                now: "t2".into(),
                ..Facts::default()
            },
            &first,
        );
        assert_eq!(same.conditions[0].last_transition_time, "t1");
        let flipped = status(
            &d,
            Counts {
                replicas: 1,
                ready: 0,
                updated: 1,
                outdated: 0,
                surplus: 0,
            },
            &Facts {
                now: "t3".into(),
                ..Facts::default()
            },
            &same,
        );
        assert_eq!(flipped.conditions[0].last_transition_time, "t3");
    }

    #[test]
    fn crash_loop_backs_off_doubling_to_the_cap_and_gives_up_at_the_limit() {
        let mut cl = CrashLoop::default();
        let limit = RestartLimit::default();
        let mut now = 1_000_000;
        let mut waits = Vec::new();
        for _ in 0..7 {
            cl.record_restart(now, limit);
            waits.push(cl.wait(now));
            now += 1_000;
        }
        assert_eq!(
            waits,
            [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]
        );
        assert!(cl.exhausted(now, limit));
        assert!(!CrashLoop::default().exhausted(now, limit));
    }

    #[test]
    fn crash_loop_resets_after_ten_healthy_minutes() {
        let mut cl = CrashLoop::default();
        let limit = RestartLimit::default();
        cl.record_restart(0, limit);
        cl.record_restart(10_000, limit);
        cl.record_restart(10_000 + HEALTHY_RESET_SECS * 1000 + 1, limit);
        assert_eq!(cl.restart_count(), 1);
        assert_eq!(
            cl.wait(10_000 + HEALTHY_RESET_SECS * 1000 + 1),
            BACKOFF_START_SECS * 1000
        );
    }
}
