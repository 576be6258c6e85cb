//! The intake's half of one trace, through the deployed path (`serve::handle_event`, i.e.
//! lambda_http's conversion with the invocation's context): Lambda's X-Ray trace of the
//! invocation travels with each queued event; a client's `X-Amzn-Trace-Id` never does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hsbridge_platform::ManualClock;
use hsbridge_platform::accounts::{AccountStatus, InMemoryAccountDirectory};
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_platform::serve::handle_event;
use hsbridge_verify::{Secret, SecretSet, sign_v3};
use hsbridge_webhook_intake::dedupe::InMemoryDeduper;
use hsbridge_webhook_intake::queue::InMemoryEventQueue;
use hsbridge_webhook_intake::{IntakeState, app};
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use std::sync::Arc;

const NOW: u64 = 1_700_000_000_000;
const SECRET: &str = "intake-trace-secret";
const LAMBDAS: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const CLIENTS: &str = "Root=1-11111111-222222222222222222222222;Parent=3333333333333333;Sampled=1";

fn state(queue: Arc<InMemoryEventQueue>) -> IntakeState {
    let accounts = InMemoryAccountDirectory::default();
    accounts.set(62515, AccountStatus::Active);
    IntakeState {
        settings: Default::default(),
        secrets: Arc::new(StaticSecretSource(HubSpotApp {
            client_id: "id".into(),
            secrets: SecretSet::new(Secret::new(SECRET)).unwrap(),
        })),
        accounts: Arc::new(accounts),
        deduper: Arc::new(InMemoryDeduper::default()),
        queue,
        clock: Arc::new(ManualClock::at(NOW)),
        metrics: Metrics::capturing("hsbridge", "webhook-intake"),
    }
}

/// An HTTP API (payload 2.0) event of a signed one-event batch, with a client's trace header.
fn event(event_id: u64) -> Box<serde_json::value::RawValue> {
    let body = json!([{"eventId": event_id, "subscriptionId": 2, "portalId": 62515,
        "occurredAt": NOW, "subscriptionType": "contact.creation", "attemptNumber": 0,
        "objectId": 3}])
    .to_string();
    let ts = NOW.to_string();
    let signature = sign_v3(
        &Secret::new(SECRET),
        "POST",
        "https://hooks.example.com/webhooks/hubspot",
        body.as_bytes(),
        &ts,
    );
    let event = json!({
        "version": "2.0", "routeKey": "POST /webhooks/hubspot",
        "rawPath": "/webhooks/hubspot", "rawQueryString": "",
        "headers": {
            "host": "hooks.example.com", "content-type": "application/json",
            "x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": ts,
            "x-amzn-trace-id": CLIENTS,
        },
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "hooks.example.com",
            "domainPrefix": "hooks", "requestId": "r-1", "routeKey": "POST /webhooks/hubspot",
            "stage": "$default", "time": "14/Nov/2023:22:13:20 +0000", "timeEpoch": NOW,
            "http": {"method": "POST", "path": "/webhooks/hubspot", "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9", "userAgent": "HubSpot Connect 2.0"}
        },
        "body": body, "isBase64Encoded": false
    });
    serde_json::value::to_raw_value(&event).unwrap()
}

async fn queued_trace(xray_trace_id: Option<&str>, event_id: u64) -> Option<String> {
    let queue = Arc::new(InMemoryEventQueue::default());
    let mut context = Context::default();
    context.request_id = "r-1".into();
    context.xray_trace_id = xray_trace_id.map(str::to_owned);
    let answer = handle_event(
        app(state(Arc::clone(&queue))),
        LambdaEvent::new(event(event_id), context),
    )
    .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let queued = queue.drain();
    assert_eq!(queued.len(), 1);
    queued[0].trace.clone()
}

#[tokio::test]
async fn lambdas_trace_of_the_invocation_travels_with_each_event_and_the_clients_header_does_not() {
    assert_eq!(
        queued_trace(Some(LAMBDAS), 1).await.as_deref(),
        Some(LAMBDAS)
    );
}

#[tokio::test]
async fn without_lambdas_trace_the_clients_trace_header_is_not_taken_instead() {
    assert_eq!(queued_trace(None, 2).await, None);
}

#[tokio::test]
async fn a_malformed_invocation_trace_is_dropped_and_the_event_still_queued() {
    assert_eq!(queued_trace(Some("Root=1-zz;Parent=\"x\""), 3).await, None);
}
