//! Building each function's state from AWS: done once per cold start.

use crate::alerts::EventBridgeAlerts;
use crate::config::{AlertsConfig, CallerConfig, RelayConfig};
use crate::consumer::{ConsumerState, DeadLetterWatch, Enrichment, EventLogging};
use crate::hubspot::{HubSpotApi, HubSpotSettings};
use crate::limits::DynamoLimits;
use crate::protected::ProtectedApi;
use crate::relay::{RelaySettings, RelayState};
use aws_config::SdkConfig;
use hsbridge_platform::Clock;
use hsbridge_platform::accounts::DynamoAccountDirectory;
use hsbridge_platform::alerts::{Alerts, LoggedAlerts};
use hsbridge_platform::event_log::DynamoEventLog;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{SecretCachePolicy, SecretSource, SecretsManagerSource};
use hsbridge_vault::{
    DynamoAccountStore, KmsKeyWrapper, ReqwestHubSpotOAuth, Vault, VaultSettings,
};
use std::sync::Arc;
use std::time::Duration;

/// Why a function could not be wired. Start-up only; the message is for the operator.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(
        "no AWS credentials provider is configured; the function's role (or the default credential chain) is needed to sign calls to the protected API"
    )]
    NoCredentials,
    #[error("could not build an HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Unbounded(#[from] hsbridge_vault::UnboundedCalls),
}

fn protected_api(
    config: &crate::protected::ProtectedApiConfig,
    sdk: &SdkConfig,
) -> Result<ProtectedApi, WiringError> {
    let credentials = sdk
        .credentials_provider()
        .ok_or(WiringError::NoCredentials)?;
    ProtectedApi::new(config.clone(), credentials).map_err(|e| WiringError::Http(e.to_string()))
}

fn secrets(
    sdk: &SdkConfig,
    secret_id: &str,
    grace: Duration,
    clock: &Arc<dyn Clock>,
) -> Arc<dyn SecretSource> {
    Arc::new(SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        secret_id,
        SecretCachePolicy {
            grace,
            ..SecretCachePolicy::default()
        },
        Arc::clone(clock),
    ))
}

/// The alerts adapter the configuration names.
pub fn alerts(config: &AlertsConfig, sdk: &SdkConfig, clock: &Arc<dyn Clock>) -> Arc<dyn Alerts> {
    match config {
        AlertsConfig::Off => Arc::new(LoggedAlerts),
        AlertsConfig::EventBridge { stack, timeout } => Arc::new(EventBridgeAlerts::new(
            aws_sdk_eventbridge::Client::new(sdk),
            stack.clone(),
            *timeout,
            Arc::clone(clock),
        )),
    }
}

/// The dead-letter watch, when the queue's `maxReceiveCount` is known.
pub fn dead_letter_watch(
    config: &CallerConfig,
    sdk: &SdkConfig,
    clock: &Arc<dyn Clock>,
) -> Option<DeadLetterWatch> {
    config
        .max_receive_count
        .map(|max_receive_count| DeadLetterWatch {
            alerts: alerts(&config.alerts, sdk, clock),
            max_receive_count,
        })
}

/// The relay wired to Secrets Manager and the protected API.
pub fn relay_state(
    config: &RelayConfig,
    sdk: &SdkConfig,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
) -> Result<RelayState, WiringError> {
    Ok(RelayState {
        settings: RelaySettings {
            public_base: config.public_base.clone(),
            max_body_bytes: config.max_body_bytes,
            signature_window_ms: config.signature_window_ms,
            target_prefix: config.target_prefix.clone(),
        },
        secrets: secrets(sdk, &config.secret_id, config.secret_grace, &clock),
        api: protected_api(&config.protected, sdk)?,
        clock,
        metrics,
    })
}

/// The queue consumer wired to DynamoDB, KMS, Secrets Manager, HubSpot and the protected API.
pub fn consumer_state(
    config: &CallerConfig,
    sdk: &SdkConfig,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
) -> Result<ConsumerState, WiringError> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let alerts = alerts(&config.alerts, sdk, &clock);
    let enrichment = match &config.enrichment {
        None => None,
        Some(e) => {
            let secrets = secrets(sdk, &e.vault.secret_id, e.secret_grace, &clock);
            let settings = HubSpotSettings {
                window_ms: e.limits.window_ms,
                limit: e.limits.limit,
                ..HubSpotSettings::default()
            };
            // The refresh lease is sized from the same timeouts the clients use.
            let calls = hsbridge_vault::CallBounds::new(
                hsbridge_platform::aws::operation_timeout(sdk),
                settings.timeout,
            )?;
            let oauth = ReqwestHubSpotOAuth::new(&e.vault.api_base, settings.timeout)
                .map_err(|e| WiringError::Http(e.to_string()))?
                .with_version(e.vault.api_version);
            let vault = Vault::new(
                Arc::new(DynamoAccountStore::new(
                    dynamo.clone(),
                    &e.vault.accounts_table,
                )),
                Arc::new(KmsKeyWrapper::new(
                    aws_sdk_kms::Client::new(sdk),
                    &e.vault.kms_key_id,
                )),
                Arc::new(oauth),
                secrets,
                Arc::clone(&clock),
                VaultSettings::for_calls(calls),
            )
            .with_alerts(Arc::clone(&alerts));
            let limits = Arc::new(DynamoLimits::new(
                dynamo.clone(),
                &e.rate_table,
                e.limits,
                Arc::clone(&clock),
            ));
            let hubspot = HubSpotApi::new(
                &e.vault.api_base,
                Arc::new(vault),
                limits.clone(),
                limits,
                Arc::clone(&clock),
                settings,
            )
            .map_err(|e| WiringError::Http(e.to_string()))?
            .with_alerts(Arc::clone(&alerts));
            Some(Enrichment {
                properties: e.properties.clone(),
                hubspot,
            })
        }
    };
    let event_log = config.event_log_table.as_ref().map(|table| EventLogging {
        log: Arc::new(DynamoEventLog::new(dynamo.clone(), table)),
        retention: config.event_log_retention,
    });
    Ok(ConsumerState {
        event_log,
        accounts: Arc::new(DynamoAccountDirectory::new(dynamo, &config.accounts_table)),
        api: protected_api(&config.protected, sdk)?,
        events_path: config.events_path.clone(),
        enrichment,
        clock,
        metrics,
    })
}
