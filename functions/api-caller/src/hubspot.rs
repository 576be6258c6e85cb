//! Calls to HubSpot's API with an account's token, within HubSpot's limits.
//!
//! Before a call: the account's circuit must be closed and no 429 hold in force (a hold that
//! ends within the call's wait budget is waited out), and the cross-instance rate budget must
//! grant a request (waiting for the next slot when it does not, within the same budget).
//!
//! Answers:
//! - 2xx: success; a dirty breaker is reset.
//! - 429: the `policyName` in the body decides. `TEN_SECONDLY_ROLLING`: every instance holds
//!   for the window (or `Retry-After`), then this call tries again. `DAILY`: the account is held
//!   until `Retry-After`, or else the next midnight UTC, and the call fails.
//! - 5xx, timeouts, unreachable: exponential backoff with full jitter, a bounded number of
//!   attempts, then one failure on the breaker.
//! - 401: one refresh through the vault, then a failure.
//! - 404: the object is gone; not a failure of HubSpot.
//! - Other 4xx: the request is wrong; fails without touching the breaker.
//!
//! Every answer's `X-HubSpot-RateLimit-Max` / `-Interval-Milliseconds` / `-Remaining` headers
//! (HubSpot returns them on OAuth calls:
//! <https://developers.hubspot.com/changelog/rate-limit-headers-will-now-appear-for-oauth-authenticated-calls>)
//! shrink the account's budget when they say less than configured: the limit they give, scaled
//! to the budget's window when their interval is longer (and taken as it is when shorter, which
//! is only more cautious), is recorded on the account's gate for every instance, for
//! [`LEARNED_LIMIT_TTL_MS`]; `Remaining: 0` holds the account for one interval. A privately
//! distributed app shares its account's limits with every other app installed there, which is
//! what these headers see and the budget's own count cannot.

use crate::limits::{AccountGate, Failed, GateState, HoldPolicy, LimitError, RateBudget, Take};
use async_trait::async_trait;
use hsbridge_platform::Clock;
use hsbridge_platform::alerts::{Alert, Alerts};
use hsbridge_platform::http::LazyClient;
use hsbridge_vault::{Vault, VaultError};
use hsbridge_verify::Secret;
use http::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// How long a limit learned from HubSpot's headers applies before the configured one is tried
/// again (an account's tier can change).
pub const LEARNED_LIMIT_TTL_MS: u64 = 60 * 60 * 1000;

/// What an answer's rate-limit headers said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    pub max: u32,
    pub interval_ms: u64,
    pub remaining: Option<u32>,
}

impl RateHeaders {
    /// `X-HubSpot-RateLimit-Max` and `-Interval-Milliseconds` (both needed, positive), and
    /// `-Remaining` when present. Anything unreadable: `None`, nothing learned.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let max = u32::try_from(number("x-hubspot-ratelimit-max")?).ok()?;
        let interval_ms = number("x-hubspot-ratelimit-interval-milliseconds")?;
        if max == 0 || interval_ms == 0 {
            return None;
        }
        let remaining = number("x-hubspot-ratelimit-remaining").and_then(|r| u32::try_from(r).ok());
        Some(Self {
            max,
            interval_ms,
            remaining,
        })
    }

    /// The most requests per `window_ms` these headers allow (at least 1).
    pub fn limit_per(&self, window_ms: u64) -> u32 {
        if self.interval_ms <= window_ms {
            return self.max;
        }
        let scaled = u64::from(self.max).saturating_mul(window_ms) / self.interval_ms;
        u32::try_from(scaled).unwrap_or(u32::MAX).max(1)
    }
}

/// Where tokens come from (the vault in production; anything that keeps the contract in tests).
#[async_trait]
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    async fn access_token(&self, hub_id: u64) -> Result<Secret, VaultError>;
    async fn refresh_after_rejection(
        &self,
        hub_id: u64,
        rejected: &Secret,
    ) -> Result<Secret, VaultError>;
}

#[async_trait]
impl TokenSource for Vault {
    async fn access_token(&self, hub_id: u64) -> Result<Secret, VaultError> {
        Vault::access_token(self, hub_id).await
    }
    async fn refresh_after_rejection(
        &self,
        hub_id: u64,
        rejected: &Secret,
    ) -> Result<Secret, VaultError> {
        Vault::refresh_after_rejection(self, hub_id, rejected).await
    }
}

/// Tunables of the HubSpot client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubSpotSettings {
    /// Attempts per call for 5xx and timeouts.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest a call waits in all for budget, holds and backoff.
    pub max_wait: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The rate window, waited out after a `TEN_SECONDLY_ROLLING` 429 without `Retry-After`.
    pub window_ms: u64,
    /// The configured requests per window (the budget's limit): HubSpot's headers only ever
    /// lower it.
    pub limit: u32,
    /// Largest answer read.
    pub max_response_bytes: usize,
}

impl Default for HubSpotSettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_wait: Duration::from_secs(20),
            timeout: Duration::from_secs(5),
            window_ms: 10_000,
            limit: crate::limits::LimitSettings::default().limit,
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// Why a call to HubSpot did not succeed. Never carries a token or a body.
#[derive(Debug, thiserror::Error)]
pub enum HubSpotError {
    #[error("the circuit for account {hub_id} is open until {until_ms}")]
    CircuitOpen { hub_id: u64, until_ms: u64 },
    #[error("HubSpot holds account {hub_id} ({policy}) until {until_ms}")]
    Held {
        hub_id: u64,
        until_ms: u64,
        policy: &'static str,
    },
    #[error("account {hub_id}'s rate budget did not free up in time")]
    BudgetExhausted { hub_id: u64 },
    #[error("no usable token for account {hub_id}")]
    Token {
        hub_id: u64,
        #[source]
        source: VaultError,
    },
    #[error("HubSpot refused the token for account {hub_id} after a refresh")]
    Unauthorized { hub_id: u64 },
    #[error("HubSpot answered {status} for account {hub_id}")]
    Rejected { hub_id: u64, status: u16 },
    #[error("HubSpot was unavailable for account {hub_id} after {attempts} attempts")]
    Unavailable { hub_id: u64, attempts: u32 },
    #[error(transparent)]
    Limits(#[from] LimitError),
}

/// Counters a caller can turn into metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallStats {
    pub requests: u32,
    pub throttled: u32,
    pub refreshed: bool,
    /// Token refreshes that failed (see [`VaultError::is_refresh_failure`]).
    pub refresh_failures: u32,
}

/// A token that could not be had; failed refreshes are counted.
fn token_error(hub_id: u64, source: VaultError, stats: &mut CallStats) -> HubSpotError {
    if source.is_refresh_failure() {
        stats.refresh_failures = stats.refresh_failures.saturating_add(1);
    }
    HubSpotError::Token { hub_id, source }
}

/// The HubSpot API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubSpotApi {
    http: LazyClient,
    base: String,
    tokens: Arc<dyn TokenSource>,
    budget: Arc<dyn RateBudget>,
    gate: Arc<dyn AccountGate>,
    clock: Arc<dyn Clock>,
    settings: HubSpotSettings,
    /// Holds this instance learned of, so its concurrent calls stop at once, not only after
    /// their next read of the shared gate.
    local_holds: Arc<std::sync::Mutex<std::collections::HashMap<u64, u64>>>,
    /// Limits this instance learned from HubSpot's headers: limit and until when.
    local_learned: Arc<std::sync::Mutex<std::collections::HashMap<u64, (u32, u64)>>>,
    /// Where the circuit's openings and closings are raised.
    alerts: Option<Arc<dyn Alerts>>,
}

enum Attempt {
    Done(Option<serde_json::Value>),
    Unauthorized,
    Throttled {
        policy: HoldPolicy,
        retry_after_ms: Option<u64>,
    },
    Transient,
    Rejected(u16),
}

impl HubSpotApi {
    pub fn new(
        base: impl Into<String>,
        tokens: Arc<dyn TokenSource>,
        budget: Arc<dyn RateBudget>,
        gate: Arc<dyn AccountGate>,
        clock: Arc<dyn Clock>,
        settings: HubSpotSettings,
    ) -> Result<Self, reqwest::Error> {
        let timeout = settings.timeout;
        let http = LazyClient::new(move || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(3)))
                .redirect(reqwest::redirect::Policy::none())
        });
        Ok(Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            tokens,
            budget,
            gate,
            clock,
            settings,
            local_holds: Arc::default(),
            local_learned: Arc::default(),
            alerts: None,
        })
    }

    /// A CRM object's properties, or `None` when HubSpot no longer has it.
    pub async fn crm_object(
        &self,
        hub_id: u64,
        object_type: &str,
        object_id: &str,
        properties: &[String],
        stats: &mut CallStats,
    ) -> Result<Option<serde_json::Value>, HubSpotError> {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let props = properties
            .iter()
            .map(|p| enc(p))
            .collect::<Vec<_>>()
            .join(",");
        let path = format!(
            "/crm/v3/objects/{}/{}?properties={props}",
            enc(object_type),
            enc(object_id)
        );
        self.get(hub_id, &path, stats).await
    }

    /// `GET {base}{path_and_query}` with the account's token; `None` on 404.
    pub async fn get(
        &self,
        hub_id: u64,
        path_and_query: &str,
        stats: &mut CallStats,
    ) -> Result<Option<serde_json::Value>, HubSpotError> {
        let deadline = self
            .clock
            .now_ms()
            .saturating_add(ms(self.settings.max_wait));
        let gate = self.gate.state(hub_id).await?;
        self.wait_for_gate(hub_id, &gate, deadline).await?;
        let mut token = self
            .tokens
            .access_token(hub_id)
            .await
            .map_err(|source| token_error(hub_id, source, stats))?;
        let mut transient = 0u32;
        loop {
            self.wait_for_local_hold(hub_id, deadline).await?;
            let lower = self.learned_limit(hub_id, &gate);
            self.wait_for_budget(hub_id, deadline, lower).await?;
            if self.local_hold(hub_id).is_some() {
                // A 429 arrived while the budget was granted: that grant is spent unused
                // (counted, so the budget stays conservative) and a fresh one is taken later.
                continue;
            }
            stats.requests += 1;
            let (attempt, rate) = self.attempt(path_and_query, &token).await;
            if let Some(rate) = rate {
                self.observe(hub_id, &gate, rate).await?;
            }
            match attempt {
                Attempt::Done(value) => {
                    if gate.is_dirty() && self.gate.success(hub_id).await? {
                        tracing::info!(hub_id, "circuit closed");
                        self.raise(Alert::CircuitClosed { portal_id: hub_id }).await;
                    }
                    return Ok(value);
                }
                Attempt::Unauthorized if !stats.refreshed => {
                    stats.refreshed = true;
                    token = self
                        .tokens
                        .refresh_after_rejection(hub_id, &token)
                        .await
                        .map_err(|source| token_error(hub_id, source, stats))?;
                }
                Attempt::Unauthorized => {
                    return Err(self
                        .fail(hub_id, HubSpotError::Unauthorized { hub_id })
                        .await);
                }
                Attempt::Throttled {
                    policy,
                    retry_after_ms,
                } => {
                    stats.throttled += 1;
                    let now = self.clock.now_ms();
                    let until = match (policy, retry_after_ms) {
                        (_, Some(after)) => now.saturating_add(after),
                        (HoldPolicy::TenSecondly, None) => {
                            now.saturating_add(self.settings.window_ms)
                        }
                        (HoldPolicy::Daily, None) => next_utc_midnight(now),
                    };
                    self.local_holds
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(hub_id)
                        .and_modify(|u| *u = (*u).max(until))
                        .or_insert(until);
                    self.gate.hold(hub_id, until, policy).await?;
                    tracing::warn!(
                        hub_id,
                        policy = policy.as_str(),
                        until,
                        "HubSpot rate limit"
                    );
                    if policy == HoldPolicy::Daily || until > deadline {
                        return Err(HubSpotError::Held {
                            hub_id,
                            until_ms: until,
                            policy: policy.as_str(),
                        });
                    }
                    self.sleep_until(until).await;
                }
                Attempt::Transient => {
                    transient += 1;
                    let pause = self.backoff(transient);
                    let past_deadline = self.clock.now_ms().saturating_add(ms(pause)) > deadline;
                    if transient >= self.settings.max_attempts || past_deadline {
                        let error = HubSpotError::Unavailable {
                            hub_id,
                            attempts: transient,
                        };
                        return Err(self.fail(hub_id, error).await);
                    }
                    tokio::time::sleep(pause).await;
                }
                Attempt::Rejected(status) => {
                    return Err(HubSpotError::Rejected { hub_id, status });
                }
            }
        }
    }

    /// Counts a failure on the breaker and hands the error back.
    async fn fail(&self, hub_id: u64, error: HubSpotError) -> HubSpotError {
        match self.gate.failure(hub_id, self.clock.now_ms()).await {
            Ok(Failed { state, opened }) => {
                if let Some(until) = state.open_at(self.clock.now_ms()) {
                    tracing::warn!(hub_id, failures = state.failures, until, "circuit opened");
                    if opened {
                        self.raise(Alert::CircuitOpened {
                            portal_id: hub_id,
                            failures: state.failures,
                            open_until_ms: until,
                        })
                        .await;
                    }
                }
                error
            }
            Err(e) => HubSpotError::Limits(e),
        }
    }

    async fn raise(&self, alert: Alert) {
        if let Some(alerts) = &self.alerts {
            alerts.raise(alert).await;
        }
    }

    /// Raises [`Alert::CircuitOpened`] and [`Alert::CircuitClosed`] on `alerts`.
    pub fn with_alerts(mut self, alerts: Arc<dyn Alerts>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    async fn wait_for_gate(
        &self,
        hub_id: u64,
        gate: &GateState,
        deadline: u64,
    ) -> Result<(), HubSpotError> {
        let now = self.clock.now_ms();
        if let Some(until_ms) = gate.open_at(now) {
            return Err(HubSpotError::CircuitOpen { hub_id, until_ms });
        }
        if let Some((until, policy)) = gate.hold_at(now) {
            if policy == HoldPolicy::Daily || until > deadline {
                return Err(HubSpotError::Held {
                    hub_id,
                    until_ms: until,
                    policy: policy.as_str(),
                });
            }
            self.sleep_until(until).await;
        }
        Ok(())
    }

    /// The end of a hold this instance knows of, if one is in force.
    fn local_hold(&self, hub_id: u64) -> Option<u64> {
        let now = self.clock.now_ms();
        self.local_holds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hub_id)
            .copied()
            .filter(|until| *until > now)
    }

    async fn wait_for_local_hold(&self, hub_id: u64, deadline: u64) -> Result<(), HubSpotError> {
        match self.local_hold(hub_id) {
            Some(until) => {
                if until > deadline {
                    return Err(HubSpotError::Held {
                        hub_id,
                        until_ms: until,
                        policy: HoldPolicy::TenSecondly.as_str(),
                    });
                }
                self.sleep_until(until).await;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The lower limit in force for the account: learned here or read from its gate.
    fn learned_limit(&self, hub_id: u64, gate: &GateState) -> Option<u32> {
        let now = self.clock.now_ms();
        let local = self
            .local_learned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hub_id)
            .filter(|(_, until)| *until > now)
            .map(|(limit, _)| *limit);
        match (local, gate.learned_at(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Shrinks the account's budget to what HubSpot's headers say, when that is lower; holds
    /// the account for an interval when nothing remains.
    async fn observe(
        &self,
        hub_id: u64,
        gate: &GateState,
        rate: RateHeaders,
    ) -> Result<(), HubSpotError> {
        let now = self.clock.now_ms();
        let limit = rate.limit_per(self.settings.window_ms);
        if limit < self.settings.limit {
            let known = self.learned_limit(hub_id, gate);
            let until = now.saturating_add(LEARNED_LIMIT_TTL_MS);
            self.local_learned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(hub_id, (limit, until));
            // One write when the account's limit changes, not one per call.
            if known != Some(limit) {
                tracing::info!(
                    hub_id,
                    limit,
                    window_ms = self.settings.window_ms,
                    configured = self.settings.limit,
                    "HubSpot's rate-limit headers lower the account's budget"
                );
                self.gate.learn(hub_id, limit, until).await?;
            }
        }
        if rate.remaining == Some(0) {
            let until = now.saturating_add(rate.interval_ms);
            self.local_holds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(hub_id)
                .and_modify(|u| *u = (*u).max(until))
                .or_insert(until);
            self.gate
                .hold(hub_id, until, HoldPolicy::TenSecondly)
                .await?;
        }
        Ok(())
    }

    async fn wait_for_budget(
        &self,
        hub_id: u64,
        deadline: u64,
        lower: Option<u32>,
    ) -> Result<(), HubSpotError> {
        loop {
            match self
                .budget
                .take_within(hub_id, self.clock.now_ms(), lower)
                .await?
            {
                Take::Granted => return Ok(()),
                Take::RetryAt(at) if at <= deadline => self.sleep_until(at).await,
                Take::RetryAt(_) => return Err(HubSpotError::BudgetExhausted { hub_id }),
            }
        }
    }

    async fn sleep_until(&self, at_ms: u64) {
        let now = self.clock.now_ms();
        if at_ms > now {
            tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
        }
    }

    /// Full jitter: a random pause between zero and the capped exponential.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .settings
            .base_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.settings.max_backoff);
        let mut bytes = [0u8; 4];
        let fraction = match getrandom::fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
        cap.mul_f64(fraction)
    }

    async fn attempt(
        &self,
        path_and_query: &str,
        token: &Secret,
    ) -> (Attempt, Option<RateHeaders>) {
        let url = format!("{}{}", self.base, path_and_query);
        let Ok(http) = self.http.get() else {
            return (Attempt::Transient, None);
        };
        let response = match http
            .get(&url)
            .bearer_auth(token.expose())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(r) => r,
            Err(_) => return (Attempt::Transient, None),
        };
        let status = response.status();
        let rate = RateHeaders::from_headers(response.headers());
        let retry_after_ms = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| secs.saturating_mul(1000));
        let body = match read_bounded(response, self.settings.max_response_bytes).await {
            Some(body) => body,
            None => return (Attempt::Transient, rate),
        };
        let attempt = match status {
            s if s.is_success() => {
                Attempt::Done(Some(serde_json::from_slice(&body).unwrap_or_default()))
            }
            StatusCode::NOT_FOUND => Attempt::Done(None),
            StatusCode::UNAUTHORIZED => Attempt::Unauthorized,
            StatusCode::TOO_MANY_REQUESTS => Attempt::Throttled {
                policy: policy_of(&body),
                retry_after_ms,
            },
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => Attempt::Transient,
            s => Attempt::Rejected(s.as_u16()),
        };
        (attempt, rate)
    }
}

/// The policy named by a 429's body; an unreadable body is treated as the rolling window.
fn policy_of(body: &[u8]) -> HoldPolicy {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("policyName")?.as_str().map(str::to_owned))
        .filter(|p| p == "DAILY")
        .map_or(HoldPolicy::TenSecondly, |_| HoldPolicy::Daily)
}

async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Option<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

fn next_utc_midnight(now_ms: u64) -> u64 {
    const DAY: u64 = 86_400_000;
    (now_ms / DAY + 1) * DAY
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_headers_are_read_and_scaled_to_the_budgets_window() {
        let mut h = http::HeaderMap::new();
        assert_eq!(RateHeaders::from_headers(&h), None);
        h.insert("x-hubspot-ratelimit-max", "100".parse().unwrap());
        h.insert(
            "x-hubspot-ratelimit-interval-milliseconds",
            "10000".parse().unwrap(),
        );
        h.insert("x-hubspot-ratelimit-remaining", "0".parse().unwrap());
        let r = RateHeaders::from_headers(&h).unwrap();
        assert_eq!((r.max, r.interval_ms, r.remaining), (100, 10_000, Some(0)));
        assert_eq!(r.limit_per(10_000), 100);
        // A longer interval allows proportionally less per window; a shorter one is taken as is.
        let daily_like = RateHeaders {
            max: 50,
            interval_ms: 20_000,
            remaining: None,
        };
        assert_eq!(daily_like.limit_per(10_000), 25);
        let secondly = RateHeaders {
            max: 10,
            interval_ms: 1_000,
            remaining: None,
        };
        assert_eq!(secondly.limit_per(10_000), 10);
        h.insert("x-hubspot-ratelimit-max", "zero".parse().unwrap());
        assert_eq!(RateHeaders::from_headers(&h), None);
        h.insert("x-hubspot-ratelimit-max", "0".parse().unwrap());
        assert_eq!(RateHeaders::from_headers(&h), None);
    }

    #[test]
    fn a_429_body_names_its_policy() {
        let daily = br#"{"status":"error","errorType":"RATE_LIMIT","policyName":"DAILY"}"#;
        let ten =
            br#"{"status":"error","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}"#;
        assert_eq!(policy_of(daily), HoldPolicy::Daily);
        assert_eq!(policy_of(ten), HoldPolicy::TenSecondly);
        assert_eq!(policy_of(b"<html>"), HoldPolicy::TenSecondly);
    }

    #[test]
    fn only_failed_refreshes_count_as_refresh_failures() {
        let mut stats = CallStats::default();
        token_error(1, VaultError::NeedsReinstall { hub_id: 1 }, &mut stats);
        token_error(1, VaultError::RefreshBusy { hub_id: 1 }, &mut stats);
        token_error(1, VaultError::Disconnected { hub_id: 1 }, &mut stats);
        token_error(1, VaultError::NotInstalled { hub_id: 1 }, &mut stats);
        assert_eq!(stats.refresh_failures, 2);
    }

    #[test]
    fn a_daily_hold_ends_at_the_next_utc_midnight() {
        assert_eq!(next_utc_midnight(1), 86_400_000);
        assert_eq!(next_utc_midnight(86_400_000), 2 * 86_400_000);
    }
}
