//! What a handler needs from the HTTP request beyond its body: the public URI HubSpot signed,
//! and a request id for logs.
//!
//! Under Lambda, `uri()` has been rebuilt by lambda_http (normalised, maybe with a stage
//! inserted) and must never be used as signature input; `raw_http_path()` is the path as the
//! client sent it. Locally (axum on a socket) `raw_http_path()` is empty and `uri().path()` is
//! already raw.

use hsbridge_verify::{PublicBase, UriError, rebuild_public_uri};
use http::request::Parts;
use lambda_http::RequestExt;

/// The full public URI of the request, as HubSpot called it.
pub fn public_uri(parts: &Parts, base: Option<&PublicBase>) -> Result<String, UriError> {
    rebuild_public_uri(base, &parts.headers, raw_path(parts), parts.uri.query())
}

/// The path exactly as the client sent it, under Lambda or on a local socket.
pub fn raw_path(parts: &Parts) -> &str {
    let raw = parts.raw_http_path();
    if raw.is_empty() {
        parts.uri.path()
    } else {
        raw
    }
}

/// Lambda's request id when running under Lambda, else `"local"`.
pub fn request_id(parts: &Parts) -> String {
    parts
        .lambda_context_ref()
        .map_or_else(|| "local".to_owned(), |c| c.request_id.clone())
}
