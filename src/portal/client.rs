//! The desktop's HTTPS client for the portal's device API: enrolment, and
//! requests signed with the device key (RFC 9421).
//!
//! It speaks HTTP/1.1 through hyper over the TLS of [`crate::net`], like
//! the WKD client, so the portal is trusted through the same CA settings as
//! the rest of the profile. Only `https` URLs are accepted: the device's
//! requests and the ciphertext never cross the network in clear.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{DeviceKey, FactorUpdate, PortalError, Upload};
use crate::net::{self, NetError, TlsContext};

/// The time limit of a whole request.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest response read, enough for a page of replies.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Errors of portal requests. None carries a secret, a body or a token.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The portal URL is not an `https` URL with a host.
    #[error(
        "invalid portal URL {url:?}: {reason}; use the clinic portal's address, such as \
         https://portal.clinic.example"
    )]
    Url {
        /// The URL as configured.
        url: String,
        /// The problem with it.
        reason: &'static str,
    },
    /// Connecting or the TLS handshake failed.
    #[error("cannot reach the portal at {host}: {source}")]
    Connect {
        /// The portal host.
        host: String,
        /// The cause.
        source: NetError,
    },
    /// HTTP failed below the status line.
    #[error("the portal at {host} broke off the exchange: {reason}; try again")]
    Http {
        /// The portal host.
        host: String,
        /// hyper's description.
        reason: String,
    },
    /// The request took longer than [`TIMEOUT`].
    #[error("the portal at {host} did not answer within {} s; try again later", TIMEOUT.as_secs())]
    TimedOut {
        /// The portal host.
        host: String,
    },
    /// The portal responded with an error status.
    #[error("the portal refused {what} with HTTP {status}{}", detail(.message))]
    Status {
        /// The request, in words.
        what: String,
        /// The status code.
        status: u16,
        /// The portal's own error text, when it gave one.
        message: Option<String>,
    },
    /// The response is not the JSON the scheme describes.
    #[error("the portal's answer to {what} is not valid: {reason}")]
    Answer {
        /// The request, in words.
        what: String,
        /// The parse error.
        reason: String,
    },
    /// Signing the request failed.
    #[error(transparent)]
    Scheme(#[from] PortalError),
    /// The system clock is before 1970.
    #[error("the system clock is set before 1970; correct it and try again")]
    Clock,
}

fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|text| format!(": {text}"))
        .unwrap_or_default()
}

/// The portal's address, split for connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalUrl {
    /// The URL as configured, without a trailing slash.
    pub base: String,
    /// The host name or address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The path prefix, empty or starting with `/`, without a trailing
    /// slash.
    pub prefix: String,
}

impl PortalUrl {
    /// Parses `https://host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<PortalUrl, ClientError> {
        let invalid = |reason| ClientError::Url {
            url: url.to_owned(),
            reason,
        };
        let trimmed = url.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .ok_or_else(|| invalid("it does not start with https://"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        if authority.contains('@') || prefix.contains(['?', '#']) {
            return Err(invalid("it has user information, a query or a fragment"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
                host,
                port.parse::<u16>()
                    .map_err(|_| invalid("its port is not a number from 1 to 65535"))?,
            ),
            _ => (authority, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(invalid("it has no host or port"));
        }
        Ok(PortalUrl {
            base: trimmed.to_owned(),
            host: host.to_owned(),
            port,
            prefix: prefix.to_owned(),
        })
    }

    /// Returns the full URI of `path` (which starts with `/`), as the
    /// portal rebuilds it to check signatures.
    pub fn target(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A device's identity at the portal.
pub struct Device {
    /// The id the portal gave at enrolment.
    pub id: String,
    /// The signing key.
    pub key: DeviceKey,
}

/// The portal's HTTPS client.
pub struct PortalClient {
    url: PortalUrl,
    tls: TlsContext,
}

/// An event of one of this device's messages.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Event {
    /// The portal's sequence number, for `after`.
    pub seq: i64,
    /// The portal message id.
    pub id: String,
    /// `opened`, `wrong-code`, `locked`, `unlocked`, `replied`, `expired`
    /// or `revoked`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened, Unix seconds.
    pub at: i64,
}

/// A sealed reply waiting at the portal.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SealedReply {
    /// The portal's sequence number, for `after`.
    pub seq: i64,
    /// The portal message id the reply belongs to.
    pub id: String,
    /// The HPKE encapsulated key, base64url.
    pub enc: String,
    /// The HPKE ciphertext, base64url.
    pub ciphertext: String,
    /// When it arrived, Unix seconds.
    pub at: i64,
}

#[derive(Deserialize)]
struct Enrolled {
    device_id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl PortalClient {
    /// Returns a client for the portal at `url`, trusting `tls`'s roots.
    pub fn new(url: &str, tls: TlsContext) -> Result<PortalClient, ClientError> {
        Ok(PortalClient {
            url: PortalUrl::parse(url)?,
            tls,
        })
    }

    /// Returns the portal's address.
    pub fn url(&self) -> &PortalUrl {
        &self.url
    }

    /// Enrols this device with a one-time token and returns its id.
    pub async fn enrol(
        &self,
        token: &str,
        public_key: &[u8; 32],
        label: &str,
    ) -> Result<String, ClientError> {
        let body = serde_json::json!({
            "token": token,
            "public_key": super::encode(public_key),
            "label": label,
        });
        let answer: Enrolled = self
            .exchange(
                "the enrolment",
                "POST",
                "/api/v1/devices",
                body.to_string().into_bytes(),
                None,
            )
            .await
            .and_then(|body| parse("the enrolment", &body))?;
        Ok(answer.device_id)
    }

    /// Uploads a sealed message.
    pub async fn upload(&self, device: &Device, upload: &Upload) -> Result<(), ClientError> {
        let body = serde_json::to_vec(upload).map_err(|error| ClientError::Answer {
            what: "the upload".to_owned(),
            reason: error.to_string(),
        })?;
        self.exchange("the upload", "POST", "/api/v1/messages", body, Some(device))
            .await
            .map(drop)
    }

    /// Replaces a message's second factor.
    pub async fn reissue(
        &self,
        device: &Device,
        id: &str,
        update: &FactorUpdate,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(update).map_err(|error| ClientError::Answer {
            what: "the new code".to_owned(),
            reason: error.to_string(),
        })?;
        let path = format!("/api/v1/messages/{id}/factor");
        self.exchange("the new code", "PUT", &path, body, Some(device))
            .await
            .map(drop)
    }

    /// Revokes a message: the portal deletes its ciphertext.
    pub async fn revoke(&self, device: &Device, id: &str) -> Result<(), ClientError> {
        let path = format!("/api/v1/messages/{id}/revoke");
        self.exchange("the revocation", "POST", &path, Vec::new(), Some(device))
            .await
            .map(drop)
    }

    /// Sets a message's expiry, Unix seconds.
    pub async fn extend(
        &self,
        device: &Device,
        id: &str,
        expires_at: i64,
    ) -> Result<(), ClientError> {
        let path = format!("/api/v1/messages/{id}/extend");
        let body = serde_json::json!({ "expires_at": expires_at }).to_string();
        self.exchange(
            "the new expiry",
            "POST",
            &path,
            body.into_bytes(),
            Some(device),
        )
        .await
        .map(drop)
    }

    /// Lists the events after sequence number `after`.
    pub async fn events(&self, device: &Device, after: i64) -> Result<Vec<Event>, ClientError> {
        let path = format!("/api/v1/events?after={after}");
        let body = self
            .exchange("the event list", "GET", &path, Vec::new(), Some(device))
            .await?;
        parse("the event list", &body)
    }

    /// Lists the replies after sequence number `after`.
    pub async fn replies(
        &self,
        device: &Device,
        after: i64,
    ) -> Result<Vec<SealedReply>, ClientError> {
        let path = format!("/api/v1/replies?after={after}");
        let body = self
            .exchange("the reply list", "GET", &path, Vec::new(), Some(device))
            .await?;
        parse("the reply list", &body)
    }

    /// Sends one request, signed when `device` is given, and returns the
    /// body of a 2xx response.
    async fn exchange(
        &self,
        what: &str,
        method: &str,
        path: &str,
        body: Vec<u8>,
        device: Option<&Device>,
    ) -> Result<Vec<u8>, ClientError> {
        let host = self.url.host.clone();
        match tokio::time::timeout(TIMEOUT, self.send(what, method, path, body, device)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::TimedOut { host }),
        }
    }

    async fn send(
        &self,
        what: &str,
        method: &str,
        path: &str,
        body: Vec<u8>,
        device: Option<&Device>,
    ) -> Result<Vec<u8>, ClientError> {
        let host = &self.url.host;
        let connect_error = |source| ClientError::Connect {
            host: host.clone(),
            source,
        };
        let http_error = |error: hyper::Error| ClientError::Http {
            host: host.clone(),
            reason: error.to_string(),
        };
        let tcp = net::connect_tcp(host, self.url.port)
            .await
            .map_err(connect_error)?;
        let tls = self
            .tls
            .handshake(tcp, host, self.url.port)
            .await
            .map_err(connect_error)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(http_error)?;
        // hyper makes progress only while the connection future is polled.
        let driver = tokio::spawn(connection);

        let full_path = format!("{}{path}", self.url.prefix);
        let mut request = Request::builder()
            .method(method)
            .uri(&full_path)
            .header(header::HOST, authority(&self.url))
            .header(
                header::USER_AGENT,
                concat!("Wardmail/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json");
        if let Some(device) = device {
            let created = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|_| ClientError::Clock)?
                .as_secs();
            let nonce = DeviceKey::new_nonce()?;
            let signed = device.key.sign_request(
                method,
                &self.url.target(path),
                &body,
                &device.id,
                created,
                &nonce,
            )?;
            for (name, value) in signed.all() {
                request = request.header(name, value);
            }
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| ClientError::Http {
                host: host.clone(),
                reason: error.to_string(),
            })?;
        let response = sender.send_request(request).await.map_err(http_error)?;
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| ClientError::Http {
                host: host.clone(),
                reason: error.to_string(),
            })?
            .to_bytes()
            .to_vec();
        drop(sender);
        driver.abort();
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .ok()
            .map(|body| body.error);
        Err(ClientError::Status {
            what: what.to_owned(),
            status,
            message,
        })
    }
}

fn authority(url: &PortalUrl) -> String {
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    if url.port == 443 {
        host
    } else {
        format!("{host}:{}", url.port)
    }
}

fn parse<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|error| ClientError::Answer {
        what: what.to_owned(),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let url = PortalUrl::parse("https://portal.clinic.example/").unwrap();
        assert_eq!(url.host, "portal.clinic.example");
        assert_eq!(url.port, 443);
        assert_eq!(url.prefix, "");
        assert_eq!(
            url.target("/api/v1/messages"),
            "https://portal.clinic.example/api/v1/messages"
        );

        let url = PortalUrl::parse("https://127.0.0.1:8443/portal").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 8443));
        assert_eq!(url.prefix, "/portal");
        assert_eq!(authority(&url), "127.0.0.1:8443");

        let url = PortalUrl::parse("https://[::1]:9000").unwrap();
        assert_eq!(url.host, "::1");
        assert_eq!(authority(&url), "[::1]:9000");
    }

    #[test]
    fn url_rejects_plain_http() {
        for bad in [
            "http://portal.example",
            "portal.example",
            "https://",
            "https://host:0",
            "https://host:99999",
            "https://user@host",
            "https://host/path?query",
        ] {
            let error = PortalUrl::parse(bad).unwrap_err().to_string();
            assert!(error.contains(bad.trim_end_matches('/')), "{error}");
        }
    }
}
