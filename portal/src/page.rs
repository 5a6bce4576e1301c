//! The recipient's page and its assets, compiled into the binary, the
//! "gone" and "not found" pages, and the security headers on every response.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::app::App;
use crate::store::{Status, Store};
use crate::wire;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const NOTICE_HTML: &str = include_str!("../assets/notice.html");
const APP_CSS: &str = include_str!("../assets/app.css");
const APP_JS: &str = include_str!("../assets/app.js");
const SCHEME_JS: &str = include_str!("../assets/scheme.js");

/// The Content-Security-Policy of every response: scripts and styles only
/// from the portal itself, nothing inline, no framing, no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Adds the security headers of the scheme to every response, and
/// Strict-Transport-Security (one year) when `hsts` is set, that is when
/// the public URL is HTTPS.
pub async fn security_headers(State(hsts): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// `GET /m/{id}`: the page, the same for every live id. An expired or
/// revoked message gets the 410 page with the clinic's contact. Never
/// counts as an attempt and records no event.
pub async fn message_page<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Response {
    if !wire::is_id(&id) {
        return not_found_page(&app.config.contact);
    }
    match app.store.status(id, false, wire::now()).await {
        Ok(Some(Status::Open { .. } | Status::Locked { .. })) => Html(INDEX_HTML).into_response(),
        Ok(Some(Status::Gone { contact })) => notice(
            StatusCode::GONE,
            "This message is no longer available",
            "It has expired or the sender withdrew it. Please contact the clinic if you still need it.",
            &contact,
        ),
        Ok(None) => not_found_page(&app.config.contact),
        Err(error) => {
            tracing::error!(%error, "cannot load a message for its page");
            notice(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The portal has a problem",
                "Please try again in a few minutes.",
                &app.config.contact,
            )
        }
    }
}

fn not_found_page(contact: &str) -> Response {
    notice(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        "Please check that you opened the whole link from the e-mail.",
        contact,
    )
}

/// Any other path: a plain 404.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Fills the notice template; every value is escaped.
fn notice(status: StatusCode, heading: &str, text: &str, contact: &str) -> Response {
    let html = NOTICE_HTML
        .replace("{{heading}}", &escape_html(heading))
        .replace("{{text}}", &escape_html(text))
        .replace("{{contact}}", &escape_html(contact));
    (status, Html(html)).into_response()
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(character),
        }
    }
    out
}

/// `GET /assets/{name}`: the page's style and scripts.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "scheme.js" => (SCHEME_JS, "text/javascript; charset=utf-8"),
        _ => return not_found().await,
    };
    let content_type = (HeaderName::from_static("content-type"), content_type);
    ([content_type], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_html_special_characters() {
        assert_eq!(
            escape_html(r#"<b>"A&B's"</b>"#),
            "&lt;b&gt;&quot;A&amp;B&#39;s&quot;&lt;/b&gt;"
        );
    }
}
