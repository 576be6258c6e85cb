//! Building the callback's state from AWS: done once per cold start.

use crate::config::CallbackConfig;
use crate::handler::CallbackState;
use aws_config::SdkConfig;
use hsbridge_platform::Clock;
use hsbridge_platform::secrets::{SecretCachePolicy, SecretSource, SecretsManagerSource};
use hsbridge_vault::{
    DynamoAccountStore, HubSpotOAuth, KmsKeyWrapper, OAuthError, ReqwestHubSpotOAuth, Vault,
    VaultSettings,
};
use std::sync::Arc;

/// The callback wired to Secrets Manager, DynamoDB, KMS and HubSpot.
pub fn aws_state(
    config: &CallbackConfig,
    sdk: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<CallbackState, OAuthError> {
    let secrets: Arc<dyn SecretSource> = Arc::new(SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        &config.vault.secret_id,
        SecretCachePolicy {
            grace: config.secret_grace,
            ..SecretCachePolicy::default()
        },
        Arc::clone(&clock),
    ));
    let oauth: Arc<dyn HubSpotOAuth> = Arc::new(ReqwestHubSpotOAuth::new(
        &config.vault.api_base,
        config.hubspot_timeout,
    )?);
    let vault = Vault::new(
        Arc::new(DynamoAccountStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.vault.accounts_table,
        )),
        Arc::new(KmsKeyWrapper::new(
            aws_sdk_kms::Client::new(sdk),
            &config.vault.kms_key_id,
        )),
        Arc::clone(&oauth),
        Arc::clone(&secrets),
        Arc::clone(&clock),
        VaultSettings::default(),
    );
    Ok(CallbackState {
        settings: config.settings.clone(),
        secrets,
        oauth,
        vault: Arc::new(vault),
        clock,
    })
}
