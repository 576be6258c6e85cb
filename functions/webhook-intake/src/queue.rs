//! Handing accepted events on to the API caller, durably, before HubSpot is answered.
//!
//! The message schema is versioned (`schema: "hsbridge.webhook-event.v1"`): the API caller and
//! anything else reading the queue can rely on it.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use serde::Serialize;
use serde_json::value::RawValue;
use std::sync::Mutex;

pub const MESSAGE_SCHEMA: &str = "hsbridge.webhook-event.v1";
/// SQS takes at most 10 entries per batch call.
const SQS_BATCH_ENTRIES: usize = 10;
/// And at most 256 KiB per batch call, all entries together (the conservative, long-standing limit).
const SQS_BATCH_BYTES: usize = 256 * 1024;

/// One event as it travels on the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    pub dedupe_key: String,
    pub portal_id: u64,
    /// The JSON message body (see [`envelope`]).
    pub body: String,
    /// The X-Ray trace header of the request that accepted it, in canonical form
    /// ([`hsbridge_platform::trace::XrayTrace::header`]): sent as the message's `AWSTraceHeader`
    /// system attribute, which the API caller continues.
    pub trace: Option<String>,
}

impl QueuedEvent {
    /// The same event, carrying `trace` (a validated X-Ray header).
    pub fn traced(mut self, trace: Option<&str>) -> Self {
        self.trace = trace.map(str::to_owned);
        self
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    schema: &'static str,
    dedupe_key: &'a str,
    portal_id: u64,
    subscription_type: &'a str,
    received_at_ms: u64,
    signature_version: &'static str,
    event: &'a RawValue,
}

/// The queue message for an event: the event exactly as HubSpot sent it, with the key that
/// lets a consumer drop a redelivery.
pub fn envelope(
    event: &crate::events::WebhookEvent,
    received_at_ms: u64,
    signature_version: &'static str,
) -> QueuedEvent {
    let dedupe_key = event.dedupe_key();
    let body = serde_json::to_string(&Envelope {
        schema: MESSAGE_SCHEMA,
        dedupe_key: &dedupe_key,
        portal_id: event.portal_id,
        subscription_type: &event.subscription_type,
        received_at_ms,
        signature_version,
        event: &event.raw,
    })
    // Serialising plain strings, integers and an already-valid RawValue cannot fail; should
    // it ever, the raw event alone still carries everything.
    .unwrap_or_else(|_| event.raw.get().to_owned());
    QueuedEvent {
        dedupe_key,
        portal_id: event.portal_id,
        body,
        trace: None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the events queue could not be reached")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the events queue refused {failed} message(s)")]
    Refused { failed: usize },
}

/// Port: the events queue. `Ok` means every event is durably queued.
#[async_trait]
pub trait EventQueue: Send + Sync + std::fmt::Debug {
    async fn send(&self, events: &[QueuedEvent]) -> Result<(), QueueError>;
}

/// AWS adapter: an SQS standard queue.
#[derive(Debug, Clone)]
pub struct SqsEventQueue {
    client: Client,
    queue_url: String,
}

impl SqsEventQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    async fn send_chunk(&self, chunk: &[QueuedEvent]) -> Result<Vec<usize>, QueueError> {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, e) in chunk.iter().enumerate() {
            let portal = MessageAttributeValue::builder()
                .data_type("Number")
                .string_value(e.portal_id.to_string())
                .build()
                .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&e.body)
                .message_attributes("portalId", portal);
            if let Some(trace) = &e.trace {
                let trace = MessageSystemAttributeValue::builder()
                    .data_type("String")
                    .string_value(trace)
                    .build()
                    .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
                entry = entry.message_system_attributes(
                    MessageSystemAttributeNameForSends::AwsTraceHeader,
                    trace,
                );
            }
            let entry = entry
                .build()
                .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
            entries.push(entry);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(Box::new(e)))?;
        Ok(out
            .failed()
            .iter()
            .filter_map(|f| f.id().parse::<usize>().ok())
            .collect())
    }
}

/// Split events into SQS batch calls within both limits.
fn chunks(events: &[QueuedEvent]) -> Vec<&[QueuedEvent]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in events.iter().enumerate() {
        let size = e.body.len() + 64;
        if i > start && (i - start == SQS_BATCH_ENTRIES || bytes + size > SQS_BATCH_BYTES) {
            out.push(&events[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

#[async_trait]
impl EventQueue for SqsEventQueue {
    /// The batch calls go out at once: a full webhook batch is ten of them, and one after the
    /// other they would cost ten round trips of the request's budget.
    async fn send(&self, events: &[QueuedEvent]) -> Result<(), QueueError> {
        let sends = chunks(events)
            .into_iter()
            .map(|chunk| self.send_chunk_retrying(chunk));
        for result in futures_util::future::join_all(sends).await {
            result?;
        }
        Ok(())
    }
}

impl SqsEventQueue {
    async fn send_chunk_retrying(&self, chunk: &[QueuedEvent]) -> Result<(), QueueError> {
        let failed = self.send_chunk(chunk).await?;
        if failed.is_empty() {
            return Ok(());
        }
        // One retry of just the refused entries; SQS refuses entries mostly under throttling.
        let retry: Vec<QueuedEvent> = failed
            .iter()
            .filter_map(|&i| chunk.get(i).cloned())
            .collect();
        let still_failed = self.send_chunk(&retry).await?;
        if still_failed.is_empty() {
            Ok(())
        } else {
            Err(QueueError::Refused {
                failed: still_failed.len(),
            })
        }
    }
}

/// Embedded adapter: an in-process queue (the local stack drains it).
#[derive(Debug, Default)]
pub struct InMemoryEventQueue {
    messages: Mutex<Vec<QueuedEvent>>,
}

impl InMemoryEventQueue {
    /// Remove and return everything queued so far.
    pub fn drain(&self) -> Vec<QueuedEvent> {
        self.messages
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.messages.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl EventQueue for InMemoryEventQueue {
    async fn send(&self, events: &[QueuedEvent]) -> Result<(), QueueError> {
        let mut m = self
            .messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.extend_from_slice(events);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(size: usize) -> QueuedEvent {
        QueuedEvent {
            dedupe_key: "k".into(),
            portal_id: 1,
            body: "x".repeat(size),
            trace: None,
        }
    }

    #[test]
    fn batches_hold_at_most_ten_entries() {
        let events: Vec<_> = (0..25).map(|_| event(10)).collect();
        let sizes: Vec<usize> = chunks(&events).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }

    #[test]
    fn batches_stay_under_the_byte_limit() {
        let events: Vec<_> = (0..4).map(|_| event(100 * 1024)).collect();
        let sizes: Vec<usize> = chunks(&events).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![2, 2]);
    }
}
