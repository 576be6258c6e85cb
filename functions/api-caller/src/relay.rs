//! `ANY /hubspot/relay/{path+}`: a HubSpot-originated request, verified, forwarded to the
//! protected API with SigV4.
//!
//! Order of work: size bound (413) → HubSpot v3 signature over the public URI and the raw body,
//! an empty body for a GET included (401; nothing is forwarded) → the path below the relay
//! prefix in canonical form (400 for dot segments, encoded slashes, bad escapes) → the portal
//! id from HubSpot's `portalId` query parameter (400 when absent) → forward method, path, query
//! and body with the caller's end-to-end headers, minus everything in [`DROPPED_HEADERS`] and
//! the `x-amz-*`/`x-forwarded-*` families, plus `x-hsbridge-portal-id` → the API's status,
//! content type and body (bounded; 502 when larger or unreachable, 504 on timeout).

use crate::protected::{
    CallError, Outgoing, PathError, ProtectedApi, canonical_path, canonical_query, query_param,
};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hsbridge_platform::Clock;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::request::{public_uri, raw_path, request_id};
use hsbridge_platform::secrets::SecretSource;
use hsbridge_verify::{Policy, PublicBase, SignedRequest, verify};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub const RELAY_PREFIX: &str = "/hubspot/relay";
/// The header carrying the verified portal id to the protected API.
pub const PORTAL_HEADER: &str = "x-hsbridge-portal-id";
/// At most this many of the caller's headers are forwarded.
const MAX_FORWARDED_HEADERS: usize = 32;

/// Headers never forwarded: hop-by-hop (RFC 9110 §7.6.1), the caller's `Host` and
/// credentials, framing the client recomputes, claims about the network path, and HubSpot's
/// signature headers (meaningless past the relay).
pub const DROPPED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "cookie",
    "content-length",
    "expect",
    "forwarded",
    "via",
    "x-real-ip",
    "x-hubspot-signature",
    "x-hubspot-signature-v3",
    "x-hubspot-signature-version",
    "x-hubspot-request-timestamp",
];

/// The caller's headers that may travel on to the protected API.
pub fn forwardable_headers(headers: &HeaderMap) -> HeaderMap {
    let named_by_connection: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        let dropped = DROPPED_HEADERS.contains(&n)
            || n.starts_with("x-amz-")
            || n.starts_with("x-amzn-")
            || n.starts_with("x-forwarded-")
            || n.starts_with("x-hsbridge-")
            || named_by_connection.iter().any(|c| c == n);
        // Only visible ASCII travels: it is what SigV4 signs unambiguously.
        if dropped || value.to_str().is_err() || out.len() >= MAX_FORWARDED_HEADERS {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Tunables of the relay.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub public_base: Option<PublicBase>,
    pub max_body_bytes: usize,
    pub signature_window_ms: u64,
}

/// Everything a relay request needs; built once per cold start.
#[derive(Debug, Clone)]
pub struct RelayState {
    pub settings: RelaySettings,
    pub secrets: Arc<dyn SecretSource>,
    pub api: ProtectedApi,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
}

#[derive(Debug)]
struct Shared {
    state: RelayState,
    policy: Policy,
}

/// The relay's Router.
pub fn app(state: RelayState) -> Router {
    let policy = Policy::v3_only()
        .with_window_ms(state.settings.signature_window_ms)
        .unwrap_or_else(|_| Policy::v3_only());
    Router::new()
        .route(&format!("{RELAY_PREFIX}/{{*path}}"), any(relay))
        .with_state(Arc::new(Shared { state, policy }))
}

/// Why a request was not forwarded, or what went wrong forwarding it. Fixed bodies.
#[derive(Debug)]
enum Refusal {
    TooLarge,
    Unreadable,
    Unauthorized,
    BadPath(PathError),
    NoPortal,
    Unavailable,
    Upstream(CallError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Refusal::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "payload_too_large"}),
            ),
            Refusal::Unreadable => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "reason": "body could not be read"}),
            ),
            Refusal::Unauthorized => (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"})),
            Refusal::BadPath(e) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "reason": e.to_string()}),
            ),
            Refusal::NoPortal => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "reason": "the portalId query parameter is missing, repeated or not a number"}),
            ),
            Refusal::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "unavailable"}),
            ),
            Refusal::Upstream(CallError::Timeout(_)) => (
                StatusCode::GATEWAY_TIMEOUT,
                json!({"error": "upstream_timeout"}),
            ),
            Refusal::Upstream(_) => (StatusCode::BAD_GATEWAY, json!({"error": "bad_gateway"})),
        };
        (status, axum::Json(body)).into_response()
    }
}

async fn relay(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let span =
        tracing::info_span!("relay", request_id = %request_id(&parts), method = %parts.method);
    let mut metrics = shared.state.metrics.set();
    let outcome = forward(&shared, &parts, body)
        .instrument(span.clone())
        .await;
    let response = match outcome {
        Ok(upstream) => {
            metrics.count("RelayForwarded", 1);
            upstream
        }
        Err(refusal) => {
            match &refusal {
                Refusal::Unauthorized => metrics.count("RelayRejected", 1),
                Refusal::Upstream(e) => {
                    metrics.count("RelayUpstreamErrors", 1);
                    span.in_scope(|| tracing::warn!(error = %e, "protected API call failed"));
                }
                _ => metrics.count("RelayRefused", 1),
            }
            refusal.into_response()
        }
    };
    metrics.millis("RelayLatency", started.elapsed().as_millis());
    shared
        .state
        .metrics
        .flush(metrics, shared.state.clock.now_ms());
    response
}

async fn forward(
    shared: &Shared,
    parts: &http::request::Parts,
    body: axum::body::Body,
) -> Result<Response, Refusal> {
    let settings = &shared.state.settings;
    // 1. Size, before reading.
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_body_bytes as u64) {
        return Err(Refusal::TooLarge);
    }
    let body = match Limited::new(body, settings.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(Refusal::TooLarge);
        }
        Err(_) => return Err(Refusal::Unreadable),
    };
    // 2. HubSpot's signature, before anything else is looked at.
    let uri =
        public_uri(parts, settings.public_base.as_ref()).map_err(|_| Refusal::Unauthorized)?;
    let app = shared.state.secrets.hubspot_app().await.map_err(|e| {
        tracing::error!(error = %e, "HubSpot app secret unavailable");
        Refusal::Unavailable
    })?;
    let signed = SignedRequest {
        method: parts.method.as_str(),
        uri: &uri,
        body: &body,
        headers: &parts.headers,
    };
    if let Err(e) = verify(
        &signed,
        &app.secrets,
        &shared.policy,
        shared.state.clock.now_ms(),
    ) {
        tracing::info!(reason = %e, "relay request rejected");
        return Err(Refusal::Unauthorized);
    }
    // 3. What to forward.
    let below = raw_path(parts)
        .strip_prefix(RELAY_PREFIX)
        .filter(|rest| rest.starts_with('/'))
        .ok_or(Refusal::BadPath(PathError::BadEncoding))?;
    let path = canonical_path(below).map_err(Refusal::BadPath)?;
    let raw_query = parts.uri.query();
    let query = raw_query
        .map(canonical_query)
        .transpose()
        .map_err(Refusal::BadPath)?;
    let portal: u64 = query_param(raw_query, "portalId")
        .and_then(|p| p.parse().ok())
        .ok_or(Refusal::NoPortal)?;
    let mut headers = forwardable_headers(&parts.headers);
    headers.insert(
        HeaderName::from_static(PORTAL_HEADER),
        HeaderValue::from(portal),
    );
    // 4. Forward and answer with what the API said.
    let upstream = shared
        .state
        .api
        .send(Outgoing {
            method: parts.method.clone(),
            path,
            query,
            headers,
            body,
        })
        .await
        .map_err(Refusal::Upstream)?;
    tracing::info!(portal, status = upstream.status.as_u16(), "relayed");
    let mut response = (upstream.status, upstream.body).into_response();
    if let Some(ct) = upstream.content_type {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, ct);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_host_and_credentials_are_never_forwarded() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("host", "evil.example"),
            ("authorization", "AWS4-HMAC-SHA256 forged"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-amz-security-token", "forged"),
            ("x-amz-date", "20200101T000000Z"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-hsbridge-portal-id", "999"),
            ("x-hubspot-signature-v3", "sig"),
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("x-custom", "kept"),
        ] {
            h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let out = forwardable_headers(&h);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "accept", "x-custom"]);
    }

    #[test]
    fn non_ascii_header_values_are_not_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-name"),
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        assert!(forwardable_headers(&h).is_empty());
    }
}
