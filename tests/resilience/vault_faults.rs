//! A token refresh while KMS or DynamoDB fails: the call fails, the stored item still decrypts to
//! the tokens it held, and a refresh after recovery succeeds. The vault reaches AWS through the
//! fault proxy; HubSpot is the support library's simulator, answering a refresh as HubSpot does:
//! a new access token and the same refresh token.

use crate::SHARED;
use crate::stand::{moto_endpoint, through};
use aws_config::SdkConfig;
use hsbridge_integration_tests::aws::{
    Role, as_role, create_kms_key, create_table, now_ms, sdk, unique,
};
use hsbridge_integration_tests::hubspot::{HubSpot, RefreshTokens};
use hsbridge_integration_tests::proxy::{Fault, FaultProxy, Service};
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_platform::{Clock, ManualClock};
use hsbridge_vault::crypto::{KeyCache, TokenPair};
use hsbridge_vault::hubspot::TokenGrant;
use hsbridge_vault::{
    AccountStore, DynamoAccountStore, KmsKeyWrapper, ReqwestHubSpotOAuth, Vault, VaultError,
    VaultSettings,
};
use hsbridge_verify::{Secret, SecretSet};
use std::sync::Arc;
use std::time::Duration;

const CLIENT_ID: &str = "test-client-id";
const CLIENT_SECRET: &str = "client-secret-for-the-resilience-tests";
const HUB: u64 = 62515;
const SEED_ACCESS: &str = "access-seeded-a1b2c3";
const SEED_REFRESH: &str = "refresh-seeded-d4e5f6";

#[derive(Debug)]
struct VaultStand {
    direct: SdkConfig,
    proxy: FaultProxy,
    table: String,
    key_id: String,
    hubspot: HubSpot,
    clock: ManualClock,
}

impl VaultStand {
    /// An installed account whose access token expires in one minute: due for a refresh.
    async fn new() -> Self {
        let direct = sdk().await;
        let table = unique("accounts");
        create_table(&direct, &table, "hub_id").await;
        let key_id = create_kms_key(&direct).await;
        let hubspot = HubSpot::start().await;
        hubspot
            .expect_client(CLIENT_ID, CLIENT_SECRET)
            .refresh_tokens(RefreshTokens::Keep);
        let stand = Self {
            direct,
            proxy: FaultProxy::start(&moto_endpoint()).await,
            table,
            key_id,
            hubspot,
            clock: ManualClock::at(now_ms()),
        };
        let grant = TokenGrant {
            access_token: Secret::new(SEED_ACCESS),
            refresh_token: Some(Secret::new(SEED_REFRESH)),
            expires_in: 60,
            token_type: "bearer".to_owned(),
            hub_id: Some(HUB),
            scopes: None,
        };
        // The install is the OAuth callback's part.
        stand
            .vault(&stand.direct, Role::OAuthCallback)
            .install(HUB, &grant, &["oauth".to_owned()])
            .await
            .unwrap();
        stand
    }

    /// A vault instance (cold key cache) reaching AWS through `sdk`, signing as `role`.
    fn vault(&self, sdk: &SdkConfig, role: Role) -> Vault {
        let sdk = &as_role(sdk, role);
        let app = HubSpotApp {
            client_id: CLIENT_ID.to_owned(),
            secrets: SecretSet::new(Secret::new(CLIENT_SECRET)).unwrap(),
        };
        Vault::new(
            Arc::new(DynamoAccountStore::new(
                aws_sdk_dynamodb::Client::new(sdk),
                &self.table,
            )),
            Arc::new(KmsKeyWrapper::new(
                aws_sdk_kms::Client::new(sdk),
                &self.key_id,
            )),
            Arc::new(
                ReqwestHubSpotOAuth::new(self.hubspot.base(), Duration::from_secs(5)).unwrap(),
            ),
            Arc::new(StaticSecretSource(app)),
            Arc::new(self.clock.clone()),
            VaultSettings::default(),
        )
    }

    /// A vault instance reaching AWS through the fault proxy.
    fn proxied_vault(&self) -> Vault {
        // The api-caller refreshes tokens.
        self.vault(&through(&self.direct, self.proxy.url()), Role::ApiCaller)
    }

    /// The stored item's version and tokens, read and decrypted straight from moto.
    async fn stored(&self) -> (u64, TokenPair) {
        let store =
            DynamoAccountStore::new(aws_sdk_dynamodb::Client::new(&self.direct), &self.table);
        let record = store.get(HUB).await.unwrap().unwrap();
        let keys = KeyCache::new(
            Arc::new(KmsKeyWrapper::new(
                aws_sdk_kms::Client::new(&self.direct),
                &self.key_id,
            )),
            Duration::ZERO,
        );
        let tokens = keys
            .open(
                HUB,
                record.version,
                record.sealed.as_ref().unwrap(),
                self.clock.now_ms(),
            )
            .await
            .unwrap();
        (record.version, tokens)
    }

    /// The refresh tokens HubSpot was given, in order.
    fn refreshes(&self) -> Vec<String> {
        self.hubspot.refresh_tokens_seen()
    }
}

fn assert_tokens(tokens: &TokenPair, access: &str, refresh: &str) {
    assert_eq!(tokens.access.expose(), access);
    assert_eq!(tokens.refresh.expose(), refresh);
}

#[tokio::test]
async fn a_refresh_while_kms_throttles_or_is_unreachable_fails_and_the_stored_tokens_still_decrypt()
{
    let _shared = SHARED.read().await;
    for fault in [Fault::Throttle, Fault::Unreachable, Fault::ServerError] {
        let stand = VaultStand::new().await;
        let (version, _) = stand.stored().await;
        stand.proxy.fail(Service::Kms, fault);
        let vault = stand.proxied_vault();

        let result = vault.access_token(HUB).await;
        assert!(
            matches!(result, Err(VaultError::Keys(_))),
            "{fault:?}: {result:?}"
        );
        assert!(stand.proxy.injected_into(Service::Kms) > 0, "{fault:?}");
        // Decrypt failed before HubSpot was asked: nothing was refreshed or lost.
        assert!(stand.refreshes().is_empty(), "{fault:?}");
        let (after, tokens) = stand.stored().await;
        assert_eq!(after, version, "{fault:?}");
        assert_tokens(&tokens, SEED_ACCESS, SEED_REFRESH);

        stand.proxy.heal();
        let token = vault.access_token(HUB).await.unwrap();
        assert_eq!(token.expose(), "access-refreshed-1", "{fault:?}");
        let (after, tokens) = stand.stored().await;
        assert_eq!(after, version + 1, "{fault:?}");
        assert_tokens(&tokens, "access-refreshed-1", SEED_REFRESH);
    }
}

#[tokio::test]
async fn a_refresh_whose_new_tokens_could_not_be_sealed_never_asks_hubspot_and_keeps_the_tokens() {
    let _shared = SHARED.read().await;
    let stand = VaultStand::new().await;
    let (version, _) = stand.stored().await;
    // Decrypt works; the data key for the new tokens cannot be had.
    stand
        .proxy
        .fail_operation(Service::Kms, "GenerateDataKey", Fault::Throttle, 0);
    let vault = stand.proxied_vault();

    let result = vault.access_token(HUB).await;
    assert!(matches!(result, Err(VaultError::Keys(_))), "{result:?}");
    // The data key is fetched before HubSpot is asked: no tokens were issued and lost.
    assert!(stand.refreshes().is_empty(), "HubSpot was not asked");
    let (after, tokens) = stand.stored().await;
    assert_eq!(after, version);
    assert_tokens(&tokens, SEED_ACCESS, SEED_REFRESH);

    // The lease was released: the next call refreshes at once, with the stored refresh token.
    stand.proxy.heal();
    let token = vault.access_token(HUB).await.unwrap();
    assert_eq!(token.expose(), "access-refreshed-1");
    assert_eq!(stand.refreshes(), [SEED_REFRESH]);
    let (after, tokens) = stand.stored().await;
    assert_eq!(after, version + 1);
    assert_tokens(&tokens, "access-refreshed-1", SEED_REFRESH);
}

#[tokio::test]
async fn a_refresh_whose_tokens_cannot_be_saved_keeps_the_previous_tokens_and_a_later_one_succeeds()
{
    let _shared = SHARED.read().await;
    let stand = VaultStand::new().await;
    let (version, _) = stand.stored().await;
    // UpdateItem takes the lease, then saves the tokens, then releases the lease: the lease is
    // taken, and DynamoDB throttles from the save on (so the lease is not released either).
    stand
        .proxy
        .fail_operation(Service::DynamoDb, "UpdateItem", Fault::Throttle, 1);
    let vault = stand.proxied_vault();

    let result = vault.access_token(HUB).await;
    assert!(matches!(result, Err(VaultError::Store(_))), "{result:?}");
    assert_eq!(stand.refreshes(), [SEED_REFRESH]);
    let (after, tokens) = stand.stored().await;
    assert_eq!(after, version);
    assert_tokens(&tokens, SEED_ACCESS, SEED_REFRESH);

    // DynamoDB is back; once the abandoned lease has expired, a refresh succeeds.
    stand.proxy.heal();
    let lease = VaultSettings::default().lease_ttl();
    stand
        .clock
        .advance_ms(u64::try_from(lease.as_millis()).unwrap() + 1);
    let token = stand.proxied_vault().access_token(HUB).await.unwrap();
    assert_eq!(token.expose(), "access-refreshed-2");
    let (after, tokens) = stand.stored().await;
    assert_eq!(after, version + 1);
    assert_tokens(&tokens, "access-refreshed-2", SEED_REFRESH);
}
