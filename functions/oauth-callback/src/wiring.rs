//! Building the callback's state from AWS: done once per cold start.

use crate::config::CallbackConfig;
use crate::handler::CallbackState;
use aws_config::SdkConfig;
use hsbridge_platform::Clock;
use hsbridge_platform::aws::operation_timeout;
use hsbridge_platform::secrets::{SecretCachePolicy, SecretSource, SecretsManagerSource};
use hsbridge_vault::{
    CallBounds, DynamoAccountStore, HubSpotOAuth, KmsKeyWrapper, OAuthError, ReqwestHubSpotOAuth,
    UnboundedCalls, Vault, VaultSettings,
};
use std::sync::Arc;

/// Why the callback could not be wired. Start-up only; the message is for the operator.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("could not build the HubSpot client: {0}")]
    HubSpot(#[from] OAuthError),
    #[error(transparent)]
    Unbounded(#[from] UnboundedCalls),
}

/// The callback wired to Secrets Manager, DynamoDB, KMS and HubSpot.
pub fn aws_state(
    config: &CallbackConfig,
    sdk: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<CallbackState, WiringError> {
    // The refresh lease is sized from the same timeouts the clients below use.
    let calls = CallBounds::new(operation_timeout(sdk), config.hubspot_timeout)?;
    let secrets: Arc<dyn SecretSource> = Arc::new(SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        &config.vault.secret_id,
        SecretCachePolicy {
            grace: config.secret_grace,
            ..SecretCachePolicy::default()
        },
        Arc::clone(&clock),
    ));
    let oauth: Arc<dyn HubSpotOAuth> = Arc::new(
        ReqwestHubSpotOAuth::new(&config.vault.api_base, config.hubspot_timeout)?
            .with_version(config.vault.api_version),
    );
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
        VaultSettings::for_calls(calls),
    );
    Ok(CallbackState {
        settings: config.settings.clone(),
        secrets,
        oauth,
        vault: Arc::new(vault),
        clock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::BehaviorVersion;
    use aws_config::timeout::TimeoutConfig;
    use hsbridge_platform::SystemClock;
    use std::time::Duration;

    fn config() -> CallbackConfig {
        let vars = crate::config::tests::vars(&[("HSBRIDGE_HUBSPOT_TIMEOUT_MS", "4000")]);
        CallbackConfig::from_env(&vars).unwrap()
    }

    fn sdk(operation: Option<Duration>) -> SdkConfig {
        let mut timeouts = TimeoutConfig::builder();
        if let Some(t) = operation {
            timeouts = timeouts.operation_timeout(t);
        }
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .timeout_config(timeouts.build())
            .build()
    }

    #[test]
    fn the_refresh_lease_is_sized_from_the_sdk_and_hubspot_timeouts_at_start_up() {
        let state = aws_state(
            &config(),
            &sdk(Some(Duration::from_secs(2))),
            Arc::new(SystemClock),
        )
        .unwrap();
        // Nine AWS operations of 2 s, the 4 s HubSpot timeout, and the margin.
        assert_eq!(
            state.vault.settings().lease_ttl(),
            Duration::from_secs(9 * 2 + 4) + hsbridge_vault::vault::LEASE_MARGIN
        );
        assert!(matches!(
            aws_state(&config(), &sdk(None), Arc::new(SystemClock)),
            Err(WiringError::Unbounded(_))
        ));
    }
}
