//! What kubectl reads before anything else: the server's version, the API groups and
//! their resources (which gives `app` as a short name, `all` as a category and the
//! `scale` subresource), and the OpenAPI v2 document.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{GROUP, GROUP_VERSION, VERSION};

/// The Kubernetes minor version Longin answers as. 1.20 is the newest whose clients
/// need nothing Longin lacks: newer kubectl asks `/openapi/v3` first and falls back to
/// v2 on a 404, but a wrapper that picks its kubectl by the server's version should
/// not pick one that expects more.
pub const KUBERNETES_MINOR: &str = "20";

pub async fn version() -> axum::Json<Value> {
    axum::Json(json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-longin.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    }))
}

/// `/api`: the core group, where namespaces and events are.
pub async fn core_versions() -> axum::Json<Value> {
    axum::Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    }))
}

/// `/api/v1`: the core resources Longin answers for, read-only.
pub async fn core_resources() -> axum::Json<Value> {
    axum::Json(json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]},
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event", "verbs": ["get", "list"], "shortNames": ["ev"]},
        ],
    }))
}

fn group() -> Value {
    let version = json!({"groupVersion": GROUP_VERSION, "version": VERSION});
    json!({
        "name": GROUP,
        "versions": [version.clone()],
        "preferredVersion": version,
    })
}

/// `/apis`: Longin's one group.
pub async fn groups() -> axum::Json<Value> {
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group()]}))
}

/// `/apis/longin.io`.
pub async fn the_group() -> axum::Json<Value> {
    let mut group = group();
    group["kind"] = json!("APIGroup");
    group["apiVersion"] = json!("v1");
    axum::Json(group)
}

/// `/apis/longin.io/v1`: applications, with their `scale` and `status` subresources.
pub async fn resources() -> axum::Json<Value> {
    axum::Json(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {
                "name": "applications",
                "singularName": "application",
                "namespaced": true,
                "kind": "Application",
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                "shortNames": ["app"],
                "categories": ["all", "longin"],
            },
            {
                "name": "applications/scale",
                "singularName": "",
                "namespaced": true,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            },
            {
                "name": "applications/status",
                "singularName": "",
                "namespaced": true,
                "kind": "Application",
                "verbs": ["get"],
            },
        ],
    }))
}

/// `/openapi/v2`. kubectl 1.20 asks for it as protobuf and fails `apply`, `create`,
/// `replace` and `edit` without a 200; an empty protobuf message is a valid, empty
/// document (kubectl then validates nothing client-side, and the server validates
/// everything). A client asking for JSON gets a Swagger 2.0 document naming the kind,
/// which `kubectl explain` can use.
pub async fn openapi_v2(headers: HeaderMap) -> Response {
    let protobuf = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("protobuf"));
    if protobuf {
        return (
            [(
                header::CONTENT_TYPE,
                // As the API server answers: Go's MIME parser refuses the `@` of the
                // media type kubectl asks for.
                HeaderValue::from_static("application/octet-stream"),
            )],
            Vec::<u8>::new(),
        )
            .into_response();
    }
    let mut schema =
        longin_crds::crd::application_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            .clone();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "x-kubernetes-group-version-kind".to_owned(),
            json!([{"group": GROUP, "version": VERSION, "kind": "Application"}]),
        );
    }
    axum::Json(json!({
        "swagger": "2.0",
        "info": {"title": "Longin", "version": env!("CARGO_PKG_VERSION")},
        "paths": {},
        "definitions": {"io.longin.v1.Application": schema},
    }))
    .into_response()
}
