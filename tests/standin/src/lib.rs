//! A stand-in for an API Gateway REST API with `AWS_IAM` authorization.
//!
//! It verifies AWS Signature Version 4 (header form, `AWS4-HMAC-SHA256`) the way API Gateway does for
//! `execute-api`, written from the published algorithm and deliberately independent of the
//! `aws-sigv4` crate: the signer under test elsewhere must never be checked against itself.
//! Requests that pass are recorded and answered with the caller's identity (like the demo stack's
//! MOCK integration); requests that fail get API Gateway's status and `{"message": ...}` body.
//!
//! It must never panic on any input, never log a key, a session token or a signature, and never
//! normalise the path or query it received: the signature covers them byte for byte.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub mod call_log;

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// Everything except the AWS unreserved characters `A-Z a-z 0-9 - _ . ~` is percent-encoded.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One IAM principal's key the stand-in accepts.
#[derive(Clone)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Present for temporary credentials: requests must then sign `x-amz-security-token` with it.
    pub session_token: Option<String>,
    pub principal_arn: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("principal_arn", &self.principal_arn)
            .finish()
    }
}

/// What the stand-in accepts, and its clock.
#[derive(Clone)]
pub struct StandinConfig {
    pub region: String,
    pub service: String,
    pub credentials: Vec<Credential>,
    /// Largest accepted difference between `x-amz-date` and the clock, either way.
    pub max_skew: Duration,
    /// Larger bodies are refused with 413 before any verification.
    pub max_body_bytes: usize,
    pub now: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl StandinConfig {
    /// Service `execute-api`, 5 minutes of skew, 6 MB bodies, the system clock.
    pub fn new(region: impl Into<String>, credentials: Vec<Credential>) -> Self {
        Self {
            region: region.into(),
            service: "execute-api".to_owned(),
            credentials,
            max_skew: Duration::from_secs(5 * 60),
            max_body_bytes: 6 * 1024 * 1024,
            now: Arc::new(SystemTime::now),
        }
    }
}

impl fmt::Debug for StandinConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandinConfig")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("credentials", &self.credentials)
            .field("max_skew", &self.max_skew)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// Why a request was refused. `Display` is the message API Gateway puts in `{"message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// An `Authorization` header that is not a complete SigV4 header, or required headers missing.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not one of the configured credentials.
    #[error("{}", INVALID_TOKEN)]
    UnknownAccessKey,
    /// The credential scope names another region, service, date or terminator.
    #[error("{0}")]
    CredentialScope(String),
    /// `x-amz-date` is further from the clock than the allowed skew.
    #[error("{0}")]
    SignatureExpired(String),
    /// The credential needs a session token and the request's is missing, unsigned or different,
    /// or the request carries one for a credential that has none.
    #[error("{}", INVALID_TOKEN)]
    InvalidSecurityToken,
    /// The signature does not match the request.
    #[error("{}", SIGNATURE_MISMATCH)]
    SignatureMismatch,
    /// The body is larger than `max_body_bytes`.
    #[error("Request Too Long")]
    PayloadTooLarge,
}

impl Rejection {
    /// The HTTP status API Gateway answers with.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::PayloadTooLarge => 413,
            _ => 403,
        }
    }

    /// API Gateway's `x-amzn-ErrorType` for this rejection.
    pub fn error_type(&self) -> &'static str {
        match self {
            Rejection::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Rejection::IncompleteSignature(_) => "IncompleteSignatureException",
            Rejection::UnknownAccessKey | Rejection::InvalidSecurityToken => {
                "UnrecognizedClientException"
            }
            Rejection::CredentialScope(_)
            | Rejection::SignatureExpired(_)
            | Rejection::SignatureMismatch => "InvalidSignatureException",
            Rejection::PayloadTooLarge => "RequestTooLongException",
        }
    }

    /// A short label for logs.
    fn outcome(&self) -> &'static str {
        match self {
            Rejection::MissingAuthenticationToken => "rejected: missing authentication token",
            Rejection::IncompleteSignature(_) => "rejected: incomplete signature",
            Rejection::UnknownAccessKey => "rejected: unknown access key",
            Rejection::CredentialScope(_) => "rejected: credential scope",
            Rejection::SignatureExpired(_) => "rejected: signature expired",
            Rejection::InvalidSecurityToken => "rejected: security token",
            Rejection::SignatureMismatch => "rejected: signature mismatch",
            Rejection::PayloadTooLarge => "rejected: body too large",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::FORBIDDEN);
        let body = serde_json::json!({ "message": self.to_string() }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.error_type()),
        );
        response
    }
}

/// A request that passed verification, as it arrived.
#[derive(Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The raw path as received, never normalised or decoded.
    pub path: String,
    /// The raw query as received (without `?`).
    pub query: Option<String>,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `principal_arn` of the credential that signed it.
    pub caller: String,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let shown = if n == "authorization" || n == "x-amz-security-token" {
                    "[REDACTED]"
                } else {
                    v.as_str()
                };
                (n.as_str(), shown)
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .field("caller", &self.caller)
            .finish()
    }
}

/// Lets a test choose the answer to an accepted request: `Some((status, json body))`, or `None`
/// for the default answer.
pub type Responder = Arc<dyn Fn(&RecordedRequest) -> Option<(u16, Vec<u8>)> + Send + Sync>;

#[derive(Default)]
struct Log {
    recorded: Mutex<Vec<RecordedRequest>>,
    rejected: AtomicUsize,
}

/// The stand-in: configuration, an optional responder, and the log of what reached it.
/// Clones share the log.
#[derive(Clone)]
pub struct Standin {
    config: Arc<StandinConfig>,
    responder: Option<Responder>,
    log: Arc<Log>,
}

impl fmt::Debug for Standin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Standin")
            .field("region", &self.config.region)
            .field("service", &self.config.service)
            .field("credentials", &self.config.credentials.len())
            .field("responder", &self.responder.is_some())
            .field("recorded", &self.recorded().len())
            .field("rejected", &self.rejected())
            .finish()
    }
}

impl Standin {
    pub fn new(config: StandinConfig) -> Self {
        Self {
            config: Arc::new(config),
            responder: None,
            log: Arc::default(),
        }
    }

    /// Answers accepted requests with `responder` where it returns `Some`.
    pub fn with_responder(mut self, responder: Responder) -> Self {
        self.responder = Some(responder);
        self
    }

    /// Any method, any path (including `/`).
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// Requests that passed verification, in arrival order.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.log
            .recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// How many requests were refused.
    pub fn rejected(&self) -> usize {
        self.log.rejected.load(Ordering::SeqCst)
    }

    /// Serves on `addr` (port 0 picks a free one) until the returned handle is dropped.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<RunningStandin> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = self.router();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "stand-in server stopped");
            }
        });
        Ok(RunningStandin {
            addr,
            base_url: format!("http://{addr}"),
            standin: self,
            task,
        })
    }

    fn answer(&self, recorded: &RecordedRequest, access_key_id: &str) -> Response {
        let custom = self
            .responder
            .as_ref()
            .and_then(|respond| respond(recorded));
        let (status, body) = custom.unwrap_or_else(|| {
            let body = serde_json::json!({
                "caller": recorded.caller,
                "accessKeyId": access_key_id,
                "method": recorded.method,
                "path": recorded.path,
                "query": recorded.query,
                "bodySha256": hex(&Sha256::digest(&recorded.body)),
            });
            (200, body.to_string().into_bytes())
        });
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// A stand-in serving on a local socket. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningStandin {
    pub addr: SocketAddr,
    /// `http://addr`, without a trailing slash.
    pub base_url: String,
    pub standin: Standin,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningStandin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(standin): State<Standin>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    // Origin-form request target exactly as sent: `http::Uri` keeps escapes and dot segments.
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let config = &standin.config;

    let declared_too_large = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > config.max_body_bytes as u64);
    let body = if declared_too_large {
        None
    } else {
        axum::body::to_bytes(body, config.max_body_bytes).await.ok()
    };
    let Some(body) = body else {
        return standin.reject(&method, &path, Rejection::PayloadTooLarge);
    };

    let now = (config.now)();
    let verified = verify_request(
        config,
        &method,
        &path,
        query.as_deref(),
        &parts.headers,
        &body,
        now,
    )
    .map(|credential| {
        (
            credential.access_key_id.clone(),
            credential.principal_arn.clone(),
        )
    });
    match verified {
        Err(rejection) => standin.reject(&method, &path, rejection),
        Ok((access_key_id, caller)) => {
            let recorded = RecordedRequest {
                method,
                path,
                query,
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.to_vec(),
                caller,
            };
            tracing::info!(
                method = %recorded.method,
                path = %recorded.path,
                caller = %recorded.caller,
                "accepted"
            );
            standin
                .log
                .recorded
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(recorded.clone());
            call_log::append(
                &recorded.method,
                &recorded.path,
                &access_key_id,
                &config.region,
            );
            standin.answer(&recorded, &access_key_id)
        }
    }
}

impl Standin {
    fn reject(&self, method: &str, path: &str, rejection: Rejection) -> Response {
        self.log.rejected.fetch_add(1, Ordering::SeqCst);
        tracing::info!(%method, %path, status = rejection.status(), "{}", rejection.outcome());
        rejection.into_response()
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
struct AuthorizationHeader<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn incomplete(message: &str) -> Rejection {
    Rejection::IncompleteSignature(message.to_owned())
}

fn parse_authorization(value: &str) -> Result<AuthorizationHeader<'_>, Rejection> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
        ));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',') {
        let component = component.trim();
        if component.is_empty() {
            continue;
        }
        let Some((key, val)) = component.split_once('=') else {
            return Err(incomplete(
                "Invalid key=value pair (missing equal-sign) in Authorization header.",
            ));
        };
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(&missing.join(" ")));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(
            "Credential should be a slash-separated list of access key id, date, region, service and 'aws4_request'.",
        ));
    };
    if access_key_id.is_empty() || signature.is_empty() {
        return Err(incomplete(
            "Authorization header requires a non-empty 'Credential' and 'Signature'.",
        ));
    }
    let signed_headers: Vec<&str> = signed_headers.split(';').collect();
    if signed_headers.iter().any(|h| h.is_empty()) {
        return Err(incomplete(
            "Authorization header has an empty name in 'SignedHeaders'.",
        ));
    }
    Ok(AuthorizationHeader {
        access_key_id,
        date,
        region,
        service,
        terminator,
        signed_headers,
        signature,
    })
}

/// Verifies a SigV4-signed request the way API Gateway does for an `AWS_IAM` method.
///
/// `raw_path` and `raw_query` must be exactly what was on the wire. Pure: the clock is `now`.
/// The body-size limit is the caller's job (the router answers 413 before calling this).
pub fn verify_request<'c>(
    config: &'c StandinConfig,
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<&'c Credential, Rejection> {
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(Rejection::MissingAuthenticationToken)?;
    let authorization = authorization.to_str().map_err(|_| {
        incomplete("Authorization header contains characters that are not visible ASCII.")
    })?;
    let auth = parse_authorization(authorization)?;

    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or_else(|| {
            incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            )
        })?;
    let request_time = parse_amz_date(amz_date).ok_or_else(|| {
        incomplete("X-Amz-Date must be in the ISO-8601 basic format 'YYYYMMDD'T'HHMMSS'Z'.")
    })?;
    if !auth.signed_headers.contains(&"host") {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if !auth.signed_headers.contains(&"x-amz-date") {
        return Err(incomplete(
            "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }

    let credential = config
        .credentials
        .iter()
        .find(|c| c.access_key_id == auth.access_key_id)
        .ok_or(Rejection::UnknownAccessKey)?;

    let amz_day = amz_date.get(..8).unwrap_or_default();
    if auth.date != amz_day {
        return Err(Rejection::CredentialScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            auth.date, amz_day, amz_date
        )));
    }
    if auth.region != config.region {
        return Err(Rejection::CredentialScope(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            auth.region
        )));
    }
    if auth.service != config.service {
        return Err(Rejection::CredentialScope(format!(
            "Credential should be scoped to correct service: '{}'.",
            config.service
        )));
    }
    if auth.terminator != TERMINATOR {
        return Err(Rejection::CredentialScope(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            auth.terminator
        )));
    }

    check_skew(request_time, amz_date, now, config.max_skew)?;
    check_session_token(credential, &auth, headers)?;

    let payload_hash = payload_hash(&auth, headers, body)?;
    let canonical_request =
        canonical_request(method, raw_path, raw_query, headers, &auth, &payload_hash);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}/{}/{}/{TERMINATOR}\n{}",
        auth.date,
        auth.region,
        auth.service,
        hex(&Sha256::digest(&canonical_request))
    );
    let key = signing_key(
        &credential.secret_access_key,
        auth.date,
        auth.region,
        auth.service,
    );
    let expected = hex(&hmac(&key, string_to_sign.as_bytes()));
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(credential)
    } else {
        Err(Rejection::SignatureMismatch)
    }
}

fn check_skew(
    request_time: SystemTime,
    amz_date: &str,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), Rejection> {
    let minutes = max_skew.as_secs() / 60;
    match now.duration_since(request_time) {
        Ok(age) if age > max_skew => {
            let earliest = now.checked_sub(max_skew).unwrap_or(UNIX_EPOCH);
            Err(Rejection::SignatureExpired(format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - {minutes} min.)",
                format_amz_date(earliest),
                format_amz_date(now)
            )))
        }
        Ok(_) => Ok(()),
        Err(ahead) if ahead.duration() > max_skew => {
            let latest = now.checked_add(max_skew).unwrap_or(now);
            Err(Rejection::SignatureExpired(format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + {minutes} min.)",
                format_amz_date(latest),
                format_amz_date(now)
            )))
        }
        Err(_) => Ok(()),
    }
}

fn check_session_token(
    credential: &Credential,
    auth: &AuthorizationHeader<'_>,
    headers: &HeaderMap,
) -> Result<(), Rejection> {
    let sent = headers.get("x-amz-security-token");
    match (&credential.session_token, sent) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(Rejection::InvalidSecurityToken),
        (Some(_), None) => Err(Rejection::InvalidSecurityToken),
        (Some(expected), Some(sent)) => {
            let signed = auth.signed_headers.contains(&"x-amz-security-token");
            let same: bool = expected.as_bytes().ct_eq(sent.as_bytes()).into();
            if signed && same {
                Ok(())
            } else {
                Err(Rejection::InvalidSecurityToken)
            }
        }
    }
}

/// The declared `x-amz-content-sha256` when it is signed, else the hash of the body. A declared
/// hash that contradicts the body is refused: a tampered body must never pass.
fn payload_hash(
    auth: &AuthorizationHeader<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Rejection> {
    let actual = hex(&Sha256::digest(body));
    if !auth.signed_headers.contains(&"x-amz-content-sha256") {
        return Ok(actual);
    }
    let Some(declared) = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(actual);
    };
    let declared = declared.trim();
    let looks_like_hash = declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit());
    if looks_like_hash && !declared.eq_ignore_ascii_case(&actual) {
        return Err(Rejection::SignatureMismatch);
    }
    Ok(declared.to_owned())
}

fn canonical_request(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    auth: &AuthorizationHeader<'_>,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(raw_path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(raw_query.unwrap_or_default()).as_bytes());
    out.push(b'\n');
    for name in &auth.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for value in headers.get_all(*name) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&trim_all(value.as_bytes()));
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(auth.signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// execute-api encodes the path twice: the path as sent (already encoded once) is encoded again,
/// segment by segment, so `%20` becomes `%2520`.
fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    raw_path
        .split('/')
        .map(|segment| percent_encode(segment.as_bytes(), AWS_ENCODE).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Split the raw query into pairs first (so an encoded `&` or `=` stays data), decode each side
/// (`+` is a space), re-encode with the AWS set, and sort by encoded name, then value.
fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (reencode_query_part(name), reencode_query_part(value))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn reencode_query_part(raw: &str) -> String {
    let plus_as_space = raw.replace('+', " ");
    let decoded: Vec<u8> = percent_decode(plus_as_space.as_bytes()).collect();
    // Invalid UTF-8 becomes U+FFFD, as the SDK signers' form decoders do.
    let decoded = String::from_utf8_lossy(&decoded);
    percent_encode(decoded.as_bytes(), AWS_ENCODE).to_string()
}

/// Trim leading and trailing spaces and collapse inner runs of spaces to one.
fn trim_all(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut previous_space = true;
    for &byte in value {
        let is_space = byte == b' ';
        if is_space {
            if !previous_space {
                out.push(b' ');
            }
        } else {
            out.push(byte);
        }
        previous_space = is_space;
    }
    if out.last() == Some(&b' ') {
        out.pop();
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this never fails.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, TERMINATOR.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// `YYYYMMDD'T'HHMMSS'Z'` to a time; `None` for anything else.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = value.get(range)?;
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

fn format_amz_date(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let seconds = i64::try_from(seconds).unwrap_or(0);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

// Howard Hinnant's civil-date algorithms (proleptic Gregorian calendar).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
