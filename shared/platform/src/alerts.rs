//! Alerts people can route: a few state changes an operator acts on, each one event on the
//! account's default EventBridge bus (source `hsbridge`), so a rule can send it to chat or
//! paging without anyone parsing logs. The shapes are documented in `docs/alerts.md`.
//!
//! Raising an alert never fails the work that raised it: an adapter that cannot deliver one
//! logs that and returns. No alert carries an event body, a property value or a token; only
//! identifiers, types, counts and times.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Mutex;

/// Every alert's `source`.
pub const SOURCE: &str = "hsbridge";
/// The version of the `detail` documents.
pub const DETAIL_SCHEMA: &str = "hsbridge.alert.v1";

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// HubSpot refused the account's refresh token: someone must install the app again in that
    /// HubSpot account. Its events are still delivered, unenriched.
    NeedsReinstall { portal_id: u64 },
    /// A queued event failed its last delivery the queue allows (`maxReceiveCount`): it moves to
    /// the dead-letter queue when its visibility timeout ends.
    DeadLettered {
        message_id: String,
        /// `None` when the message is not an hsbridge envelope.
        portal_id: Option<u64>,
        dedupe_key: Option<String>,
        subscription_type: Option<String>,
        receive_count: u32,
        /// Why the last delivery failed (`protected_api`, `hubspot`, `circuit_open`,
        /// `accounts`, `malformed`).
        failure: &'static str,
        /// The event's trace (32 hex), when it has one.
        trace_id: Option<String>,
    },
    /// The account's calls to HubSpot failed often enough that the circuit opened: its events
    /// wait in the queue until it closes.
    CircuitOpened {
        portal_id: u64,
        failures: u32,
        open_until_ms: u64,
    },
    /// A call to HubSpot for the account succeeded again after its circuit had opened.
    CircuitClosed { portal_id: u64 },
}

impl Alert {
    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            Alert::NeedsReinstall { .. } => "Account Needs Reinstall",
            Alert::DeadLettered { .. } => "Event Dead-Lettered",
            Alert::CircuitOpened { .. } => "Circuit Opened",
            Alert::CircuitClosed { .. } => "Circuit Closed",
        }
    }

    /// The EventBridge `detail`: the alert, the stack it came from and when.
    pub fn detail(&self, stack: Option<&str>, at_ms: u64) -> Value {
        let mut detail = match self {
            Alert::NeedsReinstall { portal_id } => json!({ "portalId": portal_id }),
            Alert::DeadLettered {
                message_id,
                portal_id,
                dedupe_key,
                subscription_type,
                receive_count,
                failure,
                trace_id,
            } => json!({
                "messageId": message_id,
                "portalId": portal_id,
                "dedupeKey": dedupe_key,
                "subscriptionType": subscription_type,
                "receiveCount": receive_count,
                "failure": failure,
                "traceId": trace_id,
            }),
            Alert::CircuitOpened {
                portal_id,
                failures,
                open_until_ms,
            } => json!({
                "portalId": portal_id,
                "failures": failures,
                "openUntilMs": open_until_ms,
            }),
            Alert::CircuitClosed { portal_id } => json!({ "portalId": portal_id }),
        };
        if let Value::Object(map) = &mut detail {
            map.insert("schema".into(), DETAIL_SCHEMA.into());
            map.insert("stack".into(), stack.map_or(Value::Null, Value::from));
            map.insert("atMs".into(), at_ms.into());
        }
        detail
    }
}

/// Port: where alerts go. Never fails: an adapter that cannot deliver logs it.
#[async_trait]
pub trait Alerts: Send + Sync + std::fmt::Debug {
    async fn raise(&self, alert: Alert);
}

/// Embedded adapter: alerts are logged (one line each, at `warn`) and go nowhere else.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggedAlerts;

#[async_trait]
impl Alerts for LoggedAlerts {
    async fn raise(&self, alert: Alert) {
        tracing::warn!(
            alert = alert.detail_type(),
            detail = %alert.detail(None, 0),
            "alert (not sent anywhere: HSBRIDGE_ALERTS is off)"
        );
    }
}

/// Embedded adapter that keeps what was raised (for `hsbridge dev` and tests).
#[derive(Debug, Default)]
pub struct CapturedAlerts(Mutex<Vec<Alert>>);

impl CapturedAlerts {
    pub fn raised(&self) -> Vec<Alert> {
        self.0.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Alerts for CapturedAlerts {
    async fn raise(&self, alert: Alert) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_lettered_alert_names_the_event_and_never_its_body() {
        let alert = Alert::DeadLettered {
            message_id: "m-1".into(),
            portal_id: Some(62515),
            dedupe_key: Some("62515#1#contact.creation#1".into()),
            subscription_type: Some("contact.creation".into()),
            receive_count: 5,
            failure: "protected_api",
            trace_id: None,
        };
        assert_eq!(alert.detail_type(), "Event Dead-Lettered");
        assert_eq!(
            alert.detail(Some("hsbridge-prod"), 1_700_000_000_000),
            json!({
                "schema": "hsbridge.alert.v1", "stack": "hsbridge-prod", "atMs": 1_700_000_000_000_u64,
                "messageId": "m-1", "portalId": 62515, "dedupeKey": "62515#1#contact.creation#1",
                "subscriptionType": "contact.creation", "receiveCount": 5,
                "failure": "protected_api", "traceId": null
            })
        );
    }
}
