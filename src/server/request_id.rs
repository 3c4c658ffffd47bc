//! `X-Request-Id` on every response (API §1.2). A client-supplied id is echoed when it is a
//! sane token; otherwise the server makes a UUID. The id is the `request_id` field of the
//! request's tracing span, and a task-local so that [`super::ApiError`] can name it in the log
//! line of an internal error and in the message the client sees, without every handler
//! passing it along.

use std::borrow::Cow;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id echoed; longer ones are replaced so logs stay readable.
const MAX_ID_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: String;
}

/// The request's id, available to handlers as an extension (`Extension<RequestId>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Middleware: picks the id, opens the request span, and sets the response header.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_acceptable(value))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %escape_control(request.uri().path()),
    );
    let mut response = CURRENT
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "response"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

/// Visible ASCII without spaces, 1–128 characters: anything else could forge log lines.
fn is_acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|byte| byte.is_ascii_graphic())
}

/// `text` with control characters escaped (`\n`, `\u{1b}`), for log lines: a request path or
/// a name decoded from one (`%0A`, `%1B[31m`) must not start a forged log line or drive the
/// terminal that shows the log.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::escape_control;

    #[test]
    fn control_characters_are_escaped_for_logs() {
        assert_eq!(escape_control("/api/jobs"), "/api/jobs");
        assert_eq!(
            escape_control("ws\n2026-01-01 INFO forged\u{1b}[31m\u{7f}"),
            "ws\\n2026-01-01 INFO forged\\u{1b}[31m\\u{7f}"
        );
        assert_eq!(escape_control("tab\there"), "tab\\there");
    }
}
