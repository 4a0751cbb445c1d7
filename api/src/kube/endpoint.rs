//! `GET /api/kubernetes`: where kubectl reaches this server, for `longin kubeconfig`.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(endpoint))
}

/// The HTTPS listener Kubernetes clients use.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct KubernetesEndpoint {
    /// Whether the server runs one (`--tls-listen`).
    enabled: bool,
    /// Its bound address; an unspecified one (`0.0.0.0`) is reached at the host the
    /// client already uses.
    listen: Option<String>,
    /// The CA of its certificate (PEM), unless the operator brought a certificate.
    certificate_authority: Option<String>,
    /// The namespace that is the caller's: their username.
    namespace: String,
}

/// Where kubectl reaches this server and which CA to trust there.
#[utoipa::path(
    get, path = "/api/kubernetes", tag = "kubernetes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The HTTPS listener, if any", body = KubernetesEndpoint),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
async fn endpoint(
    State(ctx): State<ApiContext>,
    user: AuthUser,
) -> Result<axum::Json<KubernetesEndpoint>, AppError> {
    let kube = ctx.config.kube.as_ref();
    Ok(axum::Json(KubernetesEndpoint {
        enabled: kube.is_some(),
        listen: kube.map(|k| k.listen.to_string()),
        certificate_authority: kube.and_then(|k| k.ca_pem.clone()),
        namespace: user.username,
    }))
}
