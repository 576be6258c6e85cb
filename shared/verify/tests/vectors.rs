//! HubSpot's published known-answer vectors (and the ones computed from its documented
//! algorithm), read from the project's copy of `hubspot-signatures.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod request_parts;

use hsbridge_verify::{
    Policy, Secret, SecretSet, SecretSlot, SignatureVersion, Verified, selectively_decode_uri,
    sign_v1, sign_v2, sign_v3, verify,
};
use request_parts::RequestParts;
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/hubspot-signatures.json");

fn cases(version: &str) -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    let cases: Vec<Value> = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["version"] == version)
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "no {version} vectors in the file");
    cases
}

fn text<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no {field}", case["name"]))
}

fn all_versions() -> Policy {
    Policy::accepting(&[
        SignatureVersion::V1,
        SignatureVersion::V2,
        SignatureVersion::V3,
    ])
}

#[test]
fn every_v1_vector_is_reproduced_by_sign_v1_and_accepted_by_verify() {
    for case in cases("v1") {
        let name = text(&case, "name");
        let secret = Secret::new(text(&case, "secret"));
        let body = text(&case, "body").as_bytes();
        let expected = text(&case, "expected");
        assert_eq!(sign_v1(&secret, body), expected, "{name}");

        let parts = RequestParts::unsigned("POST", "https://www.example.com/webhook_uri", body)
            .with_header("x-hubspot-signature", expected)
            .with_header("x-hubspot-signature-version", "v1");
        let secrets = SecretSet::new(secret).unwrap();
        assert_eq!(
            verify(&parts.request(), &secrets, &all_versions(), 0),
            Ok(Verified {
                version: SignatureVersion::V1,
                secret: SecretSlot::Current
            }),
            "{name}"
        );
    }
}

#[test]
fn every_v2_vector_is_reproduced_by_sign_v2_and_accepted_by_verify() {
    for case in cases("v2") {
        let name = text(&case, "name");
        let secret = Secret::new(text(&case, "secret"));
        let (method, uri, body) = (
            text(&case, "method"),
            text(&case, "uri"),
            text(&case, "body").as_bytes(),
        );
        let expected = text(&case, "expected");
        assert_eq!(sign_v2(&secret, method, uri, body), expected, "{name}");

        let parts = RequestParts::unsigned(method, uri, body)
            .with_header("x-hubspot-signature", expected)
            .with_header("x-hubspot-signature-version", "v2");
        let secrets = SecretSet::new(secret).unwrap();
        assert_eq!(
            verify(&parts.request(), &secrets, &all_versions(), 0),
            Ok(Verified {
                version: SignatureVersion::V2,
                secret: SecretSlot::Current
            }),
            "{name}"
        );
    }
}

#[test]
fn every_v3_vector_is_reproduced_by_sign_v3_and_accepted_by_verify_at_its_own_time() {
    for case in cases("v3") {
        let name = text(&case, "name");
        let secret = Secret::new(text(&case, "secret"));
        let (method, uri, body, timestamp) = (
            text(&case, "method"),
            text(&case, "uri"),
            text(&case, "body").as_bytes(),
            text(&case, "timestamp"),
        );
        let expected = text(&case, "expected");
        assert_eq!(
            sign_v3(&secret, method, uri, body, timestamp),
            expected,
            "{name}"
        );

        let parts = RequestParts::unsigned(method, uri, body)
            .with_header("x-hubspot-signature-v3", expected)
            .with_header("x-hubspot-request-timestamp", timestamp);
        let secrets = SecretSet::new(secret).unwrap();
        let now_ms: u64 = timestamp.parse().unwrap();
        assert_eq!(
            verify(&parts.request(), &secrets, &Policy::v3_only(), now_ms),
            Ok(Verified {
                version: SignatureVersion::V3,
                secret: SecretSlot::Current
            }),
            "{name}"
        );
    }
}

#[test]
fn every_v3_vector_uri_is_selectively_decoded_to_its_uri_as_hashed() {
    let mut checked = 0;
    for case in cases("v3") {
        let uri = text(&case, "uri");
        let as_hashed = case["uri_as_hashed"].as_str().unwrap_or(uri);
        assert_eq!(selectively_decode_uri(uri), as_hashed, "{}", case["name"]);
        checked += usize::from(case["uri_as_hashed"].is_string());
    }
    assert!(checked > 0, "no vector exercises the selective decode");
}
