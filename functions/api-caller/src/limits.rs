//! Per-account limits on calls to HubSpot that hold across every concurrent instance.
//!
//! **Rate budget.** HubSpot allows a marketplace app 110 requests per rolling 10 s per installed
//! account, and a privately distributed one its account's tier's limit (100 or 190; see
//! [`crate::config::rate_limit`]); the budget's limit is the configured one, lowered per
//! account by what HubSpot's rate-limit headers say. The budget splits time into slots (a twentieth of the window, and never less than
//! [`LATENCY_MARGIN_MS`]: 500 ms for HubSpot's window) and counts grants per slot in DynamoDB
//! (`rate#<hub>#<slot>`). A grant is made only while the current slot plus the window's worth
//! of slots before it *and one slot more* stays under the limit. Any rolling window lies within
//! those slots, and the extra slot absorbs the delay between our grant and HubSpot's receipt of
//! the request, so the limit holds for every rolling window as HubSpot measures it too; the
//! price is caution (at most 110 calls per 10.5–11 s). Each grant is one DynamoDB transaction
//! (see [`DynamoLimits`]'s `take`), so concurrent instances never overshoot together; counts of
//! slots two or more back are cached, so a grant costs one small read and one transaction.
//!
//! **Account gate.** One item per account (`gate#<hub>`) holds the circuit breaker (consecutive
//! failed calls; open until a time once they reach the threshold), the hold HubSpot imposed
//! with a 429 (until when, and which policy), and a lower limit HubSpot's rate-limit headers
//! gave the account (until when). Every instance reads it before calling, and the budget of
//! that call counts against the lower of the configured and the learned limit.
//!
//! Expiry is checked in these conditions and reads, never left to DynamoDB's TTL (which only
//! tidies up, days later).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, ReturnValue, TransactWriteItem, Update,
};
use hsbridge_platform::Clock;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;

pub const ATTR_PK: &str = "pk";
/// Extra history the budget counts, for the spread of delays between a grant and HubSpot's
/// receipt of the request (scheduling, connection set-up, retries inside the HTTP client).
pub const LATENCY_MARGIN_MS: u64 = 500;
pub const ATTR_TTL: &str = "ttl";

/// Limits on one account's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    /// Requests allowed per rolling window (by default 100, safe on every HubSpot tier; see
    /// [`crate::config::rate_limit`]).
    pub limit: u32,
    /// The rolling window (HubSpot: 10 s).
    pub window_ms: u64,
    /// Slots the window is split into for counting.
    pub slots: u32,
    /// Consecutive failed calls that open the circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit stays open.
    pub breaker_cooldown_ms: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            limit: crate::config::SAFE_RATE_LIMIT,
            window_ms: 10_000,
            slots: 20,
            breaker_threshold: 5,
            breaker_cooldown_ms: 60_000,
        }
    }
}

impl LimitSettings {
    /// A slot is a fraction of the window, but never shorter than [`LATENCY_MARGIN_MS`].
    fn slot_ms(&self) -> u64 {
        (self.window_ms / u64::from(self.slots.max(1))).max(LATENCY_MARGIN_MS)
    }
}

/// A store of limits could not be used. Callers treat it as "not now": nothing is called.
#[derive(Debug, thiserror::Error)]
#[error("the limits table could not be used")]
pub struct LimitError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The answer to a request for budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Granted,
    /// Nothing left now; ask again at this time (ms since the epoch).
    RetryAt(u64),
}

/// Port: the cross-instance rate budget.
#[async_trait]
pub trait RateBudget: Send + Sync + std::fmt::Debug {
    /// One grant under the configured limit.
    async fn take(&self, hub_id: u64, now_ms: u64) -> Result<Take, LimitError> {
        self.take_within(hub_id, now_ms, None).await
    }
    /// One grant under the configured limit or `lower`, whichever is smaller (what HubSpot's
    /// rate-limit headers said for this account).
    async fn take_within(
        &self,
        hub_id: u64,
        now_ms: u64,
        lower: Option<u32>,
    ) -> Result<Take, LimitError>;
}

/// Why HubSpot asked us to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldPolicy {
    TenSecondly,
    Daily,
}

impl HoldPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldPolicy::TenSecondly => "TEN_SECONDLY_ROLLING",
            HoldPolicy::Daily => "DAILY",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "TEN_SECONDLY_ROLLING" => Some(HoldPolicy::TenSecondly),
            "DAILY" => Some(HoldPolicy::Daily),
            _ => None,
        }
    }
}

/// One account's gate, as read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateState {
    pub failures: u32,
    pub open_until_ms: Option<u64>,
    pub hold: Option<(u64, HoldPolicy)>,
    /// A limit per window lower than the configured one, learned from HubSpot's
    /// `X-HubSpot-RateLimit-*` headers for this account, and until when it applies.
    pub learned: Option<(u32, u64)>,
}

impl GateState {
    /// The circuit is open at `now`.
    pub fn open_at(&self, now_ms: u64) -> Option<u64> {
        self.open_until_ms.filter(|until| *until > now_ms)
    }

    /// HubSpot's hold in force at `now`.
    pub fn hold_at(&self, now_ms: u64) -> Option<(u64, HoldPolicy)> {
        self.hold.filter(|(until, _)| *until > now_ms)
    }

    /// The learned limit in force at `now`.
    pub fn learned_at(&self, now_ms: u64) -> Option<u32> {
        self.learned
            .filter(|(_, until)| *until > now_ms)
            .map(|(limit, _)| limit)
    }

    /// Anything to reset after a success.
    pub fn is_dirty(&self) -> bool {
        self.failures > 0 || self.open_until_ms.is_some()
    }
}

/// What one failed call did to an account's gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    pub state: GateState,
    /// This failure opened the circuit (it was closed, or half-open after its cool-down). Of
    /// concurrent failures across instances, exactly one sees this.
    pub opened: bool,
}

/// Port: the per-account circuit breaker and HubSpot's holds.
#[async_trait]
pub trait AccountGate: Send + Sync + std::fmt::Debug {
    async fn state(&self, hub_id: u64) -> Result<GateState, LimitError>;
    /// Records HubSpot's hold; an existing later hold is kept.
    async fn hold(&self, hub_id: u64, until_ms: u64, policy: HoldPolicy) -> Result<(), LimitError>;
    /// Counts a failed call; opens the circuit when the count reaches the threshold.
    async fn failure(&self, hub_id: u64, now_ms: u64) -> Result<Failed, LimitError>;
    /// A call succeeded: the count is reset and the circuit closed. `true` when the circuit had
    /// opened and this closed it (exactly one of concurrent successes sees it).
    async fn success(&self, hub_id: u64) -> Result<bool, LimitError>;
    /// Records the limit HubSpot's headers gave this account, in force until `until_ms`.
    async fn learn(&self, hub_id: u64, limit: u32, until_ms: u64) -> Result<(), LimitError>;
}

fn store_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> LimitError {
    LimitError(Box::new(e))
}

/// AWS adapter for both ports: one DynamoDB table, key `pk`, TTL attribute `ttl`.
#[derive(Debug)]
pub struct DynamoLimits {
    client: Client,
    table: String,
    settings: LimitSettings,
    clock: Arc<dyn Clock>,
    /// Counts of slots that can no longer change in a way that matters: (hub, slot) → count.
    settled: Mutex<HashMap<(u64, u64), u32>>,
    /// One grant at a time per account within an instance: concurrent requests of one
    /// instance would only collide in the transaction and retry.
    turns: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

/// How often a grant is retried at once after another instance's write got in between.
const CONTENDED_RETRIES: usize = 8;

impl DynamoLimits {
    pub fn new(
        client: Client,
        table: impl Into<String>,
        settings: LimitSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            settings,
            clock,
            settled: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
        }
    }

    fn rate_key(hub_id: u64, slot: u64) -> AttributeValue {
        AttributeValue::S(format!("rate#{hub_id}#{slot}"))
    }

    fn gate_key(hub_id: u64) -> AttributeValue {
        AttributeValue::S(format!("gate#{hub_id}"))
    }

    /// Counts of slots `from..to` (`to` exclusive): settled ones from memory, the rest read
    /// with a consistent read. Slots before `current - 1` become settled once read.
    async fn counts(
        &self,
        hub_id: u64,
        from: u64,
        to: u64,
        current: u64,
    ) -> Result<HashMap<u64, u32>, LimitError> {
        let mut counts = HashMap::new();
        let mut missing = Vec::new();
        {
            let settled = self.settled.lock().unwrap_or_else(|p| p.into_inner());
            for slot in from..to {
                match settled.get(&(hub_id, slot)) {
                    Some(n) => {
                        counts.insert(slot, *n);
                    }
                    None => missing.push(slot),
                }
            }
        }
        if missing.is_empty() {
            return Ok(counts);
        }
        let keys = missing
            .iter()
            .map(|slot| HashMap::from([(ATTR_PK.to_owned(), Self::rate_key(hub_id, *slot))]))
            .collect::<Vec<_>>();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .projection_expression("pk, n")
            .build()
            .map_err(store_error)?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(store_error)?;
        if out
            .unprocessed_keys()
            .is_some_and(|u| u.values().any(|k| !k.keys().is_empty()))
        {
            return Err(LimitError("some rate counters were not read".into()));
        }
        let mut found: HashMap<u64, u32> = HashMap::new();
        for item in out
            .responses()
            .and_then(|r| r.get(&self.table))
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let slot = item
                .get(ATTR_PK)
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| pk.rsplit('#').next())
                .and_then(|s| s.parse::<u64>().ok());
            let n = item
                .get("n")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0);
            if let Some(slot) = slot {
                found.insert(slot, n);
            }
        }
        let mut settled = self.settled.lock().unwrap_or_else(|p| p.into_inner());
        // Forget what can no longer be asked for.
        let horizon = from.saturating_sub(self.counted_slots());
        settled.retain(|(_, slot), _| *slot >= horizon);
        for slot in missing {
            let n = found.get(&slot).copied().unwrap_or(0);
            counts.insert(slot, n);
            if slot.saturating_add(2) <= current {
                settled.insert((hub_id, slot), n);
            }
        }
        Ok(counts)
    }

    /// Slots before the current one that count against the budget: the window's and one more.
    fn counted_slots(&self) -> u64 {
        self.settings.window_ms.div_ceil(self.settings.slot_ms()) + 1
    }
}

#[async_trait]
impl RateBudget for DynamoLimits {
    /// One grant, linearised across instances by a transaction:
    /// - the current slot's counter is incremented only while the counted history plus the
    ///   slot stays under the limit;
    /// - the previous slot must still hold the count that was read (a late write into it
    ///   makes this transaction fail and retry);
    /// - the next slot must not exist yet (so nobody writes into a slot once anyone has moved
    ///   past it).
    ///
    /// Slots two or more back cannot change in a way that matters: a grant is only used when
    /// its transaction completes within one slot after its own slot ended (otherwise it is
    /// spent unused), and one slot is at least [`LATENCY_MARGIN_MS`].
    async fn take_within(
        &self,
        hub_id: u64,
        now_ms: u64,
        lower: Option<u32>,
    ) -> Result<Take, LimitError> {
        let limit = lower.map_or(self.settings.limit, |l| l.min(self.settings.limit));
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            if turns.len() > 10_000 {
                turns.retain(|_, t| Arc::strong_count(t) > 1);
            }
            Arc::clone(turns.entry(hub_id).or_default())
        };
        let _turn = turn.lock().await;
        let slot_ms = self.settings.slot_ms();
        let mut now_ms = now_ms.max(self.clock.now_ms());
        for _ in 0..CONTENDED_RETRIES {
            let slot = now_ms / slot_ms;
            let next = slot.saturating_add(1).saturating_mul(slot_ms);
            let counts = self
                .counts(
                    hub_id,
                    slot.saturating_sub(self.counted_slots()),
                    slot,
                    slot,
                )
                .await?;
            let before: u32 = counts.values().copied().fold(0, u32::saturating_add);
            let Some(room) = limit.checked_sub(before).filter(|r| *r > 0) else {
                return Ok(Take::RetryAt(next));
            };
            let previous = counts.get(&slot.saturating_sub(1)).copied().unwrap_or(0);
            let ttl_secs = (next + self.settings.window_ms * 2) / 1000 + 60;
            let increment = Update::builder()
                .table_name(&self.table)
                .key(ATTR_PK, Self::rate_key(hub_id, slot))
                .update_expression("ADD n :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(n) OR n < :room")
                .expression_attribute_names("#ttl", ATTR_TTL)
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":room", AttributeValue::N(room.to_string()))
                .expression_attribute_values(":ttl", AttributeValue::N(ttl_secs.to_string()))
                .build()
                .map_err(store_error)?;
            let next_absent = ConditionCheck::builder()
                .table_name(&self.table)
                .key(ATTR_PK, Self::rate_key(hub_id, slot.saturating_add(1)))
                .condition_expression("attribute_not_exists(n)")
                .build()
                .map_err(store_error)?;
            let mut previous_unchanged = ConditionCheck::builder()
                .table_name(&self.table)
                .key(ATTR_PK, Self::rate_key(hub_id, slot.saturating_sub(1)));
            previous_unchanged = if previous == 0 {
                previous_unchanged
                    .condition_expression("attribute_not_exists(n) OR n = :zero")
                    .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            } else {
                previous_unchanged
                    .condition_expression("n = :seen")
                    .expression_attribute_values(":seen", AttributeValue::N(previous.to_string()))
            };
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(increment).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .condition_check(next_absent)
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .condition_check(previous_unchanged.build().map_err(store_error)?)
                        .build(),
                )
                .send()
                .await;
            match result {
                Ok(_) => {
                    if self.clock.now_ms() < next.saturating_add(slot_ms) {
                        return Ok(Take::Granted);
                    }
                    // Completed too late to be counted where it landed: spent unused.
                }
                Err(e) => {
                    let Some(cancelled) = e.as_service_error().and_then(|s| match s {
                        TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                        _ => None,
                    }) else {
                        return Err(store_error(e));
                    };
                    let no_room = cancelled
                        .cancellation_reasons()
                        .first()
                        .and_then(|r| r.code())
                        .is_some_and(|c| c == "ConditionalCheckFailed");
                    if no_room {
                        return Ok(Take::RetryAt(next));
                    }
                    // Another instance wrote in between: read again.
                }
            }
            now_ms = self.clock.now_ms();
        }
        Ok(Take::RetryAt(now_ms.saturating_add(slot_ms)))
    }
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn gate_from_item(item: Option<&HashMap<String, AttributeValue>>) -> GateState {
    let Some(item) = item else {
        return GateState::default();
    };
    let hold = number(item, "hold_until").and_then(|until| {
        let policy = item
            .get("hold_policy")
            .and_then(|v| v.as_s().ok())
            .and_then(|s| HoldPolicy::parse(s))?;
        Some((until, policy))
    });
    GateState {
        failures: number(item, "failures")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        open_until_ms: number(item, "open_until"),
        hold,
        learned: number(item, "learned_limit")
            .and_then(|n| u32::try_from(n).ok())
            .zip(number(item, "learned_until")),
    }
}

#[async_trait]
impl AccountGate for DynamoLimits {
    async fn state(&self, hub_id: u64) -> Result<GateState, LimitError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ATTR_PK, Self::gate_key(hub_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(gate_from_item(out.item()))
    }

    async fn hold(&self, hub_id: u64, until_ms: u64, policy: HoldPolicy) -> Result<(), LimitError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_PK, Self::gate_key(hub_id))
            .update_expression("SET hold_until = :until, hold_policy = :policy")
            .condition_expression("attribute_not_exists(hold_until) OR hold_until < :until")
            .expression_attribute_values(":until", AttributeValue::N(until_ms.to_string()))
            .expression_attribute_values(":policy", AttributeValue::S(policy.as_str().into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn learn(&self, hub_id: u64, limit: u32, until_ms: u64) -> Result<(), LimitError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_PK, Self::gate_key(hub_id))
            .update_expression("SET learned_limit = :limit, learned_until = :until")
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":until", AttributeValue::N(until_ms.to_string()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn failure(&self, hub_id: u64, now_ms: u64) -> Result<Failed, LimitError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_PK, Self::gate_key(hub_id))
            .update_expression("ADD failures :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(store_error)?;
        let mut state = gate_from_item(out.attributes());
        let mut opened = false;
        if state.failures >= self.settings.breaker_threshold {
            let until = now_ms.saturating_add(self.settings.breaker_cooldown_ms);
            // The value this write replaced says whether the circuit was open already: the
            // write is atomic, so of concurrent failures one alone replaces a closed circuit.
            let old = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(ATTR_PK, Self::gate_key(hub_id))
                .update_expression("SET open_until = :until")
                .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
                .return_values(ReturnValue::UpdatedOld)
                .send()
                .await
                .map_err(store_error)?;
            let was_open_until = old.attributes().and_then(|a| number(a, "open_until"));
            opened = was_open_until.is_none_or(|u| u <= now_ms);
            state.open_until_ms = Some(until);
        }
        Ok(Failed { state, opened })
    }

    async fn success(&self, hub_id: u64) -> Result<bool, LimitError> {
        let old = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_PK, Self::gate_key(hub_id))
            .update_expression("SET failures = :zero REMOVE open_until")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .return_values(ReturnValue::UpdatedOld)
            .send()
            .await
            .map_err(store_error)?;
        Ok(old
            .attributes()
            .and_then(|a| number(a, "open_until"))
            .is_some())
    }
}

/// Embedded adapter for both ports: exact sliding logs in memory (one process).
#[derive(Debug)]
pub struct InMemoryLimits {
    settings: LimitSettings,
    inner: Mutex<InMemoryInner>,
}

#[derive(Debug, Default)]
struct InMemoryInner {
    calls: HashMap<u64, VecDeque<u64>>,
    gates: HashMap<u64, GateState>,
}

impl InMemoryLimits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(InMemoryInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InMemoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl RateBudget for InMemoryLimits {
    async fn take_within(
        &self,
        hub_id: u64,
        now_ms: u64,
        lower: Option<u32>,
    ) -> Result<Take, LimitError> {
        let limit = lower.map_or(self.settings.limit, |l| l.min(self.settings.limit));
        let mut inner = self.lock();
        let log = inner.calls.entry(hub_id).or_default();
        while log
            .front()
            .is_some_and(|t| t.saturating_add(self.settings.window_ms) <= now_ms)
        {
            log.pop_front();
        }
        if log.len() < limit as usize {
            log.push_back(now_ms);
            return Ok(Take::Granted);
        }
        let oldest = log.front().copied().unwrap_or(now_ms);
        Ok(Take::RetryAt(
            oldest.saturating_add(self.settings.window_ms),
        ))
    }
}

#[async_trait]
impl AccountGate for InMemoryLimits {
    async fn state(&self, hub_id: u64) -> Result<GateState, LimitError> {
        Ok(self.lock().gates.get(&hub_id).copied().unwrap_or_default())
    }

    async fn hold(&self, hub_id: u64, until_ms: u64, policy: HoldPolicy) -> Result<(), LimitError> {
        let mut inner = self.lock();
        let gate = inner.gates.entry(hub_id).or_default();
        if gate.hold.is_none_or(|(u, _)| u < until_ms) {
            gate.hold = Some((until_ms, policy));
        }
        Ok(())
    }

    async fn learn(&self, hub_id: u64, limit: u32, until_ms: u64) -> Result<(), LimitError> {
        self.lock().gates.entry(hub_id).or_default().learned = Some((limit, until_ms));
        Ok(())
    }

    async fn failure(&self, hub_id: u64, now_ms: u64) -> Result<Failed, LimitError> {
        let mut inner = self.lock();
        let gate = inner.gates.entry(hub_id).or_default();
        gate.failures = gate.failures.saturating_add(1);
        let mut opened = false;
        if gate.failures >= self.settings.breaker_threshold {
            opened = gate.open_at(now_ms).is_none();
            gate.open_until_ms = Some(now_ms.saturating_add(self.settings.breaker_cooldown_ms));
        }
        Ok(Failed {
            state: *gate,
            opened,
        })
    }

    async fn success(&self, hub_id: u64) -> Result<bool, LimitError> {
        let mut inner = self.lock();
        let gate = inner.gates.entry(hub_id).or_default();
        gate.failures = 0;
        Ok(gate.open_until_ms.take().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> LimitSettings {
        LimitSettings {
            limit: 3,
            window_ms: 1000,
            slots: 10,
            breaker_threshold: 2,
            breaker_cooldown_ms: 500,
        }
    }

    #[tokio::test]
    async fn the_embedded_budget_holds_for_every_rolling_window() {
        let limits = InMemoryLimits::new(small());
        let mut granted = Vec::new();
        for t in (0..3000).step_by(50) {
            if limits.take(1, t).await.unwrap() == Take::Granted {
                granted.push(t);
            }
        }
        for (i, t) in granted.iter().enumerate() {
            let in_window = granted[i..].iter().take_while(|u| **u < t + 1000).count();
            assert!(in_window <= 3, "{in_window} calls in the window from {t}");
        }
        assert_eq!(granted.len(), 9);
        // Another account has its own budget.
        assert_eq!(limits.take(2, 0).await.unwrap(), Take::Granted);
    }

    #[tokio::test]
    async fn the_embedded_gate_opens_at_the_threshold_and_closes_on_success() {
        let gate = InMemoryLimits::new(small());
        let first = gate.failure(7, 100).await.unwrap();
        assert_eq!((first.state.open_at(100), first.opened), (None, false));
        let second = gate.failure(7, 100).await.unwrap();
        assert!(second.opened);
        assert_eq!(second.state.open_at(200), Some(600));
        assert_eq!(
            second.state.open_at(600),
            None,
            "half-open after the cool-down"
        );
        // A failure while open keeps it open without opening it again; after the cool-down
        // (half-open) a failure opens it again.
        assert!(!gate.failure(7, 300).await.unwrap().opened);
        assert!(gate.failure(7, 900).await.unwrap().opened);
        assert!(gate.success(7).await.unwrap(), "the success closed it");
        assert!(!gate.state(7).await.unwrap().is_dirty());
        assert!(!gate.success(7).await.unwrap(), "already closed");
    }

    #[tokio::test]
    async fn a_hold_is_only_ever_extended() {
        let gate = InMemoryLimits::new(small());
        gate.hold(7, 500, HoldPolicy::TenSecondly).await.unwrap();
        gate.hold(7, 400, HoldPolicy::TenSecondly).await.unwrap();
        assert_eq!(
            gate.state(7).await.unwrap().hold_at(0),
            Some((500, HoldPolicy::TenSecondly))
        );
        gate.hold(7, 86_400_000, HoldPolicy::Daily).await.unwrap();
        assert_eq!(
            gate.state(7).await.unwrap().hold_at(600),
            Some((86_400_000, HoldPolicy::Daily))
        );
    }
}
