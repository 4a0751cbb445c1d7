//! Strategies for property tests of applied documents: YAML-like text, JSON values, and
//! Applications, valid or mutated. Shared by crds' own tests and the HTTP robustness
//! tests of the server (`tests/robustness.rs` includes this file by path), so that both
//! throw the same inputs at the parser.

#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{Value, json};

/// A valid Application that sets every field, the base of the mutations.
#[must_use]
pub fn application() -> Value {
    json!({
        "apiVersion": "longin.io/v1",
        "kind": "Application",
        "metadata": {"name": "greeter", "labels": {"team": "web", "tier": "frontend"}},
        "spec": {
            "image": "127.0.0.1:5000/longin/httpd:1.0",
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/busybox", "sh", "-c"],
            "args": ["exec /bin/busybox httpd -f -p 8080 -h /www"],
            "containerPort": 8080,
            "replicas": 2,
            "resources": {"memory": "32Mi", "cpu": "250m"},
            "env": [
                {"name": "GREETING", "value": "Hello"},
                {"name": "API_TOKEN", "value": "change-me", "secret": true}
            ],
            "healthCheck": {
                "http": {"path": "/healthz"},
                "initialDelaySeconds": 1,
                "periodSeconds": 5,
                "timeoutSeconds": 1,
                "failureThreshold": 3
            },
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 5
        }
    })
}

/// Applications that pass validation: the base with its values varied in range.
pub fn valid_application() -> impl Strategy<Value = Value> {
    (
        "[a-z]([a-z0-9-]{0,20}[a-z0-9])?",
        0u32..=20,
        1u32..=65_535,
        prop::sample::select(vec!["4Mi", "16Mi", "512Mi", "1Gi", "64Gi"]),
        prop::sample::select(vec!["1m", "100m", "0.5", "1", "256"]),
        prop::sample::select(vec!["Always", "OnFailure", "Never"]),
        0u32..=300,
    )
        .prop_map(|(name, replicas, port, memory, cpu, restart, grace)| {
            let mut doc = application();
            doc["metadata"]["name"] = json!(name);
            doc["spec"]["replicas"] = json!(replicas);
            doc["spec"]["containerPort"] = json!(port);
            doc["spec"]["resources"] = json!({"memory": memory, "cpu": cpu});
            doc["spec"]["restartPolicy"] = json!(restart);
            doc["spec"]["terminationGracePeriodSeconds"] = json!(grace);
            doc
        })
}

/// The field names of an Application, so that mutations often hit a known field.
const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "labels",
    "spec",
    "status",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "env",
    "value",
    "secret",
    "containerPort",
    "replicas",
    "resources",
    "memory",
    "cpu",
    "healthCheck",
    "http",
    "tcp",
    "path",
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "restartPolicy",
    "terminationGracePeriodSeconds",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
}

/// Strings near the edges of what the validator accepts.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{0,12}",
        1 => prop::sample::select(vec![
            "", "0", "-1", "0.0", "1e3", "1Gi", "1Ki", "3Mi", "100m", "0m", "1.5.5", "Mi",
            "18446744073709551616Gi", "Always", "never", "longin.io/v1", "Application",
            "greeter", "-bad-", "UPPER", "a_b", "/healthz", "healthz",
            "127.0.0.1:5000/longin/httpd:1.0", "image@sha256:abc", "::", "\u{0}", "\u{feff}",
            "é",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..400).prop_map(|n| "a".repeat(n)),
    ]
}

/// Numbers near the edges: zero, negatives, the ranges' bounds and past them, floats.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            json!(0),
            json!(-1),
            json!(1),
            json!(20),
            json!(21),
            json!(300),
            json!(301),
            json!(3600),
            json!(65_535),
            json!(65_536),
            json!(u64::from(u32::MAX) + 1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(0.5),
            json!(-0.0),
            json!(1e300),
        ]),
        any::<i64>().prop_map(Value::from),
        // NaN and infinities become null, as serde_json makes them.
        any::<f64>().prop_map(Value::from),
    ]
}

/// Any JSON value, a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// One change to a document, at the node numbered `at` in a walk of it (modulo the
/// number of nodes, so any number names some node).
#[derive(Debug, Clone)]
pub enum Mutation {
    Set {
        at: usize,
        value: Value,
    },
    Remove {
        at: usize,
    },
    Insert {
        at: usize,
        key: String,
        value: Value,
    },
    /// The node appears twice where it was: a list gets a copy, a scalar becomes a list.
    Duplicate {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), json_value()).prop_map(|(at, value)| Mutation::Set { at, value }),
        2 => any::<usize>().prop_map(|at| Mutation::Remove { at }),
        2 => (any::<usize>(), key(), json_value())
            .prop_map(|(at, key, value)| Mutation::Insert { at, key, value }),
        1 => any::<usize>().prop_map(|at| Mutation::Duplicate { at }),
    ]
}

/// JSON pointers of every node of `value`, itself first.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, &format!("{at}/{i}"), out);
            }
        }
        Value::Object(entries) => {
            for (key, item) in entries {
                let token = key.replace('~', "~0").replace('/', "~1");
                pointers(item, &format!("{at}/{token}"), out);
            }
        }
        _ => {}
    }
}

impl Mutation {
    /// Applies the change to `doc`.
    pub fn apply(&self, doc: &mut Value) {
        let mut all = Vec::new();
        pointers(doc, "", &mut all);
        let (Self::Set { at, .. }
        | Self::Remove { at }
        | Self::Insert { at, .. }
        | Self::Duplicate { at }) = self;
        let pointer = all[at % all.len()].clone();
        match self {
            Self::Set { value, .. } => {
                if let Some(node) = doc.pointer_mut(&pointer) {
                    *node = value.clone();
                }
            }
            Self::Remove { .. } => {
                let Some((parent, last)) = pointer.rsplit_once('/') else {
                    *doc = Value::Null;
                    return;
                };
                let last = last.replace("~1", "/").replace("~0", "~");
                match doc.pointer_mut(parent) {
                    Some(Value::Object(entries)) => {
                        entries.remove(&last);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = last.parse::<usize>() {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            Self::Insert { key, value, .. } => match doc.pointer_mut(&pointer) {
                Some(Value::Object(entries)) => {
                    entries.insert(key.clone(), value.clone());
                }
                Some(Value::Array(items)) => items.push(value.clone()),
                Some(node) => {
                    *node = Value::Object([(key.clone(), value.clone())].into_iter().collect());
                }
                None => {}
            },
            Self::Duplicate { .. } => {
                if let Some(node) = doc.pointer_mut(&pointer) {
                    match node {
                        Value::Array(items) => {
                            if let Some(first) = items.first().cloned() {
                                items.push(first);
                            }
                        }
                        other => *other = json!([other.clone(), other.clone()]),
                    }
                }
            }
        }
    }
}

/// The base Application with up to three mutations: mostly nearly valid documents, the
/// inputs that reach deepest into the validator.
pub fn mutated_application() -> impl Strategy<Value = Value> {
    (
        prop_oneof![1 => Just(application()), 2 => valid_application()],
        prop::collection::vec(mutation(), 0..4),
    )
        .prop_map(|(mut doc, mutations)| {
            for m in &mutations {
                m.apply(&mut doc);
            }
            doc
        })
}

/// Text that is mostly YAML: the tokens its parser cares about in any order, with
/// anchors and aliases, tags, block scalars and document markers.
pub fn yaml_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        4 => "[a-z]{1,6}",
        1 => "\\PC{1,3}",
        1 => "[0-9.eE+-]{1,6}",
        6 => prop::sample::select(vec![
            ": ", ":", "\n", "\n  ", "\n    ", "- ", "-", "&a ", "*a", "&b ", "*b", "[", "]",
            "{", "}", ", ", "'", "\"", "\\", "---\n", "...\n", "!tag ", "!!str ", "!!int ",
            "!!binary ", "!!map ", "? ", "|\n  ", ">-\n  ", "# c\n", "<<: ", "%YAML 1.2\n",
            "~", ".nan", "-.inf", "0x1F", "0o17", "1e400", "99999999999999999999999", "\t",
            "null", "true", "yes", "apiVersion: longin.io/v1\n", "kind: Application\n",
            "metadata:\n  name: ", "spec:\n  image: ", "  containerPort: ", "  replicas: ",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(token, 0..48).prop_map(|tokens| tokens.concat())
}

/// A document as YAML text, as a client would send it.
#[must_use]
pub fn to_yaml(doc: &Value) -> String {
    longin_crds::document::to_yaml(doc).expect("a JSON value serializes as YAML")
}
