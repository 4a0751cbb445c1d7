//! Checking an applied document: every problem found at once, each with its JSON path,
//! before the document becomes a typed [`Application`].
//!
//! The check walks the document as JSON so that unknown fields (a typo like `replica:`),
//! wrong types and out-of-range values are all reported together; serde alone stops at
//! the first. Only a document that passes is decoded, with defaults filled in.

use serde_json::{Map, Value};

use crate::application::{Application, EnvVar, KIND};
use crate::image::ImageRef;
use crate::quantity::{QuantityError, cpu_from_cores, parse_cpu, parse_memory};
use crate::source::{GitUrl, check_branch, check_repository_path};
use crate::{API_VERSION, validate_dns1123_label};

/// One problem, at a JSON path such as `spec.env[1].name`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

pub const MAX_REPLICAS: i64 = 20;
pub const MIN_MEMORY_BYTES: u64 = 4 << 20;
pub const MAX_MEMORY_BYTES: u64 = 64 << 30;
/// More than any host Longin runs on will have; catches unit mistakes (`1000` for `1000m`).
pub const MAX_CPU_MILLICORES: u64 = 256_000;
pub const MAX_SECONDS: i64 = 3600;
/// A stop may hold the app's replicas this long at most (the controller waits for it
/// off its workers, but deletions and rollouts of the app wait for it too).
pub const MAX_GRACE_SECONDS: i64 = 300;
pub const MAX_ARGS: usize = 256;
pub const MAX_ENV: usize = 256;

// The string rules below as regular expressions (ECMA-262, for JSON Schemas). Tests
// check that what each allows, its rule accepts.

/// Label and annotation keys, see [`check_qualified_name`] (prefixes of up to three
/// DNS labels are described, which keeps them within 253 characters).
pub const QUALIFIED_NAME_PATTERN: &str = "^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?){0,2}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/// Label values, see [`is_label_value`].
pub const LABEL_VALUE_PATTERN: &str = "^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$";
/// Environment variable names, see [`is_env_name`].
pub const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// HTTP probe paths: from `/`, without whitespace (Unicode's, as `char::is_whitespace`
/// reads it: ECMA's `\\s` differs by U+0085 and U+FEFF).
pub const PROBE_PATH_PATTERN: &str = "^/[^\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$";

struct Checker {
    errors: Vec<FieldError>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl Checker {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// The object at `path`, with unknown keys reported.
    fn object<'a>(
        &mut self,
        value: &'a Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let Value::Object(map) = value else {
            self.error(path, format!("must be a mapping, got {}", type_name(value)));
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.error(
                    &join(path, key),
                    format!("unknown field; known fields here: {}", known.join(", ")),
                );
            }
        }
        Some(map)
    }

    fn required<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'a Value> {
        match map.get(key) {
            Some(Value::Null) | None => {
                self.error(&join(path, key), "is required");
                None
            }
            Some(value) => Some(value),
        }
    }

    fn string<'a>(&mut self, value: &'a Value, path: &str) -> Option<&'a str> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.error(path, format!("must be a string, got {}", type_name(other)));
                None
            }
        }
    }

    fn integer(&mut self, value: &Value, path: &str, min: i64, max: i64) -> Option<i64> {
        match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.error(path, format!("must be between {min} and {max}, got {n}"));
                None
            }
            None => {
                self.error(
                    path,
                    format!(
                        "must be an integer between {min} and {max}, got {}",
                        describe(value)
                    ),
                );
                None
            }
        }
    }

    fn optional_integer(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        min: i64,
        max: i64,
    ) {
        if let Some(value) = map.get(key).filter(|v| !v.is_null()) {
            self.integer(value, &join(path, key), min, max);
        }
    }

    fn string_list(&mut self, map: &Map<String, Value>, path: &str, key: &str) {
        let Some(value) = map.get(key).filter(|v| !v.is_null()) else {
            return;
        };
        let path = join(path, key);
        let Value::Array(items) = value else {
            self.error(
                &path,
                format!("must be a list of strings, got {}", type_name(value)),
            );
            return;
        };
        if items.len() > MAX_ARGS {
            self.error(&path, format!("must have at most {MAX_ARGS} items"));
        }
        for (i, item) in items.iter().enumerate() {
            self.string(item, &format!("{path}[{i}]"));
        }
    }

    fn string_map(&mut self, map: &Map<String, Value>, path: &str, key: &str, is_label: bool) {
        let Some(value) = map.get(key).filter(|v| !v.is_null()) else {
            return;
        };
        let path = join(path, key);
        let Value::Object(entries) = value else {
            self.error(
                &path,
                format!("must be a mapping of strings, got {}", type_name(value)),
            );
            return;
        };
        for (k, v) in entries {
            let entry_path = join(&path, k);
            if let Err(message) = check_qualified_name(k) {
                self.error(&entry_path, format!("key {message}"));
            }
            if let Some(v) = self.string(v, &entry_path)
                && is_label
                && !is_label_value(v)
            {
                self.error(
                    &entry_path,
                    "label values are at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends",
                );
            }
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        other => type_name(other).to_owned(),
    }
}

/// Label and annotation keys: `[prefix/]name`, name ≤ 63 of `[A-Za-z0-9_.-]`,
/// alphanumeric at both ends; prefix a DNS subdomain.
fn check_qualified_name(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix
                .split('.')
                .all(|label| validate_dns1123_label(label).is_ok());
        if !ok {
            return Err("prefix must be a DNS subdomain (e.g. longin.io)");
        }
    }
    if name.is_empty() || name.len() > 63 || !is_label_value(name) {
        return Err(
            "must be at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends, with an optional DNS prefix/",
        );
    }
    Ok(())
}

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)))
}

fn is_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks one document and decodes it, defaults filled in. `status` in the document is
/// accepted (a document read back from the API re-applies) and dropped.
///
/// # Errors
/// Every problem found, each with its path.
pub fn parse_application(document: &Value) -> Result<Application, Vec<FieldError>> {
    let mut c = Checker { errors: Vec::new() };
    let mut normalized = document.clone();
    crate::document::whole_floats_as_integers(&mut normalized);
    let document = &normalized.clone();
    if let Some(root) = c.object(
        document,
        "",
        &["apiVersion", "kind", "metadata", "spec", "status"],
    ) {
        match c.required(root, "", "apiVersion").map(|v| (v, c_string(v))) {
            Some((_, Some(API_VERSION))) | None => {}
            Some((v, _)) => c.error(
                "apiVersion",
                format!("must be \"{API_VERSION}\", got {}", describe(v)),
            ),
        }
        match c.required(root, "", "kind").map(|v| (v, c_string(v))) {
            Some((_, Some(KIND))) | None => {}
            Some((v, _)) => c.error("kind", format!("must be \"{KIND}\", got {}", describe(v))),
        }
        if let Some(metadata) = c.required(root, "", "metadata") {
            check_metadata(&mut c, metadata);
        }
        if let Some(spec) = c.required(root, "", "spec") {
            check_spec(&mut c, spec);
        }
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    // Normalise what the schema allows in two forms, then decode.
    drop_nulls(&mut normalized);
    if let Some(root) = normalized.as_object_mut() {
        root.remove("status");
        if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
            // Server-owned fields are ignored on apply; resourceVersion is compared.
            for key in [
                "owner",
                "uid",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
            ] {
                meta.remove(key);
            }
            if let Some(Value::Number(n)) = meta.get("resourceVersion") {
                let rv = n.to_string();
                meta.insert("resourceVersion".to_owned(), Value::String(rv));
            }
        }
        let resources = root
            .get_mut("spec")
            .and_then(|s| s.get_mut("resources"))
            .and_then(Value::as_object_mut);
        if let Some(resources) = resources {
            normalize_quantities(resources);
        }
    }
    let mut app: Application = serde_json::from_value(normalized).map_err(|err| {
        vec![FieldError {
            path: String::new(),
            message: err.to_string(),
        }]
    })?;
    app.spec.env = last_definition_wins(std::mem::take(&mut app.spec.env));
    Ok(app)
}

/// Quantities given as numbers, as the strings the types hold: bytes of memory as
/// written; CPU cores as written where that parses, else as the millicores validation
/// counted (rounded down).
fn normalize_quantities(resources: &mut Map<String, Value>) {
    if let Some(memory) = resources.get_mut("memory")
        && let Value::Number(n) = memory
    {
        *memory = Value::String(n.to_string());
    }
    if let Some(cpu) = resources.get_mut("cpu")
        && let Value::Number(n) = cpu
    {
        let text = n.to_string();
        *cpu = Value::String(match n.as_f64().map(cpu_from_cores) {
            Some(Ok(millis)) if parse_cpu(&text).is_err() => format!("{millis}m"),
            _ => text,
        });
    }
}

/// A field set to null is a field left out, as in Kubernetes (and as YAML writes an
/// empty `env:`); the checks read it so, and so must the decoding.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// A variable defined twice takes its last definition, in the place of its first (as
/// Kubernetes and the Docker engine do): a list cannot say "names unique" in JSON Schema,
/// and a generated or concatenated env list should not be refused for it.
fn last_definition_wins(env: Vec<EnvVar>) -> Vec<EnvVar> {
    let mut kept: Vec<EnvVar> = Vec::with_capacity(env.len());
    let mut index = std::collections::HashMap::new();
    for var in env {
        match index.get(&var.name) {
            Some(&i) => kept[i] = var,
            None => {
                index.insert(var.name.clone(), kept.len());
                kept.push(var);
            }
        }
    }
    kept
}

fn c_string(value: &Value) -> Option<&str> {
    value.as_str()
}

fn check_metadata(c: &mut Checker, value: &Value) {
    let known = [
        "name",
        "labels",
        "annotations",
        "owner",
        "uid",
        "generation",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
    ];
    let Some(meta) = c.object(value, "metadata", &known) else {
        return;
    };
    if let Some(name) = c
        .required(meta, "metadata", "name")
        .and_then(|v| c.string(v, "metadata.name"))
        && let Err(err) = validate_dns1123_label(name)
    {
        c.error("metadata.name", err.to_string());
    }
    c.string_map(meta, "metadata", "labels", true);
    c.string_map(meta, "metadata", "annotations", false);
    if let Some(rv) = meta.get("resourceVersion").filter(|v| !v.is_null()) {
        let ok = match rv {
            Value::String(s) => s.parse::<u64>().is_ok(),
            Value::Number(n) => n.as_u64().is_some(),
            _ => false,
        };
        if !ok {
            c.error(
                "metadata.resourceVersion",
                "must be the resourceVersion string the server returned",
            );
        }
    }
}

fn check_spec(c: &mut Checker, value: &Value) {
    let known = [
        "image",
        "imagePullPolicy",
        "command",
        "args",
        "env",
        "containerPort",
        "replicas",
        "resources",
        "healthCheck",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "source",
        "autoRollback",
    ];
    let Some(spec) = c.object(value, "spec", &known) else {
        return;
    };
    let source = spec.get("source").filter(|v| !v.is_null());
    if let Some(source) = source {
        check_source(c, source);
    }
    let image = if source.is_some() {
        spec.get("image").filter(|v| !v.is_null())
    } else {
        c.required(spec, "spec", "image")
    };
    if let Some(image) = image.and_then(|v| c.string(v, "spec.image"))
        && let Err(err) = ImageRef::parse(image).and_then(|r| r.check_not_an_id())
    {
        c.error("spec.image", err.to_string());
    }
    if let Some(flag) = spec.get("autoRollback").filter(|v| !v.is_null())
        && !flag.is_boolean()
    {
        c.error("spec.autoRollback", "must be true or false");
    }
    if let Some(policy) = spec.get("imagePullPolicy").filter(|v| !v.is_null())
        && !matches!(policy.as_str(), Some("Always" | "IfNotPresent"))
    {
        c.error(
            "spec.imagePullPolicy",
            "must be one of Always, IfNotPresent".to_owned(),
        );
    }
    c.string_list(spec, "spec", "command");
    c.string_list(spec, "spec", "args");
    if let Some(env) = spec.get("env").filter(|v| !v.is_null()) {
        check_env(c, env);
    }
    if let Some(port) = c.required(spec, "spec", "containerPort") {
        c.integer(port, "spec.containerPort", 1, 65_535);
    }
    c.optional_integer(spec, "spec", "replicas", 0, MAX_REPLICAS);
    c.optional_integer(
        spec,
        "spec",
        "terminationGracePeriodSeconds",
        0,
        MAX_GRACE_SECONDS,
    );
    if let Some(resources) = spec.get("resources").filter(|v| !v.is_null()) {
        check_resources(c, resources);
    }
    if let Some(health) = spec.get("healthCheck").filter(|v| !v.is_null()) {
        check_health(c, health);
    }
    if let Some(policy) = spec.get("restartPolicy").filter(|v| !v.is_null())
        && !matches!(policy.as_str(), Some("Always" | "OnFailure" | "Never"))
    {
        c.error(
            "spec.restartPolicy",
            format!(
                "must be Always, OnFailure or Never, got {}",
                describe(policy)
            ),
        );
    }
}

fn check_source(c: &mut Checker, value: &Value) {
    let Some(source) = c.object(value, "spec.source", &["git"]) else {
        return;
    };
    let Some(git) = c.required(source, "spec.source", "git") else {
        return;
    };
    let Some(git) = c.object(
        git,
        "spec.source.git",
        &["url", "branch", "dockerfile", "context"],
    ) else {
        return;
    };
    if let Some(url) = c
        .required(git, "spec.source.git", "url")
        .and_then(|v| c.string(v, "spec.source.git.url"))
        && let Err(why) = GitUrl::parse(url)
    {
        c.error("spec.source.git.url", why);
    }
    if let Some(branch) = git.get("branch").filter(|v| !v.is_null())
        && let Some(branch) = c.string(branch, "spec.source.git.branch")
        && let Err(why) = check_branch(branch)
    {
        c.error("spec.source.git.branch", why);
    }
    let mut path = |key: &str| {
        let field = format!("spec.source.git.{key}");
        let value = git.get(key).filter(|v| !v.is_null())?;
        let text = c.string(value, &field)?;
        match check_repository_path(text) {
            Ok(()) => Some(text.to_owned()),
            Err(why) => {
                c.error(&field, why);
                None
            }
        }
    };
    // Whether the Dockerfile lies inside the context is the build's to say (in the
    // revision's message): the JSON Schema cannot relate two fields, and what it
    // allows is accepted.
    let _ = (path("dockerfile"), path("context"));
}

fn check_env(c: &mut Checker, value: &Value) {
    let Value::Array(vars) = value else {
        c.error(
            "spec.env",
            format!(
                "must be a list of {{name, value}}, got {}",
                type_name(value)
            ),
        );
        return;
    };
    if vars.len() > MAX_ENV {
        c.error("spec.env", format!("must have at most {MAX_ENV} variables"));
    }
    for (i, var) in vars.iter().enumerate() {
        let path = format!("spec.env[{i}]");
        let Some(var) = c.object(var, &path, &["name", "value", "secret"]) else {
            continue;
        };
        if let Some(name) = c
            .required(var, &path, "name")
            .and_then(|v| c.string(v, &format!("{path}.name")))
            && !is_env_name(name)
        {
            c.error(
                &format!("{path}.name"),
                "must start with a letter or '_' and contain only letters, digits and '_'",
            );
        }
        let secret = match var.get("secret") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                c.error(
                    &format!("{path}.secret"),
                    format!("must be true or false, got {}", describe(other)),
                );
                false
            }
        };
        match var.get("value") {
            None | Some(Value::Null) if !secret => c.error(&format!("{path}.value"), "is required"),
            None | Some(Value::Null) => {}
            Some(Value::String(_)) => {}
            Some(other) => c.error(
                &format!("{path}.value"),
                format!(
                    "must be a string (quote numbers and booleans), got {}",
                    describe(other)
                ),
            ),
        }
    }
}

fn check_resources(c: &mut Checker, value: &Value) {
    let Some(resources) = c.object(value, "spec.resources", &["memory", "cpu"]) else {
        return;
    };
    if let Some(memory) = resources.get("memory").filter(|v| !v.is_null()) {
        let parsed = match memory {
            Value::String(s) => parse_memory(s).map_err(|e| e.to_string()),
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| "must be a whole number of bytes".to_owned()),
            other => Err(format!(
                "must be a quantity such as 512Mi, got {}",
                type_name(other)
            )),
        };
        match parsed {
            Ok(bytes) if (MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&bytes) => {}
            Ok(_) => c.error(
                "spec.resources.memory",
                format!("must be between 4Mi and 64Gi, got {}", describe(memory)),
            ),
            Err(message) => c.error("spec.resources.memory", message),
        }
    }
    if let Some(cpu) = resources.get("cpu").filter(|v| !v.is_null()) {
        let parsed = match cpu {
            Value::String(s) => parse_cpu(s).map_err(|e| e.to_string()),
            Value::Number(n) => n
                .as_f64()
                .ok_or(QuantityError::Cpu)
                .and_then(cpu_from_cores)
                .map_err(|e| e.to_string()),
            other => Err(format!(
                "must be a quantity such as \"1\" or 500m, got {}",
                type_name(other)
            )),
        };
        match parsed {
            Ok(0) => c.error("spec.resources.cpu", "must be greater than 0 (at least 1m)"),
            Ok(m) if m > MAX_CPU_MILLICORES => c.error(
                "spec.resources.cpu",
                format!("must be at most {} cores", MAX_CPU_MILLICORES / 1000),
            ),
            Ok(_) => {}
            Err(message) => c.error("spec.resources.cpu", message),
        }
    }
}

fn check_health(c: &mut Checker, value: &Value) {
    let path = "spec.healthCheck";
    let known = [
        "http",
        "tcp",
        "initialDelaySeconds",
        "periodSeconds",
        "timeoutSeconds",
        "failureThreshold",
    ];
    let Some(health) = c.object(value, path, &known) else {
        return;
    };
    let http = health.get("http").filter(|v| !v.is_null());
    let tcp = health.get("tcp").filter(|v| !v.is_null());
    match (http, tcp) {
        (Some(_), Some(_)) => c.error(path, "give either http or tcp, not both"),
        (None, None) => c.error(path, "give http: {path: /...} or tcp: {}"),
        _ => {}
    }
    if let Some(http) = http
        && let Some(http) = c.object(http, "spec.healthCheck.http", &["path"])
        && let Some(probe_path) = c
            .required(http, "spec.healthCheck.http", "path")
            .and_then(|v| c.string(v, "spec.healthCheck.http.path"))
        && (!probe_path.starts_with('/') || probe_path.contains(char::is_whitespace))
    {
        c.error(
            "spec.healthCheck.http.path",
            "must start with '/' and contain no spaces",
        );
    }
    if let Some(tcp) = tcp {
        c.object(tcp, "spec.healthCheck.tcp", &[]);
    }
    c.optional_integer(health, path, "initialDelaySeconds", 0, MAX_SECONDS);
    c.optional_integer(health, path, "periodSeconds", 1, MAX_SECONDS);
    c.optional_integer(health, path, "timeoutSeconds", 1, MAX_SECONDS);
    c.optional_integer(health, path, "failureThreshold", 1, 100);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::application::RestartPolicy;

    fn minimal() -> Value {
        json!({
            "apiVersion": "longin.io/v1",
            "kind": "Application",
            "metadata": {"name": "hello"},
            "spec": {"image": "127.0.0.1:5000/demo/hello:1.0", "containerPort": 8080}
        })
    }

    fn paths(doc: &Value) -> Vec<String> {
        let mut paths: Vec<String> = parse_application(doc)
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.path)
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn the_probe_path_pattern_refuses_every_whitespace() {
        let pattern = regex::Regex::new(PROBE_PATH_PATTERN).expect("regex");
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            assert_eq!(
                pattern.is_match(&format!("/a{c}")),
                !c.is_whitespace(),
                "{c:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn what_the_string_patterns_allow_is_accepted(
            key in crate::matching(QUALIFIED_NAME_PATTERN),
            value in crate::matching(LABEL_VALUE_PATTERN),
            env in crate::matching(ENV_NAME_PATTERN),
            probe in crate::matching(PROBE_PATH_PATTERN),
        ) {
            let mut doc = minimal();
            doc["metadata"]["labels"] = json!({&key: value});
            doc["metadata"]["annotations"] = json!({&key: "any text"});
            doc["spec"]["env"] = json!([{"name": env, "value": "v"}]);
            doc["spec"]["healthCheck"] = json!({"http": {"path": probe}});
            let parsed = parse_application(&doc);
            proptest::prop_assert!(parsed.is_ok(), "{doc}: {parsed:?}");
        }
    }

    #[test]
    fn an_optional_field_set_to_null_is_absent() {
        let mut doc = minimal();
        doc["metadata"]["labels"] = Value::Null;
        doc["metadata"]["resourceVersion"] = Value::Null;
        for key in [
            "imagePullPolicy",
            "command",
            "args",
            "env",
            "replicas",
            "resources",
            "healthCheck",
            "restartPolicy",
            "terminationGracePeriodSeconds",
        ] {
            doc["spec"][key] = Value::Null;
        }
        let app = parse_application(&doc).expect("valid");
        assert_eq!(app.spec.replicas, 1);
        assert!(app.spec.command.is_empty() && app.metadata.labels.is_empty());
        let mut doc = minimal();
        doc["spec"]["resources"] = json!({"memory": null, "cpu": null});
        doc["spec"]["env"] = json!([{"name": "A", "value": null, "secret": true}, {"name": "B", "value": "b", "secret": null}]);
        doc["spec"]["healthCheck"] = json!({"http": null, "tcp": {}, "periodSeconds": null});
        let app = parse_application(&doc).expect("valid");
        assert_eq!(app.spec.resources.memory, "512Mi");
        assert_eq!(app.spec.health_check.expect("health").period_seconds, 10);
    }

    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        let mut doc = minimal();
        doc["spec"]["replicas"] = json!(3.0);
        doc["spec"]["containerPort"] = json!(8080.0);
        doc["spec"]["resources"] = json!({"memory": 67_108_864.0});
        let app = parse_application(&doc).expect("valid");
        assert_eq!((app.spec.replicas, app.spec.container_port), (3, 8080));
        assert_eq!(app.spec.resources.memory, "67108864");
        doc["spec"]["replicas"] = json!(2.5);
        assert_eq!(paths(&doc), ["spec.replicas"]);
    }

    #[test]
    fn a_variable_defined_twice_takes_its_last_definition_in_its_first_place() {
        let mut doc = minimal();
        doc["spec"]["env"] = json!([
            {"name": "A", "value": "1"},
            {"name": "B", "value": "2"},
            {"name": "A", "value": "3", "secret": true},
        ]);
        let env = parse_application(&doc).expect("valid").spec.env;
        let names: Vec<(&str, Option<&str>, bool)> = env
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_deref(), v.secret))
            .collect();
        assert_eq!(names, [("A", Some("3"), true), ("B", Some("2"), false)]);
    }

    #[test]
    fn cpu_as_a_number_of_cores_is_rounded_down_to_millicores() {
        let mut doc = minimal();
        doc["spec"]["resources"] = json!({"cpu": 0.001_500_000_1});
        assert_eq!(
            parse_application(&doc).expect("valid").spec.resources.cpu,
            "1m"
        );
        doc["spec"]["resources"] = json!({"cpu": 2.5});
        assert_eq!(
            parse_application(&doc).expect("valid").spec.resources.cpu,
            "2.5"
        );
        doc["spec"]["resources"] = json!({"cpu": 0.000_9});
        assert_eq!(paths(&doc), ["spec.resources.cpu"]);
    }

    #[test]
    fn minimal_document_gets_the_defaults() {
        let app = parse_application(&minimal()).expect("valid");
        assert_eq!(app.spec.replicas, 1);
        assert_eq!(app.spec.resources.memory, "512Mi");
        assert_eq!(app.spec.resources.cpu, "1");
        assert_eq!(app.spec.restart_policy, RestartPolicy::Always);
        assert_eq!(app.spec.termination_grace_period_seconds, 10);
        assert_eq!(app.spec.health_check, None);
    }

    #[test]
    fn health_check_defaults() {
        let mut doc = minimal();
        doc["spec"]["healthCheck"] = json!({"http": {"path": "/healthz"}});
        let health = parse_application(&doc)
            .expect("valid")
            .spec
            .health_check
            .expect("health");
        assert_eq!(
            (
                health.period_seconds,
                health.timeout_seconds,
                health.failure_threshold
            ),
            (10, 1, 3)
        );
    }

    #[test]
    fn numeric_cpu_is_normalised_to_a_string() {
        let mut doc = minimal();
        doc["spec"]["resources"] = json!({"cpu": 0.5, "memory": "64Mi"});
        assert_eq!(
            parse_application(&doc).expect("valid").spec.resources.cpu,
            "0.5"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "Bad_Name"},
            "spec": {
                "image": "UPPER",
                "replica": 3,
                "containerPort": 70000,
                "replicas": 21,
                "env": [{"name": "1BAD", "value": 1}, {"name": "OK"}],
                "resources": {"memory": "2Mi", "cpu": "0"},
                "healthCheck": {"http": {"path": "healthz"}, "periodSeconds": 0},
                "restartPolicy": "Sometimes"
            }
        });
        assert_eq!(
            paths(&doc),
            [
                "apiVersion",
                "kind",
                "metadata.name",
                "spec.containerPort",
                "spec.env[0].name",
                "spec.env[0].value",
                "spec.env[1].value",
                "spec.healthCheck.http.path",
                "spec.healthCheck.periodSeconds",
                "spec.image",
                "spec.replica",
                "spec.replicas",
                "spec.resources.cpu",
                "spec.resources.memory",
                "spec.restartPolicy",
            ]
        );
    }

    #[test]
    fn unknown_field_names_the_known_ones() {
        let mut doc = minimal();
        doc["spec"]["replica"] = json!(2);
        let errors = parse_application(&doc).expect_err("invalid");
        assert_eq!(errors[0].path, "spec.replica");
        assert!(
            errors[0].message.contains("replicas"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn status_and_server_metadata_are_accepted_and_status_dropped() {
        let mut doc = minimal();
        doc["metadata"]["uid"] = json!("x");
        doc["metadata"]["resourceVersion"] = json!("7");
        doc["status"] = json!({"phase": "Running"});
        let app = parse_application(&doc).expect("valid");
        assert_eq!(app.status, None);
        assert_eq!(app.metadata.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn a_non_mapping_document_is_one_error() {
        assert_eq!(paths(&json!(["a"])), [""]);
        assert_eq!(
            paths(&json!({"apiVersion": "longin.io/v1", "kind": "Application"})),
            ["metadata", "spec"]
        );
    }
}
