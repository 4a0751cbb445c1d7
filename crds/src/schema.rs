//! The JSON Schemas of `Application` for an OpenAPI 3.1 document: derived from the same
//! types as the CRD, completed with the rules validation applies that a type cannot
//! carry, so that a document the schema allows is accepted and one it refuses is refused.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::Application;
use crate::quantity::{cpu_schema, memory_schema};
use crate::validation::{MAX_CPU_MILLICORES, MAX_MEMORY_BYTES, MIN_MEMORY_BYTES};

/// Where the schemas are referred to from: the document's components.
const COMPONENTS: &str = "/components/schemas";

/// `Application` and every schema it refers to, by component name.
#[must_use]
pub fn application_schemas() -> Map<String, Value> {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = COMPONENTS.into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let _ = generator.subschema_for::<Application>();
    let mut schemas = generator.take_definitions(true);
    complete(&mut schemas);
    for schema in schemas.values_mut() {
        accept_null_for_optional_properties(schema);
    }
    schemas
}

/// The rules that span fields or forms, as validation applies them.
fn complete(schemas: &mut Map<String, Value>) {
    if let Some(props) = properties(schemas, "Resources") {
        for (key, rule) in [
            ("memory", memory_schema(MIN_MEMORY_BYTES, MAX_MEMORY_BYTES)),
            ("cpu", cpu_schema(MAX_CPU_MILLICORES)),
        ] {
            if let Some(Value::Object(field)) = props.get_mut(key) {
                field.remove("type");
                field.extend(rule.as_object().cloned().unwrap_or_default());
            }
        }
    }
    // Exactly one probe; a null one is no probe.
    if let Some(Value::Object(health)) = schemas.get_mut("HealthCheck") {
        health.insert(
            "oneOf".to_owned(),
            json!([
                {"required": ["http"], "properties": {"http": {"type": "object"}}},
                {"required": ["tcp"], "properties": {"tcp": {"type": "object"}}},
            ]),
        );
    }
    // An image, unless Longin builds it from a source.
    if let Some(Value::Object(spec)) = schemas.get_mut("ApplicationSpec") {
        spec.insert(
            "anyOf".to_owned(),
            json!([
                {"required": ["image"], "properties": {"image": {"type": "string"}}},
                {"required": ["source"], "properties": {"source": {"type": "object"}}},
            ]),
        );
    }
    // A value, unless the variable is a secret (whose value the server may keep).
    if let Some(Value::Object(var)) = schemas.get_mut("EnvVar") {
        var.insert(
            "anyOf".to_owned(),
            json!([
                {"required": ["value"], "properties": {"value": {"type": "string"}}},
                {"required": ["secret"], "properties": {"secret": {"const": true}}},
            ]),
        );
    }
}

fn properties<'a>(
    schemas: &'a mut Map<String, Value>,
    name: &str,
) -> Option<&'a mut Map<String, Value>> {
    schemas
        .get_mut(name)?
        .get_mut("properties")?
        .as_object_mut()
}

/// Validation reads an optional field set to null as left out (so YAML's empty `env:`
/// is no list); the schema says so.
fn accept_null_for_optional_properties(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(props)) = object.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            if !required.contains(name) {
                accept_null(prop);
            }
        }
    }
}

/// Widens `schema` to allow null too.
fn accept_null(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let null_schema = json!({"type": "null"});
    let constrained = object.contains_key("enum") || object.contains_key("const");
    match object.get_mut("type") {
        Some(Value::Array(types)) => {
            if !types.contains(&json!("null")) {
                types.push(json!("null"));
            }
            return;
        }
        Some(single @ Value::String(_)) if !constrained => {
            *single = json!([single.clone(), "null"]);
            return;
        }
        _ => {}
    }
    if let Some(Value::Array(alternatives)) = object.get_mut("anyOf") {
        if !alternatives.contains(&null_schema) {
            alternatives.push(null_schema);
        }
        return;
    }
    // A reference, an enum or a const: the alternatives are it or null; what only
    // annotates stays outside.
    let mut inner = Map::new();
    let annotation = |key: &str| matches!(key, "description" | "default" | "readOnly" | "title");
    for key in object.keys().cloned().collect::<Vec<_>>() {
        if !annotation(&key)
            && let Some(value) = object.remove(&key)
        {
            inner.insert(key, value);
        }
    }
    object.insert("anyOf".to_owned(), json!([inner, null_schema]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves_to_a_schema_given() {
        let schemas = application_schemas();
        let text = Value::Object(schemas.clone()).to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap_or_default();
            let name = target
                .strip_prefix("#/components/schemas/")
                .expect("a component");
            assert!(schemas.contains_key(name), "{target} given");
        }
        assert!(schemas.contains_key("Application"));
    }

    #[test]
    fn optional_fields_allow_null_and_required_ones_do_not() {
        let schemas = application_schemas();
        let spec = &schemas["ApplicationSpec"]["properties"];
        assert_eq!(spec["image"]["type"], json!(["string", "null"]));
        assert_eq!(spec["containerPort"]["type"], "integer");
        assert_eq!(spec["command"]["type"], json!(["array", "null"]));
        assert!(
            spec["restartPolicy"]["anyOf"]
                .as_array()
                .is_some_and(|a| a.contains(&json!({"type": "null"})))
        );
        let resources = &schemas["Resources"]["properties"];
        assert!(
            resources["memory"]["anyOf"]
                .as_array()
                .is_some_and(|a| a.len() == 3)
        );
    }

    #[test]
    fn server_owned_fields_are_read_only() {
        let schemas = application_schemas();
        assert_eq!(
            schemas["Application"]["properties"]["status"]["readOnly"],
            true
        );
        assert_eq!(schemas["ObjectMeta"]["properties"]["uid"]["readOnly"], true);
        assert!(
            schemas["ObjectMeta"]["properties"]["resourceVersion"]
                .get("readOnly")
                .is_none()
        );
    }
}
