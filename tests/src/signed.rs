//! Requests signed as HubSpot signs them. The signatures are computed here from HubSpot's
//! documented algorithms with the RustCrypto primitives, not by the verification crate under
//! test, so a suite that signs with these and verifies with production code checks the one
//! against the other; `tests` holds them to the published known-answer vectors.
//!
//! - v1: `sha256(secret + body)`, lowercase hex.
//! - v2: `sha256(secret + METHOD + URI + body)`, lowercase hex, the URI as sent.
//! - v3: `HMAC-SHA256(secret, METHOD + URI' + body + timestamp)`, padded base64, where URI' is
//!   the URI with exactly the 12 escapes HubSpot lists decoded (upper-case hex, one pass).

use axum::body::Body;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::Request;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The signature header of v3, and its timestamp header.
pub const V3_HEADER: &str = "x-hubspot-signature-v3";
pub const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";

/// The escapes HubSpot decodes in the URI before hashing it for v3, and what they stand for.
const V3_DECODED: [(&str, char); 12] = [
    ("%3A", ':'),
    ("%2F", '/'),
    ("%3F", '?'),
    ("%40", '@'),
    ("%21", '!'),
    ("%24", '$'),
    ("%27", '\''),
    ("%28", '('),
    ("%29", ')'),
    ("%2A", '*'),
    ("%2C", ','),
    ("%3B", ';'),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The v1 signature of `body`.
pub fn v1(secret: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(secret.as_bytes());
    hash.update(body);
    hex(&hash.finalize())
}

/// The v2 signature of `method` `uri` with `body`.
pub fn v2(secret: &str, method: &str, uri: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(secret.as_bytes());
    hash.update(method.as_bytes());
    hash.update(uri.as_bytes());
    hash.update(body);
    hex(&hash.finalize())
}

/// The URI as v3 hashes it: the 12 escapes decoded, everything else (`%253A` too) as sent.
pub fn uri_as_hashed(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match V3_DECODED
            .iter()
            .find(|(escape, _)| rest.starts_with(escape))
        {
            Some((escape, c)) => {
                out.push(*c);
                rest = &rest[escape.len()..];
            }
            None => {
                out.push('%');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The v3 signature of `method` `uri` with `body` at `timestamp` (epoch milliseconds, as sent).
pub fn v3(secret: &str, method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(method.as_bytes());
    mac.update(uri_as_hashed(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The v3 headers HubSpot sends with `method` `uri` and `body` signed at `at_ms`.
pub fn v3_headers(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    at_ms: u64,
) -> [(&'static str, String); 2] {
    let timestamp = at_ms.to_string();
    [
        (V3_HEADER, v3(secret, method, uri, body, &timestamp)),
        (TIMESTAMP_HEADER, timestamp),
    ]
}

/// A request as HubSpot sends it to `public_base + path_and_query` (`https://host`), arriving
/// with `Host: host`, a JSON content type and a v3 signature made at `at_ms`.
pub fn hubspot(
    secret: &str,
    method: &str,
    public_base: &str,
    host: &str,
    path_and_query: &str,
    body: impl Into<Vec<u8>>,
    at_ms: u64,
) -> Request<Body> {
    let body = body.into();
    let mut request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", host)
        .header("content-type", "application/json");
    for (name, value) in v3_headers(
        secret,
        method,
        &format!("{public_base}{path_and_query}"),
        &body,
        at_ms,
    ) {
        request = request.header(name, value);
    }
    request.body(Body::from(body)).unwrap()
}

/// A webhook `POST` HubSpot sends to `https://{host}{path_and_query}` behind API Gateway (which
/// says the scheme in `X-Forwarded-Proto`), signed with v3 at `at_ms`.
pub fn webhook(
    secret: &str,
    host: &str,
    path_and_query: &str,
    body: impl Into<Vec<u8>>,
    at_ms: u64,
) -> Request<Body> {
    let mut request = hubspot(
        secret,
        "POST",
        &format!("https://{host}"),
        host,
        path_and_query,
        body,
        at_ms,
    );
    request
        .headers_mut()
        .insert("x-forwarded-proto", http::HeaderValue::from_static("https"));
    request
}

/// A batch of webhook events `ids` for `portal`, as HubSpot sends it (one
/// `contact.propertyChange` of `email` per id, object `1000 + id`).
pub fn webhook_batch(portal: u64, ids: std::ops::Range<u64>, occurred_at: u64) -> String {
    let events: Vec<Value> = ids
        .map(|id| {
            serde_json::json!({
                "eventId": id, "subscriptionId": 12345, "portalId": portal, "appId": 54321,
                "occurredAt": occurred_at, "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0, "objectId": 1000 + id, "propertyName": "email",
                "propertyValue": "someone@example.com", "changeSource": "CRM"
            })
        })
        .collect();
    Value::Array(events).to_string()
}

/// A Lambda event template of `tests/fixtures` (an HTTP API payload 2.0 or a Function URL
/// event) filled with `body`, its length, and v3 and v1 signatures for `public_uri` at `at_ms`.
pub fn fixture_event(
    template: &str,
    secret: &str,
    public_uri: &str,
    body: &str,
    at_ms: u64,
) -> String {
    let timestamp = at_ms.to_string();
    template
        .replace("__CONTENT_LENGTH__", &body.len().to_string())
        .replace("__TIMESTAMP__", &timestamp)
        .replace(
            "__V3__",
            &v3(secret, "POST", public_uri, body.as_bytes(), &timestamp),
        )
        .replace("__V1__", &v1(secret, body.as_bytes()))
        .replace("\"__BODY__\"", &serde_json::to_string(body).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project's copy of HubSpot's published vectors (and those computed from its
    /// documented algorithm), as the verification crate's own tests read them.
    const VECTORS: &str = include_str!("../../shared/verify/tests/vectors/hubspot-signatures.json");

    fn field<'a>(case: &'a Value, name: &str) -> &'a str {
        case[name].as_str().unwrap_or_default()
    }

    #[test]
    fn every_known_answer_vector_is_signed_to_its_expected_value() {
        let vectors: Value = serde_json::from_str(VECTORS).unwrap();
        let mut signed = 0;
        for case in vectors["cases"].as_array().unwrap() {
            let (secret, body) = (field(case, "secret"), field(case, "body").as_bytes());
            let (method, uri) = (field(case, "method"), field(case, "uri"));
            let got = match field(case, "version") {
                "v1" => v1(secret, body),
                "v2" => v2(secret, method, uri, body),
                "v3" => v3(secret, method, uri, body, field(case, "timestamp")),
                _ => continue,
            };
            assert_eq!(got, field(case, "expected"), "{}", field(case, "name"));
            if let Some(hashed) = case["uri_as_hashed"].as_str() {
                assert_eq!(uri_as_hashed(uri), hashed, "{}", field(case, "name"));
            }
            signed += 1;
        }
        assert!(signed >= 7, "only {signed} vectors were checked");
    }

    #[test]
    fn only_the_twelve_upper_case_escapes_are_decoded_and_in_one_pass() {
        assert_eq!(uri_as_hashed("/a%3Ab%3ac%253A%2"), "/a:b%3ac%253A%2");
        assert_eq!(uri_as_hashed("/%2C%2c%20%2B%7E"), "/,%2c%20%2B%7E");
        assert_eq!(uri_as_hashed("%40%"), "@%");
    }
}
