//! Remembering which events were already handed on, for longer than HubSpot retries.
//!
//! A record is claimed before the hand-off (`IN_PROGRESS`, owned by one request, expiring after a
//! short in-progress TTL) and completed after it (`COMPLETED`, expiring after the dedupe horizon).
//! A failed hand-off releases the claim, so HubSpot's retry is not swallowed; a request that died
//! holding a claim stops blocking retries once the in-progress TTL passes. Expiry is checked in
//! the write's condition: DynamoDB's TTL deletion is lazy (and moto never does it).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;
use std::sync::Mutex;

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

/// The state of a record, for waiting on another request's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Absent,
    InProgress,
    Completed,
}

#[derive(Debug, thiserror::Error)]
pub enum DedupeError {
    #[error("the dedupe table could not be reached")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Port: the dedupe store. `owner` identifies the claiming request.
#[async_trait]
pub trait Deduper: Send + Sync + std::fmt::Debug {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        in_progress_ms: u64,
    ) -> Result<Claim, DedupeError>;
    async fn complete(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        horizon_ms: u64,
    ) -> Result<(), DedupeError>;
    async fn release(&self, key: &str, owner: &str) -> Result<(), DedupeError>;
    async fn state(&self, key: &str, now_ms: u64) -> Result<RecordState, DedupeError>;
}

const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";
const STATUS_COMPLETED: &str = "COMPLETED";

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
/// expiry, which the conditions check themselves.
fn ttl_seconds(expires_at_ms: u64) -> u64 {
    expires_at_ms / 1000 + 86_400
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

#[async_trait]
impl Deduper for DynamoDeduper {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        in_progress_ms: u64,
    ) -> Result<Claim, DedupeError> {
        let expires = now_ms.saturating_add(in_progress_ms);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("status", s(STATUS_IN_PROGRESS))
            .item("owner", s(owner))
            .item("expires_at_ms", n(expires))
            .item("ttl", n(ttl_seconds(expires)))
            .condition_expression("attribute_not_exists(pk) OR expires_at_ms < :now")
            .expression_attribute_values(":now", n(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    match e.item().map(|item| state_of(item, now_ms)) {
                        Some(RecordState::Completed) => Ok(Claim::Completed),
                        // The condition saw a live record; an unreadable one counts as in progress
                        // so that the caller waits rather than hands on twice.
                        _ => Ok(Claim::InProgress),
                    }
                }
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        horizon_ms: u64,
    ) -> Result<(), DedupeError> {
        let expires = now_ms.saturating_add(horizon_ms);
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression("SET #s = :done, expires_at_ms = :exp, #ttl = :ttl")
            .condition_expression("#o = :owner")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":done", s(STATUS_COMPLETED))
            .expression_attribute_values(":exp", n(expires))
            .expression_attribute_values(":ttl", n(ttl_seconds(expires)))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), DedupeError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .condition_expression("#o = :owner AND #s = :inprog")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":inprog", s(STATUS_IN_PROGRESS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else owns it now: nothing of ours to release.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn state(&self, key: &str, now_ms: u64) -> Result<RecordState, DedupeError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
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

/// Embedded adapter with the same semantics, for the local stack and unit tests.
#[derive(Debug, Default)]
pub struct InMemoryDeduper {
    records: Mutex<HashMap<String, Record>>,
}

impl InMemoryDeduper {
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
        key: &str,
        owner: &str,
        now_ms: u64,
        in_progress_ms: u64,
    ) -> Result<Claim, DedupeError> {
        Ok(self.with_records(|records| match records.get(key) {
            Some(r) if r.expires_at_ms >= now_ms => {
                if r.completed {
                    Claim::Completed
                } else {
                    Claim::InProgress
                }
            }
            _ => {
                records.insert(
                    key.to_owned(),
                    Record {
                        completed: false,
                        owner: owner.to_owned(),
                        expires_at_ms: now_ms.saturating_add(in_progress_ms),
                    },
                );
                Claim::Claimed
            }
        }))
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        horizon_ms: u64,
    ) -> Result<(), DedupeError> {
        self.with_records(|records| {
            if let Some(r) = records.get_mut(key)
                && r.owner == owner
            {
                r.completed = true;
                r.expires_at_ms = now_ms.saturating_add(horizon_ms);
            }
        });
        Ok(())
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), DedupeError> {
        self.with_records(|records| {
            if records
                .get(key)
                .is_some_and(|r| r.owner == owner && !r.completed)
            {
                records.remove(key);
            }
        });
        Ok(())
    }

    async fn state(&self, key: &str, now_ms: u64) -> Result<RecordState, DedupeError> {
        Ok(self.with_records(|records| match records.get(key) {
            Some(r) if r.expires_at_ms >= now_ms => {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_completed_event_is_a_duplicate_until_the_horizon_passes() {
        let d = InMemoryDeduper::default();
        assert_eq!(d.claim("k", "a", 1_000, 10).await.unwrap(), Claim::Claimed);
        d.complete("k", "a", 1_005, 100).await.unwrap();
        assert_eq!(
            d.claim("k", "b", 1_100, 10).await.unwrap(),
            Claim::Completed
        );
        assert_eq!(d.claim("k", "b", 1_106, 10).await.unwrap(), Claim::Claimed);
    }

    #[tokio::test]
    async fn a_released_claim_lets_the_retry_through() {
        let d = InMemoryDeduper::default();
        d.claim("k", "a", 0, 10_000).await.unwrap();
        assert_eq!(
            d.claim("k", "b", 1, 10_000).await.unwrap(),
            Claim::InProgress
        );
        d.release("k", "a").await.unwrap();
        assert_eq!(d.claim("k", "b", 2, 10_000).await.unwrap(), Claim::Claimed);
    }

    #[tokio::test]
    async fn a_claim_whose_owner_died_expires_after_the_in_progress_ttl() {
        let d = InMemoryDeduper::default();
        d.claim("k", "dead", 0, 10).await.unwrap();
        assert_eq!(d.claim("k", "b", 11, 10).await.unwrap(), Claim::Claimed);
        // The dead owner can neither complete nor release what is no longer its claim.
        d.release("k", "dead").await.unwrap();
        assert_eq!(d.state("k", 12).await.unwrap(), RecordState::InProgress);
    }
}
