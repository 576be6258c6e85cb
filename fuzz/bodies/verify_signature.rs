//! `hsbridge_verify::verify` on arbitrary requests: it must never panic, whatever the method,
//! URI, body, headers (the v1/v2/v3 ones included, with arbitrary values), secrets, policy and
//! clock. Oracles: a request freshly signed (v3, v2, v1) over the fuzzed parts verifies, with the
//! right secret slot, and the same request with one body byte flipped does not.
//!
//! This file is the target's body, shared by the fuzz target (`fuzz/fuzz_targets/`) and the
//! corpus replay in the main workspace's tests (`tests/fuzz_replay`): `run` is what libFuzzer
//! calls with each input; a panic (a failed assertion) is a finding.

// A failed oracle is how a fuzz target reports a finding: it panics on purpose.
#![allow(clippy::expect_used, clippy::panic)]

use arbitrary::Arbitrary;
use hsbridge_verify::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_V3, HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP,
    MAX_WINDOW_MS, Policy, Secret, SecretSet, SecretSlot, SignatureVersion, SignedRequest,
    VerifyError, sign_v1, sign_v2, sign_v3, verify,
};
use http::{HeaderMap, HeaderName, HeaderValue};

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    SignatureV3,
    Timestamp,
    Signature,
    Version,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
pub struct Input<'a> {
    method: &'a str,
    uri: &'a str,
    body: Vec<u8>,
    headers: Vec<(Name<'a>, &'a [u8])>,
    current: &'a str,
    previous: Option<&'a str>,
    accepted: u8,
    window_ms: u64,
    now_ms: u64,
    /// Offset of the oracle's timestamp from now, kept inside the window.
    skew_ms: i32,
    flip_at: usize,
    flip_bit: u8,
    sign_with_previous: bool,
}

fn policy(accepted: u8, window_ms: u64) -> Policy {
    let versions: Vec<SignatureVersion> = [
        (1, SignatureVersion::V1),
        (2, SignatureVersion::V2),
        (4, SignatureVersion::V3),
    ]
    .into_iter()
    .filter(|(bit, _)| accepted & bit != 0)
    .map(|(_, v)| v)
    .collect();
    let base = Policy::accepting(&versions);
    // Any window, valid or not: an invalid one must be refused, not panic.
    base.with_window_ms(window_ms).unwrap_or(base)
}

fn header_map(pairs: &[(Name<'_>, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = match name {
            Name::SignatureV3 => HeaderName::from_static(HEADER_SIGNATURE_V3),
            Name::Timestamp => HeaderName::from_static(HEADER_TIMESTAMP),
            Name::Signature => HeaderName::from_static(HEADER_SIGNATURE),
            Name::Version => HeaderName::from_static(HEADER_SIGNATURE_VERSION),
            Name::Other(other) => match HeaderName::from_bytes(other.as_bytes()) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name, value);
        }
    }
    map
}

fn flipped(body: &[u8], at: usize, bit: u8) -> Option<Vec<u8>> {
    if body.is_empty() {
        return None;
    }
    let mut out = body.to_vec();
    let i = at % out.len();
    out[i] ^= 1 << (bit % 8);
    Some(out)
}

fn check_signed(
    secrets: &SecretSet,
    input: &Input<'_>,
    headers: HeaderMap,
    version: SignatureVersion,
    expected_slot: SecretSlot,
    now_ms: u64,
) {
    let policy = Policy::accepting(&[version]);
    let req = SignedRequest {
        method: input.method,
        uri: input.uri,
        body: &input.body,
        headers: &headers,
    };
    match verify(&req, secrets, &policy, now_ms) {
        Ok(v) => {
            assert_eq!(v.version, version);
            // Two different secrets can be the same HMAC key (`"k"` and `"k\0"`: HMAC pads keys
            // with zeros), so the current secret may claim a v3 request signed with the previous.
            let equivalent_keys = version == SignatureVersion::V3
                && expected_slot == SecretSlot::Previous
                && secrets.previous().is_some_and(|p| {
                    let (p, c) = (p.expose(), secrets.current().expose());
                    p.len() <= 64
                        && c.len() <= 64
                        && p.trim_end_matches('\0') == c.trim_end_matches('\0')
                });
            if !equivalent_keys {
                assert_eq!(v.secret, expected_slot);
            }
        }
        Err(e) => panic!("a freshly signed {version} request was refused: {e}"),
    }
    if let Some(body) = flipped(&input.body, input.flip_at, input.flip_bit) {
        let req = SignedRequest { body: &body, ..req };
        assert_eq!(
            verify(&req, secrets, &policy, now_ms),
            Err(VerifyError::Mismatch),
            "a {version} request with a flipped body byte was not refused as a mismatch"
        );
    }
}

pub fn run(input: Input<'_>) {
    // 1. Arbitrary everything: must return, never panic.
    let headers = header_map(&input.headers);
    let Ok(mut secrets) = SecretSet::new(Secret::new(input.current)) else {
        return;
    };
    if let Some(previous) = input.previous
        && let Ok(with) = secrets.clone().with_previous(Secret::new(previous))
    {
        secrets = with;
    }
    let req = SignedRequest {
        method: input.method,
        uri: input.uri,
        body: &input.body,
        headers: &headers,
    };
    let result = verify(
        &req,
        &secrets,
        &policy(input.accepted, input.window_ms),
        input.now_ms,
    );
    let _ = result;

    // 2. Oracles: sign the fuzzed parts and check the verdicts.
    let (signer, slot) = match (input.sign_with_previous, secrets.previous()) {
        (true, Some(previous)) if previous != secrets.current() => {
            (previous.clone(), SecretSlot::Previous)
        }
        _ => (secrets.current().clone(), SecretSlot::Current),
    };
    let now_ms = input.now_ms.clamp(MAX_WINDOW_MS, u64::MAX - MAX_WINDOW_MS);
    let skew = i64::from(input.skew_ms) % (MAX_WINDOW_MS as i64 + 1);
    let ts = now_ms.saturating_add_signed(skew).to_string();

    let sig = sign_v3(&signer, input.method, input.uri, &input.body, &ts);
    let mut v3 = HeaderMap::new();
    // Also the form-decoded spelling (`+` read as a space) now and then: it must verify too.
    let sig = if input.flip_bit & 0x80 != 0 {
        sig.replace('+', " ")
    } else {
        sig
    };
    v3.insert(
        HEADER_SIGNATURE_V3,
        HeaderValue::from_str(&sig).expect("base64 is a header value"),
    );
    v3.insert(
        HEADER_TIMESTAMP,
        HeaderValue::from_str(&ts).expect("digits are a header value"),
    );
    check_signed(&secrets, &input, v3, SignatureVersion::V3, slot, now_ms);

    for (version, sig) in [
        (
            SignatureVersion::V2,
            sign_v2(&signer, input.method, input.uri, &input.body),
        ),
        (SignatureVersion::V1, sign_v1(&signer, &input.body)),
    ] {
        let mut h = HeaderMap::new();
        h.insert(
            HEADER_SIGNATURE,
            HeaderValue::from_str(&sig).expect("hex is a header value"),
        );
        h.insert(
            HEADER_SIGNATURE_VERSION,
            HeaderValue::from_static(version.as_str()),
        );
        check_signed(&secrets, &input, h, version, slot, input.now_ms);
    }
}
