//! A fault-injecting HTTP proxy in front of moto, on 127.0.0.1:0.
//!
//! The functions' SDK configuration points at the proxy instead of moto; every request is
//! forwarded unchanged unless a fault rule matches it. A rule names the AWS service (from the
//! SigV4 credential scope of the `Authorization` header: `Credential=AKID/date/region/SERVICE/
//! aws4_request`) and optionally the operation (the `X-Amz-Target` header of the JSON protocols
//! every service here speaks, e.g. `DynamoDB_20120810.PutItem`). Faults:
//!
//! - [`Fault::Unreachable`]: the connection is closed without an answer, before anything
//!   reaches moto (with [`FaultProxy::refuse_connections`], before the request is even read);
//! - [`Fault::ServerError`]: a 500 in the service's JSON error shape;
//! - [`Fault::Throttle`]: the service's throttling error (400), as AWS sends it;
//! - [`Fault::LoseAnswer`]: the request reaches moto (the call takes effect), then the
//!   connection is closed without the answer.
//!
//! Besides faults, [`FaultProxy::slow_down`] holds every request to a service for a while before
//! forwarding it (a slow dependency, not a failing one), and every request is counted per
//! service and operation ([`FaultProxy::calls`]), so a test can assert how many AWS calls a
//! request cost.
//!
//! Every call that reaches the upstream is also recorded as IAM sees it ([`record::Call`]:
//! caller, action, resource ARN, KMS encryption context): kept in memory
//! ([`FaultProxy::recorded`]), or, for the recorder `scripts/test` puts in front of moto
//! (`aws-call-recorder`, [`FaultProxy::start_recording`]), appended to a call log that
//! `tests/iam/evaluate.mjs` evaluates against the template's roles.
//!
//! A `TransactWriteItems` is isolated from the other DynamoDB requests through the proxy, as
//! DynamoDB isolates it and moto does not ([`isolation`]).

mod isolation;
pub mod record;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// At most this many connections over a proxy's life (a safety stop).
const MAX_CONNECTIONS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    DynamoDb,
    Sqs,
    Kms,
    SecretsManager,
}

impl Service {
    /// The SigV4 signing name, as it appears in the credential scope.
    fn signing_name(self) -> &'static str {
        match self {
            Service::DynamoDb => "dynamodb",
            Service::Sqs => "sqs",
            Service::Kms => "kms",
            Service::SecretsManager => "secretsmanager",
        }
    }

    fn from_signing_name(name: &str) -> Option<Self> {
        [
            Service::DynamoDb,
            Service::Sqs,
            Service::Kms,
            Service::SecretsManager,
        ]
        .into_iter()
        .find(|s| s.signing_name() == name)
    }

    fn content_type(self) -> &'static str {
        match self {
            Service::DynamoDb | Service::Sqs => "application/x-amz-json-1.0",
            Service::Kms | Service::SecretsManager => "application/x-amz-json-1.1",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Unreachable,
    ServerError,
    Throttle,
    LoseAnswer,
}

#[derive(Debug, Clone)]
struct Rule {
    service: Service,
    operation: Option<&'static str>,
    fault: Fault,
    /// Matching requests let through before the fault starts.
    pass_first: usize,
    matched: usize,
}

#[derive(Debug)]
struct Inner {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    refuse: AtomicBool,
    refused_connections: AtomicUsize,
    /// Faults injected, per service and operation.
    injected: Mutex<HashMap<(Service, String), usize>>,
    /// Added latency per service.
    delays: Mutex<HashMap<Service, Duration>>,
    /// Requests received, per service and operation.
    calls: Mutex<HashMap<(Service, String), usize>>,
    /// Calls that reached the upstream, as IAM sees them (when not written to a log).
    recorded: Mutex<Vec<record::Call>>,
    /// The call log: one JSON line per call, written as each answer arrives.
    log: Option<Mutex<std::fs::File>>,
    /// DynamoDB's transaction isolation, which moto lacks (see [`isolation`]).
    tables: isolation::Tables,
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    url: String,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (moto's base URL).
    pub async fn start(upstream: &str) -> Self {
        Self::serve(upstream, None, "127.0.0.1:0", MAX_CONNECTIONS)
            .await
            .unwrap()
    }

    /// A proxy on `listen` that injects nothing and appends every call to the log at `path`
    /// (created or appended to), keeping nothing in memory; it serves until dropped.
    pub async fn start_recording(upstream: &str, path: &Path, listen: &str) -> io::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Self::serve(upstream, Some(log), listen, usize::MAX).await
    }

    async fn serve(
        upstream: &str,
        log: Option<std::fs::File>,
        listen: &str,
        max_connections: usize,
    ) -> io::Result<Self> {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            rules: Mutex::new(Vec::new()),
            refuse: AtomicBool::new(false),
            refused_connections: AtomicUsize::new(0),
            injected: Mutex::new(HashMap::new()),
            delays: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
            recorded: Mutex::new(Vec::new()),
            log: log.map(Mutex::new),
            tables: isolation::Tables::default(),
        });
        let listener = TcpListener::bind(listen).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let accepting = Arc::clone(&inner);
        let task = tokio::spawn(async move {
            for _ in 0..max_connections {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if accepting.refuse.load(Ordering::SeqCst) {
                    accepting.refused_connections.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                    continue;
                }
                let inner = Arc::clone(&accepting);
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&inner), req));
                    // A refused or injected failure ends the connection with an error: fine.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { url, inner, task })
    }

    /// The endpoint URL to give the SDK.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request to `service` fails with `fault`.
    pub fn fail(&self, service: Service, fault: Fault) {
        self.add(service, None, fault, 0);
    }

    /// Requests for `operation` of `service` fail with `fault` once `pass_first` of them have
    /// gone through.
    pub fn fail_operation(
        &self,
        service: Service,
        operation: &'static str,
        fault: Fault,
        pass_first: usize,
    ) {
        self.add(service, Some(operation), fault, pass_first);
    }

    fn add(&self, service: Service, operation: Option<&'static str>, fault: Fault, pass: usize) {
        self.inner.rules.lock().unwrap().push(Rule {
            service,
            operation,
            fault,
            pass_first: pass,
            matched: 0,
        });
    }

    /// Connections are closed as soon as they are accepted, requests on open ones unanswered.
    pub fn refuse_connections(&self) {
        self.inner.refuse.store(true, Ordering::SeqCst);
    }

    /// Back to forwarding everything, at once.
    pub fn heal(&self) {
        self.inner.rules.lock().unwrap().clear();
        self.inner.delays.lock().unwrap().clear();
        self.inner.refuse.store(false, Ordering::SeqCst);
    }

    /// Every request to `service` waits `delay` before it is forwarded (or failed).
    pub fn slow_down(&self, service: Service, delay: Duration) {
        self.inner.delays.lock().unwrap().insert(service, delay);
    }

    /// Requests received so far, per service and operation (`"unknown"` when unnamed).
    pub fn calls(&self) -> BTreeMap<(Service, String), usize> {
        self.inner
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// The calls that reached the upstream so far, as IAM sees them (empty for a proxy that
    /// writes them to a call log instead).
    pub fn recorded(&self) -> Vec<record::Call> {
        self.inner.recorded.lock().unwrap().clone()
    }

    /// Forgets the requests counted so far.
    pub fn reset_calls(&self) {
        self.inner.calls.lock().unwrap().clear();
        self.inner.recorded.lock().unwrap().clear();
    }

    /// How many faults were injected (requests failed or connections refused).
    pub fn injected(&self) -> usize {
        self.inner.refused_connections.load(Ordering::SeqCst)
            + self.inner.injected.lock().unwrap().values().sum::<usize>()
    }

    /// How many faults were injected into `service`.
    pub fn injected_into(&self, service: Service) -> usize {
        self.inner
            .injected
            .lock()
            .unwrap()
            .iter()
            .filter(|((s, _), _)| *s == service)
            .map(|(_, n)| n)
            .sum()
    }
}

impl Inner {
    fn fault_for(&self, service: Option<Service>, operation: Option<&str>) -> Option<Fault> {
        let service = service?;
        let mut rules = self.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|r| r.service == service && r.operation.is_none_or(|op| Some(op) == operation))?;
        rule.matched += 1;
        (rule.matched > rule.pass_first).then_some(rule.fault)
    }

    fn record(&self, calls: Vec<record::Call>) {
        match &self.log {
            Some(log) => {
                let mut text = String::new();
                for call in &calls {
                    text.push_str(&record::line(call));
                    text.push('\n');
                }
                // One write per request, to a file opened for appending.
                if let Err(error) = log.lock().unwrap().write_all(text.as_bytes()) {
                    eprintln!("aws-call-recorder: cannot append to the call log: {error}");
                }
            }
            None => self.recorded.lock().unwrap().extend(calls),
        }
    }

    fn count(&self, service: Service, operation: &str) {
        *self
            .injected
            .lock()
            .unwrap()
            .entry((service, operation.to_owned()))
            .or_default() += 1;
    }
}

/// The service named in the SigV4 credential scope of the `Authorization` header.
fn service_of(headers: &HeaderMap) -> Option<Service> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    Service::from_signing_name(scope.split('/').nth(3)?)
}

/// The operation named in `X-Amz-Target` (`Prefix.Operation`).
fn operation_of(headers: &HeaderMap) -> Option<String> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    target.rsplit('.').next().map(str::to_owned)
}

type ProxyResponse = Response<Full<Bytes>>;

async fn handle(inner: Arc<Inner>, request: Request<Incoming>) -> io::Result<ProxyResponse> {
    let service = service_of(request.headers());
    let operation = operation_of(request.headers());
    let scope = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(record::Scope::parse);
    if inner.refuse.load(Ordering::SeqCst) {
        inner.refused_connections.fetch_add(1, Ordering::SeqCst);
        return Err(io::Error::other("injected: connection refused"));
    }
    if let Some(service) = service {
        *inner
            .calls
            .lock()
            .unwrap()
            .entry((
                service,
                operation.clone().unwrap_or_else(|| "unknown".to_owned()),
            ))
            .or_default() += 1;
        let delay = inner.delays.lock().unwrap().get(&service).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }
    let fault = inner.fault_for(service, operation.as_deref());
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(io::Error::other)?.to_bytes();
    let Some(fault) = fault else {
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let query = parts.uri.query().map(str::to_owned);
        let answer = forward(&inner, parts, body.clone()).await;
        if let Some(scope) = scope {
            let (status, answer_bytes) = match &answer {
                Ok((response, bytes)) => (response.status().as_u16(), bytes.clone()),
                Err(_) => (0, Bytes::new()),
            };
            let name = record::operation(target.as_deref(), query.as_deref(), &body)
                .unwrap_or_else(|| "unknown".to_owned());
            inner.record(record::calls(&scope, &name, &body, &answer_bytes, status));
        }
        return answer.map(|(response, _)| response);
    };
    // A rule matched, so the service is known.
    let service = service.unwrap_or(Service::DynamoDb);
    inner.count(service, operation.as_deref().unwrap_or("unknown"));
    match fault {
        Fault::Unreachable => Err(io::Error::other("injected: unreachable")),
        Fault::ServerError | Fault::Throttle => Ok(error_response(service, fault)),
        Fault::LoseAnswer => {
            forward(&inner, parts, body).await?;
            Err(io::Error::other("injected: answer lost"))
        }
    }
}

/// The error AWS would send, in the service's JSON protocol shape.
fn error_response(service: Service, fault: Fault) -> ProxyResponse {
    let (status, error_type, message, query_error) = match (fault, service) {
        (Fault::Throttle, Service::DynamoDb) => (
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
            None,
        ),
        (Fault::Throttle, Service::Sqs) => (
            StatusCode::BAD_REQUEST,
            "com.amazonaws.sqs#RequestThrottled",
            "Rate exceeded",
            Some("RequestThrottled;Sender"),
        ),
        (Fault::Throttle, Service::Kms | Service::SecretsManager) => (
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
            None,
        ),
        (_, Service::DynamoDb) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
            None,
        ),
        (_, Service::Sqs) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "com.amazonaws.sqs#InternalError",
            "We encountered an internal error. Please try again.",
            Some("InternalError;Receiver"),
        ),
        (_, Service::Kms) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "KMSInternalException",
            "An internal error occurred.",
            None,
        ),
        (_, Service::SecretsManager) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServiceError",
            "An error occurred on the server side.",
            None,
        ),
    };
    let body = serde_json::json!({"__type": error_type, "message": message}).to_string();
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, service.content_type())
        .header("x-amzn-requestid", "00000000-0000-0000-0000-fault0injected");
    if let Some(q) = query_error {
        response = response.header("x-amzn-query-error", q);
    }
    response.body(Full::new(Bytes::from(body))).unwrap()
}

/// Headers that belong to one hop.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    [
        header::HOST,
        header::CONTENT_LENGTH,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
    ]
    .contains(name)
}

/// Forwards the request; the answer, and its body for the record.
async fn forward(
    inner: &Inner,
    parts: http::request::Parts,
    body: Bytes,
) -> io::Result<(ProxyResponse, Bytes)> {
    let _held = match (service_of(&parts.headers), operation_of(&parts.headers)) {
        (Some(Service::DynamoDb), Some(operation)) => {
            Some(inner.tables.hold(&operation, &body).await)
        }
        _ => None,
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let answer = inner
        .client
        .request(parts.method, format!("{}{path}", inner.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(io::Error::other)?;
    let status = answer.status();
    let answer_headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(io::Error::other)?;
    let mut response = Response::builder().status(status);
    for (name, value) in &answer_headers {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    let response = response
        .body(Full::new(bytes.clone()))
        .map_err(io::Error::other)?;
    Ok((response, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_service_comes_from_the_credential_scope_and_the_operation_from_the_target() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            ),
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.PutItem"),
        );
        assert_eq!(service_of(&headers), Some(Service::DynamoDb));
        assert_eq!(operation_of(&headers).as_deref(), Some("PutItem"));
    }
}
