//! The same hostile requests as HTTP API (payload 2.0) events through the deployed code path:
//! `hsbridge_platform::serve::handle_event`, which the runtime calls for every invocation. Here
//! lambda_http's conversion of the event is itself under attack: inputs on which it would panic
//! (and, with `panic = "abort"`, kill the instance) must get a 400 in the event's response shape.

use crate::harness::*;
use base64::Engine as _;
use hsbridge_platform::serve::handle_event;
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// An HTTP API event as API Gateway delivers it (stage `$default`).
#[derive(Clone)]
struct Event {
    method: &'static str,
    raw_path: String,
    raw_query: String,
    headers: Vec<(String, String)>,
    cookies: Vec<String>,
    body: Option<String>,
    base64: bool,
}

impl Event {
    fn new(method: &'static str, raw_path: &str, raw_query: &str) -> Self {
        Self {
            method,
            raw_path: raw_path.into(),
            raw_query: raw_query.into(),
            headers: vec![],
            cookies: vec![],
            body: None,
            base64: false,
        }
    }

    /// Signed as HubSpot signs `https://{host}{raw_path}?{raw_query}` with this body.
    fn signed(
        method: &'static str,
        host: &str,
        raw_path: &str,
        raw_query: &str,
        body: &[u8],
    ) -> Self {
        let query = if raw_query.is_empty() {
            String::new()
        } else {
            format!("?{raw_query}")
        };
        let timestamp = ts(NOW);
        let sig = signature(
            method,
            &format!("https://{host}{raw_path}{query}"),
            body,
            &timestamp,
        );
        let mut event = Self::new(method, raw_path, raw_query)
            .header("host", host)
            .header("content-type", "application/json")
            .header("x-hubspot-signature-v3", &sig)
            .header("x-hubspot-request-timestamp", &timestamp);
        if !body.is_empty() {
            event = match std::str::from_utf8(body) {
                Ok(text) => event.body(text),
                Err(_) => event.base64_body(body),
            };
        }
        event
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.into(), value.into()));
        self
    }

    fn cookie(mut self, cookie: &str) -> Self {
        self.cookies.push(cookie.into());
        self
    }

    fn body(mut self, body: &str) -> Self {
        self.body = Some(body.into());
        self.base64 = false;
        self
    }

    fn base64_body(mut self, body: &[u8]) -> Self {
        self.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
        self.base64 = true;
        self
    }

    fn json(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), json!(v)))
            .collect();
        let domain = self
            .headers
            .iter()
            .find(|(n, _)| n == "host")
            .map_or("api.execute-api.eu-west-1.amazonaws.com", |(_, v)| {
                v.as_str()
            });
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.raw_path,
            "rawQueryString": self.raw_query,
            "cookies": self.cookies,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": domain,
                "domainPrefix": "api",
                "http": {"method": self.method, "path": self.raw_path, "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "adversary"},
                "requestId": "adversarial-request",
                "routeKey": "$default",
                "stage": "$default",
                "time": "14/Nov/2023:22:13:20 +0000",
                "timeEpoch": NOW
            },
            "body": self.body,
            "isBase64Encoded": self.base64
        })
    }
}

async fn invoke(route: &impl Route, event: &Event) -> Value {
    let payload = RawValue::from_string(event.json().to_string()).unwrap();
    handle_event(
        route.router(),
        LambdaEvent::new(payload, Context::default()),
    )
    .await
}

/// One row: an event, its status, and whether it may be handed on.
struct LambdaCase {
    name: &'static str,
    event: Event,
    expected: u16,
    effect: Effect,
}

fn case(name: &'static str, event: Event, expected: u16) -> LambdaCase {
    LambdaCase {
        name,
        event,
        expected,
        effect: Effect::Nothing,
    }
}

async fn run<R: Route>(fresh: impl AsyncFn() -> R, cases: Vec<LambdaCase>) {
    let mut failures = Vec::new();
    for case in cases {
        let route = fresh().await;
        let response = invoke(&route, &case.event).await;
        let status = response["statusCode"].as_i64().unwrap_or_default();
        let wrote = route.writes();
        let effect_ok = effect_holds(case.effect, wrote, route.outbound());
        // Every answer is an HTTP API response document.
        let shaped = response["cookies"].is_array() && response["isBase64Encoded"].is_boolean();
        if status != i64::from(case.expected) || !effect_ok || !shaped {
            failures.push(format!(
                "{}: got {status} with {wrote} writes, expected {} and {:?}: {response}",
                case.name, case.expected, case.effect
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn webhook_event() -> Event {
    Event::signed("POST", HOOK_HOST, WEBHOOK_PATH, "", batch().as_bytes())
}

#[tokio::test]
async fn hostile_http_api_events_for_the_intake_get_a_400_and_nothing_is_queued() {
    let batch = batch();
    let cases = vec![
        LambdaCase {
            effect: Effect::HandedOn,
            ..case(
                "a signed batch is accepted through lambda_http (control)",
                webhook_event(),
                200,
            )
        },
        LambdaCase {
            effect: Effect::HandedOn,
            ..case(
                "a signed batch with a base64-encoded body is verified over its bytes (control)",
                webhook_event().base64_body(batch.as_bytes()),
                200,
            )
        },
        case(
            "a signed batch with a hubspot.fetch-style rawQueryString is refused with 5xx",
            Event::signed(
                "POST",
                HOOK_HOST,
                WEBHOOK_PATH,
                "appId=1&portalId=999&userId=7",
                batch.as_bytes(),
            ),
            500,
        ),
        case(
            "a \" in rawQueryString",
            Event::signed("POST", HOOK_HOST, WEBHOOK_PATH, "a=\"1\"", batch.as_bytes()),
            400,
        ),
        case(
            "a < in rawQueryString",
            Event::signed(
                "POST",
                HOOK_HOST,
                WEBHOOK_PATH,
                "a=<script>",
                batch.as_bytes(),
            ),
            400,
        ),
        case(
            "a space in rawQueryString",
            Event::signed("POST", HOOK_HOST, WEBHOOK_PATH, "a=b c", batch.as_bytes()),
            400,
        ),
        case(
            "a Host that fails IDNA",
            webhook_event().header("host", "xn--a.example"),
            400,
        ),
        case(
            "a Host with a space",
            webhook_event().header("host", "hooks example.com"),
            400,
        ),
        case(
            "a Host with an invalid port",
            webhook_event().header("host", "hooks.example.com:99999"),
            400,
        ),
        case(
            "an X-Forwarded-Proto that is not a scheme",
            webhook_event().header("x-forwarded-proto", "1http"),
            400,
        ),
        case(
            "a body marked base64 that is not",
            webhook_event().body("not base64!").tap_base64(),
            400,
        ),
        case(
            "a header value with CR LF (header injection)",
            webhook_event().header("x-note", "a\r\nx-hubspot-signature-v3: forged"),
            400,
        ),
        case(
            "a header name that is not a token",
            webhook_event().header("bad header", "1"),
            400,
        ),
        case(
            "a signed batch sent to a path with a stage prefix HubSpot never called",
            Event::signed("POST", HOOK_HOST, WEBHOOK_PATH, "", batch.as_bytes())
                .path("/prod/webhooks/hubspot"),
            404,
        ),
        case(
            "a Host other than the one HubSpot signed",
            webhook_event().header("host", "evil.example"),
            401,
        ),
        case(
            "a lone surrogate escape, signed",
            Event::signed(
                "POST",
                HOOK_HOST,
                WEBHOOK_PATH,
                "",
                format!(
                    "[{}]",
                    event_json(PORTAL, 1).replace("\"CRM\"", "\"\\udfff\"")
                )
                .as_bytes(),
            ),
            400,
        ),
        case(
            "a body that is not UTF-8, signed (base64 in the event)",
            Event::signed("POST", HOOK_HOST, WEBHOOK_PATH, "", b"[\xff]"),
            400,
        ),
    ];
    run(async || Intake::new(), cases).await;
}

#[tokio::test]
async fn hostile_http_api_events_for_the_oauth_routes_get_a_400_and_nothing_is_stored() {
    let s = oauth_state();
    let good_query = format!("code={GOOD_CODE}&state={}", s.as_str());
    let callback = |query: &str| {
        Event::new("GET", "/oauth/callback", query)
            .header("host", "bridge.example.com")
            .cookie(&format!("{HOST_STATE_COOKIE_NAME}={}", state_cookie(NOW)))
    };
    let cases = vec![
        LambdaCase {
            effect: Effect::HandedOn,
            ..case(
                "a good callback installs the account (control)",
                callback(&good_query),
                200,
            )
        },
        case(
            "install with a \" in rawQueryString",
            Event::new("GET", "/oauth/install", "next=\"//evil\"")
                .header("host", "bridge.example.com"),
            400,
        ),
        case(
            "install with a Host that fails IDNA",
            Event::new("GET", "/oauth/install", "").header("host", "xn--a.example"),
            400,
        ),
        case(
            "a callback with a space in rawQueryString",
            callback(&format!("{good_query}&x=a b")),
            400,
        ),
        case(
            "a callback with a < in rawQueryString",
            callback(&format!("{good_query}&redirect_uri=<evil>")),
            400,
        ),
        case(
            "a state cookie carrying CR LF is dropped by lambda_http and the callback refused",
            Event::new("GET", "/oauth/callback", &good_query)
                .header("host", "bridge.example.com")
                .cookie(&format!(
                    "{HOST_STATE_COOKIE_NAME}={}\r\nSet-Cookie: x=y",
                    state_cookie(NOW)
                )),
            400,
        ),
    ];
    run(async || OAuth::new(), cases).await;
    // Install through Lambda redirects only to HubSpot.
    let oauth = OAuth::new();
    let response = invoke(
        &oauth,
        &Event::new(
            "GET",
            "/oauth/install",
            "redirect_uri=https%3A%2F%2Fevil.example",
        )
        .header("host", "evil.example"),
    )
    .await;
    assert_eq!(response["statusCode"], 302);
    let location = response["headers"]["location"].as_str().unwrap();
    assert!(
        location.starts_with(&format!("{APP_BASE}/oauth/authorize?")),
        "{location}"
    );
    assert!(!location.contains("evil"), "{location}");
    assert_eq!(response["cookies"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_webhook_route_is_the_same_whether_an_http_api_decodes_rawpath_or_not() {
    // An HTTP API may deliver rawPath percent-decoded; the webhook route's path has nothing
    // to decode (unreserved characters and `/` only), so both readings are the same bytes.
    assert!(
        WEBHOOK_PATH
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~')),
        "{WEBHOOK_PATH} holds a character an HTTP API could decode"
    );
    let intake = Intake::new();
    let response = invoke(&intake, &webhook_event().path(WEBHOOK_PATH)).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(intake.writes(), 2, "one claim and one queued message");
}

#[tokio::test]
async fn hostile_http_api_events_for_the_relay_get_refused_and_nothing_is_forwarded() {
    let signed = |raw_path: &str, query: &str| {
        let relay_host = "bridge.example.com";
        Event::signed("GET", relay_host, raw_path, query, b"")
    };
    let cases = vec![
        LambdaCase {
            effect: Effect::HandedOn,
            ..case(
                "a signed GET is forwarded through lambda_http (control)",
                signed("/hubspot/relay/deals/42", "portalId=62515"),
                200,
            )
        },
        LambdaCase {
            effect: Effect::HandedOn,
            ..case(
                "a Host override is forwarded to the configured API only (control)",
                signed("/hubspot/relay/deals/42", "portalId=62515").header("host", "evil.example"),
                200,
            )
        },
        case(
            "an encoded .. in rawPath (lambda_http normalises uri(), the relay reads the raw path)",
            signed("/hubspot/relay/a/%2e%2e/admin", "portalId=62515"),
            400,
        ),
        case(
            "a .. in rawPath",
            signed("/hubspot/relay/a/../admin", "portalId=62515"),
            400,
        ),
        case(
            "an encoded slash in rawPath",
            signed("/hubspot/relay/a%2Fb", "portalId=62515"),
            400,
        ),
        case(
            "a rawPath that climbs out of the relay prefix",
            signed("/hubspot/relay/../../webhooks/hubspot", "portalId=62515"),
            404,
        ),
        LambdaCase {
            effect: Effect::HandedOn,
            ..case(
                "a rawPath with %20 as sent (REST API, function URL, ALB) is verified and forwarded (control)",
                signed("/hubspot/relay/notes/a%20b", "portalId=62515"),
                200,
            )
        },
        case(
            "the same request with rawPath decoded by an HTTP API is refused with its reason, not as unsigned",
            signed("/hubspot/relay/notes/a%20b", "portalId=62515").path("/hubspot/relay/notes/a b"),
            400,
        ),
        case(
            "a non-ASCII escape decoded by an HTTP API is refused with its reason",
            signed("/hubspot/relay/caf%C3%A9", "portalId=62515").path("/hubspot/relay/caf\u{e9}"),
            400,
        ),
        case(
            "a %25 decoded by an HTTP API into a stray % is refused with its reason",
            signed("/hubspot/relay/100%25", "portalId=62515").path("/hubspot/relay/100%"),
            400,
        ),
        case(
            "an encoded ? decoded by an HTTP API into the rawPath is refused",
            signed("/hubspot/relay/notes/a%3Fb", "portalId=62515").path("/hubspot/relay/notes/a?b"),
            400,
        ),
        case(
            "a rawPath an HTTP API cut at a decoded ? no longer matches its signature",
            signed("/hubspot/relay/notes/a%3Fb", "portalId=62515").path("/hubspot/relay/notes/a"),
            401,
        ),
        case(
            "a \" in rawQueryString",
            signed("/hubspot/relay/deals", "portalId=62515&q=\"x\""),
            400,
        ),
        case(
            "a space in rawQueryString",
            signed("/hubspot/relay/deals", "portalId=62515&q=a b"),
            400,
        ),
        case(
            "a Host that fails IDNA",
            signed("/hubspot/relay/deals", "portalId=62515").header("host", "xn--a.example"),
            400,
        ),
        case(
            "a body marked base64 that is not",
            signed("/hubspot/relay/deals", "portalId=62515")
                .body("!!!")
                .tap_base64(),
            400,
        ),
        case(
            "a header value with CR LF (header injection)",
            signed("/hubspot/relay/deals", "portalId=62515")
                .header("x-custom", "a\r\nauthorization: forged"),
            400,
        ),
    ];
    run(async || Relay::new().await, cases).await;
}

impl Event {
    /// Marks the current body as base64 without encoding it.
    fn tap_base64(mut self) -> Self {
        self.base64 = true;
        self
    }

    fn path(mut self, raw_path: &str) -> Self {
        self.raw_path = raw_path.into();
        self
    }
}

/// An HTTP API (payload 2.0) joins a repeated header into one value with commas, and a
/// repeated cookie into two entries of `cookies`: a duplicate arrives in that form, never as
/// two headers, and must still be refused.
#[tokio::test]
async fn headers_and_cookies_an_http_api_joined_are_still_refused_when_repeated() {
    let joined = |event: Event, name: &str| {
        let value = event
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap();
        event.header(name, &format!("{value},{value}"))
    };
    let intake = vec![
        case(
            "a joined X-HubSpot-Signature-v3 on a webhook",
            joined(webhook_event(), "x-hubspot-signature-v3"),
            401,
        ),
        case(
            "a joined X-HubSpot-Request-Timestamp on a webhook",
            joined(webhook_event(), "x-hubspot-request-timestamp"),
            401,
        ),
        case(
            "a joined Host on a webhook",
            joined(webhook_event(), "host"),
            401,
        ),
        case(
            "a base64 body whose signature covers the base64 text, not the bytes",
            {
                let text = base64::engine::general_purpose::STANDARD.encode(batch());
                let mut e = Event::signed("POST", HOOK_HOST, WEBHOOK_PATH, "", text.as_bytes());
                e.body = Some(text);
                e.tap_base64()
            },
            401,
        ),
    ];
    run(async || Intake::new(), intake).await;
    let relay = |query: &str| {
        Event::signed(
            "GET",
            "bridge.example.com",
            "/hubspot/relay/deals/42",
            query,
            b"",
        )
    };
    let relay_cases = vec![
        LambdaCase {
            effect: Effect::HandedOn,
            ..case("a signed relay GET (control)", relay("portalId=62515"), 200)
        },
        case(
            "a joined X-HubSpot-Signature-v3 on the relay",
            joined(relay("portalId=62515"), "x-hubspot-signature-v3"),
            401,
        ),
        case(
            "a joined X-HubSpot-Request-Timestamp on the relay",
            joined(relay("portalId=62515"), "x-hubspot-request-timestamp"),
            401,
        ),
    ];
    run(async || Relay::new().await, relay_cases).await;
    let s = oauth_state();
    let cookie = format!("{HOST_STATE_COOKIE_NAME}={}", state_cookie(NOW));
    let callback = |query: &str| {
        Event::new("GET", "/oauth/callback", query)
            .header("host", "bridge.example.com")
            .cookie(&cookie)
            .cookie(&cookie)
    };
    let oauth = vec![
        case(
            "the state cookie twice in cookies, with its state",
            callback(&format!("code={GOOD_CODE}&state={}", s.as_str())),
            400,
        ),
        case(
            "the state cookie twice in cookies, without a state (a restart, no exchange)",
            callback(&format!("code={GOOD_CODE}")),
            302,
        ),
    ];
    run(async || OAuth::new(), oauth).await;
}
