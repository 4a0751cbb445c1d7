//! Longin's HTTP API: REST over axum, with JSON errors everywhere, JWT auth, a request
//! audit log and a generated OpenAPI document.

pub mod admin;
pub mod app_logs;
pub mod applications;
pub mod audit;
pub mod auth;
pub mod config;
pub mod containers;
pub mod context;
pub mod error;
pub mod extract;
pub mod health;
pub mod logs;
pub mod pagination;
pub mod prometheus;
pub mod rendered;
pub mod resource;
pub mod retention;
pub mod usage;
pub mod users;
pub mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use config::ApiConfig;
pub use context::ApiContext;
pub use error::AppError;

#[derive(OpenApi)]
#[openapi(
    info(title = "Longin API", description = "Self-hosted application platform."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts, sign-in and sessions"),
        (name = "applications", description = "Application resources"),
        (name = "containers", description = "Containers and their logs"),
        (name = "admin", description = "User management and the audit log (admins only)"),
        (name = "health", description = "Probes"),
    )
)]
struct ApiDoc;

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
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route, generated from the handlers' annotations.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

fn routes() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(admin::router())
        .merge(applications::router())
        .merge(usage::router())
        .merge(containers::router())
        .merge(app_logs::router())
        .merge(health::router())
}

/// The whole API as a router over `ctx`: what `longin serve` runs and tests call.
pub fn app(ctx: ApiContext) -> Router {
    let (router, doc) = routes().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/metrics", axum::routing::get(prometheus::scrape))
        .merge(ws::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
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
