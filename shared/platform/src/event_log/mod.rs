//! The event log: where each webhook event went, by dedupe key, without its payload.
//!
//! Each event's path is two records, each written by the step that knows it and folded into a
//! write that step makes anyway:
//!
//! - **intake** (the webhook intake): the event's dedupe record, which the intake claims before
//!   queueing the event and completes once it is queued, carries the log's fields too (portal,
//!   subscription type, when it was received, when it was queued). No write is added: the claim
//!   and the completion were already there; the item stays under 1 KB, one write unit.
//! - **delivery** (the API caller): what became of the message, delivered (with the protected
//!   API's status and the attempt count), dropped (the account is not installed) or failed
//!   (the last status, the last error class). One `BatchWriteItem` per SQS batch (up to 10
//!   messages; DynamoDB takes 25 puts a call), not one write per message. Its key is
//!   `delivery#` and the dedupe key, so the API caller's role can be limited to those items
//!   (`dynamodb:LeadingKeys`) and can never touch a dedupe record.
//!
//! Both live in the dedupe table, so one index lists them together: `by_portal`, partition
//! `log_portal` (the hub id), sort `log_sort` (`{received_at_ms:013}#{dedupe key}`, the same in
//! both records of an event). Listing one portal's events newest first is a `Query` in that
//! order, paginated by `log_sort`; a whole page of events is read from as many items as it
//! needs, never the table. Listing every portal at once is a `Scan` (said so when it runs).
//!
//! Nothing else is stored: no event body, no property value, no token; identifiers (hub id,
//! subscription id, event id: the dedupe key), the subscription type, times and statuses.
//!
//! Retention is a setting (`HSBRIDGE_EVENT_LOG_RETENTION_DAYS`, 7 days by default). Each record
//! carries `log_until_ms`, which every read checks (DynamoDB deletes expired items lazily, and
//! moto never does), and a `ttl` past it. A dedupe record lives for the longer of the dedupe
//! horizon and the retention: its `expires_at_ms` still ends the dedupe window (the claim's
//! condition reads it), so keeping the item longer for the log changes nothing in dedupe.

mod dynamo;
mod memory;

pub use dynamo::{DynamoEventLog, intake_attributes, intake_of};
pub use memory::InMemoryEventLog;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The default retention: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// The bounds of `HSBRIDGE_EVENT_LOG_RETENTION_DAYS`.
pub const MIN_RETENTION_DAYS: u64 = 1;
pub const MAX_RETENTION_DAYS: u64 = 90;
/// The index that lists a portal's events newest first.
pub const INDEX: &str = "by_portal";
/// The prefix of a delivery record's key.
pub const DELIVERY_PREFIX: &str = "delivery#";

/// Attribute names, shared by the writers (intake, API caller) and the readers.
pub mod attr {
    pub const PK: &str = "pk";
    pub const PORTAL: &str = "log_portal";
    pub const SORT: &str = "log_sort";
    pub const SUBSCRIPTION_TYPE: &str = "subscription_type";
    pub const RECEIVED_AT: &str = "received_at_ms";
    pub const QUEUED_AT: &str = "queued_at_ms";
    pub const UNTIL: &str = "log_until_ms";
    pub const TTL: &str = "ttl";
    /// The dedupe record's own: `IN_PROGRESS` or `COMPLETED`.
    pub const DEDUPE_STATUS: &str = "status";
    pub const EVENT_KEY: &str = "event_key";
    pub const OUTCOME: &str = "outcome";
    pub const AT: &str = "at_ms";
    pub const ATTEMPTS: &str = "attempts";
    pub const API_STATUS: &str = "api_status";
    pub const ERROR_CLASS: &str = "error_class";
    pub const DROP_REASON: &str = "drop_reason";
}

/// `log_sort`: newest first is descending order, and the two records of an event sort together.
pub fn sort_key(received_at_ms: u64, key: &str) -> String {
    format!("{received_at_ms:013}#{key}")
}

/// The portal of a dedupe key (`portal#subscription#event#occurredAt`).
pub fn portal_of_key(key: &str) -> Option<u64> {
    key.split('#').next()?.parse().ok()
}

/// The retention as milliseconds.
pub fn retention_ms(retention: Duration) -> u64 {
    u64::try_from(retention.as_millis()).unwrap_or(u64::MAX)
}

/// DynamoDB's TTL is in seconds; a day past the logical end, which reads check themselves.
pub fn ttl_seconds(until_ms: u64) -> u64 {
    until_ms / 1000 + 86_400
}

/// The intake's part of an event's path: its dedupe record's log fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeEntry {
    pub key: String,
    pub portal_id: u64,
    pub subscription_type: String,
    pub received_at_ms: u64,
    /// When the event was on the queue; `None` while (or if only) claimed.
    pub queued_at_ms: Option<u64>,
    pub log_until_ms: u64,
}

/// What the API caller did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    /// The account is disconnected or unknown: nothing to deliver.
    Dropped,
    /// Back to the queue (and, after the queue's receive count, the dead-letter queue).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "DELIVERED",
            Outcome::Dropped => "DROPPED",
            Outcome::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "DELIVERED" => Some(Outcome::Delivered),
            "DROPPED" => Some(Outcome::Dropped),
            "FAILED" => Some(Outcome::Failed),
            _ => None,
        }
    }
}

/// The API caller's part: the latest attempt at the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryEntry {
    pub key: String,
    pub portal_id: u64,
    pub subscription_type: String,
    pub received_at_ms: u64,
    pub outcome: Outcome,
    pub at_ms: u64,
    /// SQS's receive count of the message at this attempt.
    pub attempts: u32,
    /// The protected API's answer, when it was called and answered.
    pub api_status: Option<u16>,
    /// Why it failed (`protected_api`, `protected_api_unreachable`, `hubspot`, `circuit_open`,
    /// `account_status_unavailable`).
    pub error_class: Option<String>,
    /// Why it was dropped (`disconnected`, `unknown`).
    pub drop_reason: Option<String>,
    pub log_until_ms: u64,
}

/// Where an event is, from both records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Claimed by the intake, not (yet) queued: a request in flight, or one that failed before
    /// the queue confirmed (HubSpot then retries it).
    Received,
    Queued,
    Delivered,
    Dropped,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Queued => "queued",
            Status::Delivered => "delivered",
            Status::Dropped => "dropped",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Received,
            Status::Queued,
            Status::Delivered,
            Status::Dropped,
            Status::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One event's whole path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPath {
    pub key: String,
    pub portal_id: u64,
    pub subscription_type: String,
    pub received_at_ms: u64,
    pub intake: Option<IntakeEntry>,
    pub delivery: Option<DeliveryEntry>,
}

impl EventPath {
    pub fn status(&self) -> Status {
        match (&self.delivery, &self.intake) {
            (Some(d), _) => match d.outcome {
                Outcome::Delivered => Status::Delivered,
                Outcome::Dropped => Status::Dropped,
                Outcome::Failed => Status::Failed,
            },
            (None, Some(i)) if i.queued_at_ms.is_some() => Status::Queued,
            (None, _) => Status::Received,
        }
    }

    pub fn sort_key(&self) -> String {
        sort_key(self.received_at_ms, &self.key)
    }

    fn from_parts(intake: Option<IntakeEntry>, delivery: Option<DeliveryEntry>) -> Option<Self> {
        let (key, portal_id, subscription_type, received_at_ms) = match (&intake, &delivery) {
            (Some(i), _) => (
                i.key.clone(),
                i.portal_id,
                i.subscription_type.clone(),
                i.received_at_ms,
            ),
            (None, Some(d)) => (
                d.key.clone(),
                d.portal_id,
                d.subscription_type.clone(),
                d.received_at_ms,
            ),
            (None, None) => return None,
        };
        Some(Self {
            key,
            portal_id,
            subscription_type,
            received_at_ms,
            intake,
            delivery,
        })
    }
}

/// What `list` selects. Times are inclusive bounds on the reception time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFilter {
    pub portal: Option<u64>,
    pub subscription_type: Option<String>,
    pub status: Option<Status>,
    pub from_ms: u64,
    pub to_ms: u64,
    /// Only events that sort before this `log_sort` (the previous page's `next`).
    pub before: Option<String>,
    pub limit: usize,
}

impl ListFilter {
    fn admits(&self, path: &EventPath) -> bool {
        self.portal.is_none_or(|p| p == path.portal_id)
            && self
                .subscription_type
                .as_deref()
                .is_none_or(|t| t == path.subscription_type)
            && self.status.is_none_or(|s| s == path.status())
            && (self.from_ms..=self.to_ms).contains(&path.received_at_ms)
            && self
                .before
                .as_deref()
                .is_none_or(|b| path.sort_key().as_str() < b)
    }

    /// The `log_sort` range the reads ask for.
    fn sort_range(&self) -> (String, String) {
        let low = format!("{:013}", self.from_ms);
        // `~` sorts after every character of a dedupe key.
        let high = format!("{:013}#~", self.to_ms);
        let high = match &self.before {
            Some(before) if before.as_str() < high.as_str() => before.clone(),
            _ => high,
        };
        (low, high)
    }
}

/// What a read did, for the operator: which operation, how many calls and items.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReport {
    pub operation: String,
    pub calls: usize,
    pub items: usize,
}

/// One page of `list`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub events: Vec<EventPath>,
    /// Give it as `before` for the next page; `None` on the last one.
    pub next: Option<String>,
    pub read: ReadReport,
}

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("the event log could not be reached: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the event log answered something unexpected: {0}")]
    Unexpected(String),
}

/// Port: the API caller's write, one call for a batch of messages.
#[async_trait]
pub trait DeliveryLog: Send + Sync + std::fmt::Debug {
    /// Answers how many entries could not be written.
    async fn record(&self, entries: &[DeliveryEntry]) -> Result<usize, EventLogError>;
}

/// Port: the operator's reads.
#[async_trait]
pub trait EventLogReader: Send + Sync + std::fmt::Debug {
    /// The path of one event; `None` when the log has nothing (live) about it.
    async fn show(
        &self,
        key: &str,
        now_ms: u64,
    ) -> Result<(Option<EventPath>, ReadReport), EventLogError>;
    async fn list(&self, filter: &ListFilter, now_ms: u64) -> Result<Page, EventLogError>;
}

/// A record of either kind, as read.
#[derive(Debug, Clone)]
enum Entry {
    Intake(IntakeEntry),
    Delivery(DeliveryEntry),
}

impl Entry {
    fn key(&self) -> &str {
        match self {
            Entry::Intake(i) => &i.key,
            Entry::Delivery(d) => &d.key,
        }
    }

    fn sort_key(&self) -> String {
        match self {
            Entry::Intake(i) => sort_key(i.received_at_ms, &i.key),
            Entry::Delivery(d) => sort_key(d.received_at_ms, &d.key),
        }
    }

    fn live(&self, now_ms: u64) -> bool {
        match self {
            Entry::Intake(i) => i.log_until_ms >= now_ms,
            Entry::Delivery(d) => d.log_until_ms >= now_ms,
        }
    }
}

/// Groups records, newest first, into paths; both records of an event share its sort key.
fn assemble(entries: impl IntoIterator<Item = Entry>) -> Vec<EventPath> {
    let mut by_sort: BTreeMap<String, (Option<IntakeEntry>, Option<DeliveryEntry>)> =
        BTreeMap::new();
    for entry in entries {
        let slot = by_sort.entry(entry.sort_key()).or_default();
        match entry {
            Entry::Intake(i) => slot.0 = Some(i),
            Entry::Delivery(d) => slot.1 = Some(d),
        }
    }
    by_sort
        .into_values()
        .rev()
        .filter_map(|(i, d)| EventPath::from_parts(i, d))
        .collect()
}

/// The page of `paths` (complete, newest first) that `filter` selects, and whether more of them
/// did.
fn page_of(paths: Vec<EventPath>, filter: &ListFilter) -> (Vec<EventPath>, bool) {
    let mut selected: Vec<EventPath> = paths.into_iter().filter(|p| filter.admits(p)).collect();
    let more = selected.len() > filter.limit;
    selected.truncate(filter.limit);
    (selected, more)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn intake(key: &str, at: u64, queued: bool) -> Entry {
        Entry::Intake(IntakeEntry {
            key: key.into(),
            portal_id: 1,
            subscription_type: "contact.creation".into(),
            received_at_ms: at,
            queued_at_ms: queued.then_some(at + 1),
            log_until_ms: u64::MAX,
        })
    }

    fn delivery(key: &str, at: u64, outcome: Outcome) -> Entry {
        Entry::Delivery(DeliveryEntry {
            key: key.into(),
            portal_id: 1,
            subscription_type: "contact.creation".into(),
            received_at_ms: at,
            outcome,
            at_ms: at + 5,
            attempts: 1,
            api_status: Some(200),
            error_class: None,
            drop_reason: None,
            log_until_ms: u64::MAX,
        })
    }

    #[test]
    fn the_two_records_of_an_event_make_one_path_and_the_newest_comes_first() {
        let paths = assemble([
            intake("1#1#1#1", 10, true),
            delivery("1#1#2#1", 20, Outcome::Failed),
            intake("1#1#2#1", 20, true),
            delivery("1#1#1#1", 10, Outcome::Delivered),
            intake("1#1#3#1", 30, false),
        ]);
        let seen: Vec<(&str, Status)> =
            paths.iter().map(|p| (p.key.as_str(), p.status())).collect();
        assert_eq!(
            seen,
            [
                ("1#1#3#1", Status::Received),
                ("1#1#2#1", Status::Failed),
                ("1#1#1#1", Status::Delivered),
            ]
        );
    }

    #[test]
    fn a_page_stops_before_its_cursor_and_says_whether_more_follow() {
        let paths = assemble((0..5).map(|i| intake(&format!("1#1#{i}#1"), 100 + i, true)));
        let mut filter = ListFilter {
            portal: Some(1),
            subscription_type: None,
            status: Some(Status::Queued),
            from_ms: 0,
            to_ms: u64::MAX / 2,
            before: None,
            limit: 2,
        };
        let (first, more) = page_of(paths.clone(), &filter);
        assert!(more);
        assert_eq!(first[0].received_at_ms, 104);
        filter.before = Some(first[1].sort_key());
        let (second, _) = page_of(paths, &filter);
        assert_eq!(second[0].received_at_ms, 102);
    }

    #[test]
    fn the_portal_is_read_from_a_dedupe_key() {
        assert_eq!(portal_of_key("62515#2#3#4"), Some(62515));
        assert_eq!(portal_of_key("x#2"), None);
    }
}
