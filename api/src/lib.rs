//! Longin's HTTP API: REST over axum, with JSON errors everywhere, JWT auth, a request
//! audit log and a generated OpenAPI document.

pub mod access;
pub mod admin;
pub mod app_logs;
pub mod applications;
pub mod audit;
pub mod auth;
pub mod config;
pub mod containers;
pub mod context;
pub mod credentials;
pub mod dashboard;
pub mod deployments;
pub mod error;
pub mod extract;
pub mod github;
pub mod health;
pub mod instant;
pub mod kube;
pub mod listing;
pub mod logs;
pub mod nodes;
pub mod openapi;
pub mod pagination;
pub mod prometheus;
pub mod rendered;
pub mod resource;
pub mod retention;
pub mod slots;
pub mod system;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod webhooks;
pub mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use config::ApiConfig;
pub use context::ApiContext;
pub use error::AppError;

/// The OpenAPI document of every route (see [`openapi::document`]).
#[must_use]
pub fn openapi() -> serde_json::Value {
    openapi::document(&routes().split_for_parts().1)
}

fn routes() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(auth::router())
        .merge(tokens::router())
        .merge(admin::router())
        .merge(system::router())
        .merge(nodes::router())
        .merge(applications::router())
        .merge(deployments::router())
        .merge(webhooks::router())
        .merge(credentials::router())
        .merge(usage::router())
        .merge(containers::router())
        .merge(app_logs::router())
        .merge(kube::endpoint::router())
        .merge(health::router())
}

/// Routes the OpenAPI document leaves out, with why: `(method, path, reason)`. A test
/// checks that every other route the router serves is documented.
pub const UNDOCUMENTED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/openapi.json", "the document itself"),
    (
        "GET",
        "/metrics",
        "Prometheus' text format for scrapers (see prometheus.rs), not a JSON resource",
    ),
    (
        "GET",
        "/ws/metrics",
        "a WebSocket upgrade: OpenAPI cannot describe its messages (see ws::protocol)",
    ),
    (
        "GET",
        "/ws/logs",
        "a WebSocket upgrade: OpenAPI cannot describe its messages (see ws::protocol)",
    ),
    (
        "GET",
        "/ws/admin",
        "a WebSocket upgrade: OpenAPI cannot describe its messages (see ws::protocol)",
    ),
];

/// Every route, before state and layers: what [`app`] serves.
fn router() -> Router<ApiContext> {
    let (router, doc) = routes().split_for_parts();
    // Rendered once: the document is the same for every request.
    let doc = bytes::Bytes::from(openapi::document(&doc).to_string());
    router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], doc) }
            }),
        )
        .route("/metrics", axum::routing::get(prometheus::scrape))
        .merge(ws::router())
        .merge(dashboard::router())
        .merge(kube::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
}

/// The whole API as a router over `ctx`: what `longin serve` runs and tests call.
pub fn app(ctx: ApiContext) -> Router {
    router()
        .layer(axum::middleware::from_fn_with_state(
            ctx.audit.clone(),
            audit::record_request,
        ))
        .layer(DefaultBodyLimit::max(ctx.config.body_limit_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::map_response(no_sniff))
        .with_state(ctx)
}

/// Every answer says its content type is the one to trust: a browser never sniffs a
/// log line or an error body into HTML or script.
async fn no_sniff(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

/// A panic in a handler is a bug; the client still gets the JSON error shape.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown");
    tracing::error!(panic = detail, "handler panicked");
    let mut response = AppError::internal(anyhow::anyhow!("handler panicked")).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// `(method, path)` of every route the router serves, read from the router itself
    /// (axum shows them only through `Debug`: each route's id with its path, and with
    /// its method router, where a method the route does not serve is `None`).
    fn served_routes() -> BTreeSet<(String, String)> {
        let text = format!("{:?}", super::router());
        // The fallback router (after this) numbers its own routes from 1 too.
        let text = text.split("fallback_router:").next().unwrap_or_default();
        let mut paths = BTreeMap::new();
        let mut methods = BTreeMap::new();
        for chunk in text.split("RouteId(").skip(1) {
            let Some((id, rest)) = chunk.split_once("): ") else {
                continue;
            };
            if let Some(path) = rest.strip_prefix('"') {
                paths.insert(id, path.split('"').next().unwrap_or_default());
            } else if let Some(router) = rest.strip_prefix("MethodRouter(MethodRouter { ") {
                // Each method's endpoint, `None` where the route serves no such method.
                let fields = router.split(", fallback: ").next().unwrap_or_default();
                let served: Vec<String> = fields
                    .split(", ")
                    .filter_map(|field| field.split_once(": "))
                    .filter(|(method, endpoint)| *endpoint != "None" && *method != "head")
                    .map(|(method, _)| method.to_uppercase())
                    .collect();
                methods.insert(id, served);
            }
        }
        assert!(
            paths.len() > 20,
            "the router's Debug lists its paths: {text:.500}"
        );
        let mut routes = BTreeSet::new();
        for (id, path) in paths {
            // HEAD is served with every GET, and left out here.
            for method in methods.get(id).into_iter().flatten() {
                routes.insert((method.clone(), path.to_owned()));
            }
        }
        routes
    }

    #[test]
    fn the_document_describes_every_route_the_router_serves_but_the_listed_exceptions() {
        let doc = super::openapi();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("path item")
                    .keys()
                    .map(|method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        // The dashboard's pages and files answer HTML, CSS and JS, not JSON.
        let excepted: BTreeSet<(String, String)> = super::UNDOCUMENTED_ROUTES
            .iter()
            .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
            .chain(
                super::dashboard::ROUTES
                    .iter()
                    .map(|path| ("GET".to_owned(), (*path).to_owned())),
            )
            // The Kubernetes API is described by its own `/openapi/v2`.
            .chain(
                super::kube::ROUTES
                    .iter()
                    .map(|(method, path)| ((*method).to_owned(), (*path).to_owned())),
            )
            .collect();
        let served = served_routes();
        let missing: Vec<_> = served
            .iter()
            .filter(|r| !documented.contains(*r) && !excepted.contains(*r))
            .collect();
        assert!(missing.is_empty(), "served but not documented: {missing:?}");
        let unserved: Vec<_> = documented
            .union(&excepted)
            .filter(|r| !served.contains(*r))
            .collect();
        assert!(
            unserved.is_empty(),
            "documented or excepted but not served: {unserved:?}"
        );
        assert!(served.contains(&("GET".to_owned(), "/api/containers/{id}/logs".to_owned())));
        assert!(served.contains(&(
            "GET".to_owned(),
            "/api/applications/{name}/metrics".to_owned()
        )));
    }
}
