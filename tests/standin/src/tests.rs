use super::*;

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::body::Body;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderName, Request as HttpRequest};
use tower::ServiceExt;

// Credentials and clock of AWS's published SigV4 test suite.
const SUITE_KEY: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_TOKEN: &str = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
const SUITE_DATE: &str = "20150830T123600Z";

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "test-secret-access-key-for-the-stand-in";
const CALLER: &str = "arn:aws:iam::111122223333:user/hubspot-function-caller";
const HOST_NAME: &str = "abc123.execute-api.us-east-1.amazonaws.com";

fn at(amz_date: &str) -> SystemTime {
    parse_amz_date(amz_date).expect("valid x-amz-date")
}

fn credential(key: &str, secret: &str, token: Option<&str>) -> Credential {
    Credential {
        access_key_id: key.to_owned(),
        secret_access_key: secret.to_owned(),
        session_token: token.map(str::to_owned),
        principal_arn: CALLER.to_owned(),
    }
}

fn suite_config(token: Option<&str>) -> StandinConfig {
    let mut config = StandinConfig::new(
        "us-east-1",
        vec![credential(SUITE_KEY, SUITE_SECRET, token)],
    );
    config.service = "service".to_owned();
    config
}

fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

struct SuiteCase {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    signed_headers: &'static str,
    signature: &'static str,
}

const SUITE: &[SuiteCase] = &[
    SuiteCase {
        name: "get-vanilla",
        method: "GET",
        path: "/",
        query: None,
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    SuiteCase {
        name: "post-vanilla",
        method: "POST",
        path: "/",
        query: None,
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    SuiteCase {
        name: "post-vanilla-query",
        method: "POST",
        path: "/",
        query: Some("Param1=value1"),
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
    SuiteCase {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: Some("Param2=value2&Param1=value1"),
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    SuiteCase {
        name: "get-vanilla-query-order-encoded",
        method: "GET",
        path: "/",
        query: Some("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
    },
    SuiteCase {
        name: "get-vanilla-query-unreserved",
        method: "GET",
        path: "/",
        query: Some(
            "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        ),
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    },
    SuiteCase {
        name: "get-vanilla-utf8-query",
        method: "GET",
        path: "/",
        query: Some("\u{1234}=bar"),
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    },
    SuiteCase {
        name: "get-unreserved",
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: None,
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    SuiteCase {
        name: "get-utf8",
        method: "GET",
        path: "/\u{1234}",
        query: None,
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    },
    SuiteCase {
        name: "get-space-unnormalized",
        method: "GET",
        path: "/example space/",
        query: None,
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    },
    SuiteCase {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: None,
        headers: &[("my-header1", " value1"), ("my-header2", " \"a   b   c\"")],
        body: b"",
        signed_headers: "host;my-header1;my-header2;x-amz-date",
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    SuiteCase {
        name: "get-header-key-duplicate",
        method: "GET",
        path: "/",
        query: None,
        headers: &[
            ("my-header1", "value2"),
            ("my-header1", "value2"),
            ("my-header1", "value1"),
        ],
        body: b"",
        signed_headers: "host;my-header1;x-amz-date",
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    },
    SuiteCase {
        name: "get-header-value-order",
        method: "GET",
        path: "/",
        query: None,
        headers: &[
            ("my-header1", "value4"),
            ("my-header1", "value1"),
            ("my-header1", "value3"),
            ("my-header1", "value2"),
        ],
        body: b"",
        signed_headers: "host;my-header1;x-amz-date",
        signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    },
    SuiteCase {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: None,
        headers: &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "13"),
            (
                "x-amz-content-sha256",
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
        ],
        body: b"Param1=value1",
        signed_headers: "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
        signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    },
];

fn suite_headers(case: &SuiteCase, signature: &str) -> HeaderMap {
    let mut headers = header_map(case.headers);
    headers.insert(HOST, HeaderValue::from_static("example.amazonaws.com"));
    headers.insert("x-amz-date", HeaderValue::from_static(SUITE_DATE));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={SUITE_KEY}/20150830/us-east-1/service/aws4_request, SignedHeaders={}, Signature={signature}",
        case.signed_headers
    );
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&authorization).unwrap(),
    );
    headers
}

#[test]
fn requests_from_the_official_sigv4_test_suite_pass() {
    let config = suite_config(None);
    for case in SUITE {
        let headers = suite_headers(case, case.signature);
        let verdict = verify_request(
            &config,
            case.method,
            case.path,
            case.query,
            &headers,
            case.body,
            at(SUITE_DATE),
        );
        assert!(verdict.is_ok(), "{}: {verdict:?}", case.name);
    }
}

#[test]
fn a_wrong_signature_on_any_official_test_suite_request_fails() {
    let config = suite_config(None);
    for case in SUITE {
        let mut wrong = case.signature.to_owned();
        wrong.replace_range(..1, if wrong.starts_with('0') { "1" } else { "0" });
        let headers = suite_headers(case, &wrong);
        let verdict = verify_request(
            &config,
            case.method,
            case.path,
            case.query,
            &headers,
            case.body,
            at(SUITE_DATE),
        );
        assert_eq!(
            verdict.err(),
            Some(Rejection::SignatureMismatch),
            "{}",
            case.name
        );
    }
}

#[test]
fn the_official_session_token_request_passes_only_with_its_token() {
    let case = &SUITE[0];
    let mut headers = suite_headers(
        case,
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    );
    headers.insert(
        "x-amz-security-token",
        HeaderValue::from_static(SUITE_TOKEN),
    );
    let auth = headers[AUTHORIZATION]
        .to_str()
        .unwrap()
        .replace("host;x-amz-date,", "host;x-amz-date;x-amz-security-token,");
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());

    let with_token = suite_config(Some(SUITE_TOKEN));
    let verdict = verify_request(&with_token, "GET", "/", None, &headers, b"", at(SUITE_DATE));
    assert!(verdict.is_ok(), "{verdict:?}");

    let other_token = suite_config(Some("another-token"));
    let verdict = verify_request(
        &other_token,
        "GET",
        "/",
        None,
        &headers,
        b"",
        at(SUITE_DATE),
    );
    assert_eq!(verdict.err(), Some(Rejection::InvalidSecurityToken));
}

#[test]
fn the_canonical_path_encodes_the_received_path_once_more() {
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri("/a%20b/c"), "/a%2520b/c");
    assert_eq!(
        canonical_uri("/2015-03-31/functions/arn%3Aaws%3Alambda/invocations"),
        "/2015-03-31/functions/arn%253Aaws%253Alambda/invocations"
    );
    assert_eq!(canonical_uri("/a:b/c~d"), "/a%3Ab/c~d");
}

#[test]
fn the_canonical_query_is_decoded_reencoded_and_sorted() {
    assert_eq!(canonical_query(""), "");
    assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
    assert_eq!(canonical_query("flag&x="), "flag=&x=");
    assert_eq!(canonical_query("q=a%20b+c%2Bd~e"), "q=a%20b%20c%2Bd~e");
    assert_eq!(canonical_query("v=%7E%26x%3D"), "v=~%26x%3D");
    assert_eq!(canonical_query("bad=%zz"), "bad=%25zz");
}

#[test]
fn header_values_are_trimmed_and_inner_spaces_collapsed() {
    assert_eq!(trim_all(b"  a   b  c  "), b"a b c");
    assert_eq!(trim_all(b""), b"");
    assert_eq!(trim_all(b"   "), b"");
}

#[test]
fn amz_dates_round_trip_and_garbage_is_refused() {
    assert_eq!(format_amz_date(at(SUITE_DATE)), SUITE_DATE);
    assert_eq!(format_amz_date(at("20240229T235959Z")), "20240229T235959Z");
    for garbage in [
        "",
        "20150830",
        "20150830T123600",
        "2015-08-30T12:36:00Z",
        "20151330T123600Z",
        "2015083aT123600Z",
        "20150830T123600ZZ",
        "ééééééééééééééé",
    ] {
        assert_eq!(parse_amz_date(garbage), None, "{garbage:?}");
    }
}

// Cross-check: the AWS SDK's signer (configured as the api-caller function configures it) must
// produce requests the independent verifier accepts.

fn config(token: Option<&str>) -> StandinConfig {
    let mut config = StandinConfig::new("us-east-1", vec![credential(KEY, SECRET, token)]);
    config.now = Arc::new(|| parse_amz_date("20260301T120000Z").unwrap_or(UNIX_EPOCH));
    config
}

fn now() -> SystemTime {
    at("20260301T120000Z")
}

struct Signed {
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

fn sdk_sign(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
    secret: &str,
    token: Option<&str>,
) -> Signed {
    let url = format!("https://{HOST_NAME}{path_and_query}");
    let identity: Identity =
        Credentials::new(KEY, secret, token.map(str::to_owned), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        method,
        url.clone(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
    let mut request = HttpRequest::builder().method(method).uri(&url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    request
        .headers_mut()
        .insert(HOST, HeaderValue::from_static(HOST_NAME));
    Signed {
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        headers: request.headers().clone(),
    }
}

fn verify(
    config: &StandinConfig,
    method: &str,
    signed: &Signed,
    body: &[u8],
) -> Result<String, Rejection> {
    verify_request(
        config,
        method,
        &signed.path,
        signed.query.as_deref(),
        &signed.headers,
        body,
        now(),
    )
    .map(|c| c.principal_arn.clone())
}

#[test]
fn a_get_with_an_awkward_query_signed_by_the_sdk_passes() {
    let signed = sdk_sign(
        "GET",
        "/prod/hubspot/contacts%20list?z=last&a=%20space&plus=a+b&tilde=~x&a=again&empty=&flag",
        &[],
        b"",
        now(),
        SECRET,
        None,
    );
    assert_eq!(
        verify(&config(None), "GET", &signed, b""),
        Ok(CALLER.to_owned())
    );
}

#[test]
fn a_post_with_a_json_body_signed_by_the_sdk_passes() {
    let body = br#"{"portalId":123,"objectId":"456","note":"caf\u00e9"}"#;
    let signed = sdk_sign(
        "POST",
        "/prod/hubspot/context",
        &[("content-type", "application/json")],
        body,
        now(),
        SECRET,
        None,
    );
    assert_eq!(
        verify(&config(None), "POST", &signed, body),
        Ok(CALLER.to_owned())
    );
}

#[test]
fn a_body_altered_after_signing_fails() {
    let signed = sdk_sign(
        "POST",
        "/prod/x",
        &[],
        br#"{"amount":1}"#,
        now(),
        SECRET,
        None,
    );
    assert_eq!(
        verify(&config(None), "POST", &signed, br#"{"amount":100}"#),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_query_parameter_altered_after_signing_fails() {
    let mut signed = sdk_sign("GET", "/prod/x?id=1&b=2", &[], b"", now(), SECRET, None);
    signed.query = Some("id=2&b=2".to_owned());
    assert_eq!(
        verify(&config(None), "GET", &signed, b""),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_path_altered_after_signing_fails() {
    let mut signed = sdk_sign("GET", "/prod/accounts/1", &[], b"", now(), SECRET, None);
    signed.path = "/prod/accounts/2".to_owned();
    assert_eq!(
        verify(&config(None), "GET", &signed, b""),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_changed_method_fails() {
    let signed = sdk_sign("GET", "/prod/x", &[], b"", now(), SECRET, None);
    assert_eq!(
        verify(&config(None), "DELETE", &signed, b""),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_signed_header_changed_after_signing_fails() {
    let mut signed = sdk_sign(
        "POST",
        "/prod/x",
        &[("content-type", "application/json")],
        b"{}",
        now(),
        SECRET,
        None,
    );
    assert!(verify(&config(None), "POST", &signed, b"{}").is_ok());
    signed
        .headers
        .insert("content-type", HeaderValue::from_static("text/plain"));
    assert_eq!(
        verify(&config(None), "POST", &signed, b"{}"),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_wrong_secret_key_fails() {
    let signed = sdk_sign("GET", "/prod/x", &[], b"", now(), "not-the-secret", None);
    assert_eq!(
        verify(&config(None), "GET", &signed, b""),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_request_signed_four_minutes_ago_passes() {
    let signed = sdk_sign(
        "GET",
        "/prod/x",
        &[],
        b"",
        now() - Duration::from_secs(240),
        SECRET,
        None,
    );
    assert!(verify(&config(None), "GET", &signed, b"").is_ok());
    let ahead = sdk_sign(
        "GET",
        "/prod/x",
        &[],
        b"",
        now() + Duration::from_secs(240),
        SECRET,
        None,
    );
    assert!(verify(&config(None), "GET", &ahead, b"").is_ok());
}

#[test]
fn a_request_signed_five_minutes_and_one_second_ago_is_expired() {
    let signed = sdk_sign(
        "GET",
        "/prod/x",
        &[],
        b"",
        now() - Duration::from_secs(301),
        SECRET,
        None,
    );
    assert_eq!(
        verify(&config(None), "GET", &signed, b""),
        Err(Rejection::SignatureExpired(
            "Signature expired: 20260301T115459Z is now earlier than 20260301T115500Z (20260301T120000Z - 5 min.)"
                .to_owned()
        ))
    );
}

#[test]
fn a_request_dated_more_than_five_minutes_ahead_is_refused() {
    let signed = sdk_sign(
        "GET",
        "/prod/x",
        &[],
        b"",
        now() + Duration::from_secs(301),
        SECRET,
        None,
    );
    let verdict = verify(&config(None), "GET", &signed, b"");
    assert!(
        matches!(&verdict, Err(Rejection::SignatureExpired(m)) if m.starts_with("Signature not yet current: 20260301T120501Z")),
        "{verdict:?}"
    );
}

#[test]
fn temporary_credentials_pass_with_their_signed_session_token() {
    let signed = sdk_sign(
        "GET",
        "/prod/x",
        &[],
        b"",
        now(),
        SECRET,
        Some("the-session-token"),
    );
    assert!(signed.headers.contains_key("x-amz-security-token"));
    assert_eq!(
        verify(&config(Some("the-session-token")), "GET", &signed, b""),
        Ok(CALLER.to_owned())
    );
}

#[test]
fn temporary_credentials_without_the_session_token_fail() {
    let mut signed = sdk_sign(
        "GET",
        "/prod/x",
        &[],
        b"",
        now(),
        SECRET,
        Some("the-session-token"),
    );
    signed.headers.remove("x-amz-security-token");
    assert_eq!(
        verify(&config(Some("the-session-token")), "GET", &signed, b""),
        Err(Rejection::InvalidSecurityToken)
    );
    let unsigned = sdk_sign("GET", "/prod/x", &[], b"", now(), SECRET, None);
    assert_eq!(
        verify(&config(Some("the-session-token")), "GET", &unsigned, b""),
        Err(Rejection::InvalidSecurityToken)
    );
}

#[test]
fn a_different_session_token_fails() {
    let signed = sdk_sign(
        "GET",
        "/prod/x",
        &[],
        b"",
        now(),
        SECRET,
        Some("an-old-token"),
    );
    assert_eq!(
        verify(&config(Some("the-session-token")), "GET", &signed, b""),
        Err(Rejection::InvalidSecurityToken)
    );
}

#[test]
fn a_session_token_sent_but_not_signed_fails() {
    let mut signed = sdk_sign("GET", "/prod/x", &[], b"", now(), SECRET, None);
    signed.headers.insert(
        "x-amz-security-token",
        HeaderValue::from_static("the-session-token"),
    );
    assert_eq!(
        verify(&config(Some("the-session-token")), "GET", &signed, b""),
        Err(Rejection::InvalidSecurityToken)
    );
}

#[test]
fn an_unknown_access_key_fails() {
    let signed = sdk_sign("GET", "/prod/x", &[], b"", now(), SECRET, None);
    let mut other = config(None);
    other.credentials = vec![credential("AKIAOTHERKEY", SECRET, None)];
    assert_eq!(
        verify(&other, "GET", &signed, b""),
        Err(Rejection::UnknownAccessKey)
    );
}

#[test]
fn a_credential_scoped_to_another_region_or_service_fails() {
    let signed = sdk_sign("GET", "/prod/x", &[], b"", now(), SECRET, None);
    let mut eu = config(None);
    eu.region = "eu-west-1".to_owned();
    assert!(matches!(
        verify(&eu, "GET", &signed, b""),
        Err(Rejection::CredentialScope(_))
    ));
    let mut s3 = config(None);
    s3.service = "s3".to_owned();
    assert!(matches!(
        verify(&s3, "GET", &signed, b""),
        Err(Rejection::CredentialScope(_))
    ));
}

#[test]
fn a_credential_scope_date_other_than_the_request_date_fails() {
    let mut signed = sdk_sign("GET", "/prod/x", &[], b"", now(), SECRET, None);
    let auth = signed.headers[AUTHORIZATION]
        .to_str()
        .unwrap()
        .replace("/20260301/", "/20260228/");
    signed
        .headers
        .insert(AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
    assert!(matches!(
        verify(&config(None), "GET", &signed, b""),
        Err(Rejection::CredentialScope(m)) if m.contains("'20260228' != '20260301'")
    ));
}

#[test]
fn host_and_date_must_be_signed() {
    let signed = sdk_sign("GET", "/prod/x", &[], b"", now(), SECRET, None);
    for replacement in ["SignedHeaders=x-amz-date,", "SignedHeaders=host,"] {
        let mut headers = signed.headers.clone();
        let auth = headers[AUTHORIZATION]
            .to_str()
            .unwrap()
            .replace("SignedHeaders=host;x-amz-date,", replacement);
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        let standard = config(None);
        let verdict = verify_request(&standard, "GET", "/prod/x", None, &headers, b"", now());
        assert!(
            matches!(verdict, Err(Rejection::IncompleteSignature(_))),
            "{replacement}: {verdict:?}"
        );
    }
}

#[test]
fn a_missing_authorization_header_is_a_missing_authentication_token() {
    let standard = config(None);
    let verdict = verify_request(&standard, "GET", "/", None, &HeaderMap::new(), b"", now());
    assert_eq!(verdict.err(), Some(Rejection::MissingAuthenticationToken));
    assert_eq!(
        Rejection::MissingAuthenticationToken.to_string(),
        "Missing Authentication Token"
    );
}

#[test]
fn a_declared_payload_hash_that_contradicts_the_body_fails() {
    let body = b"{}";
    let declared = hex(&Sha256::digest(body));
    let mut signed = sdk_sign(
        "POST",
        "/prod/x",
        &[("x-amz-content-sha256", &declared)],
        body,
        now(),
        SECRET,
        None,
    );
    assert!(verify(&config(None), "POST", &signed, body).is_ok());
    assert_eq!(
        verify(&config(None), "POST", &signed, b"[]"),
        Err(Rejection::SignatureMismatch)
    );
    signed.headers.remove("x-amz-content-sha256");
    assert_eq!(
        verify(&config(None), "POST", &signed, body),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn garbage_authorization_headers_are_refused_without_panicking() {
    for garbage in [
        "",
        " ",
        "Bearer token",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA256 Credential",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260301/us-east-1/execute-api/aws4_request, SignedHeaders=;;, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260301/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date;Bad Name, Signature=00",
        "AWS4-HMAC-SHA256 ,,,,=,=,==",
    ] {
        let mut headers = header_map(&[("host", HOST_NAME), ("x-amz-date", "20260301T120000Z")]);
        headers.insert(AUTHORIZATION, HeaderValue::from_str(garbage).unwrap());
        let standard = config(None);
        let verdict = verify_request(&standard, "GET", "/", Some("a=%"), &headers, b"", now());
        assert!(verdict.is_err(), "{garbage:?}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_requests_never_panic_and_never_pass(
        authorization in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        prefix in proptest::bool::ANY,
        date in "[0-9TZ]{0,20}",
        path in "\\PC{0,40}",
        query in proptest::option::of("\\PC{0,40}"),
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
    ) {
        let mut value = if prefix { b"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/".to_vec() } else { Vec::new() };
        value.extend_from_slice(&authorization);
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static(HOST_NAME));
        if let Ok(date) = HeaderValue::from_str(&date) {
            headers.insert("x-amz-date", date);
        }
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.insert(AUTHORIZATION, value);
        }
        let standard = config(None);
        let verdict = verify_request(&standard, "POST", &path, query.as_deref(), &headers, &body, now());
        proptest::prop_assert!(verdict.is_err());
    }
}

// The router: what a client on the wire sees.

async fn send(router: Router, request: HttpRequest<Body>) -> (u16, serde_json::Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn wire_request(method: &str, signed: &Signed, body: &[u8]) -> HttpRequest<Body> {
    let target = match &signed.query {
        Some(query) => format!("{}?{query}", signed.path),
        None => signed.path.clone(),
    };
    let mut request = HttpRequest::builder()
        .method(method)
        .uri(target)
        .body(Body::from(body.to_vec()))
        .unwrap();
    *request.headers_mut() = signed.headers.clone();
    request
}

#[tokio::test]
async fn an_accepted_request_is_answered_with_the_caller_and_recorded() {
    let standin = Standin::new(config(None));
    let body = br#"{"portalId":1}"#;
    let signed = sdk_sign(
        "POST",
        "/prod/hubspot/context?b=2&a=1",
        &[],
        body,
        now(),
        SECRET,
        None,
    );
    let (status, json) = send(standin.router(), wire_request("POST", &signed, body)).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["caller"], CALLER);
    assert_eq!(json["accessKeyId"], KEY);
    assert_eq!(json["method"], "POST");
    assert_eq!(json["path"], "/prod/hubspot/context");
    assert_eq!(json["query"], "b=2&a=1");
    assert_eq!(json["bodySha256"], hex(&Sha256::digest(body)));
    let recorded = standin.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].body, body);
    assert_eq!(recorded[0].header("X-Amz-Date"), Some("20260301T120000Z"));
    assert_eq!(standin.rejected(), 0);
    let shown = format!("{:?}", recorded[0]);
    assert!(!shown.contains("Signature="), "{shown}");
}

#[tokio::test]
async fn a_request_without_authorization_gets_api_gateways_403() {
    let standin = Standin::new(config(None));
    let request = HttpRequest::builder().uri("/").body(Body::empty()).unwrap();
    let (status, json) = send(standin.router(), request).await;
    assert_eq!(status, 403);
    assert_eq!(
        json,
        serde_json::json!({"message": "Missing Authentication Token"})
    );
    assert_eq!(standin.rejected(), 1);
    assert!(standin.recorded().is_empty());
}

#[tokio::test]
async fn a_signature_mismatch_gets_api_gateways_message() {
    let standin = Standin::new(config(None));
    let signed = sdk_sign("POST", "/prod/x", &[], b"a", now(), SECRET, None);
    let (status, json) = send(standin.router(), wire_request("POST", &signed, b"b")).await;
    assert_eq!(status, 403);
    assert_eq!(json["message"], SIGNATURE_MISMATCH);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let mut small = config(None);
    small.max_body_bytes = 16;
    let standin = Standin::new(small);
    let body = vec![b'x'; 17];
    let signed = sdk_sign("POST", "/prod/x", &[], &body, now(), SECRET, None);
    let (status, _) = send(standin.router(), wire_request("POST", &signed, &body)).await;
    assert_eq!(status, 413);
    assert_eq!(standin.rejected(), 1);

    // Without a Content-Length the limit still holds while streaming.
    let mut request = wire_request("POST", &signed, &body);
    request.headers_mut().remove(http::header::CONTENT_LENGTH);
    let (status, _) = send(standin.router(), request).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_responder_can_answer_instead_of_the_default() {
    let standin =
        Standin::new(config(None)).with_responder(Arc::new(|request: &RecordedRequest| {
            (request.path == "/prod/fail")
                .then(|| (500, br#"{"message":"Internal server error"}"#.to_vec()))
        }));
    let failing = sdk_sign("GET", "/prod/fail", &[], b"", now(), SECRET, None);
    let (status, json) = send(standin.router(), wire_request("GET", &failing, b"")).await;
    assert_eq!(
        (status, json["message"].as_str()),
        (500, Some("Internal server error"))
    );
    let fine = sdk_sign("GET", "/prod/ok", &[], b"", now(), SECRET, None);
    let (status, _) = send(standin.router(), wire_request("GET", &fine, b"")).await;
    assert_eq!(status, 200);
    assert_eq!(standin.recorded().len(), 2);
}

#[tokio::test]
async fn a_spawned_standin_verifies_the_raw_request_line_from_a_socket() {
    let running = Standin::new(config(None))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(running.base_url, format!("http://{}", running.addr));
    let signed = sdk_sign(
        "GET",
        "/prod/a%20b/%7Ec?x=1+2&x=%2B",
        &[],
        b"",
        now(),
        SECRET,
        None,
    );
    let mut raw = format!(
        "GET {}?{} HTTP/1.1\r\n",
        signed.path,
        signed.query.as_deref().unwrap()
    );
    for (name, value) in &signed.headers {
        raw.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    raw.push_str("connection: close\r\n\r\n");
    let addr = running.addr;
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let recorded = running.standin.recorded();
    assert_eq!(recorded[0].path, "/prod/a%20b/%7Ec");
    assert_eq!(recorded[0].query.as_deref(), Some("x=1+2&x=%2B"));
}

#[test]
fn debug_output_never_shows_secrets() {
    let config = config(Some("the-session-token"));
    let shown = format!("{:?} {:?}", config, Standin::new(config.clone()));
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("the-session-token"), "{shown}");
}
