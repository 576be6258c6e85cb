//! Building the intake's state from AWS: done once per cold start.

use crate::config::IntakeConfig;
use crate::dedupe::DynamoDeduper;
use crate::handler::IntakeState;
use crate::queue::SqsEventQueue;
use aws_config::SdkConfig;
use hsbridge_platform::Clock;
use hsbridge_platform::accounts::DynamoAccountDirectory;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{SecretCachePolicy, SecretsManagerSource};
use std::sync::Arc;

/// The intake wired to DynamoDB, SQS and Secrets Manager.
pub fn aws_state(
    config: &IntakeConfig,
    sdk: &SdkConfig,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
) -> IntakeState {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    IntakeState {
        settings: config.settings.clone(),
        secrets: Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            &config.secret_id,
            SecretCachePolicy {
                grace: config.secret_grace,
                ..SecretCachePolicy::default()
            },
            Arc::clone(&clock),
        )),
        accounts: Arc::new(DynamoAccountDirectory::new(
            dynamo.clone(),
            &config.accounts_table,
        )),
        deduper: Arc::new(DynamoDeduper::new(dynamo, &config.dedupe_table)),
        queue: Arc::new(SqsEventQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            &config.queue_url,
        )),
        clock,
        metrics,
    }
}
