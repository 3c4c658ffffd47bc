//! Extractors that fail with [`ApiError`] instead of axum's plain-text rejections, so a
//! malformed body, a wrong content type, an oversized body, a bad path or query parameter all
//! answer with the JSON error body (API §1.3). Handlers take `ApiJson<T>`, `ApiPath<T>` and
//! `ApiQuery<T>` and never axum's own `Json`, `Path` or `Query`.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::api::{FromParams, Params};

/// The body limit in force for a group of routes, set next to axum's `DefaultBodyLimit` so a
/// 413 can say what the limit is.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body. Requires `Content-Type: application/json` (or `…+json`); an empty body
/// without a content type reads as `{}`, so bodiless POSTs to routes with optional fields work.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = request.extensions().get::<BodyLimit>().map(|limit| limit.0);
        let declared_json = is_json(request.headers());
        let has_content_type = request.headers().contains_key(header::CONTENT_TYPE);
        if has_content_type && !declared_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| body_error(&rejection, limit))?;
        if !has_content_type && !bytes.is_empty() {
            return Err(ApiError::UnsupportedMediaType);
        }
        let text: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        parse_json(text).map(ApiJson)
    }
}

/// Parses a JSON object body, naming the offending field for type errors and unknown fields.
/// Every request body of the API is an object; serde would also read a struct from an array,
/// which only produces confusing `[0]` paths.
pub fn parse_json<T: DeserializeOwned>(text: &[u8]) -> Result<T, ApiError> {
    let first = text.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|byte| *byte != b'{') {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // The path of an unknown field already ends with its name.
                if path == "." {
                    ApiError::bad_request(format!(
                        "invalid request body: {}",
                        without_position(&inner)
                    ))
                } else {
                    ApiError::bad_field(path, without_position(&inner))
                }
            }
            _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::bad_request(format!("malformed JSON: {error}")))?;
    Ok(value)
}

/// serde_json appends ` at line 1 column 12` to data errors; with a field path it is noise.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(position) => message[..position].to_owned(),
        None => message,
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(kind, suffix)| {
            kind.to_ascii_lowercase().starts_with("application/")
                && suffix.eq_ignore_ascii_case("json")
        })
}

pub(super) fn body_error(rejection: &BytesRejection, limit: Option<usize>) -> ApiError {
    // axum marks a body over `DefaultBodyLimit` with 413; a body that stalled past
    // `http.body_timeout_secs` is 408; any other failure is a broken upload.
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else if stalled(rejection) {
        ApiError::RequestTimeout
    } else {
        ApiError::bad_request(format!("could not read the request body: {rejection}"))
    }
}

/// The credentials of `Authorization: Bearer <token>`. The scheme is matched in any case
/// (RFC 7235 §2.1: `bearer`, `BEARER`), one or more spaces may follow it, and surrounding
/// whitespace is not part of the token. `None` without the header, with another scheme or with
/// an empty token. The one parser of the scheme: worker tokens, webhook secrets and user
/// tokens all go through it.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    bearer_credentials(value)
}

/// [`bearer_token`] on the header's text.
pub fn bearer_credentials(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_matches(|c: char| c == ' ' || c == '\t');
    (!token.is_empty()).then_some(token)
}

/// Whether the body failed because it paused for too long (the connection's body timeout).
fn stalled(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error
            .downcast_ref::<tower_http::timeout::TimeoutError>()
            .is_some()
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Path parameters; a value that does not parse (a malformed UUID) is 400 naming the parameter.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                Err(match error.into_kind() {
                    ErrorKind::ParseErrorAtKey {
                        key,
                        value,
                        expected_type,
                    } => ApiError::bad_field(
                        key,
                        format!("'{value}' is not a valid {}", short_type(expected_type)),
                    ),
                    ErrorKind::DeserializeError {
                        key,
                        value,
                        message,
                    } => ApiError::bad_field(key, format!("invalid value '{value}': {message}")),
                    ErrorKind::InvalidUtf8InPathParam { key } => {
                        ApiError::bad_field(key, "is not valid UTF-8")
                    }
                    other => ApiError::bad_request(format!("invalid path parameter: {other}")),
                })
            }
            // Only a route whose pattern and extractor disagree gets here: a server bug.
            Err(other) => Err(ApiError::internal(anyhow::anyhow!(
                "path extraction failed: {other}"
            ))),
        }
    }
}

/// `u32` rather than `core::primitive::u32`.
fn short_type(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

/// Query parameters parsed and validated by an [`crate::api::query`] type.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: FromParams,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::bad_request(format!("malformed query string: {}", rejection.body_text()))
            })?;
        Ok(ApiQuery(T::from_params(&Params::new(pairs))?))
    }
}
