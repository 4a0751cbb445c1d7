//! The `Application` resource (`apiVersion: longin.io/v1`, `kind: Application`): what a
//! user asks for (`spec`) and what the controller observed (`status`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{Cpu, Image, Memory};

/// The kind of every application resource.
pub const KIND: &str = "Application";
/// Annotation whose change bumps the generation, restarting every replica.
pub const RESTARTED_AT_ANNOTATION: &str = "longin.io/restartedAt";
/// Annotation remembering the replica count while an application is stopped.
pub const PREVIOUS_REPLICAS_ANNOTATION: &str = "longin.io/previousReplicas";

/// An application: a containerised program run as `replicas` identical containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Application {
    /// Always `longin.io/v1`.
    #[schemars(extend("const" = crate::API_VERSION))]
    pub api_version: String,
    /// Always `Application`.
    #[schemars(extend("const" = KIND))]
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ApplicationSpec,
    /// Ignored when applied (a document read back re-applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub status: Option<ApplicationStatus>,
}

/// The kind of a list of applications.
pub const LIST_KIND: &str = "ApplicationList";

/// Applications in one document (`kind: ApplicationList`), as `GET /api/applications`
/// answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationList {
    /// Always `longin.io/v1`.
    pub api_version: String,
    /// Always `ApplicationList`.
    pub kind: String,
    pub items: Vec<Application>,
}

/// Identity and bookkeeping. `name`, `labels` and `annotations` are the user's; the
/// rest is set by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// DNS-1123 label, unique per owner.
    #[schemars(length(max = 63), pattern(crate::name::DNS1123_LABEL_PATTERN))]
    pub name: String,
    /// Keys `[DNS-subdomain/]name`; values at most 63 of `[A-Za-z0-9_.-]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "propertyNames" = {"pattern": crate::validation::QUALIFIED_NAME_PATTERN},
        "additionalProperties" = {"type": "string", "pattern": crate::validation::LABEL_VALUE_PATTERN},
    ))]
    pub labels: BTreeMap<String, String>,
    /// Keys as labels'; any values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": crate::validation::QUALIFIED_NAME_PATTERN}))]
    pub annotations: BTreeMap<String, String>,
    /// The owning user's username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub uid: Option<String>,
    /// Incremented on every change of the desired state (spec or restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub generation: Option<i64>,
    /// Incremented on every change; applying with a stale one is refused. Applied as
    /// the string the server returned (or that number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "resource_version_schema")]
    pub resource_version: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub creation_timestamp: Option<String>,
    /// RFC 3339; set when deletion was asked for and the controller is cleaning up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub deletion_timestamp: Option<String>,
}

/// A resourceVersion: a decimal string of a u64 (as the server writes it), or the number.
fn resource_version_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "string", "pattern": "^[0-9]{1,19}$"},
            {"type": "integer", "minimum": 0, "maximum": u64::MAX},
        ]
    })
}

/// What the user wants running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSpec {
    /// Image reference, e.g. `127.0.0.1:5000/demo/hello:1.0`. Optional with `source`:
    /// Longin then sets it to each image it builds (`longin/<uid>:<commit>`), and a
    /// document applied without it keeps the built one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255), pattern(crate::image::IMAGE_REFERENCE_PATTERN))]
    pub image: Option<Image>,
    /// Build the image from a git repository, and redeploy on pushes to its branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::source::Source>,
    /// Roll a failed deployment back to the last one that succeeded, by itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_rollback: bool,
    /// When the image is pulled: `Always` (every container start checks the registry,
    /// so only someone who may pull an image can run it) or `IfNotPresent` (a copy
    /// already on the engine is used). Default: the server's `--pull-policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::validation::MAX_ARGS))]
    pub command: Vec<String>,
    /// Replaces the image's command (arguments to the entrypoint).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::validation::MAX_ARGS))]
    pub args: Vec<String>,
    /// A name given twice takes its last definition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::validation::MAX_ENV))]
    pub env: Vec<EnvVar>,
    /// The port the program listens on inside the container.
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: u16,
    /// How many containers; 0 means stopped.
    #[serde(default = "default_replicas")]
    #[schemars(range(max = 20))]
    pub replicas: u32,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// Seconds between SIGTERM and SIGKILL when a replica stops (at most 300).
    #[serde(default = "default_grace_period")]
    #[schemars(range(max = 300))]
    pub termination_grace_period_seconds: u32,
}

fn default_replicas() -> u32 {
    1
}

fn default_grace_period() -> u32 {
    10
}

/// When an image is pulled before a container starts (as Kubernetes' field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImagePullPolicy {
    /// Always ask the registry; an unchanged image costs a manifest check.
    Always,
    /// Use a copy the engine already has.
    IfNotPresent,
    /// Only the engine's copy, never a pull: what the controller uses for the images
    /// Longin built (no registry has them). Not a user's choice: on a shared engine it
    /// would run whatever image happens to be there, so documents cannot say it.
    #[serde(skip)]
    #[schemars(skip)]
    Never,
}

/// An environment variable of every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    #[schemars(pattern(crate::validation::ENV_NAME_PATTERN))]
    pub name: String,
    /// Omitted when reading a secret back; omit it when applying to keep the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A secret is never returned by the API nor logged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// Limits of each replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// Memory limit: `512Mi`, `1Gi`, `256M`, or bytes; 4Mi to 64Gi.
    #[serde(default = "default_memory")]
    pub memory: Memory,
    /// CPU: `"1"` is one core (1024 shares), `500m` half of one.
    #[serde(default = "default_cpu")]
    pub cpu: Cpu,
}

fn default_memory() -> Memory {
    Memory::parse("512Mi").expect("a valid quantity")
}

fn default_cpu() -> Cpu {
    Cpu::parse("1").expect("a valid quantity")
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            memory: default_memory(),
            cpu: default_cpu(),
        }
    }
}

/// How readiness is probed; a replica is Ready after its first success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// An HTTP GET that must answer 2xx or 3xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// A TCP connect to the container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    #[serde(default)]
    #[schemars(range(max = crate::validation::MAX_SECONDS))]
    pub initial_delay_seconds: u32,
    #[serde(default = "default_period")]
    #[schemars(range(min = 1, max = crate::validation::MAX_SECONDS))]
    pub period_seconds: u32,
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = crate::validation::MAX_SECONDS))]
    pub timeout_seconds: u32,
    /// Consecutive failures that restart the replica.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: u32,
}

fn default_period() -> u32 {
    10
}

fn default_timeout() -> u32 {
    1
}

fn default_failure_threshold() -> u32 {
    3
}

/// HTTP probe target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    /// Must start with `/`; no whitespace.
    #[schemars(pattern(crate::validation::PROBE_PATH_PATTERN))]
    pub path: String,
}

/// TCP probe: connect to the container port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {}

/// When Longin restarts an exited replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The name documents use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::OnFailure => "OnFailure",
            Self::Never => "Never",
        }
    }
}

/// What the controller observed; written by it alone (host ports are first filled when
/// the apply is accepted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    pub phase: Phase,
    /// The generation this status describes.
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default)]
    pub replicas: u32,
    #[serde(default)]
    pub ready_replicas: u32,
    #[serde(default)]
    pub updated_replicas: u32,
    /// One host port per replica, in replica order (on the Swarm engine: the one port
    /// every replica answers on, each on its own node).
    #[serde(default)]
    pub host_ports: Vec<u16>,
    /// Where each replica answers, on an engine that spreads them over several
    /// machines (Swarm); empty on the local engine, where `hostPorts` says it all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One replica's address on a multi-node engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The replica's index (0-based, as in `hostPorts`).
    pub replica: u32,
    /// The node's hostname.
    pub node: String,
    /// The node's address (where the port is published).
    pub address: String,
    pub port: u16,
    /// Running, past its health check, on a node that is up.
    pub ready: bool,
}

/// The lifecycle phase, summarising the conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    #[default]
    Pending,
    Deploying,
    Running,
    Degraded,
    Failed,
    Stopped,
    Terminating,
}

impl Phase {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Deploying => "Deploying",
            Self::Running => "Running",
            Self::Degraded => "Degraded",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
            Self::Terminating => "Terminating",
        }
    }
}

/// One aspect of the state, Kubernetes-style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Progressing`, `Available`, `ImagePulled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// RFC 3339.
    pub last_transition_time: String,
    #[serde(default)]
    pub observed_generation: i64,
}

impl ApplicationSpec {
    /// The spec as the API shows it: secret values removed.
    #[must_use]
    pub fn redacted(&self) -> Self {
        let mut spec = self.clone();
        for var in spec.env.iter_mut().filter(|v| v.secret) {
            var.value = None;
        }
        spec
    }

    /// Fills secret values left out of an applied spec from the stored spec, so a
    /// document read back from the API (secrets redacted) re-applies unchanged.
    ///
    /// # Errors
    /// The names of secret variables that have no value here nor in `stored`.
    pub fn fill_secrets_from(&mut self, stored: Option<&Self>) -> Result<(), Vec<String>> {
        let mut missing = Vec::new();
        for var in self
            .env
            .iter_mut()
            .filter(|v| v.secret && v.value.is_none())
        {
            let kept = stored
                .and_then(|s| s.env.iter().find(|old| old.name == var.name && old.secret))
                .and_then(|old| old.value.clone());
            match kept {
                Some(value) => var.value = Some(value),
                None => missing.push(var.name.clone()),
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_env(env: Vec<EnvVar>) -> ApplicationSpec {
        ApplicationSpec {
            image: Some(Image::parse("busybox").expect("image")),
            source: None,
            auto_rollback: false,
            image_pull_policy: None,
            command: vec![],
            args: vec![],
            env,
            container_port: 8080,
            replicas: 1,
            resources: Resources::default(),
            health_check: None,
            restart_policy: RestartPolicy::Always,
            termination_grace_period_seconds: 10,
        }
    }

    fn var(name: &str, value: Option<&str>, secret: bool) -> EnvVar {
        EnvVar {
            name: name.to_owned(),
            value: value.map(str::to_owned),
            secret,
        }
    }

    #[test]
    fn redaction_removes_only_secret_values() {
        let spec = spec_with_env(vec![
            var("A", Some("1"), false),
            var("TOKEN", Some("s3cret"), true),
        ]);
        let shown = spec.redacted();
        assert_eq!(shown.env[0].value.as_deref(), Some("1"));
        assert_eq!(shown.env[1].value, None);
        assert!(
            !serde_json::to_string(&shown)
                .expect("json")
                .contains("s3cret")
        );
    }

    #[test]
    fn redacted_spec_reapplies_to_the_stored_one() {
        let stored = spec_with_env(vec![var("TOKEN", Some("s3cret"), true)]);
        let mut applied = stored.redacted();
        applied.fill_secrets_from(Some(&stored)).expect("filled");
        assert_eq!(applied, stored);
    }

    #[test]
    fn a_new_secret_without_a_value_is_refused() {
        let mut applied = spec_with_env(vec![var("TOKEN", None, true)]);
        assert_eq!(
            applied.fill_secrets_from(None),
            Err(vec!["TOKEN".to_owned()])
        );
    }
}
