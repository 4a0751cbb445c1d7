//! `v1` Events of a namespace's applications, made from what Longin records: each
//! revision's rollout (queued, building, rolling out, rolled out, failed) and each
//! replica's restarts. `kubectl describe` lists them under "Events".

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use longin_store::applications::ApplicationRecord;
use longin_store::containers::ContainerRecord;
use longin_store::deployments::{DeploymentRecord, DeploymentStatus};
use longin_store::time::rfc3339;

use crate::context::ApiContext;

use super::status::KubeError;
use super::{GROUP_VERSION, KubeUser, namespace_owner};

/// Revisions of each application shown as events, newest first.
const REVISIONS: i64 = 20;
const COMPONENT: &str = "longin-controller";

/// What `fieldSelector` asks of the events' `involvedObject`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Involved {
    name: Option<String>,
    uid: Option<String>,
    /// False when the selector names a kind other than Application: no events.
    applications: bool,
}

fn involved(raw: Option<&str>) -> Result<Involved, KubeError> {
    let mut wanted = Involved {
        applications: true,
        ..Involved::default()
    };
    let selector = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "fieldSelector")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (field, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .ok_or_else(|| {
                KubeError::bad_request(format!("fieldSelector: {term:?} is not field=value"))
            })?;
        let value = value.trim().to_owned();
        match field.trim() {
            "involvedObject.name" => wanted.name = Some(value),
            "involvedObject.uid" => wanted.uid = Some(value),
            "involvedObject.kind" => wanted.applications &= value == "Application",
            "involvedObject.apiVersion" => wanted.applications &= value == GROUP_VERSION,
            // The namespace is the path's; an object's own version changes nothing.
            "involvedObject.namespace"
            | "involvedObject.resourceVersion"
            | "metadata.namespace" => {}
            other => {
                return Err(KubeError::bad_request(format!(
                    "fieldSelector: {other} is not a field events are selected by here"
                )));
            }
        }
    }
    Ok(wanted)
}

pub(super) async fn list(
    State(ctx): State<ApiContext>,
    KubeUser(user): KubeUser,
    Path(ns): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, KubeError> {
    let owner = namespace_owner(&ctx, &user, &ns, "list").await?;
    let wanted = involved(raw.as_deref())?;
    let version = ctx.store.resource_version().await?;
    let mut items = Vec::new();
    if wanted.applications {
        let apps = match &wanted.name {
            Some(name) => ctx
                .store
                .application(&owner, name)
                .await?
                .into_iter()
                .collect(),
            None => ctx.store.list_applications(Some(&owner)).await?,
        };
        for app in apps
            .iter()
            .filter(|a| wanted.uid.as_ref().is_none_or(|uid| *uid == a.id))
        {
            for deployment in ctx
                .store
                .application_deployments(&app.id, REVISIONS)
                .await?
            {
                items.push(rollout_event(app, &deployment));
            }
            for container in ctx.store.application_containers(&app.id).await? {
                if container.restart_count > 0 {
                    items.push(restart_event(app, &container));
                }
            }
        }
    }
    items.sort_by(|a, b| {
        a["lastTimestamp"]
            .as_str()
            .cmp(&b["lastTimestamp"].as_str())
    });
    Ok(axum::Json(json!({
        "kind": "EventList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": version.to_string()},
        "items": items,
    }))
    .into_response())
}

fn involved_object(app: &ApplicationRecord) -> Value {
    json!({
        "kind": "Application",
        "namespace": app.owner_username,
        "name": app.name,
        "uid": app.id,
        "apiVersion": GROUP_VERSION,
        "resourceVersion": app.resource_version.to_string(),
    })
}

#[allow(clippy::too_many_arguments)]
fn event(
    app: &ApplicationRecord,
    id: &str,
    kind: &str,
    reason: &str,
    message: String,
    first_ms: i64,
    last_ms: i64,
    count: i64,
) -> Value {
    json!({
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": format!("{}.{id}", app.name),
            "namespace": app.owner_username,
            "uid": id,
            "creationTimestamp": rfc3339(first_ms),
        },
        "involvedObject": involved_object(app),
        "reason": reason,
        "message": message,
        "source": {"component": COMPONENT},
        "firstTimestamp": rfc3339(first_ms),
        "lastTimestamp": rfc3339(last_ms),
        "count": count,
        "type": kind,
        "reportingComponent": COMPONENT,
        "reportingInstance": "",
    })
}

/// One revision's latest news.
fn rollout_event(app: &ApplicationRecord, d: &DeploymentRecord) -> Value {
    let (reason, kind) = match d.status {
        DeploymentStatus::Queued => ("Queued", "Normal"),
        DeploymentStatus::Building => ("Building", "Normal"),
        DeploymentStatus::Deploying => ("RollingOut", "Normal"),
        DeploymentStatus::Succeeded => ("RolledOut", "Normal"),
        DeploymentStatus::Failed => ("RolloutFailed", "Warning"),
        DeploymentStatus::Cancelled => ("Cancelled", "Normal"),
        DeploymentStatus::Superseded => ("Superseded", "Normal"),
    };
    let mut message = format!("revision {} ({})", d.revision, d.triggered_by);
    if let Some(sha) = &d.commit_sha {
        message.push_str(&format!(" of commit {}", sha.get(..12).unwrap_or(sha)));
    }
    if !d.image.is_empty() {
        message.push_str(&format!(": {}", d.image));
    }
    message.push_str(&format!(" {}", d.status.as_str()));
    if !d.message.is_empty() {
        message.push_str(&format!(": {}", d.message));
    }
    let last = d.finished_at.or(d.started_at).unwrap_or(d.created_at);
    event(app, &d.id, kind, reason, message, d.created_at, last, 1)
}

fn restart_event(app: &ApplicationRecord, c: &ContainerRecord) -> Value {
    let at = c.started_at.unwrap_or(app.updated_at);
    event(
        app,
        &c.id,
        "Warning",
        "Restarted",
        format!(
            "replica {} was restarted {} time{}",
            c.replica_index,
            c.restart_count,
            if c.restart_count == 1 { "" } else { "s" }
        ),
        at,
        at,
        c.restart_count,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_describe_s_selector_is_understood() {
        let wanted = involved(Some(
            "fieldSelector=involvedObject.name%3Dweb%2CinvolvedObject.namespace%3Dalice%2CinvolvedObject.kind%3DApplication%2CinvolvedObject.uid%3Dabc",
        ))
        .expect("selector");
        assert_eq!(
            wanted,
            Involved {
                name: Some("web".to_owned()),
                uid: Some("abc".to_owned()),
                applications: true
            }
        );
        assert!(
            !involved(Some("fieldSelector=involvedObject.kind%3DPod"))
                .expect("pod")
                .applications
        );
        assert!(involved(Some("fieldSelector=reason%3DFailed")).is_err());
        assert!(involved(None).expect("none").applications);
    }
}
