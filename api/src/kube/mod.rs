//! A Kubernetes-compatible face of the same store and rules, so that `kubectl` manages
//! Applications unchanged: discovery, `/openapi/v2`, get/list (JSON and Table), watch,
//! create, replace, merge/JSON/apply patches, `scale`, delete, events, and errors as
//! `Status` objects.
//!
//! Namespaces are owners: `namespaces/alice/applications/web` is alice's `web`. A user
//! reaches only their own namespace (any other is Forbidden, whether or not it
//! exists); an admin reaches every one. Everything goes through the store's own writes,
//! so validation, quotas, ports, generation and resourceVersion are Longin's.

mod applications;
pub mod discovery;
pub mod endpoint;
mod events;
mod namespaces;
pub mod object;
mod query;
pub mod selectors;
pub mod status;
pub mod table;
mod watch;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::get;

use crate::auth::AuthUser;
use crate::context::ApiContext;

pub use status::KubeError;

pub const GROUP: &str = "longin.io";
pub const VERSION: &str = "v1";
pub const GROUP_VERSION: &str = "longin.io/v1";

/// The routes, `(method, path)`: not in the OpenAPI document, whose subject is
/// Longin's own API (Kubernetes clients read `/openapi/v2` instead).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/version"),
    ("GET", "/api"),
    ("GET", "/api/v1"),
    ("GET", "/apis"),
    ("GET", "/apis/longin.io"),
    ("GET", "/apis/longin.io/v1"),
    ("GET", "/openapi/v2"),
    ("GET", "/api/v1/namespaces"),
    ("GET", "/api/v1/namespaces/{ns}"),
    ("GET", "/api/v1/namespaces/{ns}/events"),
    ("GET", "/apis/longin.io/v1/applications"),
    ("GET", "/apis/longin.io/v1/namespaces/{ns}/applications"),
    ("POST", "/apis/longin.io/v1/namespaces/{ns}/applications"),
    (
        "GET",
        "/apis/longin.io/v1/namespaces/{ns}/applications/{name}",
    ),
    (
        "PUT",
        "/apis/longin.io/v1/namespaces/{ns}/applications/{name}",
    ),
    (
        "PATCH",
        "/apis/longin.io/v1/namespaces/{ns}/applications/{name}",
    ),
    (
        "DELETE",
        "/apis/longin.io/v1/namespaces/{ns}/applications/{name}",
    ),
    (
        "GET",
        "/apis/longin.io/v1/namespaces/{ns}/applications/{name}/scale",
    ),
    (
        "PUT",
        "/apis/longin.io/v1/namespaces/{ns}/applications/{name}/scale",
    ),
    (
        "PATCH",
        "/apis/longin.io/v1/namespaces/{ns}/applications/{name}/scale",
    ),
    (
        "GET",
        "/apis/longin.io/v1/namespaces/{ns}/applications/{name}/status",
    ),
];

/// The Kubernetes API's routes.
pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/version", get(discovery::version))
        .route("/api", get(discovery::core_versions))
        .route("/api/v1", get(discovery::core_resources))
        .route("/apis", get(discovery::groups))
        .route("/apis/longin.io", get(discovery::the_group))
        .route("/apis/longin.io/v1", get(discovery::resources))
        .route("/openapi/v2", get(discovery::openapi_v2))
        .route("/api/v1/namespaces", get(namespaces::list))
        .route("/api/v1/namespaces/{ns}", get(namespaces::get_one))
        .route("/api/v1/namespaces/{ns}/events", get(events::list))
        .route(
            "/apis/longin.io/v1/applications",
            get(applications::list_everywhere),
        )
        .route(
            "/apis/longin.io/v1/namespaces/{ns}/applications",
            get(applications::list).post(applications::create),
        )
        .route(
            "/apis/longin.io/v1/namespaces/{ns}/applications/{name}",
            get(applications::get_one)
                .put(applications::replace)
                .patch(applications::patch)
                .delete(applications::delete),
        )
        .route(
            "/apis/longin.io/v1/namespaces/{ns}/applications/{name}/scale",
            get(applications::get_scale)
                .put(applications::replace_scale)
                .patch(applications::patch_scale),
        )
        .route(
            "/apis/longin.io/v1/namespaces/{ns}/applications/{name}/status",
            get(applications::get_status),
        )
}

/// The caller, with a `Status` for a missing, bad, revoked or expired token.
#[derive(Debug, Clone)]
pub struct KubeUser(pub AuthUser);

impl FromRequestParts<ApiContext> for KubeUser {
    type Rejection = KubeError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, KubeError> {
        AuthUser::from_request_parts(parts, ctx)
            .await
            .map(Self)
            .map_err(KubeError::from)
    }
}

/// The owner id behind namespace `ns`, if the caller may `verb` applications there.
///
/// # Errors
/// 403 for another user's namespace (the same answer whether it exists or not); 404
/// for an admin naming no user.
pub(crate) async fn namespace_owner(
    ctx: &ApiContext,
    user: &AuthUser,
    ns: &str,
    verb: &str,
) -> Result<String, KubeError> {
    if ns == user.username {
        return Ok(user.id.clone());
    }
    if !user.is_admin() {
        return Err(KubeError::forbidden(format!(
            "applications.{GROUP} is forbidden: User \"{}\" cannot {verb} resource \"applications\" in API group \"{GROUP}\" in the namespace \"{}\"",
            user.username,
            ns.escape_debug()
        )));
    }
    match ctx.store.user_by_username(ns).await? {
        Some(owner) => Ok(owner.id),
        None => Err(namespace_not_found(ns)),
    }
}

fn namespace_not_found(ns: &str) -> KubeError {
    KubeError::new(
        axum::http::StatusCode::NOT_FOUND,
        "NotFound",
        format!("namespaces \"{}\" not found", ns.escape_debug()),
    )
    .about(ns)
}
