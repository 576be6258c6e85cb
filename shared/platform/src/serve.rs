//! Run one `Router` under the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is set, otherwise on
//! a local socket, so the same handler code serves Lambda, local work and tests.
//!
//! Under Lambda each invocation goes through [`handle_event`]: the raw event is checked to be
//! convertible before lambda_http converts it into an `http::Request`. lambda_http 1.3 panics
//! during that conversion on some inputs a client controls (a `rawQueryString` with `"`, `<` or
//! a space; a `Host` that fails IDNA; a body marked base64 that is not), and with
//! `panic = "abort"` each such request would kill the instance. Such an event is answered with a
//! 400 in the response shape of its event kind; everything else takes exactly lambda_http's path
//! (its request conversion, extensions and response conversion).
//!
//! What this module must never do: change an event before conversion (the request a handler
//! verifies is the request that arrived), or panic on any event.

use axum::Router;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, StatusCode};
use lambda_http::aws_lambda_events::alb::AlbTargetGroupResponse;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::encodings::Body as LambdaBody;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::request::{LambdaRequest, RequestOrigin};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tower::ServiceExt;

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "could not listen on {addr}: {source}; is another process using the port? Set HSBRIDGE_LOCAL_ADDR to another address"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the local server stopped: {0}")]
    Local(#[source] std::io::Error),
    #[error("the Lambda runtime stopped: {0}")]
    Lambda(String),
}

/// Where [`run`] listens outside Lambda.
pub const LOCAL_ADDR: &str = "HSBRIDGE_LOCAL_ADDR";
/// lambda_http's switch (read by it and by [`handle_event`]'s check) to route on the path
/// without the stage: the template sets it for every HTTP function.
pub const IGNORE_STAGE_IN_PATH: &str = "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH";
/// The variables an HTTP function reads through this module, beyond what Lambda sets
/// (`AWS_LAMBDA_RUNTIME_API`).
pub const VARIABLES: &[&str] = &[LOCAL_ADDR, IGNORE_STAGE_IN_PATH];

/// Serve `router` under Lambda, or locally on `HSBRIDGE_LOCAL_ADDR` (default `local_default`).
pub async fn run(router: Router, local_default: &str) -> Result<(), ServeError> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        let handler = lambda_runtime::service_fn(move |event: LambdaEvent<Box<RawValue>>| {
            let router = router.clone();
            async move { Ok::<Value, std::convert::Infallible>(handle_event(router, event).await) }
        });
        return lambda_runtime::run(handler)
            .await
            .map_err(|e| ServeError::Lambda(e.to_string()));
    }
    let addr = std::env::var(LOCAL_ADDR).unwrap_or_else(|_| local_default.to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    tracing::info!(%addr, "serving locally");
    axum::serve(listener, router)
        .await
        .map_err(ServeError::Local)
}

/// Why an event was answered with 400 before any handler saw it. The text is fixed and safe to
/// send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unconvertible {
    /// Not an API Gateway (HTTP API, REST API), function URL or ALB request event, or one with
    /// a field of the wrong type or a header that is not a header.
    #[error("not an HTTP request event")]
    NotAnHttpEvent,
    /// An event kind this function does not serve.
    #[error("unsupported event kind")]
    UnsupportedEvent,
    /// The scheme (`X-Forwarded-Proto`), host or path do not form a URL.
    #[error("the host, scheme or path is not valid in a URL")]
    BadUrl,
    /// The URL with its query string is not a valid request target (characters a URI cannot
    /// hold, or too long).
    #[error("the request target is not a valid URI")]
    BadUri,
    /// `isBase64Encoded` is set and the body is not standard base64.
    #[error("the body is marked base64 but is not base64")]
    BadBase64Body,
}

/// The response shape an event kind expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// API Gateway REST API (payload 1.0); also the answer to an event of unknown kind.
    RestV1,
    /// HTTP API (payload 2.0) and function URLs.
    HttpV2,
    Alb,
}

impl Shape {
    fn of(origin: &RequestOrigin) -> Self {
        match origin {
            RequestOrigin::ApiGatewayV2 => Shape::HttpV2,
            RequestOrigin::Alb => Shape::Alb,
            _ => Shape::RestV1,
        }
    }

    /// The kind of an event that did not deserialize, read from the fields that tell them
    /// apart (as far as they are present).
    fn sniff(event: &str) -> Self {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            version: Option<Value>,
            #[serde(default, rename = "requestContext")]
            request_context: Option<Context>,
        }
        #[derive(Deserialize)]
        struct Context {
            #[serde(default)]
            elb: Option<serde::de::IgnoredAny>,
            #[serde(default)]
            http: Option<serde::de::IgnoredAny>,
        }
        let Ok(probe) = serde_json::from_str::<Probe>(event) else {
            return Shape::RestV1;
        };
        let context = probe.request_context;
        if context.as_ref().is_some_and(|c| c.elb.is_some()) {
            Shape::Alb
        } else if context.as_ref().is_some_and(|c| c.http.is_some())
            || probe.version.as_ref().and_then(Value::as_str) == Some("2.0")
        {
            Shape::HttpV2
        } else {
            Shape::RestV1
        }
    }
}

/// One invocation of the deployed function without the runtime: the raw event in, the response
/// document out. The runtime calls this for every event; tests call it directly.
///
/// An event lambda_http could not convert without panicking, or could not deserialize at all,
/// gets a 400 in its kind's response shape; every other event is converted by lambda_http and
/// answered by `router` exactly as `lambda_http::run(router)` would.
pub async fn handle_event(router: Router, event: LambdaEvent<Box<RawValue>>) -> Value {
    let LambdaEvent { payload, context } = event;
    let request: LambdaRequest = match serde_json::from_str(payload.get()) {
        Ok(request) => request,
        Err(_) => {
            let reason = Unconvertible::NotAnHttpEvent;
            tracing::warn!(%reason, "event refused before conversion");
            return refusal(Shape::sniff(payload.get()), StatusCode::BAD_REQUEST, reason);
        }
    };
    drop(payload);
    let shape = Shape::of(&request.request_origin());
    if let Err(reason) = check_convertible(&request) {
        tracing::warn!(%reason, "event refused before conversion");
        return refusal(shape, StatusCode::BAD_REQUEST, reason);
    }
    let adapter = lambda_http::Adapter::from(router);
    let response = match adapter.oneshot(LambdaEvent::new(request, context)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    serde_json::to_value(&response).unwrap_or_else(|e| {
        // A header value that is not UTF-8 cannot travel in Lambda's JSON; the runtime would
        // fail the invocation the same way.
        tracing::error!(error = %e, "the response cannot be encoded for Lambda");
        internal_error(shape)
    })
}

/// Whether lambda_http 1.3's conversion of `request` into an `http::Request` completes.
///
/// The conversion's only failure points are two `Url::parse(..).unwrap()`s in
/// `build_request_uri`, the request builder's `expect` (which fails only when the URI string does
/// not parse as an `http::Uri`), and `Body::from_maybe_encoded`'s `expect` on base64. This runs
/// those same fallible operations on the same inputs, built the same way, so when it answers
/// `Ok` the conversion cannot panic. The differential test below holds it to that.
pub fn check_convertible(request: &LambdaRequest) -> Result<(), Unconvertible> {
    match request {
        LambdaRequest::ApiGatewayV2(ag) => {
            let host = host(&ag.headers, ag.request_context.domain_name.as_deref());
            let path = apigw_path_with_stage(
                ag.request_context.stage.as_deref(),
                ag.raw_path.as_deref().unwrap_or_default(),
            );
            let mut uri = request_uri(&path, &ag.headers, host, None)?;
            if let Some(query) = ag.raw_query_string.as_deref()
                && !query.is_empty()
            {
                uri.push('?');
                uri.push_str(query);
            }
            check_uri(uri)?;
            check_body(ag.is_base64_encoded, ag.body.as_deref())
        }
        LambdaRequest::ApiGatewayV1(ag) => {
            let host = host(&ag.headers, ag.request_context.domain_name.as_deref());
            let path = apigw_path_with_stage(
                ag.request_context.stage.as_deref(),
                ag.path.as_deref().unwrap_or_default(),
            );
            let uri = request_uri(
                &path,
                &ag.headers,
                host,
                Some((
                    &ag.multi_value_query_string_parameters,
                    &ag.query_string_parameters,
                )),
            )?;
            check_uri(uri)?;
            check_body(ag.is_base64_encoded, ag.body.as_deref())
        }
        LambdaRequest::Alb(alb) => {
            let host = host(&alb.headers, None);
            let single = decode_query_map(&alb.query_string_parameters);
            let multi = decode_query_map(&alb.multi_value_query_string_parameters);
            let uri = request_uri(
                alb.path.as_deref().unwrap_or_default(),
                &alb.headers,
                host,
                Some((&multi, &single)),
            )?;
            check_uri(uri)?;
            check_body(alb.is_base64_encoded, alb.body.as_deref())
        }
        // WebSocket and VPC Lattice events are not served by these functions (and their
        // features are off); refusing keeps this total if a feature is ever unified in.
        _ => Err(Unconvertible::UnsupportedEvent),
    }
}

/// lambda_http's choice of host: the `Host` header if it is visible ASCII, else the domain name.
fn host<'a>(headers: &'a HeaderMap, domain_name: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(domain_name)
}

/// lambda_http's `apigw_path_with_stage`, read from the environment at each call as it does.
fn apigw_path_with_stage(stage: Option<&str>, path: &str) -> String {
    if std::env::var(IGNORE_STAGE_IN_PATH).is_ok() {
        return path.into();
    }
    let stage = match stage {
        None | Some("$default") => return path.into(),
        Some(stage) => stage,
    };
    if path.starts_with(&format!("/{stage}/")) {
        path.into()
    } else {
        format!("/{stage}{path}")
    }
}

/// lambda_http's `build_request_uri`, with its `unwrap`s as errors.
fn request_uri(
    path: &str,
    headers: &HeaderMap,
    host: Option<&str>,
    queries: Option<(&QueryMap, &QueryMap)>,
) -> Result<String, Unconvertible> {
    let mut url = match host {
        None => url::Url::parse(&format!("http://localhost{path}"))
            .map_err(|_| Unconvertible::BadUrl)?
            .path()
            .to_string(),
        Some(host) => {
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|s| s.to_str().ok())
                .unwrap_or("https");
            url::Url::parse(&format!("{scheme}://{host}{path}"))
                .map_err(|_| Unconvertible::BadUrl)?
                .to_string()
        }
    };
    if let Some((multi, single)) = queries {
        if !multi.is_empty() {
            url.push('?');
            url.push_str(&multi.to_query_string());
        } else if !single.is_empty() {
            url.push('?');
            url.push_str(&single.to_query_string());
        }
    }
    Ok(url)
}

/// lambda_http's `decode_query_map` (ALB).
fn decode_query_map(query_map: &QueryMap) -> QueryMap {
    let query_string = query_map.to_query_string();
    let decoded = percent_encoding::percent_decode(query_string.as_bytes()).decode_utf8_lossy();
    decoded.parse().unwrap_or_default()
}

/// The request builder parses the URI string exactly like this (`Uri: TryFrom<String>`).
fn check_uri(uri: String) -> Result<(), Unconvertible> {
    http::Uri::try_from(uri)
        .map(drop)
        .map_err(|_| Unconvertible::BadUri)
}

/// `Body::from_maybe_encoded` decodes with the standard alphabet, padding required.
fn check_body(is_base64_encoded: bool, body: Option<&str>) -> Result<(), Unconvertible> {
    use base64::Engine as _;
    match body {
        Some(body) if is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(body)
            .map(drop)
            .map_err(|_| Unconvertible::BadBase64Body),
        _ => Ok(()),
    }
}

/// A fixed JSON answer in the response shape of the event's kind, as lambda_http would build it
/// for the same status, headers and body.
fn refusal(shape: Shape, status: StatusCode, reason: Unconvertible) -> Value {
    let body = serde_json::json!({"error": "bad_request", "reason": reason.to_string()});
    shaped(shape, status, body.to_string())
}

fn internal_error(shape: Shape) -> Value {
    shaped(
        shape,
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"error":"internal"}"#.to_owned(),
    )
}

fn shaped(shape: Shape, status: StatusCode, body: String) -> Value {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let code = i64::from(status.as_u16());
    let encoded = match shape {
        Shape::HttpV2 => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = code;
            r.headers = headers;
            r.body = Some(LambdaBody::Text(body));
            serde_json::to_value(r)
        }
        Shape::RestV1 => {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = code;
            r.multi_value_headers = headers;
            r.body = Some(LambdaBody::Text(body));
            serde_json::to_value(r)
        }
        Shape::Alb => {
            let mut r = AlbTargetGroupResponse::default();
            r.status_code = code;
            r.status_description = Some(format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default()
            ));
            r.headers = headers.clone();
            r.multi_value_headers = headers;
            r.body = Some(LambdaBody::Text(body));
            serde_json::to_value(r)
        }
    };
    // Only fixed ASCII goes in, so encoding cannot fail; the bare status is the fallback.
    encoded.unwrap_or_else(|_| serde_json::json!({ "statusCode": code }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use axum::routing::any as any_method;
    use lambda_http::RequestExt;
    use proptest::prelude::*;
    use serde_json::json;

    /// Answers 200 with what the handler saw: raw path, query and body length.
    fn echo() -> Router {
        Router::new().fallback(any_method(|request: axum::extract::Request| async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            axum::Json(json!({
                "rawPath": parts.raw_http_path(),
                "query": parts.uri.query(),
                "bodyLen": body.len(),
                "cookie": parts.headers.get("cookie").and_then(|c| c.to_str().ok()),
            }))
        }))
    }

    fn v2(raw_query: &str, host: &str, body: Option<&str>, base64: bool) -> Value {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/webhooks/hubspot",
            "rawQueryString": raw_query,
            "cookies": ["a=1", "b=2"],
            "headers": {"host": host, "content-type": "application/json"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "api.execute-api.eu-west-1.amazonaws.com",
                "domainPrefix": "api",
                "http": {"method": "POST", "path": "/webhooks/hubspot", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "HubSpot Connect 2.0"},
                "requestId": "req-1",
                "routeKey": "$default",
                "stage": "$default",
                "time": "12/Mar/2026:19:03:58 +0000",
                "timeEpoch": 1_773_342_238_000_u64
            },
            "body": body,
            "isBase64Encoded": base64
        })
    }

    fn v1(host: &str, body: Option<&str>, base64: bool) -> Value {
        json!({
            "resource": "/{proxy+}",
            "path": "/webhooks/hubspot",
            "httpMethod": "POST",
            "headers": {"Host": host},
            "multiValueHeaders": {"Host": [host]},
            "queryStringParameters": {"a": "1"},
            "multiValueQueryStringParameters": {"a": ["1"]},
            "requestContext": {"accountId": "123456789012", "resourceId": "r", "stage": "$default",
                               "requestId": "req-1", "httpMethod": "POST", "apiId": "api",
                               "identity": {"sourceIp": "192.0.2.1"}},
            "body": body,
            "isBase64Encoded": base64
        })
    }

    fn alb(host: &str, body: Option<&str>, base64: bool) -> Value {
        json!({
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/t/1"}},
            "httpMethod": "POST",
            "path": "/webhooks/hubspot",
            "queryStringParameters": {},
            "headers": {"host": host},
            "body": body,
            "isBase64Encoded": base64
        })
    }

    fn event(value: &Value) -> LambdaEvent<Box<RawValue>> {
        LambdaEvent::new(
            RawValue::from_string(value.to_string()).unwrap(),
            lambda_runtime::Context::default(),
        )
    }

    async fn invoke(value: &Value) -> Value {
        handle_event(echo(), event(value)).await
    }

    /// Whether lambda_http's own conversion of this event panics (tests run with unwinding).
    fn lambda_http_panics(value: &Value) -> bool {
        let Ok(request) = serde_json::from_str::<LambdaRequest>(&value.to_string()) else {
            return false;
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            drop(http::Request::<lambda_http::Body>::from(request));
        }))
        .is_err()
    }

    fn assert_refused_as(response: &Value, shape: Shape) {
        assert_eq!(response["statusCode"], 400, "{response}");
        match shape {
            Shape::HttpV2 => {
                assert_eq!(response["headers"]["content-type"], "application/json");
                assert!(response["cookies"].is_array(), "{response}");
                assert!(response.get("statusDescription").is_none());
            }
            Shape::RestV1 => {
                assert_eq!(
                    response["multiValueHeaders"]["content-type"],
                    json!(["application/json"])
                );
                assert!(response.get("cookies").is_none());
            }
            Shape::Alb => {
                assert_eq!(response["statusDescription"], "400 Bad Request");
                assert_eq!(response["headers"]["content-type"], "application/json");
            }
        }
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "bad_request");
        assert_eq!(response["isBase64Encoded"], false);
    }

    #[tokio::test]
    async fn a_well_formed_http_api_event_reaches_the_router_as_lambda_http_builds_it() {
        let response = invoke(&v2(
            "portalId=62515&q=caf%C3%A9%20au+lait",
            "hooks.example.com",
            Some("[]"),
            false,
        ))
        .await;
        assert_eq!(response["statusCode"], 200, "{response}");
        let seen: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(seen["rawPath"], "/webhooks/hubspot");
        assert_eq!(seen["query"], "portalId=62515&q=caf%C3%A9%20au+lait");
        assert_eq!(seen["cookie"], "a=1; b=2");
        assert!(response["cookies"].is_array());
    }

    #[tokio::test]
    async fn a_base64_body_arrives_as_its_bytes() {
        let response = invoke(&v2("", "hooks.example.com", Some("AAEC/w=="), true)).await;
        assert_eq!(response["statusCode"], 200, "{response}");
        let seen: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(seen["bodyLen"], 4);
    }

    #[tokio::test]
    async fn every_known_panicking_event_gets_a_400_in_its_own_shape() {
        let cases: Vec<(&str, Value, Shape)> = vec![
            (
                "quote in rawQueryString",
                v2("a=\"b\"", "h.example", None, false),
                Shape::HttpV2,
            ),
            (
                "< in rawQueryString",
                v2("a=<script>", "h.example", None, false),
                Shape::HttpV2,
            ),
            (
                "space in rawQueryString",
                v2("a=b c", "h.example", None, false),
                Shape::HttpV2,
            ),
            (
                "control character in rawQueryString",
                v2("a=\u{7f}", "h.example", None, false),
                Shape::HttpV2,
            ),
            (
                "over-long rawQueryString",
                v2(&"a".repeat(70_000), "h.example", None, false),
                Shape::HttpV2,
            ),
            (
                "host failing IDNA",
                v2("", "xn--a.example", None, false),
                Shape::HttpV2,
            ),
            (
                "host with a space",
                v2("", "bad host", None, false),
                Shape::HttpV2,
            ),
            (
                "host with a bad port",
                v2("", "h.example:99999", None, false),
                Shape::HttpV2,
            ),
            (
                "body marked base64 that is not",
                v2("", "h.example", Some("not base64!"), true),
                Shape::HttpV2,
            ),
            (
                "REST API host failing IDNA",
                v1("xn--a.example", None, false),
                Shape::RestV1,
            ),
            (
                "REST API body marked base64 that is not",
                v1("h.example", Some("%%%"), true),
                Shape::RestV1,
            ),
            (
                "ALB host failing IDNA",
                alb("xn--a.example", None, false),
                Shape::Alb,
            ),
            (
                "ALB body marked base64 that is not",
                alb("h.example", Some("a"), true),
                Shape::Alb,
            ),
        ];
        for (name, value, shape) in cases {
            assert!(
                lambda_http_panics(&value),
                "{name}: lambda_http no longer panics"
            );
            let response = invoke(&value).await;
            assert_refused_as(&response, shape);
        }
    }

    #[tokio::test]
    async fn a_domain_name_failing_idna_is_refused_when_there_is_no_host_header() {
        let mut value = v2("", "h.example", None, false);
        value["headers"] = json!({});
        value["requestContext"]["domainName"] = json!("xn--a.example");
        assert!(lambda_http_panics(&value));
        assert_refused_as(&invoke(&value).await, Shape::HttpV2);
    }

    #[tokio::test]
    async fn a_forwarded_proto_that_is_no_scheme_is_refused() {
        let mut value = v2("", "h.example", None, false);
        value["headers"]["x-forwarded-proto"] = json!("1http");
        assert!(lambda_http_panics(&value));
        assert_refused_as(&invoke(&value).await, Shape::HttpV2);
    }

    #[tokio::test]
    async fn an_event_that_does_not_deserialize_gets_a_400_in_the_shape_it_claims() {
        let mut bad_header = v2("", "h.example", None, false);
        bad_header["headers"]["x-bad"] = json!("line\nbreak");
        assert_refused_as(&invoke(&bad_header).await, Shape::HttpV2);
        let mut alb_bad = alb("h.example", None, false);
        alb_bad["headers"]["x-bad"] = json!("line\nbreak");
        assert_refused_as(&invoke(&alb_bad).await, Shape::Alb);
        assert_refused_as(&invoke(&json!({"hello": "world"})).await, Shape::RestV1);
        assert_refused_as(&invoke(&json!("just a string")).await, Shape::RestV1);
    }

    #[tokio::test]
    async fn a_response_header_that_is_not_utf8_becomes_a_500_not_an_invocation_error() {
        let router = Router::new().fallback(any_method(|| async {
            let mut r = axum::response::Response::new(axum::body::Body::empty());
            r.headers_mut()
                .insert("x-odd", HeaderValue::from_bytes(b"\xff").unwrap());
            r
        }));
        let response = handle_event(router, event(&v2("", "h.example", None, false))).await;
        assert_eq!(response["statusCode"], 500, "{response}");
    }

    fn check_value(value: &Value) -> Result<(), Unconvertible> {
        match serde_json::from_str::<LambdaRequest>(&value.to_string()) {
            Ok(request) => check_convertible(&request),
            Err(_) => Err(Unconvertible::NotAnHttpEvent),
        }
    }

    /// Any string, weighted towards the characters that matter to URLs.
    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-zA-Z0-9 \"<>`{}|\\\\^%#?/:@\\[\\]!$&'()*+,;=~.\u{0}-\u{1f}\u{7f}ßü-]{0,24}",
            "(xn--)?[a-z0-9.-]{0,12}(:[0-9]{0,6})?",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The check agrees with lambda_http exactly: it refuses what would panic, and nothing
        /// else; and `handle_event` answers every such event without panicking.
        #[test]
        fn the_check_agrees_with_lambda_http_and_handle_event_never_panics(
            query in hostile(),
            host in hostile(),
            path in hostile(),
            proto in prop::option::of(hostile()),
            body in prop::option::of(hostile()),
            base64 in any::<bool>(),
            kind in 0..3u8,
        ) {
            let mut value = match kind {
                0 => v2(&query, &host, body.as_deref(), base64),
                1 => v1(&host, body.as_deref(), base64),
                _ => alb(&host, body.as_deref(), base64),
            };
            value[if kind == 0 { "rawPath" } else { "path" }] = json!(path);
            if kind == 1 {
                value["queryStringParameters"] = json!({ "q": query.clone() });
                value["multiValueQueryStringParameters"] = json!({ "q": [query.clone()] });
            } else if kind == 2 {
                value["queryStringParameters"] = json!({ "q": query.clone() });
            }
            if let Some(proto) = &proto {
                value["headers"]["x-forwarded-proto"] = json!(proto);
            }
            let check = check_value(&value);
            let panics = lambda_http_panics(&value);
            if check != Err(Unconvertible::NotAnHttpEvent) {
                prop_assert_eq!(check.is_err(), panics, "{:?} for {}", check, value);
            }
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let response = runtime.block_on(invoke(&value));
            let status = response["statusCode"].as_i64().unwrap();
            prop_assert_eq!(status, if check.is_ok() { 200 } else { 400 }, "{}", response);
        }
    }
}
