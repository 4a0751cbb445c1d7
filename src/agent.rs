//! `longin agent`: the node agent of a Swarm (see `longin_controller::agent`). One
//! route that matters, `GET /v1/report` with the installation's bearer token: a
//! reading of every running task of the installation on this node's engine
//! (`DOCKER_HOST`). `GET /healthz` answers without a token, for the engine's checks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use longin_controller::agent;
use longin_controller::runtime::DockerRuntime;
use tokio_util::sync::CancellationToken;

use crate::cli::AgentArgs;

/// A shorter token is no secret worth the name.
const MIN_TOKEN_LEN: usize = 32;

/// How long one engine call of a report may take.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

struct Agent {
    engine: DockerRuntime,
    /// This node's hostname, as its reports name it.
    node: String,
    token: String,
    /// One report at a time: a second caller waits for the engine rather than double
    /// its load.
    reporting: tokio::sync::Mutex<()>,
}

/// Runs the agent until `cancel`.
///
/// # Errors
/// The token is too short, the engine does not answer, or the address cannot be bound.
pub async fn run(args: &AgentArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    if args.token.len() < MIN_TOKEN_LEN {
        anyhow::bail!("LONGIN_AGENT_TOKEN must be at least {MIN_TOKEN_LEN} characters");
    }
    let engine = DockerRuntime::connect(&args.instance, ENGINE_TIMEOUT)
        .await
        .context("connecting to this node's engine (DOCKER_HOST)")?
        .with_installation(&args.installation);
    let node = agent::node_name(&engine)
        .await
        .context("reading this node's engine")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %args.listen, installation = %args.installation, "node agent listening");
    let state = Arc::new(Agent {
        engine,
        node,
        token: args.token.clone(),
        reporting: tokio::sync::Mutex::new(()),
    });
    let router = axum::Router::new()
        .route("/v1/report", get(report))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
        .context("serving")?;
    tracing::info!("node agent stopped");
    Ok(())
}

async fn report(State(agent): State<Arc<Agent>>, headers: HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !agent::authorized(given, &agent.token) {
        // Debug, not warn: anyone who reaches the port (a tenant's container can)
        // could otherwise fill the node's logs.
        tracing::debug!("node agent: a request without the installation's token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized\n",
        )
            .into_response();
    }
    let _one = agent.reporting.lock().await;
    match agent::node_report(&agent.engine, &agent.node).await {
        Ok(report) => {
            tracing::debug!(tasks = report.tasks.len(), "node agent report");
            axum::Json(report).into_response()
        }
        Err(err) => {
            tracing::warn!(error = %err, "node agent cannot read its engine");
            (StatusCode::SERVICE_UNAVAILABLE, format!("{err}\n")).into_response()
        }
    }
}
