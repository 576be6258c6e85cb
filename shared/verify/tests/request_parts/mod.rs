//! Owned request parts for tests: builds a HubSpot-signed request and lends it out as a
//! `SignedRequest`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hsbridge_verify::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_V3, HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP, Secret,
    SecretSet, SignedRequest, sign_v1, sign_v2, sign_v3,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The secret of HubSpot's published vectors.
pub const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
pub const METHOD: &str = "POST";
pub const URI: &str =
    "https://hooks.example.com/hubspot/webhook?portal=62515&email=a%40b.com&q=x%20y%2Bz";
pub const BODY: &[u8] = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1693657560000,"subscriptionType":"contact.creation","objectId":123}]"#;
pub const TS_MS: u64 = 1_693_657_560_000;
/// "Now" in most tests: one second after the request was signed.
pub const NOW_MS: u64 = TS_MS + 1_000;

pub fn secrets() -> SecretSet {
    SecretSet::new(Secret::new(SECRET)).unwrap()
}

pub fn secret() -> Secret {
    Secret::new(SECRET)
}

#[derive(Debug, Clone)]
pub struct RequestParts {
    pub method: String,
    pub uri: String,
    pub body: Vec<u8>,
    pub headers: HeaderMap,
}

impl RequestParts {
    pub fn unsigned(method: &str, uri: &str, body: &[u8]) -> Self {
        Self {
            method: method.to_owned(),
            uri: uri.to_owned(),
            body: body.to_vec(),
            headers: HeaderMap::new(),
        }
    }

    /// A request signed with v3 over exactly these parts.
    pub fn signed_v3(secret: &Secret, method: &str, uri: &str, body: &[u8], ts: &str) -> Self {
        let sig = sign_v3(secret, method, uri, body, ts);
        Self::unsigned(method, uri, body)
            .with_header(HEADER_SIGNATURE_V3, &sig)
            .with_header(HEADER_TIMESTAMP, ts)
    }

    /// The standard v3 request of these tests.
    pub fn standard_v3() -> Self {
        Self::signed_v3(&secret(), METHOD, URI, BODY, &TS_MS.to_string())
    }

    pub fn signed_v1(secret: &Secret, method: &str, uri: &str, body: &[u8]) -> Self {
        let sig = sign_v1(secret, body);
        Self::unsigned(method, uri, body)
            .with_header(HEADER_SIGNATURE, &sig)
            .with_header(HEADER_SIGNATURE_VERSION, "v1")
    }

    pub fn signed_v2(secret: &Secret, method: &str, uri: &str, body: &[u8]) -> Self {
        let sig = sign_v2(secret, method, uri, body);
        Self::unsigned(method, uri, body)
            .with_header(HEADER_SIGNATURE, &sig)
            .with_header(HEADER_SIGNATURE_VERSION, "v2")
    }

    /// Sets (replaces) a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    /// Sets (replaces) a header with raw bytes.
    pub fn with_header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
        self
    }

    /// Adds one more value of a header, keeping the ones present.
    pub fn with_extra_header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.remove(name);
        self
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).unwrap().to_str().unwrap().to_owned()
    }

    pub fn with_method(mut self, method: &str) -> Self {
        self.method = method.to_owned();
        self
    }

    pub fn with_uri(mut self, uri: &str) -> Self {
        self.uri = uri.to_owned();
        self
    }

    pub fn with_body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    pub fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            uri: &self.uri,
            body: &self.body,
            headers: &self.headers,
        }
    }
}
