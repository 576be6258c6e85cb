//! The api-caller's queue side against moto (DynamoDB, KMS, Secrets Manager, SQS), a scripted
//! HubSpot on loopback, and the SigV4-verifying stand-in as the protected API. The function is
//! built by its own wiring from configuration, as in Lambda.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use hsbridge_api_caller::consumer::{ConsumerState, SqsEvent, SqsMessage, handle_batch};
use hsbridge_api_caller::{CallerConfig, wiring};
use hsbridge_integration_tests::aws::{
    Role, as_role, create_app_secret, create_kms_key, create_table, now_ms, sdk, unique,
};
use hsbridge_integration_tests::hubspot::{Answer, Endpoint, HubSpot, crm_object_for};
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_standin::{Credential, RunningStandin, Standin, StandinConfig};
use hsbridge_vault::{
    DynamoAccountStore, KmsKeyWrapper, ReqwestHubSpotOAuth, TokenGrant, Vault, VaultSettings,
};
use hsbridge_verify::{Secret, SecretSet};
use hsbridge_webhook_intake::events::parse_batch;
use hsbridge_webhook_intake::queue::envelope;
use http::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const SECRET: &str = "caller-test-client-secret";
const HUB: u64 = 62515;
const INACTIVE_HUB: u64 = 777;
const FIRST_ACCESS: &str = "access-at-install";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crm {
    Ok,
    /// The first CRM call gets a TEN_SECONDLY_ROLLING 429, the rest succeed.
    ThrottleOnce,
    Fail,
    /// The install-time token is refused (revoked at HubSpot); refreshed ones work.
    RejectFirstToken,
    /// Every answer says, in HubSpot's rate-limit headers, 3 requests per second.
    LowerLimitHeaders,
    /// The first answer says nothing remains of a 1 s interval; the rest say plenty.
    NothingRemainsOnce,
}

impl Crm {
    /// Makes `hubspot`'s CRM reads answer as this mode says.
    fn apply(self, hubspot: &HubSpot) {
        hubspot.answer_normally(Endpoint::Crm);
        let limits = |answer: Answer, max: &str, remaining: &str| {
            answer
                .with_header("x-hubspot-ratelimit-max", max)
                .with_header("x-hubspot-ratelimit-remaining", remaining)
                .with_header("x-hubspot-ratelimit-interval-milliseconds", "1000")
        };
        match self {
            Crm::Ok => {}
            Crm::ThrottleOnce => {
                hubspot.answer_next(
                    Endpoint::Crm,
                    Answer::json(
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}),
                    ),
                );
            }
            Crm::Fail => {
                hubspot.always(
                    Endpoint::Crm,
                    Answer::text(StatusCode::BAD_GATEWAY, "upstream"),
                );
            }
            Crm::RejectFirstToken => {
                hubspot.answer_with(Endpoint::Crm, |call| {
                    (call.bearer.as_deref() == Some(FIRST_ACCESS)).then(|| {
                        Answer::json(
                            StatusCode::UNAUTHORIZED,
                            json!({"status": "error", "category": "EXPIRED_AUTHENTICATION"}),
                        )
                    })
                });
            }
            Crm::LowerLimitHeaders => {
                hubspot.answer_with(Endpoint::Crm, move |call| {
                    Some(limits(crm_object_for(call), "3", "2"))
                });
            }
            Crm::NothingRemainsOnce => {
                hubspot.answer_with(Endpoint::Crm, move |call| {
                    let remaining = if call.n == 1 { "0" } else { "99" };
                    Some(limits(crm_object_for(call), "100", remaining))
                });
            }
        }
    }
}

struct Stand {
    sdk: SdkConfig,
    accounts: String,
    rate: String,
    key_id: String,
    secret_id: String,
    hubspot: HubSpot,
    api: RunningStandin,
}

impl Stand {
    async fn new(crm_mode: Crm, responder: Option<hsbridge_standin::Responder>) -> Self {
        let sdk = sdk().await;
        let accounts = unique("accounts");
        let rate = unique("rate");
        let secret_id = unique("hubspot-app");
        create_table(&sdk, &accounts, "hub_id").await;
        create_table(&sdk, &rate, "pk").await;
        create_app_secret(&sdk, &secret_id, SECRET).await;
        let key_id = create_kms_key(&sdk).await;
        let hubspot = HubSpot::start().await;
        crm_mode.apply(&hubspot);
        // The caller signs with its role's credentials.
        let mut standin = Standin::new(StandinConfig::new(
            "us-east-1",
            vec![Credential {
                access_key_id: Role::ApiCaller.logical_id().to_owned(),
                secret_access_key: "testing".to_owned(),
                session_token: None,
                principal_arn: "arn:aws:sts::000000000000:assumed-role/api-caller/fn".into(),
            }],
        ));
        if let Some(r) = responder {
            standin = standin.with_responder(r);
        }
        let api = standin.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let stand = Self {
            sdk,
            accounts,
            rate,
            key_id,
            secret_id,
            hubspot,
            api,
        };
        stand.install(HUB).await;
        aws_sdk_dynamodb::Client::new(&stand.sdk)
            .put_item()
            .table_name(&stand.accounts)
            .item("hub_id", AttributeValue::S(INACTIVE_HUB.to_string()))
            .item("status", AttributeValue::S("disconnected".into()))
            .send()
            .await
            .unwrap();
        stand
    }

    async fn install(&self, hub: u64) {
        // The install is the OAuth callback's part.
        let callback = as_role(&self.sdk, Role::OAuthCallback);
        let vault = Vault::new(
            Arc::new(DynamoAccountStore::new(
                aws_sdk_dynamodb::Client::new(&callback),
                &self.accounts,
            )),
            Arc::new(KmsKeyWrapper::new(
                aws_sdk_kms::Client::new(&callback),
                &self.key_id,
            )),
            Arc::new(
                ReqwestHubSpotOAuth::new(self.hubspot.base(), Duration::from_secs(5)).unwrap(),
            ),
            Arc::new(StaticSecretSource(HubSpotApp {
                client_id: "test-client-id".into(),
                secrets: SecretSet::new(Secret::new(SECRET)).unwrap(),
            })),
            Arc::new(SystemClock),
            VaultSettings::default(),
        );
        let grant = TokenGrant {
            access_token: Secret::new(FIRST_ACCESS),
            refresh_token: Some(Secret::new("refresh-at-install")),
            expires_in: 1800,
            token_type: "bearer".into(),
            hub_id: Some(hub),
            scopes: None,
        };
        vault
            .install(hub, &grant, &["oauth".to_owned()])
            .await
            .unwrap();
    }

    /// The function as Lambda would build it, from its environment.
    fn consumer(&self, enrich: bool, extra: &[(&str, &str)]) -> ConsumerState {
        let mut vars: HashMap<String, String> = [
            (
                "HSBRIDGE_PROTECTED_API_URL",
                format!("{}/prod", self.api.base_url),
            ),
            ("HSBRIDGE_PROTECTED_API_REGION", "us-east-1".into()),
            ("HSBRIDGE_ACCOUNTS_TABLE", self.accounts.clone()),
            ("HSBRIDGE_RATE_TABLE", self.rate.clone()),
            ("HSBRIDGE_KMS_KEY_ID", self.key_id.clone()),
            ("HSBRIDGE_HUBSPOT_SECRET_ID", self.secret_id.clone()),
            ("HSBRIDGE_OAUTH_SCOPES", "oauth".into()),
            (
                "HSBRIDGE_OAUTH_REDIRECT_URL",
                "https://bridge.example.com/oauth/callback".into(),
            ),
            ("HSBRIDGE_HUBSPOT_API_BASE", self.hubspot.base().to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if enrich {
            vars.insert(
                "HSBRIDGE_ENRICH_PROPERTIES".into(),
                "email,firstname".into(),
            );
        }
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = CallerConfig::from_env(&vars).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        wiring::consumer_state(
            &config,
            &as_role(&self.sdk, Role::ApiCaller),
            clock,
            Metrics::capturing("hsbridge", "api-caller"),
        )
        .unwrap()
    }

    /// When each CRM read arrived at HubSpot, in milliseconds since the epoch.
    fn crm_times(&self) -> Vec<u64> {
        self.hubspot
            .calls_to(Endpoint::Crm)
            .iter()
            .map(|c| c.at_ms)
            .collect()
    }

    async fn gate(&self, hub: u64) -> Option<HashMap<String, AttributeValue>> {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .get_item()
            .table_name(&self.rate)
            .key("pk", AttributeValue::S(format!("gate#{hub}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }
}

/// Queue messages exactly as the intake writes them.
fn intake_messages(events: &[(u64, u64, &str)]) -> Vec<String> {
    let batch: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, (portal, object, kind))| {
            json!({
                "eventId": 100 + i, "subscriptionId": 9, "portalId": portal, "appId": 1,
                "occurredAt": 1_700_000_000_000u64 + i as u64, "subscriptionType": kind,
                "attemptNumber": 0, "objectId": object, "changeSource": "CRM",
                "propertyName": "email", "propertyValue": "new@example.com",
            })
        })
        .collect();
    let body = serde_json::to_vec(&batch).unwrap();
    parse_batch(&body, 100)
        .unwrap()
        .iter()
        .map(|e| envelope(e, now_ms(), "v3").body)
        .collect()
}

fn sqs_event(bodies: &[String]) -> SqsEvent {
    SqsEvent {
        records: bodies
            .iter()
            .enumerate()
            .map(|(i, body)| SqsMessage {
                attributes: Default::default(),
                message_id: format!("m{i}"),
                body: body.clone(),
            })
            .collect(),
    }
}

fn failed_ids(response: &hsbridge_api_caller::consumer::BatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn events_are_delivered_signed_with_the_documented_schema_and_enrichment() {
    let stand = Stand::new(Crm::Ok, None).await;
    let consumer = stand.consumer(true, &[]);
    let bodies = intake_messages(&[
        (HUB, 501, "contact.propertyChange"),
        (HUB, 0, "contact.deletion"),
    ]);
    let response = handle_batch(&consumer, sqs_event(&bodies)).await;
    assert!(response.batch_item_failures.is_empty());
    let seen = stand.api.standin.recorded();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/prod/hubspot/events");
        assert_eq!(request.header("x-hsbridge-portal-id"), Some("62515"));
        assert!(request.header("x-hsbridge-dedupe-key").is_some());
    }
    let mut delivered: Vec<serde_json::Value> = seen
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    delivered.sort_by_key(|d| d["subscriptionType"].as_str().unwrap().to_owned());
    assert_eq!(delivered[0]["schema"], "hsbridge.protected-event.v1");
    assert_eq!(delivered[0]["subscriptionType"], "contact.deletion");
    assert!(
        delivered[0]["enrichment"].is_null(),
        "a deleted object is not fetched"
    );
    assert_eq!(delivered[1]["event"]["objectId"], 501);
    assert_eq!(delivered[1]["enrichment"]["objectType"], "contacts");
    assert_eq!(
        delivered[1]["enrichment"]["properties"]["email"],
        "contacts-501@example.com"
    );
    assert_eq!(stand.hubspot.count(Endpoint::Crm), 1);
}

#[tokio::test]
async fn events_of_an_account_needing_a_reinstall_are_delivered_unenriched_with_its_state() {
    const REINSTALL_HUB: u64 = 62_999;
    let stand = Stand::new(Crm::Ok, None).await;
    aws_sdk_dynamodb::Client::new(&stand.sdk)
        .put_item()
        .table_name(&stand.accounts)
        .item("hub_id", AttributeValue::S(REINSTALL_HUB.to_string()))
        .item("status", AttributeValue::S("needs_reinstall".into()))
        .send()
        .await
        .unwrap();
    let consumer = stand.consumer(true, &[]);
    let bodies = intake_messages(&[
        (REINSTALL_HUB, 501, "contact.propertyChange"),
        (HUB, 502, "contact.propertyChange"),
        (INACTIVE_HUB, 503, "contact.propertyChange"),
        (404_404, 504, "contact.propertyChange"),
    ]);
    let response = handle_batch(&consumer, sqs_event(&bodies)).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let delivered: HashMap<u64, serde_json::Value> = stand
        .api
        .standin
        .recorded()
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
        .map(|d| (d["portalId"].as_u64().unwrap(), d))
        .collect();
    assert_eq!(delivered.len(), 2, "disconnected and unknown are dropped");
    let reinstall = &delivered[&REINSTALL_HUB];
    assert_eq!(reinstall["accountStatus"], "needs_reinstall");
    assert!(reinstall["enrichment"].is_null());
    assert_eq!(reinstall["event"]["objectId"], 501);
    assert_eq!(delivered[&HUB]["accountStatus"], "active");
    assert!(delivered[&HUB]["enrichment"].is_object());
    // Only the active account's object was fetched: no call on a dead token.
    assert_eq!(stand.hubspot.count(Endpoint::Crm), 1);
}

#[tokio::test]
async fn a_batch_with_one_failing_message_reports_only_that_one_and_it_ends_in_the_dlq() {
    // The protected API refuses one event (objectId 666).
    let stand = Stand::new(
        Crm::Ok,
        Some(Arc::new(|r: &hsbridge_standin::RecordedRequest| {
            String::from_utf8_lossy(&r.body)
                .contains("\"objectId\":666")
                .then(|| (500, b"{\"message\":\"boom\"}".to_vec()))
        })),
    )
    .await;
    let consumer = stand.consumer(false, &[]);
    let bodies = intake_messages(&[
        (HUB, 1, "contact.creation"),
        (HUB, 666, "contact.creation"),
        (INACTIVE_HUB, 2, "contact.creation"),
        (HUB, 3, "deal.creation"),
    ]);
    let response = handle_batch(&consumer, sqs_event(&bodies)).await;
    assert_eq!(failed_ids(&response), ["m1"]);
    // Delivered: two of the active account's events; the inactive account's was dropped.
    let delivered = stand.api.standin.recorded();
    assert_eq!(delivered.len(), 3, "two delivered plus the refused attempt");
    assert!(
        delivered
            .iter()
            .all(|r| r.header("x-hsbridge-portal-id") == Some("62515"))
    );

    // Through real queues: the failed message comes back until maxReceiveCount, then the DLQ.
    let sqs = aws_sdk_sqs::Client::new(&stand.sdk);
    let dlq =
        hsbridge_integration_tests::aws::create_queue(&stand.sdk, &unique("events-dlq")).await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let queue = sqs
        .create_queue()
        .queue_name(unique("events"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for body in &bodies {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let mut handled_ok = 0;
    for _ in 0..12 {
        // What Lambda's event source mapping does: receive, invoke, delete what did not fail.
        let messages = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if !messages.is_empty() {
            let event = SqsEvent {
                records: messages
                    .iter()
                    .map(|m| SqsMessage {
                        attributes: Default::default(),
                        message_id: m.message_id.clone().unwrap(),
                        body: m.body.clone().unwrap(),
                    })
                    .collect(),
            };
            let response = handle_batch(&consumer, event).await;
            let failed = failed_ids(&response);
            for m in &messages {
                if !failed.contains(m.message_id.as_ref().unwrap()) {
                    handled_ok += 1;
                    sqs.delete_message()
                        .queue_url(&queue)
                        .receipt_handle(m.receipt_handle.clone().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let in_dlq = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages]
            .clone();
        if in_dlq == "1" {
            break;
        }
    }
    assert_eq!(handled_ok, 3);
    let dead = hsbridge_integration_tests::aws::drain_queue(&stand.sdk, &dlq).await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].contains("\"objectId\":666"));
    assert!(
        hsbridge_integration_tests::aws::drain_queue(&stand.sdk, &queue)
            .await
            .is_empty()
    );
}

// One instance: its grants are serialised per account, so moto's transactions (which are not
// atomic under concurrent requests, unlike DynamoDB's) cannot race here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_secondly_429_is_waited_out_and_the_budget_is_never_exceeded() {
    let stand = Stand::new(Crm::ThrottleOnce, None).await;
    // A budget of 4 per rolling second, so the test sees it bind.
    let consumer = stand.consumer(
        true,
        &[
            ("HSBRIDGE_HUBSPOT_RATE_LIMIT", "4"),
            ("HSBRIDGE_HUBSPOT_RATE_WINDOW_MS", "1000"),
        ],
    );
    let events: Vec<(u64, u64, &str)> = (0..10)
        .map(|i| (HUB, 900 + i, "contact.creation"))
        .collect();
    let started = now_ms();
    let response = handle_batch(&consumer, sqs_event(&intake_messages(&events))).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(stand.api.standin.recorded().len(), 10);
    let calls = stand.crm_times();
    assert_eq!(calls.len(), 11, "ten objects plus the throttled attempt");
    let mut sorted = calls.clone();
    sorted.sort_unstable();
    for (i, t) in sorted.iter().enumerate() {
        let in_window = sorted[i..].iter().take_while(|u| **u < t + 1000).count();
        assert!(
            in_window <= 4,
            "{in_window} calls in the second from {t}: {:?}",
            sorted.iter().map(|u| u - sorted[0]).collect::<Vec<_>>()
        );
    }
    // Calls already in flight with the throttled one aside (50 ms), every later call waited
    // out the window.
    let throttled_at = calls[0];
    assert!(
        calls[1..]
            .iter()
            .all(|t| *t <= throttled_at + 50 || *t >= throttled_at + 1000),
        "{calls:?}"
    );
    assert!(calls.iter().filter(|t| **t >= throttled_at + 1000).count() >= 6);
    assert!(now_ms() - started < 15_000);
}

/// The most calls in any rolling `window_ms` among `calls` at or after `from`.
fn busiest_window(calls: &[u64], from: u64, window_ms: u64) -> usize {
    let mut sorted: Vec<u64> = calls.iter().copied().filter(|t| *t >= from).collect();
    sorted.sort_unstable();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|u| **u < sorted[i] + window_ms)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_shrinks_to_the_limit_hubspots_headers_give_the_account() {
    let stand = Stand::new(Crm::LowerLimitHeaders, None).await;
    // Configured for 8 per second; HubSpot's headers say 3.
    let consumer = stand.consumer(
        true,
        &[
            ("HSBRIDGE_HUBSPOT_RATE_LIMIT", "8"),
            ("HSBRIDGE_HUBSPOT_RATE_WINDOW_MS", "1000"),
        ],
    );
    let events: Vec<(u64, u64, &str)> = (0..12)
        .map(|i| (HUB, 700 + i, "contact.creation"))
        .collect();
    let response = handle_batch(&consumer, sqs_event(&intake_messages(&events))).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let gate = stand.gate(HUB).await.unwrap();
    assert_eq!(gate["learned_limit"].as_n().unwrap(), "3", "{gate:?}");
    let calls = stand.crm_times();
    assert_eq!(calls.len(), 12);
    // The calls made before the first answer came back were granted under 8; every window
    // after that second holds at most the 3 HubSpot allows.
    let first = *calls.iter().min().unwrap();
    assert!(busiest_window(&calls, first + 1000, 1000) <= 3, "{calls:?}");
    // A second instance (a fresh consumer) reads the learned limit from the gate at once.
    let second = stand.consumer(
        true,
        &[
            ("HSBRIDGE_HUBSPOT_RATE_LIMIT", "8"),
            ("HSBRIDGE_HUBSPOT_RATE_WINDOW_MS", "1000"),
        ],
    );
    stand.hubspot.clear_calls();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let events: Vec<(u64, u64, &str)> =
        (0..6).map(|i| (HUB, 800 + i, "contact.creation")).collect();
    let response = handle_batch(&second, sqs_event(&intake_messages(&events))).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let calls = stand.crm_times();
    assert_eq!(busiest_window(&calls, 0, 1000), 3, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_saying_nothing_remains_holds_the_account_for_the_interval() {
    let stand = Stand::new(Crm::NothingRemainsOnce, None).await;
    let consumer = stand.consumer(true, &[]);
    let first = intake_messages(&[(HUB, 601, "contact.creation")]);
    let response = handle_batch(&consumer, sqs_event(&first)).await;
    assert!(response.batch_item_failures.is_empty());
    let gate = stand.gate(HUB).await.unwrap();
    let hold_until: u64 = gate["hold_until"].as_n().unwrap().parse().unwrap();
    let answered = stand.crm_times()[0];
    assert!(hold_until >= answered + 900, "{hold_until} {answered}");
    // The next call waits the interval out instead of drawing a 429.
    let next = intake_messages(&[(HUB, 602, "contact.creation")]);
    let response = handle_batch(&consumer, sqs_event(&next)).await;
    assert!(response.batch_item_failures.is_empty());
    let second_call = stand.crm_times()[1];
    assert!(second_call >= hold_until, "{second_call} < {hold_until}");
}

#[tokio::test]
async fn the_circuit_opens_after_five_failures_and_closes_after_a_success() {
    let stand = Stand::new(Crm::Fail, None).await;
    let consumer = stand.consumer(
        true,
        &[
            ("HSBRIDGE_BREAKER_THRESHOLD", "5"),
            ("HSBRIDGE_BREAKER_COOLDOWN_MS", "1500"),
        ],
    );
    // Five events, one batch each: each one's call fails after its retries.
    for i in 0..5 {
        let bodies = intake_messages(&[(HUB, 10 + i, "contact.creation")]);
        let response = handle_batch(&consumer, sqs_event(&bodies)).await;
        assert_eq!(
            failed_ids(&response),
            ["m0"],
            "event {i} returns to the queue"
        );
    }
    let calls_when_opened = stand.hubspot.count(Endpoint::Crm);
    assert_eq!(calls_when_opened, 15, "three attempts per call");
    let gate = stand.gate(HUB).await.unwrap();
    assert_eq!(gate["failures"].as_n().unwrap(), "5");
    assert!(gate.contains_key("open_until"));
    // Open: the account's events go back to the queue without calling HubSpot.
    Crm::Ok.apply(&stand.hubspot);
    let bodies = intake_messages(&[(HUB, 20, "contact.creation"), (HUB, 21, "deal.creation")]);
    let response = handle_batch(&consumer, sqs_event(&bodies)).await;
    assert_eq!(failed_ids(&response), ["m0", "m1"]);
    assert_eq!(stand.hubspot.count(Endpoint::Crm), calls_when_opened);
    assert!(
        stand.api.standin.recorded().is_empty(),
        "nothing delivered while open"
    );
    // After the cool-down a success closes it and resets the count.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let response = handle_batch(&consumer, sqs_event(&bodies)).await;
    assert!(response.batch_item_failures.is_empty());
    let gate = stand.gate(HUB).await.unwrap();
    assert_eq!(gate["failures"].as_n().unwrap(), "0");
    assert!(!gate.contains_key("open_until"));
    assert_eq!(stand.api.standin.recorded().len(), 2);
}

#[tokio::test]
async fn a_401_refreshes_once_through_the_vault_then_succeeds() {
    let stand = Stand::new(Crm::RejectFirstToken, None).await;
    let consumer = stand.consumer(true, &[]);
    let bodies = intake_messages(&[(HUB, 42, "contact.creation")]);
    let response = handle_batch(&consumer, sqs_event(&bodies)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stand.hubspot.count(Endpoint::Refresh), 1);
    let tokens: Vec<String> = stand
        .hubspot
        .calls_to(Endpoint::Crm)
        .into_iter()
        .filter_map(|c| c.bearer)
        .collect();
    assert_eq!(tokens, [FIRST_ACCESS, "access-refreshed-1"]);
    assert_eq!(stand.api.standin.recorded().len(), 1);
}

/// The accounts directory, counting how it is read.
#[derive(Debug)]
struct CountingAccounts {
    inner: Arc<dyn hsbridge_platform::accounts::AccountDirectory>,
    single: AtomicUsize,
    batched: AtomicUsize,
}

#[async_trait::async_trait]
impl hsbridge_platform::accounts::AccountDirectory for CountingAccounts {
    async fn status(
        &self,
        hub_id: u64,
    ) -> Result<
        Option<hsbridge_platform::accounts::AccountStatus>,
        hsbridge_platform::accounts::AccountsError,
    > {
        self.single.fetch_add(1, Ordering::SeqCst);
        self.inner.status(hub_id).await
    }
    async fn statuses(
        &self,
        hub_ids: &[u64],
    ) -> Result<
        HashMap<u64, hsbridge_platform::accounts::AccountStatus>,
        hsbridge_platform::accounts::AccountsError,
    > {
        self.batched.fetch_add(1, Ordering::SeqCst);
        self.inner.statuses(hub_ids).await
    }
}

#[tokio::test]
async fn a_batch_of_ten_reads_its_accounts_once_not_once_per_message() {
    let stand = Stand::new(Crm::Ok, None).await;
    let mut consumer = stand.consumer(false, &[]);
    let counting = Arc::new(CountingAccounts {
        inner: Arc::clone(&consumer.accounts),
        single: AtomicUsize::new(0),
        batched: AtomicUsize::new(0),
    });
    consumer.accounts = counting.clone();
    let events: Vec<(u64, u64, &str)> = (0..10)
        .map(|i| (HUB, 600 + i, "contact.propertyChange"))
        .collect();
    let response = handle_batch(&consumer, sqs_event(&intake_messages(&events))).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stand.api.standin.recorded().len(), 10);
    assert_eq!(counting.batched.load(Ordering::SeqCst), 1);
    assert_eq!(counting.single.load(Ordering::SeqCst), 0);
}
