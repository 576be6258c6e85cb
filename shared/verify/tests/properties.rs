//! Property tests against an independent v3 signer written here from the specification
//! (HMAC-SHA256 per RFC 2104 on top of `sha2`, and a separate 12-escape decoder), plus a
//! never-panics property over arbitrary header, URI and body bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hsbridge_verify::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_V3, HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP, Policy,
    PublicBase, Secret, SecretSet, SecretSlot, SignatureVersion, SignedRequest, Verified,
    VerifyError, cookie_from_header, rebuild_public_uri, selectively_decode_uri, verify,
    verify_state_cookie,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

// ---- The independent reference ---------------------------------------------------------------

/// HMAC-SHA256 per RFC 2104, over the concatenation of `parts`.
fn reference_hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

const TABLE: [(&str, char); 12] = [
    ("3A", ':'),
    ("2F", '/'),
    ("3F", '?'),
    ("40", '@'),
    ("21", '!'),
    ("24", '$'),
    ("27", '\''),
    ("28", '('),
    ("29", ')'),
    ("2A", '*'),
    ("2C", ','),
    ("3B", ';'),
];

/// The 12-escape decode, written as a char walk over a lookup table. `any_case` also decodes
/// `%3a`-style spellings.
fn reference_decode(uri: &str, any_case: bool) -> String {
    let chars: Vec<char> = uri.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '%' && i + 2 < chars.len() {
            let hex: String = chars[i + 1..i + 3].iter().collect();
            let hex = if any_case { hex.to_uppercase() } else { hex };
            if let Some((_, c)) = TABLE.iter().find(|(h, _)| *h == hex) {
                out.push(*c);
                i += 3;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn reference_sign_v3(secret: &str, method: &str, uri: &str, body: &[u8], ts: &str) -> String {
    let decoded = reference_decode(uri, false);
    STANDARD.encode(reference_hmac(
        secret.as_bytes(),
        &[method.as_bytes(), decoded.as_bytes(), body, ts.as_bytes()],
    ))
}

#[test]
fn the_reference_hmac_matches_rfc_4231_test_cases() {
    let expected_2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    let mac = reference_hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
    assert_eq!(hex(&mac), expected_2);
    // Test case 6: a 131-byte key, longer than the block, is hashed first.
    let expected_6 = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
    let mac = reference_hmac(
        &[0xaa; 131],
        &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
    );
    assert_eq!(hex(&mac), expected_6);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- Generators -------------------------------------------------------------------------------

/// One piece of a URI: plain text, each kind of escape, `+`, spaces, stray `%`, unicode.
fn uri_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._~-]{1,6}",
        Just("/".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("+".to_owned()),
        Just(" ".to_owned()),
        Just("%".to_owned()),
        Just("é".to_owned()),
        Just("日本".to_owned()),
        proptest::sample::select(TABLE.to_vec()).prop_map(|(h, _)| format!("%{h}")),
        proptest::sample::select(TABLE.to_vec())
            .prop_map(|(h, _)| format!("%{}", h.to_lowercase())),
        proptest::sample::select(TABLE.to_vec()).prop_map(|(_, c)| c.to_string()),
        proptest::sample::select(vec![
            "%20", "%2B", "%2b", "%3D", "%26", "%25", "%7E", "%C3%A9", "%253A", "%%3A", "%3"
        ])
        .prop_map(str::to_owned),
    ]
}

fn uri() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("https"), Just("http")],
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,8}){0,2}",
        proptest::collection::vec(uri_piece(), 0..12),
        proptest::option::of(proptest::collection::vec(uri_piece(), 0..12)),
    )
        .prop_map(|(scheme, host, path, query)| {
            let mut uri = format!("{scheme}://{host}/{}", path.concat());
            if let Some(query) = query {
                uri.push('?');
                uri.push_str(&query.concat());
            }
            uri
        })
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"])
            .prop_map(str::to_owned),
        "[A-Za-z]{1,10}",
    ]
}

#[derive(Debug, Clone)]
struct Case {
    secret: String,
    method: String,
    uri: String,
    body: Vec<u8>,
    ts: u64,
    now: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        // A blank secret is refused when the set is built (tests/adversarial/secrets.rs).
        "\\PC{1,80}".prop_filter("a blank secret", |s| !s.trim().is_empty()),
        method(),
        uri(),
        proptest::collection::vec(any::<u8>(), 0..2048),
        1_500_000_000_000u64..2_500_000_000_000,
        -300_000i64..=300_000,
    )
        .prop_map(|(secret, method, uri, body, ts, offset)| Case {
            secret,
            method,
            uri,
            body,
            ts,
            now: ts.checked_add_signed(offset).unwrap(),
        })
}

fn v3_headers(signature: &str, ts: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        HEADER_SIGNATURE_V3,
        HeaderValue::from_str(signature).unwrap(),
    );
    headers.insert(HEADER_TIMESTAMP, HeaderValue::from_str(ts).unwrap());
    headers
}

fn check(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    headers: &HeaderMap,
    now: u64,
) -> Result<Verified, VerifyError> {
    let secrets = SecretSet::new(Secret::new(secret)).unwrap();
    let req = SignedRequest {
        method,
        uri,
        body,
        headers,
    };
    verify(&req, &secrets, &Policy::v3_only(), now)
}

/// Replaces the char at `index` (modulo the length) with `with`; None when nothing changes.
fn replace_char(s: &str, index: usize, with: char) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return None;
    }
    let i = index % chars.len();
    if chars[i] == with {
        return None;
    }
    let mut out = chars;
    out[i] = with;
    Some(out.into_iter().collect())
}

#[derive(Debug, Clone)]
enum Mutation {
    Method(usize, char),
    Uri(usize, char),
    Body(usize, u8),
    Timestamp(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let any_char = prop_oneof![
        proptest::char::range(' ', '~'),
        Just('é'),
        Just('%'),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), any_char.clone()).prop_map(|(i, c)| Mutation::Method(i, c)),
        (any::<usize>(), any_char).prop_map(|(i, c)| Mutation::Uri(i, c)),
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Body(i, x)),
        (any::<usize>(), 0x20u8..0x7f).prop_map(|(i, b)| Mutation::Timestamp(i, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_request_signed_by_an_independent_implementation_verifies(case in case()) {
        let ts = case.ts.to_string();
        let sig = reference_sign_v3(&case.secret, &case.method, &case.uri, &case.body, &ts);
        let headers = v3_headers(&sig, &ts);
        prop_assert_eq!(
            check(&case.secret, &case.method, &case.uri, &case.body, &headers, case.now),
            Ok(Verified { version: SignatureVersion::V3, secret: SecretSlot::Current })
        );
    }

    #[test]
    fn the_selective_decode_agrees_with_the_independent_decoder(uri in uri(), noise in "\\PC{0,40}") {
        for input in [uri.as_str(), noise.as_str()] {
            prop_assert_eq!(selectively_decode_uri(input), reference_decode(input, false));
        }
    }

    #[test]
    fn any_single_mutation_of_a_signed_request_makes_it_fail(case in case(), mutation in mutation()) {
        let ts = case.ts.to_string();
        let sig = reference_sign_v3(&case.secret, &case.method, &case.uri, &case.body, &ts);
        let (mut method, mut uri, mut body, mut ts_sent) =
            (case.method.clone(), case.uri.clone(), case.body.clone(), ts.clone());
        match mutation {
            Mutation::Method(i, c) => method = replace_char(&method, i, c).unwrap_or_else(|| {
                // Nothing changed: append instead, still a one-character change.
                format!("{method}{c}")
            }),
            Mutation::Uri(i, c) => {
                let Some(mutated) = replace_char(&uri, i, c) else { return Ok(()) };
                // Equivalent spellings (`%3A` vs `:`, or `%3a` read as `:`) hash identically:
                // those are not mutations of what was signed.
                let signed = reference_decode(&uri, false);
                prop_assume!(reference_decode(&mutated, false) != signed);
                prop_assume!(reference_decode(&mutated, true) != signed);
                uri = mutated;
            }
            Mutation::Body(i, x) => {
                if body.is_empty() { body.push(x) } else { let n = body.len(); body[i % n] ^= x }
            }
            Mutation::Timestamp(i, b) => {
                let mut bytes = ts_sent.into_bytes();
                let n = bytes.len();
                prop_assume!(bytes[i % n] != b);
                bytes[i % n] = b;
                ts_sent = String::from_utf8(bytes).unwrap();
            }
        }
        let headers = v3_headers(&sig, &ts_sent);
        let result = check(&case.secret, &method, &uri, &body, &headers, case.now);
        if ts_sent == ts {
            prop_assert_eq!(result, Err(VerifyError::Mismatch));
        } else {
            prop_assert!(
                matches!(
                    result,
                    Err(VerifyError::Mismatch
                        | VerifyError::MalformedTimestamp
                        | VerifyError::TimestampTooOld { .. }
                        | VerifyError::TimestampInFuture { .. })
                ),
                "{:?}",
                result
            );
        }
    }
}

// ---- Never panics -----------------------------------------------------------------------------

/// Bytes a header value may hold (no controls but tab).
fn header_value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 44..=44),
        "[A-Za-z0-9+/= ]{40,48}".prop_map(String::into_bytes),
        "[0-9.+-]{0,24}".prop_map(String::into_bytes),
    ]
    .prop_map(|bytes| {
        bytes
            .into_iter()
            .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
            .collect()
    })
}

fn arbitrary_headers() -> impl Strategy<Value = HeaderMap> {
    let names = proptest::sample::select(vec![
        HEADER_SIGNATURE_V3,
        HEADER_TIMESTAMP,
        HEADER_SIGNATURE,
        HEADER_SIGNATURE_VERSION,
        "host",
        "x-forwarded-proto",
        "cookie",
    ]);
    proptest::collection::vec((names, header_value_bytes()), 0..8).prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        headers
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_anywhere_never_make_verification_panic(
        headers in arbitrary_headers(),
        method in "\\PC{0,12}",
        uri in prop_oneof![uri(), "\\PC{0,80}"],
        body in proptest::collection::vec(any::<u8>(), 0..256),
        now in any::<u64>(),
        versions in proptest::sample::subsequence(
            vec![SignatureVersion::V1, SignatureVersion::V2, SignatureVersion::V3], 0..=3),
        with_previous in any::<bool>(),
    ) {
        let mut secrets = SecretSet::new(Secret::new("current")).unwrap();
        if with_previous {
            secrets = secrets.with_previous(Secret::new("previous")).unwrap();
        }
        let req = SignedRequest { method: &method, uri: &uri, body: &body, headers: &headers };
        // The property is that each call returns; its answer on noise does not matter.
        let _ = verify(&req, &secrets, &Policy::accepting(&versions), now);

        let _ = rebuild_public_uri(None, &headers, &uri, Some(&method));
        let _ = PublicBase::parse(&uri);
        let cookie = cookie_from_header(&headers, "hubspot_oauth_state");
        let _ = verify_state_cookie(&secrets, cookie.as_deref(), Some(&method), now);
        let _ = verify_state_cookie(&secrets, Some(&uri), Some(&method), now);
        prop_assert!(selectively_decode_uri(&uri).len() <= uri.len());
    }
}
