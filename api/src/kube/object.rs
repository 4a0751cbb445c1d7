//! An Application as Kubernetes clients see it: Longin's resource with its namespace
//! (the owner's username), and what a client sends turned back into a document
//! Longin's validation reads.

use serde_json::{Value, json};

use longin_crds::Application;
use longin_crds::validation::parse_application;
use longin_store::applications::ApplicationRecord;

use crate::resource::Presented as _;

use super::status::KubeError;

/// The object of `record`: the same resource Longin's API answers, secrets redacted,
/// plus `metadata.namespace`.
#[must_use]
pub fn to_object(record: &ApplicationRecord) -> Value {
    with_namespace(&record.to_resource(), &record.owner_username)
}

/// `resource` (already presented) as an object of `namespace`.
#[must_use]
pub fn with_namespace(resource: &Application, namespace: &str) -> Value {
    let mut value = serde_json::to_value(resource).unwrap_or_else(|_| json!({}));
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".to_owned(), json!(namespace));
    }
    value
}

/// Metadata fields Kubernetes clients send that Longin has no use for: dropped, as
/// an API server drops what it manages itself.
const CLIENT_METADATA: &[&str] = &["managedFields", "selfLink", "finalizers", "generateName"];

/// The Application `object` asks for, in namespace `namespace`, as validation reads
/// it. `name` is the name in the path, which the object must carry (or leave out).
///
/// # Errors
/// 400 for a namespace or name other than the path's; 422 naming each invalid field.
pub fn from_object(
    mut object: Value,
    namespace: &str,
    name: Option<&str>,
) -> Result<Application, KubeError> {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return parse(&object, name.unwrap_or_default());
    };
    match meta.remove("namespace") {
        None | Some(Value::Null) => {}
        Some(Value::String(ns)) if ns == namespace => {}
        Some(other) => {
            return Err(KubeError::bad_request(format!(
                "the namespace of the provided object ({}) does not match the namespace sent on the request ({namespace})",
                other.as_str().unwrap_or("not a string")
            )));
        }
    }
    for field in CLIENT_METADATA {
        meta.remove(*field);
    }
    if let Some(name) = name {
        match meta.get("name") {
            None => {
                meta.insert("name".to_owned(), json!(name));
            }
            Some(Value::String(given)) if given == name => {}
            Some(_) => {
                return Err(KubeError::bad_request(format!(
                    "the name of the object does not match the name on the URL ({name})"
                )));
            }
        }
    }
    let shown = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    parse(&object, &shown)
}

fn parse(object: &Value, name: &str) -> Result<Application, KubeError> {
    parse_application(object).map_err(|problems| {
        KubeError::invalid(
            name,
            problems
                .into_iter()
                .map(|p| {
                    let field = if p.path.is_empty() {
                        "<document>".to_owned()
                    } else {
                        p.path
                    };
                    (field, p.message)
                })
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(meta: Value) -> Value {
        json!({
            "apiVersion": "longin.io/v1", "kind": "Application",
            "metadata": meta,
            "spec": {"image": "web:1", "replicas": 1, "containerPort": 80},
        })
    }

    #[test]
    fn the_namespace_and_client_fields_are_dropped_when_they_match() {
        let app = from_object(
            doc(json!({"name": "web", "namespace": "alice", "managedFields": [], "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}})),
            "alice",
            Some("web"),
        )
        .expect("valid");
        assert_eq!(app.metadata.name, "web");
        assert_eq!(
            app.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"],
            "{}"
        );
    }

    #[test]
    fn another_namespace_or_name_is_refused() {
        let err = from_object(
            doc(json!({"name": "web", "namespace": "bob"})),
            "alice",
            None,
        )
        .expect_err("other namespace");
        assert_eq!(err.code.as_u16(), 400);
        let err =
            from_object(doc(json!({"name": "api"})), "alice", Some("web")).expect_err("other name");
        assert_eq!(err.code.as_u16(), 400);
    }

    #[test]
    fn each_invalid_field_is_a_cause() {
        let mut bad = doc(json!({"name": "web"}));
        bad["spec"]["replicas"] = json!(-1);
        bad["spec"]["image"] = json!("UPPER CASE");
        let err = from_object(bad, "alice", None).expect_err("invalid");
        assert_eq!(err.code.as_u16(), 422);
        let fields: Vec<&str> = err.causes.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"spec.replicas"), "{fields:?}");
        assert!(fields.contains(&"spec.image"), "{fields:?}");
    }
}
