//! Fresh AWS resources on moto for one test, the intake wired to them through the fault proxy,
//! and requests signed the way HubSpot signs them (by the support library, not by the verifier
//! under test).

use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_types::origin::Origin;
use axum::Router;
use axum::body::Body;
use hsbridge_integration_tests::aws::{
    Role, as_role, create_app_secret, create_dedupe_table, create_queue, create_table, scan, sdk,
    unique,
};
use hsbridge_integration_tests::proxy::FaultProxy;
use hsbridge_integration_tests::signed;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_webhook_intake::{IntakeConfig, app, wiring};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
pub const PORTAL: u64 = 62515;
pub const HOST: &str = "hooks.example.com";
pub const PATH: &str = "/webhooks/hubspot";

/// moto's endpoint, as `scripts/test` exports it.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run ./scripts/test, which starts moto and sets it")
}

/// The functions' own SDK configuration (bounded timeouts and retries), pointed at `endpoint`.
pub fn through(sdk: &SdkConfig, endpoint: &str) -> SdkConfig {
    let mut builder = sdk.to_builder().endpoint_url(endpoint);
    // Set in code, so it wins over `AWS_ENDPOINT_URL`, which each service client would
    // otherwise read again from the environment.
    builder.insert_origin("endpoint_url", Origin::shared_config());
    builder.build()
}

/// The intake's resources, and the intake reaching AWS through a fault proxy.
#[derive(Debug)]
pub struct IntakeStand {
    /// Straight to moto: for setting up and reading back.
    pub direct: SdkConfig,
    /// Through the proxy: what the intake uses.
    pub proxied: SdkConfig,
    pub proxy: FaultProxy,
    pub config: IntakeConfig,
}

impl IntakeStand {
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// With the dedupe table's `by_portal` index, for the tests that read the event log back.
    /// The others go without it, as before the index existed: they hold the intake to its
    /// production timeouts on moto, whose transactions copy the whole table (indexes included),
    /// and their margins were set on the plain table.
    pub async fn with_event_log_index() -> Self {
        Self::build(&[], true).await
    }

    /// With extra configuration variables (for example `HSBRIDGE_PUBLIC_BASE_URL`).
    pub async fn with_env(extra: &[(&str, &str)]) -> Self {
        Self::build(extra, false).await
    }

    async fn build(extra: &[(&str, &str)], event_log_index: bool) -> Self {
        let direct = sdk().await;
        let dedupe_table = unique("dedupe");
        let accounts_table = unique("accounts");
        let secret_id = unique("hubspot-app");
        if event_log_index {
            create_dedupe_table(&direct, &dedupe_table).await;
        } else {
            create_table(&direct, &dedupe_table, "pk").await;
        }
        create_table(&direct, &accounts_table, "hub_id").await;
        let queue_url = create_queue(&direct, &unique("events")).await;
        create_app_secret(&direct, &secret_id, SECRET).await;
        let mut vars = HashMap::from([
            ("HSBRIDGE_HUBSPOT_SECRET_ID".to_owned(), secret_id),
            ("HSBRIDGE_DEDUPE_TABLE".to_owned(), dedupe_table),
            ("HSBRIDGE_ACCOUNTS_TABLE".to_owned(), accounts_table.clone()),
            ("HSBRIDGE_EVENTS_QUEUE_URL".to_owned(), queue_url),
        ]);
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = IntakeConfig::from_env(&vars).unwrap();
        aws_sdk_dynamodb::Client::new(&direct)
            .put_item()
            .table_name(&accounts_table)
            .item("hub_id", AttributeValue::S(PORTAL.to_string()))
            .item("status", AttributeValue::S("active".to_owned()))
            .send()
            .await
            .unwrap();
        let proxy = FaultProxy::start(&moto_endpoint()).await;
        let proxied = through(&as_role(&direct, Role::WebhookIntake), proxy.url());
        Self {
            direct,
            proxied,
            proxy,
            config,
        }
    }

    /// A new intake instance (cold caches) reaching AWS through the proxy.
    pub fn app(&self) -> Router {
        self.app_with_clock(Arc::new(SystemClock))
    }

    pub fn app_with_clock(&self, clock: Arc<dyn Clock>) -> Router {
        app(wiring::aws_state(
            &self.config,
            &self.proxied,
            clock,
            Metrics::capturing("hsbridge", "webhook-intake"),
        ))
    }

    /// Every message on the real queue, read back straight from moto (and deleted).
    pub async fn queued(&self) -> Vec<Value> {
        drain(&self.direct, &self.config.queue_url, 100_000).await
    }

    /// The dedupe key of every queued message.
    pub async fn queued_keys(&self) -> Vec<String> {
        self.queued()
            .await
            .iter()
            .map(|m| m["dedupeKey"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn dedupe_records(&self) -> usize {
        scan(&self.direct, &self.config.dedupe_table).await.len()
    }
}

/// `sdk` with long timeouts, for reading back: moto's ReceiveMessage slows down with the
/// queue's length.
pub fn patient(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
        .build()
}

/// Receives (and deletes) everything on the queue: at most `limit` messages, and at most
/// two empty receives in a row.
pub async fn drain(sdk: &SdkConfig, url: &str, limit: usize) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&patient(sdk));
    let mut bodies = Vec::new();
    let mut empty = 0;
    for _ in 0..limit / 10 + 20 {
        let messages = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            empty += 1;
            if empty == 2 {
                break;
            }
            continue;
        }
        empty = 0;
        let mut delete = sqs.delete_message_batch().queue_url(url);
        for (i, m) in messages.iter().enumerate() {
            bodies.push(serde_json::from_str(m.body().unwrap()).unwrap());
            delete = delete.entries(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap(),
            );
        }
        delete.send().await.unwrap();
    }
    bodies
}

/// A batch of `events` for `portal`, as HubSpot sends it.
pub use hsbridge_integration_tests::signed::webhook_batch as batch;

/// The dedupe keys the intake gives the events of [`batch`].
pub fn keys(portal: u64, events: std::ops::Range<u64>, occurred_at: u64) -> Vec<String> {
    events
        .map(|id| format!("{portal}#12345#{id}#{occurred_at}"))
        .collect()
}

/// A v3 signature over `https://HOST` + `path` and `body` at `ts`.
pub fn v3(path: &str, body: &[u8], ts: u64) -> String {
    signed::v3(
        SECRET,
        "POST",
        &format!("https://{HOST}{path}"),
        body,
        &ts.to_string(),
    )
}

/// A request signed with v3 at `ts`, as HubSpot (and each of its retries) signs it.
pub fn signed(body: &str, ts: u64) -> Request<Body> {
    signed::webhook(SECRET, HOST, PATH, body, ts)
}

/// Sends a request to the Router; at most 30 s (the intake's own budget is 3 s by default).
pub async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = tokio::time::timeout(Duration::from_secs(30), app.clone().oneshot(request))
        .await
        .expect("the intake did not answer within 30 s")
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
