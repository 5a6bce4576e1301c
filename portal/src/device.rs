//! The desktop's endpoints under `/api/v1/`: enrolment with a one-time
//! token, and the signed requests (RFC 9421) that upload and manage
//! messages and fetch events and replies. A device reads and changes only
//! its own messages; another device's message gets 404, as if absent.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::{self, ApiError, App, Json, MAX_SEALED_BYTES};
use crate::config::MAX_EXPIRY_DAYS;
use crate::recipient::SEAL_OVERHEAD;
use crate::signature::{self, SignatureHeaders};
use crate::store::{Change, Factor, Lock, NewMessage, Store};
use crate::wire::{self, short_id};

/// Bytes of the wrapped content key: nonce, 32-byte key, tag.
const WRAPPED_KEY_BYTES: usize = SEAL_OVERHEAD + 32;

/// PBKDF2 iterations accepted. The upper bound keeps a phone's browser
/// from running for minutes.
const ITERATIONS: std::ops::RangeInclusive<u32> = 1..=10_000_000;

/// Maximum number of events in one response to `GET /api/v1/events`.
const EVENTS_PER_PAGE: u32 = 500;

/// Maximum number of replies in one response to `GET /api/v1/replies`.
const REPLIES_PER_PAGE: u32 = 50;

/// Ciphertext bytes after which a response to `GET /api/v1/replies` stops
/// (it always contains at least one reply).
const REPLY_PAGE_BYTES: usize = 32 * 1024 * 1024;

/// Maximum length of a device label, in characters.
const MAX_LABEL_CHARS: usize = 100;

/// A request whose signature verified: the device and the body.
pub struct SignedBy {
    /// The device id.
    pub device_id: String,
    /// The request body (its digest was checked).
    pub body: Bytes,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("send one {name} header line, not several"),
        ));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, format!("{name} is not ASCII")))
}

impl<S: Store> FromRequest<Arc<App<S>>> for SignedBy {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let method = request.method().as_str().to_owned();
        let path_and_query = request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |value| value.as_str().to_owned(),
        );
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, app)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;

        let target_uri = format!("{}{path_and_query}", app.config.public_url);
        let now = wire::now();
        let signature_headers = SignatureHeaders {
            signature_input: header_text(&headers, "signature-input")?,
            signature: header_text(&headers, "signature")?,
            content_digest: header_text(&headers, "content-digest")?,
        };
        let unauthorized = |error: signature::SignatureError| {
            tracing::info!(%error, "signed request rejected");
            ApiError::new(StatusCode::UNAUTHORIZED, error.to_string())
        };

        let signed = signature::parse_request(&method, &target_uri, &signature_headers, &body, now)
            .map_err(unauthorized)?;
        let key = if wire::is_id(&signed.key_id) {
            app.store.device_key(signed.key_id.clone()).await?
        } else {
            None
        };
        let key = key
            .ok_or(signature::SignatureError::UnknownDevice)
            .map_err(unauthorized)?;
        signed.verify(&key).map_err(unauthorized)?;
        let fresh = app
            .store
            .remember_nonce(signed.key_id.clone(), signed.nonce.clone(), now)
            .await?;
        if !fresh {
            return Err(unauthorized(signature::SignatureError::Replayed));
        }
        Ok(Self {
            device_id: signed.key_id,
            body,
        })
    }
}

#[derive(Deserialize)]
struct EnrolRequest {
    token: String,
    public_key: String,
    #[serde(default)]
    label: String,
}

/// `POST /api/v1/devices`: enrols a device with a one-time token. The input
/// is checked before the token is spent, so a malformed request leaves the
/// token usable.
pub async fn enrol<S: Store>(
    State(app): State<Arc<App<S>>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: EnrolRequest = app::parse_json(&body)?;
    let public_key = app::decode_field::<32>("public_key", &request.public_key)?;
    let label = request.label.trim().to_owned();
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "`label` must be at most {MAX_LABEL_CHARS} characters without control characters"
        )));
    }

    let device_id = wire::encode(&random_id()?);
    let enrolled = app
        .store
        .enrol_device(
            wire::sha256(request.token.as_bytes()),
            device_id.clone(),
            public_key,
            label,
            wire::now(),
        )
        .await?;
    if !enrolled {
        tracing::warn!("enrolment with an unknown, used or expired token");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the enrolment token is unknown, used or expired; ask the administrator for a new one (wardmail-portal enrol-token)",
        ));
    }
    tracing::info!(device = short_id(&device_id), "device enrolled");
    Ok((StatusCode::CREATED, Json(json!({ "device_id": device_id }))).into_response())
}

fn random_id() -> Result<[u8; wire::ID_BYTES], ApiError> {
    wire::random_bytes().map_err(|_| {
        tracing::error!("the system random number generator failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot create an id; try again",
        )
    })
}

#[derive(Deserialize)]
struct UploadRequest {
    id: String,
    factor: Factor,
    iterations: u32,
    wrapped_key: String,
    verifier_hash: String,
    envelope: String,
    expires_at: Option<i64>,
    max_attempts: Option<u32>,
    contact: Option<String>,
}

#[derive(Deserialize)]
struct FactorRequest {
    factor: Factor,
    iterations: u32,
    wrapped_key: String,
    verifier_hash: String,
}

#[derive(Deserialize)]
struct ExtendRequest {
    expires_at: i64,
}

fn parse_lock(
    factor: Factor,
    iterations: u32,
    wrapped_key: &str,
    verifier_hash: &str,
) -> Result<Lock, ApiError> {
    if !ITERATIONS.contains(&iterations) {
        return Err(ApiError::bad_request(format!(
            "`iterations` is {iterations}; use {} to {}",
            ITERATIONS.start(),
            ITERATIONS.end()
        )));
    }
    let wrapped_key = app::decode_field::<WRAPPED_KEY_BYTES>("wrapped_key", wrapped_key)?;
    Ok(Lock {
        factor,
        iterations,
        wrapped_key: wrapped_key.to_vec(),
        verifier_hash: app::decode_field::<32>("verifier_hash", verifier_hash)?,
    })
}

fn check_expiry(expires_at: i64, now: i64) -> Result<i64, ApiError> {
    let latest = now + i64::from(MAX_EXPIRY_DAYS) * 86_400;
    if expires_at <= now || expires_at > latest {
        return Err(ApiError::bad_request(format!(
            "`expires_at` is {expires_at}; give Unix seconds after now ({now}) and at most {MAX_EXPIRY_DAYS} days ahead"
        )));
    }
    Ok(expires_at)
}

/// `POST /api/v1/messages`: stores an uploaded message.
pub async fn upload<S: Store>(
    State(app): State<Arc<App<S>>>,
    signed: SignedBy,
) -> Result<Response, ApiError> {
    let request: UploadRequest = app::parse_json(&signed.body)?;
    if !wire::is_id(&request.id) {
        return Err(ApiError::bad_request(
            "`id` must be 16 random bytes in base64url without padding",
        ));
    }
    let lock = parse_lock(
        request.factor,
        request.iterations,
        &request.wrapped_key,
        &request.verifier_hash,
    )?;
    let envelope = app::decode_sized(
        "envelope",
        &request.envelope,
        SEAL_OVERHEAD,
        MAX_SEALED_BYTES + SEAL_OVERHEAD,
    )?;

    let now = wire::now();
    let expires_at = match request.expires_at {
        Some(expires_at) => check_expiry(expires_at, now)?,
        None => now + i64::from(app.config.expiry_days) * 86_400,
    };
    let limit = app.config.max_attempts;
    let max_attempts = request.max_attempts.unwrap_or(limit);
    if !(1..=limit).contains(&max_attempts) {
        return Err(ApiError::bad_request(format!(
            "`max_attempts` is {max_attempts}; this portal allows 1 to {limit}"
        )));
    }
    let contact = match request.contact.as_deref().map(str::trim) {
        Some(contact) if !contact.is_empty() => contact.to_owned(),
        _ => app.config.contact.clone(),
    };

    let size = envelope.len();
    let message = NewMessage {
        id: request.id.clone(),
        device_id: signed.device_id.clone(),
        lock,
        envelope,
        expires_at,
        max_attempts,
        contact,
    };
    if !app.store.insert_message(message, now).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a message with this id exists; create a new random id",
        ));
    }
    tracing::info!(
        message = short_id(&request.id),
        device = short_id(&signed.device_id),
        bytes = size,
        expires_at,
        "message uploaded"
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": request.id, "expires_at": expires_at })),
    )
        .into_response())
}

fn change_response(id: &str, change: Change, action: &str) -> Result<Response, ApiError> {
    match change {
        Change::Done => {
            tracing::info!(message = short_id(id), action, "message changed");
            Ok(Json(json!({})).into_response())
        }
        Change::Gone => Err(ApiError::new(
            StatusCode::GONE,
            "the message expired or was revoked; send it again as a new message",
        )),
        Change::NotFound => Err(ApiError::no_message()),
    }
}

/// `PUT /api/v1/messages/{id}/factor`: a new factor, which unlocks the
/// message and resets its attempts.
pub async fn reissue<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    signed: SignedBy,
) -> Result<Response, ApiError> {
    let request: FactorRequest = app::parse_json(&signed.body)?;
    let lock = parse_lock(
        request.factor,
        request.iterations,
        &request.wrapped_key,
        &request.verifier_hash,
    )?;
    let change = app
        .store
        .reissue(signed.device_id, id.clone(), lock, wire::now())
        .await?;
    change_response(&id, change, "factor re-issued")
}

/// `POST /api/v1/messages/{id}/revoke`: deletes the ciphertext; the link
/// then returns 410.
pub async fn revoke<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    signed: SignedBy,
) -> Result<Response, ApiError> {
    let change = app
        .store
        .revoke(signed.device_id, id.clone(), wire::now())
        .await?;
    change_response(&id, change, "revoked")
}

/// `POST /api/v1/messages/{id}/extend`: a new expiry time.
pub async fn extend<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    signed: SignedBy,
) -> Result<Response, ApiError> {
    let request: ExtendRequest = app::parse_json(&signed.body)?;
    let now = wire::now();
    let expires_at = check_expiry(request.expires_at, now)?;
    let change = app
        .store
        .extend(signed.device_id, id.clone(), expires_at, now)
        .await?;
    change_response(&id, change, "expiry extended")
}

/// Reads `after` from a query string such as `after=12`; absent means 0.
fn after_parameter(uri: &axum::http::Uri) -> Result<i64, ApiError> {
    let Some(query) = uri.query() else {
        return Ok(0);
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("after=") {
            return value.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "`after` is {value:?}; give the last seq received, or 0"
                ))
            });
        }
    }
    Ok(0)
}

/// `GET /api/v1/events?after={seq}`: the device's events after `seq`.
pub async fn events<S: Store>(
    State(app): State<Arc<App<S>>>,
    uri: axum::http::Uri,
    signed: SignedBy,
) -> Result<Response, ApiError> {
    let after = after_parameter(&uri)?;
    let events = app
        .store
        .events(signed.device_id, after, EVENTS_PER_PAGE)
        .await?;
    Ok(Json(events).into_response())
}

/// `GET /api/v1/replies?after={seq}`: the device's replies after `seq`.
pub async fn replies<S: Store>(
    State(app): State<Arc<App<S>>>,
    uri: axum::http::Uri,
    signed: SignedBy,
) -> Result<Response, ApiError> {
    let after = after_parameter(&uri)?;
    let replies = app
        .store
        .replies(signed.device_id, after, REPLIES_PER_PAGE, REPLY_PAGE_BYTES)
        .await?;
    let replies: Vec<_> = replies
        .into_iter()
        .map(|reply| {
            json!({
                "seq": reply.seq,
                "id": reply.id,
                "enc": wire::encode(&reply.enc),
                "ciphertext": wire::encode(&reply.ciphertext),
                "at": reply.at,
            })
        })
        .collect();
    Ok(Json(replies).into_response())
}
