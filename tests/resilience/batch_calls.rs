//! A full batch (HubSpot sends at most 100 events per request) in a handful of AWS calls, with
//! the dedupe guarantees of one call per event, and within the request budget when AWS is slow.
//!
//! The calls are counted by the proxy in front of moto, per service and operation.

use crate::SHARED;
use crate::stand::{IntakeStand, PORTAL, batch, keys, send, signed};
use aws_sdk_dynamodb::types::AttributeValue;
use hsbridge_integration_tests::aws::now_ms;
use hsbridge_integration_tests::proxy::Service;
use hsbridge_platform::{Clock, ManualClock};
use http::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most AWS calls a batch of 100 new events may cost.
const MAX_CALLS_PER_100: usize = 20;
/// HubSpot gives up on a webhook request after 5 s.
const HUBSPOT_TIMEOUT: Duration = Duration::from_secs(5);

fn how_often(keys: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for k in keys {
        *counts.entry(k.clone()).or_default() += 1;
    }
    counts
}

/// The intake of `stand`, warmed with one event so that the app secret is read and cached
/// (once per cold start, not per batch); the call counts are reset after it.
async fn warm(stand: &IntakeStand, app: &axum::Router, ts: u64) {
    let (status, _) = send(app, signed(&batch(PORTAL, 1_000..1_001, ts), ts)).await;
    assert_eq!(status, StatusCode::OK);
    stand.queued().await;
    stand.proxy.reset_calls();
}

#[tokio::test]
async fn a_batch_of_100_new_events_is_queued_once_in_at_most_20_aws_calls() {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let app = stand.app();
    warm(&stand, &app, now_ms()).await;

    let occurred_at = now_ms();
    let (status, ack) = send(&app, signed(&batch(PORTAL, 0..100, occurred_at), now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["accepted"], 100);

    let calls = stand.proxy.calls();
    let total: usize = calls.values().sum();
    writeln!(
        std::io::stdout(),
        "AWS calls for a batch of 100 new events: {total} {calls:?}"
    )
    .unwrap();
    assert!(
        total <= MAX_CALLS_PER_100,
        "{total} AWS calls for 100 events: {calls:?}"
    );
    let queued = stand.queued_keys().await;
    let expected: BTreeMap<String, usize> = keys(PORTAL, 0..100, occurred_at)
        .into_iter()
        .map(|k| (k, 1))
        .collect();
    assert_eq!(
        how_often(&queued),
        expected,
        "each event queued exactly once"
    );
}

#[tokio::test]
async fn a_retried_batch_whose_100_events_are_all_queued_is_answered_from_one_read_without_a_transaction()
 {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let app = stand.app();
    warm(&stand, &app, now_ms()).await;
    let occurred_at = now_ms();
    let body = batch(PORTAL, 0..100, occurred_at);
    let (status, ack) = send(&app, signed(&body, now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    stand.proxy.reset_calls();

    // HubSpot's retry after an answer it did not get: every event is queued already.
    let (status, ack) = send(&app, signed(&body, now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["duplicates"], 100, "{ack}");
    assert_eq!(ack["accepted"], 0, "{ack}");
    let calls = stand.proxy.calls();
    writeln!(
        std::io::stdout(),
        "AWS calls for a retried batch of 100 queued events: {calls:?}"
    )
    .unwrap();
    let dynamo = |operation: &str| {
        calls
            .get(&(Service::DynamoDb, operation.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(dynamo("TransactWriteItems"), 0, "{calls:?}");
    // The account read and the dedupe read, nothing else.
    assert_eq!(calls.values().sum::<usize>(), 2, "{calls:?}");
    assert_eq!(
        stand.queued().await.len(),
        100,
        "queued once, by the first delivery"
    );
}

#[tokio::test]
async fn a_batch_of_100_with_duplicates_and_events_another_request_holds_queues_only_the_new_ones()
{
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let app = stand.app();
    let occurred_at = now_ms();

    // 30 events were handed on before.
    let (status, _) = send(&app, signed(&batch(PORTAL, 0..30, occurred_at), now_ms())).await;
    assert_eq!(status, StatusCode::OK);
    // 10 are being handed on by another request, whose claims end shortly.
    let dynamo = aws_sdk_dynamodb::Client::new(&stand.direct);
    let until = now_ms() + 600;
    for key in keys(PORTAL, 30..40, occurred_at) {
        dynamo
            .put_item()
            .table_name(&stand.config.dedupe_table)
            .item("pk", AttributeValue::S(key))
            .item("status", AttributeValue::S("IN_PROGRESS".to_owned()))
            .item("owner", AttributeValue::S("another-request".to_owned()))
            .item("expires_at_ms", AttributeValue::N(until.to_string()))
            .send()
            .await
            .unwrap();
    }

    // HubSpot's retry of the whole batch, with 60 events never seen.
    let (status, ack) = send(&app, signed(&batch(PORTAL, 0..100, occurred_at), now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["duplicates"], 30, "{ack}");
    assert_eq!(
        ack["accepted"], 70,
        "the held ones are taken once their claims end: {ack}"
    );
    let expected: BTreeMap<String, usize> = keys(PORTAL, 0..100, occurred_at)
        .into_iter()
        .map(|k| (k, 1))
        .collect();
    assert_eq!(how_often(&stand.queued_keys().await), expected);
}

#[tokio::test]
async fn with_dynamodb_and_sqs_slow_a_full_batch_is_still_queued_and_answered_2xx_in_time() {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let app = stand.app();
    warm(&stand, &app, now_ms()).await;
    stand
        .proxy
        .slow_down(Service::DynamoDb, Duration::from_millis(400));
    stand
        .proxy
        .slow_down(Service::Sqs, Duration::from_millis(100));

    let occurred_at = now_ms();
    let started = Instant::now();
    let (status, ack) = send(&app, signed(&batch(PORTAL, 0..100, occurred_at), now_ms())).await;
    let took = started.elapsed();
    writeln!(
        std::io::stdout(),
        "slow AWS (DynamoDB +400 ms, SQS +100 ms per call): {status} in {took:?}, calls {:?}",
        stand.proxy.calls()
    )
    .unwrap();
    assert!(took < HUBSPOT_TIMEOUT, "answered after {took:?}");
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["accepted"], 100);
    stand.proxy.heal();
    let expected: BTreeMap<String, usize> = keys(PORTAL, 0..100, occurred_at)
        .into_iter()
        .map(|k| (k, 1))
        .collect();
    assert_eq!(how_often(&stand.queued_keys().await), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_aws_is_too_slow_for_the_budget_the_answer_comes_in_time_and_no_unqueued_event_is_acknowledged()
 {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let clock = ManualClock::at(now_ms());
    let app = stand.app_with_clock(Arc::new(clock.clone()));
    warm(&stand, &app, clock.now_ms()).await;
    // Ten SendMessageBatch calls of 300 ms each do not fit in what the claims leave of 3 s.
    stand
        .proxy
        .slow_down(Service::DynamoDb, Duration::from_millis(600));
    stand
        .proxy
        .slow_down(Service::Sqs, Duration::from_millis(300));

    let occurred_at = clock.now_ms();
    let body = batch(PORTAL, 0..100, occurred_at);
    let started = Instant::now();
    let (status, answer) = send(&app, signed(&body, clock.now_ms())).await;
    let took = started.elapsed();
    writeln!(
        std::io::stdout(),
        "too slow AWS for the 3 s budget (DynamoDB +600 ms, SQS +300 ms per call): {status} in {took:?}"
    )
    .unwrap();
    assert!(took < HUBSPOT_TIMEOUT, "answered after {took:?}");
    let expected: BTreeSet<String> = keys(PORTAL, 0..100, occurred_at).into_iter().collect();
    match status {
        // Acknowledged: then every event is on the queue already.
        StatusCode::OK => {
            assert_eq!(answer["accepted"], 100, "{answer}");
            let queued: BTreeSet<String> = stand.queued_keys().await.into_iter().collect();
            assert_eq!(queued, expected, "acknowledged but not queued");
            return;
        }
        StatusCode::SERVICE_UNAVAILABLE => {}
        other => panic!("answered {other}: {answer}"),
    }

    // Healed; HubSpot retries later, after any claim left behind has expired (10 s), and
    // again after any further 503 (moto itself may still be busy with what the proxy held).
    // The requests the proxy was still holding reach moto first.
    stand.proxy.heal();
    let mut retries = 0;
    let (status, ack) = loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        clock.advance_ms(11_000);
        retries += 1;
        let (status, ack) = send(&app, signed(&body, clock.now_ms())).await;
        if status != StatusCode::SERVICE_UNAVAILABLE || retries == 4 {
            break (status, ack);
        }
    };
    assert_eq!(status, StatusCode::OK, "after {retries} retries: {ack}");
    let queued = stand.queued_keys().await;
    assert_eq!(
        queued.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every event is on the queue"
    );
    writeln!(
        std::io::stdout(),
        "answered 200 on retry {retries}; queued before the 503 and again by a retry (consumers drop them by dedupe key): {}",
        queued.len() - expected.len()
    )
    .unwrap();
}
