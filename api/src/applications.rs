//! The `/api/applications` routes: apply, read, delete, and the stop/start/restart verbs.
//!
//! Names are unique per owner. Everyone acts on their own applications; an admin may
//! address another user's with `?owner=USERNAME`, and lists everyone's. Another user's
//! application answers 404, as if it did not exist.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use longin_crds::Application;
use longin_crds::document::{
    DocumentError, SyntaxError, parse_json_documents, parse_yaml_documents, to_yaml,
};
use longin_crds::validation::parse_application;
use longin_store::applications::{
    ApplicationError, ApplicationRecord, ApplyAction, ApplyMode, Verb,
};

use longin_store::quotas::Quota;

use crate::access::{OwnedApp, OwnerQuery, app_not_found, check_name, find, owner_id};
use crate::audit::RequestAudit;
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::extract::{AppBytes, AppQuery};
use crate::openapi::{ApplicationDocuments, ApplicationRef};
use crate::resource::Presented as _;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(apply))
        .routes(routes!(get_one, delete))
        .routes(routes!(stop))
        .routes(routes!(start))
        .routes(routes!(restart))
        .routes(routes!(containers))
}

/// YAML when the client asks for it, JSON otherwise.
fn wants_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("yaml"))
}

fn respond<T: Serialize>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &T,
) -> Result<Response, AppError> {
    if wants_yaml(headers) {
        let yaml = to_yaml(body).map_err(AppError::internal)?;
        Ok((
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml"),
            )],
            yaml,
        )
            .into_response())
    } else {
        Ok((status, axum::Json(body)).into_response())
    }
}

impl From<ApplicationError> for AppError {
    fn from(err: ApplicationError) -> Self {
        let message = err.to_string();
        match err {
            ApplicationError::NotFound { .. } => Self::NotFound(message),
            ApplicationError::AlreadyExists { .. } => Self::Conflict {
                code: "already_exists",
                message,
                fields: FieldErrors::new(),
            },
            ApplicationError::StaleResourceVersion { .. } => Self::Conflict {
                code: "stale_resource_version",
                message,
                fields: FieldErrors::from([(
                    "metadata.resourceVersion".to_owned(),
                    "is stale; read the application again".to_owned(),
                )]),
            },
            ApplicationError::Terminating { .. } => Self::Conflict {
                code: "terminating",
                message,
                fields: FieldErrors::new(),
            },
            ApplicationError::PoolExhausted { .. } => Self::Conflict {
                code: "port_pool_exhausted",
                message,
                fields: FieldErrors::new(),
            },
            // The document is well-formed; what it lacks is stored state to keep.
            ApplicationError::MissingSecrets { vars, .. } => Self::Conflict {
                code: "missing_secret",
                message,
                fields: vars
                    .into_iter()
                    .map(|v| {
                        (
                            format!("spec.env.{v}.value"),
                            "a new secret needs a value".to_owned(),
                        )
                    })
                    .collect(),
            },
            ApplicationError::Quota(exceeded) => Self::QuotaExceeded(exceeded),
            ApplicationError::Store(store) => Self::internal(store),
        }
    }
}

/// A document that could not be read: malformed (with where), or one that would take
/// far more memory parsed than its text justifies (`document_too_large`).
fn unreadable(err: DocumentError, code: &'static str) -> AppError {
    match err {
        DocumentError::Syntax(err) => syntax(err, code),
        too_large @ (DocumentError::TooLarge { .. } | DocumentError::TooDeep { .. }) => {
            AppError::BadRequest {
                code: "document_too_large",
                message: too_large.to_string(),
            }
        }
    }
}

fn syntax(err: SyntaxError, code: &'static str) -> AppError {
    let position = match (err.line, err.column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        _ => String::new(),
    };
    AppError::Syntax {
        code,
        message: format!("document is not well-formed{position}: {}", err.message),
        line: err.line,
        column: err.column,
    }
}

/// Checks every document; all problems of all documents are reported at once, their
/// paths prefixed with `[i].` when there are several documents.
fn parse_all(documents: &[Value]) -> Result<Vec<Application>, AppError> {
    if documents.is_empty() {
        return Err(AppError::field("body", "no document to apply"));
    }
    let mut errors = FieldErrors::new();
    let mut apps = Vec::with_capacity(documents.len());
    for (i, document) in documents.iter().enumerate() {
        match parse_application(document) {
            Ok(app) => apps.push(app),
            Err(problems) => {
                for problem in problems {
                    let path = match (documents.len(), problem.path.is_empty()) {
                        (1, true) => "document".to_owned(),
                        (1, false) => problem.path,
                        (_, true) => format!("[{i}]"),
                        (_, false) => format!("[{i}].{}", problem.path),
                    };
                    errors
                        .entry(path)
                        .and_modify(|m| {
                            m.push_str("; ");
                            m.push_str(&problem.message);
                        })
                        .or_insert(problem.message);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(last_document_wins(apps))
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Builds from the server's own files or loopback hosts are for admins: for anyone
/// else they would read the server's repositories or reach its local services. A
/// well-formed document asking for what the caller may not have: 403.
pub(crate) fn check_sources(user: &AuthUser, apps: &[Application]) -> Result<(), AppError> {
    if user.is_admin() {
        return Ok(());
    }
    for (i, app) in apps.iter().enumerate() {
        let Some(source) = &app.spec.source else {
            continue;
        };
        if longin_crds::source::GitUrl::parse(&source.git.url).is_ok_and(|u| u.is_privileged()) {
            let path = if apps.len() == 1 {
                "spec.source.git.url".to_owned()
            } else {
                format!("[{i}].spec.source.git.url")
            };
            return Err(AppError::Forbidden(format!(
                "{path}: file://, http:// and loopback or link-local hosts are for admins; use an https:// or ssh URL"
            )));
        }
    }
    Ok(())
}

/// An application named twice in one apply takes its last document, in the place of
/// its first, as applying the documents one after the other would leave it.
fn last_document_wins(apps: Vec<Application>) -> Vec<Application> {
    let mut kept: Vec<Application> = Vec::with_capacity(apps.len());
    for app in apps {
        match kept
            .iter_mut()
            .find(|a| a.metadata.name == app.metadata.name)
        {
            Some(earlier) => *earlier = app,
            None => kept.push(app),
        }
    }
    kept
}

fn documents_of(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let text =
        std::str::from_utf8(body).map_err(|_| AppError::field("body", "must be UTF-8 text"))?;
    if content_type.starts_with("application/json") {
        parse_json_documents(text).map_err(|e| unreadable(e, "malformed_json"))
    } else if content_type.contains("yaml") {
        parse_yaml_documents(text).map_err(|e| unreadable(e, "malformed_yaml"))
    } else {
        Err(AppError::UnsupportedMediaType(
            "expected content-type application/yaml or application/json".to_owned(),
        ))
    }
}

/// What happened to one applied document.
#[derive(Debug, Serialize, ToSchema)]
struct ApplyResult {
    name: String,
    /// `created`, `configured` or `unchanged`.
    action: String,
    /// True when the document matched what was stored and nothing was written.
    unchanged: bool,
    #[schema(value_type = ApplicationRef)]
    application: Application,
}

/// The outcome of an apply.
#[derive(Debug, Serialize, ToSchema)]
struct ApplyResponse {
    results: Vec<ApplyResult>,
}

/// Creates or updates applications from YAML (one or several `---` documents) or JSON
/// (one object or a list). All documents are applied, or none.
#[utoipa::path(
    put, path = "/api/applications/apply", tag = "applications",
    security(("bearer" = [])),
    params(OwnerQuery),
    request_body(
        description = "YAML: one or several `---`-separated documents; JSON: one object or a list. An application named twice takes its last document.",
        content((ApplicationRef = "application/yaml"), (ApplicationDocuments = "application/json")),
    ),
    responses(
        (status = 200, description = "Applied", content((ApplyResponse = "application/json"), (ApplyResponse = "application/yaml"))),
        (status = 400, description = "Malformed or invalid documents: every problem with its path", body = ErrorBody),
        (status = 403, description = "An owner's quota would be passed", body = ErrorBody),
        (status = 409, description = "Stale resourceVersion, terminating, a new secret without a value, or the port pool is exhausted", body = ErrorBody),
        (status = 415, description = "Neither YAML nor JSON", body = ErrorBody),
    )
)]
async fn apply(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    AppQuery(query): AppQuery<OwnerQuery>,
    headers: HeaderMap,
    AppBytes(body): AppBytes,
) -> Result<Response, AppError> {
    let owner = owner_id(&ctx, &user, query.owner.as_deref()).await?;
    let apps = parse_all(&documents_of(&headers, &body)?)?;
    check_sources(&user, &apps)?;
    let applied = ctx
        .store
        .apply_applications(
            &owner,
            &apps,
            ApplyMode::Apply,
            ctx.config.port_range,
            &quota_of(&ctx, &owner).await?,
        )
        .await?;
    for a in &applied {
        if a.action != ApplyAction::Unchanged {
            tracing::info!(app = %a.record.name, owner = %a.record.owner_username, action = ?a.action, generation = a.record.generation, "application applied");
        }
    }
    let results = applied
        .into_iter()
        .map(|a| ApplyResult {
            name: a.record.name.clone(),
            action: format!("{:?}", a.action).to_lowercase(),
            unchanged: a.action == ApplyAction::Unchanged,
            application: a.record.to_resource(),
        })
        .collect();
    respond(StatusCode::OK, &headers, &ApplyResponse { results })
}

/// Creates one application from JSON; 409 if the name exists.
#[utoipa::path(
    post, path = "/api/applications", tag = "applications",
    security(("bearer" = [])),
    params(OwnerQuery),
    request_body(content = ApplicationRef, description = "An Application document", content_type = "application/json"),
    responses(
        (status = 201, description = "Created", content((ApplicationRef = "application/json"), (ApplicationRef = "application/yaml"))),
        (status = 400, description = "Invalid document", body = ErrorBody),
        (status = 403, description = "An owner's quota would be passed", body = ErrorBody),
        (status = 409, description = "Exists already, a new secret without a value, or the port pool is exhausted", body = ErrorBody),
    )
)]
async fn create(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    AppQuery(query): AppQuery<OwnerQuery>,
    headers: HeaderMap,
    AppBytes(body): AppBytes,
) -> Result<Response, AppError> {
    let owner = owner_id(&ctx, &user, query.owner.as_deref()).await?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_json {
        return Err(AppError::UnsupportedMediaType(
            "expected content-type application/json".to_owned(),
        ));
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| AppError::field("body", "must be UTF-8 text"))?;
    let document: Value = serde_json::from_str(text).map_err(|err| {
        syntax(
            SyntaxError {
                message: err.to_string(),
                line: Some(err.line()),
                column: Some(err.column()),
            },
            "malformed_json",
        )
    })?;
    let apps = parse_all(&[document])?;
    check_sources(&user, &apps)?;
    let applied = ctx
        .store
        .apply_applications(
            &owner,
            &apps,
            ApplyMode::CreateOnly,
            ctx.config.port_range,
            &quota_of(&ctx, &owner).await?,
        )
        .await?;
    let record = &applied
        .first()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("nothing applied")))?
        .record;
    tracing::info!(app = %record.name, owner = %record.owner_username, "application created");
    respond(StatusCode::CREATED, &headers, &record.to_resource())
}

/// A list of applications.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ApplicationList {
    api_version: &'static str,
    kind: &'static str,
    #[schema(value_type = Vec<ApplicationRef>)]
    items: Vec<Application>,
}

/// Lists the caller's applications (an admin's lists everyone's unless `owner` is given).
#[utoipa::path(
    get, path = "/api/applications", tag = "applications", operation_id = "list_applications",
    security(("bearer" = [])),
    params(OwnerQuery),
    responses((status = 200, description = "Applications, by name; YAML with Accept: application/yaml", content((ApplicationList = "application/json"), (ApplicationList = "application/yaml"))))
)]
async fn list(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    AppQuery(query): AppQuery<OwnerQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let owner = list_owner(&ctx, &user, query.owner.as_deref()).await?;
    if wants_yaml(&headers) {
        let records = match &owner {
            Some(owner) => ctx.store.list_applications(Some(owner)).await?,
            None => ctx.store.list_applications(None).await?,
        };
        let list = ApplicationList {
            api_version: longin_crds::API_VERSION,
            kind: "ApplicationList",
            items: records.iter().map(ApplicationRecord::to_resource).collect(),
        };
        return respond(StatusCode::OK, &headers, &list);
    }
    let items = rendered_list(&ctx, owner.as_deref()).await?;
    Ok(json_response(crate::rendered::list_json(&items)))
}

/// Whose applications a list shows: the caller's, anyone's an admin names, or (an
/// admin naming nobody) everyone's.
async fn list_owner(
    ctx: &ApiContext,
    user: &AuthUser,
    owner: Option<&str>,
) -> Result<Option<String>, AppError> {
    match (owner, user.is_admin()) {
        (None, true) => Ok(None),
        (owner, _) => Ok(Some(owner_id(ctx, user, owner).await?)),
    }
}

/// The JSON of each listed application, in list order: cached renderings where their
/// resourceVersion is current, the rest read in one query and rendered.
async fn rendered_list(
    ctx: &ApiContext,
    owner: Option<&str>,
) -> Result<Vec<bytes::Bytes>, AppError> {
    let versions = ctx.store.application_versions(owner).await?;
    let mut items: Vec<Option<bytes::Bytes>> = versions
        .iter()
        .map(|(uid, version)| ctx.rendered.get(uid, *version))
        .collect();
    let missing: Vec<String> = versions
        .iter()
        .zip(&items)
        .filter(|(_, item)| item.is_none())
        .map(|((uid, _), _)| uid.clone())
        .collect();
    if !missing.is_empty() {
        let mut fresh = std::collections::HashMap::new();
        for record in ctx.store.applications_by_ids(&missing).await? {
            let json = ctx.rendered.render(&record).map_err(AppError::internal)?;
            fresh.insert(record.id, json);
        }
        for ((uid, _), item) in versions.iter().zip(&mut items) {
            if item.is_none() {
                // Gone between the two reads: deleted, so not listed.
                *item = fresh.remove(uid);
            }
        }
    }
    Ok(items.into_iter().flatten().collect())
}

fn json_response(body: bytes::Bytes) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// One application with its status.
#[utoipa::path(
    get, path = "/api/applications/{name}", tag = "applications", operation_id = "get_application",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses(
        (status = 200, description = "The application; YAML with Accept: application/yaml", content((ApplicationRef = "application/json"), (ApplicationRef = "application/yaml"))),
        (status = 404, description = "No such application of this owner", body = ErrorBody),
    )
)]
async fn get_one(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    Path(name): Path<String>,
    AppQuery(query): AppQuery<OwnerQuery>,
    audit: Option<axum::Extension<RequestAudit>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if wants_yaml(&headers) {
        let record = find(&ctx, &user, query.owner.as_deref(), &name, audit.as_deref()).await?;
        return respond(StatusCode::OK, &headers, &record.to_resource());
    }
    check_name(&name)?;
    let owner = owner_id(&ctx, &user, query.owner.as_deref()).await?;
    let (uid, version) = ctx
        .store
        .application_version(&owner, &name)
        .await?
        .ok_or_else(|| app_not_found(&name))?;
    if let Some(audit) = &audit {
        audit.set_application(&uid);
    }
    if let Some(json) = ctx.rendered.get(&uid, version) {
        return Ok(json_response(json));
    }
    let record = ctx
        .store
        .application(&owner, &name)
        .await?
        .ok_or_else(|| app_not_found(&name))?;
    Ok(json_response(
        ctx.rendered.render(&record).map_err(AppError::internal)?,
    ))
}

/// The answer to a delete.
#[derive(Debug, Serialize, ToSchema)]
struct DeleteResponse {
    name: String,
    /// `Deleted` when it is gone already, `Terminating` while the controller cleans up.
    status: &'static str,
}

/// Deletes an application: it turns Terminating until its containers and ports are
/// gone, then disappears with all its rows.
#[utoipa::path(
    delete, path = "/api/applications/{name}", tag = "applications",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses(
        (status = 202, description = "Deletion accepted", body = DeleteResponse),
        (status = 404, description = "No such application of this owner", body = ErrorBody),
    )
)]
async fn delete(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<Response, AppError> {
    let name = record.name.clone();
    let controller_active = ctx.store.lease_held(&ctx.config.controller_lease).await?;
    let gone = ctx
        .store
        .delete_application(&record.owner_id, &name, controller_active)
        .await?;
    tracing::info!(app = %name, owner = %record.owner_username, gone, "application deletion requested");
    let status = if gone { "Deleted" } else { "Terminating" };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(DeleteResponse { name, status }),
    )
        .into_response())
}

/// The quota of the owner an apply writes for: the owner's own figures where an admin
/// set them, else the server's defaults; admins have none unless set.
pub(crate) async fn quota_of(ctx: &ApiContext, owner_id: &str) -> Result<Quota, AppError> {
    let owner = ctx.store.user_by_id(owner_id).await?;
    Ok(ctx.config.quotas.for_user(&owner))
}

/// What stop, start and restart share: the verb applied to the named app.
async fn verb(
    ctx: &ApiContext,
    record: &ApplicationRecord,
    verb: Verb,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let name = &record.name;
    let updated = ctx
        .store
        .apply_verb(
            &record.owner_id,
            name,
            verb,
            ctx.config.port_range,
            &quota_of(ctx, &record.owner_id).await?,
        )
        .await?;
    tracing::info!(app = %name, owner = %updated.owner_username, ?verb, generation = updated.generation, "application verb");
    respond(StatusCode::OK, headers, &updated.to_resource())
}

/// Stops an application: replicas to 0, the count remembered for `start`.
#[utoipa::path(
    post, path = "/api/applications/{name}/stop", tag = "applications",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 200, description = "The application", content((ApplicationRef = "application/json"), (ApplicationRef = "application/yaml"))))
)]
async fn stop(
    State(ctx): State<ApiContext>,
    app: OwnedApp,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    verb(&ctx, &app.record, Verb::Stop, &headers).await
}

/// Starts a stopped application with the replica count it had.
#[utoipa::path(
    post, path = "/api/applications/{name}/start", tag = "applications",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses(
        (status = 200, description = "The application", content((ApplicationRef = "application/json"), (ApplicationRef = "application/yaml"))),
        (status = 403, description = "The owner's quota would be passed", body = ErrorBody),
        (status = 409, description = "Terminating, or the port pool is exhausted", body = ErrorBody),
    )
)]
async fn start(
    State(ctx): State<ApiContext>,
    app: OwnedApp,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    verb(&ctx, &app.record, Verb::Start, &headers).await
}

/// Rolling restart: a new generation with the same spec replaces every replica.
#[utoipa::path(
    post, path = "/api/applications/{name}/restart", tag = "applications",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses(
        (status = 200, description = "The application", content((ApplicationRef = "application/json"), (ApplicationRef = "application/yaml"))),
        (status = 409, description = "Terminating", body = ErrorBody),
    )
)]
async fn restart(
    State(ctx): State<ApiContext>,
    app: OwnedApp,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    verb(&ctx, &app.record, Verb::Restart, &headers).await
}

/// The application's containers, by replica.
#[utoipa::path(
    get, path = "/api/applications/{name}/containers", tag = "applications",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 200, body = Vec<crate::resource::ContainerView>), (status = 404, body = ErrorBody))
)]
async fn containers(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<axum::Json<Vec<crate::resource::ContainerView>>, AppError> {
    let containers = ctx.store.application_containers(&record.id).await?;
    Ok(axum::Json(
        containers
            .into_iter()
            .map(crate::resource::ContainerView::from)
            .collect(),
    ))
}
