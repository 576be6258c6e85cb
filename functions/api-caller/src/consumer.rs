//! The SQS side: each queued HubSpot event is delivered to the protected API, signed.
//!
//! Per message: read the intake's envelope (`hsbridge.webhook-event.v1`) → drop it, with a
//! metric, when the account is disconnected or unknown → enrich it with the configured CRM
//! properties when asked and the account is active (an account needing a reinstall has no
//! usable token: its events are delivered unenriched, with its state) → `POST` it (`hsbridge.protected-event.v1`, below) to the protected API's events path.
//! Only messages that failed are reported back (`ReportBatchItemFailures`): they return to the
//! queue after the visibility timeout and reach the dead-letter queue after the queue's
//! `maxReceiveCount`. An open circuit for an account fails that account's messages the same
//! way, so none is lost while HubSpot is down.
//!
//! Each message's `AWSTraceHeader` (the intake's X-Ray trace) is continued: the call to the
//! protected API carries it as a W3C `traceparent`, signed with the rest of the request. A
//! header that does not parse exactly is dropped, never forwarded and never a failure.
//!
//! When a message fails on the receive the queue's `maxReceiveCount` allows last
//! (`HSBRIDGE_MAX_RECEIVE_COUNT`, from Lambda's `ApproximateReceiveCount`), an
//! `Event Dead-Lettered` alert is raised ([`hsbridge_platform::alerts`]): the message itself is
//! failed back as always, and SQS moves it to the dead-letter queue untouched.
//!
//! The message the protected API receives (`content-type: application/json`), with
//! `x-hsbridge-portal-id` and `x-hsbridge-dedupe-key` headers (the key is stable across
//! redeliveries, so the API can drop a repeat):
//!
//! ```json
//! {
//!   "schema": "hsbridge.protected-event.v1",
//!   "dedupeKey": "62515#123#contact.propertyChange#1700000000000",
//!   "portalId": 62515,
//!   "subscriptionType": "contact.propertyChange",
//!   "receivedAtMs": 1700000000123,
//!   "signatureVersion": "v3",
//!   "accountStatus": "active",
//!   "event": { "...": "the event exactly as HubSpot sent it" },
//!   "enrichment": { "objectType": "contacts", "objectId": "123", "properties": { "email": "..." } }
//! }
//! ```
//! `accountStatus` is `active` or `needs_reinstall` (the refresh token died while the app is
//! still installed: `enrichment` is then `null` until the account is installed again).
//! `enrichment` is `null` when not configured, not applicable (deletions, non-CRM events), the
//! account needs a reinstall, or the object no longer exists.

use crate::hubspot::{CallStats, HubSpotApi, HubSpotError};
use crate::protected::{Outgoing, ProtectedApi};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use hsbridge_platform::Clock;
use hsbridge_platform::accounts::{AccountDirectory, AccountStatus};
use hsbridge_platform::alerts::{Alert, Alerts};
use hsbridge_platform::metrics::{MetricSet, Metrics};
use hsbridge_platform::trace::{TRACEPARENT, XrayTrace};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;

pub const INPUT_SCHEMA: &str = "hsbridge.webhook-event.v1";
pub const OUTPUT_SCHEMA: &str = "hsbridge.protected-event.v1";
/// Messages of one batch handled at once.
const CONCURRENCY: usize = 4;

/// The SQS event Lambda delivers (only the fields used).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsMessage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    pub message_id: String,
    #[serde(default)]
    pub body: String,
}

/// The SQS event as Lambda delivers it to the function, each record with its system
/// attributes (`AWSTraceHeader`, `ApproximateReceiveCount`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct LambdaSqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<LambdaSqsRecord>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LambdaSqsRecord {
    #[serde(flatten)]
    pub message: SqsMessage,
    /// Read leniently: an attribute of an unexpected type is as good as absent.
    #[serde(default)]
    pub attributes: serde_json::Value,
}

impl LambdaSqsRecord {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(name)
            .and_then(serde_json::Value::as_str)
    }
}

/// A message with what the consumer reads besides its body.
#[derive(Debug, Clone)]
struct Received {
    message: SqsMessage,
    trace: Option<XrayTrace>,
    receive_count: Option<u32>,
}

impl From<SqsMessage> for Received {
    fn from(message: SqsMessage) -> Self {
        Self {
            message,
            trace: None,
            receive_count: None,
        }
    }
}

impl From<LambdaSqsRecord> for Received {
    fn from(record: LambdaSqsRecord) -> Self {
        let trace = record
            .attribute("AWSTraceHeader")
            .and_then(XrayTrace::parse);
        let receive_count = record
            .attribute("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok());
        Self {
            message: record.message,
            trace,
            receive_count,
        }
    }
}

/// Raises `Event Dead-Lettered` for a message that failed its last receive.
#[derive(Debug, Clone)]
pub struct DeadLetterWatch {
    pub alerts: Arc<dyn Alerts>,
    /// The events queue's `maxReceiveCount`.
    pub max_receive_count: u32,
}

/// The partial-batch answer: only these messages return to the queue.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

/// Enrichment: which properties to fetch, and the client to fetch them with.
#[derive(Debug, Clone)]
pub struct Enrichment {
    pub properties: Vec<String>,
    pub hubspot: HubSpotApi,
}

/// Everything the consumer needs; built once per cold start.
#[derive(Debug, Clone)]
pub struct ConsumerState {
    pub accounts: Arc<dyn AccountDirectory>,
    pub api: ProtectedApi,
    /// Canonically encoded path below the protected API's base URL.
    pub events_path: String,
    pub enrichment: Option<Enrichment>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    schema: &'a str,
    dedupe_key: String,
    portal_id: u64,
    subscription_type: String,
    received_at_ms: u64,
    signature_version: String,
    #[serde(borrow)]
    event: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Delivery<'a> {
    schema: &'static str,
    dedupe_key: &'a str,
    portal_id: u64,
    subscription_type: &'a str,
    received_at_ms: u64,
    signature_version: &'a str,
    account_status: &'static str,
    event: &'a RawValue,
    enrichment: Option<Enriched>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Enriched {
    object_type: String,
    object_id: String,
    properties: serde_json::Value,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The account is disconnected or unknown: nothing to deliver.
    Dropped,
    /// Back to the queue.
    Failed(FailureKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Malformed,
    Accounts,
    CircuitOpen,
    HubSpot,
    ProtectedApi,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Malformed => "malformed",
            FailureKind::Accounts => "accounts",
            FailureKind::CircuitOpen => "circuit_open",
            FailureKind::HubSpot => "hubspot",
            FailureKind::ProtectedApi => "protected_api",
        }
    }
}

/// Just the account of a message, read before the batch is handled.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortalOf {
    portal_id: u64,
}

/// The statuses of every account in the batch, in one read (not one per message); `None` when
/// the accounts table could not be read.
async fn batch_statuses(
    state: &ConsumerState,
    records: &[Received],
) -> Option<HashMap<u64, AccountStatus>> {
    let portals: Vec<u64> = records
        .iter()
        .filter_map(|r| serde_json::from_str::<PortalOf>(&r.message.body).ok())
        .map(|p| p.portal_id)
        .collect::<std::collections::HashSet<u64>>()
        .into_iter()
        .collect();
    match state.accounts.statuses(&portals).await {
        Ok(found) => Some(found),
        Err(e) => {
            tracing::warn!(portals = portals.len(), error = %e, "account status unavailable");
            None
        }
    }
}

/// Handles one batch; the answer lists the messages to retry.
pub async fn handle_batch(state: &ConsumerState, event: SqsEvent) -> BatchResponse {
    let records = event.records.into_iter().map(Received::from).collect();
    handle_received(state, None, records).await
}

/// Handles one batch as Lambda delivers it: each message's trace is continued, and with a
/// `watch` a message failing its last receive raises `Event Dead-Lettered`.
pub async fn handle_lambda_batch(
    state: &ConsumerState,
    watch: Option<&DeadLetterWatch>,
    event: LambdaSqsEvent,
) -> BatchResponse {
    let records = event.records.into_iter().map(Received::from).collect();
    handle_received(state, watch, records).await
}

async fn handle_received(
    state: &ConsumerState,
    watch: Option<&DeadLetterWatch>,
    records: Vec<Received>,
) -> BatchResponse {
    let mut metrics = state.metrics.set();
    let statuses = batch_statuses(state, &records).await;
    let statuses = statuses.as_ref();
    let outcomes: Vec<(Received, Outcome, CallStats)> = stream::iter(records)
        .map(|received| async move {
            let mut stats = CallStats::default();
            let span = tracing::info_span!(
                "event",
                message_id = %received.message.message_id,
                trace_id = received.trace.as_ref().map_or("", |t| t.trace_id()),
            );
            let outcome = handle_message(
                state,
                &received.message,
                received.trace.as_ref(),
                statuses,
                &mut stats,
            )
            .instrument(span)
            .await;
            (received, outcome, stats)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut response = BatchResponse::default();
    let mut dead_letters = Vec::new();
    for (received, outcome, stats) in outcomes {
        record(&mut metrics, outcome, stats);
        if let Outcome::Failed(kind) = outcome {
            if let Some(watch) = watch
                && received
                    .receive_count
                    .is_some_and(|n| n >= watch.max_receive_count)
            {
                metrics.count("EventsDeadLettered", 1);
                dead_letters.push(dead_lettered(&received, kind));
            }
            response.batch_item_failures.push(BatchItemFailure {
                item_identifier: received.message.message_id,
            });
        }
    }
    state.metrics.flush(metrics, state.clock.now_ms());
    if let Some(watch) = watch {
        // Bounded by the adapter's own timeout, and after every message was handled.
        futures_util::future::join_all(dead_letters.into_iter().map(|a| watch.alerts.raise(a)))
            .await;
    }
    response
}

/// What a dead-letter alert says of a message: its identifiers as far as they can be read.
fn dead_lettered(received: &Received, kind: FailureKind) -> Alert {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct Identity {
        dedupe_key: Option<String>,
        portal_id: Option<u64>,
        subscription_type: Option<String>,
    }
    let id: Identity = serde_json::from_str(&received.message.body).unwrap_or_default();
    tracing::warn!(
        portal = id.portal_id,
        receive_count = received.receive_count,
        failure = kind.as_str(),
        "the event failed its last delivery and goes to the dead-letter queue"
    );
    Alert::DeadLettered {
        message_id: received.message.message_id.clone(),
        portal_id: id.portal_id,
        dedupe_key: id.dedupe_key,
        subscription_type: id.subscription_type,
        receive_count: received.receive_count.unwrap_or_default(),
        failure: kind.as_str(),
        trace_id: received.trace.as_ref().map(|t| t.trace_id().to_owned()),
    }
}

fn record(metrics: &mut MetricSet, outcome: Outcome, stats: CallStats) {
    metrics.count("HubSpotCalls", stats.requests as usize);
    metrics.count("HubSpot429", stats.throttled as usize);
    metrics.count("RefreshFailures", stats.refresh_failures as usize);
    match outcome {
        Outcome::Delivered => metrics.count("EventsDelivered", 1),
        Outcome::Dropped => metrics.count("EventsDropped", 1),
        Outcome::Failed(FailureKind::CircuitOpen) => {
            metrics.count("EventsFailed", 1);
            metrics.count("CircuitOpen", 1);
        }
        Outcome::Failed(_) => metrics.count("EventsFailed", 1),
    }
}

/// Handles one message, with the statuses of the batch's accounts (`None`: unreadable).
pub async fn handle_message(
    state: &ConsumerState,
    message: &SqsMessage,
    trace: Option<&XrayTrace>,
    statuses: Option<&HashMap<u64, AccountStatus>>,
    stats: &mut CallStats,
) -> Outcome {
    let envelope: Envelope<'_> = match serde_json::from_str::<Envelope<'_>>(&message.body) {
        Ok(e) if e.schema == INPUT_SCHEMA => e,
        Ok(_) | Err(_) => {
            tracing::error!("message is not an {INPUT_SCHEMA} envelope");
            return Outcome::Failed(FailureKind::Malformed);
        }
    };
    let portal = envelope.portal_id;
    let status = match statuses.map(|found| found.get(&portal)) {
        Some(Some(status @ (AccountStatus::Active | AccountStatus::NeedsReinstall))) => *status,
        Some(other) => {
            let reason = other.map_or("unknown", |s| s.as_str());
            tracing::info!(portal, reason, "account not installed; event dropped");
            return Outcome::Dropped;
        }
        None => {
            tracing::warn!(
                portal,
                "account status unavailable; event returns to the queue"
            );
            return Outcome::Failed(FailureKind::Accounts);
        }
    };
    let enrichment = match &state.enrichment {
        // Its tokens are dead: a HubSpot call could only fail. Delivered as it is.
        Some(_) if status == AccountStatus::NeedsReinstall => {
            tracing::info!(
                portal,
                "account needs a reinstall; event delivered unenriched"
            );
            None
        }
        Some(enrichment) => match enrich(enrichment, &envelope, stats).await {
            Ok(found) => found,
            Err(HubSpotError::CircuitOpen { until_ms, .. }) => {
                tracing::info!(portal, until_ms, "circuit open; event returns to the queue");
                return Outcome::Failed(FailureKind::CircuitOpen);
            }
            // Active without tokens: an account of a static-auth app registered with
            // `hsbridge accounts add` (webhooks, no OAuth install). Nothing to enrich with.
            Err(HubSpotError::Token {
                source: hsbridge_vault::VaultError::Disconnected { .. },
                ..
            }) => {
                tracing::info!(
                    portal,
                    "account has no OAuth tokens; delivered without enrichment"
                );
                None
            }
            Err(e) => {
                tracing::warn!(portal, error = %e, "enrichment failed; event returns to the queue");
                return Outcome::Failed(FailureKind::HubSpot);
            }
        },
        None => None,
    };
    let delivery = Delivery {
        schema: OUTPUT_SCHEMA,
        dedupe_key: &envelope.dedupe_key,
        portal_id: portal,
        subscription_type: &envelope.subscription_type,
        received_at_ms: envelope.received_at_ms,
        signature_version: &envelope.signature_version,
        account_status: status.as_str(),
        event: envelope.event,
        enrichment,
    };
    let Ok(body) = serde_json::to_vec(&delivery) else {
        return Outcome::Failed(FailureKind::Malformed);
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        HeaderName::from_static(crate::relay::PORTAL_HEADER),
        HeaderValue::from(portal),
    );
    if let Ok(key) = HeaderValue::from_str(&envelope.dedupe_key) {
        headers.insert(HeaderName::from_static("x-hsbridge-dedupe-key"), key);
    }
    // Built here from validated hex digits only; signed with the other headers.
    if let Some(value) = trace
        .and_then(XrayTrace::traceparent)
        .and_then(|t| HeaderValue::from_str(&t).ok())
    {
        headers.insert(HeaderName::from_static(TRACEPARENT), value);
    }
    match state
        .api
        .send(Outgoing {
            method: Method::POST,
            path: state.events_path.clone(),
            query: None,
            headers,
            body: Bytes::from(body),
        })
        .await
    {
        Ok(answer) if answer.status.is_success() => Outcome::Delivered,
        Ok(answer) => {
            tracing::warn!(
                portal,
                status = answer.status.as_u16(),
                "protected API refused the event"
            );
            Outcome::Failed(FailureKind::ProtectedApi)
        }
        Err(e) => {
            tracing::warn!(portal, error = %e, "protected API call failed");
            Outcome::Failed(FailureKind::ProtectedApi)
        }
    }
}

/// The CRM object an event is about, as `(object type for the v3 objects API, object id)`.
pub fn crm_object_of(
    subscription_type: &str,
    event: &serde_json::Value,
) -> Option<(String, String)> {
    let (kind, action) = subscription_type.split_once('.')?;
    if action.contains("deletion") || action.contains("privacyDeletion") || action == "merge" {
        return None;
    }
    let object_type = match kind {
        "contact" => "contacts".to_owned(),
        "company" => "companies".to_owned(),
        "deal" => "deals".to_owned(),
        "ticket" => "tickets".to_owned(),
        "product" => "products".to_owned(),
        "line_item" => "line_items".to_owned(),
        "object" => event.get("objectTypeId")?.as_str()?.to_owned(),
        _ => return None,
    };
    let object_id = match event.get("objectId")? {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) if !s.is_empty() => s.clone(),
        _ => return None,
    };
    Some((object_type, object_id))
}

async fn enrich(
    enrichment: &Enrichment,
    envelope: &Envelope<'_>,
    stats: &mut CallStats,
) -> Result<Option<Enriched>, HubSpotError> {
    let Ok(event) = serde_json::from_str::<serde_json::Value>(envelope.event.get()) else {
        return Ok(None);
    };
    let Some((object_type, object_id)) = crm_object_of(&envelope.subscription_type, &event) else {
        return Ok(None);
    };
    let found = enrichment
        .hubspot
        .crm_object(
            envelope.portal_id,
            &object_type,
            &object_id,
            &enrichment.properties,
            stats,
        )
        .await?;
    Ok(found.map(|object| Enriched {
        object_type,
        object_id,
        properties: object
            .get("properties")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crm_events_name_their_object_and_deletions_do_not() {
        let e = json!({"objectId": 123, "objectTypeId": "2-999"});
        assert_eq!(
            crm_object_of("contact.propertyChange", &e),
            Some(("contacts".into(), "123".into()))
        );
        assert_eq!(
            crm_object_of("object.creation", &e),
            Some(("2-999".into(), "123".into()))
        );
        assert_eq!(crm_object_of("contact.deletion", &e), None);
        assert_eq!(crm_object_of("conversation.creation", &e), None);
        assert_eq!(crm_object_of("nodot", &e), None);
        assert_eq!(crm_object_of("deal.creation", &json!({})), None);
    }

    #[test]
    fn failed_refreshes_are_reported_as_the_refresh_failures_metric() {
        let metrics = Metrics::capturing("hsbridge", "api-caller");
        let mut set = metrics.set();
        let stats = CallStats {
            refresh_failures: 1,
            ..CallStats::default()
        };
        record(&mut set, Outcome::Failed(FailureKind::HubSpot), stats);
        metrics.flush(set, 1);
        let emitted = metrics.captured().join("\n");
        assert!(emitted.contains("\"RefreshFailures\":1"), "{emitted}");
    }

    #[test]
    fn an_sqs_event_reads_with_unknown_fields_and_the_answer_has_lambdas_shape() {
        let event: SqsEvent = serde_json::from_value(json!({"Records": [
            {"messageId": "m1", "receiptHandle": "h", "body": "{}", "attributes": {}, "eventSource": "aws:sqs"}
        ]}))
        .unwrap();
        assert_eq!(event.records[0].message_id, "m1");
        let answer = BatchResponse {
            batch_item_failures: vec![BatchItemFailure {
                item_identifier: "m1".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(answer).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
        );
    }
}
