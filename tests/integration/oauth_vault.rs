//! The token vault and the OAuth install flow against moto (DynamoDB, KMS, Secrets Manager) and
//! a fake HubSpot token endpoint served on 127.0.0.1:0 inside the test.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{delete, post};
use hsbridge_integration_tests::aws::{
    Role, as_role, create_app_secret, create_kms_key, create_table, now_ms, scan, sdk, unique,
};
use hsbridge_oauth_callback::{CallbackConfig, app, wiring};
use hsbridge_platform::accounts::{AccountDirectory, AccountStatus, DynamoAccountDirectory};
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_platform::{Clock, ManualClock};
use hsbridge_vault::hubspot::TokenGrant;
use hsbridge_vault::store::{AccountRecord, SealedTokens, TokenUpdate};
use hsbridge_vault::{
    AccountStore, ApiVersion, DynamoAccountStore, HubSpotStep, InMemoryAccountStore, KmsKeyWrapper,
    ReqwestHubSpotOAuth, StoreError, Vault, VaultError, VaultSettings,
};
use hsbridge_verify::{Secret, SecretSet};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

const SECRET: &str = "client-secret-7f3c9a1e-never-logged";
const CLIENT_ID: &str = "test-client-id";
const HUB: u64 = 62515;
const OTHER_HUB: u64 = 77001;
const CODE: &str = "auth-code-ok";
const INSTALL_ACCESS: &str = "access-install-5d1e2f";
const INSTALL_REFRESH: &str = "refresh-install-9b8c7d";
const SEED_ACCESS: &str = "access-seeded-a1b2c3";
const SEED_REFRESH: &str = "refresh-seeded-d4e5f6";
const SCOPES: &str = "oauth crm.objects.contacts.read";

/// How the fake answers the refresh grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshMode {
    /// New access and refresh tokens.
    Rotate,
    /// A new access token, no refresh token.
    AccessOnly,
    /// RFC 6749 `invalid_grant`.
    InvalidGrant,
    /// Legacy `status: BAD_REFRESH_TOKEN`.
    BadRefreshToken,
}

#[derive(Debug)]
struct Fake {
    code_calls: AtomicUsize,
    refresh_calls: AtomicUsize,
    introspect_calls: AtomicUsize,
    revoke_calls: AtomicUsize,
    mode: Mutex<RefreshMode>,
    refresh_delay: Mutex<Duration>,
    include_hub_id: Mutex<bool>,
    granted_scopes: Mutex<Vec<&'static str>>,
    token_type: Mutex<&'static str>,
    /// The refresh tokens the refresh grant received, in order.
    refresh_tokens_seen: Mutex<Vec<String>>,
    /// When set, the next refresh answers only once this is notified.
    hold_next_refresh: Mutex<Option<Arc<tokio::sync::Notify>>>,
    /// The path of every request, in order.
    paths: Mutex<Vec<String>>,
    uninstall_calls: AtomicUsize,
    /// The status the uninstall endpoint answers.
    uninstall_status: Mutex<StatusCode>,
}

/// A fake HubSpot token endpoint, counting calls.
#[derive(Debug, Clone)]
struct FakeHubSpot {
    base: String,
    state: Arc<Fake>,
}

impl FakeHubSpot {
    async fn start() -> Self {
        let state = Arc::new(Fake {
            code_calls: AtomicUsize::new(0),
            refresh_calls: AtomicUsize::new(0),
            introspect_calls: AtomicUsize::new(0),
            revoke_calls: AtomicUsize::new(0),
            mode: Mutex::new(RefreshMode::Rotate),
            refresh_delay: Mutex::new(Duration::ZERO),
            include_hub_id: Mutex::new(true),
            granted_scopes: Mutex::new(vec!["oauth", "crm.objects.contacts.read"]),
            token_type: Mutex::new("Bearer"),
            refresh_tokens_seen: Mutex::new(Vec::new()),
            hold_next_refresh: Mutex::new(None),
            paths: Mutex::new(Vec::new()),
            uninstall_calls: AtomicUsize::new(0),
            uninstall_status: Mutex::new(StatusCode::NO_CONTENT),
        });
        // Every supported version's paths, so a test sees which one a setting makes it call.
        let mut router = Router::new();
        for version in ApiVersion::SUPPORTED {
            router = router
                .route(&version.token_path(), post(token))
                .route(&version.introspect_path(), post(introspect))
                .route(&version.revoke_path(), post(revoke))
                .route(&version.uninstall_path(), delete(uninstall));
        }
        let recorder = Arc::clone(&state);
        let router = router
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let recorder = Arc::clone(&recorder);
                    async move {
                        recorder
                            .paths
                            .lock()
                            .unwrap()
                            .push(request.uri().path().to_owned());
                        next.run(request).await
                    }
                },
            ))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { base, state }
    }

    fn set_mode(&self, mode: RefreshMode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn refreshes(&self) -> usize {
        self.state.refresh_calls.load(Ordering::SeqCst)
    }

    fn last_refresh_token_seen(&self) -> Option<String> {
        self.state
            .refresh_tokens_seen
            .lock()
            .unwrap()
            .last()
            .cloned()
    }
}

fn form(body: &Bytes) -> HashMap<String, String> {
    serde_urlencoded::from_bytes(body).unwrap()
}

fn unauthorized() -> axum::response::Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "invalid_client"})),
    )
        .into_response()
}

async fn token(State(fake): State<Arc<Fake>>, body: Bytes) -> axum::response::Response {
    let f = form(&body);
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || f.get("client_secret").map(String::as_str) != Some(SECRET)
    {
        return unauthorized();
    }
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            fake.code_calls.fetch_add(1, Ordering::SeqCst);
            if f.get("code").map(String::as_str) != Some(CODE) {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "invalid_grant"})),
                )
                    .into_response();
            }
            let mut answer = json!({
                "access_token": INSTALL_ACCESS,
                "refresh_token": INSTALL_REFRESH,
                "expires_in": 1800,
                "token_type": *fake.token_type.lock().unwrap(),
                "token_use": "access_token",
            });
            if *fake.include_hub_id.lock().unwrap() {
                answer["hub_id"] = json!(HUB);
                answer["scopes"] = json!(*fake.granted_scopes.lock().unwrap());
            }
            axum::Json(answer).into_response()
        }
        Some("refresh_token") => {
            let n = fake.refresh_calls.fetch_add(1, Ordering::SeqCst) + 1;
            fake.refresh_tokens_seen
                .lock()
                .unwrap()
                .push(f.get("refresh_token").cloned().unwrap_or_default());
            // The answer is decided when the request arrives, however long it then takes.
            let mode = *fake.mode.lock().unwrap();
            let delay = *fake.refresh_delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let hold = fake.hold_next_refresh.lock().unwrap().take();
            if let Some(release) = hold {
                release.notified().await;
            }
            match mode {
                RefreshMode::Rotate => axum::Json(json!({
                    "access_token": format!("access-refreshed-{n}"),
                    "refresh_token": format!("refresh-rotated-{n}"),
                    "expires_in": 1800,
                    "token_type": "bearer",
                }))
                .into_response(),
                RefreshMode::AccessOnly => axum::Json(json!({
                    "access_token": format!("access-refreshed-{n}"),
                    "expires_in": 1800,
                    "token_type": "bearer",
                }))
                .into_response(),
                RefreshMode::InvalidGrant => (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "invalid_grant", "error_description": "revoked"})),
                )
                    .into_response(),
                RefreshMode::BadRefreshToken => (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"})),
                )
                    .into_response(),
            }
        }
        _ => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response(),
    }
}

async fn introspect(State(fake): State<Arc<Fake>>, body: Bytes) -> axum::response::Response {
    let f = form(&body);
    if f.get("client_secret").map(String::as_str) != Some(SECRET)
        || f.get("token_type_hint").map(String::as_str) != Some("access_token")
    {
        return unauthorized();
    }
    fake.introspect_calls.fetch_add(1, Ordering::SeqCst);
    axum::Json(
        json!({"active": true, "hub_id": HUB, "scopes": ["oauth", "crm.objects.contacts.read"]}),
    )
    .into_response()
}

async fn revoke(State(fake): State<Arc<Fake>>, body: Bytes) -> axum::response::Response {
    let f = form(&body);
    if f.get("client_secret").map(String::as_str) != Some(SECRET)
        || f.get("token_type_hint").map(String::as_str) != Some("refresh_token")
    {
        return unauthorized();
    }
    fake.revoke_calls.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK.into_response()
}

async fn uninstall(
    State(fake): State<Arc<Fake>>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    fake.uninstall_calls.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !matches!(bearer, Some(SEED_ACCESS | INSTALL_ACCESS)) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"category": "INVALID_AUTHENTICATION"})),
        )
            .into_response();
    }
    let status = *fake.uninstall_status.lock().unwrap();
    if status.is_success() {
        status.into_response()
    } else {
        (status, axum::Json(json!({"category": "MISSING_SCOPES"}))).into_response()
    }
}

/// Fresh AWS resources and a fake HubSpot for one test.
struct Stand {
    sdk: SdkConfig,
    table: String,
    key_id: String,
    secret_id: String,
    hubspot: FakeHubSpot,
    clock: ManualClock,
}

impl Stand {
    async fn new() -> Self {
        let sdk = sdk().await;
        let table = unique("accounts");
        let secret_id = unique("hubspot-app");
        create_table(&sdk, &table, "hub_id").await;
        create_app_secret(&sdk, &secret_id, SECRET).await;
        let key_id = create_kms_key(&sdk).await;
        Self {
            sdk,
            table,
            key_id,
            secret_id,
            hubspot: FakeHubSpot::start().await,
            clock: ManualClock::at(now_ms()),
        }
    }

    fn store(&self) -> DynamoAccountStore {
        DynamoAccountStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), &self.table)
    }

    /// One vault instance (as one Lambda instance would have).
    fn vault_with(&self, settings: VaultSettings) -> Vault {
        self.vault_waiting(settings, Duration::from_secs(5))
    }

    /// One vault instance that waits up to `hubspot_timeout` for each HubSpot call.
    fn vault_waiting(&self, settings: VaultSettings, hubspot_timeout: Duration) -> Vault {
        let app = HubSpotApp {
            client_id: CLIENT_ID.to_owned(),
            secrets: SecretSet::new(Secret::new(SECRET)).unwrap(),
        };
        let callback = as_role(&self.sdk, Role::OAuthCallback);
        Vault::new(
            Arc::new(DynamoAccountStore::new(
                aws_sdk_dynamodb::Client::new(&callback),
                &self.table,
            )),
            Arc::new(KmsKeyWrapper::new(
                aws_sdk_kms::Client::new(&callback),
                &self.key_id,
            )),
            Arc::new(ReqwestHubSpotOAuth::new(&self.hubspot.base, hubspot_timeout).unwrap()),
            Arc::new(StaticSecretSource(app)),
            Arc::new(self.clock.clone()),
            settings,
        )
    }

    fn vault(&self) -> Vault {
        self.vault_with(VaultSettings::default())
    }

    /// Stores an account whose access token expires in `expires_in` seconds.
    async fn seed(&self, hub_id: u64, expires_in: i64) {
        let grant = TokenGrant {
            access_token: Secret::new(SEED_ACCESS),
            refresh_token: Some(Secret::new(SEED_REFRESH)),
            expires_in,
            token_type: "bearer".to_owned(),
            hub_id: Some(hub_id),
            scopes: None,
        };
        self.vault()
            .install(hub_id, &grant, &["oauth".to_owned()])
            .await
            .unwrap();
    }

    fn callback_config_with(&self, extra: &[(&str, &str)]) -> CallbackConfig {
        let mut vars = HashMap::from([
            ("HSBRIDGE_ACCOUNTS_TABLE".to_owned(), self.table.clone()),
            ("HSBRIDGE_KMS_KEY_ID".to_owned(), self.key_id.clone()),
            (
                "HSBRIDGE_HUBSPOT_SECRET_ID".to_owned(),
                self.secret_id.clone(),
            ),
            (
                "HSBRIDGE_OAUTH_REDIRECT_URL".to_owned(),
                "https://install.example.com/oauth/callback".to_owned(),
            ),
            ("HSBRIDGE_OAUTH_SCOPES".to_owned(), SCOPES.to_owned()),
            (
                "HSBRIDGE_OAUTH_OPTIONAL_SCOPES".to_owned(),
                "crm.objects.deals.read".to_owned(),
            ),
            (
                "HSBRIDGE_HUBSPOT_API_BASE".to_owned(),
                self.hubspot.base.clone(),
            ),
            (
                "HSBRIDGE_HUBSPOT_APP_BASE".to_owned(),
                "https://app.hubspot.test".to_owned(),
            ),
        ]);
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        CallbackConfig::from_env(&vars).unwrap()
    }

    fn router(&self) -> Router {
        self.router_with(&[])
    }

    fn router_with(&self, extra: &[(&str, &str)]) -> Router {
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let sdk = as_role(&self.sdk, Role::OAuthCallback);
        app(wiring::aws_state(&self.callback_config_with(extra), &sdk, clock).unwrap())
    }

    async fn item(&self, hub_id: u64) -> Option<HashMap<String, AttributeValue>> {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .get_item()
            .table_name(&self.table)
            .key("hub_id", AttributeValue::S(hub_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }
}

async fn get(
    router: &Router,
    uri: &str,
    cookie: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

/// Starts an install: the `Cookie` header to send back and the state from the authorize URL.
async fn start_install(router: &Router) -> (String, String) {
    let (status, headers, _) = get(router, "/oauth/install", None).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = headers[header::LOCATION].to_str().unwrap().to_owned();
    let state = location.split("&state=").nth(1).unwrap().to_owned();
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    (cookie, state)
}

fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Asserts no token of the install flow appears anywhere in the raw items.
fn assert_no_plaintext(items: &[HashMap<String, AttributeValue>], tokens: &[&str]) {
    for item in items {
        for value in item.values() {
            let raw: Vec<u8> = match value {
                AttributeValue::B(b) => b.as_ref().to_vec(),
                other => format!("{other:?}").into_bytes(),
            };
            for token in tokens {
                assert!(
                    !contains_bytes(&raw, token),
                    "a token is stored in plaintext"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_full_install_stores_the_account_with_no_token_in_plaintext() {
    let stand = Stand::new().await;
    let router = stand.router();

    let (status, headers, _) = get(&router, "/oauth/install", None).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = headers[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("https://app.hubspot.test/oauth/authorize?client_id=test-client-id&")
    );
    assert!(
        location.contains("&redirect_uri=https%3A%2F%2Finstall.example.com%2Foauth%2Fcallback&")
    );
    assert!(location.contains("&scope=oauth%20crm.objects.contacts.read&"));
    assert!(location.contains("&optional_scope=crm.objects.deals.read&"));
    let state = location.split("&state=").nth(1).unwrap();
    assert_eq!(state.len(), 43, "a 256-bit state in base64url");
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.starts_with("__Host-hubspot_oauth_state="));
    assert!(set_cookie.contains("; Path=/;"));
    assert!(set_cookie.contains("; HttpOnly; Secure;"));
    let cookie = set_cookie.split(';').next().unwrap();

    let (status, headers, body) = get(
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        Some(cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(!body.contains(INSTALL_ACCESS) && !body.contains(INSTALL_REFRESH));

    let items = scan(&stand.sdk, &stand.table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["hub_id"], AttributeValue::S(HUB.to_string()));
    assert_eq!(items[0]["status"], AttributeValue::S("active".to_owned()));
    assert_no_plaintext(&items, &[INSTALL_ACCESS, INSTALL_REFRESH]);

    let token = stand.vault().access_token(HUB).await.unwrap();
    assert_eq!(token.expose(), INSTALL_ACCESS);
    assert_eq!(stand.hubspot.refreshes(), 0);
}

#[tokio::test]
async fn a_token_response_without_hub_id_is_identified_by_introspection() {
    let stand = Stand::new().await;
    *stand.hubspot.state.include_hub_id.lock().unwrap() = false;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    let (status, _, _) = get(
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stand.hubspot.state.introspect_calls.load(Ordering::SeqCst),
        1
    );
    assert!(stand.item(HUB).await.is_some());
}

#[tokio::test]
async fn a_reinstall_replaces_the_accounts_tokens() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    let (status, _, _) = get(
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stand.vault().access_token(HUB).await.unwrap().expose(),
        INSTALL_ACCESS
    );
}

#[tokio::test]
async fn a_grant_that_misses_a_required_scope_or_is_not_bearer_is_not_stored() {
    let stand = Stand::new().await;
    let router = stand.router();
    *stand.hubspot.state.granted_scopes.lock().unwrap() = vec!["oauth"];
    let (cookie, state) = start_install(&router).await;
    let uri = format!("/oauth/callback?code={CODE}&state={state}");
    let (status, _, body) = get(&router, &uri, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.contains(INSTALL_ACCESS));

    *stand.hubspot.state.granted_scopes.lock().unwrap() =
        vec!["oauth", "crm.objects.contacts.read"];
    *stand.hubspot.state.token_type.lock().unwrap() = "mac";
    let (cookie, state) = start_install(&router).await;
    let uri = format!("/oauth/callback?code={CODE}&state={state}");
    let (status, _, _) = get(&router, &uri, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(stand.hubspot.state.code_calls.load(Ordering::SeqCst), 2);
    assert!(scan(&stand.sdk, &stand.table).await.is_empty());
}

/// Every refusal is the same plain 400 page, and nothing is exchanged or stored.
async fn assert_refused(stand: &Stand, router: &Router, uri: &str, cookie: Option<&str>) {
    let (status, _, body) = get(router, uri, cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not valid or has expired"));
    for detail in ["signature", "cookie", "state", "expired cookie"] {
        assert!(
            !body.to_lowercase().contains(detail),
            "the page leaks {detail}"
        );
    }
    assert_eq!(stand.hubspot.state.code_calls.load(Ordering::SeqCst), 0);
    assert!(scan(&stand.sdk, &stand.table).await.is_empty());
}

#[tokio::test]
async fn a_callback_whose_code_hubspot_calls_invalid_grant_gets_the_start_again_page() {
    // A refreshed or double-clicked callback page: the cookie is good, the code is spent.
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    let uri = format!("/oauth/callback?code=spent-{CODE}&state={state}");
    let (status, _, body) = get(&router, &uri, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("start the installation again"), "{body}");
    assert!(!body.contains("HubSpot could not complete"), "{body}");
    assert_eq!(stand.hubspot.state.code_calls.load(Ordering::SeqCst), 1);
    assert!(scan(&stand.sdk, &stand.table).await.is_empty());
}

#[tokio::test]
async fn a_callback_without_the_state_cookie_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (_, state) = start_install(&router).await;
    assert_refused(
        &stand,
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        None,
    )
    .await;
}

#[tokio::test]
async fn an_install_started_on_hubspots_side_restarts_through_the_install_route_without_exchanging_its_code()
 {
    let stand = Stand::new().await;
    let router = stand.router();
    // HubSpot's install link (project install URL, marketplace): a code, no state, no cookie.
    for uri in [
        format!("/oauth/callback?code={CODE}"),
        format!("/oauth/callback?code={CODE}&state="),
    ] {
        let (status, headers, _) = get(&router, &uri, None).await;
        assert_eq!(status, StatusCode::FOUND, "{uri}");
        assert_eq!(
            headers[header::LOCATION],
            "https://install.example.com/oauth/install"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(headers.get(header::SET_COOKIE).is_none());
    }
    assert_eq!(stand.hubspot.state.code_calls.load(Ordering::SeqCst), 0);
    assert!(scan(&stand.sdk, &stand.table).await.is_empty());

    // The restarted flow completes: a fresh state and cookie, a code bound to them.
    let (cookie, state) = start_install(&router).await;
    let (status, _, _) = get(
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stand.hubspot.state.code_calls.load(Ordering::SeqCst), 1);

    // A state without its cookie is still refused (a browser dropping cookies cannot loop), and
    // so is a HubSpot-side code that comes with a cookie from another flow.
    assert_refused_after(
        &stand,
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        None,
        1,
    )
    .await;
    assert_refused_after(
        &stand,
        &router,
        &format!("/oauth/callback?code={CODE}"),
        Some(&cookie),
        1,
    )
    .await;
}

/// Like [`assert_refused`], after `exchanged` earlier exchanges.
async fn assert_refused_after(
    stand: &Stand,
    router: &Router,
    uri: &str,
    cookie: Option<&str>,
    exchanged: usize,
) {
    let (status, _, body) = get(router, uri, cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
    assert!(body.contains("not valid or has expired"));
    assert_eq!(
        stand.hubspot.state.code_calls.load(Ordering::SeqCst),
        exchanged
    );
}

#[tokio::test]
async fn a_callback_with_a_tampered_cookie_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    let mut tampered = cookie.into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_refused(
        &stand,
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        Some(&tampered),
    )
    .await;
}

#[tokio::test]
async fn a_callback_whose_state_differs_from_the_cookie_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, _) = start_install(&router).await;
    let (_, other_state) = start_install(&router).await;
    assert_refused(
        &stand,
        &router,
        &format!("/oauth/callback?code={CODE}&state={other_state}"),
        Some(&cookie),
    )
    .await;
}

#[tokio::test]
async fn a_callback_after_ten_minutes_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    stand.clock.advance_ms(10 * 60 * 1000 + 1);
    assert_refused(
        &stand,
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        Some(&cookie),
    )
    .await;
}

#[tokio::test]
async fn a_callback_carrying_hubspots_error_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    assert_refused(
        &stand,
        &router,
        &format!("/oauth/callback?error=access_denied&error_description=denied&state={state}"),
        Some(&cookie),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_on_an_expiring_token_cause_exactly_one_refresh() {
    let stand = Stand::new().await;
    stand.seed(HUB, 60).await;
    *stand.hubspot.state.refresh_delay.lock().unwrap() = Duration::from_millis(300);
    // Five instances, ten requests each: the race is decided in DynamoDB, not in memory.
    let vaults: Vec<Arc<Vault>> = (0..5).map(|_| Arc::new(stand.vault())).collect();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let vault = Arc::clone(&vaults[i % vaults.len()]);
            tokio::spawn(async move { vault.access_token(HUB).await })
        })
        .collect();
    for task in tasks {
        let token = task.await.unwrap().unwrap();
        assert_eq!(token.expose(), "access-refreshed-1");
    }
    assert_eq!(stand.hubspot.refreshes(), 1);
    assert_eq!(
        stand.hubspot.last_refresh_token_seen().as_deref(),
        Some(SEED_REFRESH)
    );

    // The next refresh presents the refresh token the response carried.
    stand.clock.advance_ms(30 * 60 * 1000);
    let token = vaults[0].access_token(HUB).await.unwrap();
    assert_eq!(token.expose(), "access-refreshed-2");
    assert_eq!(
        stand.hubspot.last_refresh_token_seen().as_deref(),
        Some("refresh-rotated-1")
    );
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["refresh_count"], AttributeValue::N("2".to_owned()));
    assert!(!item.contains_key("lease_owner"), "the lease is released");
}

#[tokio::test]
async fn a_refresh_response_without_a_refresh_token_keeps_the_old_one() {
    let stand = Stand::new().await;
    stand.seed(HUB, 60).await;
    stand.hubspot.set_mode(RefreshMode::AccessOnly);
    let vault = stand.vault();
    assert_eq!(
        vault.access_token(HUB).await.unwrap().expose(),
        "access-refreshed-1"
    );

    stand.clock.advance_ms(30 * 60 * 1000);
    stand.hubspot.set_mode(RefreshMode::Rotate);
    assert_eq!(
        vault.access_token(HUB).await.unwrap().expose(),
        "access-refreshed-2"
    );
    assert_eq!(
        stand.hubspot.last_refresh_token_seen().as_deref(),
        Some(SEED_REFRESH)
    );
}

#[tokio::test]
async fn when_a_lease_holder_dies_another_instance_refreshes_after_the_lease_expires() {
    let stand = Stand::new().await;
    stand.seed(HUB, 60).await;
    let now = stand.clock.now_ms();
    assert!(
        stand
            .store()
            .try_lease(HUB, "dead-instance", now, now + 15_000)
            .await
            .unwrap()
    );

    let vault = stand.vault_with(VaultSettings {
        wait_budget: Duration::from_millis(300),
        ..VaultSettings::default()
    });
    assert!(matches!(
        vault.access_token(HUB).await,
        Err(VaultError::RefreshBusy { hub_id: HUB })
    ));
    assert_eq!(stand.hubspot.refreshes(), 0);

    stand.clock.advance_ms(15_001);
    assert_eq!(
        vault.access_token(HUB).await.unwrap().expose(),
        "access-refreshed-1"
    );
    assert_eq!(stand.hubspot.refreshes(), 1);
}

#[tokio::test]
async fn ciphertext_copied_onto_another_account_does_not_decrypt() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    stand.seed(OTHER_HUB, 1800).await;
    let source = stand.item(HUB).await.unwrap();
    let mut copied = stand.item(OTHER_HUB).await.unwrap();
    for attr in ["wrapped_key", "tokens", "version"] {
        copied.insert(attr.to_owned(), source[attr].clone());
    }
    aws_sdk_dynamodb::Client::new(&stand.sdk)
        .put_item()
        .table_name(&stand.table)
        .set_item(Some(copied))
        .send()
        .await
        .unwrap();

    assert!(matches!(
        stand.vault().access_token(OTHER_HUB).await,
        Err(VaultError::Decryption { hub_id: OTHER_HUB })
    ));
    assert_eq!(
        stand.vault().access_token(HUB).await.unwrap().expose(),
        SEED_ACCESS
    );
}

#[tokio::test]
async fn an_invalid_grant_marks_the_account_as_needing_reinstall() {
    let stand = Stand::new().await;
    let directory =
        DynamoAccountDirectory::new(aws_sdk_dynamodb::Client::new(&stand.sdk), &stand.table);
    for (hub_id, mode) in [
        (HUB, RefreshMode::InvalidGrant),
        (OTHER_HUB, RefreshMode::BadRefreshToken),
    ] {
        stand.seed(hub_id, 60).await;
        stand.hubspot.set_mode(mode);
        let result = stand.vault().access_token(hub_id).await;
        assert!(
            matches!(result, Err(VaultError::NeedsReinstall { hub_id: h }) if h == hub_id),
            "{result:?}"
        );
        assert_eq!(
            directory.status(hub_id).await.unwrap(),
            Some(AccountStatus::NeedsReinstall)
        );
        // Later callers are told without another call to HubSpot.
        let before = stand.hubspot.refreshes();
        assert!(matches!(
            stand.vault().access_token(hub_id).await,
            Err(VaultError::NeedsReinstall { .. })
        ));
        assert_eq!(stand.hubspot.refreshes(), before);
    }
}

#[tokio::test]
async fn the_api_version_setting_decides_which_oauth_paths_an_install_calls() {
    for version in ["2026-03", "2026-09"] {
        let stand = Stand::new().await;
        // Without hub_id in the grant, the install introspects too.
        *stand.hubspot.state.include_hub_id.lock().unwrap() = false;
        let router = stand.router_with(&[("HSBRIDGE_HUBSPOT_API_VERSION", version)]);
        let (cookie, state) = start_install(&router).await;
        let (status, _, body) = get(
            &router,
            &format!("/oauth/callback?code={CODE}&state={state}"),
            Some(&cookie),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{version}: {body}");
        let paths = stand.hubspot.state.paths.lock().unwrap().clone();
        assert_eq!(
            paths,
            [
                format!("/oauth/{version}/token"),
                format!("/oauth/{version}/token/introspect")
            ],
            "{version}"
        );
    }
}

#[test]
fn a_refused_api_version_stops_the_callbacks_cold_start_with_a_sentence() {
    let vars: HashMap<String, String> = [
        ("HSBRIDGE_ACCOUNTS_TABLE", "t"),
        ("HSBRIDGE_KMS_KEY_ID", "k"),
        ("HSBRIDGE_HUBSPOT_SECRET_ID", "s"),
        (
            "HSBRIDGE_OAUTH_REDIRECT_URL",
            "https://install.example.com/oauth/callback",
        ),
        ("HSBRIDGE_OAUTH_SCOPES", SCOPES),
        ("HSBRIDGE_HUBSPOT_API_VERSION", "v1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let e = CallbackConfig::from_env(&vars).unwrap_err().to_string();
    assert!(
        e.contains("HSBRIDGE_HUBSPOT_API_VERSION") && e.contains("2026-03, 2026-09"),
        "{e}"
    );
}

#[tokio::test]
async fn disconnect_uninstalls_the_app_then_revokes_and_erases_the_tokens() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    let report = stand.vault().disconnect(HUB, true).await.unwrap();
    assert_eq!(report.uninstall, HubSpotStep::Done);
    assert_eq!(report.revoke, HubSpotStep::Done);
    assert_eq!(
        stand.hubspot.state.paths.lock().unwrap().clone(),
        [
            "/appinstalls/2026-03/external-install",
            "/oauth/2026-03/token/revoke"
        ]
    );
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["status"], AttributeValue::S("disconnected".to_owned()));
    assert!(!item.contains_key("tokens"));
}

#[tokio::test]
async fn a_refused_uninstall_is_reported_and_the_tokens_are_erased_anyway() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    *stand.hubspot.state.uninstall_status.lock().unwrap() = StatusCode::FORBIDDEN;
    let report = stand.vault().disconnect(HUB, true).await.unwrap();
    match &report.uninstall {
        HubSpotStep::Failed(why) => assert!(
            why.contains("403") && why.contains("MISSING_SCOPES"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(report.revoke, HubSpotStep::Done);
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["status"], AttributeValue::S("disconnected".to_owned()));
    assert!(!item.contains_key("tokens") && !item.contains_key("wrapped_key"));
}

#[tokio::test]
async fn disconnect_revokes_deletes_the_tokens_and_marks_the_account_disconnected() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    stand.vault().disconnect(HUB, false).await.unwrap();
    assert_eq!(stand.hubspot.state.revoke_calls.load(Ordering::SeqCst), 1);
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["status"], AttributeValue::S("disconnected".to_owned()));
    assert!(!item.contains_key("tokens") && !item.contains_key("wrapped_key"));
    assert!(matches!(
        stand.vault().access_token(HUB).await,
        Err(VaultError::Disconnected { hub_id: HUB })
    ));
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_contain_no_token_and_no_client_secret() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    get(
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        Some(&cookie),
    )
    .await;
    // A refused callback logs its reason.
    get(
        &router,
        &format!("/oauth/callback?code={CODE}&state={state}"),
        None,
    )
    .await;
    stand.clock.advance_ms(30 * 60 * 1000);
    let vault = stand.vault();
    let refreshed = vault.access_token(HUB).await.unwrap();
    stand.clock.advance_ms(30 * 60 * 1000);
    stand.hubspot.set_mode(RefreshMode::InvalidGrant);
    assert!(vault.access_token(HUB).await.is_err());
    vault.disconnect(HUB, false).await.unwrap();

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("account installed"),
        "the flow was logged: {logs}"
    );
    assert!(logs.contains("needs reinstall"));
    for secret in [
        SECRET,
        INSTALL_ACCESS,
        INSTALL_REFRESH,
        refreshed.expose(),
        "refresh-rotated-1",
        CODE,
        &cookie,
        &state,
    ] {
        assert!(!logs.contains(secret), "a secret was logged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_outlived_its_lease_cannot_store_tokens_on_an_account_marked_needs_reinstall()
 {
    let stand = Stand::new().await;
    stand.seed(HUB, 60).await;
    // Instance A's refresh is answered with new tokens, but only when the test says so...
    let release = Arc::new(tokio::sync::Notify::new());
    *stand.hubspot.state.hold_next_refresh.lock().unwrap() = Some(Arc::clone(&release));
    let a = Arc::new(stand.vault_waiting(VaultSettings::default(), Duration::from_secs(60)));
    let slow = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.access_token(HUB).await }
    });
    while stand.hubspot.refreshes() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...so its lease runs out; instance B takes the lease over, HubSpot refuses the refresh
    // token, and B marks the account.
    stand.hubspot.set_mode(RefreshMode::InvalidGrant);
    stand.clock.advance_ms(10 * 60 * 1000);
    assert!(matches!(
        stand.vault().access_token(HUB).await,
        Err(VaultError::NeedsReinstall { hub_id: HUB })
    ));
    assert!(
        !slow.is_finished(),
        "A's refresh must still be waiting on HubSpot"
    );
    release.notify_one();
    // A's tokens arrive after the mark: they must be neither stored nor returned.
    let late = slow.await.unwrap();
    assert!(
        matches!(late, Err(VaultError::NeedsReinstall { hub_id: HUB })),
        "{late:?}"
    );
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["status"].as_s().unwrap(), "needs_reinstall");
    assert!(
        !item.contains_key("tokens") && !item.contains_key("wrapped_key"),
        "valid tokens left on an account marked needs_reinstall"
    );
}

fn sealed(byte: u8) -> SealedTokens {
    SealedTokens {
        wrapped_key: vec![byte; 8],
        ciphertext: vec![byte; 16],
    }
}

fn update(new_version: u64) -> TokenUpdate {
    TokenUpdate {
        new_version,
        sealed: sealed(9),
        access_expires_at_ms: 5_000,
        updated_at_ms: 4_000,
    }
}

/// The save conditions every store adapter must enforce: version, active status, lease owner.
async fn a_save_needs_the_version_an_active_account_and_the_lease(store: &dyn AccountStore) {
    let hub = 4242;
    let record = AccountRecord {
        hub_id: hub,
        status: AccountStatus::Active,
        scopes: vec!["oauth".into()],
        access_expires_at_ms: 1_000,
        installed_at_ms: 1,
        updated_at_ms: 1,
        refresh_count: 0,
        consecutive_failures: 0,
        version: 1,
        sealed: Some(sealed(1)),
        lease: None,
    };
    store.put(&record, None).await.unwrap();
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict));

    // Without the lease, or once another instance has taken it over, nothing is stored.
    assert!(conflict(store.save_tokens(hub, 1, "a", &update(2)).await));
    assert!(store.try_lease(hub, "a", 100, 200).await.unwrap());
    assert!(
        store.try_lease(hub, "b", 201, 300).await.unwrap(),
        "an expired lease is taken over"
    );
    assert!(conflict(store.save_tokens(hub, 1, "a", &update(2)).await));
    // The current owner saves, and only from the version it read.
    assert!(conflict(store.save_tokens(hub, 0, "b", &update(2)).await));
    store.save_tokens(hub, 1, "b", &update(2)).await.unwrap();
    let saved = store.get(hub).await.unwrap().unwrap();
    assert_eq!((saved.version, saved.refresh_count), (2, 1));
    assert_eq!(saved.sealed, Some(sealed(9)));

    // Marking the account bumps the version and drops the envelope: a refresh that read it
    // before cannot save, even holding the lease.
    store
        .set_status(hub, 2, AccountStatus::NeedsReinstall, 400)
        .await
        .unwrap();
    let marked = store.get(hub).await.unwrap().unwrap();
    assert_eq!(
        (marked.status, marked.version, marked.sealed),
        (AccountStatus::NeedsReinstall, 3, None)
    );
    assert!(conflict(store.save_tokens(hub, 2, "b", &update(3)).await));
    // Not even with the new version: the account is not active.
    assert!(conflict(store.save_tokens(hub, 3, "b", &update(4)).await));
    let after = store.get(hub).await.unwrap().unwrap();
    assert_eq!((after.version, after.sealed), (3, None));
}

#[tokio::test]
async fn the_dynamodb_store_refuses_a_save_without_the_lease_the_version_or_an_active_account() {
    let stand = Stand::new().await;
    a_save_needs_the_version_an_active_account_and_the_lease(&stand.store()).await;
}

#[tokio::test]
async fn the_embedded_store_refuses_a_save_without_the_lease_the_version_or_an_active_account() {
    a_save_needs_the_version_an_active_account_and_the_lease(&InMemoryAccountStore::default())
        .await;
}
