//! The HTTP application: shared state, the router and the JSON error
//! responses. The endpoints are in [`crate::recipient`], [`crate::device`]
//! and [`crate::page`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::{device, page, recipient};

/// The largest envelope or reply ciphertext accepted, in bytes: 25 MiB.
pub const MAX_SEALED_BYTES: usize = 25 * 1024 * 1024;

/// The largest request body: a [`MAX_SEALED_BYTES`] value in base64url
/// plus 64 KiB for the other JSON fields. Larger bodies get 413.
pub const MAX_BODY_BYTES: usize = MAX_SEALED_BYTES.div_ceil(3) * 4 + 64 * 1024;

/// State shared by every request.
pub struct App<S> {
    /// Storage.
    pub store: S,
    /// The server's configuration.
    pub config: Config,
}

/// Builds the router with every endpoint of the scheme.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router {
    let hsts = app.config.is_https();
    Router::new()
        .route("/m/{id}", get(page::message_page::<S>))
        .route("/m/{id}/meta", get(recipient::meta::<S>))
        .route("/m/{id}/unlock", post(recipient::unlock::<S>))
        .route("/m/{id}/reply", post(recipient::reply::<S>))
        .route("/assets/{name}", get(page::asset))
        .route("/api/v1/devices", post(device::enrol::<S>))
        .route("/api/v1/messages", post(device::upload::<S>))
        .route("/api/v1/messages/{id}/factor", put(device::reissue::<S>))
        .route("/api/v1/messages/{id}/revoke", post(device::revoke::<S>))
        .route("/api/v1/messages/{id}/extend", post(device::extend::<S>))
        .route("/api/v1/events", get(device::events::<S>))
        .route("/api/v1/replies", get(device::replies::<S>))
        .fallback(page::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(reject_declared_oversize))
        .layer(axum::middleware::from_fn_with_state(
            hsts,
            page::security_headers,
        ))
        .with_state(app)
}

/// Rejects with 413 at once a request whose `Content-Length` is over
/// [`MAX_BODY_BYTES`], because the body limit alone would first read up to
/// the limit. Bodies without a length are cut at the limit while read.
async fn reject_declared_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over the limit of {MAX_BODY_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

/// An error response: a status and a JSON object, `{"error": "..."}` unless
/// the scheme fixes other fields.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
}

impl ApiError {
    /// Creates a response with `{"error": message}`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": message.into() }),
        }
    }

    /// Creates a response with a JSON body of the caller's making.
    pub fn with_body(status: StatusCode, body: serde_json::Value) -> Self {
        Self { status, body }
    }

    /// 400 with a message that names the bad field and the fix.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 for a message that does not exist (or is another device's).
    pub fn no_message() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no message with this id")
    }

    /// Returns the status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "storage failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the portal's storage failed; try again later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// A JSON response body. axum's own `Json` needs its "json" feature, which
/// the workspace avoids (see portal/Cargo.toml).
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            Err(error) => {
                tracing::error!(%error, "cannot serialize a JSON response");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// Parses a JSON request body, naming the problem in a 400 response. The
/// parser's message can quote part of the input, so it goes only to the
/// client, never to the log.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))
}

/// Decodes a base64url field that must hold exactly `N` bytes.
pub fn decode_field<const N: usize>(name: &str, text: &str) -> Result<[u8; N], ApiError> {
    crate::wire::decode_exact(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`{name}` must be {N} bytes in base64url without padding"
        ))
    })
}

/// Decodes a base64url field of `min..=max` bytes; a longer one gets 413.
pub fn decode_sized(name: &str, text: &str, min: usize, max: usize) -> Result<Vec<u8>, ApiError> {
    let bytes = crate::wire::decode(text).ok_or_else(|| {
        ApiError::bad_request(format!("`{name}` is not base64url without padding"))
    })?;
    if bytes.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "`{name}` is {} bytes, more than the limit of {max}",
                bytes.len()
            ),
        ));
    }
    if bytes.len() < min {
        return Err(ApiError::bad_request(format!(
            "`{name}` is {} bytes, fewer than the {min} of a nonce and tag",
            bytes.len()
        )));
    }
    Ok(bytes)
}
