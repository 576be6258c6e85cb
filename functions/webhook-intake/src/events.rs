//! Parsing a verified webhook batch. Only called after the signature verified.
//!
//! Each event keeps its raw JSON, so fields HubSpot adds later travel on unchanged; only the
//! fields needed for routing and deduplication are read. Because the raw text travels on, it must
//! be text every strict JSON reader accepts: a batch escaping a lone UTF-16 surrogate (`\ud800`)
//! anywhere, even in a field hsbridge does not read, is refused (HubSpot's serialiser never
//! writes one; a consumer decoding it into a string would fail on the message forever).

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
            if has_lone_surrogate_escape(raw.get()) {
                return Err(BatchError::BadEvent {
                    index,
                    reason: "a string escapes a lone surrogate, which is not Unicode",
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

/// Whether JSON text (already known to be valid JSON) escapes a UTF-16 surrogate that is not
/// part of a pair: a high surrogate `\ud800`–`\udbff` not followed at once by an escaped low one,
/// or a low surrogate `\udc00`–`\udfff` not preceded by a high one. JSON syntax allows these;
/// decoding such a string (serde_json, `JSON.parse` in strict consumers, Python's `json` with
/// UTF-8 output) fails or yields text that is not Unicode.
///
/// In valid JSON a backslash occurs only inside a string, as the start of an escape, so a scan
/// of escapes needs no tokenizer. Linear, no allocation.
fn has_lone_surrogate_escape(json: &str) -> bool {
    let bytes = json.as_bytes();
    let mut i = 0;
    // The previous escape was a high surrogate: the next thing must be an escaped low one.
    let mut awaiting_low = false;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            if awaiting_low {
                return true;
            }
            i += 1;
            continue;
        }
        if bytes.get(i + 1) != Some(&b'u') {
            if awaiting_low {
                return true;
            }
            i += 2;
            continue;
        }
        let unit = bytes
            .get(i + 2..i + 6)
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u16::from_str_radix(hex, 16).ok());
        let Some(unit) = unit else {
            // Not valid JSON; the caller's parser has refused it already. Refuse anyway.
            return true;
        };
        i += 6;
        match unit {
            0xD800..=0xDBFF if !awaiting_low => awaiting_low = true,
            0xDC00..=0xDFFF if awaiting_low => awaiting_low = false,
            0xD800..=0xDFFF => return true,
            _ if awaiting_low => return true,
            _ => {}
        }
    }
    awaiting_low
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
    fn a_lone_surrogate_escape_in_a_field_hsbridge_does_not_read_is_refused() {
        for escaped in [
            r"\ud800",
            r"\udfff",
            r"\udc00\ud800",
            r"\ud800\u0041",
            r"\ud800\n",
            r"x\ud800",
        ] {
            let body = format!(
                r#"[{{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"a","propertyValue":"{escaped}"}}]"#
            );
            assert_eq!(
                parse_batch(body.as_bytes(), 100).unwrap_err(),
                BatchError::BadEvent {
                    index: 0,
                    reason: "a string escapes a lone surrogate, which is not Unicode"
                },
                "{escaped}"
            );
        }
        // In a key, in a nested object, in a later event.
        let body = r#"[{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"a"},{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"a","x":{"\udabc":1}}]"#;
        assert!(matches!(
            parse_batch(body.as_bytes(), 100).unwrap_err(),
            BatchError::BadEvent { index: 1, .. }
        ));
    }

    #[test]
    fn paired_surrogates_and_escaped_backslashes_are_kept() {
        let body = r#"[{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"a","propertyValue":"\ud83d\ude00 \\ud800 \u00e9 😀"}]"#;
        let events = parse_batch(body.as_bytes(), 100).unwrap();
        assert!(events[0].raw.get().contains(r"\ud83d\ude00 \\ud800"));
    }

    /// The scan agrees with serde_json's string decoding on every sequence of up to four
    /// escapes and characters that matter.
    #[test]
    fn the_surrogate_scan_agrees_with_a_strict_json_decoder() {
        let pieces = [
            r"\ud800", r"\udbff", r"\udc00", r"\udfff", r"\u0041", r"\uD83D", r"\uDE00", r"\\",
            r"\n", "u", "x", r#"\""#, "é",
        ];
        let mut sequences: Vec<String> = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = sequences
                .iter()
                .flat_map(|s| pieces.iter().map(move |p| format!("{s}{p}")))
                .collect();
            sequences.extend(longer);
            sequences.dedup();
        }
        for content in &sequences {
            let text = format!("\"{content}\"");
            let strict = serde_json::from_str::<String>(&text).is_ok();
            assert_eq!(has_lone_surrogate_escape(&text), !strict, "{text}");
        }
    }

    #[test]
    fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
        let body = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_batch(body.as_bytes(), 100).is_err());
    }
}
