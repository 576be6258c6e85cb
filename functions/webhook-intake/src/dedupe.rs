//! Remembering which events were already handed on, for longer than HubSpot retries.
//!
//! A record is claimed before the hand-off (`IN_PROGRESS`, owned by one request, expiring after a
//! short in-progress TTL) and completed after it (`COMPLETED`, expiring after the dedupe horizon).
//! A failed hand-off releases the claim, so HubSpot's retry is not swallowed; a request that died
//! holding a claim stops blocking retries once the in-progress TTL passes. Expiry is checked in
//! the write's condition: DynamoDB's TTL deletion is lazy (and moto never does it).
//!
//! The port works on a whole batch at once: HubSpot sends up to 100 events per request, and at a
//! 128 MB Lambda's CPU share each AWS call costs about 10 ms of wall time in SDK work alone, so a
//! call per event (claim and completion: some 200 calls) would spend most of the 3 s budget
//! before DynamoDB answered anything.
//!
//! The DynamoDB adapter therefore needs a handful of calls for a full batch (a read, 2 claims, 4
//! completions; with the account read and 10 `SendMessageBatch`, 18 in all):
//! - **read** (`seen`): one strongly consistent `BatchGetItem` of every key, which the handler
//!   sends at the same time as the account read, so it adds no round trip. Records completed
//!   (the events are queued) answer "duplicate" and records live under another owner answer
//!   "in progress" without a write, so a retried batch whose events are all queued costs this
//!   one read and no transaction; only the rest go to the claim. The read only ever spares a
//!   write: what it calls claimable is still decided by the claim's condition.
//! - **claim**: `TransactWriteItems` of up to 50 conditional `Put`s (two at once for a full
//!   batch), each with the condition the single-item claim had (absent, expired, or already
//!   this owner's). When any
//!   condition fails, DynamoDB cancels the whole transaction and names, per action, why
//!   (`CancellationReasons`, with the old item thanks to `ReturnValuesOnConditionCheckFailure`):
//!   the failed ones are the duplicates and the events another request is handing on; the rest
//!   are claimed in a second transaction (after the read, only a record written between the
//!   read and the claim does that). A new full batch is two calls, at most four.
//!   A conflict with a concurrent transaction, or anything still unclaimed after a few rounds,
//!   answers "in progress", which the caller waits on (bounded) like any other request's claim:
//!   never a second hand-off. A single event is one conditional `PutItem`, the same write.
//! - **complete**: `BatchWriteItem` puts of the completed records (25 per call), without a
//!   condition. That is safe because a completion is only ever written after its event is on
//!   the queue: a `COMPLETED` record is true whoever held the claim, and overwriting a claim
//!   another request took after ours expired only spares it a second hand-off. A batch write
//!   consumes half the write capacity of a transaction and has no cancellation to retry.
//! - **release** (failure path): `TransactWriteItems` of conditional `Delete`s (ours and
//!   still in progress), retried without the ones whose condition failed, which are no longer
//!   ours; a single event is one conditional `DeleteItem`.
//!
//! Why not `BatchWriteItem` for claims: it takes no conditions, and a claim is nothing but its
//! condition. A claim is idempotent for its owner (a record already in progress under the same
//! owner counts as claimed), so the SDK's retry of a write whose answer was lost neither fails
//! nor waits on itself. The embedded adapter has the same semantics, step for step.
//!
//! Each record is also the intake's part of the event log (`hsbridge_platform::event_log`):
//! the claim and the completion carry the event's portal, subscription type, reception time and
//! (on completion) queueing time, so the log costs the intake no call of its own. A record lives
//! for the longer of the dedupe horizon and the log's retention (its `ttl`); `expires_at_ms`
//! alone still ends its dedupe life, so a record kept for the log is claimable again once the
//! horizon passed, as before.
//!
//! On moto (the tests' stand-in) a transaction costs a copy of the whole table (to roll back) and
//! a parsed condition per action; `scripts/moto-server` removes moto's repeated copies (one per
//! action), the rest stays. Real DynamoDB's cost is per item in the transaction.
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html>

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, PutRequest,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, WriteRequest,
};
use hsbridge_platform::dynamo::BATCH_WRITES;
use hsbridge_platform::event_log::{InMemoryEventLog, IntakeEntry, intake_attributes};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the event now and must hand it on.
    Claimed,
    /// The event was handed on before.
    Completed,
    /// Another request is handing it on right now.
    InProgress,
}

/// What a read of a record says before any claim: it spares the claim's write for events
/// already queued or held, and decides nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Absent, expired, in progress under this same owner, or left unread: the claim's
    /// condition decides.
    Claimable,
    /// Handed on before (the record is written only once the event is queued).
    Completed,
    /// Live and in progress under another owner.
    Held,
}

/// The state of a record, for waiting on another request's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Absent,
    InProgress,
    Completed,
}

#[derive(Debug, thiserror::Error)]
pub enum DedupeError {
    #[error("the dedupe table could not be reached: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the dedupe table refused a write: {0}")]
    Refused(String),
}

/// Port: the dedupe store, a batch of distinct keys at a time. `owner` identifies the claiming
/// request.
///
/// On an error from `claim`, some of the keys may be claimed already (or the write may have
/// succeeded unseen): the caller releases all of them, which is harmless for the ones it never
/// got, since a release only removes a record still in progress under the same owner.
#[async_trait]
pub trait Deduper: Send + Sync + std::fmt::Debug {
    /// One answer per event, in the order given. An event whose record is in progress under
    /// this same owner is `Claimed`: claiming again is harmless. Each claimed record carries the
    /// event's log fields.
    async fn claim(
        &self,
        events: &[IntakeEntry],
        owner: &str,
        now_ms: u64,
        in_progress_ms: u64,
    ) -> Result<Vec<Claim>, DedupeError>;
    /// Records the events as handed on (called only once they are on the queue, so it holds
    /// whoever holds the claim now), with their log fields (`queued_at_ms` set). Answers how
    /// many records could not be written.
    async fn complete(
        &self,
        events: &[IntakeEntry],
        owner: &str,
        now_ms: u64,
        horizon_ms: u64,
    ) -> Result<usize, DedupeError>;
    /// Removes the owner's records still in progress; others are left alone. Answers how many
    /// of the owner's could not be removed (not settled).
    async fn release(&self, keys: &[String], owner: &str) -> Result<usize, DedupeError>;
    /// What each record says now, one answer per key in the order given, read without writing.
    /// A store without a cheap batch read answers `Claimable` for every key, which only means
    /// the claim decides.
    async fn seen(
        &self,
        keys: &[String],
        _owner: &str,
        _now_ms: u64,
    ) -> Result<Vec<Seen>, DedupeError> {
        Ok(vec![Seen::Claimable; keys.len()])
    }
    async fn state(&self, key: &str, now_ms: u64) -> Result<RecordState, DedupeError>;
}

const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";
const STATUS_COMPLETED: &str = "COMPLETED";
/// Actions per transaction (DynamoDB takes up to 100): a full batch is two transactions sent
/// at once, each half as long to run and half as much to redo when a duplicate cancels it.
const TRANSACTION_ACTIONS: usize = 50;
/// Transactions per chunk of actions: the first, the rest after the failed conditions are taken
/// out, and one more for a conflict with a concurrent transaction.
const TRANSACTION_ROUNDS: usize = 3;
/// DynamoDB's limit of keys in one `BatchGetItem` (and HubSpot's largest batch).
const BATCH_GET_KEYS: usize = 100;
const CLAIM_CONDITION: &str =
    "attribute_not_exists(pk) OR expires_at_ms < :now OR (#o = :owner AND #s = :inprog)";
const RELEASE_CONDITION: &str = "#o = :owner AND #s = :inprog";

/// AWS adapter: one DynamoDB item per event, key attribute `pk`.
#[derive(Debug, Clone)]
pub struct DynamoDeduper {
    client: Client,
    table: String,
}

impl DynamoDeduper {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// DynamoDB's TTL attribute is in seconds; a day's margin keeps the record past its logical
/// expiry (the dedupe window's or the log's, whichever ends later), which the conditions and
/// the log's reads check themselves.
fn ttl_seconds(expires_at_ms: u64, log_until_ms: u64) -> u64 {
    hsbridge_platform::event_log::ttl_seconds(expires_at_ms.max(log_until_ms))
}

fn state_of(item: &HashMap<String, AttributeValue>, now_ms: u64) -> RecordState {
    let expires = item
        .get("expires_at_ms")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if expires < now_ms {
        return RecordState::Absent;
    }
    match item
        .get("status")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
    {
        Some(STATUS_COMPLETED) => RecordState::Completed,
        Some(STATUS_IN_PROGRESS) => RecordState::InProgress,
        _ => RecordState::Absent,
    }
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> DedupeError {
    DedupeError::Unavailable(Box::new(e))
}

/// What became of one action of a transaction.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Written,
    /// Its condition failed; the record as it was, when DynamoDB returned it.
    ConditionFailed(Option<HashMap<String, AttributeValue>>),
    /// Neither, after every round: another transaction kept conflicting with it.
    Unsettled,
}

impl DynamoDeduper {
    /// Runs the actions as transactions of [`TRANSACTION_ACTIONS`], the chunks concurrently, each
    /// until every action is written or has failed its condition (at most
    /// [`TRANSACTION_ROUNDS`] calls).
    async fn transact(&self, actions: &[TransactWriteItem]) -> Result<Vec<Outcome>, DedupeError> {
        in_order(
            actions
                .chunks(TRANSACTION_ACTIONS)
                .map(|chunk| self.transact_chunk(chunk)),
        )
        .await
    }

    async fn transact_chunk(
        &self,
        actions: &[TransactWriteItem],
    ) -> Result<Vec<Outcome>, DedupeError> {
        let mut out = vec![Outcome::Unsettled; actions.len()];
        let mut pending: Vec<usize> = (0..actions.len()).collect();
        for _ in 0..TRANSACTION_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let items = pending.iter().map(|&i| actions[i].clone()).collect();
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => {
                    for &i in &pending {
                        out[i] = Outcome::Written;
                    }
                    break;
                }
                Err(err) => err,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons().len() == pending.len() =>
                {
                    c.cancellation_reasons()
                }
                _ => return Err(unavailable(err)),
            };
            let mut next = Vec::with_capacity(pending.len());
            for (&i, reason) in pending.iter().zip(reasons) {
                match reason.code() {
                    Some("ConditionalCheckFailed") => {
                        out[i] = Outcome::ConditionFailed(reason.item().cloned());
                    }
                    // Another action caused the cancellation, or a concurrent transaction
                    // touched the item: tried again.
                    None | Some("None" | "TransactionConflict") => next.push(i),
                    // Throttling, validation, capacity: not something a second try fixes
                    // within one request.
                    Some(code) => {
                        return Err(DedupeError::Refused(format!(
                            "a transaction was cancelled with reason {code}"
                        )));
                    }
                }
            }
            pending = next;
        }
        Ok(out)
    }

    /// One strongly consistent `BatchGetItem` per 100 keys, at once: what each record says now,
    /// in the order of `keys`. Keys DynamoDB leaves unprocessed are `Claimable`: the
    /// transaction's condition decides them.
    async fn read_all(
        &self,
        keys: &[String],
        owner: &str,
        now_ms: u64,
    ) -> Result<Vec<Seen>, DedupeError> {
        in_order(
            keys.chunks(BATCH_GET_KEYS)
                .map(|chunk| self.read_chunk(chunk, owner, now_ms)),
        )
        .await
    }

    async fn read_chunk(
        &self,
        chunk: &[String],
        owner: &str,
        now_ms: u64,
    ) -> Result<Vec<Seen>, DedupeError> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(chunk.iter().map(|key| self.key(key)).collect()))
            .consistent_read(true)
            .projection_expression("pk, #s, #o, expires_at_ms")
            .set_expression_attribute_names(Some(names()))
            .build()
            .map_err(build_error)?;
        let answer = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(unavailable)?;
        let found: HashMap<&str, &HashMap<String, AttributeValue>> = answer
            .responses()
            .and_then(|r| r.get(&self.table))
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let pk = item.get("pk").and_then(|v| v.as_s().ok())?;
                Some((pk.as_str(), item))
            })
            .collect();
        Ok(chunk
            .iter()
            .map(|key| {
                let Some(item) = found.get(key.as_str()) else {
                    return Seen::Claimable;
                };
                let ours = item
                    .get("owner")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|o| o == owner);
                match state_of(item, now_ms) {
                    RecordState::Completed => Seen::Completed,
                    RecordState::InProgress if !ours => Seen::Held,
                    RecordState::InProgress | RecordState::Absent => Seen::Claimable,
                }
            })
            .collect())
    }

    /// Writes up to 25 completed records; answers how many stayed unprocessed.
    async fn complete_chunk(
        &self,
        chunk: &[IntakeEntry],
        owner: &str,
        expires: u64,
    ) -> Result<usize, DedupeError> {
        let requests = chunk
            .iter()
            .map(|event| {
                let mut item = self.claim_record(event, owner, expires);
                item.insert("status".to_owned(), s(STATUS_COMPLETED));
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, DedupeError>>()?;
        hsbridge_platform::dynamo::write_chunk(&self.client, &self.table, requests)
            .await
            .map_err(unavailable)
    }

    fn key(&self, key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), s(key))])
    }

    /// The record of a claim (in progress) until `expires_at_ms`, with the event's log fields.
    fn claim_record(
        &self,
        event: &IntakeEntry,
        owner: &str,
        expires_at_ms: u64,
    ) -> HashMap<String, AttributeValue> {
        let mut item = intake_attributes(event);
        item.extend([
            ("pk".to_owned(), s(&event.key)),
            ("status".to_owned(), s(STATUS_IN_PROGRESS)),
            ("owner".to_owned(), s(owner)),
            ("expires_at_ms".to_owned(), n(expires_at_ms)),
            (
                "ttl".to_owned(),
                n(ttl_seconds(expires_at_ms, event.log_until_ms)),
            ),
        ]);
        item
    }
}

/// `owner` and `status` are reserved words in DynamoDB expressions.
fn names() -> HashMap<String, String> {
    HashMap::from([
        ("#o".to_owned(), "owner".to_owned()),
        ("#s".to_owned(), "status".to_owned()),
    ])
}

fn claim_values(owner: &str, now_ms: u64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (":now".to_owned(), n(now_ms)),
        (":owner".to_owned(), s(owner)),
        (":inprog".to_owned(), s(STATUS_IN_PROGRESS)),
    ])
}

fn build_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> DedupeError {
    DedupeError::Unavailable(Box::new(e))
}

#[async_trait]
impl Deduper for DynamoDeduper {
    async fn claim(
        &self,
        events: &[IntakeEntry],
        owner: &str,
        now_ms: u64,
        in_progress_ms: u64,
    ) -> Result<Vec<Claim>, DedupeError> {
        let expires = now_ms.saturating_add(in_progress_ms);
        let claim_of = |old: Option<&HashMap<String, AttributeValue>>| match old {
            Some(item) if state_of(item, now_ms) == RecordState::Completed => Claim::Completed,
            // The condition saw a live record of another owner; an unreadable or unsettled one
            // counts as in progress so that the caller waits rather than hands on twice.
            _ => Claim::InProgress,
        };
        if let [event] = events {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(self.claim_record(event, owner, expires)))
                .condition_expression(CLAIM_CONDITION)
                .set_expression_attribute_names(Some(names()))
                .set_expression_attribute_values(Some(claim_values(owner, now_ms)))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            return match result {
                Ok(_) => Ok(vec![Claim::Claimed]),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => {
                        Ok(vec![claim_of(e.item())])
                    }
                    _ => Err(unavailable(err)),
                },
            };
        }
        let actions = events
            .iter()
            .map(|event| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(self.claim_record(event, owner, expires)))
                    .condition_expression(CLAIM_CONDITION)
                    .set_expression_attribute_names(Some(names()))
                    .set_expression_attribute_values(Some(claim_values(owner, now_ms)))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_error)?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect::<Result<Vec<_>, DedupeError>>()?;
        Ok(self
            .transact(&actions)
            .await?
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::Written => Claim::Claimed,
                Outcome::ConditionFailed(old) => claim_of(old.as_ref()),
                Outcome::Unsettled => Claim::InProgress,
            })
            .collect())
    }

    async fn complete(
        &self,
        events: &[IntakeEntry],
        owner: &str,
        now_ms: u64,
        horizon_ms: u64,
    ) -> Result<usize, DedupeError> {
        let expires = now_ms.saturating_add(horizon_ms);
        // The chunks go out at once: four round trips would be one.
        let writes = events
            .chunks(BATCH_WRITES)
            .map(|chunk| self.complete_chunk(chunk, owner, expires));
        let mut unprocessed = 0;
        for result in futures_util::future::join_all(writes).await {
            unprocessed += result?;
        }
        Ok(unprocessed)
    }

    async fn release(&self, keys: &[String], owner: &str) -> Result<usize, DedupeError> {
        let values = HashMap::from([
            (":owner".to_owned(), s(owner)),
            (":inprog".to_owned(), s(STATUS_IN_PROGRESS)),
        ]);
        if let [key] = keys {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(self.key(key)))
                .condition_expression(RELEASE_CONDITION)
                .set_expression_attribute_names(Some(names()))
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(0),
                // Someone else owns it now, or it is gone: nothing of ours to release.
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Ok(0)
                }
                Err(err) => Err(unavailable(err)),
            };
        }
        let actions = keys
            .iter()
            .map(|key| {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(self.key(key)))
                    .condition_expression(RELEASE_CONDITION)
                    .set_expression_attribute_names(Some(names()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .build()
                    .map_err(build_error)?;
                Ok(TransactWriteItem::builder().delete(delete).build())
            })
            .collect::<Result<Vec<_>, DedupeError>>()?;
        // A failed condition means someone else owns it now, or it is gone: nothing of ours
        // to release.
        Ok(self
            .transact(&actions)
            .await?
            .iter()
            .filter(|o| **o == Outcome::Unsettled)
            .count())
    }

    async fn seen(
        &self,
        keys: &[String],
        owner: &str,
        now_ms: u64,
    ) -> Result<Vec<Seen>, DedupeError> {
        self.read_all(keys, owner, now_ms).await
    }

    async fn state(&self, key: &str, now_ms: u64) -> Result<RecordState, DedupeError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out
            .item()
            .map_or(RecordState::Absent, |item| state_of(item, now_ms)))
    }
}

#[derive(Debug, Clone)]
struct Record {
    completed: bool,
    owner: String,
    expires_at_ms: u64,
}

impl Record {
    fn live(&self, now_ms: u64) -> bool {
        self.expires_at_ms >= now_ms
    }
}

/// Embedded adapter with the same semantics, for the local stack and unit tests. With a log, it
/// writes the intake's records there as the DynamoDB adapter writes them into its items.
#[derive(Debug, Default)]
pub struct InMemoryDeduper {
    records: Mutex<HashMap<String, Record>>,
    log: Option<Arc<InMemoryEventLog>>,
}

impl InMemoryDeduper {
    pub fn with_log(log: Arc<InMemoryEventLog>) -> Self {
        Self {
            records: Mutex::default(),
            log: Some(log),
        }
    }

    fn logged(&self, f: impl FnOnce(&InMemoryEventLog)) {
        if let Some(log) = &self.log {
            f(log);
        }
    }

    fn with_records<T>(&self, f: impl FnOnce(&mut HashMap<String, Record>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of a plain map.
        let mut guard = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

#[async_trait]
impl Deduper for InMemoryDeduper {
    async fn claim(
        &self,
        events: &[IntakeEntry],
        owner: &str,
        now_ms: u64,
        in_progress_ms: u64,
    ) -> Result<Vec<Claim>, DedupeError> {
        let claims: Vec<Claim> = self.with_records(|records| {
            events
                .iter()
                .map(|event| match records.get(event.key.as_str()) {
                    Some(r) if r.live(now_ms) && r.completed => Claim::Completed,
                    Some(r) if r.live(now_ms) && r.owner != owner => Claim::InProgress,
                    _ => {
                        records.insert(
                            event.key.clone(),
                            Record {
                                completed: false,
                                owner: owner.to_owned(),
                                expires_at_ms: now_ms.saturating_add(in_progress_ms),
                            },
                        );
                        Claim::Claimed
                    }
                })
                .collect()
        });
        self.logged(|log| {
            for (event, claim) in events.iter().zip(&claims) {
                if *claim == Claim::Claimed {
                    log.put_intake(IntakeEntry {
                        queued_at_ms: None,
                        ..event.clone()
                    });
                }
            }
        });
        Ok(claims)
    }

    async fn complete(
        &self,
        events: &[IntakeEntry],
        owner: &str,
        now_ms: u64,
        horizon_ms: u64,
    ) -> Result<usize, DedupeError> {
        // As in DynamoDB: a completion is written whoever holds the claim (see the module docs).
        self.with_records(|records| {
            for event in events {
                records.insert(
                    event.key.clone(),
                    Record {
                        completed: true,
                        owner: owner.to_owned(),
                        expires_at_ms: now_ms.saturating_add(horizon_ms),
                    },
                );
            }
        });
        self.logged(|log| {
            for event in events {
                log.put_intake(event.clone());
            }
        });
        Ok(0)
    }

    async fn release(&self, keys: &[String], owner: &str) -> Result<usize, DedupeError> {
        let released: Vec<&String> = self.with_records(|records| {
            keys.iter()
                .filter(|key| {
                    let ours = records
                        .get(key.as_str())
                        .is_some_and(|r| r.owner == owner && !r.completed);
                    if ours {
                        records.remove(key.as_str());
                    }
                    ours
                })
                .collect()
        });
        self.logged(|log| {
            for key in released {
                log.remove_intake(key);
            }
        });
        Ok(0)
    }

    async fn seen(
        &self,
        keys: &[String],
        owner: &str,
        now_ms: u64,
    ) -> Result<Vec<Seen>, DedupeError> {
        Ok(self.with_records(|records| {
            keys.iter()
                .map(|key| match records.get(key.as_str()) {
                    Some(r) if r.live(now_ms) && r.completed => Seen::Completed,
                    Some(r) if r.live(now_ms) && r.owner != owner => Seen::Held,
                    _ => Seen::Claimable,
                })
                .collect()
        }))
    }

    async fn state(&self, key: &str, now_ms: u64) -> Result<RecordState, DedupeError> {
        Ok(self.with_records(|records| match records.get(key) {
            Some(r) if r.live(now_ms) => {
                if r.completed {
                    RecordState::Completed
                } else {
                    RecordState::InProgress
                }
            }
            _ => RecordState::Absent,
        }))
    }
}

/// Runs one call per chunk at once and joins their results in the chunks' order; the first
/// failure is the answer.
async fn in_order<T, F>(calls: impl Iterator<Item = F>) -> Result<Vec<T>, DedupeError>
where
    F: std::future::Future<Output = Result<Vec<T>, DedupeError>>,
{
    let mut out = Vec::new();
    for result in futures_util::future::join_all(calls).await {
        out.extend(result?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|k| (*k).to_owned()).collect()
    }

    fn ev(keys: &[String]) -> Vec<IntakeEntry> {
        keys.iter()
            .map(|key| IntakeEntry {
                key: key.clone(),
                portal_id: 1,
                subscription_type: "contact.creation".into(),
                received_at_ms: 0,
                queued_at_ms: None,
                log_until_ms: u64::MAX,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_completed_event_is_a_duplicate_until_the_horizon_passes() {
        let d = InMemoryDeduper::default();
        let k = keys(&["k"]);
        assert_eq!(
            d.claim(&ev(&k), "a", 1_000, 10).await.unwrap(),
            [Claim::Claimed]
        );
        assert_eq!(d.complete(&ev(&k), "a", 1_005, 100).await.unwrap(), 0);
        assert_eq!(
            d.claim(&ev(&k), "b", 1_100, 10).await.unwrap(),
            [Claim::Completed]
        );
        assert_eq!(
            d.claim(&ev(&k), "b", 1_106, 10).await.unwrap(),
            [Claim::Claimed]
        );
    }

    #[tokio::test]
    async fn a_released_claim_lets_the_retry_through() {
        let d = InMemoryDeduper::default();
        let k = keys(&["k"]);
        d.claim(&ev(&k), "a", 0, 10_000).await.unwrap();
        assert_eq!(
            d.claim(&ev(&k), "b", 1, 10_000).await.unwrap(),
            [Claim::InProgress]
        );
        d.release(&k, "a").await.unwrap();
        assert_eq!(
            d.claim(&ev(&k), "b", 2, 10_000).await.unwrap(),
            [Claim::Claimed]
        );
    }

    #[tokio::test]
    async fn a_claim_whose_owner_died_expires_after_the_in_progress_ttl() {
        let d = InMemoryDeduper::default();
        let k = keys(&["k"]);
        d.claim(&ev(&k), "dead", 0, 10).await.unwrap();
        assert_eq!(
            d.claim(&ev(&k), "b", 11, 10).await.unwrap(),
            [Claim::Claimed]
        );
        // The dead owner cannot release what is no longer its claim.
        d.release(&k, "dead").await.unwrap();
        assert_eq!(d.state("k", 12).await.unwrap(), RecordState::InProgress);
    }

    #[tokio::test]
    async fn one_batch_answers_each_key_for_itself() {
        let d = InMemoryDeduper::default();
        d.claim(&ev(&keys(&["done"])), "a", 0, 10_000)
            .await
            .unwrap();
        d.complete(&ev(&keys(&["done"])), "a", 1, 100_000)
            .await
            .unwrap();
        d.claim(&ev(&keys(&["busy"])), "b", 1, 10_000)
            .await
            .unwrap();
        assert_eq!(
            d.claim(&ev(&keys(&["new", "done", "busy"])), "c", 2, 10_000)
                .await
                .unwrap(),
            [Claim::Claimed, Claim::Completed, Claim::InProgress]
        );
        // Releasing all three removes only what "c" holds.
        d.release(&keys(&["new", "done", "busy"]), "c")
            .await
            .unwrap();
        assert_eq!(d.state("new", 3).await.unwrap(), RecordState::Absent);
        assert_eq!(d.state("done", 3).await.unwrap(), RecordState::Completed);
        assert_eq!(d.state("busy", 3).await.unwrap(), RecordState::InProgress);
    }

    #[tokio::test]
    async fn a_completion_is_recorded_even_when_another_request_took_over_the_claim() {
        // "a" queued the event but stalled past its claim; "b" took over. The event is on the
        // queue either way, so the record says so and "b"'s failed hand-off cannot remove it.
        let d = InMemoryDeduper::default();
        let k = keys(&["k"]);
        d.claim(&ev(&k), "a", 0, 10).await.unwrap();
        d.claim(&ev(&k), "b", 11, 10).await.unwrap();
        d.complete(&ev(&k), "a", 12, 1_000).await.unwrap();
        d.release(&k, "b").await.unwrap();
        assert_eq!(d.state("k", 13).await.unwrap(), RecordState::Completed);
    }

    #[tokio::test]
    async fn claiming_again_under_the_same_owner_is_harmless() {
        let d = InMemoryDeduper::default();
        let k = keys(&["k"]);
        d.claim(&ev(&k), "a", 0, 10_000).await.unwrap();
        assert_eq!(
            d.claim(&ev(&k), "a", 1, 10_000).await.unwrap(),
            [Claim::Claimed]
        );
        assert_eq!(
            d.claim(&ev(&k), "b", 2, 10_000).await.unwrap(),
            [Claim::InProgress]
        );
    }

    #[tokio::test]
    async fn the_embedded_log_follows_claims_completions_and_releases() {
        let log = Arc::new(InMemoryEventLog::default());
        let d = InMemoryDeduper::with_log(Arc::clone(&log));
        let k = keys(&["1#2#3#4", "1#2#5#4"]);
        d.claim(&ev(&k), "a", 0, 10_000).await.unwrap();
        let queued: Vec<IntakeEntry> = ev(&k[..1])
            .into_iter()
            .map(|e| IntakeEntry {
                queued_at_ms: Some(5),
                ..e
            })
            .collect();
        d.complete(&queued, "a", 5, 100_000).await.unwrap();
        d.release(&k, "a").await.unwrap();
        use hsbridge_platform::event_log::{EventLogReader, Status};
        let (first, _) = log.show("1#2#3#4", 6).await.unwrap();
        assert_eq!(first.unwrap().status(), Status::Queued);
        let (second, _) = log.show("1#2#5#4", 6).await.unwrap();
        assert!(second.is_none(), "a released claim leaves no record");
    }
}
