//! The token vault and the OAuth install flow against moto (DynamoDB, KMS, Secrets Manager) and
//! the support library's HubSpot simulator, one module per concern.

mod callback;
mod disconnect;
mod install;
mod logs;
mod refresh;
mod store;
mod version;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::body::Body;
use hsbridge_integration_tests::aws::{
    Role, as_role, create_app_secret, create_kms_key, create_table, now_ms, scan, sdk, sdk_with,
    unique,
};
use hsbridge_integration_tests::hubspot::{Answer, Endpoint, Grant, HubSpot, RefreshTokens};
use hsbridge_oauth_callback::{CallbackConfig, app, wiring};
use hsbridge_platform::accounts::{AccountDirectory, AccountStatus, DynamoAccountDirectory};
use hsbridge_platform::aws::AwsTimeouts;
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_platform::{Clock, ManualClock};
use hsbridge_vault::hubspot::TokenGrant;
use hsbridge_vault::store::{AccountRecord, SealedTokens, TokenUpdate};
use hsbridge_vault::{
    AccountStore, DynamoAccountStore, HubSpotStep, InMemoryAccountStore, KmsKeyWrapper,
    ReqwestHubSpotOAuth, StoreError, Vault, VaultError, VaultSettings,
};
use hsbridge_verify::{Secret, SecretSet};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use std::collections::HashMap;
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

/// How HubSpot answers the refresh grant.
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

/// HubSpot for these tests: this app's client only, one good code granting [`HUB`] the install
/// tokens, and the uninstall accepting only the tokens these tests install.
async fn simulator() -> HubSpot {
    let hubspot = HubSpot::start().await;
    hubspot
        .expect_client(CLIENT_ID, SECRET)
        .accept_code(CODE)
        .grant(Grant {
            access_token: INSTALL_ACCESS.to_owned(),
            refresh_token: INSTALL_REFRESH.to_owned(),
            expires_in: 1800,
            token_type: "Bearer".to_owned(),
            hub_id: HUB,
            scopes: vec!["oauth".to_owned(), "crm.objects.contacts.read".to_owned()],
            with_hub_id: true,
        })
        .uninstall_accepts(&[SEED_ACCESS, INSTALL_ACCESS]);
    hubspot
}

/// The callback URI HubSpot's authorize page sends the browser back to with the good code.
fn callback(state: &str) -> String {
    format!("/oauth/callback?code={CODE}&state={state}")
}

/// Fresh AWS resources and a fake HubSpot for one test.
struct Stand {
    sdk: SdkConfig,
    table: String,
    key_id: String,
    secret_id: String,
    hubspot: HubSpot,
    clock: ManualClock,
}

impl Stand {
    /// How HubSpot answers the refresh grant from now on.
    fn refresh_answers(&self, mode: RefreshMode) {
        let refused = |body| Answer::json(StatusCode::BAD_REQUEST, body);
        match mode {
            RefreshMode::Rotate => {
                self.hubspot.refresh_tokens(RefreshTokens::Rotate);
                self.hubspot.answer_normally(Endpoint::Refresh);
            }
            RefreshMode::AccessOnly => {
                self.hubspot.refresh_tokens(RefreshTokens::Omit);
                self.hubspot.answer_normally(Endpoint::Refresh);
            }
            RefreshMode::InvalidGrant => {
                self.hubspot.always(
                    Endpoint::Refresh,
                    refused(json!({"error": "invalid_grant", "error_description": "revoked"})),
                );
            }
            RefreshMode::BadRefreshToken => {
                self.hubspot.always(
                    Endpoint::Refresh,
                    refused(json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"})),
                );
            }
        }
    }

    async fn new() -> Self {
        Self::with_sdk(sdk().await).await
    }

    /// With SDK timeouts longer than the functions' (5 s an attempt): for a test of a race whose
    /// dozens of concurrent pollers load the moto every suite shares, where the question is how
    /// many refreshes happen, not how fast one call is (the vault's timeouts are tested in
    /// `tests/resilience/vault_faults.rs`).
    async fn patient() -> Self {
        Self::with_sdk(
            sdk_with(AwsTimeouts {
                connect: Duration::from_secs(2),
                attempt: Duration::from_secs(5),
                operation: Duration::from_secs(11),
                max_attempts: 2,
            })
            .await,
        )
        .await
    }

    async fn with_sdk(sdk: SdkConfig) -> Self {
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
            hubspot: simulator().await,
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
            Arc::new(ReqwestHubSpotOAuth::new(self.hubspot.base(), hubspot_timeout).unwrap()),
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
                self.hubspot.base().to_owned(),
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
