//! The Kubernetes CustomResourceDefinition of `Application`, generated from the Rust
//! types so the checked-in `crds/application.crd.yaml` cannot silently drift (a test
//! compares them).

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::application::{ApplicationSpec, ApplicationStatus};

/// The schema of `T` as a Kubernetes structural schema: inlined, without the keywords
/// Kubernetes refuses.
fn structural_schema<T: schemars::JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    clean(&mut schema);
    schema
}

fn clean(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in ["$schema", "title", "components", "definitions", "$defs"] {
                map.remove(key);
            }
            // Kubernetes forbids additionalProperties beside properties; unknown fields
            // are pruned by the API server anyway.
            if map.get("additionalProperties") == Some(&Value::Bool(false)) {
                map.remove("additionalProperties");
            }
            // An empty object type (tcp: {}) must say it keeps its (no) fields.
            if map.get("type") == Some(&json!("object"))
                && map
                    .get("properties")
                    .is_some_and(|p| p.as_object().is_some_and(serde_json::Map::is_empty))
            {
                map.remove("properties");
            }
            for child in map.values_mut() {
                clean(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(clean),
        _ => {}
    }
}

/// The CRD as a JSON value.
#[must_use]
pub fn application_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "applications.longin.io"},
        "spec": {
            "group": "longin.io",
            "names": {
                "kind": "Application",
                "listKind": "ApplicationList",
                "plural": "applications",
                "singular": "application",
                "shortNames": ["app"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A containerised program run as identical replicas on the local Docker engine.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": structural_schema::<ApplicationSpec>(),
                        "status": structural_schema::<ApplicationStatus>(),
                    },
                }},
            }],
        },
    })
}

/// The CRD as the YAML that is checked in.
///
/// # Errors
/// Only if YAML serialisation fails, which it does not for this value.
pub fn application_crd_yaml() -> Result<String, serde_yaml_ng::Error> {
    let body = serde_yaml_ng::to_string(&application_crd())?;
    Ok(format!(
        "# Generated from the Rust types in crds/src/application.rs; do not edit.\n# Regenerate: LONGIN_UPDATE_CRD=1 cargo test -p longin-crds crd\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKED_IN: &str = "application.crd.yaml";

    #[test]
    fn checked_in_crd_matches_the_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CHECKED_IN);
        let generated = application_crd_yaml().expect("yaml");
        if std::env::var_os("LONGIN_UPDATE_CRD").is_some() {
            std::fs::write(&path, &generated).expect("write crd");
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "crds/{CHECKED_IN} is out of date with the types; regenerate it with LONGIN_UPDATE_CRD=1 cargo test -p longin-crds crd"
        );
    }

    #[test]
    fn schema_is_structural() {
        let crd = application_crd();
        let text = crd.to_string();
        assert!(
            !text.contains("$ref"),
            "no references: Kubernetes needs inline schemas"
        );
        assert!(!text.contains("additionalProperties\":false"));
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["properties"]["replicas"]["type"], "integer");
        let required = spec["required"].as_array().expect("required");
        // The image is optional: an application built from `source` gets Longin's.
        assert!(!required.contains(&json!("image")) && required.contains(&json!("containerPort")));
        assert_eq!(
            spec["properties"]["source"]["properties"]["git"]["required"],
            json!(["url"])
        );
        assert_eq!(
            spec["properties"]["restartPolicy"]["enum"],
            json!(["Always", "OnFailure", "Never"])
        );
    }
}
