//! The relay as deployed reaches only what its IAM grant covers: every path HubSpot may fetch
//! below `RelayUrl/` is forwarded to `ProtectedApiUrl + RelayTargetPrefix + /PATH`, signed as
//! the relay's role. The stand-in appends each forwarded request to the call log as an
//! `execute-api:Invoke` call, which `tests/iam/evaluate.mjs` evaluates against the relay's
//! `HubSpotRelayInvokePolicy` (and proves that the same path outside the prefix is denied).

use axum::body::Body;
use hsbridge_api_caller::RelayConfig;
use hsbridge_api_caller::wiring;
use hsbridge_integration_tests::aws::{Role, as_role, create_app_secret, now_ms, sdk, unique};
use hsbridge_platform::SystemClock;
use hsbridge_platform::metrics::Metrics;
use hsbridge_standin::{Credential, Standin, StandinConfig};
use hsbridge_verify::{HEADER_SIGNATURE_V3, HEADER_TIMESTAMP, Secret, sign_v3};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

const SECRET: &str = "relay-grants-client-secret";
const PUBLIC: &str = "https://bridge.example.com";
/// The template's defaults: the demo API's stage and `RelayTargetPrefix`.
const STAGE: &str = "/demo";
const PREFIX: &str = "/hubspot/relay";

#[tokio::test]
async fn every_path_the_relay_forwards_lies_below_its_target_prefix_signed_as_its_role() {
    let sdk = sdk().await;
    let secret_id = unique("hubspot-app");
    create_app_secret(&sdk, &secret_id, SECRET).await;
    let api = Standin::new(StandinConfig::new(
        "us-east-1",
        vec![Credential {
            access_key_id: Role::HubSpotRelay.logical_id().to_owned(),
            secret_access_key: "testing".to_owned(),
            session_token: None,
            principal_arn: "arn:aws:sts::123456789012:assumed-role/HubSpotRelayRole/fn".into(),
        }],
    ))
    .spawn("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let config = RelayConfig::from_env(&HashMap::from([
        ("HSBRIDGE_HUBSPOT_SECRET_ID".to_owned(), secret_id),
        (
            "HSBRIDGE_PROTECTED_API_URL".to_owned(),
            format!("{}{STAGE}", api.base_url),
        ),
        (
            "HSBRIDGE_PROTECTED_API_REGION".to_owned(),
            "us-east-1".to_owned(),
        ),
        ("HSBRIDGE_PUBLIC_BASE_URL".to_owned(), PUBLIC.to_owned()),
    ]))
    .unwrap();
    assert_eq!(
        config.target_prefix, PREFIX,
        "the template's default prefix"
    );
    let relay = hsbridge_api_caller::relay::app(
        wiring::relay_state(
            &config,
            &as_role(&sdk, Role::HubSpotRelay),
            Arc::new(SystemClock),
            Metrics::capturing("hsbridge", "hubspot-relay"),
        )
        .unwrap(),
    );

    // What a card's hubspot.fetch asks for: CRM-like paths of any depth, each method it sends.
    let paths = ["/contacts/123", "/deals/42/associations/contacts", "/x"];
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    for method in methods {
        for path in paths {
            let path_and_query = format!("{PREFIX}{path}?portalId=62515");
            let body: &[u8] = if method == "GET" { b"" } else { b"{\"a\":1}" };
            let ts = now_ms().to_string();
            let signature = sign_v3(
                &Secret::new(SECRET),
                method,
                &format!("{PUBLIC}{path_and_query}"),
                body,
                &ts,
            );
            let request = Request::builder()
                .method(method)
                .uri(&path_and_query)
                .header("host", "bridge.example.com")
                .header("content-type", "application/json")
                .header(HEADER_SIGNATURE_V3, signature)
                .header(HEADER_TIMESTAMP, ts)
                .body(Body::from(body.to_vec()))
                .unwrap();
            let response = relay.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let answer = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                status,
                StatusCode::OK,
                "{method} {path}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    let seen: Vec<(String, String)> = api
        .standin
        .recorded()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let expected: Vec<(String, String)> = methods
        .iter()
        .flat_map(|m| {
            paths
                .iter()
                .map(move |p| ((*m).to_owned(), format!("{STAGE}{PREFIX}{p}")))
        })
        .collect();
    assert_eq!(
        seen, expected,
        "RelayUrl/PATH goes to ProtectedApiUrl{PREFIX}/PATH"
    );
}
