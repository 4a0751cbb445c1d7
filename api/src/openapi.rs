//! The OpenAPI document: utoipa's, from the handlers' annotations, completed with what
//! annotations cannot say: the Application schemas, derived from the crds types (the
//! CRD's source too), and the error answers that every route of a kind shares (401
//! where a token is needed, 404 where the path names something, 400, 413 and 415 where
//! input is read, 500 everywhere), each with the error body's schema.

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Longin API", description = "Self-hosted application platform."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "auth", description = "Accounts, sign-in and sessions"),
        (name = "applications", description = "Application resources"),
        (name = "deployments", description = "Revisions: rollout history, build logs, rollback, redeploy"),
        (name = "webhooks", description = "GitHub webhooks and their deliveries"),
        (name = "containers", description = "Containers and their logs"),
        (name = "admin", description = "User management and the audit log (admins only)"),
        (name = "kubernetes", description = "Where kubectl reaches the Kubernetes-compatible API (served at /apis/longin.io/v1)"),
        (name = "health", description = "Probes"),
    )
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from /api/auth/register, /login or /refresh, or a personal API token (lgn_…) from POST /api/tokens",
                    ))
                    .build(),
            ),
        );
    }
}

/// The name under which the Application schema is a component.
const APPLICATION: &str = "Application";

/// Stands for the Application resource in annotations; the document gets its schema
/// from [`longin_crds::schema::application_schemas`].
pub(crate) struct ApplicationRef;

impl PartialSchema for ApplicationRef {
    fn schema() -> RefOr<Schema> {
        Ref::from_schema_name(APPLICATION).into()
    }
}

impl ToSchema for ApplicationRef {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(APPLICATION)
    }
}

/// An apply's JSON body: one Application, or a non-empty list of them.
pub(crate) struct ApplicationDocuments;

impl PartialSchema for ApplicationDocuments {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ApplicationRef::schema())
            .item(
                ArrayBuilder::new()
                    .items(ApplicationRef::schema())
                    .min_items(Some(1)),
            )
            .into()
    }
}

impl ToSchema for ApplicationDocuments {}

/// Unix seconds that are a time of chrono's calendar (what `DateTime::from_timestamp`
/// takes), the range of an [`InstantSecs`].
pub(crate) const UNIX_SECONDS: (i64, i64) = (-8_334_601_228_800, 8_210_266_876_799);

/// A time query parameter: RFC 3339, or Unix seconds.
pub(crate) struct InstantSecs;

impl PartialSchema for InstantSecs {
    fn schema() -> RefOr<Schema> {
        instant(UNIX_SECONDS.0, UNIX_SECONDS.1)
    }
}

impl ToSchema for InstantSecs {}

/// A time query parameter: RFC 3339, or milliseconds since the epoch.
pub(crate) struct InstantMillis;

impl PartialSchema for InstantMillis {
    fn schema() -> RefOr<Schema> {
        instant(i64::MIN, i64::MAX)
    }
}

impl ToSchema for InstantMillis {}

fn instant(min: i64, max: i64) -> RefOr<Schema> {
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(min))
                .maximum(Some(max)),
        )
        .into()
}

/// When an error answer applies to an operation.
#[derive(Debug, Clone, Copy)]
enum Applies {
    /// It reads a query or a body.
    Input,
    /// It needs a bearer token.
    Secured,
    /// Its path names a resource.
    PathNames,
    /// It takes an `owner` (admins only).
    Owner,
    /// It reads a body.
    Body,
    Always,
}

/// The error answers routes share, by when they apply.
const SHARED_ERRORS: &[(&str, Applies, &str)] = &[
    (
        "400",
        Applies::Input,
        "Malformed or invalid input; `fields` names each problem",
    ),
    (
        "401",
        Applies::Secured,
        "No valid access token: missing, malformed, expired, or the account is disabled",
    ),
    (
        "403",
        Applies::Owner,
        "Only an admin may name another owner",
    ),
    (
        "404",
        Applies::PathNames,
        "Nothing of that name that the caller may see",
    ),
    ("404", Applies::Owner, "No user of that name"),
    (
        "413",
        Applies::Body,
        "The body is larger than the server's limit",
    ),
    (
        "415",
        Applies::Body,
        "The body's content type is not one this route reads",
    ),
    (
        "500",
        Applies::Always,
        "An internal error; its details are logged, never sent",
    ),
];

/// The whole document, as served at `/api/openapi.json`.
#[must_use]
pub fn document(annotated: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(annotated).unwrap_or_else(|_| json!({}));
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.extend(longin_crds::schema::application_schemas());
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                declare_shared_errors(operation);
            }
        }
        add_links(paths);
    }
    doc
}

/// Where an answer leads: clients (and schemathesis's stateful phase) follow these
/// from a created resource to what acts on it.
struct Link {
    path: &'static str,
    method: &'static str,
    status: &'static str,
    /// The runtime expression of the value that names the resource.
    value: &'static str,
    /// The parameter of each target that takes it.
    parameter: &'static str,
    /// The operations it leads to, by operationId.
    targets: &'static [&'static str],
}

const LINKS: &[Link] = &[
    Link {
        path: "/api/applications",
        method: "post",
        status: "201",
        value: "$response.body#/metadata/name",
        parameter: "name",
        targets: APPLICATION_OPERATIONS,
    },
    Link {
        path: "/api/applications/apply",
        method: "put",
        status: "200",
        value: "$response.body#/results/0/name",
        parameter: "name",
        targets: APPLICATION_OPERATIONS,
    },
    container_list("/api/applications/{name}/containers"),
    container_list("/api/containers"),
    Link {
        path: "/api/admin/users",
        method: "get",
        status: "200",
        value: "$response.body#/items/0/id",
        parameter: "id",
        targets: &["update_user"],
    },
    Link {
        path: "/api/tokens",
        method: "post",
        status: "201",
        value: "$response.body#/name",
        parameter: "name",
        targets: &["revoke_token"],
    },
];

/// A list of containers leads to (the first of) them.
const fn container_list(path: &'static str) -> Link {
    Link {
        path,
        method: "get",
        status: "200",
        value: "$response.body#/0/id",
        parameter: "id",
        targets: CONTAINER_OPERATIONS,
    }
}

/// Every operation on one container, by operationId.
const CONTAINER_OPERATIONS: &[&str] = &["get_container", "container_logs"];

/// Every operation on one application, by operationId.
const APPLICATION_OPERATIONS: &[&str] = &[
    "get_application",
    "delete",
    "stop",
    "start",
    "restart",
    "deployments",
    "containers",
    "app_metrics",
    "rollback",
    "redeploy",
    "get_webhook",
];

fn add_links(paths: &mut Map<String, Value>) {
    for link in LINKS {
        let Some(response) = paths
            .get_mut(link.path)
            .and_then(|item| item.get_mut(link.method))
            .and_then(|op| op.pointer_mut(&format!("/responses/{}", link.status)))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let links: Map<String, Value> = link
            .targets
            .iter()
            .map(|target| {
                (
                    (*target).to_owned(),
                    json!({"operationId": target, "parameters": {link.parameter: link.value}}),
                )
            })
            .collect();
        response.insert("links".to_owned(), Value::Object(links));
    }
}

fn declare_shared_errors(operation: &mut Map<String, Value>) {
    let has_param = |location: &str, name: Option<&str>| {
        operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|params| {
                params
                    .iter()
                    .any(|p| p["in"] == location && name.is_none_or(|name| p["name"] == name))
            })
    };
    let body = operation.contains_key("requestBody");
    let applies = |when: Applies| match when {
        Applies::Input => body || has_param("query", None),
        Applies::Secured => operation.contains_key("security"),
        Applies::PathNames => has_param("path", None),
        Applies::Owner => has_param("query", Some("owner")),
        Applies::Body => body,
        Applies::Always => true,
    };
    let wanted: Vec<(&str, &str)> = SHARED_ERRORS
        .iter()
        .filter(|(_, when, _)| applies(*when))
        .map(|&(status, _, description)| (status, description))
        .collect();
    let Some(responses) = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    else {
        return;
    };
    for (status, description) in wanted {
        match responses.get_mut(status) {
            // Declared by the route, perhaps without words: it keeps its own, and
            // says what else the status means here.
            Some(Value::Object(declared)) => {
                let text = declared
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !text.contains(description) {
                    let joined = if text.is_empty() {
                        description.to_owned()
                    } else {
                        format!("{text}; or: {description}")
                    };
                    declared.insert("description".to_owned(), json!(joined));
                }
                declared.entry("content").or_insert_with(error_content);
            }
            _ => {
                responses.insert(
                    status.to_owned(),
                    json!({"description": description, "content": error_content()}),
                );
            }
        }
    }
}

fn error_content() -> Value {
    json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_are_the_calendar_chrono_knows() {
        let (min, max) = UNIX_SECONDS;
        assert_eq!(chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp(), min);
        assert_eq!(chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp(), max);
        assert!(chrono::DateTime::from_timestamp(min - 1, 0).is_none());
        assert!(chrono::DateTime::from_timestamp(max + 1, 0).is_none());
    }

    #[test]
    fn every_reference_in_the_document_resolves() {
        let doc = crate::openapi();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap_or_default();
            let name = target
                .strip_prefix("#/components/schemas/")
                .expect("a schema component");
            assert!(schemas.contains_key(name), "{target} is defined");
        }
        assert!(schemas[APPLICATION]["properties"]["spec"].is_object());
    }

    #[test]
    fn operation_ids_are_unique_and_every_link_names_one_with_its_response() {
        let doc = crate::openapi();
        let mut ids = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().expect("paths").values() {
            for op in item.as_object().expect("item").values() {
                let id = op["operationId"].as_str().expect("an operationId");
                assert!(ids.insert(id.to_owned()), "{id} is unique");
            }
        }
        for link in LINKS {
            let (path, method, status) = (link.path, link.method, link.status);
            let links = &doc["paths"][path][method]["responses"][status]["links"];
            assert!(links.is_object(), "{method} {path} {status} has its links");
            for target in link.targets {
                assert!(ids.contains(*target), "{target} is an operation");
            }
        }
    }

    #[test]
    fn every_operation_declares_its_shared_errors_with_the_error_schema() {
        let doc = crate::openapi();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                let responses = op["responses"].as_object().expect("responses");
                assert!(responses.contains_key("500"), "{method} {path}: 500");
                if op.get("security").is_some() {
                    assert!(responses.contains_key("401"), "{method} {path}: 401");
                }
                if path.contains('{') {
                    assert!(responses.contains_key("404"), "{method} {path}: 404");
                }
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"]["application/json"]["schema"]["$ref"]
                                .as_str()
                                .is_some_and(|r| r.ends_with("/ErrorBody"))
                                || path == "/readyz",
                            "{method} {path} {status}: the error schema"
                        );
                    }
                }
            }
        }
    }
}
