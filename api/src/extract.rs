//! Extractors whose rejections are [`AppError`]s, so malformed input is answered in the
//! same JSON shape as every other error.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A JSON object body (every form the API reads is one), with JSON errors. Whole
/// numbers written as floats (`3.0`) are read as the integers they are, as JSON Schema
/// counts them.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(&rejection)),
        };
        // serde reads a struct from a list too (`[null, null]` as every field left out).
        if !value.is_object() {
            return Err(AppError::BadRequest {
                code: "invalid_body",
                message: "expected a JSON object".to_owned(),
            });
        }
        longin_crds::document::whole_floats_as_integers(&mut value);
        T::deserialize(value)
            .map(Self)
            .map_err(|err| AppError::BadRequest {
                code: "invalid_body",
                message: format!("Failed to deserialize the JSON body into the target type: {err}"),
            })
    }
}

/// An optional JSON body (`Option<AppJson<T>>`): none when the request says no
/// content type (a bare `POST`), else read as [`AppJson`].
impl<S, T> axum::extract::OptionalFromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if !req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

fn json_rejection(rejection: &JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
            "expected a body with content-type application/json".to_owned(),
        ),
        JsonRejection::JsonSyntaxError(err) => AppError::BadRequest {
            code: "malformed_json",
            message: err.body_text(),
        },
        JsonRejection::JsonDataError(err) => AppError::BadRequest {
            code: "invalid_body",
            message: err.body_text(),
        },
        JsonRejection::BytesRejection(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge
        }
        other => AppError::BadRequest {
            code: "invalid_body",
            message: other.body_text(),
        },
    }
}

/// `axum::extract::Query` with JSON errors (axum's derive: the rejection becomes an
/// [`AppError`] through the `From` below).
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest {
            code: "invalid_query",
            message: rejection.body_text(),
        }
    }
}

/// The client's address as the socket saw it, when the server was started with
/// connect info (tests that call the router directly have none).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// The raw body with JSON errors (an oversized body is a JSON 413, not axum's text).
#[derive(Debug, Clone, Default)]
pub struct AppBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for AppBytes {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(AppError::PayloadTooLarge)
            }
            Err(rejection) => Err(AppError::BadRequest {
                code: "invalid_body",
                message: rejection.body_text(),
            }),
        }
    }
}
