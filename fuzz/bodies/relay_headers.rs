//! The relay's header filter, `forwardable_headers`, on arbitrary header maps: it never panics,
//! and what it keeps is a subset of the input whose every name is on the allowlist
//! (`FORWARDED_HEADERS`: no hop-by-hop, credential, network-path, signature, `x-amz-*` or
//! `x-hsbridge-*` header, in any spelling), only visible-ASCII values, at most 32 headers;
//! filtering twice changes nothing.
//!
//! This file is the target's body, shared by the fuzz target (`fuzz/fuzz_targets/`) and the
//! corpus replay in the main workspace's tests (`tests/fuzz_replay`): `run` is what libFuzzer
//! calls with each input; a panic (a failed assertion) is a finding.

// A failed oracle is how a fuzz target reports a finding: it panics on purpose.
#![allow(clippy::expect_used, clippy::panic)]

use arbitrary::Arbitrary;
use hsbridge_api_caller::relay::{FORWARDED_HEADERS, forwardable_headers};
use http::{HeaderMap, HeaderName, HeaderValue};

const INTERESTING: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "cookie",
    "content-length",
    "content-type",
    "accept",
    "user-agent",
    "forwarded",
    "via",
    "x-real-ip",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-amz-date",
    "x-amz-security-token",
    "x-amzn-trace-id",
    "x-hsbridge-portal-id",
    "x-hsbridge_portal-id",
    "accept-language",
    "x-hubspot-signature",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-request-id",
    "x-custom",
];

#[derive(Arbitrary, Debug)]
pub enum Name<'a> {
    Known(u8),
    Raw(&'a [u8]),
}

/// The target's input: header name/value pairs, as libFuzzer's bytes decode into them.
pub type Input<'a> = Vec<(Name<'a>, &'a [u8])>;

pub fn run(pairs: Input<'_>) {
    let mut headers = HeaderMap::new();
    for (name, value) in &pairs {
        let name = match name {
            Name::Known(i) => {
                HeaderName::from_static(INTERESTING[usize::from(*i) % INTERESTING.len()])
            }
            Name::Raw(raw) => match HeaderName::from_bytes(raw) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let out = forwardable_headers(&headers);

    assert!(out.len() <= 32, "more than 32 headers forwarded");
    for (name, value) in &out {
        let n = name.as_str();
        assert!(
            FORWARDED_HEADERS.contains(&n),
            "{n} is not on the allowlist"
        );
        assert!(
            value.to_str().is_ok(),
            "a value that is not visible ASCII was forwarded"
        );
        assert!(
            headers.get_all(name).iter().any(|v| v == value),
            "{n} was forwarded with a value the request did not carry"
        );
    }
    assert_eq!(
        forwardable_headers(&out),
        out,
        "filtering is not idempotent"
    );
}
