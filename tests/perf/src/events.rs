//! The events the harness hands to functions, shaped as Lambda delivers them: API Gateway HTTP
//! API payload 2.0 for the HTTP functions, an SQS batch for the api-caller. Webhook bodies are
//! signed v3 exactly as HubSpot signs them, at the moment they are built, by the support
//! library's signer (independent of the verifier under test).

use crate::stand::{ACTIVE_PORTAL, CLIENT_SECRET};
use hsbridge_integration_tests::lambda::HttpApiRequest;
use hsbridge_integration_tests::signed;
use hsbridge_verify::{HOST_STATE_COOKIE_NAME, OAuthState, Secret, SecretSet, mint_state_cookie};
use hsbridge_webhook_intake::events::parse_batch;
use hsbridge_webhook_intake::queue::envelope;
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

pub const HOST: &str = "hooks.example.com";
pub const WEBHOOK_PATH: &str = "/webhooks/hubspot";
pub const RELAY_PATH: &str = "/hubspot/relay/crm/contacts/123";
pub const RELAY_QUERY: &str = "portalId=62515&userId=1&userEmail=someone%40example.com";
pub const CALLBACK_PATH: &str = "/oauth/callback";

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// A webhook batch of `count` events with ids from `first_id`, as HubSpot sends them.
pub fn webhook_batch(first_id: u64, count: u64) -> String {
    let occurred_at = now_ms();
    let events: Vec<Value> = (first_id..first_id + count)
        .map(|id| {
            json!({
                "eventId": id, "subscriptionId": 12345, "portalId": ACTIVE_PORTAL, "appId": 54321,
                "occurredAt": occurred_at, "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0, "objectId": 1000 + id, "propertyName": "email",
                "propertyValue": "someone@example.com", "changeSource": "CRM",
                "sourceId": "userId:12345"
            })
        })
        .collect();
    Value::Array(events).to_string()
}

/// An HTTP API (payload 2.0) event to the perf host, as HubSpot's requests arrive (its user agent,
/// an X-Ray trace header from API Gateway).
fn http_event(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    mut headers: Vec<(&str, String)>,
    cookies: Vec<String>,
    body: &str,
) -> Vec<u8> {
    headers.extend([
        (
            "user-agent",
            "HubSpot Connect 2.0 (http://dev.hubspot.com/)".to_owned(),
        ),
        (
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793".to_owned(),
        ),
    ]);
    HttpApiRequest {
        host: HOST,
        method,
        path: raw_path,
        query: raw_query,
        headers,
        cookies,
        body,
    }
    .event()
}

/// HubSpot's v3 headers, computed by the support library (not by the verifier under test).
fn signature_headers(
    method: &str,
    path_and_query: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let uri = format!("https://{HOST}{path_and_query}");
    signed::v3_headers(CLIENT_SECRET, method, &uri, body.as_bytes(), now_ms()).into()
}

/// `POST /webhooks/hubspot` with `body`, signed now.
pub fn webhook(body: &str) -> Vec<u8> {
    let mut headers = signature_headers("POST", WEBHOOK_PATH, body);
    headers.push(("content-type", "application/json".to_owned()));
    http_event("POST", WEBHOOK_PATH, "", headers, Vec::new(), body)
}

/// A signed relay `GET` (a UI extension's `hubspot.fetch`).
pub fn relay_get() -> Vec<u8> {
    let headers = signature_headers("GET", &format!("{RELAY_PATH}?{RELAY_QUERY}"), "");
    http_event("GET", RELAY_PATH, RELAY_QUERY, headers, Vec::new(), "")
}

/// The browser's return from HubSpot's authorize page, with the state cookie set at install.
pub fn oauth_callback(n: u64) -> anyhow::Result<Vec<u8>> {
    let secrets = SecretSet::new(Secret::new(CLIENT_SECRET))
        .map_err(|_| anyhow::anyhow!("empty client secret"))?;
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8..16].copy_from_slice(&now_ms().to_be_bytes());
    let state = OAuthState::from_random_bytes(bytes);
    let cookie = mint_state_cookie(&secrets, &state, None, now_ms())
        .map_err(|e| anyhow::anyhow!("minting the state cookie: {e}"))?;
    let query = format!("code=perf-code-{n}&state={}", state.as_str());
    Ok(http_event(
        "GET",
        CALLBACK_PATH,
        &query,
        Vec::new(),
        vec![format!("{HOST_STATE_COOKIE_NAME}={cookie}")],
        "",
    ))
}

/// An SQS batch of `count` intake messages, as Lambda's event source mapping delivers it.
pub fn sqs_batch(first_id: u64, count: u64) -> anyhow::Result<Vec<u8>> {
    let body = webhook_batch(first_id, count);
    let events = parse_batch(body.as_bytes(), 100)
        .map_err(|e| anyhow::anyhow!("the sample batch does not parse: {e}"))?;
    let now = now_ms();
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let message = envelope(e, now, "v3");
            json!({
                "messageId": format!("0a1b2c3d-0000-4000-8000-{:012}", first_id + i as u64),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": message.body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now.to_string(),
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": now.to_string()
                },
                "messageAttributes": {
                    "portalId": {"stringValue": ACTIVE_PORTAL.to_string(), "dataType": "Number"}
                },
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:hsbridge-events",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    Ok(json!({ "Records": records }).to_string().into_bytes())
}

/// The HTTP status in a lambda_http (or Node) payload 2.0 response.
pub fn http_status(response: &[u8]) -> Option<u16> {
    let v: Value = serde_json::from_slice(response).ok()?;
    v.get("statusCode")?
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
}

/// The JSON body of a payload 2.0 response.
pub fn http_body(response: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(response).ok()?;
    serde_json::from_str(v.get("body")?.as_str()?).ok()
}
