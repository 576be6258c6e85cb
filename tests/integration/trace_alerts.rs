//! One trace and the alerts, against moto with the real SDK clients: the intake's X-Ray trace
//! header travels as each message's `AWSTraceHeader`, the api-caller continues it as a signed W3C
//! `traceparent` (read from what the SigV4 stand-in received), and the alerts reach EventBridge's
//! default bus (observed through a rule whose target is an SQS queue).

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
};
use hsbridge_api_caller::consumer::{
    ConsumerState, DeadLetterWatch, LambdaSqsEvent, handle_lambda_batch,
};
use hsbridge_api_caller::limits::{AccountGate, DynamoLimits, LimitSettings};
use hsbridge_api_caller::{CallerConfig, wiring};
use hsbridge_integration_tests::aws::{create_queue, create_table, now_ms, sdk, unique};
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_standin::{Credential, RecordedRequest, RunningStandin, Standin, StandinConfig};
use hsbridge_webhook_intake::events::parse_batch;
use hsbridge_webhook_intake::queue::{EventQueue, QueuedEvent, SqsEventQueue, envelope};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const HUB: u64 = 62515;
/// AWS's own example of a tracing header.
const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const TRACEPARENT: &str = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";

/// Keeps the body of every request the SQS client sends (the request as serialised by the SDK).
#[derive(Debug, Clone, Default)]
struct SentBodies(Arc<Mutex<Vec<Vec<u8>>>>);

impl Intercept for SentBodies {
    fn name(&self) -> &'static str {
        "SentBodies"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = context
            .request()
            .body()
            .bytes()
            .unwrap_or_default()
            .to_vec();
        self.0.lock().unwrap().push(body);
        Ok(())
    }
}

fn queued(events: u64) -> Vec<QueuedEvent> {
    let batch: Vec<Value> = (0..events)
        .map(|i| {
            json!({"eventId": 700 + i, "subscriptionId": 9, "portalId": HUB, "appId": 1,
                "occurredAt": 1_700_000_000_000u64 + i, "subscriptionType": "contact.creation",
                "attemptNumber": 0, "objectId": 1 + i})
        })
        .collect();
    parse_batch(&serde_json::to_vec(&batch).unwrap(), 100)
        .unwrap()
        .iter()
        .map(|e| envelope(e, now_ms(), "v3"))
        .collect()
}

#[tokio::test]
async fn the_intakes_trace_header_is_sent_with_each_message_as_its_aws_trace_header() {
    let sdk = sdk().await;
    let url = create_queue(&sdk, &unique("trace-events")).await;
    let sent = SentBodies::default();
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(sent.clone())
            .build(),
    );
    let queue = SqsEventQueue::new(client, &url);
    let mut events = queued(3);
    events[0] = events[0].clone().traced(Some(TRACE));
    events[1] = events[1].clone().traced(Some(TRACE));
    queue.send(&events).await.unwrap();

    let bodies = sent.0.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "one SendMessageBatch");
    let request: Value = serde_json::from_slice(&bodies[0]).unwrap();
    let entries = request["Entries"].as_array().unwrap();
    for entry in &entries[..2] {
        assert_eq!(
            entry["MessageSystemAttributes"]["AWSTraceHeader"],
            json!({"DataType": "String", "StringValue": TRACE})
        );
    }
    assert!(entries[2].get("MessageSystemAttributes").is_none());
    // moto accepted the batch (moto 5.2.5 keeps system attributes on SendMessage only, so the
    // consumer's half below sends its message with SendMessage).
    let received = hsbridge_integration_tests::aws::drain_queue(&sdk, &url).await;
    assert_eq!(received.len(), 3);
}

/// The stand-in as the protected API, signing with the SDK's credentials (moto's test keys).
async fn protected_api(fail: bool) -> RunningStandin {
    let mut standin = Standin::new(StandinConfig::new(
        "us-east-1",
        vec![Credential {
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
            session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
            principal_arn: "arn:aws:sts::000000000000:assumed-role/api-caller/fn".into(),
        }],
    ));
    if fail {
        standin = standin.with_responder(Arc::new(|_| Some((500, b"{}".to_vec()))));
    }
    standin.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// The accounts table with `HUB` active.
async fn accounts(sdk: &SdkConfig) -> String {
    let table = unique("trace-accounts");
    create_table(sdk, &table, "hub_id").await;
    aws_sdk_dynamodb::Client::new(sdk)
        .put_item()
        .table_name(&table)
        .item("hub_id", AttributeValue::S(HUB.to_string()))
        .item("status", AttributeValue::S("active".into()))
        .send()
        .await
        .unwrap();
    table
}

fn caller_config(api: &RunningStandin, accounts: &str, extra: &[(&str, &str)]) -> CallerConfig {
    let mut vars: HashMap<String, String> = [
        (
            "HSBRIDGE_PROTECTED_API_URL",
            format!("{}/prod", api.base_url),
        ),
        ("HSBRIDGE_PROTECTED_API_REGION", "us-east-1".into()),
        ("HSBRIDGE_ACCOUNTS_TABLE", accounts.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    CallerConfig::from_env(&vars).unwrap()
}

/// The api-caller as its binary wires it: the consumer, and the dead-letter watch whose alerts
/// go through `alerts_sdk`.
fn caller(
    config: &CallerConfig,
    sdk: &SdkConfig,
    alerts_sdk: &SdkConfig,
) -> (ConsumerState, Option<DeadLetterWatch>) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let watch = wiring::dead_letter_watch(config, alerts_sdk, &clock);
    let state = wiring::consumer_state(
        config,
        sdk,
        clock,
        Metrics::capturing("hsbridge", "api-caller"),
    )
    .unwrap();
    (state, watch)
}

/// Sends `body` with `trace` as its AWSTraceHeader (when given), receives it as Lambda's event
/// source would, and returns the event Lambda would hand the function.
async fn through_sqs(sdk: &SdkConfig, body: &str, trace: Option<&str>) -> LambdaSqsEvent {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = create_queue(sdk, &unique("trace-in")).await;
    let mut send = sqs.send_message().queue_url(&url).message_body(body);
    if let Some(trace) = trace {
        send = send.message_system_attributes(
            MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(trace)
                .build()
                .unwrap(),
        );
    }
    send.send().await.unwrap();
    let out = sqs
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .max_number_of_messages(1)
        .send()
        .await
        .unwrap();
    let message = &out.messages()[0];
    let attributes: serde_json::Map<String, Value> = message
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.as_str())))
                .collect()
        })
        .unwrap_or_default();
    serde_json::from_value(json!({"Records": [{
        "messageId": message.message_id().unwrap(),
        "receiptHandle": message.receipt_handle().unwrap(),
        "body": message.body().unwrap(),
        "attributes": attributes,
        "eventSource": "aws:sqs",
    }]}))
    .unwrap()
}

fn signed_headers(request: &RecordedRequest) -> Vec<String> {
    let authorization = request.header("authorization").unwrap();
    let list = authorization
        .split(", ")
        .find_map(|p| p.strip_prefix("SignedHeaders="))
        .unwrap();
    list.split(';').map(str::to_owned).collect()
}

#[tokio::test]
async fn the_api_caller_continues_the_messages_trace_in_a_signed_traceparent() {
    let sdk = sdk().await;
    let api = protected_api(false).await;
    let config = caller_config(&api, &accounts(&sdk).await, &[]);
    let (state, _) = caller(&config, &sdk, &sdk);
    let events = queued(1);
    let event = through_sqs(&sdk, &events[0].body, Some(TRACE)).await;
    let answer = handle_lambda_batch(&state, None, event).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");

    let recorded = api.standin.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].header("traceparent"), Some(TRACEPARENT));
    assert!(
        signed_headers(&recorded[0]).contains(&"traceparent".to_owned()),
        "{:?}",
        signed_headers(&recorded[0])
    );
}

#[tokio::test]
async fn a_malformed_or_hostile_trace_header_is_dropped_and_the_event_still_delivered() {
    let sdk = sdk().await;
    let api = protected_api(false).await;
    let config = caller_config(&api, &accounts(&sdk).await, &[]);
    let (state, _) = caller(&config, &sdk, &sdk);
    for (i, hostile) in [
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8-01-evil",
        "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
        "garbage",
    ]
    .into_iter()
    .enumerate()
    {
        let events = queued(i as u64 + 1);
        let event = through_sqs(&sdk, &events[i].body, Some(hostile)).await;
        let answer = handle_lambda_batch(&state, None, event).await;
        assert!(
            answer.batch_item_failures.is_empty(),
            "{hostile}: {answer:?}"
        );
    }
    // An attribute of the wrong type in Lambda's event does not fail the batch either.
    let events = queued(1);
    let event: LambdaSqsEvent = serde_json::from_value(json!({"Records": [{
        "messageId": "m-odd", "body": events[0].body,
        "attributes": {"AWSTraceHeader": 7, "ApproximateReceiveCount": ["x"]}}]}))
    .unwrap();
    assert!(
        handle_lambda_batch(&state, None, event)
            .await
            .batch_item_failures
            .is_empty()
    );
    let recorded = api.standin.recorded();
    assert_eq!(recorded.len(), 4);
    assert!(recorded.iter().all(|r| r.header("traceparent").is_none()));
}

/// A rule on the default bus sending every `hsbridge` event to a new queue; the queue's URL.
async fn observe_alerts(sdk: &SdkConfig) -> String {
    let name = unique("alerts");
    let url = create_queue(sdk, &name).await;
    let arn = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let events = aws_sdk_eventbridge::Client::new(sdk);
    events
        .put_rule()
        .name(&name)
        .event_pattern(json!({"source": ["hsbridge"]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    url
}

/// The alerts the rule delivered, for `stack` only (other tests' alerts share the bus).
async fn alerts_of(sdk: &SdkConfig, url: &str, stack: &str) -> Vec<Value> {
    hsbridge_integration_tests::aws::drain_queue(sdk, url)
        .await
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|e| e["detail"]["stack"] == stack)
        .collect()
}

/// An api-caller whose protected API fails every call, raising alerts for `stack` with
/// `maxReceiveCount` `max_receive_count` (the stand-in lives as long as what is returned first).
async fn failing_caller_with_alerts(
    sdk: &SdkConfig,
    stack: &str,
    max_receive_count: u32,
) -> (RunningStandin, ConsumerState, DeadLetterWatch) {
    let api = protected_api(true).await;
    let max = max_receive_count.to_string();
    let config = caller_config(
        &api,
        &accounts(sdk).await,
        &[
            ("HSBRIDGE_ALERTS", "eventbridge"),
            ("HSBRIDGE_STACK_NAME", stack),
            ("HSBRIDGE_MAX_RECEIVE_COUNT", &max),
        ],
    );
    let (state, watch) = caller(&config, sdk, sdk);
    (api, state, watch.unwrap())
}

#[tokio::test]
async fn a_message_failing_its_last_receive_raises_one_dead_letter_alert_and_is_still_failed_back()
{
    let sdk = sdk().await;
    let alerts = observe_alerts(&sdk).await;
    let stack = unique("stack");
    let (_api, state, watch) = failing_caller_with_alerts(&sdk, &stack, 1).await;
    let events = queued(1);
    let event = through_sqs(&sdk, &events[0].body, Some(TRACE)).await;
    let message_id = event.records[0].message.message_id.clone();
    let answer = handle_lambda_batch(&state, Some(&watch), event).await;
    assert_eq!(answer.batch_item_failures.len(), 1, "failed back to SQS");

    let raised = alerts_of(&sdk, &alerts, &stack).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let alert = &raised[0];
    assert_eq!(alert["source"], "hsbridge");
    assert_eq!(alert["detail-type"], "Event Dead-Lettered");
    assert_eq!(
        alert["detail"],
        json!({
            "schema": "hsbridge.alert.v1", "stack": stack, "atMs": alert["detail"]["atMs"],
            "messageId": message_id, "portalId": HUB, "dedupeKey": events[0].dedupe_key,
            "subscriptionType": "contact.creation", "receiveCount": 1,
            "failure": "protected_api", "traceId": "5759e988bd862e3fe1be46a994272793",
        })
    );
    // No body, no property value in it.
    assert!(!alert.to_string().contains("objectId"));
}

#[tokio::test]
async fn a_failure_before_the_last_receive_raises_nothing() {
    let sdk = sdk().await;
    let alerts = observe_alerts(&sdk).await;
    let stack = unique("stack");
    let (_api, state, watch) = failing_caller_with_alerts(&sdk, &stack, 5).await;
    let events = queued(1);
    let event = through_sqs(&sdk, &events[0].body, None).await;
    let answer = handle_lambda_batch(&state, Some(&watch), event).await;
    assert_eq!(answer.batch_item_failures.len(), 1);
    assert!(alerts_of(&sdk, &alerts, &stack).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_eventbridge_never_holds_up_or_fails_a_delivery() {
    let sdk = sdk().await;
    // EventBridge on a port nothing listens on; everything else on moto.
    let dead = hsbridge_integration_tests::aws::sdk().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let no_events = dead
        .to_builder()
        .endpoint_url(format!("http://{closed}"))
        .build();
    let api = protected_api(true).await;
    let config = caller_config(
        &api,
        &accounts(&sdk).await,
        &[
            ("HSBRIDGE_ALERTS", "eventbridge"),
            ("HSBRIDGE_MAX_RECEIVE_COUNT", "1"),
            ("HSBRIDGE_ALERT_TIMEOUT_MS", "300"),
        ],
    );
    let (state, watch) = caller(&config, &sdk, &no_events);
    let watch = watch.unwrap();
    let events = queued(1);
    let event = through_sqs(&sdk, &events[0].body, None).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        handle_lambda_batch(&state, Some(&watch), event),
    )
    .await
    .expect("the batch is answered although EventBridge is unreachable");
    assert_eq!(answer.batch_item_failures.len(), 1, "still failed back");
}

#[tokio::test]
async fn the_circuit_opens_and_closes_once_per_change_on_dynamodb() {
    let sdk = sdk().await;
    let table = unique("trace-rate");
    create_table(&sdk, &table, "pk").await;
    let settings = LimitSettings {
        breaker_threshold: 2,
        breaker_cooldown_ms: 1_000,
        ..LimitSettings::default()
    };
    let gate = DynamoLimits::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &table,
        settings,
        Arc::new(SystemClock),
    );
    let now = now_ms();
    assert!(!gate.failure(HUB, now).await.unwrap().opened);
    assert!(
        gate.failure(HUB, now).await.unwrap().opened,
        "the threshold"
    );
    assert!(
        !gate.failure(HUB, now + 10).await.unwrap().opened,
        "open already"
    );
    // After the cool-down it is half-open: the next failure opens it again.
    assert!(gate.failure(HUB, now + 5_000).await.unwrap().opened);
    assert!(gate.success(HUB).await.unwrap(), "closed by this success");
    assert!(!gate.success(HUB).await.unwrap(), "closed already");
}
