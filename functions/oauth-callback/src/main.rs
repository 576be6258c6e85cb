//! The oauth-callback Lambda function (also runs locally on HSBRIDGE_LOCAL_ADDR).

use hsbridge_oauth_callback::{CallbackConfig, app, wiring};
use hsbridge_platform::aws::{self, AwsTimeouts};
use hsbridge_platform::config::ProcessEnv;
use hsbridge_platform::{SystemClock, serve, telemetry};
use std::process::ExitCode;
use std::sync::Arc;

// One thread: an instance gets one event at a time and, at 128 MB, 7.2 % of one CPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    telemetry::init();
    let config = match CallbackConfig::from_env(&ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let sdk = aws::load(AwsTimeouts::default()).await;
    let state = match wiring::aws_state(&config, &sdk, Arc::new(SystemClock)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match serve::run(app(state), "127.0.0.1:3002").await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
