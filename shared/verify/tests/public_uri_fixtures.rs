//! Real-shaped Lambda events for one HubSpot-signed webhook (`POST` with the query
//! `email=a%40b.com&q=x%20y%2Bz`), parsed by `lambda_http` exactly as a deployed function would:
//! the URL is rebuilt from `raw_http_path()` and `uri().query()`, and its v3 signature is checked.
//!
//! The signatures in `tests/fixtures/*.json` were computed independently (Python's `hmac`) over
//! the URL HubSpot called, with the secret of HubSpot's published vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hsbridge_verify::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_V3, Policy, PublicBase, Secret, SecretSet, SecretSlot,
    SignatureVersion, SignedRequest, Verified, VerifyError, rebuild_public_uri, sign_v1, sign_v3,
    verify,
};
use lambda_http::RequestExt as _;

const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const SIGNED_AT_MS: u64 = 1_717_171_717_000;
const NOW_MS: u64 = SIGNED_AT_MS + 2_000;
const QUERY: &str = "email=a%40b.com&q=x%20y%2Bz";
const BODY: &str = r#"[{"eventId":3802365731,"subscriptionId":2874455,"portalId":62515,"appId":1160452,"occurredAt":1717171716402,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":5101,"propertyName":"firstname","propertyValue":"Zoë","changeSource":"CRM_UI","sourceId":"userId:9182736"}]"#;
const EXECUTE_API: &str = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com";

fn event(json: &str) -> lambda_http::Request {
    lambda_http::request::from_str(json).unwrap()
}

/// The raw path as API Gateway received it; empty under a local server, hence the fallback.
fn raw_path(req: &lambda_http::Request) -> &str {
    match req.raw_http_path() {
        "" => req.uri().path(),
        raw => raw,
    }
}

fn rebuild(req: &lambda_http::Request, base: Option<&PublicBase>) -> String {
    rebuild_public_uri(base, req.headers(), raw_path(req), req.uri().query()).unwrap()
}

fn verify_at(req: &lambda_http::Request, uri: &str) -> Result<Verified, VerifyError> {
    let signed = SignedRequest {
        method: req.method().as_str(),
        uri,
        body: req.body(),
        headers: req.headers(),
    };
    let secrets = SecretSet::new(Secret::new(SECRET)).unwrap();
    verify(&signed, &secrets, &Policy::v3_only(), NOW_MS)
}

fn verified() -> Result<Verified, VerifyError> {
    Ok(Verified {
        version: SignatureVersion::V3,
        secret: SecretSlot::Current,
    })
}

/// The fixture's signature is the one a v3 signer computes over the URL HubSpot called.
fn assert_signed_over(req: &lambda_http::Request, called: &str) {
    let header = req.headers()[HEADER_SIGNATURE_V3].to_str().unwrap();
    let expected = sign_v3(
        &Secret::new(SECRET),
        "POST",
        called,
        BODY.as_bytes(),
        &SIGNED_AT_MS.to_string(),
    );
    assert_eq!(header, expected, "fixture signed over {called}");
}

fn stage_insertion_disabled() -> bool {
    std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_some()
}

#[test]
fn an_http_api_default_stage_event_rebuilds_the_exact_url_hubspot_called_and_verifies() {
    let req = event(include_str!("fixtures/http_api_default_stage.json"));
    let called = format!("https://{EXECUTE_API}/hubspot/webhook?{QUERY}");
    assert_signed_over(&req, &called);

    assert_eq!(req.uri().query(), Some(QUERY));
    assert_eq!(rebuild(&req, None), called);
    assert_eq!(req.body().as_ref(), BODY.as_bytes());
    assert_eq!(verify_at(&req, &called), verified());
}

#[test]
fn an_http_api_named_stage_event_keeps_the_stage_segment_exactly_once_and_verifies() {
    let req = event(include_str!("fixtures/http_api_named_stage.json"));
    let called = format!("https://{EXECUTE_API}/prod/hubspot/webhook?{QUERY}");
    assert_signed_over(&req, &called);

    assert_eq!(req.raw_http_path(), "/prod/hubspot/webhook");
    let rebuilt = rebuild(&req, None);
    assert_eq!(rebuilt, called);
    assert_eq!(rebuilt.matches("/prod/").count(), 1);
    assert_eq!(verify_at(&req, &rebuilt), verified());
}

#[test]
fn a_custom_domain_event_on_a_named_stage_rebuilds_without_the_stage_lambda_http_inserts() {
    let req = event(include_str!(
        "fixtures/http_api_custom_domain_named_stage.json"
    ));
    let called = format!("https://hooks.example.com/hubspot/webhook?{QUERY}");
    assert_signed_over(&req, &called);

    // lambda_http puts the stage into `uri().path()` although the caller never sent it ...
    if !stage_insertion_disabled() {
        assert_eq!(req.uri().path(), "/prod/hubspot/webhook");
        let from_normalised_path =
            rebuild_public_uri(None, req.headers(), req.uri().path(), req.uri().query()).unwrap();
        assert_eq!(
            verify_at(&req, &from_normalised_path),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_at(&req, &req.uri().to_string()),
            Err(VerifyError::Mismatch)
        );
    }
    // ... while the raw path is what was called.
    assert_eq!(req.raw_http_path(), "/hubspot/webhook");
    assert_eq!(rebuild(&req, None), called);
    assert_eq!(verify_at(&req, &called), verified());

    // A configured public base gives the same URL whatever the Host header says.
    let base = PublicBase::parse("https://hooks.example.com/").unwrap();
    assert_eq!(rebuild(&req, Some(&base)), called);
}

#[test]
fn a_function_url_event_with_a_base64_body_rebuilds_the_exact_url_and_verifies() {
    let req = event(include_str!("fixtures/function_url.json"));
    let called = format!(
        "https://abcdefghijklmnopqrstuvwxyz123456.lambda-url.eu-west-1.on.aws/hubspot/webhook?{QUERY}"
    );
    assert_signed_over(&req, &called);

    assert!(matches!(req.body(), lambda_http::Body::Binary(_)));
    assert_eq!(req.body().as_ref(), BODY.as_bytes());
    assert_eq!(rebuild(&req, None), called);
    assert_eq!(verify_at(&req, &called), verified());
}

#[test]
fn a_rest_api_payload_1_event_loses_the_query_order_and_encoding_so_a_full_uri_signature_fails() {
    let req = event(include_str!("fixtures/rest_api_v1.json"));
    let called = format!("https://{EXECUTE_API}/prod/hubspot/webhook?{QUERY}");
    assert_signed_over(&req, &called);

    // The body arrives intact (a body-only v1 signature would still hold) ...
    let v1 = req.headers()[HEADER_SIGNATURE].to_str().unwrap();
    assert_eq!(v1, sign_v1(&Secret::new(SECRET), req.body()));

    // ... but the query was rebuilt from a map: decoded values re-encoded, order not kept.
    let base = PublicBase::parse(&format!("https://{EXECUTE_API}/prod")).unwrap();
    let rebuilt = rebuild(&req, Some(&base));
    assert!(rebuilt.starts_with(&format!("https://{EXECUTE_API}/prod/hubspot/webhook?")));
    assert_ne!(req.uri().query(), Some(QUERY));
    assert_ne!(rebuilt, called);
    assert_eq!(verify_at(&req, &rebuilt), Err(VerifyError::Mismatch));
}
