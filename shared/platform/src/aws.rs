//! One AWS SDK configuration per cold start, with every call bounded in time. `AWS_ENDPOINT_URL`
//! (used by the tests to reach moto, and by anyone pointing at a local stand-in) is honoured by
//! aws-config itself.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// How long AWS calls may take. Defaults suit a request handler that must answer within ~4 s.
#[derive(Debug, Clone, Copy)]
pub struct AwsTimeouts {
    pub connect: Duration,
    pub attempt: Duration,
    pub operation: Duration,
    pub max_attempts: u32,
}

impl Default for AwsTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(500),
            attempt: Duration::from_millis(800),
            operation: Duration::from_millis(1_800),
            max_attempts: 2,
        }
    }
}

/// The operation timeout (every attempt included) of an SDK configuration, if it has one.
pub fn operation_timeout(sdk: &SdkConfig) -> Option<Duration> {
    sdk.timeout_config().and_then(|t| t.operation_timeout())
}

/// Load the shared SDK configuration (region, credentials, endpoint) with bounded timeouts.
pub async fn load(timeouts: AwsTimeouts) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_attempt_timeout(timeouts.attempt)
                .operation_timeout(timeouts.operation)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(timeouts.max_attempts))
        .load()
        .await
}
