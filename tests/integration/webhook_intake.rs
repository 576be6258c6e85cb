//! The webhook intake against moto: DynamoDB (dedupe, accounts), SQS and Secrets Manager over
//! HTTP through the real SDK clients, the Router driven with `oneshot`.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::body::Body;
use hsbridge_integration_tests::aws::{
    Role, as_role, create_app_secret, create_queue, create_table, drain_queue, now_ms,
    rotate_app_secret, scan, sdk, unique,
};
use hsbridge_integration_tests::signed::{self, webhook_batch as batch};
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::{Clock, ManualClock, SystemClock};
use hsbridge_webhook_intake::{IntakeConfig, app, wiring};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const OLD_SECRET: &str = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
const ACTIVE_PORTAL: u64 = 62515;
const HOST: &str = "hooks.example.com";

/// Fresh AWS resources for one test: tables, a queue, the app secret, one active account.
struct Stand {
    sdk: SdkConfig,
    config: IntakeConfig,
}

impl Stand {
    async fn new() -> Self {
        let sdk = sdk().await;
        let dedupe_table = unique("dedupe");
        let accounts_table = unique("accounts");
        let secret_id = unique("hubspot-app");
        create_table(&sdk, &dedupe_table, "pk").await;
        create_table(&sdk, &accounts_table, "hub_id").await;
        let queue_url = create_queue(&sdk, &unique("events")).await;
        create_app_secret(&sdk, &secret_id, SECRET).await;
        let stand = Self {
            config: IntakeConfig::from_env(&HashMap::from([
                ("HSBRIDGE_HUBSPOT_SECRET_ID".to_owned(), secret_id),
                ("HSBRIDGE_DEDUPE_TABLE".to_owned(), dedupe_table),
                ("HSBRIDGE_ACCOUNTS_TABLE".to_owned(), accounts_table),
                ("HSBRIDGE_EVENTS_QUEUE_URL".to_owned(), queue_url),
            ]))
            .unwrap(),
            sdk,
        };
        stand.set_account(ACTIVE_PORTAL, "active").await;
        stand
    }

    async fn set_account(&self, hub_id: u64, status: &str) {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .put_item()
            .table_name(&self.config.accounts_table)
            .item("hub_id", AttributeValue::S(hub_id.to_string()))
            .item("status", AttributeValue::S(status.to_owned()))
            .send()
            .await
            .unwrap();
    }

    fn app(&self) -> Router {
        self.app_with(&self.config, &self.sdk, Arc::new(SystemClock))
    }

    fn app_with(&self, config: &IntakeConfig, sdk: &SdkConfig, clock: Arc<dyn Clock>) -> Router {
        app(wiring::aws_state(
            config,
            &as_role(sdk, Role::WebhookIntake),
            clock,
            Metrics::capturing("hsbridge", "webhook-intake"),
        ))
    }

    async fn queued(&self) -> Vec<Value> {
        drain_queue(&self.sdk, &self.config.queue_url)
            .await
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }

    async fn dedupe_records(&self) -> usize {
        scan(&self.sdk, &self.config.dedupe_table).await.len()
    }
}

/// A request signed with v3 exactly as HubSpot signs it (by the support library, not by the
/// verifier under test).
fn signed(path_and_query: &str, body: impl Into<Vec<u8>>, secret: &str, ts: u64) -> Request<Body> {
    signed::webhook(secret, HOST, path_and_query, body, ts)
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_signed_batch_is_queued_once_and_its_replay_is_acknowledged_without_requeueing() {
    let stand = Stand::new().await;
    let app = stand.app();
    let body = batch(ACTIVE_PORTAL, 1..4, now_ms());

    let (status, ack) = send(
        &app,
        signed("/webhooks/hubspot", body.clone(), SECRET, now_ms()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["accepted"], 3);
    let queued = stand.queued().await;
    assert_eq!(queued.len(), 3);
    assert_eq!(queued[0]["schema"], "hsbridge.webhook-event.v1");
    assert_eq!(queued[0]["portalId"], ACTIVE_PORTAL);
    assert_eq!(queued[0]["event"]["propertyName"], "email");

    // HubSpot's retry of the same batch, signed afresh.
    let (status, ack) = send(&app, signed("/webhooks/hubspot", body, SECRET, now_ms())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["accepted"], 0);
    assert_eq!(ack["duplicates"], 3);
    assert!(stand.queued().await.is_empty());
}

#[tokio::test]
async fn badly_signed_requests_are_refused_and_change_nothing() {
    let stand = Stand::new().await;
    let app = stand.app();
    let body = batch(ACTIVE_PORTAL, 1..2, now_ms());
    let now = now_ms();

    let wrong_secret = signed("/webhooks/hubspot", body.clone(), OLD_SECRET, now);
    let stale = signed("/webhooks/hubspot", body.clone(), SECRET, now - 310_000);
    let future = signed("/webhooks/hubspot", body.clone(), SECRET, now + 310_000);
    let mut tampered_body = signed("/webhooks/hubspot", body.clone(), SECRET, now);
    *tampered_body.body_mut() = Body::from(body.replace("email", "phone"));
    let tampered_uri = {
        let good = signed("/webhooks/hubspot", body.clone(), SECRET, now);
        let (mut parts, b) = good.into_parts();
        parts.uri = "/webhooks/hubspot?extra=1".parse().unwrap();
        Request::from_parts(parts, b)
    };
    let unsigned = Request::post("/webhooks/hubspot")
        .header("host", HOST)
        .body(Body::from(body.clone()))
        .unwrap();

    let cases = [
        ("wrong secret", wrong_secret),
        ("stale timestamp", stale),
        ("future timestamp", future),
        ("tampered body", tampered_body),
        ("tampered uri", tampered_uri),
        ("unsigned", unsigned),
    ];
    for (case, request) in cases {
        let (status, answer) = send(&app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(answer, serde_json::json!({"error": "unauthorized"}));
    }
    assert!(stand.queued().await.is_empty());
    assert_eq!(stand.dedupe_records().await, 0);
}

#[tokio::test]
async fn the_previous_secret_is_accepted_during_the_grace_period_and_refused_after_it() {
    let stand = Stand::new().await;
    rotate_app_secret(&stand.sdk, &stand.config.secret_id, "zzzzzzzz-new-secret").await;
    let mut config = stand.config.clone();
    config.secret_grace = Duration::from_secs(600);

    // Inside the grace period: the old secret (now AWSPREVIOUS) still verifies.
    let app = stand.app_with(&config, &stand.sdk, Arc::new(SystemClock));
    let body = batch(ACTIVE_PORTAL, 1..2, now_ms());
    let (status, _) = send(&app, signed("/webhooks/hubspot", body, SECRET, now_ms())).await;
    assert_eq!(status, StatusCode::OK);

    // Twenty minutes later the grace period is over.
    let later = now_ms() + 20 * 60 * 1000;
    let clock = ManualClock::at(later);
    let app = stand.app_with(&config, &stand.sdk, Arc::new(clock));
    let body = batch(ACTIVE_PORTAL, 2..3, later);
    let (status, _) = send(
        &app,
        signed("/webhooks/hubspot", body.clone(), SECRET, later),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(
        &app,
        signed("/webhooks/hubspot", body, "zzzzzzzz-new-secret", later),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stand.queued().await.len(), 2);
}

#[tokio::test]
async fn a_request_signed_with_the_templates_placeholder_secret_is_never_accepted() {
    let stand = Stand::new().await;
    let placeholder = hsbridge_platform::secrets::PLACEHOLDER;
    // A fresh stack: the secret still holds what template.yaml creates it with.
    aws_sdk_secretsmanager::Client::new(&stand.sdk)
        .put_secret_value()
        .secret_id(&stand.config.secret_id)
        .secret_string(
            serde_json::json!({"client_id": placeholder, "client_secret": placeholder}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let app = stand.app_with(&stand.config, &stand.sdk, Arc::new(SystemClock));
    let body = batch(ACTIVE_PORTAL, 1..2, now_ms());
    let (status, _) = send(
        &app,
        signed("/webhooks/hubspot", body, placeholder, now_ms()),
    )
    .await;
    // 5xx, not 2xx (forged events queued) and not 4xx (HubSpot would drop real ones).
    assert!(status.is_server_error(), "{status}");

    // Filled in: the placeholder is now AWSPREVIOUS, inside the grace period, and still refused.
    rotate_app_secret(
        &stand.sdk,
        &stand.config.secret_id,
        "zzzzzzzz-first-real-secret",
    )
    .await;
    let app = stand.app_with(&stand.config, &stand.sdk, Arc::new(SystemClock));
    let body = batch(ACTIVE_PORTAL, 2..3, now_ms());
    let (status, _) = send(
        &app,
        signed("/webhooks/hubspot", body.clone(), placeholder, now_ms()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(
        &app,
        signed(
            "/webhooks/hubspot",
            body,
            "zzzzzzzz-first-real-secret",
            now_ms(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stand.queued().await.len(), 1);
}

#[tokio::test]
async fn a_failed_hand_off_answers_503_and_the_retry_queues_each_event_exactly_once() {
    let stand = Stand::new().await;
    let body = batch(ACTIVE_PORTAL, 1..6, now_ms());

    // The queue is unreachable: SQS alone points at a closed port.
    let mut config = stand.config.clone();
    config.queue_url = "http://127.0.0.1:9/000000000000/unreachable".to_owned();
    let dead_sqs = aws_config::SdkConfig::builder()
        .region(stand.sdk.region().cloned())
        .credentials_provider(stand.sdk.credentials_provider().unwrap())
        .endpoint_url("http://127.0.0.1:9")
        .behavior_version(aws_config::BehaviorVersion::latest())
        .sleep_impl(stand.sdk.sleep_impl().unwrap())
        .time_source(stand.sdk.time_source().unwrap())
        .timeout_config(stand.sdk.timeout_config().cloned().unwrap())
        .build();
    let mut state = wiring::aws_state(
        &config,
        &as_role(&stand.sdk, Role::WebhookIntake),
        Arc::new(SystemClock),
        Metrics::capturing("hsbridge", "webhook-intake"),
    );
    state.queue = Arc::new(hsbridge_webhook_intake::queue::SqsEventQueue::new(
        aws_sdk_sqs::Client::new(&dead_sqs),
        &config.queue_url,
    ));
    let broken = app(state);
    let (status, _) = send(
        &broken,
        signed("/webhooks/hubspot", body.clone(), SECRET, now_ms()),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(stand.dedupe_records().await, 0, "claims must be released");

    // The queue is back; HubSpot retries.
    let healthy = stand.app();
    let (status, ack) = send(
        &healthy,
        signed("/webhooks/hubspot", body.clone(), SECRET, now_ms()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["accepted"], 5);
    let (status, _) = send(
        &healthy,
        signed("/webhooks/hubspot", body, SECRET, now_ms()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<String> = stand
        .queued()
        .await
        .iter()
        .map(|m| m["dedupeKey"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 5);
    let unique_keys: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(unique_keys.len(), 5);
}

#[tokio::test]
async fn two_identical_batches_at_the_same_moment_queue_each_event_once() {
    let stand = Stand::new().await;
    let app = stand.app();
    let body = batch(ACTIVE_PORTAL, 1..21, now_ms());
    let ts = now_ms();
    let (a, b) = tokio::join!(
        send(&app, signed("/webhooks/hubspot", body.clone(), SECRET, ts)),
        send(&app, signed("/webhooks/hubspot", body.clone(), SECRET, ts)),
    );
    assert_eq!(a.0, StatusCode::OK);
    assert_eq!(b.0, StatusCode::OK);
    assert_eq!(
        a.1["accepted"].as_u64().unwrap() + b.1["accepted"].as_u64().unwrap(),
        20
    );
    assert_eq!(stand.queued().await.len(), 20);
}

#[tokio::test]
async fn a_full_batch_of_100_is_accepted_and_oversized_or_malformed_ones_get_their_4xx() {
    let stand = Stand::new().await;
    let app = stand.app();
    let now = now_ms();

    let (status, ack) = send(
        &app,
        signed(
            "/webhooks/hubspot",
            batch(ACTIVE_PORTAL, 0..100, now),
            SECRET,
            now,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["accepted"], 100);
    assert_eq!(stand.queued().await.len(), 100);

    let (status, answer) = send(
        &app,
        signed(
            "/webhooks/hubspot",
            batch(ACTIVE_PORTAL, 200..301, now),
            SECRET,
            now,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["reason"], "batch has more than 100 events");

    let too_big = format!("[{}]", " ".repeat(1024 * 1024));
    let (status, _) = send(&app, signed("/webhooks/hubspot", too_big, SECRET, now)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, answer) = send(
        &app,
        signed("/webhooks/hubspot", b"\xff\xfe[]".to_vec(), SECRET, now),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["reason"], "body is not UTF-8");

    let wrong_types = r#"[{"eventId":"one","subscriptionId":1,"portalId":62515,"occurredAt":1,"subscriptionType":"a"}]"#;
    let (status, _) = send(&app, signed("/webhooks/hubspot", wrong_types, SECRET, now)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    for not_a_batch in ["{}", "[]", "\"text\""] {
        let (status, _) = send(&app, signed("/webhooks/hubspot", not_a_batch, SECRET, now)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{not_a_batch}");
    }
    assert!(stand.queued().await.is_empty());
}

#[tokio::test]
async fn events_of_an_account_needing_a_reinstall_are_queued_not_ignored() {
    // Its refresh token died; the app is still installed and HubSpot still signs its events.
    let stand = Stand::new().await;
    stand.set_account(555, "needs_reinstall").await;
    let app = stand.app();
    let now = now_ms();
    let (status, ack) = send(
        &app,
        signed("/webhooks/hubspot", batch(555, 1..4, now), SECRET, now),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["accepted"], 3, "{ack}");
    assert_eq!(ack["ignored"], 0, "{ack}");
    assert_eq!(stand.queued().await.len(), 3);
}

#[tokio::test]
async fn events_of_disconnected_or_unknown_accounts_are_acknowledged_as_ignored_but_not_queued() {
    let stand = Stand::new().await;
    stand.set_account(777, "disconnected").await;
    let metrics = Metrics::capturing("hsbridge", "webhook-intake");
    let app = app(wiring::aws_state(
        &stand.config,
        &as_role(&stand.sdk, Role::WebhookIntake),
        Arc::new(SystemClock),
        metrics.clone(),
    ));
    let now = now_ms();
    let (status, ack) = send(
        &app,
        signed("/webhooks/hubspot", batch(777, 1..3, now), SECRET, now),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["ignored"], 2);
    let (status, ack) = send(
        &app,
        signed("/webhooks/hubspot", batch(888, 1..2, now), SECRET, now),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["ignored"], 1);
    assert!(stand.queued().await.is_empty());
    // Counted by reason, so a dashboard tells a disconnected account from one never installed.
    let sum = |name: &str| -> f64 {
        metrics
            .captured()
            .iter()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()[name]
                    .as_f64()
                    .unwrap_or(0.0)
            })
            .sum()
    };
    assert_eq!(sum("IgnoredDisconnected"), 2.0);
    assert_eq!(sum("IgnoredUnknown"), 1.0);
    assert_eq!(sum("Ignored"), 3.0);
}

#[tokio::test]
async fn v1_only_requests_are_refused_unless_allowed_and_then_never_for_stale_events() {
    let stand = Stand::new().await;
    let now = now_ms();
    let v1 = |body: String| {
        let signature = signed::v1(SECRET, body.as_bytes());
        Request::post("/webhooks/hubspot")
            .header("host", HOST)
            .header("x-hubspot-signature", signature)
            .header("x-hubspot-signature-version", "v1")
            .body(Body::from(body))
            .unwrap()
    };
    let fresh = batch(ACTIVE_PORTAL, 1..2, now);
    let (status, _) = send(&stand.app(), v1(fresh.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "v1 is off by default");

    let mut config = stand.config.clone();
    config.settings.allow_v1 = true;
    let app = stand.app_with(&config, &stand.sdk, Arc::new(SystemClock));
    let (status, _) = send(&app, v1(fresh)).await;
    assert_eq!(status, StatusCode::OK);
    let stale = batch(ACTIVE_PORTAL, 2..3, now - 73 * 3600 * 1000);
    let (status, _) = send(&app, v1(stale)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(stand.queued().await.len(), 1);
}

/// A fixture event as API Gateway would deliver it, signed for the URL the fixture's client called.
fn fixture_event(template: &str, public_uri: &str, body: &str, ts: u64) -> lambda_http::Request {
    let json = signed::fixture_event(template, SECRET, public_uri, body, ts);
    lambda_http::request::from_str(&json).unwrap()
}

#[tokio::test]
async fn http_api_and_function_url_events_verify_against_the_url_hubspot_called() {
    let stand = Stand::new().await;
    // The fixtures' target URL carries a query, which the intake must be told about.
    let mut config = stand.config.clone();
    config.settings.expected_query = Some("source=hubspot&tag=a%3Ab&q=x%20y%2Bz".to_owned());
    let app = stand.app_with(&config, &stand.sdk, Arc::new(SystemClock));
    let cases = [
        (
            include_str!("../fixtures/http-api-v2-webhook.json"),
            "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/webhooks/hubspot?source=hubspot&tag=a%3Ab&q=x%20y%2Bz",
            1..3,
        ),
        (
            include_str!("../fixtures/function-url-webhook.json"),
            "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws/webhooks/hubspot?source=hubspot&tag=a%3Ab&q=x%20y%2Bz",
            3..5,
        ),
    ];
    for (template, public_uri, ids) in cases {
        let now = now_ms();
        let event = fixture_event(template, public_uri, &batch(ACTIVE_PORTAL, ids, now), now);
        let request = event.map(|b| Body::from(b.to_vec()));
        let (status, ack) = send(&app, request).await;
        assert_eq!(status, StatusCode::OK, "{public_uri}");
        assert_eq!(ack["accepted"], 2);
    }
    assert_eq!(stand.queued().await.len(), 4);
}
