//! Parsing a verified webhook batch. Only called after the signature verified.
//!
//! Each event keeps its raw JSON, so fields HubSpot adds later travel on unchanged; only the
//! fields needed for routing and deduplication are read.

use serde::Deserialize;
use serde_json::value::RawValue;

/// One event of a batch: the fields hsbridge reads, and the event exactly as HubSpot sent it.
#[derive(Debug)]
pub struct WebhookEvent {
    pub portal_id: u64,
    pub subscription_id: u64,
    pub event_id: u64,
    pub occurred_at: u64,
    pub subscription_type: String,
    pub raw: Box<RawValue>,
}

impl WebhookEvent {
    /// `eventId` alone is not unique; HubSpot documents that. This key is.
    pub fn dedupe_key(&self) -> String {
        format!(
            "{}#{}#{}#{}",
            self.portal_id, self.subscription_id, self.event_id, self.occurred_at
        )
    }
}

/// Why a batch was refused. The text is short and safe to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("body is not JSON")]
    NotJson,
    #[error("body is not a JSON array of events")]
    NotAnArray,
    #[error("batch is empty")]
    Empty,
    #[error("batch has more than {max} events")]
    TooManyEvents { max: usize },
    #[error("event {index}: {reason}")]
    BadEvent { index: usize, reason: &'static str },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventFields {
    event_id: u64,
    subscription_id: u64,
    portal_id: u64,
    occurred_at: u64,
    subscription_type: Option<String>,
    // HubSpot's docs table calls it eventType.
    event_type: Option<String>,
}

/// Parse a batch of at most `max_events` events.
pub fn parse_batch(body: &[u8], max_events: usize) -> Result<Vec<WebhookEvent>, BatchError> {
    let text = std::str::from_utf8(body).map_err(|_| BatchError::NotUtf8)?;
    let items: Vec<Box<RawValue>> = serde_json::from_str(text).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            BatchError::NotAnArray
        } else {
            BatchError::NotJson
        }
    })?;
    if items.is_empty() {
        return Err(BatchError::Empty);
    }
    if items.len() > max_events {
        return Err(BatchError::TooManyEvents { max: max_events });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            if !raw.get().trim_start().starts_with('{') {
                return Err(BatchError::BadEvent {
                    index,
                    reason: "not an object",
                });
            }
            let f: EventFields = serde_json::from_str(raw.get()).map_err(|_| BatchError::BadEvent {
                index,
                reason: "eventId, subscriptionId, portalId and occurredAt must be non-negative integers",
            })?;
            let subscription_type = f
                .subscription_type
                .or(f.event_type)
                .filter(|s| !s.is_empty())
                .ok_or(BatchError::BadEvent {
                    index,
                    reason: "subscriptionType is missing",
                })?;
            Ok(WebhookEvent {
                portal_id: f.portal_id,
                subscription_id: f.subscription_id,
                event_id: f.event_id,
                occurred_at: f.occurred_at,
                subscription_type,
                raw,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ONE: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321,"brandNewField":{"x":[1,2]}}]"#;

    #[test]
    fn a_documented_batch_parses_and_keeps_unknown_fields() {
        let events = parse_batch(ONE.as_bytes(), 100).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].portal_id, 62515);
        assert_eq!(events[0].subscription_type, "contact.creation");
        assert!(
            events[0]
                .raw
                .get()
                .contains(r#""brandNewField":{"x":[1,2]}"#)
        );
        assert_eq!(events[0].dedupe_key(), "62515#12345#1#1564113600000");
    }

    #[test]
    fn event_type_is_accepted_in_place_of_subscription_type() {
        let body = r#"[{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":4,"eventType":"deal.creation"}]"#;
        assert_eq!(
            parse_batch(body.as_bytes(), 100).unwrap()[0].subscription_type,
            "deal.creation"
        );
    }

    #[test]
    fn malformed_batches_get_their_own_reason() {
        assert_eq!(
            parse_batch(b"\xff\xfe", 100).unwrap_err(),
            BatchError::NotUtf8
        );
        assert_eq!(parse_batch(b"[{", 100).unwrap_err(), BatchError::NotJson);
        assert_eq!(
            parse_batch(b"nonsense", 100).unwrap_err(),
            BatchError::NotJson
        );
        assert_eq!(parse_batch(b"{}", 100).unwrap_err(), BatchError::NotAnArray);
        assert_eq!(parse_batch(b"[]", 100).unwrap_err(), BatchError::Empty);
        assert_eq!(
            parse_batch(b"[1]", 100).unwrap_err(),
            BatchError::BadEvent {
                index: 0,
                reason: "not an object"
            }
        );
        let wrong_type = br#"[{"eventId":"1","subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"a"}]"#;
        assert!(matches!(
            parse_batch(wrong_type, 100).unwrap_err(),
            BatchError::BadEvent { index: 0, .. }
        ));
        let negative = br#"[{"eventId":-1,"subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"a"}]"#;
        assert!(matches!(
            parse_batch(negative, 100).unwrap_err(),
            BatchError::BadEvent { .. }
        ));
    }

    #[test]
    fn a_batch_over_the_event_limit_is_refused() {
        let event = r#"{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"a"}"#;
        let body = format!("[{}]", [event; 3].join(","));
        assert_eq!(
            parse_batch(body.as_bytes(), 2).unwrap_err(),
            BatchError::TooManyEvents { max: 2 }
        );
    }

    #[test]
    fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
        let body = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_batch(body.as_bytes(), 100).is_err());
    }
}
