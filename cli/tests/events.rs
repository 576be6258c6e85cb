//! `hsbridge events show | list | replay` against moto, run as the operator runs them: the built
//! binary, with the AWS configuration from the environment (`./scripts/test` starts moto and sets
//! AWS_ENDPOINT_URL). The log's records are written by the functions' own adapters (the intake's
//! deduper, the api-caller's delivery log), the dead-letter queue holds the intake's envelopes.
//!
//! The interrupted replays go through a small proxy in front of moto that fails one SQS
//! operation, as a replay cut off by a network failure or a killed process would be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_config::SdkConfig;
use axum::body::Bytes;
use hsbridge_integration_tests::aws::{create_dedupe_table, now_ms, sdk_with, unique};
use hsbridge_integration_tests::cli::{keep_log, text};
use hsbridge_platform::aws::AwsTimeouts;
use hsbridge_platform::event_log::{
    DeliveryEntry, DeliveryLog, DynamoEventLog, IntakeEntry, Outcome,
};
use hsbridge_webhook_intake::dedupe::{Deduper, DynamoDeduper};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const PORTAL_A: u64 = 62515;
const PORTAL_B: u64 = 777;

async fn sdk() -> SdkConfig {
    // Room for moto under the other suites' load; long polls of a second.
    sdk_with(AwsTimeouts {
        connect: Duration::from_secs(3),
        attempt: Duration::from_secs(10),
        operation: Duration::from_secs(25),
        max_attempts: 3,
    })
    .await
}

/// Runs the binary (on a blocking thread, so a proxy in this runtime keeps serving), with
/// `endpoint` as its AWS endpoint when given.
async fn hsbridge(args: &[&str], endpoint: Option<&str>) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let endpoint = endpoint.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hsbridge"));
        command
            .args(&args)
            .env("RUST_LOG", "warn")
            .env_remove("HSBRIDGE_EVENT_LOG_TABLE")
            .env_remove("HSBRIDGE_EVENTS_QUEUE_URL")
            .env_remove("HSBRIDGE_EVENTS_DLQ_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(e) = endpoint {
            command.env("AWS_ENDPOINT_URL", e);
        }
        let output = command.output().unwrap();
        keep_log("events", &args, &output.stderr);
        output
    })
    .await
    .unwrap()
}

/// The dedupe table as the template declares it: `pk`, TTL, and the `by_portal` index.
async fn events_table(sdk: &SdkConfig) -> String {
    let name = unique("dedupe");
    create_dedupe_table(sdk, &name).await;
    name
}

async fn queue(sdk: &SdkConfig, name: &str) -> String {
    aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(unique(name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

/// One event: its key, portal, type, reception time.
#[derive(Debug, Clone)]
struct Event {
    key: String,
    portal: u64,
    kind: &'static str,
    received: u64,
}

fn event(portal: u64, id: u64, kind: &'static str, received: u64) -> Event {
    Event {
        key: format!("{portal}#9#{id}#1700000000000"),
        portal,
        kind,
        received,
    }
}

fn entry(e: &Event) -> IntakeEntry {
    IntakeEntry {
        key: e.key.clone(),
        portal_id: e.portal,
        subscription_type: e.kind.to_owned(),
        received_at_ms: e.received,
        queued_at_ms: None,
        log_until_ms: e.received + 7 * 86_400_000,
    }
}

/// What the intake writes for queued events: the claim, then the completion.
async fn queued(sdk: &SdkConfig, table: &str, events: &[Event]) {
    let deduper = DynamoDeduper::new(aws_sdk_dynamodb::Client::new(sdk), table);
    let entries: Vec<IntakeEntry> = events.iter().map(entry).collect();
    for chunk in entries.chunks(50) {
        deduper
            .claim(chunk, "req-1", now_ms(), 10_000)
            .await
            .unwrap();
        let done: Vec<IntakeEntry> = chunk
            .iter()
            .map(|e| IntakeEntry {
                queued_at_ms: Some(e.received_at_ms + 15),
                ..e.clone()
            })
            .collect();
        deduper
            .complete(&done, "req-1", now_ms(), 72 * 3_600_000)
            .await
            .unwrap();
    }
}

/// What the api-caller writes after an attempt.
async fn attempted(sdk: &SdkConfig, table: &str, e: &Event, outcome: Outcome, status: u16, n: u32) {
    let log = DynamoEventLog::new(aws_sdk_dynamodb::Client::new(sdk), table);
    let failed = outcome == Outcome::Failed;
    log.record(&[DeliveryEntry {
        key: e.key.clone(),
        portal_id: e.portal,
        subscription_type: e.kind.to_owned(),
        received_at_ms: e.received,
        outcome,
        at_ms: e.received + 900,
        attempts: n,
        api_status: Some(status),
        error_class: failed.then(|| "protected_api".to_owned()),
        drop_reason: None,
        log_until_ms: e.received + 7 * 86_400_000,
    }])
    .await
    .unwrap();
}

/// The intake's envelope, as it reaches the dead-letter queue (with a recognisable body).
fn envelope(e: &Event) -> String {
    serde_json::json!({
        "schema": "hsbridge.webhook-event.v1",
        "dedupeKey": e.key,
        "portalId": e.portal,
        "subscriptionType": e.kind,
        "receivedAtMs": e.received,
        "signatureVersion": "v3",
        "event": {"objectId": 1, "propertyValue": format!("secret-pii-{}", e.key)},
    })
    .to_string()
}

async fn dead_letter(sdk: &SdkConfig, dlq: &str, events: &[Event]) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for e in events {
        sqs.send_message()
            .queue_url(dlq)
            .message_body(envelope(e))
            .send()
            .await
            .unwrap();
    }
}

/// Every message of a queue (received and deleted), by dedupe key.
async fn drain(sdk: &SdkConfig, url: &str) -> BTreeMap<String, usize> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = BTreeMap::new();
    let mut empty = 0;
    while empty < 2 {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for m in messages {
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            *out.entry(body["dedupeKey"].as_str().unwrap().to_owned())
                .or_default() += 1;
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_an_events_whole_path_and_list_pages_newest_first_by_portal() {
    let sdk = sdk().await;
    let table = events_table(&sdk).await;
    let base = now_ms() - 60_000;
    let events: Vec<Event> = (0..5)
        .map(|i| event(PORTAL_A, i, "contact.creation", base + i * 1_000))
        .chain([event(PORTAL_B, 100, "deal.creation", base + 500)])
        .collect();
    queued(&sdk, &table, &events).await;
    attempted(&sdk, &table, &events[1], Outcome::Delivered, 200, 2).await;
    attempted(&sdk, &table, &events[3], Outcome::Failed, 503, 3).await;

    let out = hsbridge(
        &["events", "show", &events[1].key, "--events-table", &table],
        None,
    )
    .await;
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("read: BatchGetItem"), "{shown}");
    assert!(shown.contains("received "), "{shown}");
    assert!(shown.contains("queued "), "{shown}");
    assert!(
        shown.contains("attempt 2, protected API answered 200"),
        "{shown}"
    );
    assert!(shown.contains("status: delivered"), "{shown}");

    let out = hsbridge(
        &["events", "show", &events[3].key, "--events-table", &table],
        None,
    )
    .await;
    let shown = text(&out);
    assert!(
        shown.contains("attempt 3: protected_api, protected API answered 503"),
        "{shown}"
    );

    let out = hsbridge(
        &["events", "show", "1#2#3#4", "--events-table", &table],
        None,
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has no record of 1#2#3#4"),
        "{}",
        text(&out)
    );

    // Portal A, two a page, newest first.
    let list = |before: Option<String>| {
        let table = table.clone();
        async move {
            let portal = PORTAL_A.to_string();
            let mut args = vec![
                "events",
                "list",
                "--portal",
                &portal,
                "--limit",
                "2",
                "--events-table",
                &table,
            ];
            let before = before.unwrap_or_default();
            if !before.is_empty() {
                args.extend(["--before", &before]);
            }
            let out = hsbridge(&args, None).await;
            assert!(out.status.success(), "{}", text(&out));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let mut seen = Vec::new();
    let mut before = None;
    for _ in 0..5 {
        let page = list(before.clone()).await;
        assert!(page.starts_with("read: Query"), "{page}");
        seen.extend(
            page.lines()
                .filter_map(|l| l.split_whitespace().last())
                .filter(|k| k.starts_with(&format!("{PORTAL_A}#")))
                .map(str::to_owned),
        );
        before = page
            .lines()
            .find_map(|l| l.strip_prefix("next page: --before '"))
            .map(|c| c.trim_end_matches('\'').to_owned());
        if before.is_none() {
            break;
        }
    }
    let expected: Vec<String> = events[..5].iter().rev().map(|e| e.key.clone()).collect();
    assert_eq!(seen, expected, "newest first, each once");

    // Filters: failed ones only; and every portal at once (a Scan, said so).
    let out = hsbridge(
        &[
            "events",
            "list",
            "--status",
            "failed",
            "--events-table",
            &table,
        ],
        None,
    )
    .await;
    let page = text(&out);
    assert!(page.contains("Scan"), "{page}");
    assert!(page.contains(&events[3].key), "{page}");
    assert_eq!(page.matches("failed").count(), 1, "{page}");
    let out = hsbridge(
        &[
            "events",
            "list",
            "--type",
            "deal.creation",
            "--events-table",
            &table,
        ],
        None,
    )
    .await;
    let page = text(&out);
    assert!(
        page.contains(&events[5].key) && !page.contains(&events[0].key),
        "{page}"
    );

    // Nothing names an event body (there is none to name).
    assert!(!page.contains("secret-pii"));
    let out = hsbridge(
        &[
            "events",
            "list",
            "--since",
            "yesterday",
            "--events-table",
            &table,
        ],
        None,
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("--since"), "{}", text(&out));
}

/// The dead-letter queue of a replay test: portal A's contact events (one of them delivered
/// per the log), a deal event of A, and portal B's.
struct ReplayStand {
    sdk: SdkConfig,
    table: String,
    queue: String,
    dlq: String,
    a_contacts: Vec<Event>,
    others: Vec<Event>,
}

impl ReplayStand {
    async fn new(contacts: u64) -> Self {
        let sdk = sdk().await;
        let table = events_table(&sdk).await;
        let queue = queue(&sdk, "events").await;
        let dlq = queue_dlq(&sdk).await;
        let base = now_ms() - 3_600_000;
        let a_contacts: Vec<Event> = (0..contacts)
            .map(|i| event(PORTAL_A, i, "contact.creation", base + i))
            .collect();
        let others = vec![
            event(PORTAL_A, 500, "deal.creation", base),
            event(PORTAL_B, 600, "contact.creation", base),
        ];
        let all: Vec<Event> = a_contacts.iter().chain(&others).cloned().collect();
        queued(&sdk, &table, &all).await;
        dead_letter(&sdk, &dlq, &all).await;
        Self {
            sdk,
            table,
            queue,
            dlq,
            a_contacts,
            others,
        }
    }

    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "events",
            "replay",
            "--portal",
            "62515",
            "--type",
            "contact.creation",
            "--events-table",
            &self.table,
            "--queue-url",
            &self.queue,
            "--dlq-url",
            &self.dlq,
        ];
        args.extend_from_slice(extra);
        args
    }
}

async fn queue_dlq(sdk: &SdkConfig) -> String {
    queue(sdk, "events-dlq").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_prints_its_plan_moves_only_with_yes_and_skips_what_the_log_shows_delivered() {
    let stand = ReplayStand::new(4).await;
    attempted(
        &stand.sdk,
        &stand.table,
        &stand.a_contacts[0],
        Outcome::Delivered,
        200,
        1,
    )
    .await;

    let out = hsbridge(&stand.args(&[]), None).await;
    let plan = text(&out);
    assert!(out.status.success(), "{plan}");
    assert!(
        plan.contains("read: 6 message(s) from the dead-letter queue"),
        "{plan}"
    );
    assert!(plan.contains("plan: 4 of 6 message(s) selected"), "{plan}");
    assert!(
        plan.contains("portal 62515  contact.creation: 3 to send, 1 already delivered"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("skipped {}", stand.a_contacts[0].key)),
        "{plan}"
    );
    assert!(
        plan.contains("nothing moved: run again with --yes"),
        "{plan}"
    );
    assert!(
        !plan.contains("secret-pii"),
        "no body without --with-body: {plan}"
    );
    // Everything read is visible again at once, untouched; nothing reached the events queue.
    assert_eq!(drain(&stand.sdk, &stand.queue).await.len(), 0);
    let out = hsbridge(&stand.args(&["--with-body"]), None).await;
    assert!(text(&out).contains("secret-pii"), "{}", text(&out));

    let out = hsbridge(&stand.args(&["--yes"]), None).await;
    let moved = text(&out);
    assert!(out.status.success(), "{moved}");
    assert!(moved.contains("moved: 3 message(s) sent"), "{moved}");
    let sent = drain(&stand.sdk, &stand.queue).await;
    let expected: BTreeMap<String, usize> = stand.a_contacts[1..]
        .iter()
        .map(|e| (e.key.clone(), 1))
        .collect();
    assert_eq!(
        sent, expected,
        "the selected, undelivered events, once each, keys kept"
    );
    // The rest is still in the dead-letter queue: the delivered one and the unselected ones.
    let left: BTreeSet<String> = drain(&stand.sdk, &stand.dlq).await.into_keys().collect();
    let mut expected_left: BTreeSet<String> = stand.others.iter().map(|e| e.key.clone()).collect();
    expected_left.insert(stand.a_contacts[0].key.clone());
    assert_eq!(left, expected_left);
}

/// A proxy in front of moto failing every request of one SQS operation after the first `pass`.
struct FailingProxy {
    url: String,
    failed: Arc<AtomicUsize>,
}

async fn failing_proxy(operation: &'static str, pass: usize) -> FailingProxy {
    let upstream = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let failed_count = Arc::clone(&failed);
    let handler = move |request: axum::extract::Request| {
        let (upstream, client, seen, failed) = (
            upstream.clone(),
            client.clone(),
            Arc::clone(&seen),
            Arc::clone(&failed_count),
        );
        async move {
            let (parts, body) = request.into_parts();
            let body: Bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap();
            let target = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if target == format!("AmazonSQS.{operation}")
                && seen.fetch_add(1, Ordering::SeqCst) >= pass
            {
                failed.fetch_add(1, Ordering::SeqCst);
                return axum::response::Response::builder()
                    .status(500)
                    .header("content-type", "application/x-amz-json-1.0")
                    .body(axum::body::Body::from(
                        r#"{"__type":"InternalError","message":"injected"}"#,
                    ))
                    .unwrap();
            }
            let mut forward = client.request(
                parts.method.clone(),
                format!("{}{}", upstream.trim_end_matches('/'), parts.uri),
            );
            for (name, value) in &parts.headers {
                if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
                    forward = forward.header(name, value);
                }
            }
            let answer = forward.body(body).send().await.unwrap();
            let mut response = axum::response::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
                    response = response.header(name, value);
                }
            }
            response
                .body(axum::body::Body::from(answer.bytes().await.unwrap()))
                .unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, app).await });
    FailingProxy { url, failed }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_interrupted_after_sending_loses_nothing_and_its_rerun_sends_nothing_twice() {
    let stand = ReplayStand::new(15).await;
    // The sends go through; every delete from the dead-letter queue fails: the process is cut
    // off with fifteen messages in both queues.
    let proxy = failing_proxy("DeleteMessageBatch", 0).await;
    let out = hsbridge(&stand.args(&["--yes"]), Some(&proxy.url)).await;
    let first = text(&out);
    assert!(!out.status.success(), "{first}");
    assert!(first.contains("replay interrupted"), "{first}");
    assert!(proxy.failed.load(Ordering::SeqCst) > 0);

    let out = hsbridge(&stand.args(&["--yes"]), None).await;
    let second = text(&out);
    assert!(out.status.success(), "{second}");
    assert!(
        second.contains("10 sent by an earlier replay (deleted, not sent again)"),
        "{second}"
    );
    assert!(second.contains("moved: 5 message(s) sent"), "{second}");
    let sent = drain(&stand.sdk, &stand.queue).await;
    assert_eq!(sent.len(), 15, "{sent:?}");
    assert!(
        sent.values().all(|n| *n == 1),
        "nothing sent twice: {sent:?}"
    );
    let left: BTreeSet<String> = drain(&stand.sdk, &stand.dlq).await.into_keys().collect();
    let others: BTreeSet<String> = stand.others.iter().map(|e| e.key.clone()).collect();
    assert_eq!(left, others, "the unselected stay, the moved are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_interrupted_between_batches_leaves_the_rest_in_the_dead_letter_queue() {
    let stand = ReplayStand::new(15).await;
    // The first batch of ten is sent; the second send fails.
    let proxy = failing_proxy("SendMessageBatch", 1).await;
    let out = hsbridge(&stand.args(&["--yes"]), Some(&proxy.url)).await;
    let first = text(&out);
    assert!(!out.status.success(), "{first}");
    assert!(first.contains("replay interrupted"), "{first}");
    assert!(first.contains("10 message(s) were moved"), "{first}");
    // The unsent are visible again at once: a plan right away sees them.
    let out = hsbridge(&stand.args(&[]), None).await;
    let plan = text(&out);
    assert!(plan.contains("plan: 5 of 7 message(s) selected"), "{plan}");

    let out = hsbridge(&stand.args(&["--yes"]), None).await;
    assert!(out.status.success(), "{}", text(&out));
    let sent = drain(&stand.sdk, &stand.queue).await;
    let expected: BTreeMap<String, usize> = stand
        .a_contacts
        .iter()
        .map(|e| (e.key.clone(), 1))
        .collect();
    assert_eq!(sent, expected, "each selected event once");
}
