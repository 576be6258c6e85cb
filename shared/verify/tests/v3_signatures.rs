//! One test per way of breaking a v3-signed request, each pinned to the exact error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod request_parts;

use hsbridge_verify::{
    EmptySecret, HEADER_SIGNATURE, HEADER_SIGNATURE_V3, HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP,
    Policy, PolicyError, Secret, SecretSet, SecretSlot, SignatureVersion, Verified, VerifyError,
    sign_v1, sign_v3, verify,
};
use request_parts::{BODY, METHOD, NOW_MS, RequestParts, SECRET, TS_MS, URI, secret, secrets};

const VERIFIED_CURRENT: Verified = Verified {
    version: SignatureVersion::V3,
    secret: SecretSlot::Current,
};

fn check(parts: &RequestParts) -> Result<Verified, VerifyError> {
    check_at(parts, NOW_MS)
}

fn check_at(parts: &RequestParts, now_ms: u64) -> Result<Verified, VerifyError> {
    verify(&parts.request(), &secrets(), &Policy::v3_only(), now_ms)
}

fn all_versions() -> Policy {
    Policy::accepting(&[
        SignatureVersion::V1,
        SignatureVersion::V2,
        SignatureVersion::V3,
    ])
}

/// A v3 request signed over `signed_uri` that arrives with `arriving_uri`.
fn signed_over_arriving_as(signed_uri: &str, arriving_uri: &str) -> RequestParts {
    RequestParts::signed_v3(&secret(), "GET", signed_uri, b"", &TS_MS.to_string())
        .with_uri(arriving_uri)
}

#[test]
fn a_correctly_signed_v3_request_verifies_with_the_current_secret() {
    assert_eq!(check(&RequestParts::standard_v3()), Ok(VERIFIED_CURRENT));
}

#[test]
fn a_v3_signature_with_the_method_changed_is_a_mismatch() {
    let parts = RequestParts::standard_v3().with_method("PUT");
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
    let parts = RequestParts::standard_v3().with_method("post");
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn a_v3_signature_with_the_scheme_changed_is_a_mismatch() {
    let parts = RequestParts::standard_v3().with_uri(&URI.replacen("https://", "http://", 1));
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn a_v3_signature_with_the_host_changed_is_a_mismatch() {
    for host in [
        "hooks.example.org",
        "evil.example.com",
        "hooks.example.com:443",
        "HOOKS.example.com",
    ] {
        let parts =
            RequestParts::standard_v3().with_uri(&URI.replacen("hooks.example.com", host, 1));
        assert_eq!(check(&parts), Err(VerifyError::Mismatch), "{host}");
    }
}

#[test]
fn a_v3_signature_with_the_path_changed_is_a_mismatch() {
    for path in [
        "/hubspot/webhook/",
        "/hubspot/Webhook",
        "/prod/hubspot/webhook",
        "/hubspot",
    ] {
        let parts =
            RequestParts::standard_v3().with_uri(&URI.replacen("/hubspot/webhook", path, 1));
        assert_eq!(check(&parts), Err(VerifyError::Mismatch), "{path}");
    }
}

#[test]
fn a_v3_signature_with_any_query_part_changed_is_a_mismatch() {
    let base = "https://hooks.example.com/hubspot/webhook";
    let changed_queries = [
        "portal=62516&email=a%40b.com&q=x%20y%2Bz",   // value
        "portals=62515&email=a%40b.com&q=x%20y%2Bz",  // name
        "email=a%40b.com&portal=62515&q=x%20y%2Bz",   // order
        "portal=62515&q=x%20y%2Bz",                   // a parameter removed
        "portal=62515&email=a%40b.com&q=x%20y%2Bz&x", // a parameter added
        "portal=62515&email=a%40b.com&q=x+y%2Bz",     // %20 re-encoded as +
        "portal=62515&email=a%40b.com&q=x%20y+z",     // %2B decoded
        "portal=62515&email=a%40b.com&q=x%20y%2bz",   // %2B lower-cased
        "portal=62515;email=a%40b.com&q=x%20y%2Bz",   // separator
    ];
    for query in changed_queries {
        let parts = RequestParts::standard_v3().with_uri(&format!("{base}?{query}"));
        assert_eq!(check(&parts), Err(VerifyError::Mismatch), "{query}");
    }
    let parts = RequestParts::standard_v3().with_uri(base);
    assert_eq!(check(&parts), Err(VerifyError::Mismatch), "query dropped");
}

#[test]
fn a_v3_signature_over_a_body_with_any_one_byte_flipped_is_a_mismatch() {
    for i in 0..BODY.len() {
        let mut body = BODY.to_vec();
        body[i] ^= 0x01;
        let parts = RequestParts::standard_v3().with_body(&body);
        assert_eq!(check(&parts), Err(VerifyError::Mismatch), "byte {i}");
    }
}

#[test]
fn a_v3_signature_over_a_body_with_a_byte_added_or_removed_is_a_mismatch() {
    let longer = [BODY, b" "].concat();
    let shorter = &BODY[..BODY.len() - 1];
    for body in [&longer[..], shorter, b""] {
        let parts = RequestParts::standard_v3().with_body(body);
        assert_eq!(check(&parts), Err(VerifyError::Mismatch));
    }
}

#[test]
fn a_changed_timestamp_within_the_window_is_a_mismatch() {
    let parts = RequestParts::standard_v3().with_header(HEADER_TIMESTAMP, &(TS_MS + 1).to_string());
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn a_timestamp_rendered_with_a_leading_zero_is_malformed() {
    let parts = RequestParts::standard_v3().with_header(HEADER_TIMESTAMP, &format!("0{TS_MS}"));
    assert_eq!(check(&parts), Err(VerifyError::MalformedTimestamp));
}

#[test]
fn a_zero_ending_the_url_cannot_move_into_the_timestamp_under_the_same_signature() {
    // v3 hashes METHOD + URI' + body + timestamp with nothing between them: "...=62510" + "T"
    // and "...=6251" + "0T" are the same bytes.
    let ts = TS_MS.to_string();
    let signed = RequestParts::signed_v3(
        &secret(),
        "GET",
        "https://example.com/hubspot/relay/contacts?portalId=62510",
        b"",
        &ts,
    );
    let shifted = signed
        .with_uri("https://example.com/hubspot/relay/contacts?portalId=6251")
        .with_header(HEADER_TIMESTAMP, &format!("0{ts}"));
    assert_eq!(check(&shifted), Err(VerifyError::MalformedTimestamp));
}

#[test]
fn a_timestamp_just_over_the_window_old_is_too_old_with_its_exact_age() {
    let parts = RequestParts::standard_v3();
    assert_eq!(check_at(&parts, TS_MS + 300_000), Ok(VERIFIED_CURRENT));
    assert_eq!(
        check_at(&parts, TS_MS + 300_001),
        Err(VerifyError::TimestampTooOld { age_ms: 300_001 })
    );
    assert_eq!(
        check_at(&parts, TS_MS + 3_000_000),
        Err(VerifyError::TimestampTooOld { age_ms: 3_000_000 })
    );
}

#[test]
fn a_timestamp_just_over_the_window_ahead_is_in_the_future_with_its_exact_lead() {
    let parts = RequestParts::standard_v3();
    assert_eq!(check_at(&parts, TS_MS - 300_000), Ok(VERIFIED_CURRENT));
    assert_eq!(
        check_at(&parts, TS_MS - 300_001),
        Err(VerifyError::TimestampInFuture { ahead_ms: 300_001 })
    );
}

#[test]
fn a_narrowed_window_rejects_what_the_default_window_accepts() {
    let parts = RequestParts::standard_v3();
    let policy = Policy::v3_only().with_window_ms(30_000).unwrap();
    assert_eq!(policy.window_ms(), 30_000);
    assert_eq!(
        verify(&parts.request(), &secrets(), &policy, TS_MS + 30_000),
        Ok(VERIFIED_CURRENT)
    );
    assert_eq!(
        verify(&parts.request(), &secrets(), &policy, TS_MS + 30_001),
        Err(VerifyError::TimestampTooOld { age_ms: 30_001 })
    );
}

#[test]
fn the_window_can_only_be_narrowed() {
    assert_eq!(Policy::v3_only().window_ms(), 300_000);
    assert_eq!(
        Policy::v3_only().with_window_ms(300_001),
        Err(PolicyError::WindowTooWide)
    );
    assert_eq!(
        Policy::v3_only().with_window_ms(0),
        Err(PolicyError::WindowZero)
    );
    assert!(Policy::v3_only().with_window_ms(300_000).is_ok());
}

#[test]
fn the_window_is_checked_before_the_signature_so_a_stale_replay_is_reported_as_stale() {
    let parts = RequestParts::standard_v3().with_header(HEADER_SIGNATURE_V3, "not base64");
    assert_eq!(
        check_at(&parts, TS_MS + 400_000),
        Err(VerifyError::TimestampTooOld { age_ms: 400_000 })
    );
}

#[test]
fn a_missing_timestamp_header_is_reported_by_name() {
    let parts = RequestParts::standard_v3().without_header(HEADER_TIMESTAMP);
    assert_eq!(
        check(&parts),
        Err(VerifyError::MissingHeader(HEADER_TIMESTAMP))
    );
}

#[test]
fn a_timestamp_without_its_v3_signature_is_reported_as_a_missing_v3_signature() {
    let parts = RequestParts::standard_v3().without_header(HEADER_SIGNATURE_V3);
    assert_eq!(
        check(&parts),
        Err(VerifyError::MissingHeader(HEADER_SIGNATURE_V3))
    );
}

#[test]
fn a_request_without_any_signature_header_names_the_header_the_policy_wants() {
    let parts = RequestParts::unsigned(METHOD, URI, BODY);
    assert_eq!(
        check(&parts),
        Err(VerifyError::MissingHeader(HEADER_SIGNATURE_V3))
    );
    let v1_only = Policy::accepting(&[SignatureVersion::V1]);
    assert_eq!(
        verify(&parts.request(), &secrets(), &v1_only, NOW_MS),
        Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
    );
}

#[test]
fn a_non_integer_timestamp_is_malformed() {
    for ts in ["abc", "1693657560000ms", "0x1", "1e12", "1_693_657_560_000"] {
        let parts = RequestParts::standard_v3().with_header(HEADER_TIMESTAMP, ts);
        assert_eq!(check(&parts), Err(VerifyError::MalformedTimestamp), "{ts}");
    }
}

#[test]
fn an_empty_or_space_padded_timestamp_is_malformed() {
    for ts in ["", " 1693657560000", "1693657560000 ", "1693657560 000"] {
        let parts = RequestParts::standard_v3().with_header(HEADER_TIMESTAMP, ts);
        assert_eq!(
            check(&parts),
            Err(VerifyError::MalformedTimestamp),
            "{ts:?}"
        );
    }
}

#[test]
fn a_negative_timestamp_is_malformed() {
    let parts = RequestParts::standard_v3().with_header(HEADER_TIMESTAMP, "-1693657560000");
    assert_eq!(check(&parts), Err(VerifyError::MalformedTimestamp));
    let parts = RequestParts::standard_v3().with_header(HEADER_TIMESTAMP, "+1693657560000");
    assert_eq!(check(&parts), Err(VerifyError::MalformedTimestamp));
}

#[test]
fn a_float_rendered_timestamp_is_malformed() {
    // A known failure cause: a timestamp passed through a float and printed as `...0.0`.
    let signed = RequestParts::signed_v3(&secret(), METHOD, URI, BODY, "1693657560000.0");
    assert_eq!(check(&signed), Err(VerifyError::MalformedTimestamp));
}

#[test]
fn a_timestamp_that_overflows_u64_is_malformed() {
    let parts = RequestParts::standard_v3().with_header(HEADER_TIMESTAMP, "18446744073709551616");
    assert_eq!(check(&parts), Err(VerifyError::MalformedTimestamp));
}

#[test]
fn a_non_utf8_timestamp_is_malformed() {
    let parts =
        RequestParts::standard_v3().with_header_bytes(HEADER_TIMESTAMP, b"169365756\xff0000");
    assert_eq!(check(&parts), Err(VerifyError::MalformedTimestamp));
}

#[test]
fn a_signature_with_the_case_of_one_letter_changed_is_a_mismatch() {
    let parts = RequestParts::standard_v3();
    let sig = parts.header(HEADER_SIGNATURE_V3);
    let i = sig.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let mut changed: Vec<u8> = sig.clone().into_bytes();
    changed[i] = if changed[i].is_ascii_lowercase() {
        changed[i].to_ascii_uppercase()
    } else {
        changed[i].to_ascii_lowercase()
    };
    let parts = parts.with_header(HEADER_SIGNATURE_V3, std::str::from_utf8(&changed).unwrap());
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn each_of_the_twelve_escapes_hashes_like_its_decoded_character() {
    let escapes = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    for (escape, decoded) in escapes {
        let escaped_uri = format!("https://hooks.example.com/h?v=a{escape}b");
        let decoded_uri = format!("https://hooks.example.com/h?v=a{decoded}b");
        assert_eq!(
            check(&signed_over_arriving_as(&escaped_uri, &decoded_uri)),
            Ok(VERIFIED_CURRENT),
            "signed over {escape}, arriving as {decoded}"
        );
        assert_eq!(
            check(&signed_over_arriving_as(&decoded_uri, &escaped_uri)),
            Ok(VERIFIED_CURRENT),
            "signed over {decoded}, arriving as {escape}"
        );
    }
}

#[test]
fn escapes_outside_the_twelve_are_hashed_as_they_arrived() {
    // (signed over, arriving as): each pair differs only in an escape that must NOT be decoded.
    let pairs = [
        ("%20", " "),
        ("%20", "+"),
        ("%2B", "+"),
        ("%3D", "="),
        ("%26", "&"),
        ("%25", "%"),
        ("%7E", "~"),
        ("%C3%A9", "é"),
        ("+", "%2B"),
        ("+", "%20"),
    ];
    for (signed, arriving) in pairs {
        let signed_uri = format!("https://hooks.example.com/h?v=a{signed}b");
        let arriving_uri = format!("https://hooks.example.com/h?v=a{arriving}b");
        assert_eq!(
            check(&signed_over_arriving_as(&signed_uri, &arriving_uri)),
            Err(VerifyError::Mismatch),
            "signed over {signed}, arriving as {arriving}"
        );
        assert_eq!(
            check(&signed_over_arriving_as(&signed_uri, &signed_uri)),
            Ok(VERIFIED_CURRENT),
            "signed and arriving as {signed}"
        );
    }
}

#[test]
fn a_double_encoded_escape_is_not_decoded_twice() {
    assert_eq!(
        check(&signed_over_arriving_as(
            "https://hooks.example.com/h?v=%253A",
            "https://hooks.example.com/h?v=%3A"
        )),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn a_lower_case_escape_is_accepted_under_either_reading() {
    for (lower, decoded) in [("%3a", ":"), ("%2f", "/"), ("%2a", "*"), ("%3b", ";")] {
        let lower_uri = format!("https://hooks.example.com/h?v=a{lower}b%3A");
        let decoded_uri = format!("https://hooks.example.com/h?v=a{decoded}b%3A");
        // HubSpot hashed the escape as it was ...
        assert_eq!(
            check(&signed_over_arriving_as(&lower_uri, &lower_uri)),
            Ok(VERIFIED_CURRENT),
            "{lower} kept"
        );
        // ... or decoded it like its upper-case form.
        assert_eq!(
            check(&signed_over_arriving_as(&decoded_uri, &lower_uri)),
            Ok(VERIFIED_CURRENT),
            "{lower} decoded"
        );
        // Arriving already decoded, there is only one reading: the one without the escape.
        assert_eq!(
            check(&signed_over_arriving_as(&lower_uri, &decoded_uri)),
            Err(VerifyError::Mismatch),
            "{lower} signed verbatim, arriving as {decoded}"
        );
    }
}

#[test]
fn a_signature_whose_plus_arrives_as_a_space_still_verifies() {
    // Find a timestamp whose signature contains a `+`, as a form decoder would mangle it.
    let (parts, sig) = (0..1000)
        .map(|i| {
            let ts = (TS_MS + i).to_string();
            let sig = sign_v3(&secret(), METHOD, URI, BODY, &ts);
            (
                RequestParts::signed_v3(&secret(), METHOD, URI, BODY, &ts),
                sig,
            )
        })
        .find(|(_, sig)| sig.contains('+'))
        .unwrap();
    let mangled = sig.replace('+', " ");
    let parts = parts.with_header(HEADER_SIGNATURE_V3, &mangled);
    assert_eq!(check(&parts), Ok(VERIFIED_CURRENT));
}

#[test]
fn a_truncated_base64_signature_is_bad_encoding() {
    let sig = RequestParts::standard_v3().header(HEADER_SIGNATURE_V3);
    for truncated in [&sig[..43], &sig[..40], &sig[..1], ""] {
        let parts = RequestParts::standard_v3().with_header(HEADER_SIGNATURE_V3, truncated);
        assert_eq!(
            check(&parts),
            Err(VerifyError::BadEncoding),
            "{truncated:?}"
        );
    }
}

#[test]
fn an_over_padded_base64_signature_is_bad_encoding() {
    let sig = RequestParts::standard_v3().header(HEADER_SIGNATURE_V3);
    for padded in [
        format!("{sig}="),
        format!("{sig}=="),
        format!("{}==", &sig[..43]),
    ] {
        let parts = RequestParts::standard_v3().with_header(HEADER_SIGNATURE_V3, &padded);
        assert_eq!(check(&parts), Err(VerifyError::BadEncoding), "{padded}");
    }
}

#[test]
fn a_non_base64_signature_is_bad_encoding() {
    let sig = RequestParts::standard_v3().header(HEADER_SIGNATURE_V3);
    let url_safe = sig.replace('+', "-").replace('/', "_");
    let hex = sign_v1(&secret(), BODY);
    for bad in [
        "!".repeat(44),
        format!("{}!", &sig[..43]),
        format!("*{}", &sig[1..]),
        hex,
        url_safe,
    ] {
        if bad == sig {
            continue;
        }
        let parts = RequestParts::standard_v3().with_header(HEADER_SIGNATURE_V3, &bad);
        assert_eq!(check(&parts), Err(VerifyError::BadEncoding), "{bad}");
    }
}

#[test]
fn a_base64_signature_with_non_zero_trailing_bits_is_bad_encoding() {
    // 32 bytes leave 2 unused bits in the 43rd character; a canonical encoder leaves them zero.
    let sig = RequestParts::standard_v3().header(HEADER_SIGNATURE_V3);
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let last = alphabet.find(sig.as_bytes()[42] as char).unwrap();
    let non_canonical = alphabet.as_bytes()[last | 1] as char;
    let bad = format!("{}{non_canonical}=", &sig[..42]);
    let parts = RequestParts::standard_v3().with_header(HEADER_SIGNATURE_V3, &bad);
    assert_eq!(check(&parts), Err(VerifyError::BadEncoding));
}

#[test]
fn a_base64_signature_of_the_wrong_length_is_bad_encoding() {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    for len in [31, 33, 64] {
        let parts = RequestParts::standard_v3()
            .with_header(HEADER_SIGNATURE_V3, &engine.encode(vec![7u8; len]));
        assert_eq!(check(&parts), Err(VerifyError::BadEncoding), "{len} bytes");
    }
}

#[test]
fn a_non_utf8_signature_is_bad_encoding() {
    let parts = RequestParts::standard_v3().with_header_bytes(HEADER_SIGNATURE_V3, &[0xff; 44]);
    assert_eq!(check(&parts), Err(VerifyError::BadEncoding));
}

#[test]
fn an_empty_secret_is_refused_when_the_set_is_built() {
    assert_eq!(SecretSet::new(Secret::new("")), Err(EmptySecret));
    assert_eq!(secrets().with_previous(Secret::new("")), Err(EmptySecret));
}

#[test]
fn a_signature_made_with_another_secret_is_a_mismatch() {
    let parts = RequestParts::signed_v3(
        &Secret::new("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"),
        METHOD,
        URI,
        BODY,
        &TS_MS.to_string(),
    );
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn a_signature_made_with_the_previous_secret_verifies_as_previous() {
    let new_secret = Secret::new("nnnnnnnn-nnnn-nnnn-nnnn-nnnnnnnnnnnn");
    let rotating = SecretSet::new(new_secret.clone())
        .unwrap()
        .with_previous(secret())
        .unwrap();
    let old = RequestParts::standard_v3();
    assert_eq!(
        verify(&old.request(), &rotating, &Policy::v3_only(), NOW_MS),
        Ok(Verified {
            version: SignatureVersion::V3,
            secret: SecretSlot::Previous
        })
    );
    let new = RequestParts::signed_v3(&new_secret, METHOD, URI, BODY, &TS_MS.to_string());
    assert_eq!(
        verify(&new.request(), &rotating, &Policy::v3_only(), NOW_MS),
        Ok(VERIFIED_CURRENT)
    );
}

#[test]
fn a_v3_request_on_a_route_that_does_not_accept_v3_is_refused() {
    let parts = RequestParts::standard_v3();
    let v1_v2 = Policy::accepting(&[SignatureVersion::V1, SignatureVersion::V2]);
    assert_eq!(
        verify(&parts.request(), &secrets(), &v1_v2, NOW_MS),
        Err(VerifyError::VersionNotAllowed(SignatureVersion::V3))
    );
}

#[test]
fn a_broken_v3_signature_is_not_rescued_by_a_valid_v1_signature() {
    let parts = RequestParts::standard_v3()
        .with_header(
            HEADER_SIGNATURE_V3,
            &sign_v3(&secret(), "GET", URI, BODY, "0"),
        )
        .with_header(HEADER_SIGNATURE, &sign_v1(&secret(), BODY))
        .with_header(HEADER_SIGNATURE_VERSION, "v1");
    assert_eq!(
        verify(&parts.request(), &secrets(), &all_versions(), NOW_MS),
        Err(VerifyError::Mismatch)
    );
    // Nor a stale one.
    assert_eq!(
        verify(
            &parts.request(),
            &secrets(),
            &all_versions(),
            NOW_MS + 600_000
        ),
        Err(VerifyError::TimestampTooOld { age_ms: 601_000 })
    );
    // Nor a half-present one.
    let half = parts.without_header(HEADER_SIGNATURE_V3);
    assert_eq!(
        verify(&half.request(), &secrets(), &all_versions(), NOW_MS),
        Err(VerifyError::MissingHeader(HEADER_SIGNATURE_V3))
    );
}

#[test]
fn a_duplicated_v3_header_is_refused() {
    let sig = RequestParts::standard_v3().header(HEADER_SIGNATURE_V3);
    let parts = RequestParts::standard_v3().with_extra_header(HEADER_SIGNATURE_V3, &sig);
    assert_eq!(
        check(&parts),
        Err(VerifyError::DuplicateHeader(HEADER_SIGNATURE_V3))
    );
    let parts = RequestParts::standard_v3().with_extra_header(HEADER_TIMESTAMP, &TS_MS.to_string());
    assert_eq!(
        check(&parts),
        Err(VerifyError::DuplicateHeader(HEADER_TIMESTAMP))
    );
}

#[test]
fn header_names_match_in_any_case() {
    let parts = RequestParts::standard_v3();
    let sig = parts.header(HEADER_SIGNATURE_V3);
    let parts = RequestParts::unsigned(METHOD, URI, BODY)
        .with_header("X-HubSpot-Signature-v3", &sig)
        .with_header("X-HubSpot-Request-Timestamp", &TS_MS.to_string());
    assert_eq!(check(&parts), Ok(VERIFIED_CURRENT));
}

#[test]
fn error_messages_carry_no_secret_signature_or_body() {
    let parts = RequestParts::standard_v3();
    let sig = parts.header(HEADER_SIGNATURE_V3);
    let errors = [
        VerifyError::MissingHeader(HEADER_TIMESTAMP),
        VerifyError::DuplicateHeader(HEADER_SIGNATURE_V3),
        VerifyError::MalformedTimestamp,
        VerifyError::TimestampTooOld { age_ms: 1 },
        VerifyError::TimestampInFuture { ahead_ms: 1 },
        VerifyError::BadEncoding,
        VerifyError::Mismatch,
        VerifyError::VersionNotAllowed(SignatureVersion::V1),
        VerifyError::UnknownVersion,
    ];
    let body = std::str::from_utf8(BODY).unwrap();
    for error in errors {
        let text = format!("{error} {error:?}");
        assert!(!text.contains(SECRET) && !text.contains(&sig) && !text.contains(body));
    }
    let debug = format!("{:?}", parts.request());
    assert!(!debug.contains(&sig), "{debug}");
    assert!(!debug.contains(body), "{debug}");
}
