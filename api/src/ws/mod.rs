//! Live streams over WebSocket: `/ws/metrics` (an app's metrics cycles and status
//! changes), `/ws/logs` (containers' output), `/ws/admin` (every app's status changes
//! and reconcile errors; admins only). The protocol is in [`protocol`]; each
//! connection's pending messages in [`outbox`]; what it follows in [`connection`].

pub mod build_log;
pub mod connection;
pub mod outbox;
pub mod protocol;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use axum::routing::get;

use crate::context::ApiContext;
use connection::Kind;

pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/ws/metrics", get(metrics))
        .route("/ws/logs", get(logs))
        .route("/ws/admin", get(admin))
}

/// Largest client message: subscriptions are small.
const MAX_MESSAGE: usize = 64 * 1024;

fn upgrade(ws: WebSocketUpgrade, ctx: ApiContext, kind: Kind) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| connection::run(socket, ctx, kind))
}

async fn metrics(State(ctx): State<ApiContext>, ws: WebSocketUpgrade) -> Response {
    upgrade(ws, ctx, Kind::Metrics)
}

async fn logs(State(ctx): State<ApiContext>, ws: WebSocketUpgrade) -> Response {
    upgrade(ws, ctx, Kind::Logs)
}

async fn admin(State(ctx): State<ApiContext>, ws: WebSocketUpgrade) -> Response {
    upgrade(ws, ctx, Kind::Admin)
}
