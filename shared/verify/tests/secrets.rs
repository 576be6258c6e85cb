//! Secrets stay redacted, compare by value, and a set keeps current before previous.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hsbridge_verify::{EmptySecret, Secret, SecretSet, SecretSlot};

const VALUE: &str = "s3cr3t-value";

#[test]
fn a_secret_is_redacted_in_debug_and_display() {
    let secret = Secret::new(VALUE);
    assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
    assert_eq!(format!("{secret}"), "[REDACTED]");
    let set = SecretSet::new(secret.clone())
        .unwrap()
        .with_previous(Secret::new("older-value"))
        .unwrap();
    let debug = format!("{set:?} {set:#?}");
    assert!(
        !debug.contains(VALUE) && !debug.contains("older-value"),
        "{debug}"
    );
}

#[test]
fn a_secret_is_read_only_through_expose() {
    let secret = Secret::new(VALUE);
    assert_eq!(secret.expose(), VALUE);
    assert!(!secret.is_empty());
    assert!(Secret::new("").is_empty());
}

#[test]
fn secrets_compare_by_value() {
    assert_eq!(Secret::new(VALUE), Secret::new(VALUE.to_owned()));
    assert_ne!(Secret::new(VALUE), Secret::new("s3cr3t-valuf"));
    assert_ne!(Secret::new(VALUE), Secret::new("s3cr3t"));
}

#[test]
fn a_secret_deserializes_from_a_plain_string() {
    let secret: Secret = serde_json::from_str(r#""from-config""#).unwrap();
    assert_eq!(secret.expose(), "from-config");
    assert!(serde_json::from_str::<Secret>("42").is_err());
}

#[test]
fn a_secret_set_lists_current_then_previous() {
    let set = SecretSet::new(Secret::new("current")).unwrap();
    let slots: Vec<_> = set.iter().map(|(slot, s)| (slot, s.expose())).collect();
    assert_eq!(slots, [(SecretSlot::Current, "current")]);
    assert!(set.previous().is_none());

    let set = set.with_previous(Secret::new("previous")).unwrap();
    let slots: Vec<_> = set.iter().map(|(slot, s)| (slot, s.expose())).collect();
    assert_eq!(
        slots,
        [
            (SecretSlot::Current, "current"),
            (SecretSlot::Previous, "previous")
        ]
    );
    assert_eq!(set.current().expose(), "current");
    assert_eq!(set.previous().map(Secret::expose), Some("previous"));
}

#[test]
fn an_empty_secret_is_refused_in_either_slot() {
    assert_eq!(SecretSet::new(Secret::new("")), Err(EmptySecret));
    let set = SecretSet::new(Secret::new("current")).unwrap();
    assert_eq!(set.with_previous(Secret::new("")), Err(EmptySecret));
    assert_eq!(
        EmptySecret.to_string(),
        "a client secret must not be empty or only whitespace"
    );
}

#[test]
fn secret_slots_have_stable_names() {
    assert_eq!(SecretSlot::Current.as_str(), "current");
    assert_eq!(SecretSlot::Previous.as_str(), "previous");
}
