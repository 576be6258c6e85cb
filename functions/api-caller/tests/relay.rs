//! The relay end to end on loopback: HubSpot-signed requests in, SigV4-signed requests out to
//! the SigV4-verifying stand-in for API Gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use axum::body::Body;
use bytes::Bytes;
use hsbridge_api_caller::protected::{Outgoing, ProtectedApi, ProtectedApiConfig};
use hsbridge_api_caller::relay::{RelaySettings, RelayState, app};
use hsbridge_platform::SystemClock;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_standin::{Credential, RunningStandin, Standin, StandinConfig};
use hsbridge_verify::{
    HEADER_SIGNATURE_V3, HEADER_TIMESTAMP, PublicBase, Secret, SecretSet, sign_v3,
};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

const CLIENT_SECRET: &str = "relay-test-client-secret";
const PUBLIC: &str = "https://bridge.example.com";
const AKID: &str = "AKIDRELAYTEST";
const SECRET_KEY: &str = "relay/secret/access/key";
const SESSION: &str = "relay-session-token";
const ROLE: &str = "arn:aws:sts::000000000000:assumed-role/hsbridge-relay/fn";

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

async fn standin() -> RunningStandin {
    Standin::new(standin_config())
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn standin_config() -> StandinConfig {
    StandinConfig::new(
        "eu-west-1",
        vec![Credential {
            access_key_id: AKID.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: Some(SESSION.into()),
            principal_arn: ROLE.into(),
        }],
    )
}

fn api(base_url: String) -> ProtectedApi {
    let credentials = Credentials::new(AKID, SECRET_KEY, Some(SESSION.into()), None, "test");
    ProtectedApi::new(
        ProtectedApiConfig {
            base_url,
            region: "eu-west-1".into(),
            timeout: Duration::from_secs(5),
            max_response_bytes: 64 * 1024,
        },
        SharedCredentialsProvider::new(credentials),
    )
    .unwrap()
}

fn relay(base_url: String) -> axum::Router {
    let app_secret = HubSpotApp {
        client_id: "client".into(),
        secrets: SecretSet::new(Secret::new(CLIENT_SECRET)).unwrap(),
    };
    app(RelayState {
        settings: RelaySettings {
            public_base: Some(PublicBase::parse(PUBLIC).unwrap()),
            max_body_bytes: 4096,
            signature_window_ms: 300_000,
            target_prefix: "/hubspot/relay".to_owned(),
        },
        secrets: Arc::new(StaticSecretSource(app_secret)),
        api: api(base_url),
        clock: Arc::new(SystemClock),
        metrics: Metrics::capturing("hsbridge", "hubspot-relay"),
    })
}

/// A request as HubSpot sends it: v3 over the public URL, the method and the raw body.
fn hubspot_request(method: &str, path_and_query: &str, body: &[u8]) -> http::request::Builder {
    let ts = now_ms();
    let uri = format!("{PUBLIC}{path_and_query}");
    let signature = sign_v3(
        &Secret::new(CLIENT_SECRET),
        method,
        &uri,
        body,
        &ts.to_string(),
    );
    Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", "bridge.example.com")
        .header(HEADER_SIGNATURE_V3, signature)
        .header(HEADER_TIMESTAMP, ts.to_string())
}

async fn send(router: axum::Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn a_signed_get_with_a_query_reaches_the_api_byte_exact_and_signed_by_the_role() {
    let upstream = standin().await;
    let query = "portalId=62515&userId=7&q=caf%C3%A9%20au%20lait&z=~";
    let request = hubspot_request("GET", &format!("/hubspot/relay/deals/42?{query}"), b"")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(relay(format!("{}/prod", upstream.base_url)), request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let seen = upstream.standin.recorded();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/prod/hubspot/relay/deals/42");
    assert_eq!(seen[0].query.as_deref(), Some(query));
    assert!(seen[0].body.is_empty());
    assert_eq!(seen[0].caller, ROLE);
    assert_eq!(seen[0].header("x-hsbridge-portal-id"), Some("62515"));
    assert_eq!(seen[0].header("x-amz-security-token"), Some(SESSION));
    // The API's answer is what the relay answers.
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["caller"], ROLE);
}

#[tokio::test]
async fn a_signed_post_with_a_body_reaches_the_api_byte_exact() {
    let upstream = standin().await;
    let body = "{\"name\":\"Zoë\",\"note\":\"a+b c\\u00e9\"}".as_bytes();
    let request = hubspot_request("POST", "/hubspot/relay/contacts/sync?portalId=62515", body)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let (status, _) = send(relay(upstream.base_url.clone()), request).await;
    assert_eq!(status, StatusCode::OK);
    let seen = upstream.standin.recorded();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/hubspot/relay/contacts/sync");
    assert_eq!(seen[0].body, body);
    assert_eq!(
        seen[0].header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

#[tokio::test]
async fn unsigned_or_badly_signed_requests_get_401_and_nothing_is_forwarded() {
    let upstream = standin().await;
    let unsigned = Request::builder()
        .uri("/hubspot/relay/deals?portalId=62515")
        .header("host", "bridge.example.com")
        .body(Body::empty())
        .unwrap();
    let (status, _) = send(relay(upstream.base_url.clone()), unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Signed for one body, sent with another.
    let tampered = hubspot_request("POST", "/hubspot/relay/deals?portalId=62515", b"{\"a\":1}")
        .body(Body::from("{\"a\":2}"))
        .unwrap();
    let (status, _) = send(relay(upstream.base_url.clone()), tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Signed for another portal id.
    let moved = hubspot_request("GET", "/hubspot/relay/deals?portalId=1", b"")
        .uri("/hubspot/relay/deals?portalId=2")
        .body(Body::empty())
        .unwrap();
    let (status, _) = send(relay(upstream.base_url.clone()), moved).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(upstream.standin.recorded().is_empty());
    assert_eq!(upstream.standin.rejected(), 0, "the stand-in saw nothing");
}

#[tokio::test]
async fn traversal_and_encoded_slashes_are_refused_even_when_signed() {
    let upstream = standin().await;
    for path in [
        "/hubspot/relay/a/%2e%2e/admin?portalId=1",
        "/hubspot/relay/a/../admin?portalId=1",
        "/hubspot/relay/a%2Fb?portalId=1",
        "/hubspot/relay/a?portalId=x",
        "/hubspot/relay/a",
    ] {
        let request = hubspot_request("GET", path, b"")
            .body(Body::empty())
            .unwrap();
        let (status, _) = send(relay(upstream.base_url.clone()), request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    assert!(upstream.standin.recorded().is_empty());
}

#[tokio::test]
async fn the_callers_host_authorization_and_other_headers_never_reach_the_api() {
    let upstream = standin().await;
    let request = hubspot_request("GET", "/hubspot/relay/x?portalId=62515", b"")
        .header("authorization", "Bearer stolen")
        .header("x-forwarded-host", "evil.example")
        .header("x-amz-security-token", "forged")
        .header("x-custom", "dropped")
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap();
    let (status, _) = send(relay(upstream.base_url.clone()), request).await;
    assert_eq!(status, StatusCode::OK);
    let seen = &upstream.standin.recorded()[0];
    assert!(
        seen.header("authorization")
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 ")
    );
    assert_eq!(
        seen.header("host"),
        Some(upstream.addr.to_string().as_str())
    );
    assert_eq!(seen.header("x-forwarded-host"), None);
    assert_eq!(seen.header("x-amz-security-token"), Some(SESSION));
    // Only allowlisted headers travel on.
    assert_eq!(seen.header("x-custom"), None);
    assert_eq!(seen.header("accept"), Some("application/json"));
}

#[tokio::test]
async fn the_apis_status_and_body_are_relayed() {
    let upstream = Standin::new(standin_config())
        .with_responder(Arc::new(|_| {
            Some((409, b"{\"error\":\"conflict\"}".to_vec()))
        }))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let request = hubspot_request("GET", "/hubspot/relay/x?portalId=62515", b"")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(relay(upstream.base_url.clone()), request).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(&body[..], b"{\"error\":\"conflict\"}");
}

#[tokio::test]
async fn an_unreachable_api_is_a_502_and_a_silent_one_a_504() {
    // Nothing listens on this port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let request = hubspot_request("GET", "/hubspot/relay/x?portalId=62515", b"")
        .body(Body::empty())
        .unwrap();
    let (status, _) = send(relay(format!("http://{closed}")), request).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    // Accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut router_api = api(format!("http://{addr}"));
    router_api = ProtectedApi::new(
        ProtectedApiConfig {
            timeout: Duration::from_millis(300),
            ..router_api.config().clone()
        },
        SharedCredentialsProvider::new(Credentials::new(AKID, SECRET_KEY, None, None, "t")),
    )
    .unwrap();
    let app_secret = HubSpotApp {
        client_id: "client".into(),
        secrets: SecretSet::new(Secret::new(CLIENT_SECRET)).unwrap(),
    };
    let router = app(RelayState {
        settings: RelaySettings {
            public_base: Some(PublicBase::parse(PUBLIC).unwrap()),
            max_body_bytes: 4096,
            signature_window_ms: 300_000,
            target_prefix: "/hubspot/relay".to_owned(),
        },
        secrets: Arc::new(StaticSecretSource(app_secret)),
        api: router_api,
        clock: Arc::new(SystemClock),
        metrics: Metrics::capturing("hsbridge", "hubspot-relay"),
    });
    let request = hubspot_request("GET", "/hubspot/relay/x?portalId=62515", b"")
        .body(Body::empty())
        .unwrap();
    let (status, _) = send(router, request).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn a_request_altered_after_signing_is_refused_by_the_stand_in() {
    let upstream = standin().await;
    let api = api(upstream.base_url.clone());
    let outgoing = Outgoing {
        method: Method::POST,
        path: "/hubspot/events".into(),
        query: Some("a=1".into()),
        headers: http::HeaderMap::new(),
        body: Bytes::from_static(b"{\"n\":1}"),
    };
    let client = reqwest::Client::new();
    // As signed: accepted.
    let signed = api.sign(outgoing.clone(), SystemTime::now()).await.unwrap();
    let response = client
        .execute(reqwest::Request::try_from(signed).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The body changed after signing.
    let mut signed = api.sign(outgoing.clone(), SystemTime::now()).await.unwrap();
    *signed.body_mut() = Bytes::from_static(b"{\"n\":2}");
    let response = client
        .execute(reqwest::Request::try_from(signed).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The query changed after signing.
    let signed = api.sign(outgoing.clone(), SystemTime::now()).await.unwrap();
    let (mut parts, body) = signed.into_parts();
    parts.uri = format!("{}/hubspot/events?a=2", upstream.base_url)
        .parse()
        .unwrap();
    let response = client
        .execute(reqwest::Request::try_from(http::Request::from_parts(parts, body)).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Signed six minutes ago: outside API Gateway's five.
    let stale = api
        .sign(outgoing, SystemTime::now() - Duration::from_secs(360))
        .await
        .unwrap();
    let response = client
        .execute(reqwest::Request::try_from(stale).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(upstream.standin.recorded().len(), 1);
    assert_eq!(upstream.standin.rejected(), 3);
}

/// A secret source whose store cannot be read (Secrets Manager down or throttling).
#[derive(Debug)]
struct UnreadableSecrets;

#[async_trait::async_trait]
impl hsbridge_platform::secrets::SecretSource for UnreadableSecrets {
    async fn hubspot_app(&self) -> Result<HubSpotApp, hsbridge_platform::secrets::SecretError> {
        Err(hsbridge_platform::secrets::SecretError::Unavailable(
            "the store could not be reached".into(),
        ))
    }
}

#[tokio::test]
async fn every_failure_on_the_relays_side_is_a_5xx_so_hubspot_retries_it() {
    // HubSpot retries a hubspot.fetch once on a 5xx or a connection failure, never on a 4xx.
    let running = standin().await;
    let secrets_down = app(RelayState {
        settings: RelaySettings {
            public_base: Some(PublicBase::parse(PUBLIC).unwrap()),
            max_body_bytes: 4096,
            signature_window_ms: 300_000,
            target_prefix: "/hubspot/relay".to_owned(),
        },
        secrets: Arc::new(UnreadableSecrets),
        api: api(running.base_url.clone()),
        clock: Arc::new(SystemClock),
        metrics: Metrics::capturing("hsbridge", "hubspot-relay"),
    });
    let request = || {
        hubspot_request("GET", "/hubspot/relay/x?portalId=62515", b"")
            .body(Body::empty())
            .unwrap()
    };
    let (status, _) = send(secrets_down, request()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (status, _) = send(relay(format!("http://{closed}")), request()).await;
    assert!(status.is_server_error(), "{status}");
    // The caller's own faults stay 4xx.
    let (status, _) = send(
        relay(running.base_url.clone()),
        hubspot_request("GET", "/hubspot/relay/x", b"")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(status.is_client_error(), "no portalId: {status}");
}

/// A signed request as HubSpot sends a card's `hubspot.fetch`, at timestamp `ts`.
fn fetch_at(method: &str, path_and_query: &str, body: &[u8], ts: u64) -> Request<Body> {
    let uri = format!("{PUBLIC}{path_and_query}");
    let signature = sign_v3(
        &Secret::new(CLIENT_SECRET),
        method,
        &uri,
        body,
        &ts.to_string(),
    );
    Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", "bridge.example.com")
        .header("content-type", "application/json")
        .header(HEADER_SIGNATURE_V3, signature)
        .header(HEADER_TIMESTAMP, ts.to_string())
        .body(Body::from(body.to_vec()))
        .unwrap()
}

const CONTEXT: &str = "appId=4242&portalId=62515&userId=77&userEmail=ann%40example.com";

#[tokio::test]
async fn the_callers_context_reaches_the_api_as_relay_set_headers_and_forged_ones_are_dropped() {
    let upstream = standin().await;
    let mut request = fetch_at(
        "POST",
        &format!("/hubspot/relay/notes?{CONTEXT}"),
        br#"{"n":1}"#,
        now_ms(),
    );
    // Every header the relay sets, forged by the caller, in both spellings.
    for (name, value) in [
        ("x-hsbridge-portal-id", "1"),
        ("x-hsbridge-user-id", "1"),
        ("x-hsbridge-user-email", "ceo@victim.example"),
        ("x-hsbridge-app-id", "1"),
        ("x-hsbridge-idempotency-key", "chosen"),
        ("x-hsbridge_user-email", "ceo@victim.example"),
    ] {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (status, body) = send(relay(upstream.base_url.clone()), request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let seen = upstream.standin.recorded();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.header("x-hsbridge-portal-id"), Some("62515"));
    assert_eq!(r.header("x-hsbridge-app-id"), Some("4242"));
    assert_eq!(r.header("x-hsbridge-user-id"), Some("77"));
    assert_eq!(r.header("x-hsbridge-user-email"), Some("ann@example.com"));
    let key = r.header("x-hsbridge-idempotency-key").unwrap();
    assert_eq!(key.len(), 64);
    assert_ne!(key, "chosen");
    assert!(r.header("x-hsbridge_user-email").is_none());
    // The query travels as signed too.
    assert_eq!(r.query.as_deref(), Some(CONTEXT));
}

#[tokio::test]
async fn a_resent_request_keeps_its_idempotency_key_and_a_second_call_gets_another() {
    let upstream = standin().await;
    let router = relay(upstream.base_url.clone());
    let path = format!("/hubspot/relay/notes?{CONTEXT}");
    let ts = now_ms();
    // HubSpot's retry of one call: the same signed request delivered again.
    for _ in 0..2 {
        let (status, _) = send(router.clone(), fetch_at("POST", &path, br#"{"n":1}"#, ts)).await;
        assert_eq!(status, StatusCode::OK);
    }
    // A second call with the same content, a millisecond later.
    let (status, _) = send(
        router.clone(),
        fetch_at("POST", &path, br#"{"n":1}"#, ts + 1),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A call with another body at the same instant.
    let (status, _) = send(router, fetch_at("POST", &path, br#"{"n":2}"#, ts)).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<String> = upstream
        .standin
        .recorded()
        .iter()
        .map(|r| r.header("x-hsbridge-idempotency-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(keys[0], keys[1], "a retry of one call");
    assert_ne!(keys[0], keys[2], "two calls");
    assert_ne!(keys[0], keys[3], "two calls");
    assert_ne!(keys[2], keys[3]);
}

#[tokio::test]
async fn a_context_parameter_duplicated_or_respelled_is_refused_and_nothing_is_forwarded() {
    let upstream = standin().await;
    let router = relay(upstream.base_url.clone());
    for query in [
        "portalId=62515&userId=77&userId=1",
        "portalId=62515&userEmail=ann%40example.com&userEm%61il=ceo%40victim.example",
        "portalId=62515&user%49d=1&userId=77",
        "portalId=62515&userEmail=ann%0D%0Ax-hsbridge-portal-id:%201",
        "portalId=62515&userEmail=ann%25%34%30example.com&userEmail=x",
    ] {
        let (status, body) = send(
            router.clone(),
            fetch_at("GET", &format!("/hubspot/relay/x?{query}"), b"", now_ms()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert!(upstream.standin.recorded().is_empty());
    // Escaped once more, a value is data: decoded once, it arrives with one escape left.
    let (status, _) = send(
        router,
        fetch_at(
            "GET",
            "/hubspot/relay/x?portalId=62515&userEmail=ann%2540example.com",
            b"",
            now_ms(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        upstream.standin.recorded()[0].header("x-hsbridge-user-email"),
        Some("ann%40example.com")
    );
}

/// The SignedHeaders list of a recorded request's SigV4 `Authorization`.
fn signed_headers(request: &hsbridge_standin::RecordedRequest) -> Vec<String> {
    request
        .header("authorization")
        .and_then(|a| a.split(", ").find_map(|p| p.strip_prefix("SignedHeaders=")))
        .map(|l| l.split(';').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A signed relayed GET carrying a caller's own `traceparent`, as the Lambda runtime hands it
/// over: with the invocation's context and its X-Ray trace id.
fn traced_get(xray_trace_id: Option<&str>) -> Request<Body> {
    let mut request = hubspot_request("GET", "/hubspot/relay/deals/42?portalId=62515", b"")
        .header(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-01",
        )
        .body(Body::empty())
        .unwrap();
    let mut context = lambda_runtime::Context::default();
    context.xray_trace_id = xray_trace_id.map(str::to_owned);
    request.extensions_mut().insert(context);
    request
}

#[tokio::test]
async fn the_relay_continues_the_invocations_trace_in_a_signed_traceparent_and_drops_the_callers() {
    let upstream = standin().await;
    let request = traced_get(Some(
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
    ));
    let (status, _) = send(relay(upstream.base_url.clone()), request).await;
    assert_eq!(status, StatusCode::OK);
    let seen = upstream.standin.recorded();
    assert_eq!(
        seen[0].header("traceparent"),
        Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00")
    );
    assert_eq!(
        seen[0]
            .headers
            .iter()
            .filter(|(n, _)| n == "traceparent")
            .count(),
        1
    );
    assert!(signed_headers(&seen[0]).contains(&"traceparent".to_owned()));
}

#[tokio::test]
async fn without_a_trace_of_its_own_the_relay_forwards_no_traceparent_at_all() {
    let upstream = standin().await;
    for trace in [None, Some("Root=1-5759e988-bd862e3fe1be46a994272793")] {
        let (status, _) = send(relay(upstream.base_url.clone()), traced_get(trace)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let seen = upstream.standin.recorded();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| r.header("traceparent").is_none()));
}
