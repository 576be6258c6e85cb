//! Calls to the company's IAM-protected API Gateway, signed with AWS SigV4.
//!
//! What is signed is exactly what is sent: the request is assembled first (URL, headers, body),
//! signed as assembled, and handed to the HTTP client unchanged. Paths and queries are put in
//! one canonical encoding before signing (every byte outside `A-Z a-z 0-9 - _ . ~` percent-encoded
//! with upper-case hex), so the client, API Gateway and the signer cannot disagree about them.
//! The host signed is the configured base URL's (a custom domain included); the session token
//! is signed when the credentials carry one (a Lambda role's always do).

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use hsbridge_platform::http::LazyClient;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use std::time::{Duration, SystemTime};

/// SigV4's unreserved set: everything else is encoded.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub const SERVICE: &str = "execute-api";

/// Where the protected API is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedApiConfig {
    /// `https://host[:port][/base/path]`, no trailing `/`.
    pub base_url: String,
    pub region: String,
    pub timeout: Duration,
    /// Largest response body read back.
    pub max_response_bytes: usize,
}

/// A request for the protected API, before signing.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    /// Path below the base URL, canonically encoded (see [`canonical_path`]); starts with `/`.
    pub path: String,
    /// Canonically encoded query (see [`canonical_query`]), without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What the protected API answered.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

/// Why a call did not get an answer. No secret, header value or body in any of these.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no AWS credentials are available to sign with")]
    Credentials(#[source] aws_credential_types::provider::error::CredentialsError),
    #[error("the request could not be signed: {0}")]
    Signing(String),
    #[error("the request is not valid: {0}")]
    Request(&'static str),
    #[error("the protected API did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the protected API could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the protected API's answer is larger than {0} bytes")]
    ResponseTooLarge(usize),
}

/// The SigV4 client for the protected API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProtectedApi {
    config: ProtectedApiConfig,
    credentials: SharedCredentialsProvider,
    http: LazyClient,
}

impl ProtectedApi {
    pub fn new(
        config: ProtectedApiConfig,
        credentials: SharedCredentialsProvider,
    ) -> Result<Self, CallError> {
        let timeout = config.timeout;
        let http = LazyClient::new(move || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(3)))
                .redirect(reqwest::redirect::Policy::none())
        });
        Ok(Self {
            config,
            credentials,
            http,
        })
    }

    pub fn config(&self) -> &ProtectedApiConfig {
        &self.config
    }

    /// The request exactly as it will be sent: signed, ready for the HTTP client.
    pub async fn sign(
        &self,
        outgoing: Outgoing,
        at: SystemTime,
    ) -> Result<http::Request<Bytes>, CallError> {
        let mut url = format!("{}{}", self.config.base_url, outgoing.path);
        if let Some(query) = outgoing.query.as_deref().filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(query);
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(CallError::Credentials)?;
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name(SERVICE)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CallError::Signing(e.to_string()))?
            .into();
        let mut header_pairs = Vec::with_capacity(outgoing.headers.len());
        for (name, value) in &outgoing.headers {
            let value = value
                .to_str()
                .map_err(|_| CallError::Request("a header value is not visible ASCII"))?;
            header_pairs.push((name.as_str(), value));
        }
        let signable = SignableRequest::new(
            outgoing.method.as_str(),
            url.as_str(),
            header_pairs.into_iter(),
            SignableBody::Bytes(&outgoing.body),
        )
        .map_err(|e| CallError::Signing(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| CallError::Signing(e.to_string()))?
            .into_parts();
        let mut request = http::Request::builder()
            .method(outgoing.method)
            .uri(url.as_str())
            .body(outgoing.body)
            .map_err(|_| CallError::Request("the URL is not valid"))?;
        *request.headers_mut() = outgoing.headers;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }

    /// Signs and sends; reads a bounded answer.
    pub async fn send(&self, outgoing: Outgoing) -> Result<Upstream, CallError> {
        let request = self.sign(outgoing, SystemTime::now()).await?;
        let request = reqwest::Request::try_from(request)
            .map_err(|e| CallError::Unreachable(e.without_url()))?;
        let timeout = self.config.timeout;
        let http = self.http.get().map_err(CallError::Unreachable)?;
        let response = http.execute(request).await.map_err(|e| {
            if e.is_timeout() {
                CallError::Timeout(timeout)
            } else {
                CallError::Unreachable(e.without_url())
            }
        })?;
        let status = response.status();
        let content_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
        let limit = self.config.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(CallError::ResponseTooLarge(limit));
        }
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            if e.is_timeout() {
                CallError::Timeout(timeout)
            } else {
                CallError::Unreachable(e.without_url())
            }
        })? {
            if body.len() + chunk.len() > limit {
                return Err(CallError::ResponseTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Upstream {
            status,
            content_type,
            body: Bytes::from(body),
        })
    }
}

/// Why a path or query cannot be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("a path segment is `.` or `..`, or one a server reads as such (`..;`, `...`, `.. `)")]
    DotSegment,
    #[error("a path segment contains an encoded `/` or `\\`")]
    EncodedSlash,
    #[error("the path contains an invalid escape or a control character")]
    BadEncoding,
}

/// The canonical form of a raw (as-received) path: each segment percent-decoded once, then
/// encoded with SigV4's unreserved set. Dot segments and encoded slashes are refused: behind
/// the relay they could only be attempts to reach another route of the protected API.
pub fn canonical_path(raw: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len() + 8);
    for segment in raw.split('/').skip(usize::from(raw.starts_with('/'))) {
        let decoded = decode_strict(segment)?;
        if reads_as_dots(&decoded) {
            return Err(PathError::DotSegment);
        }
        if decoded.contains('/') || decoded.contains('\\') {
            return Err(PathError::EncodedSlash);
        }
        out.push('/');
        out.extend(utf8_percent_encode(&decoded, AWS_ENCODE));
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Whether a server could read a decoded segment as `.` or `..`: dots only, once what Tomcat
/// and Jetty strip (path parameters from the first `;`) and what Windows servers trim
/// (trailing spaces and dots, so `...` too) are gone, counting the dots that compatibility
/// normalisation (NFKC) turns into `.` (one-dot leader, small and fullwidth full stop).
fn reads_as_dots(segment: &str) -> bool {
    let before_parameters = segment.split(';').next().unwrap_or_default();
    let trimmed = before_parameters.trim();
    !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| matches!(c, '.' | '\u{2024}' | '\u{fe52}' | '\u{ff0e}'))
}

/// The canonical form of a raw query: pairs kept in their order, names and values decoded as
/// a form would (`+` is a space) and encoded with SigV4's unreserved set (a space is `%20`).
pub fn canonical_query(raw: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len() + 8);
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(utf8_percent_encode(
            &decode_strict(&name.replace('+', " "))?,
            AWS_ENCODE,
        ));
        out.push('=');
        out.extend(utf8_percent_encode(
            &decode_strict(&value.replace('+', " "))?,
            AWS_ENCODE,
        ));
    }
    Ok(out)
}

/// The value of a query parameter that appears exactly once, decoded (`+` as a space).
/// `None` when it is absent, repeated or badly encoded: a parameter that names who is calling
/// must not be ambiguous.
pub fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    let mut found = raw?.split('&').filter_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        let n = decode_strict(&n.replace('+', " ")).ok()?;
        (n == name).then(|| decode_strict(&v.replace('+', " ")))
    });
    let first = found.next()?.ok()?;
    found.next().is_none().then_some(first)
}

/// A query name or value decoded once, as [`query_param`] decodes it (`+` is a space).
pub fn decode_query_part(s: &str) -> Result<String, PathError> {
    decode_strict(&s.replace('+', " "))
}

/// Percent-decodes, refusing malformed escapes, invalid UTF-8 and control characters.
fn decode_strict(s: &str) -> Result<String, PathError> {
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(PathError::BadEncoding);
        }
    }
    let decoded = percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| PathError::BadEncoding)?;
    if decoded.chars().any(char::is_control) {
        return Err(PathError::BadEncoding);
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_path_encodes_once_with_the_sigv4_set() {
        assert_eq!(canonical_path("/a b/c~d/%7e").unwrap(), "/a%20b/c~d/~");
        assert_eq!(
            canonical_path("/deals/%E2%9C%93").unwrap(),
            "/deals/%E2%9C%93"
        );
        assert_eq!(canonical_path("/x/").unwrap(), "/x/");
        assert_eq!(canonical_path("").unwrap(), "/");
        assert_eq!(canonical_path("/a:b@c").unwrap(), "/a%3Ab%40c");
    }

    #[test]
    fn canonical_path_refuses_traversal_and_encoded_slashes() {
        assert_eq!(canonical_path("/a/../b"), Err(PathError::DotSegment));
        assert_eq!(canonical_path("/a/%2e%2E/b"), Err(PathError::DotSegment));
        assert_eq!(canonical_path("/a/./b"), Err(PathError::DotSegment));
        for dots in ["..;", "..;x=1", ".;", "...", "..%20", "%EF%BC%8E%EF%BC%8E"] {
            assert_eq!(
                canonical_path(&format!("/a/{dots}/b")),
                Err(PathError::DotSegment),
                "{dots}"
            );
        }
        assert!(canonical_path("/a/..b/v1.2/;x/c.").is_ok());
        assert_eq!(canonical_path("/a%2Fb"), Err(PathError::EncodedSlash));
        assert_eq!(canonical_path("/a%5cb"), Err(PathError::EncodedSlash));
        assert_eq!(canonical_path("/a%zz"), Err(PathError::BadEncoding));
        assert_eq!(canonical_path("/a%0d%0a"), Err(PathError::BadEncoding));
        assert_eq!(canonical_path("/%ff"), Err(PathError::BadEncoding));
    }

    #[test]
    fn canonical_query_keeps_order_and_spells_spaces_as_percent_20() {
        assert_eq!(
            canonical_query("b=2&a=x+y&a=%7e&flag").unwrap(),
            "b=2&a=x%20y&a=~&flag="
        );
        assert_eq!(canonical_query("q=a%2Bb").unwrap(), "q=a%2Bb");
        assert!(canonical_query("q=%").is_err());
    }

    #[test]
    fn query_param_finds_a_single_decoded_value_and_refuses_a_repeated_one() {
        assert_eq!(
            query_param(Some("userId=1&portalId=62515&x=%20"), "portalId").as_deref(),
            Some("62515")
        );
        assert_eq!(
            query_param(Some("userId=1&portalId=62515&portalId=9"), "portalId"),
            None
        );
        assert_eq!(query_param(Some("portalId=%zz"), "portalId"), None);
        assert_eq!(query_param(Some("a=1"), "portalId"), None);
        assert_eq!(query_param(None, "portalId"), None);
    }
}
