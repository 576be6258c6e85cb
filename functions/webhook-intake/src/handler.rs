//! `POST /webhooks/hubspot`: the order of the checks is the security design.
//!
//! 1. size bound (413);
//! 2. signature over the public URI and the raw bytes (401), then the query string: the one
//!    configured for the target URL (none by default), else 500. HubSpot signs `hubspot.fetch`
//!    requests with the same client secret, and a card's fetch aimed here with an array body
//!    must not pass for a webhook of the portal it names. A signed request with another query
//!    is either that or a target URL configured in HubSpot with a query this stack was not told
//!    about: a fault on our side, so 5xx, which HubSpot retries while the setting is fixed, never
//!    a 4xx that would drop the events;
//! 3. parse (400);
//! 4. only accounts with an active installation;
//! 5. claim each event; 6. queue the claimed ones; 7. complete the claims; then 2xx.
//!
//! Any failure before the queue confirmed releases the claims and answers 5xx, so HubSpot
//! retries and nothing is swallowed by a dedupe record.

use crate::config::IntakeSettings;
use crate::dedupe::{Claim, Deduper, Seen};
use crate::events::{BatchError, WebhookEvent, parse_batch};
use crate::queue::{EventQueue, envelope};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hsbridge_platform::Clock;
use hsbridge_platform::accounts::{AccountDirectory, AccountStatus};
use hsbridge_platform::event_log::{IntakeEntry, retention_ms};
use hsbridge_platform::metrics::{MetricSet, Metrics};
use hsbridge_platform::request::{public_uri, request_id};
use hsbridge_platform::secrets::SecretSource;
use hsbridge_verify::{
    Hints, Policy, PublicBase, SecretSet, SignatureVersion, SignedRequest, VerifyError, explain,
    verify,
};
use http::StatusCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const WEBHOOK_PATH: &str = "/webhooks/hubspot";

/// How often to look again at events another request is handing on.
const IN_PROGRESS_POLL: Duration = Duration::from_millis(100);
/// Time kept back from the budget to release claims and answer: every step before the answer
/// ends by `started + budget - BUDGET_MARGIN`, so a slow dependency still leaves this much.
const BUDGET_MARGIN: Duration = Duration::from_millis(300);
/// Of the margin, the part a release of claims may take; the rest is for the answer.
const RELEASE_TIME: Duration = Duration::from_millis(250);

/// Everything a request needs; built once per cold start.
#[derive(Debug, Clone)]
pub struct IntakeState {
    pub settings: IntakeSettings,
    pub secrets: Arc<dyn SecretSource>,
    pub accounts: Arc<dyn AccountDirectory>,
    pub deduper: Arc<dyn Deduper>,
    pub queue: Arc<dyn EventQueue>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
}

#[derive(Debug)]
struct Shared {
    state: IntakeState,
    policy: Policy,
}

/// The intake's Router: served by lambda_http, by a local server, or by tests with `oneshot`.
pub fn app(state: IntakeState) -> Router {
    let versions: &[SignatureVersion] = if state.settings.allow_v1 {
        &[SignatureVersion::V3, SignatureVersion::V1]
    } else {
        &[SignatureVersion::V3]
    };
    // The window was validated when the configuration was read; fall back to HubSpot's.
    let policy = Policy::accepting(versions)
        .with_window_ms(state.settings.signature_window_ms)
        .unwrap_or_else(|_| Policy::accepting(versions));
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .with_state(Arc::new(Shared { state, policy }))
}

/// The answer HubSpot gets when the batch is safely handled.
#[derive(Debug, Default)]
struct Ack {
    accepted: usize,
    duplicates: usize,
    ignored: usize,
}

/// Why a request was not acknowledged. Bodies are fixed: no internal detail leaves.
#[derive(Debug)]
enum Rejection {
    TooLarge,
    Unreadable,
    Unauthorized,
    BadBatch(BatchError),
    UnexpectedQuery,
    Unavailable,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Rejection::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "payload_too_large"}),
            ),
            Rejection::Unreadable => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "reason": "body could not be read"}),
            ),
            Rejection::Unauthorized => (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"})),
            Rejection::BadBatch(e) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "reason": e.to_string()}),
            ),
            Rejection::UnexpectedQuery => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "unexpected_query"}),
            ),
            Rejection::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "unavailable"}),
            ),
        };
        (status, axum::Json(body)).into_response()
    }
}

impl IntoResponse for Ack {
    fn into_response(self) -> Response {
        axum::Json(json!({
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
        }))
        .into_response()
    }
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let owner = claim_owner(&request_id(&parts), shared.state.clock.now_ms());
    let span = tracing::info_span!("webhook", request_id = %request_id(&parts));
    let mut metrics = shared.state.metrics.set();
    let budget = shared.state.settings.request_budget;
    let outcome = tokio::time::timeout(
        budget,
        process(&shared, &parts, body, &owner, started, &mut metrics).instrument(span.clone()),
    )
    .await;
    let response = match outcome {
        Ok(Ok(ack)) => ack.into_response(),
        Ok(Err(rejection)) => rejection.into_response(),
        Err(_) => {
            // Claims taken so far stay in progress until their short TTL passes; HubSpot's
            // retry then takes them over.
            span.in_scope(|| tracing::error!("request budget exhausted; answering 503"));
            metrics.count("HandOffFailed", 1);
            Rejection::Unavailable.into_response()
        }
    };
    metrics.millis("Latency", started.elapsed().as_millis());
    shared
        .state
        .metrics
        .flush(metrics, shared.state.clock.now_ms());
    response
}

/// A claim owner unique to this request, even locally where there is no Lambda request id.
fn claim_owner(request_id: &str, now_ms: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{request_id}:{now_ms}:{}:{n}", std::process::id())
}

fn rejection_metric(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::MissingHeader(_) | VerifyError::DuplicateHeader(_) => "RejectedMissingHeader",
        VerifyError::MalformedTimestamp
        | VerifyError::TimestampTooOld { .. }
        | VerifyError::TimestampInFuture { .. } => "RejectedTimestamp",
        VerifyError::BadEncoding => "RejectedEncoding",
        VerifyError::Mismatch => "RejectedMismatch",
        VerifyError::VersionNotAllowed(_) | VerifyError::UnknownVersion => "RejectedVersion",
    }
}

async fn process(
    shared: &Shared,
    parts: &http::request::Parts,
    body: axum::body::Body,
    owner: &str,
    started: Instant,
    metrics: &mut MetricSet,
) -> Result<Ack, Rejection> {
    let state = &shared.state;
    let settings = &state.settings;

    // 1. Size, before reading: the declared length, then the actual bytes.
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > settings.max_body_bytes as u64) {
        metrics.count("RejectedTooLarge", 1);
        tracing::warn!(check = "body_size", "webhook rejected");
        return Err(Rejection::TooLarge);
    }
    let bytes = match Limited::new(body, settings.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            metrics.count("RejectedTooLarge", 1);
            tracing::warn!(check = "body_size", "webhook rejected");
            return Err(Rejection::TooLarge);
        }
        Err(_) => return Err(Rejection::Unreadable),
    };

    // 2. Verify before anything looks at the content.
    let app = state.secrets.hubspot_app().await.map_err(|e| {
        tracing::error!(error = %e, "client secrets unavailable");
        Rejection::Unavailable
    })?;
    let uri = public_uri(parts, settings.public_base.as_ref()).map_err(|e| {
        // Every 401 counts towards the rejection alarm: HubSpot does not retry a 401.
        metrics.count("Rejected", 1);
        metrics.count("RejectedMissingHeader", 1);
        tracing::warn!(check = "public_uri", reason = %e, "webhook rejected");
        Rejection::Unauthorized
    })?;
    let now_ms = state.clock.now_ms();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        uri: &uri,
        body: &bytes,
        headers: &parts.headers,
    };
    let verified = verify(&signed, &app.secrets, &shared.policy, now_ms).map_err(|e| {
        metrics.count("Rejected", 1);
        metrics.count(rejection_metric(&e), 1);
        // The error names the failed check only: never the secret, signature or body.
        tracing::warn!(check = %e, "webhook rejected");
        if settings.explain_rejections && e == VerifyError::Mismatch {
            explain_mismatch(
                parts,
                &signed,
                &app.secrets,
                &shared.policy,
                now_ms,
                settings,
            );
        }
        Rejection::Unauthorized
    })?;
    let query = parts.uri.query().filter(|q| !q.is_empty());
    if query != settings.expected_query.as_deref() {
        metrics.count("RejectedQuery", 1);
        tracing::error!(
            check = "query_string",
            "signed request with a query string this route does not expect refused: HubSpot sends none on webhooks; if the app's webhook targetUrl has one, set HSBRIDGE_WEBHOOK_QUERY to it"
        );
        return Err(Rejection::UnexpectedQuery);
    }
    metrics.count(
        match verified.secret {
            hsbridge_verify::SecretSlot::Current => "SecretCurrent",
            hsbridge_verify::SecretSlot::Previous => "SecretPrevious",
        },
        1,
    );

    // 3. Parse.
    let events = parse_batch(&bytes, settings.max_events).map_err(|e| {
        metrics.count("RejectedMalformed", 1);
        tracing::warn!(reason = %e, "webhook batch refused");
        Rejection::BadBatch(e)
    })?;

    // A v1 signature has no timestamp: a captured v1 request could be replayed forever, so
    // nothing older than the dedupe horizon (which would no longer be recognised) is taken.
    if verified.version != SignatureVersion::V3 {
        let horizon_ms = u64::try_from(settings.dedupe_horizon.as_millis()).unwrap_or(u64::MAX);
        if events
            .iter()
            .any(|e| e.occurred_at.saturating_add(horizon_ms) < now_ms)
        {
            metrics.count("Rejected", 1);
            metrics.count("RejectedTimestamp", 1);
            tracing::warn!(
                check = "v1_event_older_than_dedupe_horizon",
                "webhook rejected"
            );
            return Err(Rejection::Unauthorized);
        }
    }

    // Every step below ends by this deadline, which keeps the margin for releasing claims and
    // answering however slow a dependency is.
    let deadline = started + settings.request_budget.saturating_sub(BUDGET_MARGIN);

    // 4. Only accounts with an installation: active, or needing a reinstall (its refresh token
    // died, but the app is still installed and HubSpot still signs its events, which are
    // delivered without enrichment). Events of disconnected or unknown accounts are ignored.
    // What the dedupe table says of each event is read at the same time (it settles duplicates
    // without a write; see dedupe.rs).
    let (statuses, seen) = tokio::join!(
        account_statuses(state.accounts.as_ref(), &events, deadline),
        dedupe_seen(state, &events, owner, deadline),
    );
    let statuses = statuses?;
    let (active, inactive): (Vec<&WebhookEvent>, Vec<&WebhookEvent>) = events
        .iter()
        .partition(|e| is_installed(statuses.get(&e.portal_id)));
    let mut ack = Ack {
        ignored: inactive.len(),
        ..Ack::default()
    };
    metrics.count("Ignored", ack.ignored);
    log_ignored(&inactive, &statuses, metrics);

    // The same event twice in one batch is handed on once. Events the read found queued
    // before are duplicates, and those another request holds are waited on, without a claim.
    let mut distinct = HashSet::new();
    let mut pending: Vec<&WebhookEvent> = Vec::with_capacity(active.len());
    let mut held: Vec<&WebhookEvent> = Vec::new();
    for e in active {
        let key = e.dedupe_key();
        let found = seen.get(&key).copied();
        if !distinct.insert(key) {
            ack.duplicates += 1;
            continue;
        }
        match found {
            Some(Seen::Completed) => ack.duplicates += 1,
            Some(Seen::Held) => held.push(e),
            Some(Seen::Claimable) | None => pending.push(e),
        }
    }

    // 5–7. Claim, hand on, complete; wait (bounded) for events another request is handing on.
    let version = verified.version.as_str();
    // Lambda's trace of this invocation travels with each message (never a client's header).
    let trace = hsbridge_platform::trace::of_invocation(parts).map(|t| t.header());
    loop {
        let round = if pending.is_empty() {
            Vec::new()
        } else {
            claim_all(state, &pending, owner, now_ms, deadline).await?
        };
        let mut claimed = Vec::new();
        let mut in_progress = std::mem::take(&mut held);
        for (event, claim) in round {
            match claim {
                Claim::Claimed => claimed.push(event),
                Claim::Completed => ack.duplicates += 1,
                Claim::InProgress => in_progress.push(event),
            }
        }
        if !claimed.is_empty() {
            let handed = HandOff {
                owner,
                received_at_ms: now_ms,
                version,
                trace: trace.as_deref(),
                deadline,
            };
            hand_off(state, &claimed, &handed, metrics).await?;
            ack.accepted += claimed.len();
        }
        if in_progress.is_empty() {
            break;
        }
        if Instant::now() + IN_PROGRESS_POLL >= deadline {
            // Whoever holds these will complete or release them; HubSpot's retry settles it.
            tracing::warn!(
                in_progress = in_progress.len(),
                "events still being handed on by another request; answering 503"
            );
            metrics.count("HandOffFailed", 1);
            return Err(Rejection::Unavailable);
        }
        tokio::time::sleep(IN_PROGRESS_POLL).await;
        pending = in_progress;
    }

    metrics.count("Accepted", ack.accepted);
    metrics.count("Duplicate", ack.duplicates);
    let portal_ids: HashSet<u64> = events.iter().map(|e| e.portal_id).collect();
    tracing::info!(
        portal_id = portal_ids.iter().next().copied().unwrap_or_default(),
        portals = portal_ids.len(),
        events = events.len(),
        accepted = ack.accepted,
        duplicates = ack.duplicates,
        ignored = ack.ignored,
        version,
        secret = verified.secret.as_str(),
        "webhook accepted"
    );
    Ok(ack)
}

/// After the normal check failed with a mismatch: one debug line naming the known mangling
/// that explains it (never the secret or the signature). Skipped unless debug logging is on.
fn explain_mismatch(
    parts: &http::request::Parts,
    signed: &SignedRequest<'_>,
    secrets: &SecretSet,
    policy: &Policy,
    now_ms: u64,
    settings: &IntakeSettings,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let base: Option<&PublicBase> = settings.public_base.as_ref();
    // With a configured base, the URL rebuilt from Host is the other candidate.
    let host_url = base.and_then(|_| public_uri(parts, None).ok());
    let hints = Hints {
        host_url: host_url.as_deref(),
        ..Hints::default()
    };
    let explanation = explain(signed, secrets, policy, now_ms, &hints);
    match explanation.mangling() {
        Some(m) => tracing::debug!(
            mangling = m.kind.as_str(),
            secret = m.slot.as_str(),
            "signature mismatch explained: {m}"
        ),
        None => tracing::debug!(
            mangling = "none",
            "signature mismatch: no known mangling explains it"
        ),
    }
}

/// Whether an account's events are handed on: the app is installed in it.
fn is_installed(status: Option<&AccountStatus>) -> bool {
    matches!(
        status,
        Some(AccountStatus::Active | AccountStatus::NeedsReinstall)
    )
}

/// Ignored events, counted and logged per reason (never the event's content).
fn log_ignored(
    ignored: &[&WebhookEvent],
    statuses: &HashMap<u64, AccountStatus>,
    metrics: &mut MetricSet,
) {
    let mut by_reason: HashMap<(u64, &'static str), usize> = HashMap::new();
    for e in ignored {
        let reason = match statuses.get(&e.portal_id) {
            Some(AccountStatus::Disconnected) => "disconnected",
            _ => "unknown",
        };
        *by_reason.entry((e.portal_id, reason)).or_default() += 1;
    }
    for ((portal_id, reason), events) in by_reason {
        metrics.count(
            if reason == "disconnected" {
                "IgnoredDisconnected"
            } else {
                "IgnoredUnknown"
            },
            events,
        );
        tracing::info!(
            portal_id,
            reason,
            events,
            "events ignored: the account is not installed"
        );
    }
}

async fn account_statuses(
    accounts: &dyn AccountDirectory,
    events: &[WebhookEvent],
    deadline: Instant,
) -> Result<HashMap<u64, AccountStatus>, Rejection> {
    let portals: Vec<u64> = events
        .iter()
        .map(|e| e.portal_id)
        .collect::<HashSet<u64>>()
        .into_iter()
        .collect();
    match tokio::time::timeout_at(deadline.into(), accounts.statuses(&portals)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "account status unavailable");
            Err(Rejection::Unavailable)
        }
        Err(_) => {
            tracing::error!("account status not read within the request budget");
            Err(Rejection::Unavailable)
        }
    }
}

/// What the dedupe table says of each event before any claim, by dedupe key. Only ever spares
/// writes: when the read fails or is late, every event is left to the claim.
async fn dedupe_seen(
    state: &IntakeState,
    events: &[WebhookEvent],
    owner: &str,
    deadline: Instant,
) -> HashMap<String, Seen> {
    let keys: Vec<String> = events
        .iter()
        .map(WebhookEvent::dedupe_key)
        .collect::<HashSet<String>>()
        .into_iter()
        .collect();
    let now_ms = state.clock.now_ms();
    match tokio::time::timeout_at(deadline.into(), state.deduper.seen(&keys, owner, now_ms)).await {
        Ok(Ok(seen)) if seen.len() == keys.len() => keys.into_iter().zip(seen).collect(),
        Ok(Ok(_)) => HashMap::new(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "dedupe records not read; the claims decide");
            HashMap::new()
        }
        Err(_) => HashMap::new(),
    }
}

/// The event-log fields of an event's dedupe record (see dedupe.rs): identifiers, type and
/// times, never its content.
fn log_entry(state: &IntakeState, event: &WebhookEvent, received_at_ms: u64) -> IntakeEntry {
    IntakeEntry {
        key: event.dedupe_key(),
        portal_id: event.portal_id,
        subscription_type: event.subscription_type.clone(),
        received_at_ms,
        queued_at_ms: None,
        log_until_ms: received_at_ms
            .saturating_add(retention_ms(state.settings.event_log_retention)),
    }
}

async fn claim_all<'e>(
    state: &IntakeState,
    events: &[&'e WebhookEvent],
    owner: &str,
    received_at_ms: u64,
    deadline: Instant,
) -> Result<Vec<(&'e WebhookEvent, Claim)>, Rejection> {
    let now_ms = state.clock.now_ms();
    let in_progress_ms =
        u64::try_from(state.settings.in_progress_ttl.as_millis()).unwrap_or(u64::MAX);
    let entries: Vec<IntakeEntry> = events
        .iter()
        .map(|e| log_entry(state, e, received_at_ms))
        .collect();
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    let claimed = tokio::time::timeout_at(
        deadline.into(),
        state.deduper.claim(&entries, owner, now_ms, in_progress_ms),
    )
    .await;
    match claimed {
        Ok(Ok(claims)) if claims.len() == keys.len() => {
            return Ok(events.iter().copied().zip(claims).collect());
        }
        Ok(Ok(claims)) => tracing::error!(
            keys = keys.len(),
            answers = claims.len(),
            "dedupe table answered for a different number of events"
        ),
        Ok(Err(err)) => tracing::error!(error = %err, "dedupe table unavailable"),
        Err(_) => tracing::error!("dedupe claims did not finish within the request budget"),
    }
    // Some may be ours already (or written unseen): releasing all of them is harmless, a
    // release only removes a record still in progress under this owner.
    release_keys(state, &keys, owner).await;
    Err(Rejection::Unavailable)
}

/// What every message of one hand-off shares.
#[derive(Debug, Clone, Copy)]
struct HandOff<'a> {
    owner: &'a str,
    /// When the request was verified: the envelope's and the event log's reception time.
    received_at_ms: u64,
    version: &'static str,
    /// The invocation's X-Ray trace header, canonical.
    trace: Option<&'a str>,
    deadline: Instant,
}

async fn hand_off(
    state: &IntakeState,
    claimed: &[&WebhookEvent],
    handed: &HandOff<'_>,
    metrics: &mut MetricSet,
) -> Result<(), Rejection> {
    let HandOff {
        owner,
        received_at_ms,
        version,
        trace,
        deadline,
    } = *handed;
    // The envelope's reception time is the log's: both records of the event sort by it.
    let messages: Vec<_> = claimed
        .iter()
        .map(|e| envelope(e, received_at_ms, version).traced(trace))
        .collect();
    let keys: Vec<String> = messages.iter().map(|m| m.dedupe_key.clone()).collect();
    let failure = match tokio::time::timeout_at(deadline.into(), state.queue.send(&messages)).await
    {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("the request budget ran out".to_owned()),
    };
    if let Some(reason) = failure {
        tracing::error!(
            reason,
            events = claimed.len(),
            "hand-off to the events queue failed"
        );
        metrics.count("HandOffFailed", 1);
        release_keys(state, &keys, owner).await;
        return Err(Rejection::Unavailable);
    }
    let horizon_ms = u64::try_from(state.settings.dedupe_horizon.as_millis()).unwrap_or(u64::MAX);
    let completed_at = state.clock.now_ms();
    let entries: Vec<IntakeEntry> = claimed
        .iter()
        .map(|e| IntakeEntry {
            queued_at_ms: Some(completed_at),
            ..log_entry(state, e, received_at_ms)
        })
        .collect();
    // The events are queued: acknowledging is right whatever happens here. Records left in
    // progress expire after the in-progress TTL; a later redelivery is then queued again and
    // carries the same dedupe key, which consumers use to drop it.
    match tokio::time::timeout_at(
        deadline.into(),
        state
            .deduper
            .complete(&entries, owner, completed_at, horizon_ms),
    )
    .await
    {
        Ok(Ok(0)) => {}
        Ok(Ok(failures)) => tracing::warn!(
            failures,
            "events queued but their dedupe records not completed"
        ),
        Ok(Err(e)) => tracing::warn!(
            error = %e,
            events = keys.len(),
            "events queued but their dedupe records not completed"
        ),
        Err(_) => tracing::warn!(
            events = keys.len(),
            "events queued but their dedupe records not completed within the request budget"
        ),
    }
    Ok(())
}

/// Releases this owner's claims, within the time kept back for it.
async fn release_keys(state: &IntakeState, keys: &[String], owner: &str) {
    match tokio::time::timeout(RELEASE_TIME, state.deduper.release(keys, owner)).await {
        Ok(Ok(0)) => {}
        // They expire after the in-progress TTL; HubSpot's retry then takes them.
        Ok(Ok(failures)) => tracing::warn!(failures, "claims not released; they expire shortly"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "claims not released; they expire shortly");
        }
        Err(_) => tracing::warn!("claims not released in time; they expire shortly"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::InMemoryDeduper;
    use crate::queue::InMemoryEventQueue;
    use hsbridge_platform::ManualClock;
    use hsbridge_platform::accounts::InMemoryAccountDirectory;
    use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
    use hsbridge_verify::{Secret, sign_v3};
    use tower::ServiceExt;

    const NOW: u64 = 1_700_000_000_000;

    fn state(explain_rejections: bool) -> IntakeState {
        let accounts = InMemoryAccountDirectory::default();
        accounts.set(62515, AccountStatus::Active);
        IntakeState {
            settings: IntakeSettings {
                explain_rejections,
                ..IntakeSettings::default()
            },
            secrets: Arc::new(StaticSecretSource(HubSpotApp {
                client_id: "id".into(),
                secrets: SecretSet::new(Secret::new("intake-secret")).unwrap(),
            })),
            accounts: Arc::new(accounts),
            deduper: Arc::new(InMemoryDeduper::default()),
            queue: Arc::new(InMemoryEventQueue::default()),
            clock: Arc::new(ManualClock::at(NOW)),
            metrics: Metrics::capturing("hsbridge", "webhook-intake"),
        }
    }

    /// Collects the `mangling` field of every event; enables every level.
    #[derive(Debug, Default, Clone)]
    struct Manglings(Arc<std::sync::Mutex<Vec<String>>>);

    struct Field<'a>(&'a mut Option<String>);

    impl tracing::field::Visit for Field<'_> {
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            if field.name() == "mangling" {
                *self.0 = Some(value.to_owned());
            }
        }
        fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
    }

    impl tracing::Subscriber for Manglings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut found = None;
            event.record(&mut Field(&mut found));
            if let Some(m) = found {
                self.0.lock().unwrap().push(m);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    async fn post_with_trailing_slash(explain_rejections: bool) -> StatusCode {
        let body = r#"[{"eventId":1,"subscriptionId":2,"portalId":62515,"occurredAt":1700000000000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":3}]"#;
        let ts = NOW.to_string();
        // Signed for the URL without the trailing slash the request arrives with.
        let signature = sign_v3(
            &Secret::new("intake-secret"),
            "POST",
            "https://hooks.example.com/webhooks/hubspot",
            body.as_bytes(),
            &ts,
        );
        let request = http::Request::post(format!("{WEBHOOK_PATH}/"))
            .header("host", "hooks.example.com")
            .header("x-hubspot-signature-v3", &signature)
            .header("x-hubspot-request-timestamp", &ts)
            .body(axum::body::Body::from(body))
            .unwrap();
        let app = Router::new()
            .route(&format!("{WEBHOOK_PATH}/"), post(receive))
            .with_state(Arc::new(Shared {
                state: state(explain_rejections),
                policy: Policy::v3_only(),
            }));
        app.oneshot(request).await.unwrap().status()
    }

    /// The embedded deduper, each call taking `delay` first (a slow table, not a failing one).
    #[derive(Debug, Default)]
    struct SlowDeduper {
        inner: InMemoryDeduper,
        delay: Duration,
    }

    #[async_trait::async_trait]
    impl Deduper for SlowDeduper {
        async fn claim(
            &self,
            events: &[IntakeEntry],
            owner: &str,
            now_ms: u64,
            in_progress_ms: u64,
        ) -> Result<Vec<Claim>, crate::dedupe::DedupeError> {
            tokio::time::sleep(self.delay).await;
            self.inner
                .claim(events, owner, now_ms, in_progress_ms)
                .await
        }
        async fn complete(
            &self,
            events: &[IntakeEntry],
            owner: &str,
            now_ms: u64,
            horizon_ms: u64,
        ) -> Result<usize, crate::dedupe::DedupeError> {
            tokio::time::sleep(self.delay).await;
            self.inner.complete(events, owner, now_ms, horizon_ms).await
        }
        async fn release(
            &self,
            keys: &[String],
            owner: &str,
        ) -> Result<usize, crate::dedupe::DedupeError> {
            tokio::time::sleep(self.delay).await;
            self.inner.release(keys, owner).await
        }
        async fn state(
            &self,
            key: &str,
            now_ms: u64,
        ) -> Result<crate::dedupe::RecordState, crate::dedupe::DedupeError> {
            self.inner.state(key, now_ms).await
        }
    }

    fn signed_batch(events: usize) -> http::Request<axum::body::Body> {
        let batch: Vec<serde_json::Value> = (0..events)
            .map(|i| {
                json!({"eventId": i, "subscriptionId": 2, "portalId": 62515,
                    "occurredAt": NOW, "subscriptionType": "contact.creation",
                    "attemptNumber": 0, "objectId": 3})
            })
            .collect();
        let body = serde_json::Value::Array(batch).to_string();
        let ts = NOW.to_string();
        let signature = sign_v3(
            &Secret::new("intake-secret"),
            "POST",
            "https://hooks.example.com/webhooks/hubspot",
            body.as_bytes(),
            &ts,
        );
        http::Request::post(WEBHOOK_PATH)
            .header("host", "hooks.example.com")
            .header("x-hubspot-signature-v3", &signature)
            .header("x-hubspot-request-timestamp", &ts)
            .body(axum::body::Body::from(body))
            .unwrap()
    }

    /// The intake's request budget in these tests.
    const BUDGET: Duration = Duration::from_millis(1_000);

    /// A 100-event batch to an intake with a 1 s budget whose dedupe calls each take `delay`,
    /// on a paused clock: the status, how much (virtual) time the answer took and how many
    /// events were queued. Paused, the clock moves only when every task waits on a timer, and
    /// then straight to the next one, so the time taken is what the timers say, not how busy
    /// the machine is.
    async fn with_slow_dedupe(delay: Duration) -> (StatusCode, Duration, usize) {
        let queue = Arc::new(InMemoryEventQueue::default());
        let mut s = state(false);
        s.settings.request_budget = BUDGET;
        s.deduper = Arc::new(SlowDeduper {
            delay,
            ..SlowDeduper::default()
        });
        s.queue = queue.clone();
        let (app, request) = (app(s), signed_batch(100));
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        let response = app.oneshot(request).await.unwrap();
        (response.status(), started.elapsed(), queue.len())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dedupe_table_slower_than_the_budget_gets_a_503_within_it_and_nothing_is_queued() {
        // Each claim would take 5 s: the claims are cut at the work deadline (the budget less
        // its margin, 0.7 s) and their release at its share of the margin (0.25 s).
        let (status, took, queued) = with_slow_dedupe(Duration::from_secs(5)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            took >= BUDGET - BUDGET_MARGIN,
            "answered after {took:?}, before the claims' deadline"
        );
        // Strictly inside: the budget's own timeout would answer at 1 s.
        assert!(took < BUDGET, "answered after {took:?}");
        assert_eq!(queued, 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_completion_slower_than_the_budget_still_acknowledges_the_queued_events_in_time() {
        // Claims take 0.45 s; the completion would end at 0.9 s, past the 0.7 s of work, and is
        // cut there.
        let (status, took, queued) = with_slow_dedupe(Duration::from_millis(450)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            took < 2 * Duration::from_millis(450),
            "answered after {took:?}: the completion was waited for, not cut at the deadline"
        );
        assert!(took >= BUDGET - BUDGET_MARGIN, "answered after {took:?}");
        assert_eq!(queued, 100);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_mismatch_is_still_refused_with_401_when_rejections_are_explained() {
        let logs = Manglings::default();
        let _guard = tracing::subscriber::set_default(logs.clone());
        assert_eq!(
            post_with_trailing_slash(true).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            *logs.0.lock().unwrap(),
            vec!["trailing-slash-added".to_owned()]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn nothing_is_explained_when_the_switch_is_off() {
        let logs = Manglings::default();
        let _guard = tracing::subscriber::set_default(logs.clone());
        assert_eq!(
            post_with_trailing_slash(false).await,
            StatusCode::UNAUTHORIZED
        );
        assert!(logs.0.lock().unwrap().is_empty());
    }
}
