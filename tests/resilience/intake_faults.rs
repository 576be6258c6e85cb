//! The intake while an AWS dependency fails: a 5xx (so HubSpot retries) and nothing left behind;
//! after recovery HubSpot's retry — the same batch, signed afresh — queues each event exactly
//! once, counted on the real moto queue by dedupe key.

use crate::stand::{IntakeStand, PORTAL, batch, keys, send, signed};
use crate::{SHARED, stand};
use hsbridge_integration_tests::aws::now_ms;
use hsbridge_integration_tests::proxy::{Fault, Service};
use hsbridge_platform::{Clock, ManualClock};
use http::StatusCode;
use std::collections::BTreeMap;
use std::sync::Arc;

const EVENTS: std::ops::Range<u64> = 1..6;

/// How often each dedupe key is on the queue.
fn counts(keys: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for k in keys {
        *counts.entry(k.clone()).or_default() += 1;
    }
    counts
}

/// One outage: `break_it` sets the faults; the batch sent meanwhile gets a 5xx and leaves no
/// dedupe record and no message; then, healed, HubSpot's retry is accepted whole, its second
/// retry is all duplicates, and the queue holds each event exactly once.
async fn outage_loses_nothing_and_the_retry_queues_each_event_once(
    case: &str,
    break_it: impl FnOnce(&IntakeStand),
) {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let occurred_at = now_ms();
    let body = batch(PORTAL, EVENTS, occurred_at);
    let app = stand.app();

    break_it(&stand);
    let (status, answer) = send(&app, signed(&body, now_ms())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{case}: {answer}");
    assert_eq!(
        answer,
        serde_json::json!({"error": "unavailable"}),
        "{case}"
    );
    assert!(stand.proxy.injected() > 0, "{case}: no fault was injected");
    assert_eq!(
        stand.dedupe_records().await,
        0,
        "{case}: claims left behind"
    );
    assert!(
        stand.queued().await.is_empty(),
        "{case}: queued during the outage"
    );

    stand.proxy.heal();
    let (status, ack) = send(&app, signed(&body, now_ms())).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{case}: retry after recovery: {ack}"
    );
    assert_eq!(ack["accepted"], 5, "{case}");
    let (status, ack) = send(&app, signed(&body, now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{case}");
    assert_eq!(ack["duplicates"], 5, "{case}");

    let queued = stand.queued_keys().await;
    let expected: BTreeMap<String, usize> = keys(PORTAL, EVENTS, occurred_at)
        .into_iter()
        .map(|k| (k, 1))
        .collect();
    assert_eq!(counts(&queued), expected, "{case}: each event exactly once");
}

#[tokio::test]
async fn dynamodb_throttling_answers_503_and_the_retry_queues_each_event_once() {
    outage_loses_nothing_and_the_retry_queues_each_event_once("dynamodb throttled", |s| {
        s.proxy.fail(Service::DynamoDb, Fault::Throttle);
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_dynamodb_answers_503_and_the_retry_queues_each_event_once() {
    outage_loses_nothing_and_the_retry_queues_each_event_once("dynamodb unreachable", |s| {
        s.proxy.fail(Service::DynamoDb, Fault::Unreachable);
    })
    .await;
}

/// A full batch is claimed in transactions of 50; when DynamoDB starts throttling after the
/// first, the request answers 503 and queues nothing. Releasing the first claims is a
/// transaction too, throttled as well, so they stay until their in-progress TTL (10 s, well
/// before HubSpot retries); then the retry takes every event, each once.
#[tokio::test]
async fn claims_taken_before_dynamodb_starts_throttling_block_nothing_past_their_ttl_and_the_retry_queues_each_event_once()
 {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let clock = ManualClock::at(now_ms());
    let app = stand.app_with_clock(Arc::new(clock.clone()));
    let occurred_at = clock.now_ms();
    let body = batch(PORTAL, 1..61, occurred_at);
    stand
        .proxy
        .fail_operation(Service::DynamoDb, "TransactWriteItems", Fault::Throttle, 1);

    let (status, answer) = send(&app, signed(&body, clock.now_ms())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(stand.proxy.injected_into(Service::DynamoDb) > 0);
    assert!(stand.queued().await.is_empty(), "queued during the outage");

    stand.proxy.heal();
    clock.advance_ms(11_000);
    let (status, ack) = send(&app, signed(&body, clock.now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["accepted"], 60, "{ack}");
    assert_eq!(
        counts(&stand.queued_keys().await),
        keys(PORTAL, 1..61, occurred_at)
            .into_iter()
            .map(|k| (k, 1))
            .collect()
    );
}

#[tokio::test]
async fn sqs_throttling_answers_503_releases_the_claims_and_the_retry_queues_each_event_once() {
    outage_loses_nothing_and_the_retry_queues_each_event_once("sqs throttled", |s| {
        s.proxy.fail(Service::Sqs, Fault::Throttle);
    })
    .await;
}

#[tokio::test]
async fn sqs_server_errors_answer_503_and_the_retry_queues_each_event_once() {
    outage_loses_nothing_and_the_retry_queues_each_event_once("sqs 500", |s| {
        s.proxy.fail(Service::Sqs, Fault::ServerError);
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_sqs_answers_503_and_the_retry_queues_each_event_once() {
    outage_loses_nothing_and_the_retry_queues_each_event_once("sqs unreachable", |s| {
        s.proxy.fail(Service::Sqs, Fault::Unreachable);
    })
    .await;
}

#[tokio::test]
async fn secrets_manager_throttling_at_a_cold_start_answers_503_and_the_retry_queues_each_event_once()
 {
    outage_loses_nothing_and_the_retry_queues_each_event_once("secrets manager throttled", |s| {
        s.proxy.fail(Service::SecretsManager, Fault::Throttle);
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_secrets_manager_at_a_cold_start_answers_503_and_the_retry_queues_each_event_once()
 {
    outage_loses_nothing_and_the_retry_queues_each_event_once("secrets manager unreachable", |s| {
        s.proxy.fail(Service::SecretsManager, Fault::Unreachable);
    })
    .await;
}

#[tokio::test]
async fn with_every_aws_connection_refused_the_intake_answers_503_and_the_retry_queues_each_event_once()
 {
    outage_loses_nothing_and_the_retry_queues_each_event_once("all connections refused", |s| {
        s.proxy.refuse_connections();
    })
    .await;
}

#[tokio::test]
async fn events_queued_whose_dedupe_records_cannot_be_completed_are_acknowledged_and_queued_once() {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let occurred_at = now_ms();
    let body = batch(PORTAL, EVENTS, occurred_at);
    let app = stand.app();
    // Completing the claims is a BatchWriteItem; claiming (a transaction) and the queue still
    // work.
    stand
        .proxy
        .fail_operation(Service::DynamoDb, "BatchWriteItem", Fault::Throttle, 0);

    let (status, ack) = send(&app, signed(&body, now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["accepted"], 5);
    assert!(stand.proxy.injected_into(Service::DynamoDb) >= 1);
    assert_eq!(
        counts(&stand.queued_keys().await),
        keys(PORTAL, EVENTS, occurred_at)
            .into_iter()
            .map(|k| (k, 1))
            .collect()
    );
}

#[tokio::test]
async fn a_lost_sqs_answer_can_repeat_events_on_the_queue_but_loses_none() {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let occurred_at = now_ms();
    let body = batch(PORTAL, EVENTS, occurred_at);
    let app = stand.app();
    // SendMessageBatch reaches SQS, and its answer is lost: the intake cannot know the events
    // are queued, releases its claims and answers 503; HubSpot retries.
    stand.proxy.fail(Service::Sqs, Fault::LoseAnswer);
    let (status, _) = send(&app, signed(&body, now_ms())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(stand.dedupe_records().await, 0);

    stand.proxy.heal();
    let (status, ack) = send(&app, signed(&body, now_ms())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["accepted"], 5);

    // At-least-once: every event is there; copies carry the same dedupe key, which consumers
    // use to drop them (README, "Queue message schema").
    let counts = counts(&stand.queued_keys().await);
    let expected = keys(PORTAL, EVENTS, occurred_at);
    assert_eq!(
        counts.keys().cloned().collect::<Vec<_>>(),
        expected,
        "every event queued, no other"
    );
    let attempts = stand.proxy.injected_into(Service::Sqs);
    assert!(
        counts.values().all(|&n| n == attempts + 1),
        "each lost answer left one copy: {counts:?}, {attempts} lost answers"
    );
}

#[tokio::test]
async fn a_warm_instance_keeps_verifying_with_its_cached_secret_while_secrets_manager_throttles() {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let clock = ManualClock::at(now_ms());
    let app = stand.app_with_clock(Arc::new(clock.clone()));
    let first = batch(PORTAL, 1..3, clock.now_ms());
    let (status, _) = send(&app, signed(&first, clock.now_ms())).await;
    assert_eq!(status, StatusCode::OK);

    // Past the cache TTL (60 s), within the stale limit (15 min).
    stand.proxy.fail(Service::SecretsManager, Fault::Throttle);
    clock.advance_ms(5 * 60 * 1000);
    let occurred_at = clock.now_ms();
    let second = batch(PORTAL, 3..5, occurred_at);
    let (status, ack) = send(&app, signed(&second, clock.now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["accepted"], 2);
    assert!(stand.proxy.injected_into(Service::SecretsManager) > 0);

    // Past the stale limit the cached secret is no longer used.
    clock.advance_ms(15 * 60 * 1000);
    let third = batch(PORTAL, 5..6, clock.now_ms());
    let (status, _) = send(&app, signed(&third, clock.now_ms())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        stand::drain(&stand.direct, &stand.config.queue_url, 100)
            .await
            .len(),
        4
    );
}
