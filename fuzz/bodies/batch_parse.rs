//! `parse_batch` on arbitrary bytes: never panics, and whatever it accepts is a batch of 1 to
//! `max_events` objects, each carrying the fields hsbridge routes and deduplicates on.
//!
//! This file is the target's body, shared by the fuzz target (`fuzz/fuzz_targets/`) and the
//! corpus replay in the main workspace's tests (`tests/fuzz_replay`): `run` is what libFuzzer
//! calls with each input; a panic (a failed assertion) is a finding.

// A failed oracle is how a fuzz target reports a finding: it panics on purpose.
#![allow(clippy::expect_used, clippy::panic)]

use hsbridge_webhook_intake::events::parse_batch;

const MAX_EVENTS: usize = 100;

pub fn run(data: &[u8]) {
    // A small limit now and then, so the TooManyEvents path is reached by short inputs too.
    let max = if data.first() == Some(&b' ') {
        2
    } else {
        MAX_EVENTS
    };
    let Ok(events) = parse_batch(data, max) else {
        return;
    };
    assert!((1..=max).contains(&events.len()));
    for event in &events {
        assert!(!event.subscription_type.is_empty());
        // Syntactically JSON (a lone surrogate escape such as `\ud800` in a field hsbridge does
        // not read is valid JSON syntax but not a valid string, so only syntax is checked here).
        let raw = event.raw.get();
        let _: serde::de::IgnoredAny =
            serde_json::from_str(raw).expect("an accepted event is JSON");
        assert!(
            raw.starts_with('{') && raw.ends_with('}'),
            "an accepted event is an object"
        );
        assert_eq!(
            event.dedupe_key(),
            format!(
                "{}#{}#{}#{}",
                event.portal_id, event.subscription_id, event.event_id, event.occurred_at
            )
        );
    }
}
