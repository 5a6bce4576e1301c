//! The recipient's JSON endpoints: `meta`, `unlock` and `reply` under
//! `/m/{id}/`. No signature: the verifier is the credential, and every
//! wrong one counts towards the message's lock.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::{self, ApiError, App, Json, MAX_SEALED_BYTES};
use crate::store::{Refusal, Status, Store};
use crate::wire::{self, short_id};

/// Bytes of AES-256-GCM's nonce and tag around a sealed value.
pub const SEAL_OVERHEAD: usize = 12 + 16;

/// Bytes of an X25519 HPKE encapsulated key.
const ENC_BYTES: usize = 32;

#[derive(Deserialize)]
struct UnlockRequest {
    verifier: String,
}

#[derive(Deserialize)]
struct ReplyRequest {
    verifier: String,
    enc: String,
    ciphertext: String,
}

fn checked_id(id: &str) -> Result<(), ApiError> {
    if wire::is_id(id) {
        Ok(())
    } else {
        Err(ApiError::no_message())
    }
}

/// `GET /m/{id}/meta`: what the page needs to derive keys. Records an
/// `opened` event; never counts as an attempt.
pub async fn meta<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    checked_id(&id)?;
    let status = app.store.status(id.clone(), true, wire::now()).await?;
    let Some(status) = status else {
        return Err(ApiError::no_message());
    };
    let response = match status {
        Status::Open {
            factor,
            iterations,
            contact,
            attempts_left,
        } => {
            tracing::debug!(message = short_id(&id), "message opened");
            Json(json!({
                "factor": factor.as_str(),
                "iterations": iterations,
                "contact": contact,
                "attempts_left": attempts_left,
            }))
            .into_response()
        }
        Status::Locked { contact } => locked(contact).into_response(),
        Status::Gone { contact } => gone(contact).into_response(),
    };
    Ok(response)
}

/// `POST /m/{id}/unlock`: the wrapped key and envelope for a correct
/// verifier.
pub async fn unlock<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    checked_id(&id)?;
    let request: UnlockRequest = app::parse_json(&body)?;
    let verifier = app::decode_field::<32>("verifier", &request.verifier)?;

    let attempt = app
        .store
        .unlock(id.clone(), wire::sha256(&verifier), wire::now())
        .await?;
    let sealed = attempt.map_err(|refusal| refused(&id, refusal))?;
    tracing::info!(message = short_id(&id), "message unlocked");
    Ok(Json(json!({
        "wrapped_key": wire::encode(&sealed.wrapped_key),
        "envelope": wire::encode(&sealed.envelope),
    }))
    .into_response())
}

/// `POST /m/{id}/reply`: stores a reply sealed to the sender, if the
/// verifier is correct.
pub async fn reply<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    checked_id(&id)?;
    let request: ReplyRequest = app::parse_json(&body)?;
    let verifier = app::decode_field::<32>("verifier", &request.verifier)?;
    let enc = app::decode_field::<ENC_BYTES>("enc", &request.enc)?;
    // An HPKE AES-256-GCM ciphertext is the plaintext plus a 16-byte tag.
    let ciphertext = app::decode_sized("ciphertext", &request.ciphertext, 16, MAX_SEALED_BYTES)?;
    let size = ciphertext.len();

    let attempt = app
        .store
        .add_reply(
            id.clone(),
            wire::sha256(&verifier),
            enc.to_vec(),
            ciphertext,
            wire::now(),
        )
        .await?;
    let seq = attempt.map_err(|refusal| refused(&id, refusal))?;
    tracing::info!(message = short_id(&id), seq, bytes = size, "reply stored");
    Ok((StatusCode::CREATED, Json(json!({ "seq": seq }))).into_response())
}

/// Builds the response to a rejected verifier and logs the cause.
fn refused(id: &str, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Wrong { attempts_left } => {
            if attempts_left == 0 {
                tracing::warn!(message = short_id(id), "wrong code; message now locked");
            } else {
                tracing::info!(message = short_id(id), attempts_left, "wrong code");
            }
            ApiError::with_body(
                StatusCode::FORBIDDEN,
                json!({
                    "error": "wrong code",
                    "attempts_left": attempts_left,
                }),
            )
        }
        Refusal::Locked { contact } => {
            tracing::info!(message = short_id(id), "attempt on a locked message");
            locked(contact)
        }
        Refusal::Gone { contact } => gone(contact),
        Refusal::NotFound => ApiError::no_message(),
    }
}

fn locked(contact: String) -> ApiError {
    ApiError::with_body(
        StatusCode::LOCKED,
        json!({
            "error": "locked after too many wrong codes; ask the sender for a new code",
            "attempts_left": 0,
            "contact": contact,
        }),
    )
}

fn gone(contact: String) -> ApiError {
    ApiError::with_body(
        StatusCode::GONE,
        json!({
            "error": "this message has expired or was withdrawn",
            "contact": contact,
        }),
    )
}
