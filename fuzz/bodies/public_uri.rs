//! Rebuilding the public URI that v2/v3 signatures cover.
//!
//! Input starting with `{` is an API Gateway / function URL / ALB event as JSON: it goes through
//! `lambda_http::request::from_str`, then `hsbridge_platform::request::public_uri`. Anything else
//! is decoded as structured input for `rebuild_public_uri` directly, or for an HTTP API (payload
//! 2.0) event built from fuzzed fields. Neither may panic, and a rebuilt URI is exactly
//! `scheme://authority + path + ?query`.
//!
//! Known panics inside lambda_http (third-party code that runs before any project code, e.g.
//! `isBase64Encoded: true` with a body that is not base64) are skipped, not reported: the panic
//! hook lets exactly those unwind to a `catch_unwind` around `lambda_http::request::from_str`,
//! and prints each distinct one once. Any other panic aborts as usual and is a crash.
//!
//! This file is the target's body, shared by the fuzz target (`fuzz/fuzz_targets/`) and the
//! corpus replay in the main workspace's tests (`tests/fuzz_replay`): `run` is what libFuzzer
//! calls with each input; a panic (a failed assertion) is a finding.

// A failed oracle is how a fuzz target reports a finding: it panics on purpose.
#![allow(clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, Once};

use arbitrary::{Arbitrary, Unstructured};
use hsbridge_verify::{PublicBase, UriError, rebuild_public_uri};
use http::{HeaderMap, HeaderName, HeaderValue};

thread_local! {
    static IN_LAMBDA_HTTP: Cell<bool> = const { Cell::new(false) };
}
static HOOK: Once = Once::new();
static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Panic sites in lambda_http 1.3 / aws_lambda_events 1.2 reachable from event JSON. Each is
/// listed in docs/security-evidence.md.
fn is_known_third_party_panic(file: &str, message: &str) -> bool {
    (file.contains("aws_lambda_events")
        && message.contains("failed to decode aws base64 encoded body"))
        || (file.contains("lambda_http")
            && (message.contains("failed to build request")
                || message.contains("called `Result::unwrap()` on an `Err` value")))
}

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_LAMBDA_HTTP.with(Cell::get) {
                let file = info.location().map(|l| l.file()).unwrap_or_default();
                let line = info.location().map(|l| l.line()).unwrap_or_default();
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                if is_known_third_party_panic(file, &message) {
                    let key = format!("{file}:{line}");
                    if let Ok(mut seen) = SEEN.lock()
                        && seen.insert(key.clone())
                    {
                        eprintln!("known lambda_http panic skipped at {key}: {message}");
                    }
                    return; // unwind to the catch_unwind below
                }
            }
            previous(info);
        }));
    });
}

fn check_rebuilt(
    result: &Result<String, UriError>,
    base: Option<&PublicBase>,
    path: &str,
    query: Option<&str>,
) {
    let Ok(uri) = result else { return };
    let path = if path.is_empty() { "/" } else { path };
    let tail = match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let head = uri
        .strip_suffix(&tail)
        .unwrap_or_else(|| panic!("the URI does not end with path and query: {uri:?}"));
    match base {
        Some(base) => assert_eq!(head, base.as_str()),
        None => {
            let authority = head
                .strip_prefix("https://")
                .or_else(|| head.strip_prefix("http://"))
                .unwrap_or_else(|| panic!("no http(s) scheme: {uri:?}"));
            assert!(!authority.is_empty());
            assert!(
                !authority
                    .bytes()
                    .any(|b| matches!(b, b'/' | b'@' | b'?' | b'#' | b'\\')
                        || b.is_ascii_whitespace()
                        || b.is_ascii_control()),
                "the Host header shaped the URL: {uri:?}"
            );
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Rebuild<'a> {
    base: Option<&'a str>,
    headers: Vec<(&'a [u8], &'a [u8])>,
    raw_path: &'a str,
    raw_query: Option<&'a str>,
}

#[derive(Arbitrary, Debug)]
struct V2Event<'a> {
    raw_path: &'a str,
    raw_query: Option<&'a str>,
    host: Option<&'a str>,
    forwarded_proto: Option<&'a str>,
    domain_name: Option<&'a str>,
    stage: Option<&'a str>,
    method: &'a str,
    body: Option<&'a str>,
    is_base64: bool,
    cookies: Option<Vec<&'a str>>,
    base: Option<&'a str>,
}

#[derive(Arbitrary, Debug)]
enum Structured<'a> {
    Rebuild(Rebuild<'a>),
    Event(V2Event<'a>),
}

fn through_lambda_http(json: &str, base: Option<&PublicBase>) {
    install_hook();
    IN_LAMBDA_HTTP.with(|f| f.set(true));
    let parsed = catch_unwind(AssertUnwindSafe(|| lambda_http::request::from_str(json)));
    IN_LAMBDA_HTTP.with(|f| f.set(false));
    let Ok(Ok(request)) = parsed else { return };
    let (parts, _body) = request.into_parts();
    let _ = hsbridge_platform::request::public_uri(&parts, base);
    let _ = hsbridge_platform::request::public_uri(&parts, None);
}

pub fn run(data: &[u8]) {
    if data.first() == Some(&b'{') {
        if let Ok(json) = std::str::from_utf8(data) {
            let base = PublicBase::parse("https://hooks.example.com/v1").ok();
            through_lambda_http(json, base.as_ref());
        }
        return;
    }
    let Ok(input) = Structured::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        Structured::Rebuild(r) => {
            let mut headers = HeaderMap::new();
            for (name, value) in &r.headers {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                {
                    headers.append(name, value);
                }
            }
            let base = r.base.and_then(|b| PublicBase::parse(b).ok());
            let result = rebuild_public_uri(base.as_ref(), &headers, r.raw_path, r.raw_query);
            check_rebuilt(&result, base.as_ref(), r.raw_path, r.raw_query);
            let result = rebuild_public_uri(None, &headers, r.raw_path, r.raw_query);
            check_rebuilt(&result, None, r.raw_path, r.raw_query);
        }
        Structured::Event(e) => {
            let mut headers = serde_json::Map::new();
            if let Some(host) = e.host {
                headers.insert("host".into(), host.into());
            }
            if let Some(proto) = e.forwarded_proto {
                headers.insert("x-forwarded-proto".into(), proto.into());
            }
            let mut event = serde_json::json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": e.raw_path,
                "headers": headers,
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "api",
                    "domainName": e.domain_name,
                    "http": {
                        "method": e.method,
                        "path": e.raw_path,
                        "protocol": "HTTP/1.1",
                        "sourceIp": "192.0.2.1",
                        "userAgent": "fuzz"
                    },
                    "requestId": "id",
                    "routeKey": "$default",
                    "stage": e.stage.unwrap_or("$default"),
                    "time": "01/Jan/2026:00:00:00 +0000",
                    "timeEpoch": 0
                },
                "isBase64Encoded": e.is_base64
            });
            if let Some(q) = e.raw_query {
                event["rawQueryString"] = q.into();
            }
            if let Some(body) = e.body {
                event["body"] = body.into();
            }
            if let Some(cookies) = e.cookies {
                event["cookies"] = cookies.into();
            }
            let base = e.base.and_then(|b| PublicBase::parse(b).ok());
            through_lambda_http(&event.to_string(), base.as_ref());
        }
    }
}
