//! The hubspot-relay Lambda function (also runs locally on HSBRIDGE_LOCAL_ADDR).

use hsbridge_api_caller::{RelayConfig, relay, wiring};
use hsbridge_platform::aws::{self, AwsTimeouts};
use hsbridge_platform::config::ProcessEnv;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::{SystemClock, serve, telemetry};
use std::process::ExitCode;
use std::sync::Arc;

// One thread: an instance gets one event at a time and, at 128 MB, 7.2 % of one CPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    telemetry::init();
    let config = match RelayConfig::from_env(&ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let sdk = aws::load(AwsTimeouts::default()).await;
    let metrics = Metrics::stdout("hsbridge", "hubspot-relay");
    let state = match wiring::relay_state(&config, &sdk, Arc::new(SystemClock), metrics) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match serve::run(relay::app(state), "127.0.0.1:3003").await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
