//! The event log's cost, counted by the proxy: the intake's 100-event batch makes no call more
//! than before (the log rides on the dedupe writes), and the api-caller makes one write per SQS
//! batch of 10 (not one per message). Then each event's path reads back from the log, and a
//! failed log write changes nothing the api-caller answers.

use crate::SHARED;
use crate::stand::{IntakeStand, PORTAL, batch, keys, send, signed, through};
use hsbridge_api_caller::consumer::{SqsAttributes, SqsEvent, SqsMessage, handle_batch};
use hsbridge_api_caller::{CallerConfig, wiring};
use hsbridge_integration_tests::aws::now_ms;
use hsbridge_integration_tests::proxy::{Fault, Service};
use hsbridge_platform::SystemClock;
use hsbridge_platform::event_log::{DynamoEventLog, EventLogReader, ListFilter, Outcome, Status};
use hsbridge_platform::metrics::Metrics;
use hsbridge_standin::{Credential, RunningStandin, Standin, StandinConfig};
use http::StatusCode;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;

async fn protected_api() -> RunningStandin {
    Standin::new(StandinConfig::new(
        "us-east-1",
        vec![Credential {
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
            session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
            principal_arn: "arn:aws:iam::123456789012:role/api-caller".to_owned(),
        }],
    ))
    .spawn("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap()
}

/// The api-caller as Lambda builds it from the template's variables, reaching AWS through the
/// stand's proxy.
fn consumer(
    stand: &IntakeStand,
    api: &RunningStandin,
) -> hsbridge_api_caller::consumer::ConsumerState {
    let vars: HashMap<String, String> = [
        (
            "HSBRIDGE_PROTECTED_API_URL",
            format!("{}/prod", api.base_url),
        ),
        ("HSBRIDGE_PROTECTED_API_REGION", "us-east-1".to_owned()),
        (
            "HSBRIDGE_ACCOUNTS_TABLE",
            stand.config.accounts_table.clone(),
        ),
        (
            "HSBRIDGE_EVENT_LOG_TABLE",
            stand.config.dedupe_table.clone(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = CallerConfig::from_env(&vars).unwrap();
    let sdk = through(&stand.direct, stand.proxy.url());
    wiring::consumer_state(
        &config,
        &sdk,
        Arc::new(SystemClock),
        Metrics::capturing("hsbridge", "api-caller"),
    )
    .unwrap()
}

/// The queued messages as Lambda hands them to the api-caller, ten at a time.
async fn sqs_batches(stand: &IntakeStand) -> Vec<SqsEvent> {
    let bodies: Vec<String> = stand
        .queued()
        .await
        .iter()
        .map(serde_json::Value::to_string)
        .collect();
    bodies
        .chunks(10)
        .map(|chunk| SqsEvent {
            records: chunk
                .iter()
                .enumerate()
                .map(|(i, body)| SqsMessage {
                    message_id: format!("m{i}"),
                    body: body.clone(),
                    attributes: SqsAttributes {
                        approximate_receive_count: Some("1".to_owned()),
                    },
                })
                .collect(),
        })
        .collect()
}

#[tokio::test]
async fn the_log_adds_no_intake_call_and_one_api_caller_write_per_batch_and_reads_back_each_path() {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::with_event_log_index().await;
    let app = stand.app();
    // Warm: the app secret is read once per cold start.
    let (status, _) = send(
        &app,
        signed(&batch(PORTAL, 1_000..1_001, now_ms()), now_ms()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    stand.queued().await;
    stand.proxy.reset_calls();

    let occurred_at = now_ms();
    let body = batch(PORTAL, 0..100, occurred_at);
    // Under the other suites' load moto can be slower than the intake's budget, which then
    // rightly answers 503: HubSpot's retry is sent, and the answered attempt is counted.
    let mut answered = None;
    for _ in 0..3 {
        stand.proxy.reset_calls();
        let (status, ack) = send(&app, signed(&body, now_ms())).await;
        if status == StatusCode::OK {
            answered = Some(ack);
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ack}");
    }
    assert!(answered.is_some(), "three 503s in a row");
    let intake_calls = stand.proxy.calls();
    let intake_total: usize = intake_calls.values().sum();
    writeln!(
        std::io::stdout(),
        "intake, 100 new events with the event log: {intake_total} AWS calls {intake_calls:?}"
    )
    .unwrap();
    assert!(intake_total <= 20, "{intake_calls:?}");

    let api = protected_api().await;
    let state = consumer(&stand, &api);
    let batches = sqs_batches(&stand).await;
    assert_eq!(batches.len(), 10);
    stand.proxy.reset_calls();
    for event in batches {
        let answer = handle_batch(&state, event).await;
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    }
    let caller_calls = stand.proxy.calls();
    let writes = caller_calls
        .get(&(Service::DynamoDb, "BatchWriteItem".to_owned()))
        .copied()
        .unwrap_or(0);
    writeln!(
        std::io::stdout(),
        "api-caller, 100 messages in 10 SQS batches: {} AWS calls {caller_calls:?}; event-log writes per delivered message: {}",
        caller_calls.values().sum::<usize>(),
        writes as f64 / 100.0
    )
    .unwrap();
    assert_eq!(writes, 10, "one write per batch of 10: {caller_calls:?}");
    assert_eq!(api.standin.recorded().len(), 100);

    let log = DynamoEventLog::new(
        aws_sdk_dynamodb::Client::new(&stand.direct),
        &stand.config.dedupe_table,
    );
    let all = keys(PORTAL, 0..100, occurred_at);
    let (path, read) = log.show(&all[7], now_ms()).await.unwrap();
    let path = path.unwrap();
    assert_eq!(read.calls, 1);
    assert_eq!(path.status(), Status::Delivered);
    let delivery = path.delivery.as_ref().unwrap();
    assert_eq!(
        (delivery.outcome, delivery.api_status, delivery.attempts),
        (Outcome::Delivered, Some(200), 1)
    );
    let intake = path.intake.as_ref().unwrap();
    assert!(intake.queued_at_ms.unwrap() >= intake.received_at_ms);
    assert!(delivery.at_ms >= intake.queued_at_ms.unwrap());
    // Nothing of the event's content is in the log: both records hold only these attributes.
    let dynamo = aws_sdk_dynamodb::Client::new(&stand.direct);
    let allowed: BTreeSet<&str> = [
        "pk",
        "status",
        "owner",
        "expires_at_ms",
        "ttl",
        "log_portal",
        "log_sort",
        "subscription_type",
        "received_at_ms",
        "queued_at_ms",
        "log_until_ms",
        "event_key",
        "outcome",
        "at_ms",
        "attempts",
        "api_status",
        "error_class",
        "drop_reason",
    ]
    .into_iter()
    .collect();
    for pk in [all[7].clone(), format!("delivery#{}", all[7])] {
        let item = dynamo
            .get_item()
            .table_name(&stand.config.dedupe_table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()))
            .send()
            .await
            .unwrap();
        let names: BTreeSet<&str> = item.item().unwrap().keys().map(String::as_str).collect();
        assert!(names.is_subset(&allowed), "{pk}: {names:?}");
    }

    // Listed newest first, a page at a time, each event once.
    let mut filter = ListFilter {
        portal: Some(PORTAL),
        subscription_type: None,
        status: Some(Status::Delivered),
        from_ms: 0,
        to_ms: now_ms(),
        before: None,
        limit: 30,
    };
    let mut listed = Vec::new();
    loop {
        let page = log.list(&filter, now_ms()).await.unwrap();
        assert!(page.read.operation.starts_with("Query"), "{:?}", page.read);
        listed.extend(page.events.iter().map(|e| e.key.clone()));
        match page.next {
            Some(next) => filter.before = Some(next),
            None => break,
        }
    }
    let mut expected = all.clone();
    expected.sort();
    let mut got = listed.clone();
    got.sort();
    assert_eq!(got, expected, "every event listed exactly once");
}

#[tokio::test]
async fn a_failed_log_write_changes_nothing_the_api_caller_answers() {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::with_event_log_index().await;
    let app = stand.app();
    let occurred_at = now_ms();
    let (status, _) = send(&app, signed(&batch(PORTAL, 0..10, occurred_at), now_ms())).await;
    assert_eq!(status, StatusCode::OK);
    let api = protected_api().await;
    let state = consumer(&stand, &api);
    stand
        .proxy
        .fail_operation(Service::DynamoDb, "BatchWriteItem", Fault::ServerError, 0);
    for event in sqs_batches(&stand).await {
        let answer = handle_batch(&state, event).await;
        assert!(
            answer.batch_item_failures.is_empty(),
            "a delivered message is not failed back for its log record: {answer:?}"
        );
    }
    assert_eq!(api.standin.recorded().len(), 10, "each delivered once");
    stand.proxy.heal();
    let log = DynamoEventLog::new(
        aws_sdk_dynamodb::Client::new(&stand.direct),
        &stand.config.dedupe_table,
    );
    let (path, _) = log
        .show(&keys(PORTAL, 0..10, occurred_at)[0], now_ms())
        .await
        .unwrap();
    assert_eq!(
        path.unwrap().status(),
        Status::Queued,
        "the log shows the last step it knows"
    );
}
