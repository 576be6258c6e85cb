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
//!
//! The outcome of each message (delivered with the protected API's status and the attempt
//! count, dropped and why, failed with the last status and error class) goes to the event log
//! (`hsbridge_platform::event_log`) in one write per batch, after the batch is handled. That
//! write never changes what the batch answers: a message delivered is never failed back because
//! its record could not be written (that would deliver it again), and a failed one still
//! returns to the queue. A record not written leaves the event's path at "queued" in the log;
//! the `EventLogUnwritten` metric counts them. The write is bounded in time
//! ([`LOG_WRITE_TIMEOUT`]) well inside the function's timeout, so it cannot make Lambda retry
//! the whole batch.

use crate::hubspot::{CallStats, HubSpotApi, HubSpotError};
use crate::protected::{Outgoing, ProtectedApi};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use hsbridge_platform::Clock;
use hsbridge_platform::accounts::{AccountDirectory, AccountStatus};
use hsbridge_platform::alerts::{Alert, Alerts};
use hsbridge_platform::event_log::{self, DeliveryEntry, DeliveryLog};
use hsbridge_platform::metrics::{MetricSet, Metrics};
use hsbridge_platform::trace::{TRACEPARENT, XrayTrace};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub const INPUT_SCHEMA: &str = "hsbridge.webhook-event.v1";
pub const OUTPUT_SCHEMA: &str = "hsbridge.protected-event.v1";
/// Messages of one batch handled at once.
const CONCURRENCY: usize = 4;
/// The most the event log's write may take (the function's timeout is 60 s).
pub const LOG_WRITE_TIMEOUT: Duration = Duration::from_secs(3);

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
    #[serde(default)]
    pub attributes: SqsAttributes,
}

/// The message's system attributes (only the one used).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SqsAttributes {
    /// How many times SQS has handed the message out, this time included.
    #[serde(rename = "ApproximateReceiveCount", default)]
    pub approximate_receive_count: Option<String>,
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
        let receive_count = message
            .attributes
            .approximate_receive_count
            .as_deref()
            .and_then(|n| n.parse().ok());
        Self {
            message,
            trace: None,
            receive_count,
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

/// Where each message's outcome is recorded, and for how long.
#[derive(Debug, Clone)]
pub struct EventLogging {
    pub log: Arc<dyn DeliveryLog>,
    pub retention: Duration,
}

/// Everything the consumer needs; built once per cold start.
#[derive(Debug, Clone)]
pub struct ConsumerState {
    /// `None`: outcomes are not recorded.
    pub event_log: Option<EventLogging>,
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
    /// The protected API answered with something other than 2xx.
    ProtectedApi,
    /// It could not be reached (or did not answer in time).
    ProtectedApiUnreachable,
}

impl FailureKind {
    /// The error class the event log records.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Malformed => "malformed",
            FailureKind::Accounts => "account_status_unavailable",
            FailureKind::CircuitOpen => "circuit_open",
            FailureKind::HubSpot => "hubspot",
            FailureKind::ProtectedApi => "protected_api",
            FailureKind::ProtectedApiUnreachable => "protected_api_unreachable",
        }
    }
}

/// The identity of the event a message carries, as the log keys it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId {
    pub key: String,
    pub portal_id: u64,
    pub subscription_type: String,
    pub received_at_ms: u64,
}

/// One attempt at a message: its outcome and what the log records of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// `None` when the message is not an envelope (nothing to key a record by).
    pub event: Option<EventId>,
    /// The protected API's answer, when it answered.
    pub api_status: Option<u16>,
    /// Why a dropped event was dropped.
    pub drop_reason: Option<&'static str>,
}

impl Attempt {
    fn of(event: &EventId, outcome: Outcome) -> Self {
        Self {
            outcome,
            event: Some(event.clone()),
            api_status: None,
            drop_reason: None,
        }
    }

    /// The log's record of this attempt.
    fn entry(&self, at_ms: u64, attempts: u32, retention: Duration) -> Option<DeliveryEntry> {
        let event = self.event.as_ref()?;
        let (outcome, error_class) = match self.outcome {
            Outcome::Delivered => (event_log::Outcome::Delivered, None),
            Outcome::Dropped => (event_log::Outcome::Dropped, None),
            Outcome::Failed(kind) => (event_log::Outcome::Failed, Some(kind.as_str().to_owned())),
        };
        Some(DeliveryEntry {
            key: event.key.clone(),
            portal_id: event.portal_id,
            subscription_type: event.subscription_type.clone(),
            received_at_ms: event.received_at_ms,
            outcome,
            at_ms,
            attempts,
            api_status: self.api_status,
            error_class,
            drop_reason: self.drop_reason.map(str::to_owned),
            log_until_ms: at_ms.saturating_add(event_log::retention_ms(retention)),
        })
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
    let attempts: Vec<(Received, Attempt, CallStats)> = stream::iter(records)
        .map(|received| async move {
            let mut stats = CallStats::default();
            let span = tracing::info_span!(
                "event",
                message_id = %received.message.message_id,
                trace_id = received.trace.as_ref().map_or("", |t| t.trace_id()),
            );
            let attempt = handle_message(
                state,
                &received.message,
                received.trace.as_ref(),
                statuses,
                &mut stats,
            )
            .instrument(span)
            .await;
            (received, attempt, stats)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut response = BatchResponse::default();
    let now_ms = state.clock.now_ms();
    let mut entries = Vec::new();
    let mut dead_letters = Vec::new();
    for (received, attempt, stats) in attempts {
        record(&mut metrics, attempt.outcome, stats);
        if let Some(logging) = &state.event_log {
            let receives = received.receive_count.unwrap_or(1);
            entries.extend(attempt.entry(now_ms, receives, logging.retention));
        }
        if let Outcome::Failed(kind) = attempt.outcome {
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
    if let Some(logging) = &state.event_log {
        write_log(logging.log.as_ref(), &entries, &mut metrics).await;
    }
    state.metrics.flush(metrics, state.clock.now_ms());
    if let Some(watch) = watch {
        // Bounded by the adapter's own timeout, and after every message was handled.
        futures_util::future::join_all(dead_letters.into_iter().map(|a| watch.alerts.raise(a)))
            .await;
    }
    response
}

/// The batch's records in one write. Whatever becomes of it, the batch's answer stands.
async fn write_log(log: &dyn DeliveryLog, entries: &[DeliveryEntry], metrics: &mut MetricSet) {
    if entries.is_empty() {
        return;
    }
    let unwritten = match tokio::time::timeout(LOG_WRITE_TIMEOUT, log.record(entries)).await {
        Ok(Ok(0)) => 0,
        Ok(Ok(n)) => {
            tracing::warn!(unwritten = n, "event log records not written");
            n
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, records = entries.len(), "event log records not written");
            entries.len()
        }
        Err(_) => {
            tracing::warn!(
                records = entries.len(),
                "event log records not written in time"
            );
            entries.len()
        }
    };
    metrics.count("EventLogUnwritten", unwritten);
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
) -> Attempt {
    let envelope: Envelope<'_> = match serde_json::from_str::<Envelope<'_>>(&message.body) {
        Ok(e) if e.schema == INPUT_SCHEMA => e,
        Ok(_) | Err(_) => {
            tracing::error!("message is not an {INPUT_SCHEMA} envelope");
            return Attempt {
                outcome: Outcome::Failed(FailureKind::Malformed),
                event: None,
                api_status: None,
                drop_reason: None,
            };
        }
    };
    let event = EventId {
        key: envelope.dedupe_key.clone(),
        portal_id: envelope.portal_id,
        subscription_type: envelope.subscription_type.clone(),
        received_at_ms: envelope.received_at_ms,
    };
    let portal = envelope.portal_id;
    let status = match statuses.map(|found| found.get(&portal)) {
        Some(Some(status @ (AccountStatus::Active | AccountStatus::NeedsReinstall))) => *status,
        Some(other) => {
            let reason = other.map_or("unknown", |s| s.as_str());
            tracing::info!(portal, reason, "account not installed; event dropped");
            return Attempt {
                drop_reason: Some(reason),
                ..Attempt::of(&event, Outcome::Dropped)
            };
        }
        None => {
            tracing::warn!(
                portal,
                "account status unavailable; event returns to the queue"
            );
            return Attempt::of(&event, Outcome::Failed(FailureKind::Accounts));
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
                return Attempt::of(&event, Outcome::Failed(FailureKind::CircuitOpen));
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
                return Attempt::of(&event, Outcome::Failed(FailureKind::HubSpot));
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
        return Attempt::of(&event, Outcome::Failed(FailureKind::Malformed));
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
        Ok(answer) => {
            let outcome = if answer.status.is_success() {
                Outcome::Delivered
            } else {
                tracing::warn!(
                    portal,
                    status = answer.status.as_u16(),
                    "protected API refused the event"
                );
                Outcome::Failed(FailureKind::ProtectedApi)
            };
            Attempt {
                api_status: Some(answer.status.as_u16()),
                ..Attempt::of(&event, outcome)
            }
        }
        Err(e) => {
            tracing::warn!(portal, error = %e, "protected API call failed");
            Attempt::of(
                &event,
                Outcome::Failed(FailureKind::ProtectedApiUnreachable),
            )
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
