//! The AWS adapter of the alerts port ([`hsbridge_platform::alerts`]): one `PutEvents` entry on
//! the account's default EventBridge bus per alert, source `hsbridge`.
//!
//! An alert never holds up or fails a delivery: each call is bounded by its own timeout, and a
//! call that fails, times out or has its entry refused is logged (with EventBridge's error code,
//! never the detail) and forgotten. The message it was about is handled exactly as without
//! alerts. The role may put events only with source `hsbridge` on the default bus (template.yaml,
//! `events:source` condition).

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use hsbridge_platform::Clock;
use hsbridge_platform::alerts::{Alert, Alerts, SOURCE};
use std::sync::Arc;
use std::time::Duration;

/// The bus alerts go to: the account's default one.
pub const BUS: &str = "default";

/// Alerts as EventBridge events.
#[derive(Debug, Clone)]
pub struct EventBridgeAlerts {
    client: Client,
    stack: Option<String>,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl EventBridgeAlerts {
    pub fn new(
        client: Client,
        stack: Option<String>,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            stack,
            timeout,
            clock,
        }
    }

    /// The entry for `alert`.
    pub fn entry(&self, alert: &Alert) -> PutEventsRequestEntry {
        let detail = alert.detail(self.stack.as_deref(), self.clock.now_ms());
        PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(alert.detail_type())
            .detail(detail.to_string())
            .event_bus_name(BUS)
            .build()
    }
}

#[async_trait]
impl Alerts for EventBridgeAlerts {
    async fn raise(&self, alert: Alert) {
        let kind = alert.detail_type();
        let call = self.client.put_events().entries(self.entry(&alert)).send();
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(out)) if out.failed_entry_count() == 0 => {
                tracing::info!(alert = kind, "alert sent to EventBridge");
            }
            Ok(Ok(out)) => {
                let code = out
                    .entries()
                    .first()
                    .and_then(|e| e.error_code())
                    .unwrap_or("unknown");
                tracing::error!(alert = kind, code, "EventBridge refused the alert");
            }
            Ok(Err(e)) => {
                let code = e
                    .as_service_error()
                    .and_then(|s| aws_sdk_eventbridge::error::ProvideErrorMetadata::code(s))
                    .unwrap_or("unreachable")
                    .to_owned();
                tracing::error!(
                    alert = kind,
                    code,
                    "the alert could not be sent to EventBridge"
                );
            }
            Err(_) => tracing::error!(
                alert = kind,
                timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                "the alert was not sent: EventBridge did not answer in time"
            ),
        }
    }
}
