//! `GET /api/admin/nodes`: the machines applications run on — the Swarm's nodes when
//! the engine is a Swarm manager, else the one local engine — with the replicas of
//! this installation running on each.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(nodes))
}

/// The engine and its machines.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NodesView {
    /// `docker` (one machine) or `swarm`, as the controller is configured.
    engine: String,
    /// On Swarm: `host` (each replica on its node's port) or `ingress` (the routing
    /// mesh: every node's port reaches every replica).
    publish_mode: Option<String>,
    nodes: Vec<NodeView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NodeView {
    id: String,
    hostname: String,
    /// Where the node's published ports answer (empty for the local engine: the
    /// controller's bind address).
    address: String,
    /// `manager`, `worker`, or `standalone` (the local engine).
    role: String,
    /// `ready`, `down`, `disconnected` or `unknown`.
    state: String,
    /// `active`, `pause` or `drain`.
    availability: String,
    engine_version: String,
    /// The Swarm's leading manager.
    leader: bool,
    /// Replicas of this installation's applications running on it.
    replicas_running: usize,
    /// On Swarm: whether this installation's node agent runs there (without it the
    /// node's replicas have no metrics); none on the local engine, which needs none.
    agent_running: Option<bool>,
}

/// How long the engine has to answer.
const ENGINE_WAIT: Duration = Duration::from_secs(5);

/// The machines applications run on.
#[utoipa::path(
    get, path = "/api/admin/nodes", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The engine's machines", body = NodesView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "The engine does not answer", body = ErrorBody),
    )
)]
async fn nodes(
    State(ctx): State<ApiContext>,
    _admin: AdminUser,
) -> Result<axum::Json<NodesView>, AppError> {
    let swarm = ctx.config.engine == longin_controller::EngineKind::Swarm;
    let installation = ctx.store.installation_id().await?;
    let asked = async {
        let docker = bollard::Docker::connect_with_defaults()
            .map_err(|e| format!("cannot connect to the engine: {e}"))?;
        if swarm {
            swarm_nodes(&docker, &installation).await
        } else {
            local_node(&docker, &installation).await
        }
    };
    let nodes = match tokio::time::timeout(ENGINE_WAIT, asked).await {
        Ok(Ok(nodes)) => nodes,
        Ok(Err(why)) => return Err(AppError::Unavailable(why)),
        Err(_) => {
            return Err(AppError::Unavailable(format!(
                "the engine did not answer within {} s",
                ENGINE_WAIT.as_secs()
            )));
        }
    };
    Ok(axum::Json(NodesView {
        engine: if swarm { "swarm" } else { "docker" }.to_owned(),
        publish_mode: swarm.then(|| ctx.config.publish.as_str().to_owned()),
        nodes,
    }))
}

/// This installation's services or containers (not another's on the same engine).
fn managed(installation: &str) -> HashMap<String, Vec<String>> {
    use longin_controller::labels;
    HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
            format!("{}={installation}", labels::INSTALLATION),
        ],
    )])
}

async fn swarm_nodes(
    docker: &bollard::Docker,
    installation: &str,
) -> Result<Vec<NodeView>, String> {
    let nodes = longin_controller::swarm::list_nodes(docker)
        .await
        .map_err(|e| e.to_string())?;
    let running = running_per_node(docker, managed(installation)).await?;
    let agents = running_per_node(
        docker,
        HashMap::from([(
            "label".to_owned(),
            vec![format!(
                "{}={installation}",
                longin_controller::agent::AGENT_LABEL
            )],
        )]),
    )
    .await?;
    Ok(nodes
        .into_iter()
        .map(|n| NodeView {
            replicas_running: running.get(&n.id).copied().unwrap_or(0),
            agent_running: Some(agents.contains_key(&n.id)),
            id: n.id,
            hostname: n.hostname,
            address: n.address,
            role: n.role,
            state: n.state,
            availability: n.availability,
            engine_version: n.engine_version,
            leader: n.leader,
        })
        .collect())
}

/// Running tasks per node id of the services `filters` selects.
async fn running_per_node(
    docker: &bollard::Docker,
    filters: HashMap<String, Vec<String>>,
) -> Result<HashMap<String, usize>, String> {
    let services = docker
        .list_services(Some(bollard::query_parameters::ListServicesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("cannot list services: {e}"))?;
    let mut running: HashMap<String, usize> = HashMap::new();
    let ids: Vec<String> = services.into_iter().filter_map(|s| s.id).collect();
    if ids.is_empty() {
        return Ok(running);
    }
    let tasks = docker
        .list_tasks(Some(bollard::query_parameters::ListTasksOptions {
            filters: Some(HashMap::from([
                ("service".to_owned(), ids),
                ("desired-state".to_owned(), vec!["running".to_owned()]),
            ])),
        }))
        .await
        .map_err(|e| format!("cannot list tasks: {e}"))?;
    for task in tasks {
        let is_running = task
            .status
            .as_ref()
            .and_then(|s| s.state)
            .is_some_and(|s| s == bollard::models::TaskState::RUNNING);
        if let (true, Some(node)) = (is_running, task.node_id) {
            *running.entry(node).or_default() += 1;
        }
    }
    Ok(running)
}

async fn local_node(docker: &bollard::Docker, installation: &str) -> Result<Vec<NodeView>, String> {
    let info = docker
        .info()
        .await
        .map_err(|e| format!("the engine does not answer: {e}"))?;
    let mut filters = managed(installation);
    filters.insert("status".to_owned(), vec!["running".to_owned()]);
    let running = docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("cannot list containers: {e}"))?
        .len();
    Ok(vec![NodeView {
        id: info.id.unwrap_or_default(),
        hostname: info.name.unwrap_or_default(),
        address: String::new(),
        role: "standalone".to_owned(),
        state: "ready".to_owned(),
        availability: "active".to_owned(),
        engine_version: info.server_version.unwrap_or_default(),
        leader: false,
        replicas_running: running,
        agent_running: None,
    }])
}
