//! `applications` and their `scale` and `status` subresources.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use longin_crds::Application;
use longin_store::applications::{ApplicationError, ApplicationRecord, ApplyMode};

use crate::applications::{check_sources, quota_of};
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::AppError;
use crate::extract::AppBytes;

use super::object::{from_object, to_object};
use super::query::{ListOptions, WriteOptions, check_write, encode_continue};
use super::status::KubeError;
use super::table::{Include, table, wants_table};
use super::{GROUP, GROUP_VERSION, KubeUser, namespace_owner, watch};

/// Whose applications a list or watch covers.
#[derive(Debug, Clone)]
pub(super) enum Scope {
    /// One owner's (a namespace).
    Owner(String),
    /// Everyone's (an admin's `-A`).
    All,
}

impl Scope {
    pub(super) fn owner_id(&self) -> Option<&str> {
        match self {
            Self::Owner(id) => Some(id),
            Self::All => None,
        }
    }
}

/// `kubectl get -A`: every namespace the caller may see (all for an admin, their own
/// for anyone else).
pub(super) async fn list_everywhere(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, KubeError> {
    let scope = if user.is_admin() {
        Scope::All
    } else {
        Scope::Owner(user.id.clone())
    };
    let options = ListOptions::parse(raw.as_deref())?;
    list_or_watch(&ctx, &user, scope, options, &headers).await
}

pub(super) async fn list(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path(ns): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, KubeError> {
    let options = ListOptions::parse(raw.as_deref())?;
    let verb = if options.watch { "watch" } else { "list" };
    let owner = namespace_owner(&ctx, &user, &ns, verb).await?;
    list_or_watch(&ctx, &user, Scope::Owner(owner), options, &headers).await
}

async fn list_or_watch(
    ctx: &ApiContext,
    user: &AuthUser,
    scope: Scope,
    options: ListOptions,
    headers: &HeaderMap,
) -> Result<Response, KubeError> {
    let as_table = wants_table(headers);
    if options.watch {
        let slot = ctx.kube_watches.admit(&user.id).ok_or_else(|| {
            KubeError::from(AppError::TooManyRequests {
                retry_after_secs: 5,
            })
        })?;
        return Ok(watch::watch(ctx.clone(), scope, options, as_table, slot).await);
    }
    // Read first: a watch from this version then misses nothing written meanwhile.
    let version = ctx.store.resource_version().await?;
    let mut records: Vec<ApplicationRecord> = ctx
        .store
        .list_applications(scope.owner_id())
        .await?
        .into_iter()
        .filter(|r| {
            options.labels.matches(&r.labels) && options.fields.matches(&r.name, &r.owner_username)
        })
        .collect();
    records.sort_by(|a, b| (&a.owner_username, &a.name).cmp(&(&b.owner_username, &b.name)));
    if let Some((ns, name)) = &options.continue_after {
        records.retain(|r| (&r.owner_username, &r.name) > (ns, name));
    }
    let mut next = None;
    if let Some(limit) = options.limit
        && records.len() > limit
    {
        records.truncate(limit);
        next = records
            .last()
            .map(|r| encode_continue(&r.owner_username, &r.name));
    }
    let body = if as_table {
        let rows: Vec<&ApplicationRecord> = records.iter().collect();
        let mut t = table(&rows, options.include, Some(version), true);
        if let Some(next) = &next {
            t["metadata"]["continue"] = json!(next);
        }
        t
    } else {
        let mut metadata = json!({"resourceVersion": version.to_string()});
        if let Some(next) = &next {
            metadata["continue"] = json!(next);
        }
        json!({
            "kind": "ApplicationList",
            "apiVersion": GROUP_VERSION,
            "metadata": metadata,
            "items": records.iter().map(to_object).collect::<Vec<_>>(),
        })
    };
    Ok(axum::Json(body).into_response())
}

/// The named application of namespace `ns`, if the caller may `verb` it.
async fn find(
    ctx: &ApiContext,
    user: &AuthUser,
    ns: &str,
    name: &str,
    verb: &str,
) -> Result<(String, ApplicationRecord), KubeError> {
    let owner = namespace_owner(ctx, user, ns, verb).await?;
    if longin_crds::validate_dns1123_label(name).is_err() {
        return Err(KubeError::not_found(name));
    }
    let record = ctx
        .store
        .application(&owner, name)
        .await?
        .ok_or_else(|| KubeError::not_found(name))?;
    Ok((owner, record))
}

fn object_or_row(record: &ApplicationRecord, headers: &HeaderMap) -> Response {
    if wants_table(headers) {
        return axum::Json(table(&[record], Include::Metadata, None, true)).into_response();
    }
    axum::Json(to_object(record)).into_response()
}

pub(super) async fn get_one(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KubeError> {
    let (_, record) = find(&ctx, &user, &ns, &name, "get").await?;
    Ok(object_or_row(&record, &headers))
}

/// The status subresource is the controller's to write; reading it is reading the
/// object.
pub(super) async fn get_status(
    state: State<ApiContext>,
    user: KubeUser,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KubeError> {
    get_one(state, user, path, headers).await
}

/// A body as JSON: JSON itself, or YAML (which kubectl never sends, but curl users do).
fn body_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, KubeError> {
    let content_type = content_type(headers);
    let text =
        std::str::from_utf8(body).map_err(|_| KubeError::bad_request("the body is not UTF-8"))?;
    if content_type.contains("yaml") {
        let mut documents = longin_crds::document::parse_yaml_documents(text)
            .map_err(|e| KubeError::bad_request(format!("the body is not YAML: {e}")))?;
        if documents.len() != 1 {
            return Err(KubeError::bad_request("the body must be one document"));
        }
        return Ok(documents.remove(0));
    }
    serde_json::from_str(text)
        .map_err(|e| KubeError::bad_request(format!("the body is not JSON: {e}")))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Writes `app` for `owner` through the store's apply, with Longin's rules.
async fn write(
    ctx: &ApiContext,
    user: &AuthUser,
    owner: &str,
    app: Application,
    mode: ApplyMode,
) -> Result<ApplicationRecord, KubeError> {
    let name = app.metadata.name.clone();
    let apps = [app];
    check_sources(user, &apps).map_err(|e| KubeError::from(e).about(&name))?;
    let quota = quota_of(ctx, owner).await.map_err(KubeError::from)?;
    let mut applied = ctx
        .store
        .apply_applications(owner, &apps, mode, ctx.config.port_range, &quota)
        .await
        .map_err(|e| match e {
            ApplicationError::StaleResourceVersion { .. } => conflict(&name, MODIFIED.to_owned()),
            other => KubeError::from(AppError::from(other)).about(&name),
        })?;
    let applied = applied.pop().ok_or_else(|| {
        KubeError::from(AppError::internal(anyhow::anyhow!(
            "an apply applied nothing"
        )))
    })?;
    tracing::info!(app = %name, owner = %applied.record.owner_username, action = ?applied.action, via = "kubernetes", "application applied");
    Ok(applied.record)
}

pub(super) async fn create(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path(ns): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<AppBytes, AppError>,
) -> Result<Response, KubeError> {
    check_write(raw.as_deref())?;
    let owner = namespace_owner(&ctx, &user, &ns, "create").await?;
    let AppBytes(body) = body?;
    let app = from_object(body_json(&headers, &body)?, &ns, None)?;
    let record = write(&ctx, &user, &owner, app, ApplyMode::CreateOnly).await?;
    Ok((StatusCode::CREATED, axum::Json(to_object(&record))).into_response())
}

pub(super) async fn replace(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<AppBytes, AppError>,
) -> Result<Response, KubeError> {
    check_write(raw.as_deref())?;
    let (owner, _) = find(&ctx, &user, &ns, &name, "update").await?;
    let AppBytes(body) = body?;
    let app = from_object(body_json(&headers, &body)?, &ns, Some(&name))?;
    let record = write(&ctx, &user, &owner, app, ApplyMode::Apply).await?;
    Ok(axum::Json(to_object(&record)).into_response())
}

/// How a patch changes an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    /// RFC 7386: `null` deletes.
    Merge,
    /// RFC 6902.
    Json,
    /// Server-side apply: the applied configuration merged over what is stored, or
    /// created.
    Apply,
}

fn patch_kind(headers: &HeaderMap) -> Result<PatchKind, KubeError> {
    match content_type(headers).as_str() {
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/apply-patch+yaml" => Ok(PatchKind::Apply),
        "application/strategic-merge-patch+json" => Err(KubeError::unsupported_media_type(
            "strategic merge patch is not supported for applications; use a merge patch (--type merge) or a JSON patch (--type json)",
        )),
        other => Err(KubeError::unsupported_media_type(format!(
            "the body of a PATCH is application/merge-patch+json, application/json-patch+json or application/apply-patch+yaml, not {other:?}"
        ))),
    }
}

/// `target` with `patch` applied.
fn apply_patch(kind: PatchKind, mut target: Value, patch: &Value) -> Result<Value, KubeError> {
    match kind {
        PatchKind::Merge | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(KubeError::bad_request("a merge patch is a JSON object"));
            }
            json_patch::merge(&mut target, patch);
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| KubeError::bad_request(format!("not a JSON patch: {e}")))?;
            json_patch::patch(&mut target, &ops)
                .map_err(|e| KubeError::invalid("", vec![("<patch>".to_owned(), e.to_string())]))?;
        }
    }
    Ok(target)
}

/// Whether the patch itself names a resourceVersion (a precondition the client set);
/// otherwise a patch lost to a concurrent write is simply applied again.
fn names_resource_version(kind: PatchKind, patch: &Value) -> bool {
    match kind {
        PatchKind::Merge | PatchKind::Apply => !patch["metadata"]["resourceVersion"].is_null(),
        PatchKind::Json => patch.as_array().is_some_and(|ops| {
            ops.iter().any(|op| {
                op["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/metadata/resourceVersion"))
            })
        }),
    }
}

/// What Kubernetes says of a write from a stale resourceVersion (kubectl knows it).
const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// Tries of a patch that keeps meeting concurrent writes before it gives up with 409.
const PATCH_TRIES: usize = 5;

pub(super) async fn patch(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<AppBytes, AppError>,
) -> Result<Response, KubeError> {
    let options = check_write(raw.as_deref())?;
    let kind = patch_kind(&headers)?;
    let owner = namespace_owner(&ctx, &user, &ns, "patch").await?;
    let AppBytes(body) = body?;
    let patch = if kind == PatchKind::Apply {
        apply_configuration(&options, &headers, &body)?
    } else {
        serde_json::from_slice::<Value>(&body)
            .map_err(|e| KubeError::bad_request(format!("the patch is not JSON: {e}")))?
    };
    let mut tries = 0;
    loop {
        tries += 1;
        let current = ctx.store.application(&owner, &name).await?;
        let app = match (current, kind) {
            (None, PatchKind::Apply) => {
                let app = from_object(patch.clone(), &ns, Some(&name))?;
                let record = write(&ctx, &user, &owner, app, ApplyMode::CreateOnly).await?;
                return Ok((StatusCode::CREATED, axum::Json(to_object(&record))).into_response());
            }
            (None, _) => return Err(KubeError::not_found(&name)),
            (Some(current), _) => {
                let patched = apply_patch(kind, to_object(&current), &patch)?;
                from_object(patched, &ns, Some(&name))?
            }
        };
        match write(&ctx, &user, &owner, app, ApplyMode::Apply).await {
            Err(err)
                if err.code == StatusCode::CONFLICT
                    && err.message.ends_with(MODIFIED)
                    && !names_resource_version(kind, &patch)
                    && tries < PATCH_TRIES => {}
            Err(err) => return Err(err),
            Ok(record) => return Ok(axum::Json(to_object(&record)).into_response()),
        }
    }
}

/// The body of a server-side apply: one YAML (or JSON) object, with a field manager
/// as the API requires.
fn apply_configuration(
    options: &WriteOptions,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, KubeError> {
    if options.field_manager.as_deref().is_none_or(str::is_empty) {
        return Err(KubeError::bad_request(
            "PATCH with content type application/apply-patch+yaml requires fieldManager",
        ));
    }
    let mut yaml_headers = headers.clone();
    yaml_headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/yaml"),
    );
    body_json(&yaml_headers, body)
}

pub(super) async fn delete(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<AppBytes, AppError>,
) -> Result<Response, KubeError> {
    check_write(raw.as_deref())?;
    let (owner, record) = find(&ctx, &user, &ns, &name, "delete").await?;
    let AppBytes(body) = body?;
    if !body.is_empty() {
        let options = body_json(&headers, &body)?;
        check_preconditions(&options, &record)?;
    }
    let controller_active = ctx.store.lease_held(&ctx.config.controller_lease).await?;
    let gone = ctx
        .store
        .delete_application(&owner, &name, controller_active)
        .await
        .map_err(|e| KubeError::from(AppError::from(e)).about(&name))?;
    tracing::info!(app = %name, owner = %record.owner_username, gone, via = "kubernetes", "application deletion requested");
    if gone {
        return Ok(axum::Json(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": GROUP, "kind": "applications", "uid": record.id},
        }))
        .into_response());
    }
    // Still there until the controller has removed its containers: a watch sees it
    // DELETED then, which is what `kubectl delete` waits for.
    let record = ctx
        .store
        .application(&owner, &name)
        .await?
        .unwrap_or(record);
    Ok(axum::Json(to_object(&record)).into_response())
}

/// DeleteOptions' preconditions: the object must still be the one the client saw.
fn check_preconditions(options: &Value, record: &ApplicationRecord) -> Result<(), KubeError> {
    let preconditions = &options["preconditions"];
    if let Some(uid) = preconditions["uid"].as_str()
        && uid != record.id
    {
        return Err(conflict(
            &record.name,
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                record.id
            ),
        ));
    }
    if let Some(rv) = preconditions["resourceVersion"].as_str()
        && rv != record.resource_version.to_string()
    {
        return Err(conflict(
            &record.name,
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                record.resource_version
            ),
        ));
    }
    Ok(())
}

fn conflict(name: &str, message: String) -> KubeError {
    KubeError::new(
        StatusCode::CONFLICT,
        "Conflict",
        format!("Operation cannot be fulfilled on applications.{GROUP} \"{name}\": {message}"),
    )
    .about(name)
}

/// The `autoscaling/v1` Scale of an application.
fn scale_of(record: &ApplicationRecord) -> Value {
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": record.name,
            "namespace": record.owner_username,
            "uid": record.id,
            "resourceVersion": record.resource_version.to_string(),
            "creationTimestamp": longin_store::time::rfc3339(record.created_at),
        },
        "spec": {"replicas": record.spec.replicas},
        "status": {
            "replicas": record.status.replicas,
            "selector": format!("io.longin.app-name={}", record.name),
        },
    })
}

pub(super) async fn get_scale(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, KubeError> {
    let (_, record) = find(&ctx, &user, &ns, &name, "get").await?;
    Ok(axum::Json(scale_of(&record)).into_response())
}

pub(super) async fn replace_scale(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<AppBytes, AppError>,
) -> Result<Response, KubeError> {
    check_write(raw.as_deref())?;
    let (owner, record) = find(&ctx, &user, &ns, &name, "update").await?;
    let AppBytes(body) = body?;
    let scale = body_json(&headers, &body)?;
    if let Some(rv) = scale["metadata"]["resourceVersion"].as_str()
        && rv != record.resource_version.to_string()
    {
        return Err(conflict(&name, MODIFIED.to_owned()));
    }
    set_replicas(&ctx, &user, &owner, &record, &scale).await
}

pub(super) async fn patch_scale(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<AppBytes, AppError>,
) -> Result<Response, KubeError> {
    check_write(raw.as_deref())?;
    let kind = patch_kind(&headers)?;
    if kind == PatchKind::Apply {
        return Err(KubeError::unsupported_media_type(
            "apply the application itself, not its scale",
        ));
    }
    let (owner, record) = find(&ctx, &user, &ns, &name, "patch").await?;
    let AppBytes(body) = body?;
    let patch: Value = serde_json::from_slice(&body)
        .map_err(|e| KubeError::bad_request(format!("the patch is not JSON: {e}")))?;
    let scale = apply_patch(kind, scale_of(&record), &patch)?;
    set_replicas(&ctx, &user, &owner, &record, &scale).await
}

/// Writes `scale.spec.replicas` into the application, as `kubectl scale` asks.
async fn set_replicas(
    ctx: &ApiContext,
    user: &AuthUser,
    owner: &str,
    record: &ApplicationRecord,
    scale: &Value,
) -> Result<Response, KubeError> {
    let mut object = to_object(record);
    object["spec"]["replicas"] = scale["spec"]["replicas"].clone();
    // The scale's own version was checked; the write must not fail on it again.
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    let app = from_object(object, &record.owner_username, Some(&record.name))?;
    let record = write(ctx, user, owner, app, ApplyMode::Apply).await?;
    Ok(axum::Json(scale_of(&record)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_delete_with_null_and_keep_annotations_verbatim() {
        let target = json!({"metadata": {"annotations": {"a": "1", "b": "2"}}, "spec": {"replicas": 1, "image": "x"}});
        let patched = apply_patch(
            PatchKind::Merge,
            target,
            &json!({"metadata": {"annotations": {"a": null, "kubectl.kubernetes.io/last-applied-configuration": "{\"x\":1}\n"}}, "spec": {"replicas": 3}}),
        )
        .expect("patch");
        assert_eq!(
            patched,
            json!({"metadata": {"annotations": {"b": "2", "kubectl.kubernetes.io/last-applied-configuration": "{\"x\":1}\n"}}, "spec": {"replicas": 3, "image": "x"}})
        );
        assert!(apply_patch(PatchKind::Merge, json!({}), &json!([1])).is_err());
    }

    #[test]
    fn json_patches_apply_or_say_why_not() {
        let patched = apply_patch(
            PatchKind::Json,
            json!({"spec": {"replicas": 1}}),
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]),
        )
        .expect("patch");
        assert_eq!(patched["spec"]["replicas"], 2);
        let err = apply_patch(
            PatchKind::Json,
            json!({"spec": {}}),
            &json!([{"op": "remove", "path": "/spec/nothing"}]),
        )
        .expect_err("bad path");
        assert_eq!(err.code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(names_resource_version(
            PatchKind::Json,
            &json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "5"}])
        ));
        assert!(!names_resource_version(
            PatchKind::Merge,
            &json!({"spec": {"replicas": 2}})
        ));
    }

    #[test]
    fn patch_types_are_told_apart_and_strategic_merge_is_refused() {
        let mut headers = HeaderMap::new();
        for (content_type, expected) in [
            ("application/merge-patch+json", Some(PatchKind::Merge)),
            (
                "application/json-patch+json; charset=utf-8",
                Some(PatchKind::Json),
            ),
            ("application/apply-patch+yaml", Some(PatchKind::Apply)),
            ("application/strategic-merge-patch+json", None),
            ("text/plain", None),
        ] {
            headers.insert(header::CONTENT_TYPE, content_type.parse().expect("header"));
            match (patch_kind(&headers), expected) {
                (Ok(kind), Some(expected)) => assert_eq!(kind, expected),
                (Err(err), None) => assert_eq!(err.code, StatusCode::UNSUPPORTED_MEDIA_TYPE),
                (got, expected) => panic!("{content_type}: {got:?} vs {expected:?}"),
            }
        }
    }
}
