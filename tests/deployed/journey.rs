//! One journey through the stack as samconfig.toml's default environment deploys it, each step
//! handled by the function's own process with the environment the template gives it: an
//! install through the OAuth callback (HubSpot's token endpoint on loopback), a signed webhook
//! to the intake, the queued message handed to the api-caller as Lambda's SQS event source
//! would hand it, its delivery with SigV4 to the protected API's stand-in, and a signed relay
//! GET through to the same stand-in.
//!
//! What differs from AWS, each named where it is set: the AWS endpoint (moto), and the network
//! location of the two things outside the stack, the protected API (its URL's path is kept)
//! and HubSpot's API base (which the template leaves to the code's default). The operator's
//! `put-secret-value` of the app credentials happens as infra/README.md says.

use crate::stand::{self, Artifacts, Deployment, ROLE_SECRET_KEY, deploy};
use aws_config::SdkConfig;
use axum::extract::{Path, State};
use axum::routing::post;
use hsbridge_integration_tests::lambda::HttpApiRequest;
use hsbridge_integration_tests::runtime_api::Outcome;
use hsbridge_integration_tests::signed;
use hsbridge_integration_tests::template::{ACCOUNT_ID, REGION};
use hsbridge_standin::{Credential, RecordedRequest, RunningStandin, Standin, StandinConfig};
use hsbridge_verify::HOST_STATE_COOKIE_NAME;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENT_ID: &str = "journey-client-id";
const CLIENT_SECRET: &str = "jjjjjjjj-jjjj-4jjj-8jjj-jjjjjjjjjjjj";
const HUB: u64 = 4_417_001;
const CODE: &str = "journey-authorization-code";
const ACCESS_TOKEN: &str = "journey-access-token-CAEQ";
const REFRESH_TOKEN: &str = "journey-refresh-token-na1";
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// One call to the token endpoint: the API version in its path, and its form.
type TokenCall = (String, BTreeMap<String, String>);

/// HubSpot's token endpoint, as far as an install needs it: one authorization code, issued for
/// the app's client and its registered redirect URL. Every call is recorded.
#[derive(Debug, Clone)]
struct TokenEndpoint {
    redirect_url: String,
    calls: Arc<Mutex<Vec<TokenCall>>>,
}

async fn token(
    State(endpoint): State<TokenEndpoint>,
    Path(version): Path<String>,
    body: String,
) -> (http::StatusCode, axum::Json<Value>) {
    let form: BTreeMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    endpoint.calls.lock().unwrap().push((version, form.clone()));
    let field = |k: &str| form.get(k).map(String::as_str);
    let valid = field("grant_type") == Some("authorization_code")
        && field("code") == Some(CODE)
        && field("client_id") == Some(CLIENT_ID)
        && field("client_secret") == Some(CLIENT_SECRET)
        && field("redirect_uri") == Some(endpoint.redirect_url.as_str());
    if !valid {
        return (
            http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "BAD_AUTH_CODE", "message": "invalid_grant"})),
        );
    }
    (
        http::StatusCode::OK,
        axum::Json(json!({
            "access_token": ACCESS_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "expires_in": 1800,
            "token_type": "bearer",
            "hub_id": HUB,
            "scopes": ["oauth", "crm.objects.contacts.read"],
        })),
    )
}

async fn start_token_endpoint(redirect_url: &str) -> (String, TokenEndpoint) {
    let endpoint = TokenEndpoint {
        redirect_url: redirect_url.to_owned(),
        calls: Arc::default(),
    };
    let router = axum::Router::new()
        .route("/oauth/{version}/token", post(token))
        .with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, endpoint)
}

/// The protected API's stand-in, knowing the credentials of the two roles that call it.
async fn start_protected_api(deployment: &Deployment) -> RunningStandin {
    let credentials = ["ApiCallerFunction", "HubSpotRelayFunction"]
        .iter()
        .map(|id| {
            let f = deployment.function(id).unwrap();
            let role_name = &deployment.stack.physical[&f.role].reference;
            Credential {
                access_key_id: f.role.clone(),
                secret_access_key: ROLE_SECRET_KEY.to_owned(),
                session_token: Some(Deployment::session_token(&f.role)),
                principal_arn: format!(
                    "arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/{}",
                    f.name
                ),
            }
        })
        .collect();
    Standin::new(StandinConfig::new(REGION, credentials))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// `url` with its scheme and authority replaced by `base`'s: the same path on another host.
fn relocated(url: &str, base: &str) -> String {
    let parsed: http::Uri = url.parse().unwrap();
    format!("{base}{}", parsed.path().trim_end_matches('/'))
}

fn host_of(url: &str) -> String {
    let parsed: http::Uri = url.parse().unwrap();
    parsed.authority().unwrap().to_string()
}

fn now_ms() -> u64 {
    hsbridge_integration_tests::aws::now_ms()
}

/// An HTTP API (payload 2.0) event as API Gateway hands it to a function.
fn http_event(
    host: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, String)],
    cookies: &[String],
    body: &str,
) -> Vec<u8> {
    HttpApiRequest {
        host,
        method,
        path,
        query,
        headers: headers.to_vec(),
        cookies: cookies.to_vec(),
        body,
    }
    .event()
}

/// HubSpot's v3 signature headers for a request to `https://{host}{path_and_query}`, made by the
/// stand's signer (not by the verification crate under test).
fn signed(
    host: &str,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let uri = format!("https://{host}{path_and_query}");
    signed::v3_headers(CLIENT_SECRET, method, &uri, body.as_bytes(), now_ms()).into()
}

fn answer(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Response(body) => serde_json::from_slice(&body).unwrap(),
        Outcome::Error(body) => panic!(
            "the function failed the invocation: {}",
            String::from_utf8_lossy(&body)
        ),
    }
}

/// A failure on our side that HubSpot retries: a 5xx.
fn server_error(response: &Value) -> bool {
    status(response) >= 500
}

/// A batch with failed items, which Lambda's event source delivers again.
fn batch_failed(response: &Value) -> bool {
    response["batchItemFailures"]
        .as_array()
        .is_none_or(|f| !f.is_empty())
}

/// Hands `event` to the function and returns its answer. Under emulation an answer that
/// `failed_on_our_side` marks (a 5xx, a failed batch item) is delivered again, as HubSpot and
/// Lambda's event source would, at most twice more: the functions' production AWS timeouts
/// (1.8 s per call) can be shorter than an emulated first call to the SDK. The host build gets
/// one delivery.
async fn deliver(
    running: &stand::Running,
    event: Vec<u8>,
    emulated: bool,
    failed_on_our_side: fn(&Value) -> bool,
) -> Value {
    let attempts = if emulated { 3 } else { 1 };
    let mut last = Value::Null;
    for attempt in 1..=attempts {
        let (_, outcome) = running
            .api
            .invoke(event.clone(), INVOKE_TIMEOUT)
            .await
            .unwrap();
        last = answer(outcome);
        if !failed_on_our_side(&last) {
            break;
        }
        if attempt < attempts {
            println!("under emulation, delivering again after: {last}");
        }
    }
    last
}

fn status(response: &Value) -> u64 {
    response["statusCode"].as_u64().unwrap_or_default()
}

/// Everything on the queue now, as Lambda's SQS event source receives it.
async fn receive(sdk: &SdkConfig, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    for _ in 0..20 {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .visibility_timeout(60)
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() && !out.is_empty() {
            break;
        }
        out.extend(messages);
        if !out.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out
}

/// The SQS event Lambda's event source mapping builds from received messages.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Vec<u8> {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                        .collect()
                })
                .unwrap_or_default();
            let message_attributes: serde_json::Map<String, Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                json!({
                                    "stringValue": v.string_value(),
                                    "stringListValues": [],
                                    "binaryListValues": [],
                                    "dataType": v.data_type(),
                                }),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records }).to_string().into_bytes()
}

fn recorded_at(standin: &RunningStandin, method: &str, path: &str) -> Vec<RecordedRequest> {
    standin
        .standin
        .recorded()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

#[tokio::test]
async fn an_install_a_webhook_its_delivery_and_a_relayed_call_pass_through_the_deployed_functions()
{
    let sdk = stand::sdk().await;
    let artifacts = Artifacts::chosen().unwrap();
    let emulated = artifacts.emulated();
    let set = stand::samconfig("default").unwrap();
    println!("journey ({}): running {}", set.label, artifacts.describe());
    let deployment = deploy(&sdk, &set).await.unwrap();
    let physical = |id: &str| deployment.stack.physical[id].clone();
    let callback = deployment.function("OAuthCallbackFunction").unwrap();
    let intake = deployment.function("WebhookIntakeFunction").unwrap();
    let caller = deployment.function("ApiCallerFunction").unwrap();
    let relay = deployment.function("HubSpotRelayFunction").unwrap();

    // The operator stores the app's credentials in the stack's secret (infra/README.md).
    aws_sdk_secretsmanager::Client::new(&sdk)
        .put_secret_value()
        .secret_id(&physical("HubSpotAppSecret").reference)
        .secret_string(json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).to_string())
        .send()
        .await
        .unwrap();

    let redirect_url = callback.environment["HSBRIDGE_OAUTH_REDIRECT_URL"].clone();
    let public_host = host_of(&redirect_url);
    let (hubspot_base, hubspot) = start_token_endpoint(&redirect_url).await;
    let protected = start_protected_api(&deployment).await;
    let to_hubspot = BTreeMap::from([(
        "HSBRIDGE_HUBSPOT_API_BASE".to_owned(),
        Some(hubspot_base.clone()),
    )]);
    let to_standin = |f: &hsbridge_integration_tests::stack::Function| {
        BTreeMap::from([(
            "HSBRIDGE_PROTECTED_API_URL".to_owned(),
            Some(relocated(
                &f.environment["HSBRIDGE_PROTECTED_API_URL"],
                &protected.base_url,
            )),
        )])
    };
    let callback_proc = deployment
        .start(&artifacts, callback, &to_hubspot)
        .await
        .unwrap();
    let intake_proc = deployment
        .start(&artifacts, intake, &BTreeMap::new())
        .await
        .unwrap();
    let caller_proc = deployment
        .start(&artifacts, caller, &to_standin(caller))
        .await
        .unwrap();
    let relay_proc = deployment
        .start(&artifacts, relay, &to_standin(relay))
        .await
        .unwrap();

    // 1. The install: /oauth/install sets the state cookie and sends the browser to HubSpot;
    //    HubSpot sends it back to the registered redirect URL with a code.
    let install = deliver(
        &callback_proc,
        http_event(&public_host, "GET", "/oauth/install", "", &[], &[], ""),
        emulated,
        server_error,
    )
    .await;
    assert_eq!(status(&install), 302, "{install}");
    let location = install["headers"]["location"].as_str().unwrap().to_owned();
    let authorize: http::Uri = location.parse().unwrap();
    let query: BTreeMap<String, String> =
        serde_urlencoded::from_str(authorize.query().unwrap()).unwrap();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], redirect_url);
    let state = query["state"].clone();
    let cookie = install["cookies"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(Value::as_str)
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with(&format!("{HOST_STATE_COOKIE_NAME}=")),
        "{cookie}"
    );
    let installed = deliver(
        &callback_proc,
        http_event(
            &public_host,
            "GET",
            "/oauth/callback",
            &format!("code={CODE}&state={state}"),
            &[],
            &[cookie],
            "",
        ),
        emulated,
        server_error,
    )
    .await;
    assert_eq!(
        status(&installed),
        200,
        "{installed}\n{}",
        stand::tail(&callback_proc.log)
    );
    let exchanges = hubspot.calls.lock().unwrap().clone();
    // One exchange (more only when an emulated callback was delivered again).
    assert!(
        exchanges.len() == 1 || (emulated && !exchanges.is_empty()),
        "{exchanges:?}"
    );
    assert_eq!(
        exchanges[0].0,
        set_or_default(&deployment, "HubSpotApiVersion")
    );

    // The account is sealed in the accounts table: tokens encrypted, none in the clear.
    let account = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&physical("AccountsTable").reference)
        .key(
            "hub_id",
            aws_sdk_dynamodb::types::AttributeValue::S(HUB.to_string()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("no account record after the install");
    assert_eq!(account["status"].as_s().unwrap(), "active");
    let sealed = account["tokens"].as_b().unwrap().as_ref().to_vec();
    assert!(!account["wrapped_key"].as_b().unwrap().as_ref().is_empty());
    for token in [ACCESS_TOKEN, REFRESH_TOKEN] {
        assert!(
            !sealed.windows(token.len()).any(|w| w == token.as_bytes()),
            "the sealed tokens hold {token} in the clear"
        );
        assert!(
            !format!("{account:?}").contains(token),
            "the account record holds {token} in the clear"
        );
    }

    // 2. A signed webhook for the installed account reaches the intake and is queued.
    let event_id = now_ms();
    let body = json!([{
        "eventId": event_id, "subscriptionId": 12345, "portalId": HUB, "appId": 54321,
        "occurredAt": now_ms(), "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0, "objectId": 1001, "propertyName": "email",
        "propertyValue": "someone@example.com", "changeSource": "CRM"
    }])
    .to_string();
    let mut headers = signed(&public_host, "POST", "/webhooks/hubspot", &body);
    headers.push(("content-type", "application/json".to_owned()));
    let accepted = deliver(
        &intake_proc,
        http_event(
            &public_host,
            "POST",
            "/webhooks/hubspot",
            "",
            &headers,
            &[],
            &body,
        ),
        emulated,
        server_error,
    )
    .await;
    assert_eq!(
        status(&accepted),
        200,
        "{accepted}\n{}",
        stand::tail(&intake_proc.log)
    );
    let queue = physical("EventsQueue");
    let messages = receive(&sdk, &queue.reference).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].body().unwrap().contains(&event_id.to_string()),
        "{:?}",
        messages[0].body()
    );

    // 3. Lambda hands the message to the api-caller, which delivers it with SigV4.
    let batch = deliver(
        &caller_proc,
        sqs_event(&messages, &queue.attributes["Arn"]),
        emulated,
        batch_failed,
    )
    .await;
    assert_eq!(
        batch["batchItemFailures"],
        json!([]),
        "{batch}\n{}",
        stand::tail(&caller_proc.log)
    );
    let events_path = format!(
        "{}{}",
        http::Uri::try_from(caller.environment["HSBRIDGE_PROTECTED_API_URL"].as_str())
            .unwrap()
            .path(),
        caller.environment["HSBRIDGE_EVENTS_PATH"]
    );
    let deliveries = recorded_at(&protected, "POST", &events_path);
    assert_eq!(deliveries.len(), 1, "{:?}", protected.standin.recorded());
    let delivery = &deliveries[0];
    assert!(
        delivery
            .caller
            .contains(&deployment.stack.physical[&caller.role].reference),
        "signed by {}",
        delivery.caller
    );
    assert!(String::from_utf8_lossy(&delivery.body).contains(&event_id.to_string()));

    // 4. A signed relay GET reaches the protected API below the relay's prefix.
    let relay_query = format!("portalId={HUB}&userId=1&userEmail=someone%40example.com");
    let relay_path = "/hubspot/relay/contacts/123";
    let headers = signed(
        &public_host,
        "GET",
        &format!("{relay_path}?{relay_query}"),
        "",
    );
    let relayed = deliver(
        &relay_proc,
        http_event(
            &public_host,
            "GET",
            relay_path,
            &relay_query,
            &headers,
            &[],
            "",
        ),
        emulated,
        server_error,
    )
    .await;
    assert_eq!(
        status(&relayed),
        200,
        "{relayed}\n{}",
        stand::tail(&relay_proc.log)
    );
    let forwarded_path = format!(
        "{}{}/contacts/123",
        http::Uri::try_from(relay.environment["HSBRIDGE_PROTECTED_API_URL"].as_str())
            .unwrap()
            .path(),
        relay.environment["HSBRIDGE_RELAY_TARGET_PREFIX"]
    );
    let forwarded = recorded_at(&protected, "GET", &forwarded_path);
    assert_eq!(forwarded.len(), 1, "{:?}", protected.standin.recorded());
    let relay_role = &deployment.stack.physical[&relay.role].reference;
    assert!(
        forwarded[0].caller.contains(relay_role),
        "{}",
        forwarded[0].caller
    );
    // The relay's answer is the protected API's: the identity it saw.
    let answered: Value = serde_json::from_str(relayed["body"].as_str().unwrap()).unwrap();
    assert!(answered.to_string().contains(relay_role), "{answered}");
}

/// The value of a template parameter in this deploy.
fn set_or_default(deployment: &Deployment, name: &str) -> String {
    deployment.stack.translated.parameters[name].clone()
}
