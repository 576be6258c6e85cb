use super::*;
use crate::signature::{sign_v2, sign_v3};
use http::{HeaderMap, HeaderValue};

const SECRET: &str = "current-test-secret";
const OLD_SECRET: &str = "previous-test-secret";
const NOW: u64 = 1_700_000_000_000;
const URL: &str = "https://hooks.example.com/webhooks/hubspot";
const BODY: &str = r#"[{"eventId":1,"portalId":62515,"subscriptionType":"contact.creation"}]"#;

fn secret() -> Secret {
    Secret::new(SECRET)
}

fn only_current() -> SecretSet {
    SecretSet::new(secret()).unwrap()
}

/// A request as received: the signature made over `signed_*`, the rest as given.
struct Received {
    uri: String,
    body: Vec<u8>,
    headers: HeaderMap,
}

impl Received {
    fn explain_with(&self, secrets: &SecretSet, hints: &Hints<'_>) -> Explanation {
        let request = SignedRequest {
            method: "POST",
            uri: &self.uri,
            body: &self.body,
            headers: &self.headers,
        };
        let policy = Policy::accepting(&[
            SignatureVersion::V1,
            SignatureVersion::V2,
            SignatureVersion::V3,
        ]);
        explain(&request, secrets, &policy, NOW, hints)
    }

    fn explain(&self) -> Explanation {
        self.explain_with(&only_current(), &Hints::default())
    }
}

fn v3_headers(signature: &str, timestamp: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        HEADER_SIGNATURE_V3,
        HeaderValue::from_str(signature).unwrap(),
    );
    headers.insert(HEADER_TIMESTAMP, HeaderValue::from_str(timestamp).unwrap());
    headers
}

/// Signed by HubSpot over `signed_uri` and `signed_body`; received as `uri` and `body`.
fn v3(signed_uri: &str, signed_body: &[u8], uri: &str, body: &[u8]) -> Received {
    let ts = NOW.to_string();
    let signature = sign_v3(&secret(), "POST", signed_uri, signed_body, &ts);
    Received {
        uri: uri.to_owned(),
        body: body.to_vec(),
        headers: v3_headers(&signature, &ts),
    }
}

fn v2(signed_uri: &str, uri: &str) -> Received {
    let mut headers = HeaderMap::new();
    let signature = sign_v2(&secret(), "POST", signed_uri, BODY.as_bytes());
    headers.insert(HEADER_SIGNATURE, HeaderValue::from_str(&signature).unwrap());
    headers.insert(HEADER_SIGNATURE_VERSION, HeaderValue::from_static("v2"));
    Received {
        uri: uri.to_owned(),
        body: BODY.as_bytes().to_vec(),
        headers,
    }
}

fn url_mangled(signed_uri: &str, uri: &str) -> Received {
    v3(signed_uri, BODY.as_bytes(), uri, BODY.as_bytes())
}

fn body_mangled(signed_body: &[u8], body: &[u8]) -> Received {
    v3(URL, signed_body, URL, body)
}

fn diagnosis(explanation: &Explanation) -> Option<ManglingKind> {
    match explanation {
        Explanation::Invalid { diagnosis, .. } => diagnosis.as_ref().map(|m| m.kind),
        Explanation::Valid { .. } => panic!("expected an invalid request: {explanation}"),
    }
}

/// A timestamp whose signature satisfies `want`, searched from NOW.
fn timestamp_where(want: impl Fn(&str) -> bool) -> (String, String) {
    (0..100_000u64)
        .map(|i| (NOW - i).to_string())
        .map(|ts| {
            let sig = sign_v3(&secret(), "POST", URL, BODY.as_bytes(), &ts);
            (ts, sig)
        })
        .find(|(_, sig)| want(sig))
        .unwrap()
}

#[test]
fn a_correctly_signed_request_is_valid() {
    let e = url_mangled(URL, URL).explain();
    assert_eq!(
        e,
        Explanation::Valid {
            version: SignatureVersion::V3,
            slot: SecretSlot::Current,
            tolerated: None
        }
    );
}

#[test]
fn a_wrong_secret_with_no_mangling_gets_no_diagnosis() {
    let received = url_mangled(URL, URL);
    let wrong = SecretSet::new(Secret::new("another-secret")).unwrap();
    let e = received.explain_with(&wrong, &Hints::default());
    let Explanation::Invalid {
        first_failure,
        diagnosis,
        checked,
        signature_matches,
        ..
    } = &e
    else {
        panic!("expected invalid");
    };
    assert_eq!(*first_failure, Check::Mismatch);
    assert_eq!(*diagnosis, None);
    assert_eq!(*signature_matches, None);
    assert!(checked.contains(&ManglingKind::JsonReserialised));
    assert!(checked.contains(&ManglingKind::TimestampAltered));
    assert!(e.to_string().contains("No known mangling matches"));
}

#[test]
fn plus_turned_into_spaces_is_accepted_but_named() {
    let (ts, sig) = timestamp_where(|s| s[1..].contains('+'));
    let received = Received {
        uri: URL.to_owned(),
        body: BODY.as_bytes().to_vec(),
        headers: v3_headers(&sig.replace('+', " "), &ts),
    };
    let e = received.explain();
    assert!(e.is_valid());
    assert_eq!(
        e.mangling().map(|m| m.kind),
        Some(ManglingKind::PlusAsSpace)
    );
}

#[test]
fn a_leading_plus_lost_as_a_trimmed_space_is_diagnosed() {
    let (ts, sig) = timestamp_where(|s| s.starts_with('+'));
    let received = Received {
        uri: URL.to_owned(),
        body: BODY.as_bytes().to_vec(),
        headers: v3_headers(&sig[1..], &ts),
    };
    let e = received.explain();
    assert!(matches!(
        e,
        Explanation::Invalid {
            first_failure: Check::MalformedSignature,
            ..
        }
    ));
    assert_eq!(diagnosis(&e), Some(ManglingKind::PlusAsSpace));
}

#[test]
fn a_request_signed_with_the_previous_secret_the_verifier_dropped_is_diagnosed() {
    let ts = NOW.to_string();
    let signature = sign_v3(&Secret::new(OLD_SECRET), "POST", URL, BODY.as_bytes(), &ts);
    let received = Received {
        uri: URL.to_owned(),
        body: BODY.as_bytes().to_vec(),
        headers: v3_headers(&signature, &ts),
    };
    let old = Secret::new(OLD_SECRET);
    let hints = Hints {
        other_secrets: vec![(SecretSlot::Previous, &old)],
        ..Hints::default()
    };
    let e = received.explain_with(&only_current(), &hints);
    assert_eq!(diagnosis(&e), Some(ManglingKind::WrongSecret));
    assert_eq!(e.mangling().map(|m| m.slot), Some(SecretSlot::Previous));
}

#[test]
fn a_request_signed_with_a_current_secret_the_verifier_lacks_is_diagnosed() {
    let received = url_mangled(URL, URL);
    let stale = SecretSet::new(Secret::new(OLD_SECRET)).unwrap();
    let current = secret();
    let hints = Hints {
        other_secrets: vec![(SecretSlot::Current, &current)],
        ..Hints::default()
    };
    let e = received.explain_with(&stale, &hints);
    assert_eq!(diagnosis(&e), Some(ManglingKind::WrongSecret));
    assert_eq!(e.mangling().map(|m| m.slot), Some(SecretSlot::Current));
}

#[test]
fn a_pretty_printed_body_is_diagnosed_as_reserialised_json() {
    let pretty = "[\n  {\n    \"eventId\": 1,\n    \"portalId\": 62515,\n    \"subscriptionType\": \"contact.creation\"\n  }\n]";
    let e = body_mangled(BODY.as_bytes(), pretty.as_bytes()).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::JsonReserialised));
}

#[test]
fn utf8_rewritten_as_unicode_escapes_is_diagnosed_as_reserialised_json() {
    let signed = r#"[{"propertyValue":"Jürgen 😀"}]"#;
    let received = r#"[{"propertyValue":"J\u00fcrgen \ud83d\ude00"}]"#;
    let e = body_mangled(signed.as_bytes(), received.as_bytes()).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::JsonReserialised));
}

#[test]
fn unicode_escapes_written_out_as_utf8_are_diagnosed_as_reserialised_json() {
    let signed = r#"[{"propertyValue":"J\u00fcrgen"}]"#;
    let received = r#"[{"propertyValue":"Jürgen"}]"#;
    let e = body_mangled(signed.as_bytes(), received.as_bytes()).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::JsonReserialised));
}

#[test]
fn a_body_received_as_base64_is_diagnosed() {
    let encoded = STANDARD.encode(BODY);
    let e = body_mangled(BODY.as_bytes(), encoded.as_bytes()).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::BodyBase64Encoded));
}

#[test]
fn a_body_signed_as_base64_but_received_decoded_is_diagnosed() {
    let encoded = STANDARD.encode(BODY);
    let e = body_mangled(encoded.as_bytes(), BODY.as_bytes()).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::BodyBase64Decoded));
}

#[test]
fn a_stage_inserted_into_the_path_is_diagnosed() {
    let e = url_mangled(URL, "https://hooks.example.com/Prod/webhooks/hubspot").explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::StagePrefixAdded));
}

#[test]
fn a_stage_missing_from_the_path_is_diagnosed_from_the_event_stage() {
    let received = url_mangled(
        "https://abc.execute-api.us-east-1.amazonaws.com/live2/webhooks/hubspot",
        "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot",
    );
    let hints = Hints {
        stage: Some("live2"),
        ..Hints::default()
    };
    let e = received.explain_with(&only_current(), &hints);
    assert_eq!(diagnosis(&e), Some(ManglingKind::StagePrefixMissing));
    assert_eq!(e.mangling().unwrap().detail, "/live2");
}

#[test]
fn a_conventional_stage_missing_from_the_path_is_found_without_hints() {
    let e = url_mangled("https://hooks.example.com/prod/webhooks/hubspot", URL).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::StagePrefixMissing));
}

#[test]
fn a_mapping_key_missing_from_the_raw_path_is_diagnosed_against_the_public_url() {
    let public = "https://hooks.example.com/v1/webhooks/hubspot";
    let received = url_mangled(public, URL);
    let hints = Hints {
        public_url: Some(public),
        ..Hints::default()
    };
    let e = received.explain_with(&only_current(), &hints);
    assert_eq!(diagnosis(&e), Some(ManglingKind::MappingKeyMissing));
    assert!(
        e.to_string()
            .contains("HSBRIDGE_PUBLIC_BASE_URL=<scheme>://<host>/v1")
    );
}

#[test]
fn a_public_base_url_alone_is_enough_to_find_the_mapping_key() {
    let received = url_mangled("https://hooks.example.com/v1/webhooks/hubspot", URL);
    let hints = Hints {
        public_url: Some("https://hooks.example.com/v1"),
        ..Hints::default()
    };
    let e = received.explain_with(&only_current(), &hints);
    assert_eq!(diagnosis(&e), Some(ManglingKind::MappingKeyMissing));
}

#[test]
fn a_path_segment_hubspot_never_called_is_diagnosed_as_an_added_mapping_key() {
    let received = url_mangled(URL, "https://hooks.example.com/v1/webhooks/hubspot");
    let hints = Hints {
        public_url: Some(URL),
        ..Hints::default()
    };
    let e = received.explain_with(&only_current(), &hints);
    assert_eq!(diagnosis(&e), Some(ManglingKind::MappingKeyAdded));
}

#[test]
fn mapping_keys_and_hosts_are_skipped_without_a_public_url() {
    let e = url_mangled(URL, URL).explain_with(
        &SecretSet::new(Secret::new("x")).unwrap(),
        &Hints::default(),
    );
    let Explanation::Invalid { skipped, .. } = e else {
        panic!()
    };
    assert!(skipped.contains(&(ManglingKind::HostDiffers, SkipReason::NeedsPublicUrl)));
    assert!(skipped.contains(&(ManglingKind::MappingKeyMissing, SkipReason::NeedsPublicUrl)));
}

#[test]
fn a_host_rewritten_by_a_proxy_is_diagnosed() {
    let received = url_mangled(URL, "https://internal.local:8443/webhooks/hubspot");
    let hints = Hints {
        public_url: Some(URL),
        ..Hints::default()
    };
    let e = received.explain_with(&only_current(), &hints);
    assert_eq!(diagnosis(&e), Some(ManglingKind::HostDiffers));
}

#[test]
fn http_and_https_swapped_is_diagnosed() {
    let e = url_mangled(URL, "http://hooks.example.com/webhooks/hubspot").explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::SchemeChanged));
}

#[test]
fn a_trailing_slash_added_is_diagnosed() {
    let e = url_mangled(URL, "https://hooks.example.com/webhooks/hubspot/").explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::TrailingSlashAdded));
}

#[test]
fn a_trailing_slash_removed_is_diagnosed() {
    let e = url_mangled("https://hooks.example.com/webhooks/hubspot/", URL).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::TrailingSlashRemoved));
}

#[test]
fn reordered_query_parameters_are_diagnosed() {
    let e = url_mangled(
        "https://hooks.example.com/webhooks/hubspot?z=1&a=2&m=3",
        "https://hooks.example.com/webhooks/hubspot?a=2&m=3&z=1",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::QueryReordered));
}

#[test]
fn a_fully_decoded_url_is_diagnosed() {
    let e = url_mangled(
        "https://hooks.example.com/webhooks/hubspot?name=J%C3%BCrgen%20M&tag=a%2Bb",
        "https://hooks.example.com/webhooks/hubspot?name=Jürgen M&tag=a+b",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::UriDecoded));
}

#[test]
fn a_re_encoded_url_is_diagnosed() {
    let e = url_mangled(
        "https://hooks.example.com/webhooks/hubspot?user=~ann",
        "https://hooks.example.com/webhooks/hubspot?user=%7Eann",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::UriReEncoded));
}

#[test]
fn a_double_encoded_reserved_escape_is_diagnosed_as_re_encoding() {
    let e = url_mangled(
        "https://hooks.example.com/webhooks/hubspot?at=10%3A30",
        "https://hooks.example.com/webhooks/hubspot?at=10%253A30",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::UriReEncoded));
}

#[test]
fn a_v2_reserved_escape_decoded_on_the_way_is_diagnosed() {
    let e = v2(
        "https://hooks.example.com/webhooks/hubspot?at=10%3A30",
        "https://hooks.example.com/webhooks/hubspot?at=10:30",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::ReservedEscapeDecoded));
}

#[test]
fn a_v2_reserved_character_encoded_on_the_way_is_diagnosed() {
    let e = v2(
        "https://hooks.example.com/webhooks/hubspot?at=10:30",
        "https://hooks.example.com/webhooks/hubspot?at=10%3A30",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::ReservedEscapeEncoded));
}

#[test]
fn a_v3_escape_hubspot_left_encoded_is_diagnosed() {
    let uri = "https://hooks.example.com/webhooks/hubspot?list=a%2Cb";
    let ts = NOW.to_string();
    // What HubSpot would send if it did not decode %2C: URI' keeps it.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(b"POST");
    mac.update(uri.as_bytes());
    mac.update(BODY.as_bytes());
    mac.update(ts.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let received = Received {
        uri: uri.to_owned(),
        body: BODY.as_bytes().to_vec(),
        headers: v3_headers(&signature, &ts),
    };
    let e = received.explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::ReservedEscapeEncoded));
    assert!(e.to_string().contains("%2C"));
}

fn timestamp_mangled(signed_ts: &str, header_ts: &str) -> Received {
    let signature = sign_v3(&secret(), "POST", URL, BODY.as_bytes(), signed_ts);
    Received {
        uri: URL.to_owned(),
        body: BODY.as_bytes().to_vec(),
        headers: v3_headers(&signature, header_ts),
    }
}

#[test]
fn a_timestamp_signed_in_seconds_but_sent_in_milliseconds_is_diagnosed() {
    let e = timestamp_mangled(&(NOW / 1000).to_string(), &NOW.to_string()).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::TimestampAltered));
}

#[test]
fn a_timestamp_rendered_as_a_float_is_diagnosed() {
    let e = timestamp_mangled(&NOW.to_string(), &format!("{NOW}.0")).explain();
    assert!(matches!(
        e,
        Explanation::Invalid {
            first_failure: Check::MalformedTimestamp,
            ..
        }
    ));
    assert_eq!(diagnosis(&e), Some(ManglingKind::TimestampAltered));
}

#[test]
fn a_timestamp_off_by_one_millisecond_is_diagnosed() {
    let e = timestamp_mangled(&(NOW + 1).to_string(), &NOW.to_string()).explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::TimestampAltered));
}

#[test]
fn an_old_capture_names_the_skew_and_still_checks_the_mac() {
    let received = url_mangled(URL, URL);
    let request = SignedRequest {
        method: "POST",
        uri: &received.uri,
        body: &received.body,
        headers: &received.headers,
    };
    let later = NOW + 3 * 86_400_000;
    let e = explain(
        &request,
        &only_current(),
        &Policy::v3_only(),
        later,
        &Hints::default(),
    );
    let Explanation::Invalid {
        first_failure,
        signature_matches,
        diagnosis,
        ..
    } = &e
    else {
        panic!()
    };
    assert_eq!(
        *first_failure,
        Check::TimestampSkew {
            by_ms: 3 * 86_400_000,
            direction: Skew::Past,
            window_ms: 300_000
        }
    );
    assert_eq!(*signature_matches, Some(SecretSlot::Current));
    assert_eq!(*diagnosis, None);
    assert!(e.to_string().contains("3 days"));
}

#[test]
fn an_old_capture_with_a_mangling_is_still_diagnosed() {
    let received = url_mangled(URL, "https://hooks.example.com/webhooks/hubspot/");
    let request = SignedRequest {
        method: "POST",
        uri: &received.uri,
        body: &received.body,
        headers: &received.headers,
    };
    let e = explain(
        &request,
        &only_current(),
        &Policy::v3_only(),
        NOW - 600_000,
        &Hints::default(),
    );
    assert!(matches!(
        e,
        Explanation::Invalid {
            first_failure: Check::TimestampSkew {
                direction: Skew::Future,
                ..
            },
            ..
        }
    ));
    assert_eq!(diagnosis(&e), Some(ManglingKind::TrailingSlashAdded));
}

#[test]
fn a_missing_header_is_named_without_a_diagnosis() {
    let mut received = url_mangled(URL, URL);
    received.headers.remove(HEADER_TIMESTAMP);
    let e = received.explain();
    assert_eq!(
        e,
        Explanation::Invalid {
            version: None,
            first_failure: Check::MissingHeader(HEADER_TIMESTAMP),
            signature_matches: None,
            diagnosis: None,
            checked: Vec::new(),
            skipped: Vec::new(),
            prefixes: SignaturePrefixes::default(),
            extra_macs: 0,
        }
    );
}

#[test]
fn a_version_the_route_refuses_is_named() {
    let received = v2(URL, URL);
    let request = SignedRequest {
        method: "POST",
        uri: &received.uri,
        body: &received.body,
        headers: &received.headers,
    };
    let e = explain(
        &request,
        &only_current(),
        &Policy::v3_only(),
        NOW,
        &Hints::default(),
    );
    assert!(matches!(
        e,
        Explanation::Invalid {
            first_failure: Check::VersionNotAllowed(SignatureVersion::V2),
            diagnosis: None,
            ..
        }
    ));
}

#[test]
fn the_extra_macs_never_exceed_the_cap() {
    let uri = "https://hooks.example.com/Prod/webhooks/hubspot/?c=%3A(%2C)&b=%7E%C3%A9&a=x+y";
    let body = "[ {\"v\": \"J\\u00fcrgen\", \"w\": \"é\"} ]";
    let received = v3(URL, BODY.as_bytes(), uri, body.as_bytes());
    let two = SecretSet::new(Secret::new("a"))
        .unwrap()
        .with_previous(Secret::new("b"))
        .unwrap();
    let spare = Secret::new("c");
    let e = received.explain_with(
        &two,
        &Hints {
            public_url: Some("https://elsewhere.example.com/v9/x"),
            host_url: Some("http://other.internal/Stage/webhooks/hubspot"),
            other_secrets: vec![
                (SecretSlot::Previous, &spare),
                (SecretSlot::Previous, &spare),
            ],
            ..Hints::default()
        },
    );
    let Explanation::Invalid {
        extra_macs,
        skipped,
        diagnosis,
        ..
    } = e
    else {
        panic!()
    };
    assert!(extra_macs <= MAX_EXTRA_MACS, "{extra_macs}");
    assert_eq!(diagnosis, None);
    assert_eq!(extra_macs, MAX_EXTRA_MACS, "{skipped:?}");
    assert!(skipped.iter().any(|(_, r)| *r == SkipReason::Budget));
}

#[test]
fn no_output_holds_a_secret_or_a_full_signature() {
    let received = url_mangled(URL, "https://hooks.example.com/webhooks/hubspot/");
    let full = received.headers[HEADER_SIGNATURE_V3]
        .to_str()
        .unwrap()
        .to_owned();
    let old = Secret::new(OLD_SECRET);
    let hints = Hints {
        other_secrets: vec![(SecretSlot::Previous, &old)],
        ..Hints::default()
    };
    for secrets in [
        only_current(),
        SecretSet::new(Secret::new("zz-other")).unwrap(),
    ] {
        let e = received.explain_with(&secrets, &hints);
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(SECRET));
            assert!(!text.contains(OLD_SECRET));
            assert!(!text.contains("zz-other"));
            assert!(!text.contains(&full));
            assert!(!text.contains(&full[..PREFIX_LEN + 1]));
        }
    }
}

#[test]
fn context_parameters_appended_after_signing_are_diagnosed() {
    // The card's fetch was signed without the caller's context; HubSpot appended it after.
    let e = url_mangled(
        "https://hooks.example.com/hubspot/relay/notes?q=1",
        "https://hooks.example.com/hubspot/relay/notes?q=1&userId=7&portalId=62515&appId=9&userEmail=a%40b.c",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::ContextParamsAppended));
    let text = e.to_string();
    assert!(
        text.contains("without userId, portalId, appId, userEmail"),
        "{text}"
    );
    // In another order, and with nothing else in the query.
    let e = url_mangled(
        "https://hooks.example.com/hubspot/relay/notes",
        "https://hooks.example.com/hubspot/relay/notes?userEmail=a%40b.c&appId=9&portalId=1&userId=7",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::ContextParamsAppended));
    // A URL that named the portal itself, the rest appended.
    let e = url_mangled(
        "https://hooks.example.com/hubspot/relay/notes?portalId=62515",
        "https://hooks.example.com/hubspot/relay/notes?portalId=62515&userId=7&appId=9",
    )
    .explain();
    assert_eq!(diagnosis(&e), Some(ManglingKind::ContextParamsAppended));
}

#[test]
fn the_readings_without_context_keep_the_other_parameters_in_order() {
    assert_eq!(
        without_context(Some("b=2&userId=7&a=1&portalId=5")),
        [
            ("userId, portalId".to_owned(), "b=2&a=1".to_owned()),
            ("userId".to_owned(), "b=2&a=1&portalId=5".to_owned()),
        ]
    );
    assert!(without_context(Some("a=1&b=2")).is_empty());
    assert!(without_context(None).is_empty());
    assert_eq!(
        without_context(Some("portalId=5")),
        [("portalId".to_owned(), String::new())]
    );
}
