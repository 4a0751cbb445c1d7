//! The web dashboard: server-rendered pages (`pages`) and the embedded ES modules and
//! CSS they load (`assets`, files under `api/dashboard/`). The dashboard is a client
//! of the public API like the CLI: the pages carry no data, the modules read it from
//! `/api` and the WebSockets with the access token they keep in memory.

pub mod assets;
pub mod pages;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::context::ApiContext;
use crate::error::AppError;
use pages::{AdminTab, AppTab, Page};

/// Every page's policy: only this origin's files run or load, nothing inline, never
/// inside a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The dashboard's paths (none is in the OpenAPI document: they answer HTML).
pub const ROUTES: &[&str] = &[
    "/",
    "/login",
    "/apps/new",
    "/apps/{name}",
    "/apps/{name}/{tab}",
    "/admin",
    "/admin/{tab}",
    "/assets/{version}/{file}",
];

/// The dashboard's routes.
pub fn router() -> Router<ApiContext> {
    Router::new()
        .route(ROUTES[0], get(|| page(Page::Applications)))
        .route(ROUTES[1], get(|| page(Page::SignIn)))
        .route(ROUTES[2], get(|| page(Page::NewApplication)))
        .route(
            ROUTES[3],
            get(|Path(name): Path<String>| {
                page(Page::Application {
                    name,
                    tab: AppTab::Overview,
                })
            }),
        )
        .route(ROUTES[4], get(application_tab))
        .route(
            ROUTES[5],
            get(|| {
                page(Page::Admin {
                    tab: AdminTab::Users,
                })
            }),
        )
        .route(ROUTES[6], get(admin_tab))
        .route(ROUTES[7], get(asset))
        .layer(axum::middleware::map_response(dashboard_headers))
}

async fn page(page: Page) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], page.render()).into_response()
}

async fn application_tab(Path((name, tab)): Path<(String, String)>) -> Result<Response, AppError> {
    if tab == "edit" {
        return Ok(page(Page::EditApplication { name }).await);
    }
    let tab = AppTab::parse(&tab).ok_or_else(|| no_such_page(&tab))?;
    Ok(page(Page::Application { name, tab }).await)
}

async fn admin_tab(Path(tab): Path<String>) -> Result<Response, AppError> {
    let tab = AdminTab::parse(&tab).ok_or_else(|| no_such_page(&tab))?;
    Ok(page(Page::Admin { tab }).await)
}

fn no_such_page(what: &str) -> AppError {
    AppError::NotFound(format!("no dashboard page {what:?}"))
}

/// A file of the current version; any other version is gone (its page is stale).
async fn asset(Path((version, file)): Path<(String, String)>) -> Result<Response, AppError> {
    if version != assets::version() {
        return Err(AppError::NotFound(format!(
            "no dashboard files of version {version:?} (this server has {})",
            assets::version()
        )));
    }
    let bytes = assets::file(&file).ok_or_else(|| no_such_page(&file))?;
    let cache = if version == "dev" {
        "no-store"
    } else {
        "public, max-age=31536000, immutable"
    };
    Ok((
        [
            (header::CONTENT_TYPE, assets::content_type(&file)),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}

async fn dashboard_headers(mut response: Response) -> Response {
    let missing = response.status() == StatusCode::NOT_FOUND;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if missing {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
