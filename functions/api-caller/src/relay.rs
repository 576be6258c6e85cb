//! `ANY /hubspot/relay/{path+}`: a HubSpot-originated request, verified, forwarded to the
//! protected API with SigV4.
//!
//! Order of work:
//! 1. the method is one `hubspot.fetch` can send (405 otherwise);
//! 2. size bound (413);
//! 3. the raw path's and query's syntax (400), before the MAC: no encoded `/` or `?` in the
//!    path and no `?` at all in the query (literal or `%3F`, any case), and nothing in the
//!    path an encoder would have escaped (a space, a non-ASCII byte, a stray `%`).
//!    HubSpot's v3 MAC decodes `%2F` and `%3F` before hashing, so one signature covers
//!    `/a%2Fb` and `/a/b`, and covers `/n/a%3Fp=1?q` and the same bytes re-split as path
//!    `/n/a` and query `p=1?q`. With these refused, the string the MAC covers holds at most one
//!    `?`, which is the split: the path and query (and so the portal) that are forwarded are
//!    determined by the signed bytes after the MAC's own decoding, whatever raw form carried
//!    them. What stays is inherent to the MAC: a signed `/a%2Fb` is refused and the same
//!    signature on `/a/b` forwards `/a/b`, which is what was signed; so a relay path cannot
//!    carry a `/` inside a segment, nor a query value a `?` (send such values in a body).
//!    The last kind of refusal is what a path looks like after API Gateway's HTTP API decoded
//!    it on the way (reported from live captures): its signature cannot be checked, and the
//!    refusal says why rather than answering 401;
//! 4. HubSpot's v3 signature over the public URI and the raw body, a GET's empty body included
//!    (401; nothing is forwarded);
//! 5. the path below the relay's public prefix in canonical form (400 for dot segments,
//!    segments a server reads as one such as `..;`, and bad escapes), put below the relay's
//!    own prefix of the protected API
//!    (`HSBRIDGE_RELAY_TARGET_PREFIX`, `/hubspot/relay` by default): the relay can reach no
//!    other route, the events route the api-caller delivers to included, and its IAM grant
//!    covers that prefix only;
//! 6. the portal id from HubSpot's `portalId` query parameter (400 when absent, repeated or
//!    not a plain number), and the body: none on a GET, else one JSON object or array (400),
//!    which is all `hubspot.fetch` sends. v3 hashes `METHOD + URI' + body + timestamp` with
//!    nothing between the parts, so without this the end of a signed query could move into the
//!    body, or the start of the body into the query, under the same signature
//!    (`?portalId=62515` with no body sent as `?portalId=6` with body `2515`). With a query
//!    that holds no `{` or `[` (step 3) and a body that must start with one, there is one split
//!    only. (The timestamp's side of the same concatenation is closed in `hsbridge_verify`: no
//!    leading zero.);
//! 7. the caller's context HubSpot appended to the query (`appId`, `userId`, `userEmail`) as
//!    headers, each present at most once and carriable as a plain header (400 otherwise), and
//!    the idempotency key of the signed request ([`crate::context`]);
//! 8. forward method, path, query and body with the caller's headers from a short allowlist
//!    ([`FORWARDED_HEADERS`]) plus `x-hsbridge-portal-id`, the context headers and
//!    `x-hsbridge-idempotency-key`, all set by the relay, and a W3C `traceparent` derived from
//!    the Lambda invocation's X-Ray trace (never the caller's) → the API's status, content type
//!    and body (bounded; 502 when larger or unreachable, 504 on timeout).

use crate::context::{ContextError, IDEMPOTENCY_HEADER, context_headers, idempotency_key};
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
use hsbridge_verify::{
    HEADER_SIGNATURE_V3, Policy, PublicBase, SignedRequest, v3_signature_bytes, verify,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Where the relay listens on the public API.
pub const RELAY_PREFIX: &str = "/hubspot/relay";
/// The header carrying the verified portal id to the protected API.
pub use crate::context::PORTAL_HEADER;
/// At most this many of the caller's headers are forwarded.
const MAX_FORWARDED_HEADERS: usize = 32;

/// The methods `hubspot.fetch` sends
/// (<https://developers.hubspot.com/docs/guides/crm/public-apps/fetching-data>, "Method").
/// The relay's IAM grant names the same five.
pub const FORWARDED_METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The only request headers that travel on to the protected API (exact, lower-case names).
/// An allowlist, not a denylist: a backend that maps `-` and `_` to one variable (WSGI, CGI)
/// would read `x-hsbridge_portal-id` as the verified portal header, and HubSpot sends no
/// custom headers on `hubspot.fetch` anyway. Everything else is dropped: hop-by-hop headers,
/// `Host`, credentials, cookies, network-path claims, `x-amz-*`, HubSpot's signature headers.
pub const FORWARDED_HEADERS: &[&str] = &["content-type", "accept", "accept-language", "user-agent"];

/// The caller's headers that may travel on to the protected API: those in
/// [`FORWARDED_HEADERS`] with a visible-ASCII value (what SigV4 signs unambiguously), at most
/// [`MAX_FORWARDED_HEADERS`] values.
pub fn forwardable_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if out.len() >= MAX_FORWARDED_HEADERS {
            break;
        }
        if FORWARDED_HEADERS.contains(&name.as_str()) && value.to_str().is_ok() {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Why a raw relay path is refused before its signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RawPathError {
    #[error("the path is not below the relay's prefix")]
    OutsidePrefix,
    #[error(
        "the path contains an encoded / or ? (%2F, %3F in any case): HubSpot's signature decodes them, so the request's path would be ambiguous"
    )]
    EncodedDelimiter,
    #[error(
        "the query contains a ? (literal or %3F in any case): HubSpot's signature decodes %3F, so where the path ends would be ambiguous; send such values in the body"
    )]
    QuestionMarkInQuery,
    #[error(
        "the query contains a literal {{ or [: HubSpot's signature runs the query into the body with nothing between them, so where the body starts would be ambiguous; percent-encode them"
    )]
    BracketInQuery,
    #[error("the path has an empty segment (//)")]
    EmptySegment,
    #[error(
        "the path contains a character a client sends percent-encoded (a space, a non-ASCII or control byte, or a % without two hex digits): it was decoded on the way (API Gateway HTTP APIs decode the path), so HubSpot's signature cannot be checked; keep relay paths to letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @"
    )]
    DecodedInTransit,
}

/// The part of a raw relay path below [`RELAY_PREFIX`], if it is one whose signature and
/// forwarding are unambiguous (see the module docs, step 3). Looks at syntax only.
pub fn relay_path_below_prefix(raw: &str) -> Result<&str, RawPathError> {
    let below = raw
        .strip_prefix(RELAY_PREFIX)
        .filter(|rest| rest.starts_with('/'))
        .ok_or(RawPathError::OutsidePrefix)?;
    // An empty segment is kept by the canonical form but read differently by servers.
    if below.contains("//") {
        return Err(RawPathError::EmptySegment);
    }
    let bytes = below.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' {
            let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return Err(RawPathError::DecodedInTransit);
            };
            if !(hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit()) {
                return Err(RawPathError::DecodedInTransit);
            }
            if matches!((hi, lo.to_ascii_uppercase()), (b'2', b'F') | (b'3', b'F')) {
                return Err(RawPathError::EncodedDelimiter);
            }
        } else if !is_literal_path_byte(b) {
            return Err(RawPathError::DecodedInTransit);
        }
    }
    Ok(below)
}

/// Where a verified relay request goes on the protected API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTarget {
    /// Canonical path, always below the target prefix.
    pub path: String,
    /// Canonical query, without `?`.
    pub query: Option<String>,
    /// HubSpot's `portalId`, present exactly once.
    pub portal: u64,
}

/// Why a verified request cannot be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    BadPath(PathError),
    NoPortal,
}

/// Why a verified request's body cannot be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("a GET carries no body")]
    BodyOnGet,
    #[error("the body is not one JSON object or array (what hubspot.fetch sends)")]
    NotJson,
}

/// A body the relay forwards: none on a GET, else one JSON object or array starting at its
/// first byte (see the module docs, step 6b). Parsed only to be checked; forwarded as received.
pub fn check_relay_body(method: &Method, body: &[u8]) -> Result<(), BodyError> {
    if body.is_empty() {
        return Ok(());
    }
    if method == Method::GET {
        return Err(BodyError::BodyOnGet);
    }
    let starts_as_container = matches!(body.first(), Some(b'{' | b'['));
    // Skipping a value is iterative in serde_json: any depth is checked in bounded stack.
    if !starts_as_container || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return Err(BodyError::NotJson);
    }
    Ok(())
}

/// The target of a verified request: `below` (the raw path below [`RELAY_PREFIX`], as
/// [`relay_path_below_prefix`] returned it) in canonical form under `target_prefix`, the
/// canonical query, and the portal.
pub fn relay_target(
    below: &str,
    raw_query: Option<&str>,
    target_prefix: &str,
) -> Result<RelayTarget, TargetError> {
    let path = format!(
        "{target_prefix}{}",
        canonical_path(below).map_err(TargetError::BadPath)?
    );
    let query = raw_query
        .map(canonical_query)
        .transpose()
        .map_err(TargetError::BadPath)?;
    // Digits only, no sign and no leading zero: one spelling per portal.
    let portal = query_param(raw_query, "portalId")
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()) && !p.starts_with('0') && !p.is_empty())
        .and_then(|p| p.parse().ok())
        .ok_or(TargetError::NoPortal)?;
    Ok(RelayTarget {
        path,
        query,
        portal,
    })
}

/// Refuses a raw query holding `?` or `%3F` (any case): see the module docs, step 3.
pub fn check_relay_query(raw: Option<&str>) -> Result<(), RawPathError> {
    let Some(query) = raw else { return Ok(()) };
    let bytes = query.as_bytes();
    let encoded_question_mark = bytes
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'3' && w[2].eq_ignore_ascii_case(&b'F'));
    if bytes.contains(&b'?') || encoded_question_mark {
        return Err(RawPathError::QuestionMarkInQuery);
    }
    if bytes.contains(&b'{') || bytes.contains(&b'[') {
        return Err(RawPathError::BracketInQuery);
    }
    Ok(())
}

/// A byte a URL serialiser leaves literal in a path: RFC 3986 `pchar` and `/`, plus `|`, `^`,
/// `[`, `]` that WHATWG's path serialisation (a browser's, or HubSpot's JavaScript) also leaves
/// as they are. `?` and `#` would end the path; the rest is escaped by every client.
fn is_literal_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'|'
                | b'^'
                | b'['
                | b']'
        )
}

/// Tunables of the relay.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub public_base: Option<PublicBase>,
    pub max_body_bytes: usize,
    pub signature_window_ms: u64,
    /// Canonical path of the protected API under which requests are forwarded (no trailing
    /// `/`): `/hubspot/relay/x` on the public API goes to `<base><target_prefix>/x`.
    pub target_prefix: String,
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
    MethodNotAllowed,
    TooLarge,
    Unreadable,
    Unauthorized,
    BadPath(PathError),
    BadRawPath(RawPathError),
    BadBody(BodyError),
    BadContext(ContextError),
    NoPortal,
    Unavailable,
    Upstream(CallError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Refusal::MethodNotAllowed => {
                let body = json!({"error": "method_not_allowed"});
                let mut response =
                    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response();
                response.headers_mut().insert(
                    http::header::ALLOW,
                    HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
                );
                return response;
            }
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
            Refusal::BadRawPath(e) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "reason": e.to_string()}),
            ),
            Refusal::BadBody(e) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "reason": e.to_string()}),
            ),
            Refusal::BadContext(e) => (
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
    // 1. A method hubspot.fetch sends.
    if !FORWARDED_METHODS.contains(&parts.method) {
        return Err(Refusal::MethodNotAllowed);
    }
    // 2. Size, before reading.
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
    // 3. A raw path with one reading: the MAC's decoding cannot move the path/query split.
    let below = relay_path_below_prefix(raw_path(parts))
        .and_then(|below| check_relay_query(parts.uri.query()).map(|()| below))
        .map_err(|e| {
            tracing::info!(reason = %e, "relay request refused before verification");
            Refusal::BadRawPath(e)
        })?;
    // 4. HubSpot's signature, before anything else is looked at.
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
    // 5–6. What to forward, below the relay's own prefix of the protected API.
    let RelayTarget {
        path,
        query,
        portal,
    } = relay_target(below, parts.uri.query(), &settings.target_prefix).map_err(|e| match e {
        TargetError::BadPath(e) => Refusal::BadPath(e),
        TargetError::NoPortal => Refusal::NoPortal,
    })?;
    check_relay_body(&parts.method, &body).map_err(Refusal::BadBody)?;
    // 7. The caller's context and the idempotency key, set by the relay only.
    let context = context_headers(parts.uri.query()).map_err(Refusal::BadContext)?;
    // The verified signature's bytes, not the URI's or the header's text: a replay respelled
    // (`%40` as `@`, a `+` as a space) verifies too and must keep the original's key.
    let signature = parts
        .headers
        .get(HEADER_SIGNATURE_V3)
        .map(HeaderValue::as_bytes)
        .and_then(|raw| v3_signature_bytes(raw).ok())
        .ok_or(Refusal::Unauthorized)?;
    let key = idempotency_key(&signature);
    let mut headers = forwardable_headers(&parts.headers);
    headers.insert(
        HeaderName::from_static(PORTAL_HEADER),
        HeaderValue::from(portal),
    );
    headers.extend(context);
    headers.insert(
        HeaderName::from_static(IDEMPOTENCY_HEADER),
        HeaderValue::from_str(&key).map_err(|_| Refusal::Unavailable)?,
    );
    // The invocation's own X-Ray trace as a W3C traceparent, signed with the rest; a caller's
    // traceparent is never forwarded (it is not in FORWARDED_HEADERS).
    if let Some(value) = hsbridge_platform::trace::of_invocation(parts)
        .and_then(|t| t.traceparent())
        .and_then(|t| HeaderValue::from_str(&t).ok())
    {
        headers.insert(
            HeaderName::from_static(hsbridge_platform::trace::TRACEPARENT),
            value,
        );
    }
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
    fn only_allowlisted_headers_are_forwarded() {
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
            ("x-hsbridge_portal-id", "999"),
            ("x_hsbridge_portal_id", "999"),
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("x-custom", "dropped"),
            ("user-agent", "HubSpot"),
        ] {
            h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let out = forwardable_headers(&h);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "accept", "user-agent"]);
    }

    #[test]
    fn no_header_the_relay_sets_itself_is_ever_taken_from_the_caller() {
        for name in crate::context::RELAY_SET_HEADERS {
            assert!(!FORWARDED_HEADERS.contains(name), "{name}");
            let mut h = HeaderMap::new();
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_static("forged"),
            );
            assert!(forwardable_headers(&h).is_empty(), "{name}");
        }
    }

    #[test]
    fn an_underscore_spelling_of_the_portal_header_is_not_forwarded() {
        // WSGI/CGI backends read `x-hsbridge_portal-id` as HTTP_X_HSBRIDGE_PORTAL_ID.
        let mut h = HeaderMap::new();
        h.append(
            HeaderName::from_static("x-hsbridge_portal-id"),
            HeaderValue::from_static("999"),
        );
        assert!(forwardable_headers(&h).is_empty());
    }

    #[test]
    fn encoded_delimiters_in_the_raw_path_are_refused_in_any_case() {
        for raw in [
            "/hubspot/relay/a%2Fb",
            "/hubspot/relay/a%2fb",
            "/hubspot/relay/notes/a%3FportalId=999&x=",
            "/hubspot/relay/a%3f",
        ] {
            assert_eq!(
                relay_path_below_prefix(raw),
                Err(RawPathError::EncodedDelimiter),
                "{raw}"
            );
        }
        // Escaped escapes are data, not delimiters, for the MAC and for the protected API.
        assert_eq!(
            relay_path_below_prefix("/hubspot/relay/a%252Fb"),
            Ok("/a%252Fb")
        );
    }

    #[test]
    fn a_question_mark_anywhere_in_the_query_is_refused() {
        for q in [
            "portalId=999&x=?portalId=62515",
            "q=what%3F",
            "q=%3f&portalId=1",
            "?",
        ] {
            assert_eq!(
                check_relay_query(Some(q)),
                Err(RawPathError::QuestionMarkInQuery),
                "{q}"
            );
        }
        assert_eq!(check_relay_query(Some("portalId=62515&q=%253F")), Ok(()));
        assert_eq!(check_relay_query(None), Ok(()));
    }

    #[test]
    fn a_path_decoded_on_the_way_is_refused_with_its_reason() {
        for raw in [
            "/hubspot/relay/a b",
            "/hubspot/relay/caf\u{e9}",
            "/hubspot/relay/100%",
            "/hubspot/relay/100%zz",
            "/hubspot/relay/a\"b",
            "/hubspot/relay/a{b}",
        ] {
            assert_eq!(
                relay_path_below_prefix(raw),
                Err(RawPathError::DecodedInTransit),
                "{raw:?}"
            );
        }
        assert_eq!(
            relay_path_below_prefix("/hubspot/relay/deals/42:x@y!$&'()*+,;="),
            Ok("/deals/42:x@y!$&'()*+,;=")
        );
        assert_eq!(
            relay_path_below_prefix("/hubspot/relay/a%20b%E2%9C%93"),
            Ok("/a%20b%E2%9C%93")
        );
    }

    /// Pieces of a raw relay URL after `/hubspot/relay/`: plain text, the structural
    /// characters, and escapes, some of which HubSpot's MAC decodes (`%2F %3F %3A %40 %2C`, in
    /// both cases) and some it keeps (`%20 %25 %26 %3D`).
    const PIECES: &[&str] = &[
        "a",
        "b",
        "42",
        "/",
        "?",
        "&",
        "=",
        "portalId=1",
        "portalId=2",
        "portalId=",
        "%2F",
        "%2f",
        "%3F",
        "%3f",
        ":",
        "%3A",
        "%3a",
        "@",
        "%40",
        ",",
        "%2C",
        "%20",
        "%25",
        "%26",
        "%3D",
        ".",
        "%2E",
        "+",
    ];

    /// The same character spelled another way the MAC cannot tell apart.
    fn respell(piece: &str, choice: u8) -> &str {
        let spellings: &[&str] = match piece {
            "/" | "%2F" | "%2f" => &["/", "%2F", "%2f"],
            "?" | "%3F" | "%3f" => &["?", "%3F", "%3f"],
            ":" | "%3A" | "%3a" => &[":", "%3A", "%3a"],
            "@" | "%40" => &["@", "%40"],
            "," | "%2C" => &[",", "%2C"],
            other => return other,
        };
        spellings[usize::from(choice) % spellings.len()]
    }

    /// Splits a raw URL at its first literal `?`, as an HTTP server does.
    fn split(raw: &str) -> (&str, Option<&str>) {
        match raw.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (raw, None),
        }
    }

    /// The relay's decision for one raw form, signature aside.
    fn decide(raw: &str) -> Option<RelayTarget> {
        let (path, query) = split(raw);
        let below = relay_path_below_prefix(path).ok()?;
        check_relay_query(query).ok()?;
        relay_target(below, query, "/hubspot/relay").ok()
    }

    /// What HubSpot meant by a raw URL it signed: split at its first literal `?`, each part
    /// decoded once, no refusal for ambiguity.
    fn intent(raw: &str) -> Option<RelayTarget> {
        let (path, query) = split(raw);
        relay_target(path.strip_prefix(RELAY_PREFIX)?, query, "/hubspot/relay").ok()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn two_raw_forms_one_signature_covers_are_never_forwarded_differently(
            path in proptest::collection::vec((0..PIECES.len(), proptest::num::u8::ANY), 1..8),
            query in proptest::collection::vec((0..PIECES.len(), proptest::num::u8::ANY), 0..4),
        ) {
            // As HubSpot calls it: the card's URL, then `?portalId=...` (or `&` when the card's
            // URL has a query already).
            let spell = |pieces: &[(usize, u8)], respelt: bool| -> String {
                pieces
                    .iter()
                    .map(|(i, c)| if respelt { respell(PIECES[*i], *c) } else { PIECES[*i] })
                    .collect()
            };
            let url = |respelt: bool| {
                let mut url = format!("/hubspot/relay/{}", spell(&path, respelt));
                url.push('?');
                if !query.is_empty() {
                    url.push_str(&spell(&query, respelt));
                    url.push('&');
                }
                url.push_str("portalId=62515");
                url
            };
            let (first, second) = (url(false), url(true));
            // One signature covers both: the MAC hashes the same string (both readings).
            let decoded = |raw: &str| crate::relay::tests::mac_string(raw);
            proptest::prop_assert_eq!(decoded(&first), decoded(&second));
            if let (Some(a), Some(b)) = (decide(&first), decide(&second)) {
                proptest::prop_assert_eq!(&a, &b, "{} and {} forward differently", first, second);
            }
            if let Some(target) = decide(&first) {
                proptest::prop_assert!(target.path.starts_with("/hubspot/relay/"));
            }
            // Whatever raw form carried a signature, what is forwarded is what HubSpot meant
            // by the URL it signed (where that had a meaning at all).
            if let (Some(forwarded), Some(meant)) = (decide(&second), intent(&first)) {
                proptest::prop_assert_eq!(
                    &forwarded, &meant, "{} was signed, {} forwarded otherwise", first, second
                );
            }
        }
    }

    /// What the v3 MAC covers of a raw URL, in the reading that decodes either case.
    fn mac_string(raw: &str) -> String {
        let upper = hsbridge_verify::selectively_decode_uri(raw).into_owned();
        // The 12 escapes in lower case too, as the verifier's second reading does.
        let mut out = String::new();
        let mut rest = upper.as_str();
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
            let decoded =
                hsbridge_verify::selectively_decode_uri(&esc.to_ascii_uppercase()).into_owned();
            if decoded.len() == 1 {
                out.push_str(&decoded);
            } else {
                out.push_str(esc);
            }
            rest = &rest[i + esc.len()..];
        }
        out.push_str(rest);
        out
    }

    /// The relay's decision for a request with a body, signature aside.
    fn decide_with_body(method: &Method, raw: &str, body: &[u8]) -> Option<RelayTarget> {
        let target = decide(raw)?;
        check_relay_body(method, body).ok()?;
        Some(target)
    }

    const BODIES: &[&str] = &["", "{}", "[1]", r#"{"note":"x"}"#, r#"{"a":[0,{"b":"}"}]}"#];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        #[test]
        fn a_signed_query_and_body_cannot_trade_bytes_under_one_signature(
            query in proptest::collection::vec(0..PIECES.len(), 0..5),
            body in 0..BODIES.len(),
            method in 0..FORWARDED_METHODS.len(),
        ) {
            let method = &FORWARDED_METHODS[method];
            let body = if *method == Method::GET { "" } else { BODIES[body] };
            let query: String = query.iter().map(|i| PIECES[*i]).collect();
            let url = format!("/hubspot/relay/notes?{query}&portalId=62515");
            let signed = format!("{}{body}", mac_string(&url));
            let genuine = decide_with_body(method, &url, body.as_bytes());
            for k in 1..=url.len().min(24) {
                // The end of the URL moved into the body...
                let (short, tail) = url.split_at(url.len() - k);
                let longer_body = format!("{tail}{body}");
                if format!("{}{longer_body}", mac_string(short)) == signed {
                    let shifted = decide_with_body(method, short, longer_body.as_bytes());
                    proptest::prop_assert!(
                        shifted.is_none() || shifted == genuine,
                        "{url} + {body:?} forwarded as {short} + {longer_body:?}: {shifted:?}"
                    );
                }
            }
            for k in 1..=body.len() {
                // ...or the start of the body moved into the URL.
                let (head, rest) = body.split_at(k);
                let longer = format!("{url}{head}");
                if format!("{}{rest}", mac_string(&longer)) == signed {
                    let shifted = decide_with_body(method, &longer, rest.as_bytes());
                    proptest::prop_assert!(
                        shifted.is_none(),
                        "{url} + {body:?} forwarded as {longer} + {rest:?}: {shifted:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_end_of_a_signed_query_moved_into_the_body_is_refused() {
        let get = decide_with_body(
            &Method::GET,
            "/hubspot/relay/notes?userId=77&portalId=6",
            b"2515&appId=123",
        );
        assert_eq!(get, None, "a GET with the query's tail as its body");
        let post = decide_with_body(
            &Method::POST,
            "/hubspot/relay/notes?portalId=62",
            br#"515{"note":"x"}"#,
        );
        assert_eq!(post, None, "a POST whose body starts with the query's tail");
        let head = decide_with_body(
            &Method::POST,
            "/hubspot/relay/notes?portalId=62515&a={",
            br#""x":1}"#,
        );
        assert_eq!(head, None, "the body's first byte moved into the query");
    }

    #[test]
    fn a_portal_has_one_spelling() {
        for q in [
            "portalId=01",
            "portalId=%2B1",
            "portalId=+1",
            "portalId=",
            "portalId=1e3",
        ] {
            assert_eq!(
                relay_target("/x", Some(q), "/hubspot/relay"),
                Err(TargetError::NoPortal),
                "{q}"
            );
        }
        assert_eq!(
            relay_target("/x", Some("portalId=%31"), "/hubspot/relay").map(|t| t.portal),
            Ok(1)
        );
    }

    #[test]
    fn an_empty_path_segment_is_refused_and_a_trailing_slash_kept() {
        assert_eq!(
            relay_path_below_prefix("/hubspot/relay//x"),
            Err(RawPathError::EmptySegment)
        );
        assert_eq!(
            relay_path_below_prefix("/hubspot/relay/a//b"),
            Err(RawPathError::EmptySegment)
        );
        assert_eq!(
            relay_path_below_prefix("/hubspot/relay/a//"),
            Err(RawPathError::EmptySegment)
        );
        assert_eq!(relay_path_below_prefix("/hubspot/relay/a/"), Ok("/a/"));
    }

    #[test]
    fn the_re_split_of_a_signed_encoded_question_mark_is_refused() {
        // Signed as /hubspot/relay/notes/a%3FportalId=999&x= with HubSpot's ?portalId=62515.
        let signed = "/hubspot/relay/notes/a%3FportalId=999&x=?portalId=62515";
        let resplit = "/hubspot/relay/notes/a?portalId=999&x=?portalId=62515";
        assert_eq!(mac_string(signed), mac_string(resplit));
        assert_eq!(decide(signed), None);
        assert_eq!(decide(resplit), None, "the re-split form chose portal 999");
    }

    #[test]
    fn only_paths_below_the_relay_prefix_are_taken() {
        for raw in [
            "/hubspot/relay",
            "/hubspot/relayx/a",
            "/webhooks/hubspot",
            "",
        ] {
            assert_eq!(
                relay_path_below_prefix(raw),
                Err(RawPathError::OutsidePrefix),
                "{raw}"
            );
        }
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
