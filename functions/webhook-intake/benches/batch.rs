//! The intake's own work on a full batch (100 events, as HubSpot sends at most): parsing it,
//! building the dedupe keys, building the queue messages, and the whole request through the
//! Router on the embedded adapters (signature check, parse, account check, claims, hand-off,
//! completion), without Lambda's event translation and without any network.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hsbridge_platform::SystemClock;
use hsbridge_platform::accounts::{AccountStatus, InMemoryAccountDirectory};
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_verify::{Secret, SecretSet, sign_v3};
use hsbridge_webhook_intake::config::IntakeSettings;
use hsbridge_webhook_intake::dedupe::InMemoryDeduper;
use hsbridge_webhook_intake::events::parse_batch;
use hsbridge_webhook_intake::queue::{InMemoryEventQueue, envelope};
use hsbridge_webhook_intake::{IntakeState, app};
use tower::ServiceExt;

const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const PORTAL: u64 = 62515;
const HOST: &str = "hooks.example.com";
const PATH: &str = "/webhooks/hubspot";

/// 100 events as HubSpot documents them (property changes, every field present).
fn batch(first_id: u64, occurred_at: u64) -> String {
    let events: Vec<serde_json::Value> = (first_id..first_id + 100)
        .map(|id| {
            serde_json::json!({
                "eventId": id, "subscriptionId": 12345, "portalId": PORTAL, "appId": 54321,
                "occurredAt": occurred_at, "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0, "objectId": 1000 + id, "propertyName": "email",
                "propertyValue": "someone@example.com", "changeSource": "CRM",
                "sourceId": "userId:12345"
            })
        })
        .collect();
    serde_json::Value::Array(events).to_string()
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn embedded_state() -> IntakeState {
    let accounts = InMemoryAccountDirectory::default();
    accounts.set(PORTAL, AccountStatus::Active);
    IntakeState {
        settings: IntakeSettings::default(),
        secrets: Arc::new(StaticSecretSource(HubSpotApp {
            client_id: "bench".into(),
            secrets: SecretSet::new(Secret::new(SECRET)).unwrap(),
        })),
        accounts: Arc::new(accounts),
        deduper: Arc::new(InMemoryDeduper::default()),
        queue: Arc::new(InMemoryEventQueue::default()),
        clock: Arc::new(SystemClock),
        metrics: Metrics::capturing("hsbridge", "webhook-intake"),
    }
}

fn signed_request(body: String) -> http::Request<Body> {
    let ts = now_ms().to_string();
    let signature = sign_v3(
        &Secret::new(SECRET),
        "POST",
        &format!("https://{HOST}{PATH}"),
        body.as_bytes(),
        &ts,
    );
    http::Request::post(PATH)
        .header("host", HOST)
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/json")
        .header("x-hubspot-signature-v3", signature)
        .header("x-hubspot-request-timestamp", ts)
        .body(Body::from(body))
        .unwrap()
}

fn bench_batch(c: &mut Criterion) {
    let body = batch(1, 1_700_000_000_000);
    let mut group = c.benchmark_group("batch100");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| parse_batch(black_box(body.as_bytes()), 100).unwrap())
    });
    let events = parse_batch(body.as_bytes(), 100).unwrap();
    group.bench_function("dedupe_keys", |b| {
        b.iter(|| {
            black_box(&events)
                .iter()
                .map(|e| e.dedupe_key())
                .collect::<Vec<String>>()
        })
    });
    group.bench_function("parse_and_dedupe_keys", |b| {
        b.iter(|| {
            let events = parse_batch(black_box(body.as_bytes()), 100).unwrap();
            let keys: Vec<String> = events.iter().map(|e| e.dedupe_key()).collect();
            (events, keys)
        })
    });
    group.bench_function("queue_messages", |b| {
        b.iter(|| {
            black_box(&events)
                .iter()
                .map(|e| envelope(e, 1_700_000_000_123, "v3"))
                .collect::<Vec<_>>()
        })
    });
    group.finish();

    // The whole request on the embedded adapters. Each iteration gets a fresh state and new
    // event ids (so all 100 events are new), both built outside the timed part.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut next_id = 1_000_000u64;
    let mut group = c.benchmark_group("intake_embedded");
    group.bench_function("request_100_new_events", |b| {
        b.iter_batched(
            || {
                next_id += 100;
                (
                    app(embedded_state()),
                    signed_request(batch(next_id, now_ms())),
                )
            },
            |(router, request)| {
                let response = runtime.block_on(router.oneshot(request)).unwrap();
                assert_eq!(response.status(), http::StatusCode::OK);
                response
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_batch);
criterion_main!(benches);
