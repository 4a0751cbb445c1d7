//! The reconcile controller: keeps the Docker engine matching the Application resources.
//!
//! The reconcile loop itself lands with its issue. Until then the controller takes its
//! place in the process lifecycle (started by `longin serve`, stopped with it) and does
//! no work, so that `serve` already has the shape it will keep.

use tokio_util::sync::CancellationToken;

/// Runs the controller until `cancel` fires.
pub async fn run(store: longin_store::Store, cancel: CancellationToken) {
    tracing::info!(
        backend = store.backend().name(),
        "controller started; no reconcile loop is built yet, so it idles"
    );
    cancel.cancelled().await;
    tracing::info!("controller stopped");
}
