//! Namespaces, which are users: a user sees their own, an admin every one. kubectl
//! reads one after a 404 to tell "no such object" from "no such namespace".

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use longin_store::time::rfc3339;
use longin_store::users::UserRecord;

use crate::context::ApiContext;

use super::status::KubeError;
use super::{KubeUser, namespace_not_found};

fn namespace(user: &UserRecord) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": user.username,
            "uid": user.id,
            "creationTimestamp": rfc3339(user.created_at),
            "labels": {"kubernetes.io/metadata.name": user.username},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": if user.disabled { "Terminating" } else { "Active" }},
    })
}

/// Users an admin lists as namespaces at most; past it the list says it continues.
const MOST: i64 = 10_000;

pub(super) async fn list(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
) -> Result<Response, KubeError> {
    let users = if user.is_admin() {
        ctx.store.list_users(MOST, 0).await?.0
    } else {
        vec![ctx.store.user_by_id(&user.id).await?]
    };
    let version = ctx.store.resource_version().await?;
    Ok(axum::Json(json!({
        "kind": "NamespaceList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": version.to_string()},
        "items": users.iter().map(namespace).collect::<Vec<_>>(),
    }))
    .into_response())
}

pub(super) async fn get_one(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path(ns): Path<String>,
) -> Result<Response, KubeError> {
    if ns != user.username && !user.is_admin() {
        return Err(KubeError::forbidden(format!(
            "namespaces \"{}\" is forbidden: User \"{}\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"{}\"",
            ns.escape_debug(),
            user.username,
            ns.escape_debug()
        )));
    }
    match ctx.store.user_by_username(&ns).await? {
        Some(owner) => Ok(axum::Json(namespace(&owner)).into_response()),
        None => Err(namespace_not_found(&ns)),
    }
}
